"""Detectors and the policy on synthetic curves: what fires, when, and what does not."""

from __future__ import annotations

import math

import numpy as np

import pytest

from tests.watchdog.drive import drive
from tests.watchdog.synthetic import diverge, first_crossing, healthy, records
from watchdog.config import WatchdogConfig
from watchdog.detectors import ValueLossThreshold, build_detectors
from watchdog.signals import CRITIC_GRAD_NORM, VALUE_LOSS, MetricRecord

N = 260
ONSET = 180


def test_healthy_curve_never_alarms():
    out = drive(records(healthy(N, seed=3)))
    assert out.kinds("alarm") == [] and out.rollbacks == []
    assert len(out.kinds("stable_checkpoint")) > 10


@pytest.mark.parametrize(
    ("values", "patience", "patience_iters", "expected_alarm_index"),
    [
        # high start (not armed) -> settles -> armed -> crossing held for 2 points
        ([1.0] * 5 + [0.01] * 60 + [0.3, 0.3, 0.3], 2, 0, 66),
        ([1.0] * 5 + [0.01] * 60 + [0.3, 0.01, 0.3, 0.3], 2, 0, 68),  # counter resets on recovery
        ([1.0] * 5 + [0.01] * 60 + [0.3], 1, 0, 65),
        ([1.0] * 5 + [0.01] * 60 + [0.3] * 8, 2, 5, 70),  # the streak must also span 5 iterations
        ([0.01] * 70 + [0.05, 0.3], 2, 0, 71),  # departed (5x) just before crossing: caught on the crossing
        ([0.5] * 80, 1, 0, None),  # never settles below 0.1 -> never armed -> no alarm
        ([0.01] * 60 + [0.19] * 20, 1, 0, None),  # below the threshold is fine
        ([0.09] * 70 + [0.21] * 10, 1, 0, None),  # above 0.2 but only 2.3x the settled level: no departure
    ],
)
def test_value_loss_rule_fires_on_first_armed_departing_crossing(values, patience, patience_iters,
                                                                 expected_alarm_index):
    cfg = WatchdogConfig.model_validate(
        {"value_loss": {"patience_points": patience, "patience_iters": patience_iters, "arm_iters": 0}})
    det = ValueLossThreshold(cfg.value_loss, cfg.warmup)
    fired = None
    for i, v in enumerate(values):
        verdict = det.update(MetricRecord.from_mapping(i, i, {"value_loss": v}))
        if verdict is not None and fired is None:
            fired = i
            assert verdict.level == "alarm" and verdict.threshold == 0.2 and verdict.value == pytest.approx(values[i])
    assert fired == expected_alarm_index


@pytest.mark.parametrize("shape,rate", [("exp", 0.08), ("exp", 0.15), ("ramp", 0.1), ("ramp", 0.05)])
def test_slow_climb_is_divergence_soon_after_the_crossing_and_onset_is_close(shape, rate):
    rows = diverge(healthy(N, seed=1), ONSET, shape, rate=rate)
    out = drive(records(rows), stop_after_rollback=True)
    cross = first_crossing(rows, ONSET)
    assert out.rollbacks, "the climb must be declared divergence"
    rollback = out.rollbacks[0]
    assert rollback.from_iteration <= cross + 10  # noisy per-iteration data: the departure must span 5 iterations
    assert abs(rollback.onset.iteration - ONSET) <= 5
    assert rollback.target.iteration < ONSET


def test_step_is_divergence_with_exact_onset():
    rows = diverge(healthy(N, seed=2), ONSET, "step")
    out = drive(records(rows), stop_after_rollback=True)
    assert out.rollbacks and abs(out.rollbacks[0].onset.iteration - ONSET) <= 2
    assert out.rollbacks[0].target.iteration < ONSET


def test_single_spike_that_recovers_raises_no_rollback():
    rows = diverge(healthy(N, seed=4), ONSET, "spike")
    assert rows[ONSET]["value_loss"] > 0.2
    out = drive(records(rows))
    assert out.rollbacks == [] and out.kinds("alarm") == []


def test_reward_only_collapse_warns_but_does_not_roll_back():
    rows = diverge(healthy(N, seed=5), ONSET, "reward")
    out = drive(records(rows))
    warnings = [e for e in out.kinds("warning") if e["detector"] == "reward_collapse"]
    assert warnings and ONSET <= warnings[0]["iteration"] <= ONSET + 3
    assert out.rollbacks == []


def test_corroboration_keeps_a_warnings_onset_hint_of_iteration_0():
    """A review of session 29: ``policy.corroboration`` took an onset hint of 0 (a run whose trouble began at its
    first iteration) for none, and used the warning's own iteration instead."""
    from watchdog.detectors import Verdict
    from watchdog.policy import Policy

    warnings = [Verdict("trend", "warning", VALUE_LOSS, 1.0, 0.5, "x", 60, 6000, onset_hint=0),
                Verdict("critic_grad_norm", "warning", CRITIC_GRAD_NORM, 5.0, 1.0, "y", 60, 6000, onset_hint=40)]
    policy = Policy(WatchdogConfig.model_validate({"policy": {"corroboration": 2}}))
    alarm = policy._corroborated(warnings)
    assert alarm.detector == "corroboration" and alarm.onset_hint == 0


def test_reward_collapse_with_corroboration_is_divergence():
    """A long run (the trend's baseline spans 250 iterations, 150 behind): its warning and the reward's."""
    n, onset = 700, 550
    rows = diverge(healthy(n, seed=5), onset, "exp", rate=0.05)
    for r in rows[onset + 10:]:
        r["average_step_reward"] = -0.02
    cfg = WatchdogConfig.model_validate({"policy": {"corroboration": 2}})
    out = drive(records(rows), cfg, stop_after_rollback=True)
    assert out.rollbacks and out.rollbacks[0].alarm.detector == "corroboration"
    assert out.rollbacks[0].from_iteration < first_crossing(rows, onset)


@pytest.mark.parametrize("nan_at", [30, ONSET, ONSET + 20])
def test_nan_always_rolls_back_immediately(nan_at):
    rows = diverge(healthy(N, seed=6), ONSET, "exp", rate=0.05, nan_at=nan_at)
    rows[nan_at]["value_loss"] = math.nan  # also during warm-up
    out = drive(records(rows), stop_after_rollback=True)
    assert out.rollbacks, "NaN must roll back"
    assert out.rollbacks[0].from_iteration <= nan_at
    assert out.kinds("alarm")[0]["detector"] in ("nonfinite", "value_loss_threshold", "trend")


def test_nan_onset_uses_the_climb_before_it():
    rows = diverge(healthy(N, seed=7), ONSET, "exp", rate=0.3, nan_at=ONSET + 8)
    cfg = WatchdogConfig.model_validate({"value_loss": {"enabled": False}, "trend": {"enabled": False}})
    out = drive(records(rows), cfg, stop_after_rollback=True)
    assert out.rollbacks[0].alarm.detector == "nonfinite"
    assert abs(out.rollbacks[0].onset.iteration - ONSET) <= 5


def _surrogate_blow_up(n: int, *, surge_at: int | None, nan_at: int, seed: int = 11) -> list[MetricRecord]:
    """A settled value loss (no rise at all) and PPO's surrogate loss at +-0.01 until ``surge_at``, then
    x30 per iteration (the policy leaving its trust region), every loss NaN from ``nan_at``."""
    rng = np.random.default_rng(seed)
    out = []
    for it in range(n):
        pl = rng.normal(0, 0.01)
        if surge_at is not None and it >= surge_at:
            pl = 0.01 * 30.0 ** (it - surge_at + 1)
        vl = 0.05 * math.exp(rng.normal(0, 0.1))
        if it >= nan_at:
            vl = pl = math.nan
        out.append(MetricRecord.from_mapping(it, it * 100, {"value_loss": vl, "policy_loss": pl}))
    return out


@pytest.mark.parametrize("surge_at", [None, 144])
def test_a_nan_after_the_surrogate_loss_blew_up_is_dated_where_it_began(surge_at):
    """NaN out of a value loss that never rose is dated exactly at the NaN, unless the surrogate (policy)
    loss blew up before it (a real skrl run: 0.01 -> 7.7 -> 7.5e12 over 68-71, NaN at 72): then the fit
    on its size dates it, and the rollback goes to a checkpoint from before the blow-up."""
    out = drive(_surrogate_blow_up(200, surge_at=surge_at, nan_at=150), stop_after_rollback=True)
    rollback = out.rollbacks[0]
    assert rollback.alarm.detector == "nonfinite" and rollback.alarm.iteration == 150
    if surge_at is None:
        assert (rollback.onset.iteration, rollback.onset.method) == (150, "exact")
    else:
        assert surge_at - 3 <= rollback.onset.iteration <= surge_at and rollback.onset.method == "hinge"
        assert rollback.target.iteration < surge_at


