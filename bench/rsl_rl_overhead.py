"""In-loop watchdog cost per PPO iteration for rsl_rl, as watched / unwatched.

Real rsl_rl PPO (``OnPolicyRunner`` vs ``WatchedOnPolicyRunner``) on push_lite as an rsl_rl
``VecEnv`` (``examples/push_lite_vecenv.py``, the example's network and PPO settings), the same
seed and sizes, one process, runs interleaved in ABBA order (unwatched, watched, watched,
unwatched, ...) so machine load hits both alike. Each run's seconds per iteration are timed
between the starts of its second and last update (set-up and the first iteration outside); the
figure is the ratio of the medians, of wall time (what a user waits) and of this process's CPU
time (``time.process_time``: far less sensitive to other processes' load on a shared machine, but
blind to I/O waits such as the checkpoints' fsyncs). Both runs write rsl_rl's TensorBoard events and print-out (to
a null stream); the watched one adds the whole watchdog: metric record, detectors, policy, event
log, status line (to a null console), ``watchdog/*`` scalars, stable checkpoints to memory and disk
every 10 iterations. ``hook_ms`` is the time inside the watchdog's per-iteration judgement alone,
a load-independent view of the same cost.

    python -m bench.rsl_rl_overhead [--sizes 32x24 512x24] [--iterations 20] [--repeats 2]

Sizes are ``WORLDSxSTEPS``: push_lite worlds (2 rsl_rl envs each) x rollout steps per env.
Writes bench/results/rsl_rl_overhead.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def rsl_rl_run(worlds: int, steps: int, iterations: int, watched: bool, hook_seconds: list[float]) -> tuple[float, float]:
    """Wall and CPU seconds per PPO iteration of one rsl_rl run (the first iteration excluded)."""
    import torch
    from rsl_rl.runners import OnPolicyRunner

    sys.path.insert(0, str(ROOT / "examples"))
    from push_lite_vecenv import PushLiteRslEnv
    from rsl_rl_ppo import train_cfg

    from watchdog.console import WatchdogConsole
    from watchdog.integrations.rsl_rl import WatchedOnPolicyRunner

    torch.set_num_threads(1)
    torch.manual_seed(0)
    stamps: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, contextlib.redirect_stdout(io.StringIO()):
        env = PushLiteRslEnv(worlds, steps_per_iteration=steps, seed=0)
        if watched:
            runner = WatchedOnPolicyRunner(env, train_cfg(0, steps), tmp, console=WatchdogConsole(io.StringIO()))
            original = runner._judge

            def timed(record):
                start = time.perf_counter()
                try:
                    return original(record)
                finally:
                    hook_seconds.append(time.perf_counter() - start)

            runner._judge = timed
        else:
            runner = OnPolicyRunner(env, train_cfg(0, steps), tmp)
        runner.logger.git_status_repos.clear()  # not timed anyway; keeps rsl_rl's git diff out of tmp
        update = runner.alg.update

        def stamped_update():
            stamps.append((time.perf_counter(), time.process_time()))
            return update()

        runner.alg.update = stamped_update
        runner.learn(iterations)
        runner.logger.writer.close()  # rsl_rl leaves its SummaryWriter open (a thread still writing into tmp)
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


def main(argv: list[str] | None = None) -> None:
    overhead_main(argv, doc=__doc__, framework="rsl_rl", dist="rsl-rl-lib", run=rsl_rl_run,
                  task="push_lite (examples/push_lite_vecenv.py)", default_sizes=["32x24", "512x24"],
                  sizes_help="WORLDSxSTEPS per size (32x24: the example's rollout; 512x24: 1024 envs, Isaac Lab's 24 steps)",
                  results=RESULTS)


if __name__ == "__main__":
    main()
