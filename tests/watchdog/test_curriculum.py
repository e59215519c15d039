"""A staged change of the task (a curriculum term the run logs) starts the detectors that judge the
reward's and the value loss's levels over; a term that moves every record is the run's own drift."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.watchdog.drive import drive
from watchdog.config import CurriculumConfig, WatchdogConfig
from watchdog.driver import VirtualDriver, carry_out
from watchdog.frameworks import config_for_run, curriculum_key, detect
from watchdog.pipeline import TaskChanges, Watchdog
from watchdog.replay import load_run, replay_run
from watchdog.signals import EPISODE_RETURN, POLICY_ENTROPY, VALUE_LOSS, MetricRecord

TERM = "curriculum/action_penalty"


@pytest.mark.parametrize("tag, key", [
    ("Curriculum/terrain_levels", "curriculum/terrain_levels"),  # Isaac Lab through rsl_rl
    ("Info / Curriculum/terrain_levels", "curriculum/terrain_levels"),  # skrl's episode info before skrl 2
    ("Episode/Curriculum/action_rate", "curriculum/action_rate"),
    ("curriculum/Level", "curriculum/Level"),
    ("Loss/value_function", None),
    ("Train/curriculum_weight", None),  # no term below a Curriculum/ part
])
def test_curriculum_tags_map_to_curriculum_keys_in_every_framework(tag, key):
    assert curriculum_key(tag) == key
    det = detect(["Loss/value_function", "Loss/surrogate", "Train/mean_reward", tag])
    assert det.framework == "rsl_rl"
    target = det.target(tag)
    assert target == (key, None) if key else target is None or not target[0].startswith("curriculum/")


def test_a_term_under_another_name_is_mapped_in_the_config_and_a_bare_prefix_is_refused():
    """legged_gym logs its command curriculum as ``Episode/max_command_x``: ``tags.map`` names it a term."""
    cfg = WatchdogConfig.model_validate({"tags": {"map": {"Episode/max_command_x": "curriculum/max_command_x"}}})
    det = detect(["Loss/value_function", "Episode/max_command_x"], user_map=cfg.tags.map)
    assert det.target("Episode/max_command_x") == ("curriculum/max_command_x", None)
    with pytest.raises(ValueError, match="or curriculum/<term>"):
        WatchdogConfig.model_validate({"tags": {"map": {"Episode/x": "curriculum/"}}})


def test_a_term_that_held_its_value_and_takes_another_is_a_step_and_a_moving_one_never():
    changes = TaskChanges(CurriculumConfig(still_iters=10), None)
    steps = []
    for it in range(60):
        weight = 0.0 if it < 20 else -0.1 if it < 25 else -0.2  # held 20, then only 5
        level = 0.5 + 0.01 * it  # a mean terrain level: moves every record
        steps.append(changes.step(MetricRecord(it, it, {TERM: weight, "curriculum/terrain_levels": level,
                                                       "curriculum/nan": math.nan, VALUE_LOSS: 1.0})))
    assert [(it, s) for it, s in enumerate(steps) if s] == [(20, "action_penalty 0 -> -0.1 (held 20 iterations)")]
    assert TaskChanges(CurriculumConfig(enabled=False), None).step(MetricRecord(0, 0, {TERM: 1.0})) is None
    restored = TaskChanges(CurriculumConfig(still_iters=10), None)
    restored.load_state_dict(changes.state_dict())
    assert restored.step(MetricRecord(60, 60, {TERM: -0.3})) == "action_penalty -0.2 -> -0.3 (held 35 iterations)"


def _reward_weight_run(*, logged: bool, seed: int = 0) -> list[MetricRecord]:
    """An rsl_rl-like run whose reward weight changes at 250 (Isaac Lab's Lift: a penalty switched on):
    the return steps down 17 -> 11 and climbs back to 14 as the policy adapts; the critic's loss meets the
    new returns (0.04 -> 10 for twelve iterations, then back); the policy's entropy goes on as before."""
    rng = np.random.default_rng(seed)
    out = []
    for it in range(420):
        ret = 17 * min(1.0, it / 60) if it < 250 else 11 + 3 * (1 - math.exp(-(it - 250) / 40))
        loss = 0.04 if not 250 <= it < 262 else 10.0
        metrics = {EPISODE_RETURN: ret + rng.normal(0, 0.3), VALUE_LOSS: loss * math.exp(rng.normal(0, 0.2)),
                   POLICY_ENTROPY: 4.0 - 0.004 * it + rng.normal(0, 0.01)}
        if logged:
            metrics[TERM] = 0.0 if it < 250 else -0.1
        out.append(MetricRecord(it, 24 * (it + 1), metrics))
    return out


def _rsl_rl_config() -> WatchdogConfig:
    return config_for_run(WatchdogConfig(), {"framework": "rsl_rl", "value_targets_normalized": False,
                                             "keys": [EPISODE_RETURN, VALUE_LOSS, POLICY_ENTROPY]})


def test_a_logged_reward_weight_change_is_a_new_task_not_a_divergence():
    """The same run with its curriculum term logged and without: logged, the task change is said and the
    reward and value-loss detectors start over (no alarm, no rollback); unlogged, the critic's loss
    meeting the new returns reads as a blow-up, which is what the term is for."""
    seen = drive(_reward_weight_run(logged=True), _rsl_rl_config())
    (change,) = seen.kinds("task_change")
    assert change["iteration"] == 250 and "reward_collapse" in change["restarted"]
    assert not seen.kinds("alarm") and not seen.rollbacks, seen.kinds("alarm")
    blind = drive(_reward_weight_run(logged=False), _rsl_rl_config())
    assert blind.kinds("alarm") and blind.rollbacks and not blind.kinds("task_change")
    assert blind.kinds("alarm")[0]["iteration"] < 262


def test_a_divergence_after_a_task_change_is_still_caught():
    """Starting over is a new warm-up, not a blind spot: a blow-up 50 iterations after the change is judged
    against the new task's own floor, and above the 10 its loss held just after the change (3x that, the
    blow-up rule's envelope, is reached at 314)."""
    recs = _reward_weight_run(logged=True)
    for rec in recs[300:]:
        rec.metrics[VALUE_LOSS] *= math.exp(0.5 * (rec.iteration - 300))
    seen = drive(recs, _rsl_rl_config())
    alarm = seen.kinds("alarm")[0]
    assert 313 < alarm["iteration"] <= 316 and alarm["detector"] == "blowup", alarm
    assert seen.rollbacks[0].target.iteration < 300


def test_a_rollback_to_before_a_task_change_starts_the_detectors_over_again():
    """The restored checkpoint's policy goes on in the task as it is now: the snapshot's detectors knew
    the old task only, so the task-scaled ones start over after loading it."""
    recs = _reward_weight_run(logged=True)
    recs[253].metrics[VALUE_LOSS] = math.nan  # a NaN 3 iterations after the change: rolled back to before it
    wd = Watchdog(_rsl_rl_config())
    driver = VirtualDriver()
    for rec in recs[:254]:
        actions = wd.observe(rec)
        carry_out(wd, actions, driver, config_name="safe")
    (rollback,) = [a for a in actions if a.__class__.__name__ == "Rollback"]
    assert rollback.target.iteration < 250
    points = {d.name: d.points for d in wd.detectors}
    assert points["reward_collapse"] == points["blowup"] == 0 and points["entropy_collapse"] > 200, points
    # a resumed process knows where the task last changed (a later rollback to before it starts over too)
    resumed = Watchdog(_rsl_rl_config())
    resumed.load_state_dict(wd.state_dict())
    assert resumed.last_task_change == 250 and resumed.task_changes.terms == {TERM: [-0.1, 250]}


DATA = Path(__file__).resolve().parents[1] / "data" / "curriculum" / "rsl_rl"


def test_real_rsl_rl_runs_with_a_curriculum_replay_healthy():
    """tests/data/curriculum (real rsl_rl, 1,024 push_lite envs): per-env levels that rise while the run
    learns say nothing; a penalty switched on at 250 (return 17 -> 10, the critic's loss 0.03 -> 2.2) is
    a task change and nothing else. Read without the curriculum, the fall is a standing reward_collapse
    that never ends: the run ends in `warning` and keeps no stable checkpoint after 252."""
    levels = replay_run(next((DATA / "push_lite_levels" / "logs").iterdir())).to_dict()
    assert levels["verdict"] == "healthy" and levels["events"] == [], levels["events"]
    run = next((DATA / "push_lite_reward_weight" / "logs").iterdir())
    weight = replay_run(run).to_dict()
    assert weight["verdict"] == "healthy", weight["events"]
    assert [(e["event"], e["iteration"]) for e in weight["events"]] == [("task_change", 250)]
    assert weight["events"][0]["change"] == "action_penalty 0 -> -0.1 (held 250 iterations)"
    assert weight["curriculum_terms"] == ["action_penalty"] and levels["curriculum_terms"] == ["levels"]
    blind = replay_run(run, WatchdogConfig.model_validate({"curriculum": {"enabled": False}})).to_dict()
    assert blind["verdict"] == "warning" and blind["final_state"] == "warning"
    assert [(e["event"], e["iteration"], e["detector"]) for e in blind["events"]] == [("warning", 252, "reward_collapse")]


def test_watch_follows_a_growing_run_through_its_task_change_without_an_alarm(tmp_path):
    """`watchdog watch` on the reward-weight run as rsl_rl writes it (the event file grown in 6 cuts):
    the same task change as replay, said once, and no alarm."""
    from tests.watchdog.test_frameworks import _grow
    from watchdog.console import WatchdogConsole
    from watchdog.eventlog import read_events
    from watchdog.watch import Watcher

    src = next((DATA / "push_lite_reward_weight" / "logs").iterdir())
    dst = tmp_path / "run"
    watcher = None
    for _ in _grow(src, dst, 6):
        watcher = watcher or Watcher(dst, console=WatchdogConsole(rich=False), fleet=False)
        watcher.poll()
    watcher.flush()
    watcher.close()
    events = read_events(dst / "watchdog_watch_events.jsonl").events
    assert [(e["event"], e["iteration"]) for e in events if e["event"] in ("task_change", "warning", "alarm")] == [
        ("task_change", 250)]


def test_a_deferred_snapshot_across_a_task_change_is_the_copy_taken_at_the_time():
    """Replay describes a stable checkpoint's detector state as the records since the last copy; a task
    change among them starts the same detectors over when the state is taken, as it did live."""
    from watchdog.frameworks import config_for_run

    data = load_run(next((DATA / "push_lite_reward_weight" / "logs").iterdir()))
    cfg = config_for_run(WatchdogConfig(), data.info)
    lazy, eager = Watchdog(cfg, defer_snapshots=True), Watchdog(cfg)
    for rec in data.records[:266]:
        for wd in (lazy, eager):
            carry_out(wd, wd.observe(rec), VirtualDriver(), config_name="safe")
    # the checkpoints of 250 and 260: the records since the copy at 200, the change at 250 among them
    assert all(type(lazy.detector_snapshots[f"stable_{it}_steps"]).__name__ == "DeferredSnapshot" for it in (250, 260))
    assert lazy.state_dict()["detector_snapshots"] == eager.state_dict()["detector_snapshots"]
    assert lazy.detectors_state() == eager.detectors_state()


def test_rl_games_episode_extras_are_placed_by_their_epoch_and_a_step_is_a_task_change(tmp_path):
    """Real rl_games (Isaac Gym's PPO settings, 32 push_lite envs x 2 agents) with Isaac Lab's observer, which
    logs the env's episode extras against the epoch (``Episode/Curriculum/stage``) while the losses go
    against frames: each point is placed at its epoch's frame (``info/epochs``), so the term's step at
    epoch 60 is a task change at 60 in replay."""
    pytest.importorskip("rl_games")
    import torch
    from rl_games.common.algo_observer import IsaacAlgoObserver
    from rl_games.common.ivecenv import IVecEnv

    from openrl_ws.envs.push_lite import PushLiteVecEnv
    from tests.data.frameworks.make_runs import push_lite_rl_games_info
    from tests.data.mujoco.make_mujoco_runs import rl_games_train

    worlds, horizon = 32, 16

    class Actors(IVecEnv):
        def __init__(self):
            self.inner, self.steps = PushLiteVecEnv(worlds, seed=0), 0

        def step(self, actions):
            obs, rew, dones, _ = self.inner.step(np.asarray(actions).reshape(worlds, 2, -1))
            stage = 0.0 if self.steps < 60 * horizon else 1.0
            self.steps += 1
            return (obs.reshape(2 * worlds, -1), rew.reshape(-1).astype(np.float32), dones.reshape(-1).astype(np.uint8),
                    {"episode": {"Curriculum/stage": torch.tensor(stage)}})

        def reset(self):
            return self.inner.reset(seed=0).reshape(2 * worlds, -1)

        def get_env_info(self):
            return push_lite_rl_games_info(self.inner)

    torch.manual_seed(0)
    rl_games_train(tmp_path / "runs", "stage", Actors, 2 * worlds, 90, reward_scale=1.0, fixed=False,
                   observer=IsaacAlgoObserver())
    run = tmp_path / "runs" / "stage_ppo"
    data = load_run(run)
    staged = [(r.iteration, r.metrics["curriculum/stage"]) for r in data.records if "curriculum/stage" in r.metrics]
    assert len(staged) >= 85 and staged[0][1] == 0.0 and staged[-1][1] == 1.0  # one a record, not all in the first
    report = replay_run(run).to_dict()
    assert report["curriculum_terms"] == ["stage"]
    (change,) = [e for e in report["events"] if e["event"] == "task_change"]
    first_one = next(it for it, v in staged if v == 1.0)
    assert change["iteration"] == first_one and abs(first_one - 60) <= 1 and change["change"].startswith("stage 0 -> 1")
    # watch, reading the event file as it grows (cut anywhere), places the points alike
    from tests.watchdog.test_frameworks import _grow
    from watchdog.console import WatchdogConsole
    from watchdog.eventlog import read_events
    from watchdog.watch import Watcher

    dst, watcher = tmp_path / "watched", None
    for _ in _grow(run / "summaries", dst, 5):
        watcher = watcher or Watcher(dst, console=WatchdogConsole(rich=False), fleet=False)
        watcher.poll()
    watcher.flush()
    watcher.close()
    watched = [e for e in read_events(dst / "watchdog_watch_events.jsonl").events if e["event"] == "task_change"]
    assert [(e["iteration"], e["change"]) for e in watched] == [(change["iteration"], change["change"])]


def test_the_same_penalty_in_rl_games_is_a_task_change_read_from_its_epoch_axis_term():
    """tests/data/curriculum/rl_games (real rl_games, value normalisation on, so the 0.2 rule too; Isaac Lab's
    IsaacAlgoObserver logs the term against the epoch): the penalty at 250 (return 16.8 -> 9.7, normalised
    value loss 0.004 -> 0.077) is a task change and nothing else. Read without the curriculum, the fall is two
    advisory reward_collapse warnings (the run stays healthy either way: the value normaliser keeps the loss
    under 0.2)."""
    run = DATA.parent / "rl_games" / "push_lite_reward_weight" / "runs" / "push_lite_ppo"
    report = replay_run(run).to_dict()
    assert report["verdict"] == "healthy" and report["value_loss_rule"] and report["curriculum_terms"] == ["action_penalty"]
    assert [(e["event"], e["iteration"]) for e in report["events"]] == [("task_change", 250)]
    assert "value_loss_threshold" in report["events"][0]["restarted"]
    blind = replay_run(run, WatchdogConfig.model_validate({"curriculum": {"enabled": False}})).to_dict()
    assert blind["verdict"] == "healthy"
    assert [(e["event"], e["detector"], e["advisory"]) for e in blind["events"]] == [
        ("warning", "reward_collapse", True)]
