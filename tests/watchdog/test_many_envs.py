"""rsl_rl with 1,024 envs (Isaac Lab's scale, tests/data/many_envs): quiet when healthy, a learning-rate
fault rolled back to before it. The event files were written by rsl_rl itself (make_many_envs.py)."""

from __future__ import annotations

from pathlib import Path

from watchdog.replay import find_run_dirs, replay_run

DATA = Path(__file__).resolve().parents[1] / "data" / "many_envs"
HEALTHY = "rsl_rl/push_lite_healthy/logs/2026-11-30_18-00-00"
FAULT = "rsl_rl/push_lite_lr_fault/logs/2026-11-30_18-00-00"


def test_the_data_is_all_here():
    assert {str(p.relative_to(DATA)) for p in find_run_dirs([DATA])} == {HEALTHY, FAULT}


def test_a_healthy_run_with_a_thousand_envs_says_nothing():
    report = replay_run(DATA / HEALTHY)
    info = report.to_dict()
    assert info["framework"].startswith("rsl_rl") and report.iterations == 600 and not info["value_loss_rule"]
    assert report.verdict == "healthy" and [e for e in info["events"] if e["event"] in ("warning", "alarm")] == []


def test_a_learning_rate_fault_with_a_thousand_envs_is_rolled_back_to_before_it():
    """lr x30 from update 300: the value loss 0.05 -> 2.4 (300) -> 66 (302), the return 16.7 -> -6.4."""
    report = replay_run(DATA / FAULT)
    info = report.to_dict()
    assert report.verdict == "diverged" and (info["first_alarm"]["detector"], info["first_alarm"]["iteration"]) == (
        "blowup", 303)
    first = report.would_roll_back[0]
    assert first["onset_iteration"] == 300 and first["to_iteration"] == 290
