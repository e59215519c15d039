"""The driver contract: one dispatch loop and one stable-checkpoint registry for every driver."""

from __future__ import annotations

import math

import pytest

from tests.watchdog.drive import Outcome, drive
from tests.watchdog.synthetic import diverge, healthy, records
from watchdog.config import WatchdogConfig
from watchdog.driver import ConfigSwitch, StableRegistry, VirtualDriver, carry_out
from watchdog.pipeline import Watchdog
from watchdog.policy import CheckpointRef, Rollback, SaveStable
from watchdog.signals import VALUE_LOSS, MetricRecord


def ref(it: int) -> CheckpointRef:
    return CheckpointRef(f"stable_{it}", it, it * 100)


def test_registry_keeps_the_first_and_the_newest_and_says_what_it_let_go():
    reg = StableRegistry(keep=3)
    evicted = [r.iteration for it in range(0, 60, 10) for r in reg.add(ref(it))]
    assert [r.iteration for r in reg] == [0, 30, 40, 50] and evicted == [10, 20]


@pytest.mark.parametrize(("iteration", "expected"), [(35, 30), (30, 30), (29, 20), (0, 0), (-5, 0), (99, 50)])
def test_registry_target_is_the_newest_at_or_before_else_the_oldest(iteration, expected):
    reg = StableRegistry(keep=10)
    for it in range(0, 60, 10):
        reg.add(ref(it))
    assert reg.target_before(iteration).iteration == expected


def test_registry_abandons_the_stretch_after_a_rollback_target():
    reg = StableRegistry(keep=10)
    for it in range(0, 60, 10):
        reg.add(ref(it))
    assert [r.iteration for r in reg.abandon_after(20)] == [30, 40, 50]
    reg.add(ref(25))  # training goes on from 20: new saves come after it
    assert [r.iteration for r in reg] == [0, 10, 20, 25]


def nan_at(n: int, bad: int, *, start: int = 0) -> list[MetricRecord]:
    return [MetricRecord(i, (i + 1) * 100, {VALUE_LOSS: math.nan if i == bad else 0.01}) for i in range(start, n)]


def test_a_nan_out_of_a_quiet_run_has_an_exact_onset_and_rolls_back_to_just_before_it():
    # stable checkpoints at 0, 10, 20, 30; NaN at 35 (no rise before it): back to 30, not 20
    out = drive(nan_at(40, 35))
    rb, = out.rollbacks
    assert (rb.onset.iteration, rb.onset.method) == (35, "exact") and rb.target.iteration == 30


def test_an_estimated_onset_keeps_at_least_the_margin_inclusive():
    # checkpoints every 10 iterations; a climb from 180: the newest at least 10 before the onset
    cfg = WatchdogConfig.model_validate({"value_loss": {"enabled": False}, "trend": {"enabled": False}})
    out = drive(records(diverge(healthy(260, seed=7), 180, "exp", rate=0.3, nan_at=188)), cfg,
                stop_after_rollback=True)
    rb = out.rollbacks[0]
    assert rb.onset.method != "exact"
    latest = min(rb.onset.iteration - cfg.policy.onset_margin_iters, rb.onset.low - 1)  # the range's low end too
    assert latest - cfg.policy.stable_every_iters < rb.target.iteration <= latest


class Rank(VirtualDriver):
    """A rank's driver: it holds exactly the copies the registry told it to keep, nothing of its own."""

    def __init__(self):
        self.held, self.restored = set(), []

    def save(self, action: SaveStable, watchdog_state) -> str | None:
        self.held.add(action.tag)
        return f"run/checkpoints/watchdog/{action.tag}"

    def forget(self, ref: CheckpointRef, *, abandoned: bool, reason: str | None = None) -> None:
        self.held.discard(ref.tag)

    def restore(self, action: Rollback) -> None:
        assert action.target.tag in self.held  # the registry only names copies this rank still holds
        self.restored.append(action.target)


