"""rsl_rl, rl_games and skrl with 1,024 envs (Isaac Lab's scale, tests/data/many_envs): quiet when healthy
(for 600 iterations and for 2,000-3,000), a learning-rate fault or an observation spike rolled back to before
it, an entropy-coefficient fault that cost no return said and not rolled back. The event files were written by
the libraries themselves (make_many_envs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.replay import find_run_dirs, replay_run

DATA = Path(__file__).resolve().parents[1] / "data" / "many_envs"
# framework -> (healthy run, faulted run, whether its value targets are normalised: the 0.2 rule on)
RUNS = {
    "rsl_rl": ("rsl_rl/push_lite_healthy/logs/2026-11-30_18-00-00", "rsl_rl/push_lite_lr_fault/logs/2026-11-30_18-00-00",
               False),
    "rl_games": ("rl_games/push_lite_healthy/runs/push_lite_ppo", "rl_games/push_lite_lr_fault/runs/push_lite_ppo", True),
}
# the fault (lr x30 from update 300) -> (first alarm's detector, its iteration)
FIRST_ALARM = {
    "rsl_rl": ("blowup", 303),  # value loss 0.05 -> 2.4 (300) -> 66 (302), return 16.7 -> -6.4
    "rl_games": ("kl_surge", 304),  # KL per update 0.006 -> 65 (300) -> 880 (304), return 17.1 -> 14.0 (304)
}


# skrl with Isaac Lab's settings learned nothing here, with either learning-rate schedule
SKRL_ADAPTIVE = "skrl/push_lite_adaptive_lr/runs/26-11-30_18-00-00-000000_PPO"
SKRL_FIXED = "skrl/push_lite_fixed_lr/runs/26-11-30_18-00-00-000000_PPO"
SKRL_FIXED_3E4 = "skrl/push_lite_fixed_lr3e-4/runs/26-11-30_18-00-00-000000_PPO"
# session 9: healthy runs five and three times as long (seed 1), and a fault of another kind than the learning rate
LONG = {"rsl_rl": ("rsl_rl/push_lite_long_healthy/logs/2026-11-30_18-00-00", 3000),
        "rl_games": ("rl_games/push_lite_long_healthy/runs/push_lite_ppo", 2000)}
# the spike (8 of the 1,024 actors' observations x1e6 for one env step of iteration 300) -> (run, first alarm)
OBS_SPIKE = {"rl_games": ("rl_games/push_lite_obs_spike/runs/push_lite_ppo", ("value_loss_threshold", 305)),
             # (a blowup at 302 until session 20: the spike's single 1.3e9 is in its envelope now; the reward's
             # collapse with the value loss calls it 2 updates later, dated and rolled back alike)
             "rsl_rl": ("rsl_rl/push_lite_obs_spike/logs/2026-11-30_18-00-00", ("corroboration", 304))}
# session 10: rsl_rl's entropy coefficient x100 from update 300
ENTROPY_FAULT = "rsl_rl/push_lite_entropy_fault/logs/2026-11-30_18-00-00"


def test_the_data_is_all_here():
    assert {str(p.relative_to(DATA)) for p in find_run_dirs([DATA])} == (
        {r for runs in RUNS.values() for r in runs[:2]} | {SKRL_ADAPTIVE, SKRL_FIXED, SKRL_FIXED_3E4}
        | {run for run, _ in LONG.values()} | {run for run, _ in OBS_SPIKE.values()} | {ENTROPY_FAULT})


@pytest.mark.parametrize("framework", sorted(RUNS))
def test_a_healthy_run_with_a_thousand_envs_says_nothing(framework):
    healthy, _, normalised = RUNS[framework]
    report = replay_run(DATA / healthy)
    info = report.to_dict()
    assert info["framework"].startswith(framework) and report.iterations == 600
    assert info["value_loss_rule"] == normalised
    assert report.verdict == "healthy" and [e for e in info["events"] if e["event"] in ("warning", "alarm")] == []


@pytest.mark.parametrize("framework", sorted(RUNS))
def test_a_learning_rate_fault_with_a_thousand_envs_is_rolled_back_to_before_it(framework):
    report = replay_run(DATA / RUNS[framework][1])
    info = report.to_dict()
    assert report.verdict == "diverged"
    assert (info["first_alarm"]["detector"], info["first_alarm"]["iteration"]) == FIRST_ALARM[framework]
    first = report.would_roll_back[0]
    assert first["onset_iteration"] == 300 and first["to_iteration"] == 290


def test_a_surrogate_loss_blow_up_before_a_nan_dates_the_rollback():
    """skrl on the fixed lr 1e-3 (no KL adaptation): the surrogate loss 0.01-0.04 -> 0.18 (67) -> 7.7 (68) ->
    7.5e12 (71), every loss NaN from 72, the value loss flat. The NaN is dated by the surrogate loss's size
    (65, range 65-67) and rolled back to 50; dated exactly at 72 it went back to 70, after the blow-up began."""
    report = replay_run(DATA / SKRL_FIXED)
    info = report.to_dict()
    assert info["framework"] == "skrl" and info["value_loss_rule"] and report.verdict == "diverged"
    assert (info["first_alarm"]["detector"], info["first_alarm"]["iteration"]) == ("nonfinite", 72)
    first = report.would_roll_back[0]
    assert 64 <= first["onset_iteration"] <= 67 and first["to_iteration"] == 50


def test_a_run_whose_return_slides_slowly_is_not_rolled_back():
    """skrl with KLAdaptiveLR: its lr fell to 2.6e-5 within 50 updates and its return slid from 8 to -7.7 over
    600 updates, its value loss flat. No divergence the detectors are for: no alarm, no rollback; the
    reward's fall late in the run is one advisory warning (it never rose above its first judged window)."""
    report = replay_run(DATA / SKRL_ADAPTIVE)
    info = report.to_dict()
    assert report.verdict == "healthy" and not report.would_roll_back
    warned = [e for e in info["events"] if e["event"] in ("warning", "alarm")]
    assert [(e["event"], e["detector"], e.get("advisory")) for e in warned] == [("warning", "reward_collapse", True)]


