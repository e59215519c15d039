"""Write the long healthy MuJoCo runs under tests/data/mujoco_long/ with the real libraries (CPU).

    PYTHONPATH=. python tests/data/mujoco_long/make_mujoco_long.py [name ...]

The runs of ../mujoco are 500 iterations; the runs the watchdog meets in the field (Isaac Lab's rsl_rl and skrl,
Isaac Gym's rl_games) are 1,500-5,000. These are ../mujoco/make_mujoco_runs.py's functions, imported unchanged,
with the same settings, seeds and envs, only 2,500 iterations long; made in session 24 and replayed blind: no
setting was changed after seeing them (README.md). Session 25 added three (rsl_rl and skrl HalfCheetah, blind;
rl_games Hopper, which led to trend.alarm_span_iters), one after another in one process. Each library's own
TensorBoard logger wrote the events; the functions delete the checkpoints.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.data.mujoco import make_mujoco_runs as m

HERE = Path(__file__).resolve().parent
ITERATIONS = 2500
# name -> the ../mujoco run (RUNS entry) it is, longer
SOURCES = {"rsl_rl_ant": "rsl_rl/ant", "rl_games_ant": "rl_games/ant", "skrl_walker2d": "skrl/walker2d",
           "rsl_rl_walker2d": "rsl_rl/walker2d", "rl_games_humanoid": "rl_games/humanoid", "skrl_ant": "skrl/ant",
           # session 25, made after that session's changes and replayed blind
           "rsl_rl_halfcheetah": "rsl_rl/halfcheetah", "rl_games_hopper": "rl_games/hopper",
           "skrl_halfcheetah": "skrl/halfcheetah"}
# name -> (library, gymnasium id, envs, iterations)
LONG = {name: (*m.RUNS[source][:3], ITERATIONS) for name, source in SOURCES.items()}


def main(argv: list[str]) -> int:
    from tests.data.make_each import make_each

    def make(name: str) -> None:
        library, *args = LONG[name]
        out = HERE / name
        shutil.rmtree(out, ignore_errors=True)
        {"rsl_rl": m.rsl_rl, "rl_games": m.rl_games, "skrl": m.skrl}[library](out, *args)

    return make_each(LONG, make, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