def test_every_rank_goes_back_to_the_protected_first_checkpoint_on_an_old_onset():
    # 40+ stable checkpoints (more than keep_stable), then a climb whose onset precedes all the kept
    # ones but the run's first. Retention lives in the library registry, so every rank (disk or
    # not) holds the same copies and rolls back to the same one: the protected first checkpoint.
    cfg = WatchdogConfig.model_validate({"policy": {"stable_every_iters": 5, "keep_stable": 3}})
    recs = [MetricRecord(i, (i + 1) * 100, {VALUE_LOSS: 0.01 if i < 220 else 0.01 * 1.05 ** (i - 220)})
            for i in range(400)]
    ranks = [Rank(), Rank()]
    for driver in ranks:
        wd = Watchdog(cfg)
        for rec in recs:
            if not carry_out(wd, wd.observe(rec), driver, config_name="safe") or driver.restored:
                break
    assert ranks[0].held == ranks[1].held and len(ranks[0].held) <= cfg.policy.keep_stable + 1
    assert [t.iteration for t in ranks[0].restored] == [0] == [t.iteration for t in ranks[1].restored]


@pytest.mark.parametrize(("jump_at", "alarm_at"), [(505, None), (650, 655)])
def test_a_resumed_run_warms_up_again(jump_at, alarm_at):
    # a run resumed at iteration 500 without the watchdog's state: 30x for 10 iterations, 5 iterations
    # after the resume, is warm-up (its baseline is not known yet); the same jump once settled is an alarm
    recs = [MetricRecord(i, (i + 1) * 100, {VALUE_LOSS: 0.3 if jump_at <= i < jump_at + 10 else 0.01})
            for i in range(500, 700)]
    out = drive(recs)
    assert [e["iteration"] for e in out.kinds("alarm")][:1] == ([alarm_at] if alarm_at else [])
    assert out.kinds("warning") == []


def test_a_restored_watchdog_continues_budget_registry_and_warm_up():
    wd = Watchdog()
    driver = Rank()
    for rec in nan_at(60, 55):
        carry_out(wd, wd.observe(rec), driver, config_name="safe")
    state = wd.state_dict()
    resumed = Watchdog()
    resumed.load_state_dict(state)
    resumed.resumed(ref(50), 51, recoveries=2)
    assert resumed.policy.rollbacks == 2  # the run's rollbacks and restarts so far, one budget
    assert [r.iteration for r in resumed.policy.registry][-1] == 50
    # warmed up already: a NaN is an alarm at once, and the next rollback is number 3 at lr x0.25
    acts = resumed.observe(MetricRecord(52, 5300, {VALUE_LOSS: math.nan}))
    rb, = [a for a in acts if isinstance(a, Rollback)]
    assert (rb.number, rb.lr_scale) == (3, 0.25)


def test_config_switch_event_lists_changes_and_kept_keys():
    events = []
    wd = Watchdog(listeners=[events.append])

    class Switching(VirtualDriver):
        def apply_config(self, action):
            return ConfigSwitch({"lr": (5e-3, 3e-4)}, {"episode_length": "the run keeps 100"})

    for rec in nan_at(30, 25):
        carry_out(wd, wd.observe(rec), Switching(), config_name="ppo_safe.yaml")
    switch, = [e for e in events if e["event"] == "config_switch"]
    assert switch["changes"] == {"lr": {"old": 5e-3, "new": 3e-4}}
    assert switch["kept"] == {"episode_length": "the run keeps 100"}


