"""Shared pytest fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # let `pytest` (not only `python -m pytest`) import the package
    sys.path.insert(0, str(REPO_ROOT))

# The repository's sibling `shared/` folder holds read-only fixtures (real OpenRL runs).
MAPUSH_RUNS = REPO_ROOT.parent / "shared" / "data" / "mapush_runs"


@pytest.fixture(scope="session")
def mapush_runs() -> Path:
    """The real MAPush OpenRL runs (``../shared/data/mapush_runs``); skips when absent."""
    if not (MAPUSH_RUNS / "11-07-17_cuboid").is_dir():
        pytest.skip(f"real OpenRL runs not found at {MAPUSH_RUNS} (the shared/ data folder is not checked out)")
    return MAPUSH_RUNS


@pytest.fixture(autouse=True)
def _distribution_validation_restored():
    """rsl_rl turns torch.distributions' argument validation off for the whole process
    (``Normal.set_default_validate_args(False)``); other frameworks' tests rely on it being on
    (OpenRL and SB3 raise on ``Normal(loc=nan)``), so every test gets the setting it started with."""
    import torch.distributions

    before = torch.distributions.Distribution._validate_args
    yield
    torch.distributions.Distribution.set_default_validate_args(before)


@pytest.fixture
def skrl_quiet_at_exit():
    """skrl's trainers log "Closing environment" from an atexit hook, after pytest has closed the stream skrl's
    logger writes to (a logging error at the end of the run): info messages off for this process."""
    import logging

    import skrl

    skrl.logger.setLevel(logging.WARNING)
