"""The longer fuzz run: the properties of tests/watchdog/test_fuzz.py with many more examples.

The test suite runs each property with 100 examples (a few seconds); this runs the same
functions with ``--examples`` each (default 20000) and prints, per property, the examples run,
the seconds and any failure (the falsifying example, as hypothesis prints it). Nothing is
asserted beyond the properties themselves; results go to bench/results/fuzz_long.json.

    python -m bench.fuzz_long [--examples 20000] [--only log_txt]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def load_properties(examples: int):
    """Import tests/watchdog/test_fuzz.py with its example count raised; its @given tests."""
    os.environ["WATCHDOG_FUZZ_EXAMPLES"] = str(examples)
    sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location("watchdog_fuzz_properties", REPO / "tests/watchdog/test_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = {name: fn for name, fn in vars(module).items()
             if name.startswith("test_") and hasattr(fn, "hypothesis")}
    return module, tests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000, help="examples per property (default 20000)")
    parser.add_argument("--only", default="", help="run the properties whose name contains this")
    args = parser.parse_args(argv)
    module, tests = load_properties(args.examples)
    rows, failed = [], 0
    for name, fn in tests.items():
        if args.only not in name:
            continue
        before = sum(module.CALLS.values())
        start = time.perf_counter()
        error = None
        try:
            fn()
        except Exception:  # noqa: BLE001 - report the falsifying example and carry on
            error = traceback.format_exc(limit=3)
            failed += 1
        seconds = time.perf_counter() - start
        calls = sum(module.CALLS.values()) - before
        rows.append({"property": name, "reader_calls": calls, "seconds": round(seconds, 1),
                     "failed": error is not None, "error": error})
        print(f"{name:75s} {calls:7d} calls {seconds:7.1f} s  {'FAILED' if error else 'ok'}", flush=True)
        if error:
            print(error, flush=True)
    total_calls = sum(r["reader_calls"] for r in rows)
    total_s = sum(r["seconds"] for r in rows)
    print(f"{len(rows)} properties, {total_calls} reader calls in {total_s:.0f} s, {failed} failed")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fuzz_long.json").write_text(json.dumps({
        "examples_per_property": args.examples, "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "properties": rows}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
