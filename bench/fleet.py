"""Benchmark: `watchdog replay` and `watchdog watch` over a fleet of runs (one results/ tree of seeds).

    python -m bench.fleet [--runs 500] [--points 300] [--diverging 5] [--out bench/results/fleet.json]

Generates a tree of ``--runs`` synthetic OpenRL runs (``logs/<tag>/<tag>/events.out.tfevents.*``,
three tags, ``--points`` logged iterations each; ``--diverging`` of them with a value loss climbing
1.15x per iteration from 70 % of the run). Each distinct curve is written once with
``watchdog.tfevents.ScalarWriter`` and its files are copied to the runs that share it (8 healthy
variants + 1 diverging). Then times, in this one process:

(a) a full replay pass: ``find_run_dirs`` + ``replay_run`` per run (what ``watchdog replay TREE`` does);
(b) the first ``watch`` poll over the tree (discovery, listing every run, reading everything);
(c) the settling poll after it (our event logs were just created, so folders are listed again) and a
    steady poll with no change (stats only);
(d) an incremental poll after 5 runs grew by 10 points each (appended to their existing files);
(e) writing the Prometheus textfile for the fleet.

Checks the verdicts/alarms (exactly the diverging runs) and writes ``bench/results/fleet.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from watchdog.config import WatchdogConfig
from watchdog.console import WatchdogConsole
from watchdog.replay import find_run_dirs, replay_run
from watchdog.tfevents import ScalarWriter, encode_record, encode_scalar_event
from watchdog.watch import Watcher, write_prometheus

RESULTS = Path(__file__).resolve().parent / "results" / "fleet.json"
TAGS = ("value_loss", "critic_grad_norm", "average_step_reward")
SPI = 1000
HEALTHY_VARIANTS = 8


def values(it: int, variant: int, diverge_at: int | None) -> dict[str, float]:
    vl = 0.006 * (1 + 0.3 * math.sin(it * 0.7 + variant)) + 2.0 * math.exp(-it / 10)
    if diverge_at is not None and it >= diverge_at:
        vl *= 1.15 ** (it - diverge_at)
    return {"value_loss": vl, "critic_grad_norm": 0.1 * math.sqrt(vl / 0.006),
            "average_step_reward": 0.02 + 0.001 * math.sin(it * 0.3 + variant)}


def write_template(run: Path, points: int, variant: int, diverge_at: int | None) -> None:
    writers = {tag: ScalarWriter(run / "logs" / tag / tag) for tag in TAGS}
    for it in range(points):
        for tag, v in values(it, variant, diverge_at).items():
            writers[tag].add_scalar(tag, v, (it + 1) * SPI)
    for w in writers.values():
        w.close()


def generate(root: Path, runs: int, points: int, diverging: int) -> tuple[list[Path], set[str]]:
    templates = root / "_templates"
    diverge_at = int(points * 0.7)
    for v in range(HEALTHY_VARIANTS):
        write_template(templates / f"healthy_{v}", points, v, None)
    write_template(templates / "diverging", points, 0, diverge_at)
    tree = root / "results"
    tree.mkdir()
    step = max(1, runs // max(1, diverging))
    bad = {f"seed_{i:04d}" for i in range(step // 2, runs, step)} if diverging else set()
    bad = set(sorted(bad)[:diverging])
    paths = []
    for i in range(runs):
        name = f"seed_{i:04d}"
        src = templates / ("diverging" if name in bad else f"healthy_{i % HEALTHY_VARIANTS}")
        shutil.copytree(src, tree / name)
        paths.append(tree / name)
    return paths, bad


def grow(run: Path, start_it: int, n: int, variant: int) -> None:
    """Append n iterations to the run's existing event files (a live writer's next records)."""
    for tag in TAGS:
        (path,) = (run / "logs" / tag / tag).glob("events.out.tfevents.*")
        with open(path, "ab") as fh:
            for it in range(start_it, start_it + n):
                fh.write(encode_record(encode_scalar_event(tag, values(it, variant, None)[tag], (it + 1) * SPI,
                                                           time.time())))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--points", type=int, default=300)
    ap.add_argument("--diverging", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_fleet_") as tmp:
        root = Path(tmp)
        gen_s, (paths, bad) = timed(lambda: generate(root, args.runs, args.points, args.diverging))
        tree = root / "results"
        tree_bytes = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        print(f"generated {args.runs} runs x {args.points} points ({tree_bytes / 1e6:.1f} MB) in {gen_s:.1f} s; "
              f"diverging: {sorted(bad)}")
        time.sleep(0.2)  # let the folders' mtimes settle (a real tree is older than this)

        # (a) replay
        cfg = WatchdogConfig()
        replay_s, reports = timed(lambda: [replay_run(r, cfg) for r in find_run_dirs([tree])])
        replay_diverged = {Path(r.run).name for r in reports if r.verdict == "diverged"}
        print(f"(a) replay pass: {replay_s:.2f} s ({replay_s / len(reports) * 1e3:.1f} ms/run); "
              f"diverged {len(replay_diverged)}")

        # (b)-(e) watch
        console = WatchdogConsole(file=io.StringIO(), rich=False)
        prom = root / "watchdog.prom"
        w = Watcher(tree, console=console, fleet=True)
        first_s, _ = timed(w.poll)
        n_records = sum(r.last.iteration + 1 for r in w.runs if r.last)
        settle_s, _ = timed(w.poll)
        steady_s, steady_new = timed(w.poll)
        grown = [paths[i] for i in range(0, len(paths), max(1, len(paths) // 5))][:5]
        grown = [p for p in grown if p.name not in bad][:5]
        for p in grown:
            grow(p, args.points, 10, int(p.name.split("_")[1]) % HEALTHY_VARIANTS)
        reads_before = sum(r.follower.reads for r in w.runs)
        incr_s, _ = timed(w.poll)
        incr_reads = sum(r.follower.reads for r in w.runs) - reads_before
        grown_last = {r.name: r.last.iteration for r in w.runs if r.run_dir in grown}
        prom_s, _ = timed(lambda: write_prometheus(prom, w.runs))
        final_s, _ = timed(w.flush)
        watch_alarmed = {r.name for r in w.runs if r.alarms}
        w.close("bench done")
        scans = sum(r.follower.scans for r in w.runs)
        print(f"(b) first watch poll: {first_s:.2f} s ({len(w.runs)} runs, {n_records} records judged)")
        print(f"(c) settling poll: {settle_s * 1e3:.1f} ms; steady poll, nothing changed: {steady_s * 1e3:.1f} ms "
              f"(new data: {steady_new})")
        print(f"(d) incremental poll, {len(grown)} runs grew by 10 points: {incr_s * 1e3:.1f} ms "
              f"({incr_reads} runs read; their last iterations {sorted(set(grown_last.values()))})")
        print(f"(e) prometheus textfile for {len(w.runs)} runs: {prom_s * 1e3:.1f} ms, {prom.stat().st_size} bytes")
        print(f"tree listings over all polls: {scans} for {len(w.runs)} runs")
        ok = replay_diverged == bad and watch_alarmed == bad and incr_reads == len(grown)
        print(f"checks: replay diverged == watch alarmed == generated diverging: {ok}")
        result = {
            "runs": args.runs, "points_per_run": args.points, "tags": len(TAGS), "diverging": sorted(bad),
            "tree_bytes": tree_bytes, "generate_seconds": round(gen_s, 2),
            "replay_pass_seconds": round(replay_s, 3), "replay_ms_per_run": round(replay_s / len(reports) * 1e3, 2),
            "watch_first_poll_seconds": round(first_s, 3), "watch_records_judged_first_poll": n_records,
            "watch_settling_poll_ms": round(settle_s * 1e3, 2), "watch_steady_poll_ms": round(steady_s * 1e3, 2),
            "watch_incremental_poll_ms": round(incr_s * 1e3, 2), "incremental_grown_runs": len(grown),
            "incremental_points_per_run": 10, "incremental_runs_read": incr_reads,
            "prometheus_write_ms": round(prom_s * 1e3, 2), "final_flush_ms": round(final_s * 1e3, 2),
            "tree_listings_total": scans, "checks_ok": ok,
            "python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count(),
            "total_seconds": round(time.perf_counter() - t_all, 1),
        }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"total {result['total_seconds']} s; wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
