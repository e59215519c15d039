"""Test-only: ``openrl_ws/train.py`` that dies hard at iteration K on its first attempt.

    python tests/helpers/crashing_train.py --crash KIND@K [train.py flags...]

KIND: ``exit`` (``os._exit(3)``), ``fpe`` (a ``FloatingPointError("NaN")`` escapes the training
loop), ``error`` (a ``RuntimeError`` escapes train.py: Python's exit 1), ``segv`` (``ctypes.string_at(0)``), ``hang`` (sleeps forever; for the stall detector).
The first attempt is the one without ``--checkpoint`` in argv; a restarted attempt (the
supervisor adds ``--checkpoint``) trains normally. The crash comes after iteration K's stable
checkpoint, if any, is written.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

CRASHES = {
    "exit": lambda: os._exit(3),
    "segv": lambda: ctypes.string_at(0),
    "hang": lambda: time.sleep(3600),
}


def crash(kind: str) -> None:
    print(f"crashing_train: crashing with {kind}", file=sys.stderr, flush=True)
    if kind == "fpe":
        raise FloatingPointError("NaN")
    if kind == "error":
        raise RuntimeError("crashing_train: an ordinary bug")
    CRASHES[kind]()


def main(argv: list[str]) -> int:
    kind, at = None, None
    if "--crash" in argv:
        i = argv.index("--crash")
        kind, at = argv[i + 1].split("@")
        argv = argv[:i] + argv[i + 2 :]
    first_attempt = not any(a == "--checkpoint" or a.startswith("--checkpoint=") for a in argv)

    import openrl.modules.common  # noqa: F401 - first, as train.py does: OpenRL 0.2.0's import cycle

    from openrl_ws import hook, train

    if kind is not None and first_attempt:
        original = hook.WatchSession.end_iteration

        def end_iteration(self, driver, record):
            keep_going = original(self, driver, record)
            if record.iteration == int(at):
                crash(kind)
            return keep_going

        hook.WatchSession.end_iteration = end_iteration
    return train.main(argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main(sys.argv[1:]))
