"""Test-only: ``examples/rsl_rl_ppo.py`` under the watchdog, launched as Isaac Lab launches a run, that dies hard.

    python tests/helpers/crashing_rsl_rl.py --crash KIND@K --logs BASE [rsl_rl_ppo.py flags...]

Each launch writes rsl_rl's logs into a new folder, ``BASE/attempt<N>`` (N: ``WATCHDOG_RESTART``, 0 for the first),
as Isaac Lab's train scripts make a new timestamped one per launch; the watchdog's run dir is the one
``watchdog run`` names. KIND: ``exit`` (``os._exit(3)``) or ``kill`` (SIGKILL to itself, as the OOM killer
would). Only the first attempt crashes, right after the watchdog judged iteration K (its stable checkpoint,
if K is one, written).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

CRASHES = {"exit": lambda: os._exit(3), "kill": lambda: os.kill(os.getpid(), signal.SIGKILL)}


def main(argv: list[str]) -> int:
    i = argv.index("--crash")
    kind, at = argv[i + 1].split("@")
    argv = argv[:i] + argv[i + 2:]
    j = argv.index("--logs")
    attempt = int(os.environ.get("WATCHDOG_RESTART", "0"))
    argv = argv[:j] + ["--run_dir", str(Path(argv[j + 1]) / f"attempt{attempt}")] + argv[j + 2:]

    import rsl_rl_ppo

    from watchdog.integrations.rsl_rl import WatchedOnPolicyRunner

    if attempt == 0:
        original = WatchedOnPolicyRunner._judge

        def judge(self, record):
            original(self, record)
            if record.iteration == int(at):
                self.watch.settle()  # the stable checkpoint of this iteration is on disk, as after any iteration
                print(f"crashing_rsl_rl: crashing with {kind}", file=sys.stderr, flush=True)
                CRASHES[kind]()

        WatchedOnPolicyRunner._judge = judge
    return rsl_rl_ppo.main(argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main(sys.argv[1:]))
