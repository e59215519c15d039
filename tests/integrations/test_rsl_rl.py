"""rsl_rl under the watchdog: real rsl_rl PPO on push_lite (tiny), with injected faults.

Save -> train -> fault -> roll back -> the next update starts from exactly the saved tensors
(rsl_rl's own ``TestSaveLoad`` idea, on a live runner), at the safe learning rate.
"""

from __future__ import annotations

import importlib.metadata
import io
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rsl_rl", reason="rsl-rl-lib is not installed (pip install 'ppo-watchdog[rsl-rl]')")

import torch  # noqa: E402

from openrl_ws.inject import FaultSchedule  # noqa: E402
from tests.integrations.common import assert_same_tensors, kinds, spy_reseed  # noqa: E402
from watchdog.checkpoints import load_checkpoint  # noqa: E402
from watchdog.config import RslRlSafeConfig, WatchdogConfig, load_any_config  # noqa: E402
from watchdog.console import WatchdogConsole  # noqa: E402
from watchdog.errors import WatchdogError  # noqa: E402
from watchdog.eventlog import read_events  # noqa: E402
from watchdog.integrations import rsl_rl as wrsl  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import rsl_rl_ppo  # noqa: E402
from push_lite_vecenv import PushLiteRslEnv  # noqa: E402

torch.set_num_threads(1)  # PPO-sized networks only lose time to more CPU threads (as train.py's default)
WORLDS, STEPS = 8, 16  # 16 rsl_rl envs x 16 steps per iteration: about 0.1 s per iteration on a CPU
SAFE_LR = 3e-4
# Sensitive enough for a 30-iteration run: short warm-up, frequent stable checkpoints.
QUICK = {"warmup": {"min_iters": 5, "baseline_points": 5}, "value_loss": {"enabled": False},
         "trend": {"baseline_iters": 10, "lag_iters": 2},
         "policy": {"stable_every_iters": 2, "onset_margin_iters": 2, "cooldown_iters": 5}}


class Watched:
    """One tiny watched rsl_rl run, recording the training state each update starts from."""

    def __init__(self, tmp_path: Path, inject: list[str], *, wd_cfg: WatchdogConfig | None = None,
                 cfg_changes: dict | None = None, seed: int = 0, rsl_rl_log_dir: bool = True):
        torch.manual_seed(seed)
        self.run_dir = tmp_path / "run"
        env = PushLiteRslEnv(WORLDS, steps_per_iteration=STEPS, seed=seed, faults=FaultSchedule.from_specs(inject))
        cfg = rsl_rl_ppo.train_cfg(seed, STEPS)
        cfg.update(cfg_changes or {})
        self.runner = wrsl.WatchedOnPolicyRunner(env, cfg, str(self.run_dir) if rsl_rl_log_dir else None,
                                                 run_dir=self.run_dir, watchdog_config=wd_cfg,
                                                 safe_config=ROOT / "cfgs" / "rsl_rl_safe.yaml",
                                                 console=WatchdogConsole(io.StringIO()))
        self.rollbacks_seen = 0
        self.update_starts: list[tuple[int, dict]] = []  # (rollbacks so far, state) at each update's start
        self.runner.watch.watchdog.listeners.append(self._on_event)
        alg, update = self.runner.alg, self.runner.alg.update

        def recording_update():
            state = wrsl.capture_state(alg)
            state["group_lrs"] = [g["lr"] for g in alg.optimizer.param_groups]
            self.update_starts.append((self.rollbacks_seen, state))
            return update()

        alg.update = recording_update

    def _on_event(self, event: dict) -> None:
        self.rollbacks_seen += event["event"] == "rollback"

    def learn(self, iterations: int) -> list[dict]:
        self.runner.learn(iterations)
        return read_events(self.run_dir / "watchdog_events.jsonl").events

    def first_update_after_rollback(self) -> dict:
        return next(state for rollbacks, state in self.update_starts if rollbacks == 1)


def safe_lr(events: list[dict], rollback: dict) -> float:
    """The lr the switch sets: the safe config's 3e-4, or the lr the run had at the restored checkpoint where its
    adaptive schedule had brought it lower (a safe config never raises it: session 20; these tiny runs' schedule
    takes 1e-3 to about 1e-4 in a few updates)."""
    own = next(m["metrics"]["train/learning_rate"] for m in kinds(events, "metrics")
               if m["iteration"] == rollback["to_iteration"])
    return min(SAFE_LR, own)