def test_lone_surrogate_spikes_then_a_blow_up_are_a_surge_said_before_the_nan():
    """skrl on a fixed 3e-4 (made after ``surrogate_surge``): its surrogate loss spiked alone at 122, 132, 144
    and 146 (to 3e6), blew up from 149, NaN from 155. The surge is said at 146, dated at its first spike; the
    NaN is dated at the sustained blow-up (149: lone spikes do not move a 3-point median) and rolled back to
    130, before it."""
    report = replay_run(DATA / SKRL_FIXED_3E4)
    info = report.to_dict()
    warned = [e for e in info["events"] if e["event"] == "warning"]
    assert [(e["detector"], e["iteration"], e["onset_iteration"], e["advisory"]) for e in warned][:1] == [
        ("surrogate_surge", 146, 122, True)]
    assert (info["first_alarm"]["detector"], info["first_alarm"]["iteration"]) == ("nonfinite", 155)
    first = report.would_roll_back[0]
    assert first["onset_iteration"] == 149 and first["to_iteration"] == 130


def test_a_warning_in_the_restored_run_holds_off_recovery_after_a_rollback():
    """Found by a review (session 27): the end of a rollback's cooldown alone recovered the run, so the rl_games
    observation spike's restored run, warning since 308, recovered at 325 on the record of a warning (and said it
    again at 326); stable checkpoints resumed one record after a warning. A warning after a rollback now needs
    recover_points quiet records, as from healthy."""
    info = replay_run(DATA / OBS_SPIKE["rl_games"][0]).to_dict()
    rollback, = [e for e in info["events"] if e["event"] == "rollback"]
    after = [(e["event"], e["iteration"]) for e in info["events"]
             if e["event"] in ("warning", "recovered") and e["iteration"] > rollback["iteration"]]
    assert after == [("warning", 308), ("warning", 312), ("warning", 325), ("recovered", 333)]


@pytest.mark.parametrize("framework", sorted(LONG))
def test_a_long_healthy_run_with_a_thousand_envs_says_nothing(framework):
    """Isaac Lab's runs go on for thousands of iterations after their reward plateaus: 3,000 rsl_rl iterations
    and 2,000 rl_games epochs on another seed, the return at its plateau (about 17) from iteration 100 on."""
    run, iterations = LONG[framework]
    report = replay_run(DATA / run)
    info = report.to_dict()
    assert info["framework"].startswith(framework) and report.iterations == iterations
    assert report.verdict == "healthy" and [e for e in info["events"] if e["event"] in ("warning", "alarm")] == []


@pytest.mark.parametrize("framework", sorted(OBS_SPIKE))
def test_an_observation_spike_into_the_input_normaliser_is_rolled_back_to_before_it(framework):
    """8 of the 1,024 actors' observations x1e6 for one env step of iteration 300 (a simulator blowing up for
    a step), straight into the library's running observation normaliser: the return 17 -> -6 within three
    iterations and never near it again. rl_games (normalised values): KL 6.1 for that one update, the value
    loss 0.0046 -> 3.0 (303), the 0.2 rule's alarm at 305; rsl_rl: the value loss 0.02 -> 1.3e9 (300) -> 13
    (302), with the return's collapse an alarm at 304. Both dated at the spike, both rolled back to before it."""
    run, alarm = OBS_SPIKE[framework]
    report = replay_run(DATA / run)
    info = report.to_dict()
    assert info["framework"].startswith(framework) and report.verdict == "diverged"
    assert (info["first_alarm"]["detector"], info["first_alarm"]["iteration"]) == alarm
    first = report.would_roll_back[0]
    # (rsl_rl's onset 300 until session 20; 302 since, dated by the reward's collapse: its target is the same)
    assert first["onset_iteration"] == (300 if framework == "rl_games" else 302) and first["to_iteration"] == 290


def test_a_policy_noise_running_away_is_said_and_a_return_it_did_not_hurt_is_not_rolled_back():
    """rsl_rl's entropy coefficient x100 from update 300: the policy's log-std climbs -1.02 -> 2.79 (std
    0.36 -> 16) by 499, steadily, while the return stays at 16.2-17.4 (push_lite clamps actions to [-1, 1],
    so a wide Gaussian pushes at full speed and the task is still done). The runaway is an advisory
    `entropy_surge` at 306, dated 299, where its rise began (the pace rule, session 24: 3x faster than the
    entropy moved either way in its window; the range rule said it at 316, dated where it left its range, 304);
    with no fall of the reward there is nothing a rollback would win back, so the run stays healthy (as a run
    whose std drifts up with no cost)."""
    info = replay_run(DATA / ENTROPY_FAULT).to_dict()
    assert info["verdict"] == "healthy" and info["iterations"] == 500
    (warning,) = info["events"]
    assert (warning["detector"], warning["iteration"], warning["onset_iteration"], warning["advisory"]) == (
        "entropy_surge", 306, 299, True)
