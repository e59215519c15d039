"""What ``Watchdog.observe`` costs in instructions: a count that a shared VM's neighbours do not move.

    python -m bench.observe_instructions [--base WORKTREE]

Runs the per-record loop of ``bench.observe_cost`` (every real record, the same minimal driver) under
valgrind's callgrind, once with the loop and once without it, and prints the instructions of the loop per
record. With ``--base`` (a ``git worktree`` of another commit) it counts that commit's watchdog the same way
and prints the ratio: an A/B that reads the same on a quiet and on a loaded machine, where wall-clock medians
on this 2-core VM move by up to 1.6x between minutes. Needs valgrind; about 3 minutes per commit on 2 cores
(2026-12-02: 6.6 minutes for this tree and a base).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOOP = """
import sys
sys.path[:0] = [sys.argv[2]]
import watchdog.pipeline  # the tree's watchdog ...
sys.path.insert(0, sys.argv[3])
from bench.observe_cost import replays  # ... fed by this tree's bench (a base commit may have another)
from watchdog.pipeline import Watchdog
from watchdog.policy import CheckpointRef, SaveStable
jobs = replays()
for records, cfg, _ in (jobs if sys.argv[1] == "1" else []):
    wd = Watchdog(cfg, listeners=[lambda event: None])
    for rec in records:
        for action in wd.observe(rec):
            if isinstance(action, SaveStable):
                wd.checkpoint_saved(CheckpointRef(action.tag, action.iteration, action.env_steps))
print("records", sum(len(r) for r, _, _ in jobs))
"""


def _start(tree: Path, loop: str, out: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                             "-c", LOOP, loop, str(tree), str(ROOT)], cwd=tree, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _collected(proc: subprocess.Popen) -> tuple[int, int]:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"error: valgrind exited {proc.returncode}: {stderr.strip().splitlines()[-1:]}")
    return int(re.search(r"Collected : (\d+)", stderr).group(1)), int(stdout.split()[-1])


def count(tree: Path) -> tuple[float, int]:
    """(instructions per record of the observe loop, records) for the watchdog in ``tree``."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = [_start(tree, loop, Path(tmp) / f"cg{loop}") for loop in ("1", "0")]
        (with_loop, records), (without, _) = (_collected(p) for p in procs)
    return (with_loop - without) / records, records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="a git worktree of the commit to compare with")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed (apt install valgrind); nothing measured", file=sys.stderr)
        return 2
    if args.base is not None and not (args.base / "watchdog" / "pipeline.py").is_file():
        print(f"error: {args.base} holds no watchdog/pipeline.py; give a worktree: git worktree add /tmp/base <commit>",
              file=sys.stderr)
        return 2
    ours, records = count(ROOT)
    print(f"this tree: {ours / 1e3:.1f}k instructions per record (observe loop, {records:,} real records)")
    if args.base is not None:
        theirs, _ = count(args.base)
        print(f"base {args.base}: {theirs / 1e3:.1f}k per record; this tree / base = {ours / theirs:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