def assert_restored_exactly(run: Watched, rollback: dict, lr: float) -> None:
    """The first update after the rollback starts from the checkpoint's weights, normalisers and
    Adam state, bit for bit, at the safe learning rate (the only thing the config switch changes)."""
    saved, meta = load_checkpoint(rollback["checkpoint"])  # weights-only, sha-verified
    assert meta["iteration"] == rollback["to_iteration"]
    live = run.first_update_after_rollback()
    assert_same_tensors(live["actor"], saved["actor"], "actor")
    assert "obs_normalizer._mean" in saved["actor"] and int(saved["actor"]["obs_normalizer.count"]) > 0
    assert_same_tensors(live["critic"], saved["critic"], "critic")
    assert_same_tensors(live["optimizer"]["state"], saved["optimizer"]["state"], "optimizer.state")
    assert live["group_lrs"] == [pytest.approx(lr)] and live["learning_rate"] == pytest.approx(lr)
    assert all(s["group_lrs"] == [pytest.approx(lr)] for n, s in run.update_starts if n == 1)


def assert_trained_on_at_safe_lr(run: Watched, events: list[dict], iterations: int, rollback: dict) -> None:
    result = run.runner.watch_result
    assert not result.stopped and result.rollbacks == 1
    metrics = kinds(events, "metrics")
    assert metrics[-1]["iteration"] == iterations - 1
    after = [m["metrics"] for m in metrics if m["iteration"] > rollback["iteration"]]
    assert after and all(m["train/learning_rate"] == pytest.approx(safe_lr(events, rollback)) for m in after)
    assert all(math.isfinite(m["train/value_loss"]) for m in after)
    assert run.runner.alg.schedule == "fixed" and run.runner.alg.max_grad_norm == 0.5
    assert kinds(events, "end")


def test_nan_rollout_rolls_back_before_the_fault_and_restores_exactly(tmp_path, monkeypatch):
    seeds = spy_reseed(monkeypatch, wrsl)
    run = Watched(tmp_path, ["nan@8"])  # the integration's default watchdog config
    events = run.learn(14)
    assert len(seeds) == 1  # torch, numpy and random reseeded at the rollback
    alarm, = kinds(events, "alarm")
    assert (alarm["iteration"], alarm["detector"]) == (8, "nonfinite") and alarm["onset_iteration"] <= 8
    rollback, = kinds(events, "rollback")
    assert rollback["to_iteration"] < 8
    switch, = kinds(events, "config_switch")
    assert safe_lr(events, rollback) < SAFE_LR and "learning_rate" not in switch["changes"]  # kept: below the safe lr
    assert switch["changes"]["schedule"] == {"old": "adaptive", "new": "fixed"}
    assert switch["changes"]["max_grad_norm"] == {"old": 1.0, "new": 0.5}
    assert_restored_exactly(run, rollback, safe_lr(events, rollback))
    assert_trained_on_at_safe_lr(run, events, 14, rollback)


def test_nan_inside_the_update_is_rolled_back_too(tmp_path):
    """With rsl_rl's own NaN check off, the NaN batch reaches the update: NaN losses, NaN weights."""
    run = Watched(tmp_path, ["nan@6"], cfg_changes={"check_for_nan": False})
    events = run.learn(12)
    alarm, = kinds(events, "alarm")
    assert alarm["iteration"] == 6 and alarm["detector"] == "nonfinite"
    rollback, = kinds(events, "rollback")
    assert rollback["to_iteration"] < 6
    assert_restored_exactly(run, rollback, safe_lr(events, rollback))
    assert_trained_on_at_safe_lr(run, events, 12, rollback)
    assert all(torch.isfinite(p).all() for p in run.runner.alg.actor.parameters())


