"""The five real MAPush runs are the healthy reference: no alarm, no rollback after warm-up."""

from __future__ import annotations

import copy
import json

import pytest

from tests.watchdog.drive import drive
from watchdog.logtxt import parse_log_txt
from watchdog.signals import STEP_REWARD

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


def test_policy_std_runaway_in_a_real_run_is_a_warning_with_its_distance_to_nan(mapush_runs):
    """11-06-17's dist_entropy climbs from 4.3 to 125.2: a mean log-std of 40.3 per action dim, near the
    float32 overflow (about 43). The watchdog says so, with the climb rate and iterations left; the
    run itself finished, so it is no alarm; the warning is said once, advisory: the run does not stay in
    WARNING (that would stop its stable checkpoints for the remaining 220 iterations), nor enter it and then
    "recover" while its std still climbs (until session 16: recovered at 1100)."""
    parsed = parse_log_txt(mapush_runs / "11-06-17_cuboid" / "log.txt",
                           steps_per_iteration=steps_per_iteration(mapush_runs, "11-06-17_cuboid"))
    out = drive(parsed.records)
    found = [e for e in out.kinds("warning") if e["detector"] == "policy_std"]
    assert len(found) == 1, found
    warning = found[0]
    assert warning["signal"] == "train/dist_entropy" and warning["threshold"] == 43.0
    assert 30 < warning["value"] < 36  # mean log-std per dim when it is first ~300 iterations from 43
    eta = float(warning["reason"].split("NaN in about ")[1].split()[0])
    assert 250 <= eta <= 300
    assert warning["advisory"] is True
    assert out.kinds("alarm") == [] and out.kinds("recovered") == [] and out.watchdog.state.value == "healthy"
    stable = [e["iteration"] for e in out.kinds("stable_checkpoint")]
    assert any(warning["iteration"] < it <= warning["iteration"] + 25 for it in stable)  # they go on
    last = parsed.records[-1].metrics["train/dist_entropy"]
    assert (last - 3 * 1.4189385) / 3 == pytest.approx(40.3, abs=0.1)  # entropy 125.2 at the end


@pytest.mark.parametrize("run", [r for r in RUNS if r != "11-06-17_cuboid"])
def test_other_real_runs_are_far_from_the_std_overflow(mapush_runs, run):
    parsed = parse_log_txt(mapush_runs / run / "log.txt", steps_per_iteration=steps_per_iteration(mapush_runs, run))
    out = drive(parsed.records)
    assert [e for e in out.events if e.get("detector") == "policy_std"] == []


@pytest.mark.parametrize(("onset", "rate"), [(1100, 1.03), (1150, 1.06), (1200, 1.1)])
def test_value_loss_onset_is_not_pulled_back_by_the_standing_std_warning(mapush_runs, onset, rate):
    """11-06-17 has warned about its std since iteration 1075 (climb onset: iteration 85). A value-loss
    divergence spliced in after that is still dated by the value loss, not by the std warning."""
    records = parse_log_txt(mapush_runs / "11-06-17_cuboid" / "log.txt",
                           steps_per_iteration=steps_per_iteration(mapush_runs, "11-06-17_cuboid")).records
    for rec in records:
        if rec.iteration >= onset:
            rec.metrics["train/value_loss"] *= rate ** (rec.iteration - onset)
    out = drive(records, stop_after_rollback=True)
    rollback = out.rollbacks[0]
    assert rollback.alarm.detector == "value_loss_threshold"
    assert abs(rollback.onset.iteration - onset) <= 10


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


def _all_real_runs():
    from bench.real_runs import DATA, load_real_runs

    if not (DATA / "mapush_runs" / "11-07-17_cuboid").is_dir():
        return []
    return load_real_runs(DATA)


REAL_RUNS = _all_real_runs()


@pytest.mark.skipif(not REAL_RUNS, reason="../shared/data is not checked out")
@pytest.mark.parametrize("run", REAL_RUNS, ids=lambda r: f"{r.group}/{r.name}")
def test_every_real_healthy_run_is_quiet(run):
    """Every real run in ../shared/data (MAPush at log_interval; SB3 with the 0.2 rule off, its value
    targets are not normalised): no alarm, no rollback, not left in WARNING, at most one warning."""
    from bench.real_runs import config_for

    out = drive(run.records, config_for(run))
    assert out.kinds("alarm") == [], [e["reason"] for e in out.kinds("alarm")]
    assert out.rollbacks == [] and out.stops == []
    assert out.watchdog.state.value == "healthy"
    assert len(out.kinds("warning")) <= 1, [e["reason"] for e in out.kinds("warning")]


@pytest.mark.skipif(not REAL_RUNS, reason="../shared/data is not checked out")
@pytest.mark.parametrize("name", ["Acrobot-v1_1", "Acrobot-v1_3"])
def test_a_value_loss_climb_with_a_reward_collapse_in_a_real_sb3_run_is_divergence(name):
    """Without normalised value targets the trend only warns (a climbing value loss may be a policy
    learning); a x20 climb while the return falls back to its start is divergence all the same."""
    from bench.real_runs import config_for

    run = next(r for r in REAL_RUNS if r.name == name)
    records = copy.deepcopy(run.records)
    onset = records[len(records) * 2 // 3].iteration
    start = sorted(r.metrics[STEP_REWARD] for r in records[:10] if STEP_REWARD in r.metrics)[5]
    for rec in records:
        d = rec.iteration - onset
        if d >= 0 and "train/value_loss" in rec.metrics:
            rec.metrics["train/value_loss"] *= min(20.0, 1.15 ** (d + 1))
        if d >= 10 and STEP_REWARD in rec.metrics:  # the return falls to its start within 5 rollouts
            w = min(1.0, (d - 10) / 5)
            rec.metrics[STEP_REWARD] = (1 - w) * rec.metrics[STEP_REWARD] + w * start
    cfg = config_for(run)
    assert cfg.policy.reward_corroborates and cfg.trend.alarm_ratio is None
    out = drive(records, cfg, stop_after_rollback=True)
    assert out.rollbacks and onset < out.rollbacks[0].from_iteration <= onset + 20
    assert out.first("alarm")["detector"] == "corroboration"
    alone = drive(records, cfg.model_copy(update={"policy": cfg.policy.model_copy(update={"reward_corroborates": False})}))
    assert not alone.rollbacks and alone.kinds("warning")  # the same climb, judged without the returns


@pytest.mark.skipif(not REAL_RUNS, reason="../shared/data is not checked out")
@pytest.mark.parametrize("name", ["CartPole-v1_1", "Pendulum-v0_2", "Acrobot-v1_3"])
def test_blow_up_spliced_into_a_real_sb3_run_is_caught_by_the_scale_free_rules(name):
    """SB3 runs are judged without the 0.2 rule: a x100-and-climbing blow-up is still an alarm."""
    from bench.real_runs import config_for

    run = next(r for r in REAL_RUNS if r.name == name)
    records = copy.deepcopy(run.records)
    onset = records[len(records) * 2 // 3].iteration
    for rec in records:
        if rec.iteration >= onset and "train/value_loss" in rec.metrics:
            rec.metrics["train/value_loss"] *= 1.5 ** (rec.iteration - onset + 1)
    out = drive(records, config_for(run), stop_after_rollback=True)
    assert out.rollbacks, "the blow-up must be divergence"
    # runs that start high (Pendulum: 5,500 -> 5) must first rise 3x above that start: up to ~20 iterations
    assert out.rollbacks[0].from_iteration <= onset + 25
    assert abs(out.rollbacks[0].onset.iteration - onset) <= 15  # CartPole's bimodal value loss blurs the fit
