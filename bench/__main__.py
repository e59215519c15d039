"""Run the benchmarks: ``python -m bench`` (all), ``python -m bench NAME...``, ``python -m bench --list``.

Every module in ``bench/`` with a ``main()`` (or an ``if __name__ == "__main__"`` block, run through
``runpy``) is a benchmark. Each runs in its own Python process (benchmarks set torch threads, change
directory, parse ``sys.argv``), its output streamed, then a summary table is printed and written to
``bench/results/suite/summary.json``.

By default the suite must finish in well under 15 minutes on a 2-core machine, so the modules whose
defaults take longer get smaller sizes, and their results go to ``bench/results/suite/`` instead of
overwriting the full-size results in ``bench/results/``:

- ``reader``: 200,000 scalars instead of 1,000,000 (TensorBoard's ``EventFileLoader`` alone takes ~5 min
  at 1M on this machine), all readers;
- ``overhead``: 64 envs, 10 iterations, 2 repeats (default 64 + 512 envs, 20 iterations, 3 repeats);
- ``push_lite_learning``: 30 PPO iterations, at most 2 minutes (default 80, 6 minutes);
- ``divergence_demo``: 32 envs, 140 iterations (default 64 envs, 150);
- ``fleet``: 100 runs (default 500);
- ``fuzz_long``: 300 examples per property (default 20,000, about 50 minutes);
- ``rsl_rl_overhead``: the example's size (64 envs x 24 steps), 12 iterations, 1 ABBA block (default also
  1024 envs, 20 iterations, 2 blocks; about 10 minutes);
- ``rl_games_overhead``, ``skrl_overhead``: the example's size (64 envs x 16 steps), 12 updates, 1 ABBA block
  (default also 1024 envs, 20 updates, 2 blocks);
- ``observe_cost``: a 10,000-iteration replay against tbparse instead of 50,000, once; one pass over the records, not 3;
- ``loo``: the first 2 settings of the leave-one-run-out grid instead of 6 (about 2 minutes).

``observe_instructions`` (an A/B in instructions under valgrind, about 3 minutes per commit) runs only when named.

``detection`` and ``rollback`` run at their full defaults (about 2 and 1 minutes). ``--full`` runs every
module with its own defaults and writes the canonical results (much longer than 15 minutes).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SUITE_DIR = BENCH / "results" / "suite"
ORDER = ("detection", "rollback", "reader", "overhead", "push_lite_learning")  # others follow, by name
ON_REQUEST = {"observe_instructions": "needs valgrind; run by name"}  # not in the default suite

# Smaller sizes for the default (quick) suite; "{suite}" is SUITE_DIR.
QUICK_ARGS = {
    "reader": ["--n", "200000", "--out", "{suite}/reader.json"],
    "overhead": ["--envs", "64", "--iterations", "10", "--repeats", "2"],
    "push_lite_learning": ["--iterations", "30", "--minutes", "2", "--out", "{suite}"],
    "divergence_demo": ["--envs", "32", "--iterations", "140"],
    "fleet": ["--runs", "100", "--out", "{suite}/fleet.json"],
    "fuzz_long": ["--examples", "300"],
    "rsl_rl_overhead": ["--sizes", "32x24", "--iterations", "12", "--repeats", "1"],
    "rl_games_overhead": ["--sizes", "32x16", "--iterations", "12", "--repeats", "1"],
    "skrl_overhead": ["--sizes", "32x16", "--iterations", "12", "--repeats", "1"],
    "observe_cost": ["--iterations", "10000", "--repeats", "1", "--passes", "1", "--out", "{suite}/observe_cost.json"],
    "loo": ["--grid", "2", "--out", "{suite}/detection_loo.json"],
}
# Modules with no --out option whose module-level RESULTS folder is pointed at SUITE_DIR in quick mode.
QUICK_RESULTS_DIR = {"overhead", "divergence_demo", "fuzz_long", "rsl_rl_overhead", "rl_games_overhead",
                     "skrl_overhead"}

# Runs in the child process: argv = name, results-dir override ("" = none), module args...
_CHILD = r"""
import inspect, runpy, sys
from pathlib import Path
name, results, args = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.argv = ["bench." + name, *args]
mod = __import__("bench." + name, fromlist=["main"])
main = getattr(mod, "main", None)
if not callable(main):
    runpy.run_module("bench." + name, run_name="__main__", alter_sys=True)
    raise SystemExit(0)
if results:
    mod.RESULTS = Path(results)
rc = main(args) if inspect.signature(main).parameters else main()
raise SystemExit(rc if isinstance(rc, int) else 0)
"""


def discover() -> dict[str, bool]:
    """Benchmark modules -> whether they define ``main()`` (read with ast, nothing imported)."""
    found: dict[str, bool] = {}
    for path in sorted(BENCH.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        has_main = any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
        has_guard = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
        if has_main or has_guard:
            found[path.stem] = has_main
    ordered = [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)
    return {n: found[n] for n in ordered}


def command(name: str, full: bool) -> tuple[list[str], list[str]]:
    """(child command, the module's arguments)."""
    args = [] if full else [a.replace("{suite}", str(SUITE_DIR)) for a in QUICK_ARGS.get(name, [])]
    results = str(SUITE_DIR) if (not full and name in QUICK_RESULTS_DIR) else ""
    return [sys.executable, "-c", _CHILD, name, results, *args], args


def run_one(name: str, full: bool) -> dict:
    cmd, args = command(name, full)
    print(f"\n===== bench.{name} {' '.join(args)}".rstrip() + " =====", flush=True)
    started = time.perf_counter()
    tail: list[str] = []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.strip():
            tail = (tail + [line.rstrip()])[-3:]
    rc = proc.wait()
    return {"name": name, "args": args, "returncode": rc, "seconds": time.perf_counter() - started,
            "last_lines": tail}


def main(argv: list[str] | None = None) -> int:
    benches = discover()
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all of {', '.join(benches)})")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and the arguments the suite passes")
    ap.add_argument("--full", action="store_true", help="each module's own default sizes (long; canonical results)")
    args = ap.parse_args(argv)

    if args.list:
        for name, has_main in benches.items():
            _, margs = command(name, args.full)
            how = "main()" if has_main else "runpy"
            note = f" ({ON_REQUEST[name]})" if name in ON_REQUEST else ""
            print(f"{name:22s} {how:7s} {' '.join(margs) or '(defaults)'}{note}")
        return 0
    unknown = [n for n in args.names if n not in benches]
    if unknown:
        print(f"python -m bench: error: unknown benchmark(s) {', '.join(unknown)} "
              f"(known: {', '.join(benches)})", file=sys.stderr)
        return 2
    names = args.names or [n for n in benches if n not in ON_REQUEST]
    SUITE_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = [run_one(n, args.full) for n in names]
    total = time.perf_counter() - started

    print("\n===== summary =====")
    print("| benchmark | exit | seconds | last line |")
    print("| --- | ---: | ---: | --- |")
    for r in results:
        last = r["last_lines"][-1] if r["last_lines"] else ""
        print(f"| {r['name']} | {r['returncode']} | {r['seconds']:.0f} | {last[:100]} |")
    print(f"total {total:.0f} s ({total / 60:.1f} min){' (--full)' if args.full else ''}")
    (SUITE_DIR / "summary.json").write_text(json.dumps(
        {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "full": args.full, "total_seconds": total,
         "results": results}, indent=1) + "\n")
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