def test_reward_scale_fault_rolls_back_before_the_fault_and_restores_exactly(tmp_path):
    run = Watched(tmp_path, ["reward_scale@15-17:50"], wd_cfg=WatchdogConfig.model_validate(QUICK))
    events = run.learn(30)
    alarm, = kinds(events, "alarm")
    assert alarm["detector"] in ("blowup", "trend") and alarm["signal"] == "train/value_loss"
    assert 15 <= alarm["iteration"] <= 19 and alarm["onset_iteration"] >= 14
    rollback, = kinds(events, "rollback")
    assert rollback["to_iteration"] < 15
    assert_restored_exactly(run, rollback, safe_lr(events, rollback))
    assert_trained_on_at_safe_lr(run, events, 30, rollback)


def test_an_rnd_run_rolls_back_its_curiosity_normalisers_too(tmp_path):
    """RND with reward normalisation (rsl_rl's curiosity): its normaliser rebinds its std inside the
    rollout's ``torch.inference_mode``, which refused the rollback's in-place copy (the run crashed), and
    keeps a per-env discounted sum of intrinsic rewards outside ``state_dict`` that a NaN step left NaN,
    so the normaliser's variance went NaN again at the next step and stayed so."""
    base = rsl_rl_ppo.train_cfg(0, STEPS)
    rnd = {"weight": 10.0, "reward_normalization": True, "state_normalization": True, "num_outputs": 8,
           "predictor_hidden_dims": [32], "target_hidden_dims": [32]}
    run = Watched(tmp_path, ["nan@6"], cfg_changes={  # rsl_rl's own NaN check off: the NaN reaches RND
        "check_for_nan": False, "obs_groups": {**base["obs_groups"], "rnd_state": ["policy"]},
        "algorithm": {**base["algorithm"], "rnd_cfg": rnd}})
    events = run.learn(12)
    alarm, = kinds(events, "alarm")
    assert (alarm["iteration"], alarm["detector"]) == (6, "nonfinite")
    rollback, = kinds(events, "rollback")
    saved, _ = load_checkpoint(rollback["checkpoint"])
    live = run.first_update_after_rollback()
    learned = lambda rnd: {k: v for k, v in rnd.items() if not k.startswith("reward_normalizer.")}  # noqa: E731
    assert_same_tensors(learned(live["rnd"]), learned(saved["rnd"]), "rnd")  # the rollout since moved the rest
    assert torch.isfinite(saved["rnd_disc_avg"]).all()
    assert_trained_on_at_safe_lr(run, events, 12, rollback)
    norm = run.runner.alg.rnd.reward_normalizer
    assert torch.isfinite(norm.disc_avg.avg).all() and torch.isfinite(norm.emp_norm._var).all()


def test_distillation_is_refused_in_one_line(tmp_path):
    """Found by an audit (session 17): rsl_rl's Distillation (Isaac Lab's student-teacher configs) was accepted
    and crashed at ``learn`` (no ``schedule``); the watchdog judges PPO's value loss and switches PPO's lr."""
    cfg = rsl_rl_ppo.train_cfg(0, STEPS)
    cfg["algorithm"] = {"class_name": "Distillation", "num_learning_epochs": 1, "learning_rate": 1e-3,
                        "gradient_length": 4}
    cfg["student"], cfg["teacher"] = cfg.pop("actor"), cfg.pop("critic")
    cfg["teacher"]["distribution_cfg"] = dict(cfg["student"]["distribution_cfg"])
    cfg["obs_groups"] = {"student": ["policy"], "teacher": ["policy"]}
    env = PushLiteRslEnv(WORLDS, steps_per_iteration=STEPS, seed=0)
    with pytest.raises(WatchdogError) as err:
        wrsl.WatchedOnPolicyRunner(env, cfg, str(tmp_path), run_dir=tmp_path, console=WatchdogConsole(io.StringIO()))
    assert "watches PPO; Distillation is not supported" in str(err.value) and "\n" not in str(err.value)


