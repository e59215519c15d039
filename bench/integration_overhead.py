"""In-loop watchdog cost per PPO iteration for the framework integrations, as watched / unwatched.

Stable-Baselines3 (``sb3``): real SB3 PPO on Pendulum-v1, the same seed and sizes, one process,
runs interleaved in ABBA order (unwatched, watched, watched, unwatched, ...) so machine load hits
both alike; each run's seconds per iteration are timed between the starts of its first and last
rollout (set-up outside); ``ratio`` is the ratio of the medians, ``ratio_per_abba_block`` one per
block, ``cpu_ratio`` the same for the process's CPU time (torch uses one thread, so CPU time is the
loop's own work, less exposed to other jobs than the wall clock). The watched run carries the whole watchdog: metric record, detectors, policy, event log,
status line (to a null console), stable checkpoints to memory and disk every 10 iterations.
On a machine shared with other jobs the wall-clock ratio swings by +-10% from run to run, so the
time spent inside the watchdog's code (the per-update judgement and the per-step reward sum) is
measured too: ``in_loop_ratio`` = 1 + that time per iteration / the unwatched iteration's CPU time, the
same cost seen without most of the other jobs' noise (the per-update judgement timed in the run,
the per-step cost timed over 20,000 calls after it and multiplied by the rollout's steps).

    python -m bench.integration_overhead [--sizes 4x64x20 1x2048x8] [--repeats 3]

Writes bench/results/sb3_overhead.json.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def sb3_run(n_envs: int, n_steps: int, iterations: int, watched: bool, in_loop: list[float]) -> tuple[float, float]:
    """Wall-clock and CPU seconds per PPO iteration of one SB3 run (the first iteration's set-up
    excluded); a watched run appends the seconds it spent in the watchdog's code per iteration to
    ``in_loop``."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList
    from stable_baselines3.common.env_util import make_vec_env

    from watchdog.console import WatchdogConsole
    from watchdog.integrations.sb3 import WatchdogCallback

    stamps: list[tuple[float, float]] = []

    class Stamp(BaseCallback):  # in both modes: the start of every rollout, wall clock and CPU time
        def _on_rollout_start(self) -> None:
            stamps.append((time.perf_counter(), time.process_time()))

        def _on_step(self) -> bool:
            return True

    torch.set_num_threads(1)
    env = make_vec_env("Pendulum-v1", n_envs=n_envs, seed=0)
    model = PPO("MlpPolicy", env, n_steps=n_steps, seed=0, device="cpu")  # SB3's defaults otherwise
    spent = [0.0]
    with tempfile.TemporaryDirectory() as tmp:
        callbacks: list = [Stamp()]
        if watched:
            watchdog = WatchdogCallback(tmp, console=WatchdogConsole(io.StringIO()))
            watchdog._judge = _timed(watchdog._judge, spent)  # the per-update judgement
            callbacks.append(watchdog)
        model.learn(iterations * n_envs * n_steps, callback=CallbackList(callbacks))
        if watched:  # + the per-step reward copy, timed apart (a timer around each step would cost more)
            in_loop.append(spent[0] / iterations + n_steps * _step_seconds(watchdog))
    env.close()
    return tuple((stamps[-1][i] - stamps[1][i]) / (len(stamps) - 2) for i in (0, 1))


def _step_seconds(watchdog, calls: int = 20_000) -> float:
    """Seconds one ``on_step`` of the watchdog costs (SB3's bookkeeping in BaseCallback included)."""
    watchdog._steps = 0
    watchdog._step_rewards = np.zeros((calls, watchdog.model.n_envs))
    start = time.perf_counter()
    for _ in range(calls):
        watchdog.on_step()
    return (time.perf_counter() - start) / calls


def _timed(fn, spent: list[float]):
    def timed(*args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            spent[0] += time.perf_counter() - start
    return timed


def sb3(sizes: list[tuple[int, int, int]], repeats: int) -> dict:
    """Watched / unwatched per size, in ABBA blocks; medians of seconds per iteration."""
    out = {}
    for n_envs, n_steps, iterations in sizes:
        times: dict[str, list[float]] = {"unwatched": [], "watched": []}
        cpu: dict[str, list[float]] = {"unwatched": [], "watched": []}
        blocks, in_loop = [], []
        for _ in range(repeats):
            block = {False: 0.0, True: 0.0}
            for watched in (False, True, True, False):
                seconds, cpu_seconds = sb3_run(n_envs, n_steps, iterations, watched, in_loop)
                times["watched" if watched else "unwatched"].append(seconds)
                cpu["watched" if watched else "unwatched"].append(cpu_seconds)
                block[watched] += seconds
            blocks.append(block[True] / block[False])
        median = {k: statistics.median(v) for k, v in times.items()}
        cpu_median = {k: statistics.median(v) for k, v in cpu.items()}
        share = statistics.median(in_loop) / cpu_median["unwatched"]  # of the loop's own work, not of a loaded clock
        key = f"{n_envs}x{n_steps}"
        out[key] = {
            "iterations_per_run": iterations,
            "seconds_per_iteration": median,
            "all": times,
            "ratio": median["watched"] / median["unwatched"],
            "ratio_per_abba_block": blocks,
            "cpu_seconds_per_iteration": cpu_median,
            "cpu_all": cpu,
            "cpu_ratio": cpu_median["watched"] / cpu_median["unwatched"],
            "in_loop_ms_per_iteration": {"median": 1e3 * statistics.median(in_loop), "all": [1e3 * x for x in in_loop]},
            "in_loop_ratio": 1.0 + share,
        }
        print(f"sb3 {n_envs} envs x {n_steps} steps: {median['unwatched'] * 1e3:.1f} ms/iteration unwatched, "
              f"{median['watched'] * 1e3:.1f} watched: ratio {out[key]['ratio']:.4f} (ABBA blocks "
              f"{', '.join(f'{b:.3f}' for b in blocks)}); CPU time ratio {out[key]['cpu_ratio']:.4f}; "
              f"in the watchdog's code "
              f"{1e3 * statistics.median(in_loop):.2f} ms per iteration: ratio {1 + share:.4f}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["4x64x20", "1x2048x8"],
                   help="N_ENVSxN_STEPSxITERATIONS per size (4x64: the example's rollout; 1x2048: SB3's default)")
    p.add_argument("--repeats", type=int, default=3, help="ABBA blocks (each: 2 unwatched + 2 watched runs)")
    args = p.parse_args(argv)
    sizes = [tuple(int(x) for x in s.lower().split("x")) for s in args.sizes]
    result = {"machine": platform.platform(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
              "framework": "stable-baselines3", "task": "Pendulum-v1", "order": "ABBA", "repeats": args.repeats,
              "sizes": sb3(sizes, args.repeats)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sb3_overhead.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
