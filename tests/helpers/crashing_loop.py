"""Test-only: the CleanRL-style loop of ``tests/integrations/test_loop.py`` under ``LoopWatchdog``, dying hard.

    python tests/helpers/crashing_loop.py RUN_DIR UPDATES CRASH_AT WATCHDOG_CONFIG [--skip-resume]

The first attempt (no ``WATCHDOG_RESTART``) kills itself with ``os._exit(3)`` right after the watchdog judged
update CRASH_AT (its stable checkpoint, if CRASH_AT is one, on disk); a restarted one trains to UPDATES from
where ``LoopWatchdog.resume()`` says (``--skip-resume``: as a loop that never calls it, from its own 0).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]


def main(argv: list[str]) -> int:
    from tests.integrations.test_loop import CleanRLLoop
    from watchdog.config import load_watchdog_config

    run_dir, updates, crash_at, cfg = Path(argv[0]), int(argv[1]), int(argv[2]), load_watchdog_config(argv[3])
    loop = CleanRLLoop(run_dir, cfg=cfg)
    if "--skip-resume" in argv:
        from watchdog.integrations.loop import Resume

        loop.watch.resume = Resume
    if not os.environ.get("WATCHDOG_RESTART"):
        step = loop.watch.step

        def crashing_step(iteration, env_steps, metrics):
            out = step(iteration, env_steps, metrics)
            if iteration == crash_at:
                loop.watch.watch.settle()  # this update's stable checkpoint on disk, as after any update
                os._exit(3)
            return out

        loop.watch.step = crashing_step
    loop.train(updates)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
