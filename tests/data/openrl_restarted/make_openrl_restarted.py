"""Write tests/data/openrl_restarted/push_lite_crash_restart/: a real `train.py --watchdog` run restarted in place.

    PYTHONPATH=. python tests/data/openrl_restarted/make_openrl_restarted.py

`watchdog run --max-restarts 1 -- python openrl_ws/train.py --watchdog --inject crash@25` on push_lite (64 envs,
40 iterations, CPU): the first process dies at iteration 25 (a RuntimeError, not a numeric fault), `watchdog run`
restarts it from the stable checkpoint of iteration 20 with the safe config, and the new process logs iterations
21-39 into the same folders. OpenRL writes one file per tag; our train.py logs the losses every iteration and the
rewards every `log_interval` (5), and each file is flushed on its own. Kept: the TensorBoard files (`logs/`, 32
files: two processes x 16) and nothing else, so that replay and watch read the run from TensorBoard (with
`watchdog_events.jsonl` present, replay reads that instead).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
RUN = HERE / "push_lite_crash_restart"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "watchdog.cli", "run", "--max-restarts", "1", "--",
               sys.executable, str(REPO / "openrl_ws" / "train.py"), "--watchdog", "--run_dir", str(run_dir),
               "--train_timesteps", "256000", "--inject", "crash@25"]
        done = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        if done.returncode != 0:
            print(f"the run failed (exit {done.returncode})", file=sys.stderr)
            return 1
        shutil.rmtree(RUN, ignore_errors=True)
        shutil.copytree(run_dir / "logs", RUN / "logs")
    print(f"wrote {RUN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
