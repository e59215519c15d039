"""The data scripts' command line: make the named runs (every run when none is named), one by one, timed."""

from __future__ import annotations

import sys
import time
from typing import Callable, Mapping


def make_each(runs: Mapping[str, object], make: Callable[[str], object], argv: list[str]) -> int:
    """``make(name)`` for each run named in ``argv`` (all of ``runs`` when none), one torch thread; exit code
    2 and the known names for an unknown one."""
    import torch

    torch.set_num_threads(1)
    for name in argv or list(runs):
        if name not in runs:
            print(f"unknown run {name!r}; runs: {', '.join(runs)}", file=sys.stderr)
            return 2
        start = time.perf_counter()
        make(name)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0