def test_a_restored_checkpoint_whose_run_goes_non_finite_again_at_once_is_passed_over():
    """skrl's learning-rate fault, live (tests/integrations/test_skrl.py): the update that broke the policy still
    logged finite numbers, so its checkpoint (60) was the newest stable one when the next update went NaN. A
    first NaN is an exact onset: back to 60. Restored, 60's weights go NaN again within the cooldown, at the safe
    config: they cannot train, and the next rollback goes back past them, to 50, and says so. A divergence
    with finite numbers after a restore keeps its checkpoint as the target (at the next rollback's lr)."""
    from watchdog.console import WatchdogConsole

    events: list[dict] = []
    wd = Watchdog(listeners=[events.append])
    driver = Rank()
    recs = [MetricRecord(i, (i + 1) * 100, {VALUE_LOSS: math.nan if i in (61, 62) else 0.01}) for i in range(90)]
    for rec in recs:
        assert carry_out(wd, wd.observe(rec), driver, config_name="safe")
    first, second = [e for e in events if e["event"] == "rollback"]
    assert (first["to_iteration"], first["onset_iteration"]) == (60, 61) and "passed_over" not in first
    assert (second["to_iteration"], second["onset_iteration"], second["passed_over"]) == (50, 62, 60)
    assert [t.iteration for t in driver.restored] == [60, 50]
    assert [e["event"] for e in events if e["iteration"] > 62 and e["event"] not in ("metrics", "stable_checkpoint")] \
        == ["recovered"]  # and trained on
    import io

    out = io.StringIO()
    WatchdogConsole(out, rich=False)(second)
    assert "rolled back #2 to it 50" in out.getvalue() and "past it 60's checkpoint, restored last time" in out.getvalue()
    # the restored iteration is part of the policy's state (a resumed or torchrun rank decides the same)
    resumed = Watchdog()
    resumed.load_state_dict(wd.state_dict())
    assert resumed.policy.restored_iteration == 50


def test_a_watchdog_reloaded_from_its_state_after_a_rollback_decides_as_one_that_never_stopped():
    """``state_dict`` left out ``restored_at`` (the checkpoint the last rollback restored, where a later divergence is
    dated at the earliest): a watchdog reloaded from it (a stable checkpoint's meta.json, through JSON) after a rollback
    rolled back elsewhere than one that never stopped. Found by an audit (session 19)."""
    import json
    import random

    from watchdog.frameworks import config_for_run
    from watchdog.signals import APPROX_KL, EPISODE_RETURN, POLICY_ENTROPY, POLICY_LOSS

    rng = random.Random(7)
    records = []
    for i in range(700):
        m = {EPISODE_RETURN: 100 + 50 * (1 - math.exp(-i / 100)) + rng.gauss(0, 2), POLICY_LOSS: rng.gauss(-0.01, 0.005),
             POLICY_ENTROPY: 1.0 - 0.0005 * i + rng.gauss(0, 0.01), APPROX_KL: abs(rng.gauss(0.01, 0.003)),
             VALUE_LOSS: 0.05 * math.exp(rng.gauss(0, 0.2))}
        if i >= 400:
            m[VALUE_LOSS] *= min(1.3 ** (i - 400), 1e5)
            m[APPROX_KL] *= 50
            m[POLICY_ENTROPY] -= 0.05 * (i - 400) ** 0.5
        if i >= 420:
            m[EPISODE_RETURN] *= 0.3
        records.append(MetricRecord(i, (i + 1) * 2048, m))
    cfg = config_for_run(WatchdogConfig(), {"framework": "sb3", "keys": sorted(records[0].metrics)})

    def drive_from(wd: Watchdog, recs: list[MetricRecord]) -> list[list[str]]:
        out = []
        for rec in recs:
            actions = wd.observe(rec)
            out.append([f"{type(a).__name__}{getattr(getattr(a, 'target', None), 'iteration', '')}" for a in actions])
            if not carry_out(wd, actions, VirtualDriver(), config_name="safe"):
                break
        return out

    never = drive_from(Watchdog(cfg), records)
    first = Watchdog(cfg)
    before = drive_from(first, records[:410])  # after the first rollback (409), before the second alarm (411)
    assert first.restored_at is not None  # a rollback came before the split
    reloaded = Watchdog(cfg)
    reloaded.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert before + drive_from(reloaded, records[408:]) == never


