"""Box2D runs (BipedalWalker, LunarLander) by rsl_rl, rl_games, skrl and SB3, made in session 26 and replayed blind.

Every run before these was MuJoCo, classic control or MAPush. A Box2D return is bimodal (a crash or a fall is -100,
a landing +100 to +140), so it jumps by hundreds while a run is healthy. The event files under tests/data/box2d/
were written by the libraries themselves (make_box2d_runs.py: ../mujoco's functions and settings on Box2D envs);
no setting was changed after seeing them. What each says is pinned here; the one the watchdog judges wrongly is a
strict xfail whose reason is the finding (tests/data/box2d/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.replay import find_run_dirs, replay_run

DATA = Path(__file__).resolve().parents[1] / "data" / "box2d"
# run folder -> (framework, iterations, verdict, the warnings it says: (detector, iteration, advisory))
HEALTHY = {
    # return -109 -> 74 (best 118 at its end): three falls of the return it came back from (-87 -> -102 at 177,
    # -33 -> -77 at 424 and -3 -> -77 at 612) are reward warnings; the loss, in the returns' squared units, climbs
    # as the return does: advisory
    "rsl_rl_bipedalwalker/logs/2026-11-30_13-30-00": ("rsl_rl", 1000, "healthy", [
        ("reward_collapse", 177, False), ("reward_collapse", 424, False), ("trend", 608, True),
        ("reward_collapse", 612, False)]),
    # never learns to walk (-109 -> -105): nothing said
    "skrl_bipedalwalker/runs/26-11-30_13-30-00-000000_PPO": ("skrl", 1000, "healthy", []),
    # the zoo's settings (16 envs x 1,024 steps, 1M steps): 61 rollouts, -116 -> 155 (best 163 at its end)
    "sb3_lunarlander_zoo/PPO_1": ("sb3", 61, "healthy", []),
    # SB3's own defaults (one env x 2,048 steps, 500k steps): 244 rollouts, -142 -> 7 (best 27 at 240)
    "sb3_lunarlander_sb3_hyperparams/PPO_1": ("sb3", 244, "healthy", []),
}
RL_GAMES = "rl_games_bipedalwalker/runs/bipedalwalker_ppo"
RL_GAMES_FINDING = (
    "rl_games BipedalWalker, value normalisation on (1,000 epochs; return -128 -> -17, rising through 520-1000): the "
    "normalised critic loss sits at 0.003-0.01 over 400-700 and bursts to 0.06-0.3 over 733-748 while the return "
    "rises -101 -> -95; the 0.2 rule's alarm at 735 (70x its settled level after 8 departing points) and trend alarms "
    "at 741, 743, 748: three rollbacks and a stop. Its bursts at 203-254 (3-point levels to 0.22) were longer ago "
    "than the excursion memory (baseline_iters, 100). The third rl_games run with such a burst (CartPole seed 3, "
    "Hopper 2,500 epochs): docs/detection.md, Not met")
RL_GAMES_128 = "rl_games_bipedalwalker_128envs/runs/bipedalwalker_ppo"
RL_GAMES_128_FINDING = (
    "the same rl_games BipedalWalker with 128 envs (600 epochs; return -110 -> 268, its best at its end) learns to "
    "walk and regresses twice on the way, coming back by itself: -90 (122) -> -111 (141), a policy_collapse alarm "
    "at 141 (the reward back where it began, with the entropy falling faster than its range) rolled back to 40; "
    "169 (402) -> 55 (462) -> 180 (482), where bursts of the normalised critic loss (0.003 -> 0.03-0.06) are trend "
    "alarms at 433 and 441, rolled back to 291 (return -27, far below the run's level then), and one at 474 stops "
    "the run. Its loss bursts as the 32-env run's does (a 3-point level 58x the median of its last 100 epochs at "
    "131): not the env count alone. docs/detection.md, Not met")
# the learning rate x30 from update 250 on (as ../mujoco's lr_fault runs)
FAULTS = {
    # the entropy runs away (5.3 -> 8.6 nats), the return falls -46 -> -106: policy_collapse, dated at the fault
    "rsl_rl_bipedalwalker_lr_fault/logs/2026-11-30_13-30-00": ("rsl_rl", "policy_collapse", 268, 251, 240),
    # the normalised critic loss 1,353x its floor within 10 points: blowup, then the KL's surge (16.6 nats)
    "rl_games_bipedalwalker_lr_fault/runs/bipedalwalker_ppo": ("rl_games", "blowup", 252, 249, 232),
}


def test_every_run_is_in_a_table():
    assert {str(p.relative_to(DATA)) for p in find_run_dirs([DATA])} == set(HEALTHY) | set(FAULTS) | {RL_GAMES,
                                                                                                     RL_GAMES_128}


@pytest.mark.parametrize("run", sorted(HEALTHY))
def test_a_healthy_box2d_run_has_no_alarm_and_says_what_the_table_says(run):
    framework, iterations, verdict, warned = HEALTHY[run]
    report = replay_run(DATA / run)
    info = report.to_dict()
    assert info["framework"].startswith(framework) and info["iterations"] == iterations
    assert report.first_alarm is None and not report.would_roll_back, info["events"]
    assert report.verdict == verdict
    said = [(e["detector"], e["iteration"], e.get("advisory", False)) for e in info["events"] if e["event"] == "warning"]
    assert said == warned


@pytest.mark.parametrize("run", [pytest.param(RL_GAMES, marks=pytest.mark.xfail(strict=True, reason=RL_GAMES_FINDING)),
                                 pytest.param(RL_GAMES_128, marks=pytest.mark.xfail(strict=True,
                                                                                    reason=RL_GAMES_128_FINDING))])
def test_the_healthy_rl_games_bipedalwalkers_have_no_alarm(run):
    report = replay_run(DATA / run)
    assert report.to_dict()["framework"].startswith("rl_games")
    assert report.first_alarm is None and not report.would_roll_back


@pytest.mark.parametrize("run", sorted(FAULTS))
def test_a_learning_rate_fault_on_box2d_is_caught_at_the_fault_and_rolled_back_before_it(run):
    framework, detector, alarm_at, onset, target = FAULTS[run]
    report = replay_run(DATA / run)
    info = report.to_dict()
    assert info["framework"].startswith(framework)
    alarms = [e for e in info["events"] if e["event"] == "alarm"]
    assert (alarms[0]["detector"], alarms[0]["iteration"], alarms[0]["onset_iteration"]) == (detector, alarm_at, onset)
    assert not [e for e in info["events"] if e["event"] == "alarm" and e["iteration"] < 250]
    assert report.would_roll_back[0]["iteration"] == alarm_at
    assert report.would_roll_back[0]["to_iteration"] == target < 250


def test_the_bench_counts_a_run_named_default_as_healthy_and_one_named_lr_fault_as_faulted(tmp_path):
    """bench.detection's false-alarm table takes every run made here without a fault; a fault word counts where a
    word begins. Until session 26 it was a substring, and this folder's SB3-defaults run, named "..._default",
    was left out as a faulted one."""
    import shutil

    from bench.detection import healthy_made_here

    for name in ("sb3_lunarlander_default", "sb3_lunarlander_lr_fault", "long_faults_x", "fixed_lr3e-4"):
        shutil.copytree(DATA / "sb3_lunarlander_zoo", tmp_path / name)
    assert [p.parent.name for p in healthy_made_here(tmp_path)] == ["sb3_lunarlander_default"]
