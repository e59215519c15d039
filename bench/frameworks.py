"""Other frameworks' scorecard: replay real SB3 (rl-zoo) runs and our real-library test runs.

    python -m bench.frameworks [--zoo DIR] [--data DIR] [--out bench/results/frameworks.json]

For each run, with the default ``WatchdogConfig()`` and the per-framework config replay uses
(``watchdog.frameworks.config_for_run``): the framework, the verdict, warnings, alarms, rollbacks,
whether the absolute value-loss rule ran, the first alarm and the onset; for the faulted test runs
(``*_fault``: fault at iteration 70), the onset error. Also the load time per scalar. No expectation
is asserted here; tests/watchdog/test_frameworks.py holds the specifications.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT.parent / "shared" / "data" / "more_runs" / "sb3"
DATA = ROOT / "tests" / "data" / "frameworks"
RESULTS = ROOT / "bench" / "results" / "frameworks.json"
FAULT_IT = 70


def score(run: Path, label: str) -> dict:
    from watchdog.replay import replay_run

    report = replay_run(run)
    row = {
        "run": label, "framework": report.run_info.get("framework"), "records": report.iterations,
        "verdict": report.verdict, "warnings": len(report.warnings),
        "alarms": sum(e["event"] == "alarm" for e in report.events), "rollbacks": len(report.would_roll_back),
        "value_loss_rule": report.run_info.get("value_loss_rule"),
        "first_alarm": (report.first_alarm or {}).get("iteration"), "onset": (report.onset or {}).get("iteration"),
    }
    if "fault" in label:
        row["onset_error"] = None if report.onset is None else report.onset["iteration"] - FAULT_IT
    return row


SB3_TAGS = ("train/value_loss", "train/policy_gradient_loss", "train/entropy_loss", "train/approx_kl",
            "train/clip_fraction", "train/explained_variance", "train/std", "train/learning_rate",
            "rollout/ep_rew_mean", "rollout/ep_len_mean", "time/fps", "train/loss")
OPENRL_TAGS = ("value_loss", "policy_loss", "dist_entropy", "critic_grad_norm", "actor_grad_norm", "ratio",
               "average_step_reward", "push_reward", "ocb_reward", "collision_punishment", "reach_target_reward",
               "exception_punishment")


def load_speed(iterations: int) -> dict:
    """load_run's time per scalar on one flat event file of ``iterations`` x 12 tags: SB3's tags (the
    framework path, watchdog.frameworks.RecordAssembler) against OpenRL's (replay.tb_records)."""
    import tempfile

    import numpy as np

    from watchdog.replay import load_run
    from watchdog.tfevents import ScalarWriter

    rng = np.random.default_rng(0)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, tags in (("sb3", SB3_TAGS), ("openrl", OPENRL_TAGS)):
            run = Path(tmp) / name
            with ScalarWriter(run) as w:
                for i in range(1, iterations + 1):
                    for tag in tags:
                        w.add_scalar(tag, float(rng.random()), i * 64, wall_time=1.7e9 + i)
            best = min(_timed(load_run, run) for _ in range(3))
            out[name] = {"seconds": round(best, 3), "us_per_point": round(best / (iterations * len(tags)) * 1e6, 2)}
    return out


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", default=str(ZOO), help="folder of real SB3 runs (default ../shared/data/more_runs/sb3)")
    ap.add_argument("--data", default=str(DATA), help="our real-library test runs")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--iterations", type=int, default=20_000, help="size of the synthetic run for the load speed")
    args = ap.parse_args(argv)
    from watchdog.replay import find_run_dirs

    rows = []
    for base in (Path(args.zoo), Path(args.data)):
        if not base.is_dir():
            print(f"skipped (not found): {base}")
            continue
        for run in find_run_dirs([base]):
            rows.append(score(run, str(run.relative_to(base.parent))))
    cols = ("run", "framework", "records", "verdict", "warnings", "alarms", "rollbacks", "value_loss_rule",
            "first_alarm", "onset", "onset_error")
    print(" | ".join(cols))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in cols))
    speed = load_speed(args.iterations)
    print(f"load_run, {args.iterations} iterations x 12 tags: " +
          ", ".join(f"{k} {v['us_per_point']} us/point" for k, v in speed.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"runs": rows, "load_speed": speed, "date": time.strftime("%Y-%m-%d")},
                                         indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