@pytest.mark.parametrize("nan_at", [119, 279])
def test_a_nan_in_a_real_run_whose_surrogate_loss_only_wanders_is_dated_at_the_nan(nan_at):
    """A real SB3 Pendulum run's surrogate loss wanders around zero, so its log size is noisy, and a change-point
    fit on it finds a "rise" before a NaN at 119 or 279 (dated 106 and 247 when it was read unconditionally).
    It dates a NaN only after a blow-up (the median size of its last 3 values 20x the top of its range
    before, kl_surge's test): here the NaN is a bad batch, dated exactly where it is."""
    from pathlib import Path

    from watchdog.frameworks import config_for_run
    from watchdog.replay import load_run

    run = load_run(Path(__file__).resolve().parents[1] / "data" / "long_runs" / "sb3" / "pendulum_healthy" / "PPO_1")
    recs = [r for r in run.records if r.iteration <= nan_at]
    last = recs[-1]
    assert last.iteration == nan_at
    recs[-1] = MetricRecord(last.iteration, last.env_steps, {**last.metrics, "train/value_loss": math.nan,
                                                              "train/policy_loss": math.nan})
    out = drive(recs, config_for_run(WatchdogConfig(), run.info), stop_after_rollback=True)
    assert (out.rollbacks[0].alarm.detector, out.rollbacks[0].onset.iteration) == ("nonfinite", nan_at)
    assert out.rollbacks[0].onset.method == "exact"


def test_escalation_then_budget_stop():
    rows = healthy(400, seed=8)
    for onset in (150, 230, 310, 380):
        rows = diverge(rows, onset, "step")
        for i in range(onset + 6, min(onset + 40, len(rows))):
            rows[i] = dict(healthy(400, seed=onset)[i])  # recovers after the rollback
    out = drive(records(rows))
    assert [r.number for r in out.rollbacks] == [1, 2, 3]
    assert [r.lr_scale for r in out.rollbacks] == [1.0, 0.5, 0.25]
    assert out.stops and "budget" in out.stops[0].reason
    assert out.kinds("stop")[0]["rollbacks"] == 3


def test_alert_mode_never_rolls_back():
    rows = diverge(healthy(N, seed=9), ONSET, "exp")
    out = drive(records(rows), WatchdogConfig.model_validate({"action": "alert"}))
    assert out.rollbacks == [] and out.stops == []
    assert len(out.kinds("alarm")) == 1


def test_no_stable_checkpoint_during_warning():
    n, onset = 700, 550
    rows = diverge(healthy(n, seed=10), onset, "exp", rate=0.04)
    out = drive(records(rows), stop_after_rollback=True)
    first_warning = next(e["iteration"] for e in out.kinds("warning") if e["iteration"] >= onset)
    saved_after = [e for e in out.kinds("stable_checkpoint") if e["iteration"] >= first_warning]
    assert saved_after == []


def test_state_dicts_round_trip_and_resume_identically():
    rows = diverge(healthy(N, seed=11), ONSET, "exp", rate=0.1)
    recs = records(rows)
    full = drive(recs, stop_after_rollback=True)
    half = drive(recs[:ONSET])
    saved = half.watchdog.state_dict()
    resumed = drive([], None)
    resumed.watchdog.load_state_dict(saved)
    assert resumed.watchdog.state_dict() == saved
    for det_a, det_b in zip(half.watchdog.detectors, resumed.watchdog.detectors):
        assert det_a.state_dict() == det_b.state_dict()
    # feeding the rest gives the same alarm at the same iteration
    events: list[dict] = []
    resumed.watchdog.listeners.append(events.append)
    alarm_iteration = None
    for rec in recs[ONSET:]:
        resumed.watchdog.observe(rec)
        if any(e["event"] == "alarm" for e in events):
            alarm_iteration = rec.iteration
            break
    assert alarm_iteration == full.rollbacks[0].from_iteration


def test_detectors_accept_bare_and_namespaced_keys():
    bare = MetricRecord.from_mapping(0, 0, {"value_loss": 0.1, "average_step_reward": 1.0})
    ns = MetricRecord.from_mapping(0, 0, {"train/value_loss": 0.1, "rollout/average_step_reward": 1.0})
    assert bare.metrics == ns.metrics
    assert len(build_detectors(WatchdogConfig())) == 14


def _std_records(log_stds, *, dims=3, exact=False):
    """Records whose dist_entropy (or exact largest log-std) follows ``log_stds``."""
    from watchdog.detectors import GAUSSIAN_ENTROPY_PER_DIM

    recs = []
    for i, ls in enumerate(log_stds):
        metrics = {"value_loss": 0.01, "dist_entropy": dims * (GAUSSIAN_ENTROPY_PER_DIM + ls)}
        if exact:
            metrics["log_std_max"] = ls + 5.0  # one dimension ahead of the mean
        recs.append(MetricRecord.from_mapping(i, 1000 * i, metrics))
    return recs


def test_policy_std_climb_warns_then_alarms_by_iterations_left():
    """A log-std climbing 0.1/iteration from 0: 300 iterations from 43 at log-std 13 (it 130), 30 at 40
    (it 400). The onset is where it rose above saturated_log_std 1.0 (it 11): the rollback goes before it."""
    out = drive(_std_records([0.1 * i for i in range(450)]), stop_after_rollback=True)
    warning = next(e for e in out.kinds("warning") if e["detector"] == "policy_std")
    assert warning["iteration"] == 130 and "NaN in about 300 iterations" in warning["reason"]
    alarm = out.first("alarm")
    assert alarm["detector"] == "policy_std" and alarm["iteration"] in (400, 401)  # 30 iterations, to rounding
    assert alarm["onset_iteration"] == 11 and alarm["onset_method"] == "detector"
    assert out.rollbacks[0].target.iteration < 11


@pytest.mark.parametrize("log_stds", [[30.0] * 300, [5.0 - 0.01 * i for i in range(300)], [0.0] * 300])
def test_policy_std_high_but_not_climbing_or_falling_is_quiet(log_stds):
    out = drive(_std_records(log_stds))
    assert [e for e in out.events if e.get("detector") == "policy_std"] == []


def test_policy_std_prefers_the_exact_largest_log_std():
    """Live runs report the largest log-std: one dimension 5 ahead of the mean warns 50 iterations sooner."""
    out = drive(_std_records([0.1 * i for i in range(300)], exact=True))
    warning = next(e for e in out.kinds("warning") if e["detector"] == "policy_std")
    assert warning["signal"] == "train/log_std_max" and warning["iteration"] == 80


def test_policy_std_reads_a_frameworks_mean_std_and_says_so():
    """SB3, rsl_rl and skrl log the mean std: its log is read below the largest (above the entropy's mean log-std)
    and named as what it is, not as the largest (until session 16 it was called the largest log-std)."""
    recs = _std_records([0.1 * i for i in range(300)])
    for rec in recs:
        rec.metrics["train/log_std_mean"] = rec.metrics["train/dist_entropy"] / 3 - 1.4189385 + 2.0
    out = drive(recs)
    warning = next(e for e in out.kinds("warning") if e["detector"] == "policy_std")
    assert warning["signal"] == "train/log_std_mean" and warning["iteration"] == 110
    assert warning["reason"].startswith("policy log of the mean std 13.0 (std 4.4e+05)")


def test_policy_std_config_checks_alarm_inside_warning(tmp_path):
    from watchdog.config import load_watchdog_config
    from watchdog.errors import ConfigError

    path = tmp_path / "wd.yaml"
    path.write_text("policy_std:\n  alarm_within_iters: 400\n")
    with pytest.raises(ConfigError) as err:
        load_watchdog_config(str(path))
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "alarm_within_iters (400)" in message



def _log_interval_records(values, every=5):
    return [MetricRecord.from_mapping(i * every, (i * every + 1) * 1000, {"value_loss": v}) for i, v in enumerate(values)]


def test_sustained_blow_up_in_the_warm_up_is_an_alarm_with_its_onset():
    """rsl_rl-style: value loss settles at 0.01, then x10 per log point from iteration 30 (x100 at 40),
    all inside the 50-iteration warm-up: an alarm within 2 log points of x100, onset within 2 log points."""
    values = [0.5, 0.1, 0.03, 0.012, 0.01, 0.011] + [0.01 * 10 ** k for k in range(0, 8)]
    out = drive(_log_interval_records(values), stop_after_rollback=True)
    alarm = out.first("alarm")
    assert alarm is not None and alarm["detector"] == "blowup"
    assert alarm["iteration"] <= 40 + 2 * 5
    assert abs(alarm["onset_iteration"] - 30) <= 2 * 5


@pytest.mark.parametrize("rise", [30.0, 58.0])
def test_a_single_early_rise_that_holds_is_quiet(rise):
    """go1push_upper's healthy early rise: x30-58 within a few points, then holding or settling back."""
    values = [1.0, 0.03, 0.006, 0.005] + [0.005] * 6 + [0.005 * rise] * 20 + [0.02] * 30
    out = drive(_log_interval_records(values))
    assert out.kinds("alarm") == []


def test_isolated_spikes_never_move_the_blow_up_rule():
    values = ([0.005] * 7 + [0.5]) * 10  # every 8th point 100x: go1push_upper's periodic spikes
    out = drive(_log_interval_records(values))
    assert out.kinds("alarm") == []