def test_a_second_rollback_halves_the_safe_lr_and_a_third_spends_the_budget(tmp_path):
    cfg = WatchdogConfig.model_validate({"policy": {"rollback_budget": 2}})
    run = Watched(tmp_path, ["nan@4", "nan@7", "nan@10"], wd_cfg=cfg)
    events = run.learn(14)
    first, second = kinds(events, "config_switch")
    own = safe_lr(events, kinds(events, "rollback")[0])  # the lr the first switch held (never above the run's own)
    assert first["changes"].get("learning_rate", {}).get("new", own) == pytest.approx(own)
    assert second["changes"]["learning_rate"]["new"] == pytest.approx(own / 2)  # escalation_lr_factor 0.5
    stop, = kinds(events, "stop")
    assert stop["iteration"] == 10 and run.runner.watch_result.stopped
    assert max(e["iteration"] for e in kinds(events, "metrics")) == 10  # nothing ran after the stop
    assert run.runner.alg.optimizer.param_groups[0]["lr"] == pytest.approx(own / 2)
    assert not list(run.run_dir.glob("model_1[0-3].pt"))  # no final model from diverged weights


def test_a_second_rollback_to_an_older_checkpoint_never_raises_the_lr_it_restores(tmp_path):
    """Found by a review (session 27): a NaN in the first rollback's cooldown passes over that target to an older
    checkpoint, saved before the first switch, whose lr rsl_rl's adaptive schedule had taken lower (1.2e-5); the
    second switch scaled the first switch's lr (1.3e-4 x 0.5) and so raised the restored lr 5.7x."""
    events = Watched(tmp_path, ["nan@15", "nan@30"]).learn(40)
    first, second = kinds(events, "rollback")
    assert second["to_iteration"] < first["to_iteration"]  # older than the first switch's checkpoint
    change = kinds(events, "config_switch")[1]["changes"]["learning_rate"]
    assert change["old"] == pytest.approx(safe_lr(events, second)) and change["old"] < safe_lr(events, first)
    assert change["new"] == pytest.approx(change["old"] / 2)  # the older lr, halved (escalation_lr_factor 0.5)


def test_a_restart_scales_the_runs_own_lr_not_the_escalated_one_it_restores(tmp_path, monkeypatch):
    """Found by an audit (session 21): a process `watchdog run` restarted from a checkpoint saved after a second
    rollback (lr x0.5) took that lr for the run's own, so its next rollback's x0.25 ran at x0.125."""
    from watchdog.supervise import RESUME_ENV, choose_restart_point

    cfg = WatchdogConfig.model_validate({"policy": {"rollback_budget": 5, "stable_every_iters": 2, "cooldown_iters": 2}})
    events = Watched(tmp_path, ["nan@4", "nan@8"], wd_cfg=cfg).learn(16)
    own = safe_lr(events, kinds(events, "rollback")[0])
    assert kinds(events, "config_switch")[1]["changes"]["learning_rate"]["new"] == pytest.approx(own / 2)
    point = choose_restart_point(tmp_path / "run")
    assert point.iteration > kinds(events, "rollback")[1]["iteration"]  # saved at the escalated lr
    assert load_checkpoint(point.path)[0]["optimizer"]["param_groups"][0]["lr"] == pytest.approx(own / 2)
    monkeypatch.setenv(RESUME_ENV, str(point.path))  # the restarted process (its env's iterations count from 0)
    restarted = Watched(tmp_path, ["nan@3"], wd_cfg=cfg)
    events = restarted.learn(point.iteration + 8)
    third = kinds(events, "rollback")[-1]
    assert third["number"] == 3 and third["lr_scale"] == 0.25
    assert kinds(events, "config_switch")[-1]["changes"]["learning_rate"]["new"] == pytest.approx(own / 4)
    assert restarted.runner.alg.learning_rate == pytest.approx(own / 4)


