"""Long runs with a real fault in the training itself: the watchdog must call them diverged, after the fault.

The event files under tests/data/long_faults/ were written by the real libraries (make_long_faults.py,
which drives tests/data/frameworks/make_runs.py as the long healthy runs do) with the learning rate
multiplied by 100 from a known iteration on; nothing in the logs was edited. See its README for the
curves. A run that really diverged must be called diverged, with its first alarm at or after the fault
and no alarm before it. Where the watchdog misses one, the case is a strict xfail whose reason is the
finding (the detectors are not tuned to make these runs pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.replay import find_run_dirs, replay_run

FAULTS = Path(__file__).resolve().parents[1] / "data" / "long_faults"

# run folder (below FAULTS), fault iteration, PPO iterations replay reads, finding that makes it fail
RUNS = [
    ("rsl_rl/push_lite_lr_fault/logs/2026-11-30_06-00-00", 300, 500, None),
    ("sb3/cartpole_lr_fault/PPO_1", 200, 299, None),  # 300 rollouts; SB3's first dump precedes any update
]


def _case(run: str, fault: int, iterations: int, finding: str | None):
    marks = [pytest.mark.xfail(strict=True, reason=finding)] if finding else []
    return pytest.param(run, fault, iterations, marks=marks, id="/".join(run.split("/")[:2]))


def test_every_long_fault_run_is_in_the_table():
    assert {str(p.relative_to(FAULTS)) for p in find_run_dirs([FAULTS])} == {r for r, *_ in RUNS}


@pytest.mark.parametrize(("run", "fault", "iterations"), [_case(*case) for case in RUNS])
def test_real_divergence_is_called_diverged_after_the_fault(run, fault, iterations):
    report = replay_run(FAULTS / run)
    info = report.to_dict()
    assert report.iterations == iterations
    alarms = [e for e in info["events"] if e["event"] == "alarm"]
    assert not [a for a in alarms if a["iteration"] < fault], alarms
    assert report.verdict == "diverged", info["events"]
    assert info["first_alarm"]["iteration"] >= fault, info["first_alarm"]


def test_rsl_rl_onset_is_dated_by_the_reward_near_the_fault_and_the_rollback_lands_before_it():
    """The value loss had risen healthily at 160-180 (first success bonuses, see long_runs/README); a
    reward-corroborated alarm is dated by the reward's fall, and the stable checkpoints went on through
    the value loss's advisory warnings, so the rollback lands just before the fault."""
    report = replay_run(FAULTS / RUNS[0][0])
    info = report.to_dict()
    fault = RUNS[0][1]
    assert info["onset"] is not None and abs(info["onset"]["iteration"] - fault) <= 10, info["onset"]
    assert info["first_alarm"]["detector"] == "corroboration"
    first = report.would_roll_back[0]
    assert fault - 20 <= first["to_iteration"] < fault and first["onset_iteration"] >= fault - 5, first


def test_sb3_policy_collapse_is_caught_when_the_return_follows_the_entropy_down_and_dated_by_the_entropy():
    """lr x100 from the update logged at rollout 201 (index 201): the entropy falls 0.63 -> 0.01 within 50
    rollouts while the return still rises (an advisory entropy_collapse warning), then the return falls
    56 -> 10; the value loss spikes and shrinks again and a Categorical policy logs no std. The reward
    collapse together with the collapsed entropy is the alarm, dated by the entropy's fall (where it
    last sat in its recent range), and the rollback lands before the first faulty update."""
    report = replay_run(FAULTS / RUNS[1][0])
    info = report.to_dict()
    fault = RUNS[1][1]
    warned = [(e["iteration"], e["detector"]) for e in info["events"] if e["event"] == "warning"]
    assert ("entropy_collapse" in [d for _, d in warned]
            and min(i for i, d in warned if d == "entropy_collapse") < info["first_alarm"]["iteration"]), warned
    assert info["first_alarm"]["detector"] == "policy_collapse", info["first_alarm"]
    assert fault - 10 <= info["onset"]["iteration"] <= fault + 10, info["onset"]
    first = report.would_roll_back[0]
    assert fault - 30 <= first["to_iteration"] <= fault and abs(first["onset_iteration"] - fault) <= 10, first