def test_detector_state_survives_strict_json_and_resumes_identically():
    """Every detector's state is plain, finite JSON; a watchdog restored from it continues exactly."""
    import json

    from watchdog.pipeline import Watchdog

    rows = diverge(healthy(700, seed=12), 550, "exp", rate=0.05)
    recs = records(rows)
    first = Watchdog()
    for rec in recs[:400]:
        first.observe(rec)
    saved = json.loads(json.dumps(first.detectors_state(), allow_nan=False))
    second = Watchdog()
    second.load_detectors_state(saved)
    for rec in recs[400:]:
        a = [(v.detector, v.level, v.reason) for v in (d.update(rec) for d in first.detectors) if v]
        b = [(v.detector, v.level, v.reason) for v in (d.update(rec) for d in second.detectors) if v]
        assert a == b, rec.iteration


def test_a_resumed_run_warms_up_again():
    """Warm-up counts iterations from a detector's first point, not from iteration 0."""
    cfg = WatchdogConfig()
    det = ValueLossThreshold(cfg.value_loss, cfg.warmup)
    for it in range(500, 500 + cfg.warmup.min_iters + cfg.value_loss.arm_iters + 10):
        det.update(MetricRecord.from_mapping(it, it, {"value_loss": 0.01}))
        if it < 500 + cfg.warmup.min_iters:
            assert not det.armed, it
    assert det.armed


def _still_falling(n: int, seed: int, jump_at: int | None = None, height: float = 10.0) -> list[MetricRecord]:
    """A value loss still falling through 0.65 -> 0.05 (never settled below 0.1 for long), logged every 5
    iterations like 10-15-23_cuboid; from ``jump_at`` on it is ``height`` x higher."""
    rng = np.random.default_rng(seed)
    out = []
    for it in range(0, n, 5):
        vl = 0.05 + 0.6 * math.exp(-it / 200) * math.exp(rng.normal(0, 0.15))
        if jump_at is not None and it >= jump_at:
            vl *= height
        out.append(MetricRecord.from_mapping(it, it * 100, {"value_loss": vl, "critic_grad_norm": 0.1 * math.exp(rng.normal(0, 0.2))}))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_a_jump_while_the_loss_is_still_falling_is_an_alarm(seed):
    """Judged against its lagged past alone (0.3), a 10x jump from 0.09 reads as 3x; against the stretch
    just before it, it is 10x: an alarm once it has held for jump_points points. (The 0.2 rule is off,
    as for a framework whose value targets are not normalised, so the trend must see it alone.)"""
    cfg = WatchdogConfig.model_validate({"value_loss": {"enabled": False}})
    quiet = drive(_still_falling(1000, seed), cfg)
    assert not quiet.kinds("alarm") and not quiet.rollbacks
    out = drive(_still_falling(1000, seed, jump_at=550), cfg, stop_after_rollback=True)
    alarm = out.first("alarm")
    assert alarm is not None and alarm["detector"] == "trend" and "just before this climb" in alarm["reason"]
    assert 550 <= alarm["iteration"] <= 550 + 5 * 6
    assert out.rollbacks and out.rollbacks[0].target.iteration < 550


def test_a_value_side_warning_with_a_reward_collapse_is_divergence_only_when_the_reward_corroborates():
    """policy.reward_corroborates (on where value targets are not normalised): the two warnings at once."""
    from watchdog.detectors import Verdict
    from watchdog.policy import Policy, Rollback
    from watchdog.policy import CheckpointRef

    def verdicts(it):
        return [Verdict("trend", "warning", "train/value_loss", 3.0, 0.5, "value loss trending up", it, it, it - 5),
                Verdict("reward_collapse", "warning", "train/average_step_reward", -1.0, 0.2, "reward fell", it, it, it - 2)]

    for corroborates, expected in ((True, True), (False, False)):
        cfg = WatchdogConfig.model_validate({"policy": {"reward_corroborates": corroborates}})
        policy = Policy(cfg)
        policy.add_stable(CheckpointRef("c0", 0, 0))
        events = []
        actions = policy.step(MetricRecord.from_mapping(100, 100, {"value_loss": 3.0}), verdicts(100),
                              lambda kind, **f: events.append((kind, f)),
                              lambda alarm: __import__("watchdog.onset", fromlist=["Onset"]).Onset(95, 95, 95, "hinge"))
        assert any(isinstance(a, Rollback) for a in actions) is expected
        alarm = next((f for kind, f in events if kind == "alarm"), None)
        assert (alarm is not None and alarm["detector"] == "corroboration"
                and alarm["reason"].startswith("the reward collapses")) is expected
    one = WatchdogConfig.model_validate({"policy": {"reward_corroborates": True}})
    policy = Policy(one)
    policy.add_stable(CheckpointRef("c0", 0, 0))
    assert not policy.step(MetricRecord.from_mapping(100, 100, {}), verdicts(100)[:1], lambda kind, **f: None,
                           lambda alarm: None)  # a climbing value loss alone stays a warning


@pytest.mark.parametrize("quiet_iters, said_at", [(0, [10, 30]), (5, [10, 30]), (10, [10]), (100, [10])])
def test_an_advisory_warning_is_said_once_per_stretch_and_leaves_the_run_healthy_and_checkpointing(quiet_iters,
                                                                                                   said_at):
    """A trend that cannot alarm (value targets not normalised) warns, but a policy learning is no reason
    to stop marking stable checkpoints: the run stays healthy; the warning is said once per stretch, which
    ends after recover_points records and advisory_quiet_iters iterations without it (a warning that comes
    back 8 iterations later is the same stretch; one 118 iterations later is news at the default 100)."""
    from watchdog.detectors import Verdict
    from watchdog.onset import Onset
    from watchdog.policy import Policy, SaveStable, State

    cfg = WatchdogConfig.model_validate({"policy": {"stable_every_iters": 5, "recover_points": 3,
                                                    "advisory_quiet_iters": quiet_iters}})
    policy = Policy(cfg)
    events, saves = [], []
    for it in range(200):
        verdicts = []
        # a stretch with a 2-record gap, back 8 iterations after it ended (the same stretch from 10 quiet iterations up), and again 118 later
        if 10 <= it < 20 or it == 22 or 30 <= it < 32 or 150 <= it < 152:
            verdicts = [Verdict("trend", "warning", "train/value_loss", 2.0, 0.5, "value loss trending up", it, it,
                                it - 3, advisory=True)]
        actions = policy.step(MetricRecord.from_mapping(it, it, {"value_loss": 1.0}), verdicts,
                              lambda kind, **f: events.append((kind, f)), lambda alarm: Onset(it, it, it, "hinge"))
        saves += [a.iteration for a in actions if isinstance(a, SaveStable)]
        assert policy.state is State.HEALTHY
    warned = [f for kind, f in events if kind == "warning"]
    assert all(w["advisory"] for w in warned)
    assert [w["onset_iteration"] + 3 for w in warned] == said_at + [150]
    assert saves == list(range(0, 200, 5))  # checkpoints all through the warnings


def test_an_advisory_stretch_survives_a_saved_state_and_ends_when_the_iterations_go_back():
    """The stretch's last sighting is part of the policy's state (strict JSON); a state saved before it was
    (the quiet records alone) ends on the records; a rollback's earlier iterations end it (a new trajectory)."""
    import json

    from watchdog.detectors import Verdict
    from watchdog.policy import Policy

    cfg = WatchdogConfig.model_validate({"policy": {"recover_points": 3}})
    warn = lambda it: [Verdict("trend", "warning", "train/value_loss", 2.0, 0.5, "up", it, it, it, advisory=True)]
    said = []
    emit = lambda kind, **f: said.append(f["onset_iteration"]) if kind == "warning" else None

    def run(policy, its, warned):
        for it in its:
            policy.step(MetricRecord.from_mapping(it, it, {"value_loss": 1.0}), warn(it) if it in warned else [],
                        emit, lambda alarm: None)

    policy = Policy(cfg)
    run(policy, range(10, 20), {10})
    restored = Policy(cfg)
    restored.load_state_dict(json.loads(json.dumps(policy.state_dict(), allow_nan=False)))
    run(restored, range(20, 40), {30})
    assert said == [10]  # the same stretch after the resume
    old = policy.state_dict()
    old["advisory_active"] = {k: v[0] for k, v in old["advisory_active"].items()}  # before session 25
    legacy = Policy(cfg)
    legacy.load_state_dict(old)
    run(legacy, range(20, 40), {30})
    assert said == [10, 30]
    back = Policy(cfg)
    run(back, range(10, 20), {10})
    run(back, range(5, 15), {14})  # rolled back to 5: the iterations went back
    assert said == [10, 30, 10, 14]


def _entropy_run(n: int, seed: int, *, collapse_at: int | None = None, reward_falls_at: int | None = None,
                 slope: float = 0.0015) -> list[MetricRecord]:
    """A learning policy: its entropy falls steadily from ln 2 (``slope`` nats an iteration, noise 0.005)
    and its reward rises; optionally the entropy collapses to ~0.02 within 10 iterations, and the
    reward falls to its starting level from another iteration on."""
    rng = np.random.default_rng(seed)
    out = []
    for it in range(n):
        entropy = max(0.693 - slope * it, 0.05) + rng.normal(0, 0.005)
        if collapse_at is not None and it >= collapse_at:
            entropy = max(0.02, entropy * (1 - (it - collapse_at + 1) / 10))
        reward = 20 + 0.1 * it + rng.normal(0, 1.0)
        if reward_falls_at is not None and it >= reward_falls_at:
            reward = 15 + rng.normal(0, 1.0)
        out.append(MetricRecord.from_mapping(it, it * 64, {"value_loss": 0.01 * (1 + rng.normal(0, 0.1) ** 2),
                                                           "train/entropy": entropy, "average_step_reward": reward}))
    return out


