"""In-loop watchdog cost per PPO epoch for rl_games, as watched / unwatched.

Real rl_games PPO (``Runner()`` vs ``Runner(WatchdogObserver(...))``) on push_lite registered as an rl_games
vecenv (``examples/rl_games_ppo.py``: its agent config), the same seed and sizes, one process, runs interleaved
in ABBA order so machine load hits both alike (``bench.abba``). Each run's seconds per epoch
are timed between the starts of its second and last update (rl_games' ``prepare_dataset``, between rollout and
update); wall and CPU time (``time.process_time``). Both runs write rl_games' TensorBoard events; the watched one
adds the whole watchdog: record, detectors, policy, event log, status line (to a null console), ``watchdog/*``
scalars, stable checkpoints to memory and disk every 10 epochs. ``hook_ms`` is the time inside the watchdog's
per-epoch judgement alone.

    python -m bench.rl_games_overhead [--sizes 32x16 512x16] [--iterations 20] [--repeats 2]

Sizes are ``WORLDSxSTEPS``: push_lite worlds (2 rl_games actors each) x horizon. Writes
bench/results/rl_games_overhead.json.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

from bench.abba import overhead_main, per_update, stamped, timed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def rl_games_run(worlds: int, steps: int, iterations: int, watched: bool, hook_seconds: list[float]) -> tuple[float, float]:
    """Wall and CPU seconds per PPO epoch of one rl_games run (the first epoch excluded)."""
    import torch
    from rl_games.common.algo_observer import DefaultAlgoObserver
    from rl_games.torch_runner import Runner

    sys.path.insert(0, str(ROOT / "examples"))
    from rl_games_ppo import agent_params, register_env

    from watchdog.console import WatchdogConsole
    from watchdog.integrations.rl_games import WatchdogObserver

    class Stamped(WatchdogObserver if watched else DefaultAlgoObserver):
        """Either observer, stamping each update's start (and timing the watchdog's judgement when watched)."""

        def after_init(self, algo):
            super().after_init(algo)
            algo.prepare_dataset = stamped(algo.prepare_dataset, stamps)
            if watched:
                self._judge = timed(self._judge, hook_seconds)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    stamps: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, contextlib.redirect_stdout(io.StringIO()):
        register_env(worlds, steps, 0, None, notes=None)
        observer = Stamped(console=WatchdogConsole(io.StringIO())) if watched else Stamped()
        runner = Runner(observer)
        runner.load(agent_params(0, iterations=iterations, num_actors=2 * worlds, horizon=steps, run_dir=Path(tmp) / "run"))
        runner.run({"train": True, "play": False})
    return per_update(stamps)


def main(argv: list[str] | None = None) -> None:
    overhead_main(argv, doc=__doc__, framework="rl_games", dist="rl-games", run=rl_games_run, task="push_lite (examples/rl_games_ppo.py)",
                  default_sizes=["32x16", "512x16"],
                  sizes_help="WORLDSxSTEPS per size (32x16: the example's rollout; 512x16: 1024 actors, Isaac Lab's 16 steps)",
                  results=RESULTS)


if __name__ == "__main__":
    main()