def test_a_rollback_target_gone_from_disk_makes_way_for_the_one_before_it(tmp_path, monkeypatch):
    """Found by an audit (session 21): the checkpoint a restarted process resumed from lives on disk only; deleted by
    hand while the run trained on, the rollback to it ended the run as bad input (exit 2), which `watchdog run` does
    not restart. Now the next older stable checkpoint is the target, and the rollback event names the one passed over."""
    import shutil

    from watchdog.supervise import RESUME_ENV, choose_restart_point

    cfg = WatchdogConfig.model_validate({"policy": {"stable_every_iters": 2, "onset_margin_iters": 2}})
    Watched(tmp_path, [], wd_cfg=cfg).learn(11)
    point = choose_restart_point(tmp_path / "run")
    assert point.iteration == 10
    monkeypatch.setenv(RESUME_ENV, str(point.path))
    restarted = Watched(tmp_path, ["nan@1"], wd_cfg=cfg)  # NaN at 12, before a newer stable checkpoint than 10's
    alg, update = restarted.runner.alg, restarted.runner.alg.update

    def update_then_delete():
        shutil.rmtree(point.path, ignore_errors=True)
        return update()

    alg.update = update_then_delete
    events = restarted.learn(16)
    rollback, = kinds(events, "rollback")
    assert rollback["to_iteration"] == 8 and rollback["number"] == 1
    assert rollback["unreadable"][0].startswith(str(point.path))
    assert not restarted.runner.watch_result.stopped and kinds(events, "metrics")[-1]["iteration"] == 15
    if_none_left = WatchdogConfig.model_validate({"policy": {"stable_every_iters": 100, "onset_margin_iters": 2}})
    run_dir = tmp_path / "second" / "run"
    monkeypatch.delenv(RESUME_ENV)
    Watched(tmp_path / "second", [], wd_cfg=if_none_left).learn(3)  # one stable checkpoint: iteration 0
    only = choose_restart_point(run_dir)
    monkeypatch.setenv(RESUME_ENV, str(only.path))
    restarted = Watched(tmp_path / "second", ["nan@1"], wd_cfg=if_none_left)
    restarted.runner.alg.update = lambda update=restarted.runner.alg.update: (shutil.rmtree(only.path), update())[1]
    events = restarted.learn(8)
    stop, = kinds(events, "stop")
    assert "no readable stable checkpoint to roll back to" in stop["reason"] and str(only.path) in stop["reason"]
    assert restarted.runner.watch_result.stopped and not kinds(events, "rollback")


@pytest.mark.parametrize("wd_cfg", [None, WatchdogConfig.model_validate(QUICK)], ids=["default", "quick"])
def test_a_short_healthy_run_is_never_rolled_back(tmp_path, wd_cfg):
    run = Watched(tmp_path, [], wd_cfg=wd_cfg, seed=1)
    events = run.learn(30)
    assert not kinds(events, "alarm") and not kinds(events, "rollback")
    assert len(kinds(events, "metrics")) == 30 and kinds(events, "stable_checkpoint")
    assert run.runner.alg.schedule == "adaptive"  # the run's own config, untouched


def test_a_curriculum_step_the_env_logs_restarts_the_reward_and_value_detectors_live(tmp_path):
    """Isaac Lab's curriculum terms reach rsl_rl as ``extras["log"]["Curriculum/<term>"]``; the live
    watchdog reads them as the replay reads their TensorBoard tags: a term that held 0 for 15 iterations
    (10 suffice here) and then takes 2 is a staged change of the task, and the task-scaled detectors start
    over there."""
    run = Watched(tmp_path, [], wd_cfg=WatchdogConfig.model_validate({**QUICK, "curriculum": {"still_iters": 10}}))
    env, step, steps = run.runner.env, run.runner.env.step, [0]

    def step_with_curriculum(actions):
        obs, rewards, dones, extras = step(actions)
        steps[0] += 1  # the rollout of iteration 15 is at level 2 from its first step
        level = torch.tensor([0.0, 0.0]) if steps[0] <= 15 * STEPS else torch.tensor([2.0, 2.0])
        extras["log"] = {"Curriculum/levels": level, "Episode_Reward/other": 1.0}
        return obs, rewards, dones, extras

    env.step = step_with_curriculum
    events = run.learn(25)
    changes = kinds(events, "task_change")
    assert [e["iteration"] for e in changes] == [15], changes
    assert "levels 0 -> 2 (held 15 iterations)" == changes[0]["change"]
    assert {"reward_collapse", "blowup:train/value_loss"} <= set(changes[0]["restarted"]), changes[0]
    points = {d.name: d.points for d in run.runner.watch.watchdog.detectors}
    assert points["reward_collapse"] == points["blowup"] == 10 and points["entropy_collapse"] == 25, points
    assert tensorboard_scalars(run.run_dir, "Curriculum/levels")[24] == 2.0  # rsl_rl logged it as ever


def tensorboard_scalars(run_dir: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars(tag)}


def tensorboard_tags(run_dir: Path) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return acc.Tags()["scalars"]


