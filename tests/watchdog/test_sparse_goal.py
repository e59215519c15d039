"""Healthy runs whose critic meets a sparse goal's returns: a value-loss blow-up that is learning.

The event files under tests/data/sparse_goal/ were written by SB3 itself (make_sparse_goal.py: the RL
Baselines3 Zoo's MountainCarContinuous hyper-parameters, 117 updates). In three runs the first episodes
reach the flag (+100) and the unnormalised value loss jumps 5,000-44,000x in one update while the
return jumps with it; in one the critic fits returns of about -1.5 so closely that its loss wanders
between 1e-7 and 5e-4. Before these rules all five replayed as diverged (two stopped after three
rollbacks each). A blow-up that keeps climbing stays an alarm, return or not.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from tests.watchdog.drive import drive
from watchdog.config import WatchdogConfig
from watchdog.frameworks import config_for_run
from watchdog.replay import find_run_dirs, load_run, replay_run
from watchdog.signals import EPISODE_RETURN, VALUE_LOSS, MetricRecord

DATA = Path(__file__).resolve().parents[1] / "data" / "sparse_goal"
REACHED = {"zoo_norm_seed0": 71, "zoo_norm_seed1": 44, "zoo_norm_seed2": 12, "zoo_raw_seed2_std1": 5}  # -> blow-up at
RUNS = sorted(p.parent.name for p in find_run_dirs([DATA]))


def test_the_data_is_all_here():
    assert RUNS == sorted([*REACHED, "zoo_raw_seed0"])


@pytest.mark.parametrize("name", RUNS)
def test_a_healthy_sparse_goal_run_is_never_rolled_back(name):
    report = replay_run(DATA / name / "PPO_1")
    info = report.to_dict()
    assert info["framework"] == "sb3" and report.iterations == 117
    assert report.verdict == "healthy" and not report.would_roll_back, info["events"]
    assert not [e for e in info["events"] if e["event"] == "alarm"]
    blowups = [e for e in info["events"] if e["event"] == "warning" and e["detector"] == "blowup"]
    if name in REACHED:  # said once, advisory, where the return jumped with the loss
        assert [e["iteration"] for e in blowups] == [REACHED[name]]
        assert blowups[0]["advisory"] and "return jumped" in blowups[0]["reason"]
    else:
        assert not blowups


def test_a_blow_up_that_keeps_climbing_after_the_goal_is_an_alarm():
    """The same run with its value loss climbing on, x1.5 an update, from the update the goal was
    reached: the return's jump explained the first 5,000x, not a further 3x (envelope_factor): alarm
    within four updates (16 here: 4x above the blow-up's first level), dated before the blow-up."""
    data = load_run(DATA / "zoo_norm_seed2" / "PPO_1")
    records, reached = copy.deepcopy(data.records), REACHED["zoo_norm_seed2"]
    peak = max(r.metrics[VALUE_LOSS] for r in records if reached - 1 <= r.iteration <= reached)
    for rec in records:
        if rec.iteration > reached:
            rec.metrics[VALUE_LOSS] = peak * 1.5 ** (rec.iteration - reached)
    out = drive(records, config_for_run(WatchdogConfig(), data.info), stop_after_rollback=True)
    alarm = out.first("alarm")
    assert alarm["detector"] == "blowup" and "still climbing" in alarm["reason"], out.events
    assert reached < alarm["iteration"] <= reached + 4 and alarm["onset_iteration"] < reached
    assert out.rollbacks


def test_without_the_return_the_same_jump_is_an_alarm():
    """The advisory needs the return: a log without it (or a normalised run) keeps the alarm."""
    data = load_run(DATA / "zoo_norm_seed2" / "PPO_1")
    cfg = config_for_run(WatchdogConfig(), data.info)
    cfg = cfg.model_copy(update={"blowup": cfg.blowup.model_copy(update={"explained_by": None})})
    out = drive(data.records, cfg, stop_after_rollback=True)
    alarm = out.first("alarm")
    assert alarm["detector"] == "blowup" and alarm["iteration"] == REACHED["zoo_norm_seed2"]


ACROBOT = Path(__file__).resolve().parents[1] / "data" / "configs" / "sb3" / "acrobot_obsnorm_sparse" / "PPO_1"


def _acrobot(change=None):
    data = load_run(ACROBOT)
    records = copy.deepcopy(data.records)
    for rec in records:
        if change is not None and EPISODE_RETURN in rec.metrics:
            rec.metrics[EPISODE_RETURN] = change(rec.iteration, rec.metrics[EPISODE_RETURN])
    return drive(records, config_for_run(WatchdogConfig(), data.info), stop_after_rollback=True)


def test_a_sparse_tasks_first_successes_in_a_100_episode_mean_are_no_blow_up():
    """SB3's Acrobot (session 22's audit; VecNormalize on the observations only): -500 for every episode until the
    first successes, a critic fitted to 0.02, and the value loss 10,000x that as successes come, while SB3's
    100-episode mean moves only -497.9 -> -492.2. The return held one value exactly before (the plateau) and never fell
    below it: the critic meeting new returns, advisory; it was two rollbacks to before the learning began."""
    out = _acrobot()
    assert out.first("alarm") is None and not out.rollbacks
    blowup = next(e for e in out.events if e["event"] == "warning" and e["detector"] == "blowup")
    assert blowup["iteration"] == 279 and blowup["advisory"] and "return jumped" in blowup["reason"]


def test_a_plateau_that_is_no_floor_or_a_return_learned_far_from_it_keeps_the_alarm():
    """The plateau stands for a sparse task's failures only where no return was ever below it (a dense task's
    staircase above its early returns is no floor: the review of session 22 found rsl_rl InvertedPendulum and SB3
    CartPole runs holding one, whose injected blow-ups it silenced) and while the return is within 10% of it (the
    first successes: a critic that has since learned returns far from it blows up like any other)."""
    first = {}

    def below_first(it, ret):  # the run's first returns below the plateau it holds later
        first.setdefault("it", it)
        return ret - 50.0 if it < first["it"] + 3 else ret

    no_floor = _acrobot(below_first)
    assert (no_floor.first("alarm") or {}).get("iteration") == 279 and no_floor.first("alarm")["detector"] == "blowup"
    data = load_run(ACROBOT)
    records = [MetricRecord(it, 256 * (it + 1), {
        EPISODE_RETURN: -500.0 if it < 150 else -500.0 + 390.0 * (1 - math.exp(-(it - 150) / 60)),
        VALUE_LOSS: max(40.0 * math.exp(-it / 40), 0.01) * (1e5 if it >= 380 else 1.0) * (1 + 0.1 * math.sin(it))})
        for it in range(420)]
    learned = drive(records, config_for_run(WatchdogConfig(), data.info), stop_after_rollback=True)
    alarm = learned.first("alarm")
    assert alarm is not None and alarm["detector"] == "blowup" and 380 < alarm["iteration"] <= 383, learned.events


def test_without_an_exact_plateau_or_with_the_return_falling_the_same_blow_up_is_an_alarm():
    """The advisory rests on its evidence: a return that never held one value exactly (a dense task's mean, noise
    added here) keeps the alarm at 279; a return that falls back after the blow-up (the policy failing again while
    its critic errs) is an alarm within 10 updates."""
    noisy = _acrobot(lambda it, ret: ret + 0.01 * math.sin(it))
    assert (noisy.first("alarm") or {}).get("iteration") == 279 and noisy.first("alarm")["detector"] == "blowup"
    falling = _acrobot(lambda it, ret: -499.0 if it > 279 else ret)  # (said by the reward's rules: policy_collapse)
    alarm = falling.first("alarm")
    assert alarm is not None and 279 < alarm["iteration"] <= 290 and falling.rollbacks, falling.events
