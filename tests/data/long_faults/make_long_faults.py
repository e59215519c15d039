"""Write long real training runs with a real fault (a learning-rate jump) under tests/data/long_faults/.

    PYTHONPATH=. python tests/data/long_faults/make_long_faults.py [rsl_rl sb3 sb3/pendulum_lr_fault ...]

(a framework makes all its runs; framework/run makes one). The libraries, seeds, networks, batch sizes
and hyper-parameters are those of the long healthy runs (../long_runs/make_long_runs.py, which drives
../frameworks/make_runs.py); the only change is in the training itself: from iteration JUMP on, every
update runs with the learning rate multiplied by FACTOR (set on rsl_rl's optimizer before each update;
SB3 gets a schedule that jumps; CleanRL's loop sets it on its optimizer where ``--anneal-lr`` would;
skrl gets a ``LambdaLR`` learning-rate scheduler that jumps; rl_games gets ``algo.last_lr`` before the
epoch, kept by its "fixed" schedule). Nothing is edited in the logs; each framework's own logger wrote
them with its default tags. Only the checkpoint nearest JUMP - 10 (a resume point before the fault) is
kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.data.long_runs.make_long_runs import train_one

HERE = Path(__file__).resolve().parent

# framework -> its runs: (PPO iterations, run as make_runs' function for it takes it, (jump iteration, factor),
# extra keyword arguments as the long healthy run of the same env has them)
PLAN = {
    "rsl_rl": ((500, ("push_lite_lr_fault", None), (300, 100.0), {}),),
    "sb3": ((300, ("cartpole_lr_fault", "CartPole-v1", False), (200, 100.0), {}),
            (400, ("cartpole_lr30_fault", "CartPole-v1", False), (250, 30.0), {}),
            (400, ("pendulum_lr_fault", "Pendulum-v1", False), (240, 100.0), {}),
            (400, ("mountaincar_lr_fault", "MountainCarContinuous-v0", False), (240, 100.0), {}),
            # x100 did not make MountainCar diverge (it sped up the collapse into its local optimum): x300 too
            (400, ("mountaincar_lr300_fault", "MountainCarContinuous-v0", False), (240, 300.0), {})),
    "cleanrl": ((500, ("cartpole_lr_fault", False), (300, 100.0), {}),),
    # skrl and rl_games are shorter than their healthy runs (800, 600): event files under ~400 KB
    "skrl": ((400, ("pendulum_lr_fault", None), (240, 100.0), {}),),
    "rl_games": ((280, ("pendulum_lr_fault", None), (170, 100.0), {"torch_threads": 1}),),
}


def make(framework: str, only: str | None = None) -> None:
    """Train one framework's faulted long runs (``only``: that run alone) into HERE/<framework>/<run>/;
    print wall time and files."""
    for iterations, run, jump, extra in PLAN[framework]:
        if only is not None and run[0] != only:
            continue
        took, files = train_one(framework, run, HERE, iterations, {"keep_it": jump[0] - 10}, lr_jump=jump, **extra)
        print(f"LONG FAULT {framework}/{run[0]}: {iterations} iterations, lr x{jump[1]:g} from {jump[0]}, "
              f"{took:.0f} s wall, files {files}", flush=True)


if __name__ == "__main__":
    for name in sys.argv[1:] or list(PLAN):
        make(*name.split("/", 1))
