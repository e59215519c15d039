"""Write the long healthy real training logs under tests/data/long_runs/ with the real libraries.

    PYTHONPATH=. python tests/data/long_runs/make_long_runs.py [sb3 cleanrl rsl_rl skrl rl_games]

The runs of ../frameworks/make_runs.py are 100 PPO iterations, mostly inside the detectors'
50-iteration warm-up; these are the same libraries driven the same way (its functions, imported, with
the same seeds, networks and batch sizes, CPU only), only longer and healthy: 400-1000 iterations, so
that the watchdog's quietness on healthy runs is checked well after warm-up. Each framework's event
file is what its own logger wrote with its default tags; only the last checkpoint of each run is kept.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tests.data.frameworks import make_runs as fw

HERE = Path(__file__).resolve().parent

# framework -> (PPO iterations, runs as make_runs' function for it takes them, extra keyword arguments)
PLAN = {
    "rsl_rl": (1000, (("push_lite_healthy", None),), {}),
    "sb3": (400, (("cartpole_healthy", "CartPole-v1", False), ("pendulum_healthy", "Pendulum-v1", False),
                  ("mountaincar_healthy", "MountainCarContinuous-v0", False)), {}),
    "skrl": (800, (("pendulum_healthy", None),), {}),
    # rl_games sets torch's thread count itself (its "auto" is 2 here): one thread is ~8x faster on this
    # 2-core machine for a 32x32 network, and keeps the run single-threaded like the others
    "rl_games": (600, (("pendulum_healthy", None),), {"torch_threads": 1}),
    "cleanrl": (500, (("cartpole_healthy", False),), {}),
}


def train_one(framework: str, run: tuple, root: Path, iterations: int, prune: dict, **extra) -> tuple[float, dict]:
    """Train one run of ``framework`` into root/<framework>/<run>/ with make_runs' function for it, then
    prune its checkpoints (``prune``: prune_checkpoints' keywords); (wall seconds, {file: bytes})."""
    # every library seeds itself with make_runs' seeds, except rl_games 1.6.5: its Runner seeds
    # only ``if self.seed:``, so seed 0 seeds nothing and its weights would depend on what ran
    # before it in this process; the global seeds make each run the same when made alone
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    start = time.perf_counter()
    getattr(fw, f"{framework}_runs")(runs=(run,), root=root, iterations=iterations, **extra)
    took = time.perf_counter() - start
    fw.prune_checkpoints(root / framework, fw.PER_ITERATION[framework], keep_last=False, **prune)
    return took, {str(p.relative_to(root)): p.stat().st_size for p in sorted((root / framework / run[0]).rglob("*"))
                  if p.is_file()}


def make(framework: str) -> None:
    """Train one framework's long runs, one at a time, into HERE/<framework>/<run>/; print each one's
    wall time and files."""
    iterations, runs, extra = PLAN[framework]
    for run in runs:
        took, files = train_one(framework, run, HERE, iterations, {"healthy_keeps_last": True}, **extra)
        print(f"LONG {framework}/{run[0]}: {iterations} iterations, {took:.0f} s wall, files {files}", flush=True)


if __name__ == "__main__":
    for name in sys.argv[1:] or list(PLAN):
        make(name)