@pytest.mark.parametrize("slope", [0.0005, 0.0015, 0.003])
def test_a_steadily_falling_entropy_is_quiet(slope):
    out = drive(_entropy_run(500, seed=1, slope=slope))
    assert out.kinds("warning") == [] and out.rollbacks == []


def test_an_entropy_collapse_alone_is_advisory_and_the_run_keeps_checkpointing():
    out = drive(_entropy_run(500, seed=2, collapse_at=300, slope=0.0003))
    warned = out.kinds("warning")
    assert [(w["detector"], w["advisory"]) for w in warned] == [("entropy_collapse", True)]
    # dated where the entropy last sat in its recent range, at most the window's lag (20) before it crossed
    assert 300 <= warned[0]["iteration"] <= 310 and 280 <= warned[0]["onset_iteration"] <= 303
    assert out.rollbacks == [] and out.kinds("alarm") == []
    assert max(e["iteration"] for e in out.kinds("stable_checkpoint")) >= 490  # through the warning


def test_an_entropy_collapse_then_a_reward_collapse_is_a_policy_collapse_dated_by_the_entropy():
    out = drive(_entropy_run(500, seed=3, collapse_at=300, reward_falls_at=360, slope=0.0003),
                stop_after_rollback=True)
    alarm = out.first("alarm")
    assert alarm is not None and alarm["detector"] == "policy_collapse", out.kinds("warning")
    assert 360 <= alarm["iteration"] <= 366 and alarm["signal"] == "train/entropy"
    assert 280 <= alarm["onset_iteration"] <= 303, alarm
    assert out.rollbacks and 260 <= out.rollbacks[0].target.iteration < 300


def test_a_reward_collapse_without_an_entropy_collapse_stays_a_warning():
    out = drive(_entropy_run(500, seed=4, reward_falls_at=360))
    assert [w["detector"] for w in out.kinds("warning")] == ["reward_collapse"]
    assert out.rollbacks == []


def _kl_run(n: int, seed: int, *, surge_at: int | None = None, reward_falls_at: int | None = None,
            growth: float = 1.0) -> list[MetricRecord]:
    """KL per update around 0.005 (log-normal noise, growing ``growth``-fold over the run), a rising
    reward; optionally the KL x100 from ``surge_at`` with every fourth update back at its old level,
    and the reward falling to its start from ``reward_falls_at``."""
    rng = np.random.default_rng(seed)
    out = []
    for it in range(n):
        kl = 0.005 * growth ** (it / n) * math.exp(rng.normal(0, 0.4))
        if surge_at is not None and it >= surge_at and it % 4:
            kl *= 100
        reward = 20 + 0.1 * it + rng.normal(0, 1.0)
        if reward_falls_at is not None and it >= reward_falls_at:
            reward = 15 + rng.normal(0, 1.0)
        out.append(MetricRecord.from_mapping(it, it * 64, {"value_loss": 0.01, "train/approx_kl": kl,
                                                           "average_step_reward": reward}))
    return out


@pytest.mark.parametrize("growth", [1.0, 5.0])
def test_a_kl_that_wanders_or_grows_slowly_is_quiet(growth):
    out = drive(_kl_run(600, seed=5, growth=growth))
    assert out.kinds("warning") == [] and out.rollbacks == []


def test_a_kl_surge_is_one_advisory_warning_through_its_dips_and_with_a_reward_collapse_a_policy_collapse():
    alone = drive(_kl_run(500, seed=6, surge_at=300))
    warned = alone.kinds("warning")
    assert [(w["detector"], w["advisory"], w["onset_iteration"]) for w in warned] == [("kl_surge", True, 301)]
    assert alone.rollbacks == [] and alone.kinds("alarm") == []
    both = drive(_kl_run(500, seed=6, surge_at=300, reward_falls_at=360), stop_after_rollback=True)
    alarm = both.first("alarm")
    assert alarm is not None and alarm["detector"] == "policy_collapse" and alarm["signal"] == "train/approx_kl"
    assert 360 <= alarm["iteration"] <= 366 and alarm["onset_iteration"] == 301
    assert both.rollbacks and 280 <= both.rollbacks[0].target.iteration < 300


def test_a_kl_surge_said_at_one_of_its_dips_names_its_stretch_not_the_dip_as_a_ratio():
    """Every fourth update of the surge is back at its old level; at such a dip the warning names the stretch
    (from its first to its last point above the limit) and the value now. Until session 26 it read
    "policy KL per update 0.005, 0x the top of ...", as a policy_collapse alarm quoted it (a blind rl_games
    BipedalWalker lr fault, tests/data/box2d)."""
    det = next(d for d in build_detectors(WatchdogConfig()) if d.name == "kl_surge")
    said = {rec.iteration: det.update(rec) for rec in _kl_run(320, seed=6, surge_at=300)}
    high, dip = said[303], said[304]  # 300 is a dip (300 % 4 == 0): the stretch is 301-303, then 304 dips
    assert high is not None and "x the top of its last" in high.reason and "since iteration 301" in high.reason
    assert dip is not None and dip.value < dip.threshold
    assert "above 20x the top of its last" in dip.reason and "from iteration 301 to 303" in dip.reason
    assert ", 0x the top" not in dip.reason and f"({dip.value:.3g} now)" in dip.reason


def test_a_kl_held_beyond_any_trust_region_is_an_alarm_alone_and_a_single_spike_is_not():
    """0.5 nats or more for 5 updates in a row: an alarm with no reward collapse, dated where it began;
    a healthy run's lone 3-nat spike (SB3 Hopper's, tests/data/mujoco) and 4 updates in a row say nothing
    alarming."""
    def run(high: list[int], value: float) -> list[MetricRecord]:
        recs = _kl_run(400, seed=8)
        for rec in recs:
            if rec.iteration in high:
                rec.metrics["train/approx_kl"] = value
        return recs

    runaway = drive(run(list(range(300, 400)), 0.8), stop_after_rollback=True)
    alarm = runaway.first("alarm")
    assert alarm["detector"] == "kl_surge" and alarm["iteration"] == 304 and alarm["onset_iteration"] == 300
    assert runaway.rollbacks and runaway.rollbacks[0].target.iteration < 300
    for high, value in (([200], 3.0), (list(range(300, 304)), 0.8)):
        assert drive(run(high, value)).kinds("alarm") == []


@pytest.mark.parametrize("rise", [0.1, 0.0])
def test_a_reward_collapse_below_where_the_run_began_or_of_a_learned_level_stands(rise):
    """A fall to 0, after a reward that rose from 20 (0.1 an iteration) or stayed flat at 20: a standing
    warning either way (a flat run's dips within reach of its start are advisory: test_long_runs)."""
    rng = np.random.default_rng(7)
    recs = [MetricRecord.from_mapping(it, it * 64, {"value_loss": 0.01, "average_step_reward":
                                                    (0 if it >= 360 else 20 + rise * it) + rng.normal(0, 1.0)})
            for it in range(450)]
    out = drive(recs)
    warned = [w for w in out.kinds("warning") if w["detector"] == "reward_collapse"]
    assert warned and [w.get("advisory", False) for w in warned] == [False]
    assert out.watchdog.state.value == "warning" and out.rollbacks == []


def test_a_run_that_learned_before_judging_began_has_something_to_lose():
    """A reward that climbs 0 -> 20 within its first 40 iterations (inside the first judged window) and
    falls to 3 at 300. Judged from that window's median (about 10) and range (about 19), the fall would
    lose nothing it had gained ("nothing learned to lose": advisory); the climb through the window (its
    last quarter wholly above its first) says the run began near 2, with a wander of a few units, so the
    fall is a standing warning (mujoco/skrl/hopper_seed1 is the real case: 14 -> 300 within 35 updates)."""
    rng = np.random.default_rng(3)
    recs = [MetricRecord.from_mapping(it, it * 64, {"value_loss": 0.01, "average_step_reward":
                                                    (3 if it >= 300 else min(20, it / 2)) + rng.normal(0, 0.5)})
            for it in range(400)]
    warned = [w for w in drive(recs).kinds("warning") if w["detector"] == "reward_collapse"]
    assert warned and [w.get("advisory", False) for w in warned] == [False]


@pytest.mark.parametrize(("values", "origin"), [
    ([20 + math.sin(i) for i in range(36)], None),  # a stationary wander: its quarters overlap
    ([min(20, i / 2) for i in range(36)], (2.0, 3.6)),  # a climb: the first quarter's median and the larger range
    ([min(20, i / 2) for i in range(16)], None),  # quarters of 4: too few values to tell
])
def test_where_a_run_began_is_its_first_judged_window_unless_it_climbed_through_it(values, origin):
    from watchdog.detectors import _origin

    found = _origin(values)
    assert found == origin if origin is None else found == pytest.approx(origin, abs=0.05)


