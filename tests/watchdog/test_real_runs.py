"""The five real MAPush runs are the healthy reference: no alarm, no rollback after warm-up."""

from __future__ import annotations

import json

import pytest

from tests.watchdog.drive import drive
from watchdog.logtxt import parse_log_txt

RUNS = ("10-15-23_cuboid", "11-03-16_cuboid", "11-06-17_cuboid", "11-07-17_cuboid", "baseline_mappo_upper")


def steps_per_iteration(mapush_runs, run: str) -> int:
    """Env steps per PPO iteration, from the data's own runs.json."""
    return int(json.loads((mapush_runs / "runs.json").read_text())[run]["steps_per_iteration"])


@pytest.mark.parametrize("run", RUNS)
def test_real_run_raises_no_alarm_and_no_rollback(mapush_runs, run):
    parsed = parse_log_txt(mapush_runs / run / "log.txt", steps_per_iteration=steps_per_iteration(mapush_runs, run))
    assert len(parsed.records) >= 199
    out = drive(parsed.records)
    assert out.kinds("alarm") == [], [e["reason"] for e in out.kinds("alarm")]
    assert out.rollbacks == [] and out.stops == []
    threshold = next(d for d in out.watchdog.detectors if d.name == "value_loss_threshold")
    assert threshold.armed, "the 0.2 rule must arm once value loss settles"
    assert len(out.kinds("stable_checkpoint")) >= 20


def test_real_run_with_spliced_divergence_is_caught_before_the_crash(mapush_runs):
    """Run8's story on Run8's own curve: value loss climbs from iteration 870, NaN at 975."""
    records = parse_log_txt(mapush_runs / "11-07-17_cuboid" / "log.txt", steps_per_iteration=100_000).records
    for rec in records:
        if rec.iteration >= 870:
            rec.metrics["train/value_loss"] *= 1.06 ** (rec.iteration - 870)
        if rec.iteration >= 975:
            rec.metrics["train/value_loss"] = float("nan")
    out = drive(records, stop_after_rollback=True)
    rollback = out.rollbacks[0]
    assert rollback.from_iteration < 975
    assert abs(rollback.onset.iteration - 870) <= 10
    assert rollback.target.iteration < 870
    first_warning = min(e["iteration"] for e in out.kinds("warning") if e["iteration"] >= 870)
    assert first_warning < rollback.from_iteration