def test_a_run_resumed_into_its_own_folder_keeps_stable_checkpoints_of_its_new_trajectory():
    """Iterations 0..799, then 500..899 (a run resumed from 500 into the same log folder): the second trajectory's
    first healthy point is stable, and so is every 10th after it, so a NaN at 655 rolls back to its own 650. Until
    session 19 it kept none until it passed 790, and the rollback went to the first trajectory's 650 (found by an
    audit)."""
    records = [MetricRecord(i, (i + 1) * 100, {VALUE_LOSS: 0.01}) for i in range(800)]
    records += [MetricRecord(i, (i + 1) * 100, {VALUE_LOSS: math.nan if i == 655 else 0.01}) for i in range(500, 900)]
    events = []
    wd = Watchdog(listeners=[events.append])
    for rec in records:
        carry_out(wd, wd.observe(rec), VirtualDriver(), config_name="safe")
    kept = [(e["checkpoint_iteration"], i) for i, e in enumerate(events) if e["event"] == "stable_checkpoint"]
    second = [(it, i) for it, i in kept[[it for it, _ in kept].index(790) + 1:]]  # kept after the first trajectory
    assert [it for it, _ in second[:3]] == [500, 510, 520], second[:5]
    (rollback_at, rollback), = [(i, e) for i, e in enumerate(events) if e["event"] == "rollback"]
    assert rollback["to_iteration"] == 650 and any(it == 650 and i < rollback_at for it, i in second)


def test_a_run_resumed_into_its_own_folder_is_judged_as_the_trajectory_that_goes_on_from_there():
    """A preempted run (iterations 0..300) resumed from 100 into the same log folder, whose value loss then climbs from
    250: its detectors judge the resumed stretch as a watchdog that had watched 0..100 and then the resumed stretch
    would (the same first warning and alarm). Until session 20 they went on with windows holding the abandoned
    stretch's later points (here a trend warning at 318, where the continuous watchdog's first is at 330)."""
    rows = healthy(500)
    climbing = records(diverge(rows, 250, "exp", rate=0.05))
    continuous = drive(records(rows)[:101] + climbing[101:])
    resumed = drive(records(rows)[:301] + climbing[101:])
    assert [(o.first("warning")["iteration"], o.first("alarm")["iteration"]) for o in (continuous, resumed)] == \
        [(330, 319)] * 2
    assert all(250 - 30 <= r.target.iteration < 250 for r in resumed.rollbacks)  # its own checkpoints, before the climb



def test_a_run_resumed_from_before_a_rollbacks_target_dates_its_divergence_before_its_alarm():
    """Found by a fuzz of session 29: replay rolled a run back (virtually) from a NaN at 300 to 290; the logged run
    was later resumed from 200 into the same folder and its value loss climbed from 230. The onset was dated no
    earlier than 290, the old rollback's target (the rule for a divergence after a rollback), so after the alarm
    (an onset in the future), and the rollback went to the first trajectory's checkpoint. A log that goes back
    before the restore point leaves that point behind, and the checkpoints after where it went back with it."""
    rows = healthy(500)
    first = records(rows)[:400]
    first[300].metrics[VALUE_LOSS] = math.nan
    out = drive(first + records(diverge(rows, 230, "exp"))[200:300])
    (nan_rollback, climb_rollback, *_) = out.rollbacks
    assert (nan_rollback.from_iteration, nan_rollback.target.iteration) == (300, 290)
    climb = out.kinds("alarm")[1]
    assert climb["iteration"] < 290 and 220 <= climb["onset_iteration"] <= 240  # was 290: after the alarm
    assert 210 <= climb_rollback.target.iteration <= climb_rollback.onset.iteration == climb["onset_iteration"]


def test_a_run_restarted_from_scratch_in_a_rollbacks_cooldown_rolls_back_to_its_own_checkpoint():
    """Found by the same fuzz: a run logged from 40 (a NaN at 290, rolled back to 280) restarted from scratch into
    the same folder during that rollback's cooldown, NaN at 20. The old cooldown (until 310) held the new
    trajectory's stable checkpoints back, and the registry still held the old stretch's: the rollback went "back"
    from 20 to the old run's 40. The cooldown and the checkpoints of an abandoned stretch go with it."""
    rows = healthy(300)
    first = records(rows)[40:]
    first[290 - 40].metrics[VALUE_LOSS] = math.nan
    again = records(rows)[:60]
    again[20].metrics[VALUE_LOSS] = math.nan
    out = drive(first + again)
    assert [(r.from_iteration, r.target.iteration) for r in out.rollbacks] == [(290, 280), (20, 10)]
    restart = next(i for i, e in enumerate(out.events) if e["iteration"] == 0)
    saved_again = [e["checkpoint_iteration"] for e in out.events[restart:] if e["event"] == "stable_checkpoint"]
    assert saved_again[:2] == [0, 10]