def staircase(levels: list[float], every: int = 40) -> list[MetricRecord]:
    """A return logged only when every env's fixed-length episode ends: level k held for ``every`` iterations."""
    return [MetricRecord.from_mapping(it, it * 64, {"value_loss": 0.01, "average_step_reward": levels[it // every]})
            for it in range(len(levels) * every)]


@pytest.mark.parametrize(("tail", "warns"), [
    ([16, -263, -566], True),  # gives back all it gained, from the last level it rose to: a collapse
    ([16, 280, 300], False),  # one step back of 0.4 of the range and of the gain, then on up: no collapse
    ([200, 180, 190], False),  # the learning steps' own size
])
def test_a_staircase_return_is_judged_from_the_last_level_it_rose_to(tail, warns):
    """Learning steps of 9-190 (rsl_rl HalfCheetah's) are the only changes such a return has, so a scale read
    from them (8 sigmas: 600-900 here) would let a fall to below where the run began pass; a fall of half the
    range and of the gain from the last level it rose to is the collapse, and a step back of less is not."""
    out = drive(staircase([-318, -309, -252, -105, 82, 250, *tail]))
    warned = [w for w in out.kinds("warning") if w["detector"] == "reward_collapse"]
    assert bool(warned) == warns, warned
    if warns:
        first, = warned
        assert first["iteration"] == 7 * 40 + 2 and "250, the last level it rose to" in first["reason"]
        assert "too rarely for a noise scale" in first["reason"] and not first.get("advisory", False)


def test_a_staircase_fall_no_larger_than_one_it_came_back_from_is_not_a_new_collapse():
    """A staircase that fell 350 (a warning), came back, and falls 350 again: its own precedent, not news."""
    out = drive(staircase([-318, -309, -252, -105, 82, 250, -100, 250, -100, 250]))
    warned = [w["iteration"] for w in out.kinds("warning") if w["detector"] == "reward_collapse"]
    assert warned == [6 * 40 + 2]


@pytest.mark.parametrize("split", [150, 230, 290])
def test_policy_change_state_survives_strict_json_mid_collapse(split):
    """The real SB3 lr fault (entropy, KL and episode return logged), saved before, inside and after its
    collapse (entropy down and KL surging at 230, both with the reward at 290) and restored from JSON:
    the restored watchdog goes on exactly as the original."""
    import json
    from pathlib import Path

    from watchdog.frameworks import config_for_run
    from watchdog.pipeline import Watchdog
    from watchdog.replay import load_run

    data = load_run(Path(__file__).resolve().parents[1] / "data" / "long_faults" / "sb3" / "cartpole_lr_fault" / "PPO_1")
    cfg = config_for_run(WatchdogConfig(), data.info)
    first = Watchdog(cfg)
    for rec in data.records[:split]:
        first.observe(rec)
    saved = json.loads(json.dumps(first.detectors_state(), allow_nan=False))
    second = Watchdog(cfg)
    second.load_detectors_state(saved)
    seen = set()
    for rec in data.records[split:]:
        a = [(v.detector, v.level, v.advisory, v.reason) for v in (d.update(rec) for d in first.detectors) if v]
        b = [(v.detector, v.level, v.advisory, v.reason) for v in (d.update(rec) for d in second.detectors) if v]
        assert a == b, rec.iteration
        seen.update(d for d, *_ in a)
    assert {"entropy_collapse", "kl_surge"} <= seen or split == 290 and "reward_collapse" in seen, seen


def test_a_runaway_entropy_with_a_reward_collapse_is_a_policy_collapse_a_steady_climb_is_quiet():
    """entropy_surge mirrors entropy_collapse: a climb of 0.003 nats an iteration (an entropy bonus at
    work) is quiet; a std running away (entropy +0.1 an iteration from 300) is an advisory warning dated
    where it left its range (a climb that sat above the lagged window all along: at most the window's lag,
    20, before it crossed), and with the reward's fall from 360 a policy_collapse."""
    rng = np.random.default_rng(8)

    def run(runaway: bool, falls: bool) -> list[MetricRecord]:
        out = []
        for it in range(500):
            entropy = 4.0 + 0.003 * it + rng.normal(0, 0.01) + (0.1 * (it - 299) if runaway and it >= 300 else 0.0)
            reward = (15 if falls and it >= 360 else 20 + 0.1 * it) + rng.normal(0, 1.0)
            out.append(MetricRecord.from_mapping(it, it * 64, {"value_loss": 0.01, "train/entropy": entropy,
                                                               "average_step_reward": reward}))
        return out

    assert drive(run(False, False)).kinds("warning") == []
    alone = drive(run(True, False))
    assert [(w["detector"], w["advisory"]) for w in alone.kinds("warning")] == [("entropy_surge", True)]
    assert 280 <= alone.kinds("warning")[0]["onset_iteration"] <= 305 and alone.rollbacks == []
    both = drive(run(True, True), stop_after_rollback=True)
    alarm = both.first("alarm")
    assert alarm is not None and alarm["detector"] == "policy_collapse" and 280 <= alarm["onset_iteration"] <= 305
    assert both.rollbacks and both.rollbacks[0].target.iteration < 300


def test_an_entropy_rising_faster_than_it_ever_moved_is_a_surge_even_inside_its_range():
    """entropy_surge's horizon rule (session 24): an entropy that fell 1.5 nats at 0.006 an iteration while the
    policy learned and then turns, rising 0.04 an iteration from 300, stays inside "2x its window's range" (the
    window holds the fall) for 70 iterations; it rose within 20 iterations 3x faster than it ever moved either way,
    so it is a surge within 15 iterations of the turn, dated where it turned. A policy whose entropy swings
    0.3 nats up and down every 40 iterations (as fast both ways) is quiet, and so is the turn with the rule off."""
    rng = np.random.default_rng(4)

    def run(turn: bool, swings: bool) -> list[MetricRecord]:
        out = []
        for it in range(400):
            entropy = 1.5 - 0.006 * min(it, 250) + rng.normal(0, 0.005)
            if swings:
                entropy += 0.3 * abs((it % 40) - 20) / 20
            if turn and it >= 300:
                entropy += 0.04 * (it - 299)
            out.append(MetricRecord.from_mapping(it, it * 64, {"value_loss": 0.01, "train/entropy": entropy,
                                                               "average_step_reward": 20.0 + rng.normal(0, 1.0)}))
        return out

    surged = [w for w in drive(run(True, False)).kinds("warning") if w["detector"] == "entropy_surge"]
    # the fall's 0.12 nats in 20 iterations x3 = 0.36: passed 10 points into the turn, held 3 points
    assert surged and 308 <= surged[0]["iteration"] <= 314 and "within 20 iterations" in surged[0]["reason"]
    assert 295 <= surged[0]["onset_iteration"] <= 301
    assert drive(run(False, True)).kinds("warning") == []
    off = WatchdogConfig.model_validate({"entropy_surge": {"horizon_iters": None}})
    late = [w for w in drive(run(True, False), cfg=off).kinds("warning") if w["detector"] == "entropy_surge"]
    assert not late or late[0]["iteration"] > 340, late


def test_where_no_entropy_is_logged_the_policy_log_std_stands_in_and_is_never_mixed_with_it():
    """skrl with an entropy loss scale of 0 (Isaac Lab's locomotion setting) logs the policy's std and no entropy. A
    Gaussian's mean log-std is its entropy per action dimension up to a constant, so the entropy rules judge it: a
    std that had shrunk while the policy learned and then runs away, with the reward's fall, is a policy_collapse.
    The first of the two a run logs is the one judged: an entropy tag that appears later (skrl logs it once its
    scale turns non-zero) is not mixed into the log-std's windows."""
    rng = np.random.default_rng(5)

    def run(runaway: bool, entropy_from: int | None = None) -> list[MetricRecord]:
        out = []
        for it in range(400):
            log_std = -0.004 * min(it, 250) + rng.normal(0, 0.003) + (0.05 * (it - 299) if runaway and it >= 300 else 0)
            metrics = {"value_loss": 0.01, "train/log_std_mean": log_std,
                       "average_step_reward": (5.0 if runaway and it >= 330 else 20.0) + rng.normal(0, 0.5)}
            if entropy_from is not None and it >= entropy_from:
                metrics["train/entropy"] = 6.0 + rng.normal(0, 0.01)  # another quantity, another scale
            out.append(MetricRecord.from_mapping(it, it * 64, metrics))
        return out

    out = drive(run(True), stop_after_rollback=True)
    alarm = out.first("alarm")
    assert alarm is not None and alarm["detector"] == "policy_collapse" and "policy log-std" in alarm["reason"]
    assert 295 <= alarm["onset_iteration"] <= 305 and out.rollbacks[0].target.iteration < 300
    assert drive(run(False)).kinds("warning") == []
    # an entropy of 6 nats appearing at 200 would be a 6-nat "surge" of a log-std near -0.8 if the two were mixed
    assert drive(run(False, entropy_from=200)).kinds("warning") == []


def test_a_state_saved_before_a_detector_gained_fields_still_loads():
    """A checkpoint's watchdog state from an older version lacks the fields added since (kl_surge's
    runaway count, blowup's returns): loading keeps their defaults instead of failing the resume."""
    from watchdog.config import WatchdogConfig
    from watchdog.detectors import build_detectors

    cfg = WatchdogConfig()
    for det in build_detectors(cfg):
        for rec in _kl_run(60, seed=9):
            det.update(rec)
        state = det.state_dict()
        for key in ("runaway", "runaway_since", "returns", "first_level", "levels", "lows", "highs", "moves",
                    "move_start", "signal"):
            state.pop(key, None)
        fresh = next(d for d in build_detectors(cfg)
                     if type(d) is type(det) and getattr(d, "signal", None) == getattr(det, "signal", None))
        fresh.load_state_dict(state)
        assert fresh.points == det.points


def _climb(returns_after: float, *, n: int = 400, climb_at: int = 300, seed: int = 3) -> list[MetricRecord]:
    """A value loss in the returns' squared units (median 1, log noise 0.1) that climbs to 10x within 10
    iterations from ``climb_at`` and stays; the return is 100 (noise 2) before it and ``returns_after``
    from it on."""
    rng = np.random.default_rng(seed)
    out = []
    for it in range(n):
        rise = 10 ** min(max(it - climb_at + 1, 0) / 10, 1.0)
        ret = (100.0 if it < climb_at else returns_after) + rng.normal(0, 2.0)
        out.append(MetricRecord.from_mapping(it, it, {"train/value_loss": rise * math.exp(rng.normal(0, 0.1)),
                                                      "rollout/episode_return": ret}))
    return out


@pytest.mark.parametrize("returns_after, said", [(100.0, True), (103.0, True), (160.0, False)])
def test_a_climb_of_an_unnormalised_value_loss_is_not_said_while_the_returns_rise_past_its_root(returns_after, said):
    """Where the value targets are not normalised (``trend.explained_by``: the return's key) a climbing value
    loss may be the critic meeting returns it has not seen: not said while the return stands above the
    highest it held before the climb by at least the loss's root (here 10x a loss of 1: a rise of 3.2).
    A flat return, or one that rose by less, leaves it an (advisory) warning."""
    from watchdog.detectors import TrendCusum

    cfg = WatchdogConfig.model_validate({"trend": {"alarm_ratio": None, "explained_by": "rollout/episode_return"}})
    trend = TrendCusum(cfg.trend, cfg.warmup, "train/value_loss")
    assert trend.reads() == ("train/value_loss", "rollout/episode_return")
    verdicts = [v for v in map(trend.update, _climb(returns_after)) if v is not None]
    assert bool(verdicts) == said and all(v.advisory and v.iteration >= 300 for v in verdicts)
    plain = TrendCusum(cfg.trend.model_copy(update={"explained_by": None}), cfg.warmup, "train/value_loss")
    assert [v for v in map(plain.update, _climb(returns_after)) if v is not None]  # without the return: said


def test_the_trends_returns_survive_strict_json_mid_climb():
    """The returns a climb is judged against are part of the trend's state: restored mid-climb from strict
    JSON, it says (or leaves unsaid) exactly what the uninterrupted one does."""
    import json

    from watchdog.detectors import TrendCusum

    cfg = WatchdogConfig.model_validate({"trend": {"alarm_ratio": None, "explained_by": "rollout/episode_return"}})
    for returns_after in (100.0, 160.0):
        recs = _climb(returns_after)
        first = TrendCusum(cfg.trend, cfg.warmup, "train/value_loss")
        for rec in recs[:305]:
            first.update(rec)
        second = TrendCusum(cfg.trend, cfg.warmup, "train/value_loss")
        second.load_state_dict(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
        assert len(second.returns) == len(first.returns) > 300
        for rec in recs[305:]:
            a, b = first.update(rec), second.update(rec)
            assert (a and a.reason) == (b and b.reason), rec.iteration


@pytest.mark.parametrize("surge, said", [((0.0, -0.6, 0.9, -0.7), True), ((0.0, 0.9, -0.7, 0.0), False)])
def test_a_surrogate_loss_surge_is_an_advisory_policy_change(surge, said):
    """PPO's surrogate loss by its size, 20x the top of its recent size for 3 points in a row (either sign: the
    clipped loss blows up positive on negative advantages): ``kl_surge``'s test for the frameworks that log no
    KL. Two points are not a surge. Advisory: the policy calls it divergence only with a reward collapse."""
    from watchdog.detectors import SurrogateSurge

    cfg = WatchdogConfig()
    det = SurrogateSurge(cfg.surrogate_surge, cfg.warmup)
    rng = np.random.default_rng(5)
    losses = list(rng.normal(0, 0.01, 300)) + list(surge) + list(rng.normal(0, 0.01, 20))
    verdicts = [v for it, pl in enumerate(losses)
                if (v := det.update(MetricRecord.from_mapping(it, it, {"train/policy_loss": pl}))) is not None]
    assert bool(verdicts) == said
    if said:
        first = verdicts[0]
        assert (first.detector, first.iteration, first.onset_hint, first.advisory) == ("surrogate_surge", 303, 301, True)
        assert first.value == pytest.approx(0.7) and "trust region" in first.reason


def test_an_alerts_ratio_beyond_a_million_is_written_in_powers_of_ten():
    """A value loss of 1e300 (a log's overflow) made a 300-digit ratio in the alarm's text (found by an audit,
    session 19)."""
    from watchdog.pipeline import Watchdog

    events = []
    wd = Watchdog(listeners=[events.append])
    for i in range(200):
        wd.observe(MetricRecord(i, (i + 1) * 100, {VALUE_LOSS: 0.01 * (1 + 0.1 * (i % 3)) if i < 180 else 1e300}))
    alarm = next(e for e in events if e["event"] == "alarm")
    assert "e+30" in alarm["reason"] and len(alarm["reason"]) < 400, alarm["reason"]


def _replayed(records, framework: str, normalized: bool):
    from watchdog.frameworks import config_for_run
    from watchdog.replay import RunData, replay_records

    info = {"framework": framework, "value_targets_normalized": normalized, "value_normalization": "test",
            "keys": sorted(set().union(*(r.metrics for r in records)))}
    return replay_records(RunData(records, "events", info=dict(info)), config_for_run(WatchdogConfig(), info))


@pytest.mark.parametrize(("framework", "normalized"), [("rl_games", True), ("sb3", False)])
def test_a_value_loss_of_exactly_zero_is_no_level(framework, normalized):
    """A value loss of 0 logged before the first update (or a loss exactly fitted) was a level of 1e-12: the first
    real loss after it was 'blew up 4.9e+10x its floor' (two zeros) or a 5e10x trend (twelve): three rollbacks and a
    stop on a healthy run. Found by an audit (session 19)."""
    import random

    from watchdog.signals import EPISODE_RETURN

    rng = random.Random(1)
    for zeros in (2, 12):
        records = [MetricRecord(i, (i + 1) * 2048, {
            VALUE_LOSS: 0.0 if i < zeros else 0.05 * math.exp(rng.gauss(0, 0.2)),
            EPISODE_RETURN: 100 + 50 * (1 - math.exp(-i / 100)) + rng.gauss(0, 2)}) for i in range(300)]
        report = _replayed(records, framework, normalized)
        assert report.verdict == "healthy" and not report.warnings, (zeros, report.first_alarm)


def test_a_sparse_tasks_first_successes_are_no_blow_up_but_a_fitted_critic_is_needed_for_that():
    """SB3 on a sparse task: every return exactly 0 until rollout 150, the critic fitted to a loss of 1e-8, then
    successes come more and more often and the loss climbs with them. The first successes moved the 100-episode mean
    0.009, under the root of the loss (0.07): a blow-up alarm, rollbacks to before the successes, a stop (found by an
    audit, session 19). A critic that had fitted a constant is now read as meeting its first returns. The same climb
    over a return that stood still while the critic still erred (a loss of 0.1: a staircase whose episodes had not
    ended) stays an alarm."""
    import random

    from watchdog.signals import EPISODE_RETURN

    def run(floor: float) -> list[MetricRecord]:
        rng, window, out = random.Random(0), [0.0] * 100, []
        for r in range(300):
            p = 0 if r < 150 else min(0.02 * (r - 149), 0.9)
            wins = sum(rng.random() < p for _ in range(20))
            window = window[wins:] + [0.9] * wins if wins else window
            loss = (floor if r < 150 else (wins / 20) * 0.05 + 1e-4) * math.exp(rng.gauss(0, 0.3))
            out.append(MetricRecord(r, (r + 1) * 2048, {VALUE_LOSS: loss, EPISODE_RETURN: sum(window) / 100}))
        return out

    assert _replayed(run(1e-8), "sb3", False).verdict == "healthy"
    stood_still = _replayed([MetricRecord(r.iteration, r.env_steps, {**r.metrics, VALUE_LOSS: r.metrics[VALUE_LOSS]
                                                                      * (1e4 if r.iteration >= 150 else 1e7)})
                             for r in run(1e-8)], "sb3", False)
    assert stood_still.first_alarm and stood_still.first_alarm["detector"] == "blowup"
    # nor a loss whose root runs far beyond the return it rose to (0 -> 0.001 and held while the loss climbs 1.2x an
    # update to 10^13: silenced by the first cut of this rule, found by a review)
    climb = [MetricRecord(i, i * 2048, {VALUE_LOSS: 1e-10 * (1 + 0.3 * (i % 3) / 3) if i < 200 else 1e-2 * 1.2 ** (i - 200),
                                        EPISODE_RETURN: 0.0 if i < 200 else 0.001}) for i in range(400)]
    blown = _replayed(climb, "sb3", False)
    assert blown.first_alarm and blown.first_alarm["detector"] == "blowup" and blown.first_alarm["iteration"] < 210


@pytest.mark.parametrize("every", [1, 30, 50])
def test_a_run_logged_every_few_dozen_updates_is_judged_by_its_policy_rules(every):
    """skrl with Isaac Lab's write_interval "auto" logs about 100 points a run: one per 30 updates of a 3,000-update
    run. The trend's and the policy rules' windows (200-250 iterations) never held their 10 points, and a surge's
    stretch ended at each next point (more than its 20-iteration lag later), so a policy-loss surge with the return
    collapsing was a reward warning only (found by an audit, session 19). A healthy run stays quiet."""
    import random

    from watchdog.signals import EPISODE_RETURN, POLICY_LOSS

    def logged(fault: int | None) -> list[MetricRecord]:
        rng = random.Random(5)
        ups = []
        for u in range(3000):
            f = fault is not None and u >= fault
            ups.append({VALUE_LOSS: 0.05 * math.exp(rng.gauss(0, 0.2)), POLICY_LOSS: rng.gauss(-0.01, 0.005) * (50 if f else 1),
                        EPISODE_RETURN: (100 + 50 * (1 - math.exp(-u / 300))) * (0.2 if f and u >= fault + 20 else 1)
                        + rng.gauss(0, 2)})
        return [MetricRecord(end, (end + 1) * 4096, {k: sum(c[k] for c in ups[end - every + 1:end + 1]) / every
                                                     for k in ups[0]}) for end in range(every - 1, 3000, every)]

    healthy = _replayed(logged(None), "skrl", True)
    assert healthy.verdict == "healthy" and not healthy.warnings
    faulted = _replayed(logged(1800), "skrl", True)
    assert faulted.first_alarm["detector"] == "policy_collapse" and 1800 < faulted.first_alarm["iteration"] <= 1800 + 30 + 3 * every


def test_a_surrogate_loss_of_exactly_zero_is_no_surge():
    """A loop that logs 0 for the surrogate loss while its actor is not trained: against a window of zeros the limit
    was 0 and every 0 'above' it, a standing surge (infx) that with a reward dip made a policy_collapse and a rollback
    (found by an audit, session 19)."""
    import random

    from watchdog.signals import EPISODE_RETURN, POLICY_LOSS

    rng = random.Random(12)
    records = [MetricRecord(i, i, {EPISODE_RETURN: 100 + 50 * (1 - math.exp(-i / 100)) + rng.gauss(0, 2)
                                   - (40 if 250 <= i < 262 else 0),
                                   POLICY_LOSS: 0.0 if i < 400 else rng.gauss(-0.01, 0.005),
                                   VALUE_LOSS: 0.05 * math.exp(rng.gauss(0, 0.2))}) for i in range(600)]
    report = _replayed(records, "rsl_rl", False)
    assert report.first_alarm is None and not [w for w in report.warnings if w["detector"] == "surrogate_surge"]


def test_a_densely_logged_surge_ends_and_refills_its_window_as_before():
    """The sparse-logging change must leave dense logging as it was (a review of session 19 found both): a spike
    one lag after a confirmed stretch, with the points between back in range, starts a new stretch (it had joined the
    old one: an instant warning dated 23 iterations back); and a window emptied by a long surge judges again only
    with its 10 points (it judged a later 3-point spike on 5 and warned)."""
    import random

    from watchdog.config import KlSurgeConfig, WarmupConfig
    from watchdog.detectors import KlSurge
    from watchdog.signals import APPROX_KL

    def verdicts(kl) -> dict[int, object]:
        detector, rng = KlSurge(KlSurgeConfig(), WarmupConfig()), random.Random(0)
        out = {}
        for it in range(1, 640):
            out[it] = detector.update(MetricRecord(it, it * 100, {APPROX_KL: kl(it, rng)}))
        return out

    quiet = lambda rng: 0.005 + 0.001 * rng.random()  # noqa: E731
    spike = verdicts(lambda it, rng: 0.2 if 200 <= it <= 202 or it == 223 else quiet(rng))
    assert spike[202] is not None and spike[223] is None and spike[224] is None
    refill = verdicts(lambda it, rng: 0.2 if 300 <= it <= 590 else 0.13 if 606 <= it <= 608 else quiet(rng))
    assert all(refill[it] is None for it in range(600, 616))
    # (since session 20 the points of an open stretch that are back in range teach the window: a surge that ended at
    # 560 leaves 26 quiet points in it by 606, enough to judge the 20x spike, an advisory warning)
    refilled = verdicts(lambda it, rng: 0.2 if 300 <= it <= 560 else 0.13 if 606 <= it <= 608 else quiet(rng))
    assert [it for it in range(600, 616) if refilled[it] is not None] == [608, 609, 610, 611, 612, 613, 614, 615]


@pytest.mark.parametrize("framework", ["sb3", "rsl_rl", "cleanrl"])
def test_a_slow_blow_up_over_a_return_standing_still_is_an_alarm_where_targets_are_not_normalised(framework):
    """A value loss climbing x1.3 an update from 300 to 10^7x while the return stands still: blowup needs 100x within
    10 points (x1.6 an update or more), and the trend only warned where value targets are not normalised, so the run
    was healthy with stable checkpoints kept inside the blow-up (found by an audit, session 19). The trend's climb to
    100x the top of its range is an alarm there too, unless the return rose by the loss's root since the baseline's
    time: the real healthy SB3 runs without VecNormalize (185x while learning, tests/data/mujoco/sb3/*_raw) stay
    healthy (tests/watchdog/test_mujoco_runs.py)."""
    import random

    from watchdog.signals import EPISODE_RETURN

    rng = random.Random(3)
    records = [MetricRecord(i, (i + 1) * 2048, {
        VALUE_LOSS: 0.05 * math.exp(rng.gauss(0, 0.2)) * min(1.3 ** max(0, i - 300), 1e8),
        EPISODE_RETURN: 120 + rng.gauss(0, 2)}) for i in range(400)]
    report = _replayed(records, framework, False)
    assert report.first_alarm and report.first_alarm["detector"] == "trend" and 300 < report.first_alarm["iteration"] < 330


def _settled_run(n: int, seed: int = 0) -> list[float]:
    """A normalised value loss falling 1.0 -> 0.01 over 40 iterations, then lognormal noise around 0.01."""
    rng = np.random.default_rng(seed)
    return [0.01 * 100 ** max(0.0, 1 - i / 40) * math.exp(rng.normal(0, 0.15)) for i in range(n)]


def _rule_alarms(values: list[float], cfg: WatchdogConfig | None = None) -> list[int]:
    cfg = cfg or WatchdogConfig()
    rule = ValueLossThreshold(cfg.value_loss, cfg.warmup)
    return [i for i, v in enumerate(values) if rule.update(MetricRecord.from_mapping(i, (i + 1) * 100, {VALUE_LOSS: v}))]


def test_the_0_2_rule_takes_a_departure_it_came_back_from_for_part_of_the_runs_range():
    """Session 21 (a false-alarm audit): a loss that visits 0.35-0.45 and returns, again and again (rl_games
    InvertedPendulum's critic in the epochs that meet a fall), is said once, not at every visit; a level 2x above the
    visits, held, is a divergence."""
    values = _settled_run(400)
    for start in range(150, 400, 25):  # a 6-point visit every 25 iterations, back at the settled level between
        values[start:start + 6] = [0.35, 0.45, 0.4, 0.42, 0.38, 0.4]
    off = WatchdogConfig.model_validate({"value_loss": {"excursion_factor": None}})
    assert _rule_alarms(values, off)[:3] == [155, 180, 205]  # the rule before session 21: every visit
    assert _rule_alarms(values) == [155]  # the first: nothing to compare it with
    values[320:] = [0.9] * 80
    assert _rule_alarms(values)[:2] == [155, 325]


def test_a_log_gap_longer_than_the_rules_memory_after_a_departure_is_judged_not_a_crash():
    """Found by a fuzz of session 29: a departure that ended just before a gap in the log longer than the rule's
    memory of departures (``baseline_iters``: lost lines, a run resumed further on) was credited and dropped at once
    as too old, from an empty queue: an IndexError, a traceback out of replay and watch. Now it is forgotten and
    the run judged on."""
    cfg = WatchdogConfig()
    rule = ValueLossThreshold(cfg.value_loss, cfg.warmup)
    values = _settled_run(150)
    iterations = list(range(150))
    values += [0.4] * 6 + [0.01]  # a departure, and a point back at the level
    iterations += list(range(150, 157))
    after = 157 + cfg.value_loss.baseline_iters + 50  # the gap; then the level again, and a climb
    values += [0.01] * 5 + [0.9] * 8
    iterations += list(range(after, after + 13))
    alarms = [it for it, v in zip(iterations, values, strict=True)
              if rule.update(MetricRecord.from_mapping(it, it * 100, {VALUE_LOSS: v}))]
    assert rule.armed and not rule.came_back and alarms[:2] == [155, after + 5 + 5]  # the first visit, and the climb


@pytest.mark.parametrize("case", ["a divergence dipping for a point", "a spike right after arming"])
def test_no_departure_raises_the_bar_for_a_divergence_that_is_not_over(case):
    """A review of the session-21 rule: a climb to 1000x with one point at the settled level every 8 iterations
    raised its own bar at every dip and was never an alarm of the rule (now at 385, as before the rule); a one-point
    spike just after arming was taken for a 3-point level (it had no 3 points yet) and put off a divergence 40
    iterations later by 157 (now 5 iterations after it begins, as before). A departure counts only once the run has
    held its settled level as long as a departure must last, and the level is a 3-point level from arming on."""
    values = _settled_run(700)
    off = WatchdogConfig.model_validate({"value_loss": {"excursion_factor": None}})
    if case == "a divergence dipping for a point":
        values[300:] = [values[i] if (i - 300) % 8 == 7 else min(0.05 * 2 ** ((i - 300) / 40), 10.0) for i in range(300, 700)]
        assert _rule_alarms(values)[:1] == _rule_alarms(values, off)[:1] == [385]
    else:
        armed = next(i for i in range(len(values)) if _armed_after(values[:i + 1]))
        values[armed + 1] = 3.0
        values[armed + 41:] = [1.0] * (700 - armed - 41)
        assert _rule_alarms(values)[:1] == _rule_alarms(values, off)[:1] == [armed + 46]


def _armed_after(values: list[float]) -> bool:
    cfg = WatchdogConfig()
    rule = ValueLossThreshold(cfg.value_loss, cfg.warmup)
    for i, v in enumerate(values):
        rule.update(MetricRecord.from_mapping(i, (i + 1) * 100, {VALUE_LOSS: v}))
    return rule.armed


def _trend_verdicts(tail: list[float], *, every: int = 1, settled_iters: int = 400,
                    **trend: int) -> list[tuple[int, str]]:
    """A settled, noisy normalised value loss (about 0.02, log-sigma 0.3) for ``settled_iters`` iterations, then
    ``tail``, logged every ``every`` iterations, with the ``trend`` settings given: the trend's verdicts (tail
    index, level) on the tail."""
    from watchdog.detectors import TrendCusum

    cfg = WatchdogConfig.model_validate({"trend": trend} if trend else {})
    det = TrendCusum(cfg.trend, cfg.warmup, VALUE_LOSS)
    rng = np.random.default_rng(7)
    settled = settled_iters // every
    series = [0.02 * math.exp(rng.normal(0, 0.3)) for _ in range(settled)] + tail
    said = []
    for i, v in enumerate(series):
        verdict = det.update(MetricRecord.from_mapping(i * every, i * every, {VALUE_LOSS: v}))
        if verdict is not None and i >= settled:
            said.append((i - settled, verdict.level))
    return said


def test_a_trend_warning_needs_its_level_held_two_points_and_an_alarm_does_not():
    """Spikes two points apart (rl_games Humanoid's normalised loss: 0.29, 0.05, 0.20, 0.03, 0.16) make a
    3-point median 3-4x the top of the recent range at every other point: no level held, nothing said (until
    session 25 a standing warning for five iterations). A level held at 3.5x is a warning on its second point; a
    jump to 17x is an alarm on the first 3-point median that sees it."""
    spikes = [0.2, 0.02, 0.1, 0.02, 0.1] + [0.02] * 10
    assert _trend_verdicts(spikes) == []
    assert _trend_verdicts(spikes, persist_points=1) != []  # the old setting warned
    held = _trend_verdicts([0.1] * 6)
    assert held and held[0] == (2, "warning")  # median3 high from point 1, held on point 2
    assert _trend_verdicts([0.1] * 6, persist_points=1)[0] == (1, "warning")
    assert _trend_verdicts([0.5] * 6)[:3] == [(2, "warning"), (3, "warning"), (4, "alarm")]  # spans 5 iterations


def test_the_policy_std_rules_skipped_fit_never_changes_what_it_says():
    """The std rule skips its least-squares fit where a bound on the slope (the log-stds' range over points at
    least an iteration apart) shows the overflow cannot come within the horizon. Against the same rule fitting
    every record: the same verdicts and the same state, on climbs of every pace, logged every 1 or 5 iterations,
    with a rollback's earlier iterations in the middle."""
    from watchdog.detectors import PolicyStd

    cfg = WatchdogConfig()
    rng = np.random.default_rng(11)
    alarms = 0
    for case in range(60):
        every = 1 if case % 2 else 5
        pace = [0.0, 0.02, 0.1, 0.3, 1.0][case % 5]
        start = float(rng.uniform(-1, 30))
        iterations = list(range(0, 400 * every, every))
        if case % 3 == 0:  # a rollback to 100 updates back, at 250 points in
            iterations = iterations[:250] + [it - 100 * every for it in iterations[250:]]
        gated, fitted = PolicyStd(cfg.policy_std, cfg.warmup), PolicyStd(cfg.policy_std, cfg.warmup)
        said = {True: [], False: []}
        skipped = 0
        for i, it in enumerate(iterations):
            log_std = start + pace * max(0, i - 150) / every + rng.normal(0, 0.05)
            record = MetricRecord.from_mapping(it, it, {"train/log_std_mean": log_std})
            fitted._ordered = 0  # never skips
            for det in (gated, fitted):
                verdict = det.update(record)
                said[det is gated].append(None if verdict is None else (verdict.level, verdict.reason))
            skipped += gated._ordered >= cfg.policy_std.rate_points and gated.warn_since is None
        assert said[True] == said[False]
        assert gated.state_dict() == fitted.state_dict()
        if pace == 0.0:
            assert skipped > 300  # the fit is skipped on most records of a quiet std
        alarms += any(v is not None and v[0] == "alarm" for v in said[True])
    assert alarms >= 20  # the climbs reach the alarm too


def _trend_at(tail: list[float], every: int, span: int | None = None) -> list[tuple[int, str]]:
    """:func:`_trend_verdicts` after 1,000 settled iterations, with ``trend.alarm_span_iters`` ``span``."""
    return _trend_verdicts(tail, every=every, settled_iters=1000, **({} if span is None else {"alarm_span_iters": span}))


def test_a_trend_alarm_needs_its_climb_to_span_five_iterations_at_any_logging_rate():
    """rl_games' normalised critic loss on Hopper (a 2,500-epoch healthy run, session 25) bursts from 0.005 to
    0.11, 0.22, 0.17 for three updates and is back: per iteration that was a trend alarm (two points at the CUSUM's
    cap, a 3-point level 4.7x the top of its range) and a rollback of a run holding its return. An alarm's climb
    now spans 5 iterations (the value-loss rule's patience_iters): a 3-update burst is a warning; the same climb
    held is an alarm 2 updates later; logged every 5 iterations, the first high 3-point level already spans 10."""
    burst = [0.11, 0.22, 0.17] + [0.02] * 10
    assert _trend_at(burst, every=1) == [(2, "warning"), (3, "warning")]
    assert _trend_at(burst, every=1, span=0) == [(2, "alarm"), (3, "alarm")]  # before session 25
    held = [0.11, 0.22, 0.17, 0.2, 0.25, 0.3, 0.3]
    assert _trend_at(held, every=1) == [(2, "warning"), (3, "warning"), (4, "alarm"), (5, "alarm"), (6, "alarm")]
    assert _trend_at(held, every=1, span=0)[0] == (2, "alarm")
    # logged every 5 iterations: the first high 3-point level spans 10 iterations, an alarm where it always was
    assert _trend_at(held, every=5)[0] == _trend_at(held, every=5, span=0)[0] == (2, "alarm")


def test_a_critic_grad_norm_logged_as_0_before_its_first_update_sets_no_limit_of_0():
    """A review of session 29: a critic grad norm logged as 0 for its first 60 iterations (no update yet) made the
    baseline's median 0, the limit 0, and every later norm "over" it; over-limit points never join the baseline, so
    a flat 0.05 (far under the 1.0 ceiling) was a standing warning to the run's end, and no stable checkpoint was
    kept after it. A norm of 0 carries no scale: it is left out."""
    from watchdog.detectors import CriticGradNorm

    cfg = WatchdogConfig()
    rng = np.random.default_rng(0)
    det = CriticGradNorm(cfg.critic_grad_norm, cfg.warmup)
    said = [i for i in range(400) if det.update(MetricRecord.from_mapping(
        i, (i + 1) * 100, {CRITIC_GRAD_NORM: 0.0 if i < 60 else 0.05 * math.exp(rng.normal(0, 0.2))}))]
    assert said == []
    jump = [i for i in range(400, 420) if det.update(MetricRecord.from_mapping(i, (i + 1) * 100, {CRITIC_GRAD_NORM: 5.0}))]
    assert jump[:1] == [402]  # a real jump is still said (patience 3 points)
