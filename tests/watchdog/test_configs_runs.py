"""Real healthy runs in configurations the other data lacks (tests/data/configs, sessions 20 to 23): no alarm, no
rollback, no run ending in ``warning``. Four kinds of them were false alarms before (the folder's README has the numbers).
Session 23's seed sweep added two runs the watchdog still judges wrongly: strict xfails whose reason is the finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.replay import iter_run_dirs, replay_run

DATA = Path(__file__).resolve().parents[1] / "data" / "configs"
# session 23, a seed sweep: skrl InvertedPendulum (KLAdaptiveLR, RunningStandardScaler on values), made to be healthy,
# balanced the pole (return 1000) from about 100 on, and lost it in its last 6 updates (return 815, 15, 842, 355, 15)
COLLAPSED_AT_ITS_END = "skrl/invpendulum_klada_rss_seed3/runs/26-12-01_00-00-00-000000_PPO"
RUNS = [p.relative_to(DATA).as_posix() for p in iter_run_dirs(DATA)]
# session 23, the same sweep: rl_games CartPole with value normalisation, seed 3, healthy (return 180-290 from 140 on)
FALSE_ALARM = "rl_games/cartpole_discrete_valuenorm_adaptive_seed3/runs/cartpole_ppo"
FALSE_ALARM_FINDING = (
    "the normalised critic loss jumps from 0.001-0.005 to 0.1-0.9 whenever long episodes end together; the 0.2 rule "
    "armed at 249 with such bursts inside its arming window (never credited as excursions), and a 12-epoch burst at "
    "261-272 is an alarm at 265 (docs/detection.md, Not met: crediting the window's bursts was tried and not kept)")
HEALTHY = [pytest.param(run, marks=pytest.mark.xfail(strict=True, reason=FALSE_ALARM_FINDING)) if run == FALSE_ALARM
           else run for run in RUNS if run != COLLAPSED_AT_ITS_END]


def test_every_run_in_the_folder_is_found():
    assert len(RUNS) == 21 and {r.split("/")[0] for r in RUNS} == {"sb3", "rsl_rl", "skrl", "rl_games"}
    assert COLLAPSED_AT_ITS_END in RUNS and FALSE_ALARM in RUNS


@pytest.mark.parametrize("run", HEALTHY)
def test_a_healthy_run_in_a_new_configuration_replays_healthy(run):
    report = replay_run(DATA / run)
    said = [(e["event"], e["iteration"], e.get("detector")) for e in report.events
            if e["event"] in ("alarm", "rollback", "stop") or (e["event"] == "warning" and not e.get("advisory"))]
    assert report.verdict == "healthy" and said == [] and report.first_nonfinite is None, said



def test_a_collapse_after_a_critic_drifted_at_numerical_zero_is_an_alarm_at_its_first_point():
    """What the watchdog says today. The pole falls at 294 (value loss 9e-4 -> 3.3, then 1-1.9; return 1000 -> 15). The
    critic had drifted from 4e-6 to 1e-3 since about 195, each point "3x its settled level", so the fall's first point
    ends a 101-point departure: the alarm is right, at the fall's first point."""
    report = replay_run(DATA / COLLAPSED_AT_ITS_END)
    assert report.run_info["value_loss_rule"] and report.verdict == "diverged"
    assert (report.first_alarm["iteration"], report.first_alarm["detector"]) == (294, "value_loss_threshold")


@pytest.mark.xfail(strict=True, reason="the drift at numerical zero is read as the departure's start: the onset is "
                   "dated 141 and the rollback goes to 120, 174 updates of a balanced pole lost (docs/detection.md, Not "
                   "met: a floor under the settled level was tried and not kept)")
def test_a_collapse_after_a_critic_drifted_at_numerical_zero_is_rolled_back_to_just_before_it():
    report = replay_run(DATA / COLLAPSED_AT_ITS_END)
    assert report.would_roll_back[0]["to_iteration"] >= 270