def test_a_rollback_on_the_last_iteration_still_writes_rsl_rls_final_model(tmp_path):
    run = Watched(tmp_path, ["nan@5"])
    events = run.learn(6)
    assert kinds(events, "rollback") and (run.run_dir / "model_5.pt").is_file()
    assert tensorboard_scalars(run.run_dir, "watchdog/state")[5] == 3.0  # rolled_back, on rsl_rl's axis


def test_without_an_rsl_rl_log_dir_the_watchdog_scalars_get_their_own_writer(tmp_path):
    run = Watched(tmp_path, [], rsl_rl_log_dir=False)
    run.learn(3)
    assert sorted(tensorboard_scalars(run.run_dir, "watchdog/state")) == [0, 1, 2]
    assert not list(run.run_dir.glob("model_*.pt"))  # rsl_rl saves nothing without its writer


def test_default_watchdog_config_is_the_one_for_unnormalised_value_targets():
    """rsl_rl's value targets are not normalised: no 0.2 rule, the trend warns but never alarms, and a
    value-side warning with a reward collapse is divergence; the reward judged is the episode return
    (Train/mean_reward, as replay judges it), which also explains a blow-up it jumps with and a climb it
    rises past; nothing else differs from the defaults."""
    cfg = wrsl.default_watchdog_config()
    assert not cfg.value_loss.enabled and cfg.trend.alarm_ratio is None and cfg.policy.reward_corroborates
    assert cfg.reward_collapse.signal == "rollout/episode_return" == cfg.blowup.explained_by == cfg.trend.explained_by
    assert cfg.reward_collapse.model_dump(exclude={"signal"}) == WatchdogConfig().reward_collapse.model_dump(exclude={"signal"})
    assert cfg.blowup.model_dump(exclude={"explained_by"}) == WatchdogConfig().blowup.model_dump(exclude={"explained_by"})
    changed = {"value_loss", "trend", "policy", "reward_collapse", "blowup"}
    assert cfg.model_dump(exclude=changed) == WatchdogConfig().model_dump(exclude=changed)
    assert cfg.trend.model_dump(exclude={"alarm_ratio", "explained_by"}) == \
        WatchdogConfig().trend.model_dump(exclude={"alarm_ratio", "explained_by"})
    assert cfg.policy.model_dump(exclude={"reward_corroborates"}) == \
        WatchdogConfig().policy.model_dump(exclude={"reward_corroborates"})


def test_the_shipped_safe_config_is_the_field_reports():
    cfg = load_any_config(ROOT / "cfgs" / "rsl_rl_safe.yaml")
    assert isinstance(cfg, RslRlSafeConfig)
    assert cfg.live_values() == wrsl.FIELD_REPORT_SAFE.live_values() == {
        "learning_rate": 3e-4, "schedule": "fixed", "max_grad_norm": 0.5, "clip_param": 0.2}


def test_an_adaptive_safe_config_restarts_the_schedule_from_the_safe_lr(tmp_path):
    run = Watched(tmp_path, [])
    alg = run.runner.alg
    switch = wrsl.apply_safe_config(alg, RslRlSafeConfig(learning_rate=2e-4, desired_kl=0.005), lr_scale=0.5)
    assert alg.schedule == "adaptive" and alg.desired_kl == 0.005
    assert alg.learning_rate == pytest.approx(1e-4) and alg.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert "adaptive KL schedule moves it" in switch.kept["learning_rate"]


def test_an_unsupported_rsl_rl_version_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "4.0.1")
    with pytest.raises(WatchdogError) as err:
        wrsl.rsl_rl_version()
    assert "rsl-rl-lib 4.0.1 is installed" in str(err.value) and ">=5.0,<6" in str(err.value)
    assert "\n" not in str(err.value)


