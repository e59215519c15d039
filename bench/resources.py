"""What reading the resource counters costs: ``ResourceSampler.sample()`` alone, and inside a watched
push_lite run (once per iteration, as the live hook calls it), against the iteration it is part of.
Writes bench/results/resources.json.

    python -m bench.resources [--samples 5000] [--envs 64] [--iterations 8]

On a CUDA machine it also times the CUDA path (torch's allocator counters; NVML when ``pynvml`` is
importable) and runs the training on the GPU; on CPU only the host path (``/proc/self/statm``).
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

import torch

from watchdog.resources import ResourceSampler

RESULTS = Path(__file__).resolve().parent / "results"


def time_samples(device: str, n: int) -> dict:
    """Microseconds per ``sample()`` call, ``n`` calls in a row."""
    sampler = ResourceSampler(device)
    keys = sorted(sampler.sample(0))
    took = []
    for i in range(n):
        start = time.perf_counter()
        sampler.sample(i)
        took.append((time.perf_counter() - start) * 1e6)
    took.sort()
    return {"device": device, "calls": n, "median_us": round(statistics.median(took), 1),
            "p99_us": round(took[int(0.99 * (n - 1))], 1), "keys": keys}


def in_training(envs: int, iterations: int) -> dict:
    """The sampler's time per call inside a watched push_lite run, and the iteration's time."""
    import watchdog.resources as resources
    from openrl_ws.train import main as train_main

    sample_s: list[float] = []
    original = resources.ResourceSampler.sample

    def timed(self, env_steps):
        start = time.perf_counter()
        out = original(self, env_steps)
        sample_s.append(time.perf_counter() - start)
        return out

    resources.ResourceSampler.sample = timed
    try:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            code = train_main(["--num_envs", str(envs), "--episode_length", "100", "--seed", "0", "--watchdog",
                               "--train_timesteps", str(envs * 100 * iterations), "--run_dir", f"{tmp}/run",
                               "--save_interval", str(10**12)])
            wall = time.perf_counter() - start
            from watchdog.eventlog import read_events

            rates = [e["metrics"].get("sys/steps_per_s") for e in read_events(Path(tmp) / "run" / "watchdog_events.jsonl").events
                     if e["event"] == "metrics"]
    finally:
        resources.ResourceSampler.sample = original
    rates = [r for r in rates if r is not None]
    seconds_per_iteration = statistics.median(envs * 100 / r for r in rates) if rates else wall / iterations
    per_call = statistics.median(sample_s)
    return {"envs": envs, "iterations": iterations, "exit_code": code, "calls": len(sample_s),
            "sample_median_us": round(per_call * 1e6, 1), "sample_max_us": round(max(sample_s) * 1e6, 1),
            "iteration_median_s": round(seconds_per_iteration, 4),
            "overhead_fraction": per_call / seconds_per_iteration}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--out", default=str(RESULTS / "resources.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    micro = [time_samples("cpu", args.samples)]
    if torch.cuda.is_available():
        micro.append(time_samples("cuda", args.samples))
    loop = in_training(args.envs, args.iterations)
    for m in micro:
        print(f"sample() on {m['device']}: median {m['median_us']} us, p99 {m['p99_us']} us ({len(m['keys'])} keys)")
    print(f"in a watched push_lite run ({loop['envs']} envs x 100 steps): {loop['sample_median_us']} us per "
          f"iteration of {loop['iteration_median_s']:.3f} s = {100 * loop['overhead_fraction']:.4f} %")
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.system()}, "
           f"torch {torch.__version__}, cuda {'yes' if torch.cuda.is_available() else 'no'}",
           "micro": micro, "in_training": loop}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
