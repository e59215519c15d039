"""The README is a front door: small, the two set-up commands near the top, the library in docs/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUP = ('pip install torch==2.13.0 -e . && python openrl_ws/train.py --watchdog --inject nan@30',
         'pip install torch==2.13.0 -e ".[test]" && python -m pytest -q -n auto')
DOCS = ("benchmarks.md", "detection.md", "openrl.md", "natural_divergence.md")


def test_readme_is_under_20_kb_with_the_setup_commands_in_its_first_60_lines():
    readme = (REPO / "README.md").read_bytes()
    assert len(readme) <= 20_000
    head = readme.decode("utf-8").splitlines()[:60]
    for command in SETUP:
        assert command in head, command


def test_readme_links_the_docs_that_hold_measurements_scorecard_and_internals():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for name in DOCS:
        assert f"](docs/{name})" in text and (REPO / "docs" / name).is_file(), name
