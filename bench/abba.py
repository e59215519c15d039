"""What the framework-integration overhead benches share (``bench.rsl_rl_overhead``, ``bench.rl_games_overhead``,
``bench.skrl_overhead``): the ABBA-interleaved runs and their medians, the command line and result file, and the
two wrappers that time a run from inside (not a benchmark itself: no ``main``)."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable


def timed(fn: Callable, seconds: list[float]) -> Callable:
    """``fn``, appending the seconds each call took to ``seconds`` (the watchdog's judgement of an update)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    return wrapper


def stamped(fn: Callable, stamps: list[tuple[float, float]]) -> Callable:
    """``fn``, appending (wall, CPU) time at each call's start to ``stamps`` (each update's start)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stamps.append((time.perf_counter(), time.process_time()))
        return fn(*args, **kwargs)

    return wrapper


def per_update(stamps: list[tuple[float, float]]) -> tuple[float, float]:
    """Wall and CPU seconds per update between the second and the last update's start (set-up and the first
    update excluded)."""
    wall, cpu = ((stamps[-1][i] - stamps[1][i]) / (len(stamps) - 2) for i in (0, 1))
    return wall, cpu


def abba(framework: str, run, sizes: list[tuple[int, int]], iterations: int, repeats: int) -> dict:
    """Watched / unwatched per size, ABBA-interleaved; medians of seconds per iteration. ``run(worlds, steps,
    iterations, watched, hook_seconds)`` -> (wall, CPU) seconds per iteration of one run (the integration's
    benches: rsl_rl here, rl_games in ``bench.rl_games_overhead``); push_lite's worlds are 2 envs each."""
    out = {}
    for worlds, steps in sizes:
        times: dict[str, list[float]] = {"unwatched": [], "watched": []}
        cpu: dict[str, list[float]] = {"unwatched": [], "watched": []}
        hook: list[float] = []
        for _ in range(repeats):
            for watched in (False, True, True, False):
                mode = "watched" if watched else "unwatched"
                wall_s, cpu_s = run(worlds, steps, iterations, watched, hook)
                times[mode].append(wall_s)
                cpu[mode].append(cpu_s)
        median = {k: statistics.median(v) for k, v in times.items()}
        cpu_median = {k: statistics.median(v) for k, v in cpu.items()}
        key = f"{worlds}x{steps}"
        out[key] = {
            "envs": 2 * worlds,
            "seconds_per_iteration": median,
            "all": times,
            "ratio": median["watched"] / median["unwatched"],
            "cpu_seconds_per_iteration": cpu_median,
            "cpu_all": cpu,
            "cpu_ratio": cpu_median["watched"] / cpu_median["unwatched"],
            "hook_ms": {"median": 1e3 * statistics.median(hook), "mean": 1e3 * statistics.fmean(hook),
                        "max": 1e3 * max(hook)},
            "hook_share_of_iteration": statistics.fmean(hook) / median["unwatched"],
        }
        print(f"{framework} {2 * worlds} envs x {steps} steps: {median['unwatched'] * 1e3:.1f} ms/iteration unwatched, "
              f"{median['watched'] * 1e3:.1f} watched, ratio {out[key]['ratio']:.4f} (CPU time: "
              f"{out[key]['cpu_ratio']:.4f}); watchdog "
              f"{1e3 * statistics.median(hook):.2f} ms median per iteration "
              f"({100 * out[key]['hook_share_of_iteration']:.2f}% of an iteration)", flush=True)
    return out


def overhead_main(argv: list[str] | None, *, doc: str, framework: str, dist: str, task: str, run,
                  default_sizes: list[str], sizes_help: str, results: Path) -> None:
    """The integration benches' command line (``--sizes --iterations --repeats``) and result file
    (``<results>/<framework>_overhead.json``): ``run`` as :func:`abba` takes it; ``dist`` the framework's
    distribution, whose version is recorded."""
    import importlib.metadata

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=default_sizes, help=sizes_help)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2, help="ABBA blocks (each: 2 unwatched + 2 watched runs)")
    args = p.parse_args(argv)
    sizes = [tuple(int(x) for x in s.lower().split("x")) for s in args.sizes]
    result = {"machine": platform.platform(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
              "framework": framework, f"{framework}_version": importlib.metadata.version(dist), "task": task,
              "iterations": args.iterations, "order": "ABBA",
              "sizes": abba(framework, run, sizes, args.iterations, args.repeats)}
    results.mkdir(exist_ok=True)
    (results / f"{framework}_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