def test_a_divergence_dated_just_after_a_restore_goes_back_to_the_restore_point_not_past_it():
    """A review of session 29: a NaN batch at 301 rolled back to 300; the restored run's value loss then climbed with
    finite numbers from 306. Dated at 305 (after the restore point), the onset margin (10) took the target to 290,
    while an onset dated at 300 itself has 300: a later onset, an older checkpoint. The restore point is the floor."""
    import random

    rng = random.Random(1)
    recs = []
    for i in range(420):
        loss = (0.006 + 2.0 * math.exp(-i / 15)) * math.exp(rng.gauss(0, 0.25))
        recs.append(MetricRecord(i, (i + 1) * 1000, {VALUE_LOSS: math.nan if i == 301 else
                                                      loss * math.exp(0.5 * (i - 305)) if i >= 306 else loss}))
    out = drive(recs)
    assert [(r.from_iteration, r.target.iteration) for r in out.rollbacks][:2] == [(301, 300), (313, 300)]
    assert out.rollbacks[1].onset.iteration > 300  # dated after the restore point, as before


def test_a_divergence_dated_just_after_a_restart_goes_back_to_the_restart_checkpoint_not_past_it():
    """The test above across processes: ``watchdog run`` restarted the run from its checkpoint at 300 (a crash at 304),
    and the value loss climbed from 306. The restore point was the pipeline's alone (the onset floor) and not the
    policy's (the target floor), so the onset dated 306 went back 10 further, to 290, and so did the next rollback
    (until session 30, when the restore point became one state, the policy's)."""
    import random

    rng = random.Random(1)
    recs = []
    for i in range(420):
        loss = (0.006 + 2.0 * math.exp(-i / 15)) * math.exp(rng.gauss(0, 0.25))
        recs.append(MetricRecord(i, (i + 1) * 1000, {VALUE_LOSS: loss * math.exp(0.5 * (i - 305)) if i >= 306 else loss}))
    out = Outcome()
    wd = Watchdog(None, listeners=[out.events.append])
    for rec in recs[:305]:
        carry_out(wd, wd.observe(rec), out, config_name="ppo_safe.yaml")
    (ref,) = [r for r in wd.policy.registry if r.iteration == 300]
    wd.restart_replayed({"checkpoint": f"/run/{ref.tag}", "reason": "exit code 1"}, recovery=True)
    assert wd.restored_at == wd.policy.restored_iteration == 300
    for rec in recs[301:]:
        if not carry_out(wd, wd.observe(rec), out, config_name="ppo_safe.yaml"):
            break
    assert [(r.target.iteration, r.onset.iteration) for r in out.rollbacks][:2] == [(300, 306), (300, 300)]


def test_alert_mode_recovers_once_the_signal_is_back_below_the_level_that_raised_the_alarm():
    """The other side of test_watch's million-fold SB3 blow-up (session 20): a 60x step from 200 that came back to its
    healthy level at 260 is healthy again after the usual quiet points, not diverged for ever."""
    cfg = WatchdogConfig(action="alert")
    back = diverge(healthy(400), 200, "step")
    for r in back[260:]:
        r["value_loss"] /= 60.0
    out = drive(records(back), cfg)
    assert out.kinds("alarm") and [e["iteration"] >= 260 for e in out.kinds("recovered")] == [True]
    assert out.watchdog.state.value == "healthy"


