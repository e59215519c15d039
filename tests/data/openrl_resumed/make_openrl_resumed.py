"""Write tests/data/openrl_resumed/push_lite_resumed/: a real OpenRL run resumed from a checkpoint into a new folder.

    PYTHONPATH=. python tests/data/openrl_resumed/make_openrl_resumed.py

Two `openrl_ws/train.py` runs on push_lite (16 envs x 50 steps: 800 env steps per iteration, CPU, no watchdog): the
first trains 10 iterations and saves OpenRL's `rl_model_8000_steps`; the second resumes from it into a new run dir
(`--checkpoint .../module.pt`, as replay's resume command does) and trains on to 80 iterations. OpenRL numbers the
second run's iterations on from the checkpoint (its log.txt says "Episode: 10/80" first) and logs every
`log_interval` (5): its first TensorBoard step is 8,800 ((10 + 1) x 800), not one iteration's 800. Kept: the second
run's `logs/` and `log.txt` (not its checkpoints), so that replay and watch read it as OpenRL wrote it.
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
RUN = HERE / "push_lite_resumed"
SMALL = ["--num_envs", "16", "--episode_length", "50", "--use_tensorboard"]


def main() -> int:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        first, resumed = Path(tmp) / "first", Path(tmp) / "resumed"
        runs = [[*SMALL, "--train_timesteps", "8000", "--save_interval", "4000", "--run_dir", str(first)],
                [*SMALL, "--train_timesteps", "64000", "--run_dir", str(resumed),
                 "--checkpoint", str(first / "checkpoints" / "rl_model_8000_steps" / "module.pt")]]
        for args in runs:
            done = subprocess.run([sys.executable, str(REPO / "openrl_ws" / "train.py"), *args], cwd=REPO, env=env)
            if done.returncode != 0:
                print(f"a run failed (exit {done.returncode})", file=sys.stderr)
                return 1
        shutil.rmtree(RUN, ignore_errors=True)
        shutil.copytree(resumed / "logs", RUN / "logs")
        shutil.copy2(resumed / "log.txt", RUN / "log.txt")
    print(f"wrote {RUN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
