"""Write long real training runs with a real fault (a learning-rate jump) under tests/data/long_faults/.

    PYTHONPATH=. python tests/data/long_faults/make_long_faults.py [rsl_rl sb3]

The libraries, seeds, networks, batch sizes and hyper-parameters are those of the long healthy runs
(../long_runs/make_long_runs.py, which drives ../frameworks/make_runs.py); the only change is in the
training itself: from iteration JUMP on, every update runs with the learning rate multiplied by
FACTOR (set on rsl_rl's optimizer before each update; SB3 gets a schedule that jumps). Nothing is
edited in the logs; each framework's own logger wrote them with its default tags. Only the checkpoint
nearest JUMP - 10 (a resume point before the fault) is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.data.long_runs.make_long_runs import train_one

HERE = Path(__file__).resolve().parent

# framework -> (PPO iterations, runs as make_runs' function for it takes them, (jump iteration, factor))
PLAN = {
    "rsl_rl": (500, (("push_lite_lr_fault", None),), (300, 100.0)),
    "sb3": (300, (("cartpole_lr_fault", "CartPole-v1", False),), (200, 100.0)),
}


def make(framework: str) -> None:
    """Train one framework's faulted long runs into HERE/<framework>/<run>/; print wall time and files."""
    iterations, runs, jump = PLAN[framework]
    for run in runs:
        took, files = train_one(framework, run, HERE, iterations, {"keep_it": jump[0] - 10}, lr_jump=jump)
        print(f"LONG FAULT {framework}/{run[0]}: {iterations} iterations, lr x{jump[1]:g} from {jump[0]}, "
              f"{took:.0f} s wall, files {files}", flush=True)


if __name__ == "__main__":
    for name in sys.argv[1:] or list(PLAN):
        make(name)