def test_alert_mode_recovers_from_a_forecast_and_through_records_without_the_alarms_signal():
    """From a review (session 20) of the rule above: policy_std's alarm is a forecast (its threshold, 43, is the overflow
    it heads for), so 'the healthy side of it' was the overflow itself and the run never recovered; and a record
    without the alarm's signal (two loggers writing at their own steps) reset the quiet points each time."""
    import random

    from watchdog.signals import EPISODE_RETURN, LOG_STD_MAX

    rng = random.Random(0)
    events: list[dict] = []
    std = Watchdog(WatchdogConfig(action="alert"), listeners=[events.append])
    for i in range(400):  # the log-std climbs +2 an iteration to 30 (within 30 of the overflow), then back at 0 from 130
        log_std = 0.0 if i < 100 or i >= 130 else min(2.0 * (i - 100), 30.0)
        std.observe(MetricRecord(i, i * 100, {VALUE_LOSS: 0.05 * (1 + 0.1 * rng.random()), LOG_STD_MAX: log_std}))
    assert [e["detector"] for e in events if e["event"] == "alarm"] == ["policy_std"] and std.state.value == "healthy"
    events = []
    sparse = Watchdog(WatchdogConfig(action="alert"), listeners=[events.append])
    for i in range(600):  # a 60x step from 200, back at 260; from 200 the value loss on every other record only
        value = 0.05 * (1 + 0.2 * rng.random()) * (60 if 200 <= i < 260 else 1)
        sparse.observe(MetricRecord(i, i * 10, {VALUE_LOSS: value} if i % 2 == 0 or i < 200 else {EPISODE_RETURN: 100.0}))
    recovered = [e["iteration"] for e in events if e["event"] == "recovered"]
    assert len(recovered) == 1 and 260 <= recovered[0] <= 280 and sparse.state.value == "healthy"


@pytest.mark.parametrize("gone_after", [100, -1])
def test_a_rollback_target_that_cannot_be_read_makes_way_for_an_older_one_else_the_run_stops(gone_after):
    """Found by an audit (session 21): a target gone from disk (a checkpoint of an earlier process, held in no memory)
    ended the run as bad input. Now the next older target is taken, and the rollback event lists the ones passed over;
    with none readable the run stops as a divergence with nothing to roll back to does, and the checkpoints after the
    onset are no restart point (a review: that stop first left them stable)."""
    from tests.watchdog.drive import Outcome
    from watchdog.errors import CheckpointError

    class Gone(Outcome):
        """The stable checkpoints after ``gone_after`` are gone from disk (and from memory: an earlier process's)."""
        def restore(self, action: Rollback) -> None:
            if action.target.iteration > gone_after:
                raise CheckpointError(f"{action.target.tag}: no meta.json (not a watchdog checkpoint or an interrupted write)")
            super().restore(action)

    cfg = WatchdogConfig.model_validate({"warmup": {"min_iters": 5, "baseline_points": 5},
                                         "policy": {"stable_every_iters": 4, "onset_margin_iters": 2}})
    out, marked = Gone(), []
    out.forget = lambda ref, *, abandoned, reason=None: marked.append((ref.iteration, abandoned))
    wd = Watchdog(cfg, listeners=[out.events.append])
    for i in range(150):  # the value loss climbs 10 % an iteration from 110: the alarm at 140 dates it 111
        rec = MetricRecord.from_mapping(i, 100 * (i + 1), {VALUE_LOSS: 0.01 * (1 + 0.2 * math.sin(i)) * 1.1 ** max(0, i - 110)})
        if not carry_out(wd, wd.observe(rec), out, config_name="safe.yaml") or out.rollbacks:
            break
    alarm = out.first("alarm")
    assert (alarm["iteration"], alarm["onset_iteration"]) == (140, 111)
    if gone_after > 0:
        rollback, = out.kinds("rollback")
        assert rollback["to_iteration"] == 100 and rollback["number"] == 1 and not out.stops
        assert rollback["unreadable"] == [f"stable_{100 * (i + 1)}_steps: no meta.json (not a watchdog checkpoint or an "
                                          "interrupted write)" for i in (108, 104)]
        assert [t.target.iteration for t in out.rollbacks] == [100]
    else:
        stop, = out.kinds("stop")
        assert stop["reason"].startswith("divergence, and no readable stable checkpoint to roll back to (stable_10900")
        assert stop["rollbacks"] == 0 and not out.kinds("rollback") and out.stops
        distrust, = out.kinds("distrust")
        assert distrust["after_iteration"] == 109 and len(distrust["checkpoints"]) == 7  # 112-136
        assert sorted(it for it, abandoned in marked if abandoned) == list(range(112, 140, 4))
