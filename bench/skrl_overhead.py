"""In-loop watchdog cost per PPO update for skrl, as watched / unwatched.

Real skrl PPO (``examples/skrl_ppo.py``'s agent: Gaussian policy, running scalers, KLAdaptiveLR) on push_lite
through skrl's gymnasium wrapper, trained by its ``SequentialTrainer`` bare or inside ``SkrlWatchdog``, the same
seed and sizes, one process, ABBA-interleaved (``bench.abba``). Each run's seconds per update
are timed between the starts of its second and last update; wall and CPU time. Both runs write skrl's
TensorBoard events; the watched one adds the whole watchdog (record, detectors, policy, event log, status line to
a null console, ``watchdog/*`` scalars, stable checkpoints to memory and disk every 10 updates). ``hook_ms`` is
the time inside the watchdog's per-update judgement alone.

    python -m bench.skrl_overhead [--sizes 32x16 512x16] [--iterations 20] [--repeats 2]

Sizes are ``WORLDSxSTEPS``: push_lite worlds (2 skrl envs each) x rollouts. Writes
bench/results/skrl_overhead.json.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import tempfile
from pathlib import Path

from bench.abba import overhead_main, per_update, stamped, timed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def skrl_run(worlds: int, steps: int, iterations: int, watched: bool, hook_seconds: list[float]) -> tuple[float, float]:
    """Wall and CPU seconds per PPO update of one skrl run (the first update excluded)."""
    import skrl
    import torch

    sys.path.insert(0, str(ROOT / "examples"))
    from skrl_ppo import build_agent, make_env

    from watchdog.console import WatchdogConsole
    from watchdog.integrations.skrl import SkrlWatchdog

    skrl.logger.setLevel(logging.WARNING)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    stamps: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, contextlib.redirect_stdout(io.StringIO()):
        env = make_env(worlds, rollouts=steps, seed=0)
        agent, trainer = build_agent(env, iterations=iterations, rollouts=steps, run_dir=Path(tmp) / "run")
        agent.update = stamped(agent.update, stamps)
        if watched:
            watch = SkrlWatchdog(agent, console=WatchdogConsole(io.StringIO()))
            watch.watch.observe = timed(watch.watch.observe, hook_seconds)
            with watch:
                trainer.train()
        else:
            trainer.train()
        agent.writer.close()
    return per_update(stamps)


def main(argv: list[str] | None = None) -> None:
    overhead_main(argv, doc=__doc__, framework="skrl", dist="skrl", run=skrl_run, task="push_lite (examples/skrl_ppo.py)",
                  default_sizes=["32x16", "512x16"],
                  sizes_help="WORLDSxSTEPS per size (32x16: the example's rollout; 512x16: 1024 envs)",
                  results=RESULTS)


if __name__ == "__main__":
    main()
