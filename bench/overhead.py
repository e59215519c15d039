"""Watchdog overhead: time per PPO iteration, watched vs unwatched, same seed and config.

Runs are interleaved in one process (unwatched, watched, unwatched, ...) on push_lite so that
machine load affects both alike; the figure is the ratio of median seconds per iteration.
Writes bench/results/overhead.json.

    python -m bench.overhead [--envs 64 512] [--iterations 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from openrl_ws.hook import WatchSession
from openrl_ws.train import main as train_main

RESULTS = Path(__file__).resolve().parent / "results"
HOOK_SECONDS: list[float] = []  # time inside the per-iteration hook (watchdog + its I/O), watched runs


def one_run(envs: int, iterations: int, watched: bool, episode_length: int) -> float:
    """Mean seconds per iteration, from the end of iteration 0 to the end of the last one.

    Both modes run the same driver class and write the same TensorBoard/log.txt output; the
    watched one adds the watchdog (detectors, policy, event log, stable checkpoints every 10
    iterations to memory and disk). Set-up (env, networks) is outside the timed span.
    """
    stamps: list[float] = []
    original = WatchSession.end_iteration

    def timed(self, driver, record):
        start = time.perf_counter()
        keep_going = original(self, driver, record)
        stamps.append(time.perf_counter())
        HOOK_SECONDS.append(stamps[-1] - start)
        return keep_going

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--num_envs", str(envs), "--episode_length", str(episode_length), "--seed", "0",
                "--train_timesteps", str(envs * episode_length * iterations), "--run_dir", f"{tmp}/run",
                "--save_interval", str(10**12), "--use_tensorboard"]
        if watched:
            argv.append("--watchdog")
        WatchSession.end_iteration = timed
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                code = train_main(argv)
        finally:
            WatchSession.end_iteration = original
        assert code == 0, f"training failed with exit code {code}"
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--episode_length", type=int, default=100)
    args = parser.parse_args()
    out = {"machine": platform.platform(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
           "iterations": args.iterations, "episode_length": args.episode_length, "sizes": {}}
    for envs in args.envs:
        times: dict[str, list[float]] = {"unwatched": [], "watched": []}
        hook: list[float] = []
        one_run(envs, 2, False, args.episode_length)  # warm-up: imports, allocator
        for repeat in range(args.repeats):  # ABBA order, so a drifting machine load cancels out
            order = (False, True) if repeat % 2 == 0 else (True, False)
            for watched in order:
                key = "watched" if watched else "unwatched"
                HOOK_SECONDS.clear()
                times[key].append(one_run(envs, args.iterations, watched, args.episode_length))
                if watched:
                    hook.extend(HOOK_SECONDS)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["watched"] / med["unwatched"]
        hook_mean = statistics.mean(hook)
        share = hook_mean / med["unwatched"]
        out["sizes"][str(envs)] = {"seconds_per_iteration": med, "all": times, "ratio": ratio,
                                   "hook_ms": {"mean": hook_mean * 1e3, "median": statistics.median(hook) * 1e3,
                                               "max": max(hook) * 1e3},
                                   "hook_share_of_iteration": share}
        print(f"{envs:5d} envs: unwatched {med['unwatched']:.3f} s/it, watched {med['watched']:.3f} s/it, "
              f"ratio {ratio:.3f}; in-loop watchdog cost {hook_mean * 1e3:.1f} ms/it mean "
              f"= {100 * share:.2f} % of an iteration")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