def test_importing_watchdog_imports_no_framework():
    code = ("import sys, watchdog, watchdog.integrations; "
            "bad = [m for m in ('rsl_rl', 'stable_baselines3', 'rl_games', 'skrl') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- the example's exit codes --------------------------------------------------------------------

SMALL = ["--num_worlds", str(WORLDS), "--steps_per_env", str(STEPS)]


def example(tmp_path: Path, *args: str) -> tuple[int, list[dict]]:
    run_dir = tmp_path / "example"
    code = rsl_rl_ppo.main([*SMALL, "--run_dir", str(run_dir), *args])
    log = run_dir / "watchdog_events.jsonl"
    return code, read_events(log).events if log.exists() else []


def test_example_nan_at_20_of_40_alarms_rolls_back_switches_and_exits_0(tmp_path):
    """The issue's acceptance run, as a user types it (a fresh process)."""
    run_dir = tmp_path / "acceptance"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "rsl_rl_ppo.py"), *SMALL, "--watchdog",
                           "--inject", "nan@20", "--iterations", "40", "--run_dir", str(run_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = read_events(run_dir / "watchdog_events.jsonl").events
    alarm, = kinds(events, "alarm")
    rollback, = kinds(events, "rollback")
    assert alarm["iteration"] == 20 and rollback["to_iteration"] < 20 and kinds(events, "config_switch")
    assert kinds(events, "metrics")[-1]["iteration"] == 39
    failed, = kinds(events, "iteration_failed")  # (a raw log line on stderr, nothing in the log, until session 18)
    assert failed["iteration"] == 20 and "Traceback" in failed["error"] and "Expected parameter" not in proc.stderr
    assert "sys/rss_mb" in kinds(events, "metrics")[-1]["metrics"]  # resources watched (session 18)
    state = tensorboard_scalars(run_dir, "watchdog/state")  # rsl_rl's writer, rsl_rl's iteration axis
    assert (state[19], state[20], state[39]) == (0.0, 3.0, 3.0)
    assert tensorboard_scalars(run_dir, "watchdog/rollbacks")[39] == 1.0
    assert "Loss/value" in tensorboard_tags(run_dir)
    # replay of the run folder reads the event log as the live watchdog judged it (an rsl_rl run: no 0.2 rule on
    # raw value targets, the episode return), so it says what the live run did; it weighs rsl_rl's own
    # model_<it>.pt, on the log's env-step axis (model_0.pt: after iteration 0, 16 envs x 16 steps)
    from watchdog.replay import replay_run

    report = replay_run(run_dir)
    assert report.source == "events" and report.run_info["framework"] == "rsl_rl"
    assert not report.run_info["value_loss_rule"] and report.reward_signal == "rollout/episode_return"
    live, = [(e["iteration"], e["detector"], e["onset_iteration"]) for e in kinds(events, "alarm")]
    assert [(e["iteration"], e["detector"], e["onset_iteration"]) for e in report.events if e["event"] == "alarm"] == [live]
    assert report.live_recovered["end_iteration"] == 39 and report.recommended_checkpoint is None  # nothing to resume
    log = run_dir / "watchdog_events.jsonl"  # killed before its end event: the checkpoints are weighed
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    report = replay_run(run_dir)
    steps = {Path(c["path"]).name: c["step"] for c in report.rejected_checkpoints}
    if report.recommended_checkpoint:
        steps[Path(report.recommended_checkpoint["path"]).name] = report.recommended_checkpoint["step"]
        assert report.resume_command.startswith("python scripts/reinforcement_learning/rsl_rl/train.py")
    assert steps == {"model_0.pt": 256, "model_39.pt": 40 * 256}


def test_example_without_watchdog_dies_on_nan_with_exit_3_and_one_line(tmp_path, capsys):
    code, _ = example(tmp_path, "--inject", "nan@2", "--iterations", "5")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and "non-finite" in err[0] and "--watchdog" in err[0]


def test_example_restarted_by_watchdog_run_does_not_inject_its_fault_again(tmp_path, monkeypatch, capsys):
    """An injected fault is one incident: the examples repeated theirs in every process `watchdog run` restarted,
    so `--inject crash@10` spent the whole restart budget (session 18; train.py already dropped them)."""
    from watchdog.supervise import RESTART_ENV

    monkeypatch.setenv(RESTART_ENV, "1")
    code, _ = example(tmp_path, "--inject", "crash@2", "--iterations", "4")
    assert code == 0 and "restart 1 by `watchdog run`: injected faults (crash@2) are not repeated" in \
        capsys.readouterr().out


def test_example_alert_only_watchdog_dies_on_nan_with_exit_3(tmp_path, capsys):
    cfg = tmp_path / "alert.yaml"
    cfg.write_text("action: alert\n")
    code, events = example(tmp_path, "--watchdog", "--watchdog_config", str(cfg), "--inject", "nan@3",
                           "--iterations", "6")
    assert code == 3 and kinds(events, "alarm") and not kinds(events, "rollback")


def test_example_stopped_by_the_watchdog_exits_1(tmp_path):
    cfg = tmp_path / "no_budget.yaml"
    cfg.write_text("policy: {rollback_budget: 0}\n")
    code, events = example(tmp_path, "--watchdog", "--watchdog_config", str(cfg), "--inject", "nan@3",
                           "--iterations", "6")
    assert code == 1 and kinds(events, "stop")
    assert max(e["iteration"] for e in kinds(events, "metrics")) == 3


@pytest.mark.parametrize("args", [["--inject", "nan@x"], ["--inject", "lr_spike@3:10"],
                                  ["--watchdog", "--safe_config", "missing.yaml"]])
def test_example_bad_input_is_exit_2_with_one_line(tmp_path, capsys, args):
    code, _ = example(tmp_path, *args, "--iterations", "2")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("rsl_rl_ppo.py: error:")


def test_a_real_lr_fault_is_caught_live_as_in_replay_and_rolled_back_before_it(tmp_path):
    """tests/data/long_faults/rsl_rl, live: the same push_lite run (16 worlds x 2 agents, 24 steps, 32x32,
    2 epochs, lr 1e-3 fixed) whose learning rate becomes x100 at update 300 (once, as a config would set
    it). The episode return (rsl_rl's Train/mean_reward, what replay judges) falls from 13.8 while the
    value loss climbs: the default config calls it divergence as replay does (310, dated 305), and rolls
    back in place to the stable checkpoint of 290 with the safe learning rate."""
    from tests.data.frameworks.make_runs import _push_lite_vecenv

    torch.manual_seed(0)
    steps = 24
    model = {"class_name": "MLPModel", "hidden_dims": [32, 32], "activation": "elu"}
    cfg = {"num_steps_per_env": steps, "save_interval": 1000, "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
           "algorithm": {"class_name": "PPO", "num_learning_epochs": 2, "num_mini_batches": 2, "learning_rate": 1e-3,
                         "schedule": "fixed"},
           "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0}},
           "critic": dict(model), "logger": "tensorboard", "multi_gpu": None}
    run_dir = tmp_path / "run"
    runner = wrsl.WatchedOnPolicyRunner(_push_lite_vecenv(16, None, steps), cfg, str(run_dir), run_dir=run_dir,
                                        safe_config=ROOT / "cfgs" / "rsl_rl_safe.yaml",
                                        console=WatchdogConsole(io.StringIO()))
    alg, update, calls = runner.alg, runner.alg.update, [0]

    def update_with_fault():
        if calls[0] == 300:
            wrsl.set_learning_rate(alg, alg.learning_rate * 100)
        calls[0] += 1
        return update()

    alg.update = update_with_fault
    runner.learn(340)  # the alarm is at 310: 30 updates after it show the run goes on at the safe lr
    events = read_events(run_dir / "watchdog_events.jsonl").events
    alarm, rollback = kinds(events, "alarm")[0], kinds(events, "rollback")[0]
    assert alarm["iteration"] > 300 and abs(alarm["onset_iteration"] - 300) <= 10, alarm
    assert 280 <= rollback["to_iteration"] < 300, rollback
    assert kinds(events, "config_switch")[0]["changes"]["learning_rate"]["new"] == pytest.approx(SAFE_LR)
    assert alg.learning_rate == pytest.approx(SAFE_LR) and not runner.watch_result.stopped
    assert kinds(events, "metrics")[-1]["iteration"] == 339 and len(kinds(events, "rollback")) == 1


def test_a_given_config_is_judged_as_replay_judges_rsl_rl(tmp_path):
    """A user's config (the library defaults here) gets what replay gives an rsl_rl run."""
    run = Watched(tmp_path, [], wd_cfg=WatchdogConfig())
    cfg = run.runner.watch.watchdog.cfg
    assert not cfg.value_loss.enabled and cfg.trend.alarm_ratio is None and cfg.policy.reward_corroborates
    assert cfg.reward_collapse.signal == "rollout/episode_return"
