"""rl_games under the watchdog: real rl_games PPO (a2c_continuous) on push_lite (tiny), with injected faults.

Save -> train -> fault -> roll back -> the next update starts from exactly the saved tensors, at the safe
learning rate, and rl_games' loop trains on to its end (or ends at a stop, without saving diverged weights).
"""

from __future__ import annotations

import importlib.metadata
import io
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rl_games", reason="rl-games is not installed (pip install 'ppo-watchdog[rl-games]')")

import torch  # noqa: E402

from openrl_ws.inject import FaultSchedule, InjectedCrash  # noqa: E402
from tests.integrations.common import assert_same_tensors, kinds, spy_reseed  # noqa: E402
from watchdog.checkpoints import load_checkpoint  # noqa: E402
from watchdog.config import RlGamesSafeConfig, WatchdogConfig, load_any_config  # noqa: E402
from watchdog.console import WatchdogConsole  # noqa: E402
from watchdog.errors import NonFiniteTraining, WatchdogError  # noqa: E402
from watchdog.eventlog import read_events  # noqa: E402
from watchdog.integrations import rl_games as wrg  # noqa: E402
from watchdog.replay import replay_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import rl_games_ppo  # noqa: E402

torch.set_num_threads(1)
WORLDS, HORIZON = 8, 16  # 16 actors x 16 steps per epoch: a few hundredths of a second per epoch on a CPU
SAFE_LR = 3e-4
# Sensitive enough for a 30-epoch run: short warm-up, frequent stable checkpoints.
QUICK = {"warmup": {"min_iters": 5, "baseline_points": 5},
         "trend": {"baseline_iters": 10, "lag_iters": 2},
         "policy": {"stable_every_iters": 2, "onset_margin_iters": 2, "cooldown_iters": 5}}


class Recording(wrg.WatchdogObserver):
    """The watchdog's observer, also recording the training state each update starts from (rl_games'
    ``prepare_dataset`` runs between the rollout and the update, before it touches the value normaliser)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rollbacks_seen = 0
        self.update_starts: list[tuple[int, dict]] = []

    def after_init(self, algo):
        super().after_init(algo)
        self.watch.watchdog.listeners.append(self._on_event)
        prepare = algo.prepare_dataset

        def recording_prepare(batch_dict):
            state = wrg.capture_state(algo)
            state["group_lrs"] = [g["lr"] for g in algo.optimizer.param_groups]
            self.update_starts.append((self.rollbacks_seen, state))
            return prepare(batch_dict)

        algo.prepare_dataset = recording_prepare

    def _on_event(self, event: dict) -> None:
        self.rollbacks_seen += event["event"] == "rollback"


def train(tmp_path: Path, inject: list[str], epochs: int, *, wd_cfg: WatchdogConfig | None = None,
          safe: RlGamesSafeConfig | str | None = str(ROOT / "cfgs" / "rl_games_safe.yaml"), seed: int = 0,
          changes: dict | None = None) -> tuple[Recording, list[dict]]:
    from rl_games.torch_runner import Runner

    run_dir = tmp_path / "run"
    torch.manual_seed(seed)
    rl_games_ppo.register_env(WORLDS, HORIZON, seed, FaultSchedule.from_specs(inject), notes=None)
    observer = Recording(config=wd_cfg, safe_config=safe, console=WatchdogConsole(io.StringIO()))
    params = rl_games_ppo.agent_params(seed, iterations=epochs, num_actors=WORLDS * 2, horizon=HORIZON, run_dir=run_dir)
    params["params"]["config"].update(changes or {})
    runner = Runner(observer)
    runner.load(params)
    runner.run({"train": True, "play": False})
    return observer, read_events(run_dir / "watchdog_events.jsonl").events


def run_watched(params: dict, run_dir: Path, observer: wrg.WatchdogObserver | None = None):
    """rl_games' Runner with ``params`` under ``observer`` (default: the default observer), seeded (rl_games 1.6
    seeds nothing for seed 0); returns the observer and the run's events."""
    from rl_games.torch_runner import Runner

    torch.manual_seed(0)
    observer = observer or wrg.WatchdogObserver(console=WatchdogConsole(io.StringIO()))
    runner = Runner(observer)
    runner.load(params)
    runner.run({"train": True, "play": False})
    return observer, read_events(run_dir / "watchdog_events.jsonl").events


def assert_restored_exactly(observer: Recording, rollback: dict) -> None:
    """The first update after the rollback starts from the checkpoint's model (with its input and value
    normalisers) and Adam state, bit for bit, at the safe learning rate."""
    saved, meta = load_checkpoint(rollback["checkpoint"])  # weights-only, sha-verified
    assert meta["iteration"] == rollback["to_iteration"]
    live = next(state for rollbacks, state in observer.update_starts if rollbacks == 1)
    assert_same_tensors(live["model"], saved["model"], "model")
    assert "running_mean_std.count" in saved["model"]
    assert ("value_mean_std.count" in saved["model"]) == observer.agent.normalize_value
    assert_same_tensors(live["optimizer"]["state"], saved["optimizer"]["state"], "optimizer.state")
    assert live["group_lrs"] == [pytest.approx(SAFE_LR)] and live["last_lr"] == pytest.approx(SAFE_LR)


def assert_trained_on_at_safe_lr(observer: Recording, events: list[dict], epochs: int, rollback: dict) -> None:
    result = observer.result
    assert not result.stopped and result.rollbacks == 1
    metrics = kinds(events, "metrics")
    assert metrics[-1]["iteration"] == epochs - 1
    after = [m["metrics"] for m in metrics if m["iteration"] > rollback["iteration"]]
    assert after and all(m["train/learning_rate"] == pytest.approx(SAFE_LR) for m in after)
    assert all(math.isfinite(m["train/value_loss"]) for m in after)
    agent = observer.agent
    assert isinstance(agent.scheduler, wrg.schedulers.IdentityScheduler) and agent.grad_norm == 0.5
    assert all(torch.isfinite(p).all() for p in agent.model.parameters())
    assert kinds(events, "end")


def test_nan_rollout_rolls_back_before_the_fault_and_restores_exactly(tmp_path, monkeypatch):
    seeds = spy_reseed(monkeypatch, wrg)
    observer, events = train(tmp_path, ["nan@8"], 14)  # the integration's default watchdog config
    assert len(seeds) == 1  # torch, numpy and random reseeded at the rollback
    alarm, = kinds(events, "alarm")
    assert (alarm["iteration"], alarm["detector"]) == (8, "nonfinite") and alarm["onset_iteration"] == 8
    rollback, = kinds(events, "rollback")
    assert rollback["to_iteration"] < 8
    switch, = kinds(events, "config_switch")
    assert switch["changes"]["learning_rate"]["new"] == pytest.approx(SAFE_LR)
    assert switch["changes"]["lr_schedule"] == {"old": "adaptive", "new": "fixed"}
    assert switch["changes"]["grad_norm"] == {"old": 1.0, "new": 0.5}
    assert_restored_exactly(observer, rollback)
    assert_trained_on_at_safe_lr(observer, events, 14, rollback)


def test_a_reward_blowup_rolls_back_before_it_and_restores_exactly(tmp_path):
    """Raw value targets (``normalize_value`` off; on, rl_games' value normaliser absorbs a reward x1000 within
    an epoch: the normalised loss rose 4x): the value loss blows up 10^5x at the fault."""
    observer, events = train(tmp_path, ["reward_scale@15-17:50"], 30, wd_cfg=WatchdogConfig.model_validate(QUICK),
                             changes={"normalize_value": False})
    alarm, = kinds(events, "alarm")
    assert alarm["signal"] == "train/value_loss" and alarm["detector"] == "blowup"
    assert 15 <= alarm["iteration"] <= 17 and alarm["onset_iteration"] == 15
    rollback, = kinds(events, "rollback")
    assert rollback["to_iteration"] < 15
    assert_restored_exactly(observer, rollback)
    assert_trained_on_at_safe_lr(observer, events, 30, rollback)


def test_the_episode_meters_go_back_with_the_weights(tmp_path):
    """rl_games' running mean of the last 100 returns is restored too, and the unfinished episodes' sums are
    zeroed: the return judged after a rollback is the restored policy's, not one poisoned by the abandoned
    stretch's NaN reward (push_lite's episodes end at a success or after 150 steps: the first in epoch 9)."""
    _, events = train(tmp_path, ["nan@20"], 26, wd_cfg=WatchdogConfig.model_validate(QUICK))
    rollback, = kinds(events, "rollback")
    saved, _ = load_checkpoint(rollback["checkpoint"])
    assert rollback["to_iteration"] >= 12 and int(saved["episodes"]["game_rewards"]["size"]) > 0
    returns = [m["metrics"].get("rollout/episode_return") for m in kinds(events, "metrics") if m["iteration"] > 20]
    assert len(returns) == 5 and all(r is not None and math.isfinite(r) for r in returns)
    # the reset envs finish no episode in their first 2 epochs (32 steps): the meter holds the checkpoint's mean
    assert returns[:2] == [pytest.approx(float(saved["episodes"]["game_rewards"]["mean"].reshape(-1)[0]))] * 2


@pytest.mark.parametrize("wd_cfg", [None, WatchdogConfig.model_validate(QUICK)], ids=["default", "quick"])
def test_a_short_healthy_run_is_never_rolled_back(tmp_path, wd_cfg):
    observer, events = train(tmp_path, [], 30, wd_cfg=wd_cfg)
    assert not kinds(events, "alarm") and not kinds(events, "rollback") and not observer.result.stopped
    assert len(kinds(events, "metrics")) == 30 and kinds(events, "end")
    assert list((tmp_path / "run" / "nn").glob("last_push_lite_ep_30_*.pth"))  # rl_games' own final save


def test_a_second_rollback_halves_the_safe_lr_and_a_third_stops_without_saving_diverged_weights(tmp_path):
    cfg = WatchdogConfig.model_validate({"policy": {"rollback_budget": 2}})
    observer, events = train(tmp_path, ["nan@4", "nan@7", "nan@10"], 14, wd_cfg=cfg)
    first, second = kinds(events, "config_switch")
    assert first["changes"]["learning_rate"]["new"] == pytest.approx(SAFE_LR)
    assert second["changes"]["learning_rate"]["new"] == pytest.approx(SAFE_LR / 2)  # escalation_lr_factor 0.5
    stop, = kinds(events, "stop")
    assert stop["iteration"] == 10 and observer.result.stopped
    assert max(e["iteration"] for e in kinds(events, "metrics")) == 10  # rl_games' loop ended with that epoch
    assert not list((tmp_path / "run" / "nn").glob("*.pth"))  # no rl_games save of the diverged weights


def test_a_crash_with_finite_numbers_is_a_bug_and_is_raised(tmp_path):
    with pytest.raises(InjectedCrash):
        train(tmp_path, ["crash@5"], 10)


def test_alert_mode_does_not_swallow_a_nan_epoch(tmp_path):
    cfg = WatchdogConfig.model_validate({"action": "alert"})
    with pytest.raises(NonFiniteTraining, match="alert"):
        train(tmp_path, ["nan@6"], 10, wd_cfg=cfg)


def test_an_adaptive_safe_config_restarts_the_kl_schedule_from_the_safe_lr(tmp_path):
    safe = RlGamesSafeConfig(learning_rate=SAFE_LR, lr_schedule="adaptive", kl_threshold=0.004)
    observer, events = train(tmp_path, ["nan@6"], 8, safe=safe)
    switch, = kinds(events, "config_switch")
    assert switch["changes"]["kl_threshold"] == {"old": 0.008, "new": 0.004}
    assert "adaptive schedule moves it" in switch["kept"]["learning_rate"]
    scheduler = observer.agent.scheduler
    assert isinstance(scheduler, wrg.schedulers.AdaptiveScheduler) and scheduler.kl_threshold == 0.004


def test_a_linear_schedule_goes_on_from_the_safe_lr(tmp_path):
    """Found by an audit (session 16): rl_games' linear schedule sets the lr from its start lr at each update, so a
    safe lr under it (lr_schedule left unset) never took effect, while the switch said it did. It now goes on from
    the safe lr, down to its min_lr."""
    safe = RlGamesSafeConfig(learning_rate=SAFE_LR, grad_norm=0.5)
    observer, events = train(tmp_path, ["nan@6"], 12, safe=safe, changes={"lr_schedule": "linear"})
    rollback, = kinds(events, "rollback")
    switch, = kinds(events, "config_switch")
    assert "linear schedule takes it down to its min_lr" in switch["kept"]["learning_rate"]
    after = [e["metrics"]["train/learning_rate"] for e in kinds(events, "metrics") if e["iteration"] > rollback["iteration"]]
    assert after and all(lr <= SAFE_LR for lr in after) and after[0] > 0.8 * SAFE_LR
    assert after == sorted(after, reverse=True)  # still the linear schedule's fall


def test_a_safe_entropy_coefficient_holds_under_a_linear_entropy_schedule(tmp_path):
    """Found by a review (session 27): with schedule_entropy on, rl_games' linear schedule sets the entropy
    coefficient from its own start at every update, so the safe one lasted an epoch while the switch said it held."""
    safe = RlGamesSafeConfig(learning_rate=SAFE_LR, entropy_coef=0.0)
    observer, events = train(tmp_path, ["nan@6"], 12, safe=safe,
                             changes={"lr_schedule": "linear", "schedule_entropy": True, "entropy_coef": 0.01})
    switch, = kinds(events, "config_switch")
    assert switch["changes"]["entropy_coef"]["new"] == 0.0 and switch["changes"]["entropy_schedule"]["new"] == "fixed"
    assert observer.agent.entropy_coef == 0.0  # six epochs on


def test_a_safe_kl_threshold_a_schedule_does_not_read_is_said_kept(tmp_path):
    """Found by a review (session 27): a safe kl_threshold with lr_schedule unset, on a linear schedule, was left
    out of the switch without a word: neither changed nor kept."""
    safe = RlGamesSafeConfig(learning_rate=SAFE_LR, kl_threshold=0.01)
    _, events = train(tmp_path, ["nan@6"], 9, safe=safe, changes={"lr_schedule": "linear"})
    switch, = kinds(events, "config_switch")
    assert "kl_threshold" not in switch["changes"]
    assert "only rl_games' adaptive lr schedule" in switch["kept"]["kl_threshold"]


def test_a_restarted_process_under_a_linear_schedule_starts_at_the_safe_lr(tmp_path, monkeypatch):
    """Found by a review (session 27): a process `watchdog run` restarted fitted the linear schedule to the safe lr at
    its own first epoch and only then took the checkpoint's: the lr ran 2.5x under the safe lr it was said to start at."""
    from watchdog.supervise import RESTART_ENV, RESUME_ENV

    safe = RlGamesSafeConfig(learning_rate=SAFE_LR, grad_norm=0.5)
    train(tmp_path, [], 10, safe=safe, changes={"lr_schedule": "linear", "max_epochs": 40})
    stable = sorted((tmp_path / "run" / "checkpoints" / "watchdog").glob("stable_*"),
                    key=lambda p: load_checkpoint(p)[1]["iteration"])[-1]
    monkeypatch.setenv(RESUME_ENV, str(stable))
    monkeypatch.setenv(RESTART_ENV, "1")
    _, events = train(tmp_path, [], 40, safe=safe, changes={"lr_schedule": "linear", "max_epochs": 40})
    resumed = load_checkpoint(stable)[1]["iteration"]
    metrics = kinds(events, "metrics")  # the first process's, then the restarted one's
    own = next(e for e in metrics if e["iteration"] == resumed)["metrics"]["train/learning_rate"]
    first = [e for e in metrics if e["iteration"] == resumed + 1][-1]
    assert kinds(events, "config_switch") and first["metrics"]["train/learning_rate"] == pytest.approx(
        min(SAFE_LR, own), rel=0.05)  # the safe lr (never above the run's own), one epoch of the schedule's fall


def test_a_restarted_process_ends_at_max_epochs_and_a_stop_in_its_first_epoch_ends_it(tmp_path, monkeypatch):
    """A review of session 29: rl_games' loop keeps the epoch number update_epoch returns in a local; the first
    epoch of a process `watchdog run` restarted took the checkpoint's epoch only inside it, so that local stayed 1:
    resumed at the last epoch, the run trained one past max_epochs (and saved "ep_11"); and a stop there (the
    rollback budget spent) trained another epoch from the diverged weights (NaN again: a NonFiniteTraining
    traceback). The resume comes first now, so rl_games counts from the checkpoint."""
    from watchdog.eventlog import EventLog, make_event
    from watchdog.supervise import RESTART_ENV, RESUME_ENV

    cfg = WatchdogConfig.model_validate(QUICK)
    train(tmp_path, [], 10, wd_cfg=cfg, changes={"max_epochs": 10})
    stables = {load_checkpoint(p)[1]["iteration"]: p for p in (tmp_path / "run" / "checkpoints" / "watchdog").glob("stable_*")}
    monkeypatch.setenv(RESUME_ENV, str(stables[8]))
    monkeypatch.setenv(RESTART_ENV, "1")
    observer, events = train(tmp_path, [], 10, wd_cfg=cfg, changes={"max_epochs": 10})
    restarted = events[max(i for i, e in enumerate(events) if e["event"] == "start"):]
    assert [e["iteration"] for e in kinds(restarted, "metrics")] == [9] and observer.agent.epoch_num == 10
    assert not list((tmp_path / "run").rglob("*_ep_11_*"))
    # the restart spends a budget of 1: a NaN in its first epoch stops the run there, cleanly
    budget = WatchdogConfig.model_validate({**QUICK, "policy": {**QUICK["policy"], "rollback_budget": 1}})
    with EventLog(tmp_path / "run" / "watchdog_events.jsonl") as log:  # as `watchdog run` writes it
        log.write(make_event("restart", iteration=9, env_steps=0, state="healthy", checkpoint=str(stables[8]),
                             attempt=1))
    monkeypatch.setenv(RESUME_ENV, str(stables[8]))
    observer, events = train(tmp_path, ["nan@0"], 20, wd_cfg=budget, changes={"max_epochs": 20})
    restarted = events[max(i for i, e in enumerate(events) if e["event"] == "start"):]
    (stop,) = kinds(restarted, "stop")
    assert stop["iteration"] == 9 and observer.result.stopped and not kinds(restarted, "iteration_failed")[1:]
    assert max(e["iteration"] for e in restarted) == 9


def test_a_linear_schedule_counted_in_frames_holds_the_safe_lr_and_its_checkpoints_load(tmp_path):
    """Found by an audit (session 17), with ``max_epochs: -1`` and ``max_frames`` set: rl_games makes the
    schedule's max steps a numpy integer, so its lrs are numpy floats in the optimizer's param groups and every
    stable checkpoint was unreadable with ``weights_only=True``; and it gives the schedule no frame count, while
    the switch moved its start lr by the real one: the safe lr ran at twice its value (5.99e-4 for 3e-4)."""
    safe = RlGamesSafeConfig(learning_rate=SAFE_LR, grad_norm=0.5)
    frames = 12 * WORLDS * 2 * HORIZON
    observer, events = train(tmp_path, ["nan@6"], 12, safe=safe,
                             changes={"lr_schedule": "linear", "max_epochs": -1, "max_frames": frames})
    rollback, = kinds(events, "rollback")
    state, meta = load_checkpoint(rollback["checkpoint"])  # weights-only, sha-verified
    assert meta["iteration"] == rollback["to_iteration"] and isinstance(state["optimizer"]["param_groups"][0]["lr"], float)
    switch, = kinds(events, "config_switch")
    assert "counted in frames holds it" in switch["kept"]["learning_rate"]
    after = [e["metrics"]["train/learning_rate"] for e in kinds(events, "metrics") if e["iteration"] > rollback["iteration"]]
    assert after and all(lr == pytest.approx(SAFE_LR) for lr in after)
    assert all(g["lr"] == pytest.approx(SAFE_LR) for g in observer.agent.optimizer.param_groups)


def test_a_second_train_of_a_watched_agent_is_refused_in_one_line(tmp_path):
    """Found by an audit (session 17): it wrote to the closed event log (logged tracebacks), trained an epoch
    unwatched, then raised ``ValueError: I/O operation on closed file``."""
    observer, events = train(tmp_path, [], 3)
    with pytest.raises(WatchdogError) as err:
        observer.agent.train()
    assert "already ended" in str(err.value) and "\n" not in str(err.value)
    assert [e["event"] for e in read_events(tmp_path / "run" / "watchdog_events.jsonl").events].count("start") == 1


def test_the_value_loss_rule_follows_normalize_value_as_replay_does():
    on, off = wrg.default_watchdog_config(True), wrg.default_watchdog_config(False)
    assert on.value_loss.enabled and on.trend.alarm_ratio is not None
    assert not off.value_loss.enabled and off.trend.alarm_ratio is None and off.policy.reward_corroborates
    assert on.reward_collapse.signal == off.reward_collapse.signal == "rollout/episode_return"


def test_an_unsupported_rl_games_version_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.5.2")
    with pytest.raises(WatchdogError) as err:
        wrg.rl_games_version()
    assert "rl-games 1.5.2 is installed" in str(err.value) and ">=1.6,<1.7" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_missing_framework_is_one_line_naming_our_extra(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(WatchdogError) as err:
        wrg.rl_games_version()
    assert str(err.value).startswith("rl-games is not installed; watchdog.integrations.rl_games needs rl-games >=1.6")
    assert "ppo-watchdog[rl-games]" in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_safe_config_is_the_field_reports(capsys):
    from watchdog.cli import main

    shipped = load_any_config(ROOT / "cfgs" / "rl_games_safe.yaml")
    assert isinstance(shipped, RlGamesSafeConfig) and shipped == wrg.FIELD_REPORT_SAFE
    assert main(["check", str(ROOT / "cfgs" / "rl_games_safe.yaml")]) == 0
    assert "valid rl_games safe config" in capsys.readouterr().out


def test_a_bad_safe_config_is_one_line_before_rl_games_builds_anything(tmp_path):
    bad = tmp_path / "safe.yaml"
    bad.write_text("framework: rl_games\nlr_schedule: fixed\nkl_threshold: 0.01\n")
    with pytest.raises(WatchdogError, match="kl_threshold is set but lr_schedule is fixed"):
        wrg.WatchdogObserver(safe_config=bad)


def example(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "examples" / "rl_games_ppo.py"), "--num_worlds", str(WORLDS),
                           "--run_dir", str(tmp_path / "run"), *args], capture_output=True, text=True, cwd=tmp_path)


def test_example_nan_at_20_of_30_rolls_back_switches_and_exits_0_and_replays(tmp_path):
    out = example(tmp_path, "--watchdog", "--inject", "nan@20", "--iterations", "30")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ROLLBACK it 20" in out.stdout and "finished: 30 epochs" in out.stdout and "1 rollback(s)" in out.stdout
    events = read_events(tmp_path / "run" / "watchdog_events.jsonl").events
    assert kinds(events, "rollback")[0]["to_iteration"] < 20
    failed, = kinds(events, "iteration_failed")  # (a raw log line on stderr, nothing in the log, until session 18)
    assert failed["iteration"] == 20 and "Traceback" in failed["error"]
    assert "sys/rss_mb" in kinds(events, "metrics")[-1]["metrics"]  # resources watched (session 18)
    replay = subprocess.run([sys.executable, "-m", "watchdog.cli", "replay", str(tmp_path / "run")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert replay.returncode == 1 and "DIVERGED" in replay.stdout, replay.stderr[-2000:]
    # judged as the live run was: an rl_games run whose start event says its value targets are normalised
    assert "framework: rl_games" in replay.stdout and "absolute value-loss rule on (the live run's start event" \
        in replay.stdout and "openrl_ws" not in replay.stdout


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--inject", "nan@5", "--iterations", "8"], 3, "training diverged"),  # unwatched: NaN weights at the end
    (["--watchdog", "--inject", "nan@3", "--inject", "nan@5", "--inject", "nan@7", "--iterations", "10",
      "--watchdog_config", "BUDGET1"], 1, "STOPPED"),
    (["--watchdog", "--inject", "lr_spike@3:10"], 2, "not supported"),
    (["--watchdog", "--safe_config", "missing.yaml"], 2, "missing.yaml"),
])
def test_example_exit_codes(tmp_path, args, code, says):
    (tmp_path / "budget1.yaml").write_text("policy:\n  rollback_budget: 1\n")
    args = [str(tmp_path / "budget1.yaml") if a == "BUDGET1" else a for a in args]
    out = example(tmp_path, *args)
    assert out.returncode == code, (out.stdout[-2000:], out.stderr[-2000:])
    assert says in out.stdout + out.stderr
    if code == 2:
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_discrete_actions_a2c_discrete_on_cartpole_roll_back_a_nan_epoch(tmp_path):
    """rl_games' other PPO agent (``a2c_discrete``, its 10-value ``train_epoch``) on gymnasium's CartPole: a NaN
    observation at epoch 6 is an alarm and a rollback, and training goes on at the safe lr to the end."""
    import gymnasium as gym
    from rl_games.common import env_configurations, vecenv
    from rl_games.common.ivecenv import IVecEnv

    actors, horizon = 8, 32

    class CartPoles(IVecEnv):
        def __init__(self):
            self.envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(actors)])
            self.steps = 0

        def step(self, actions):
            obs, rew, term, trunc, _ = self.envs.step(np.asarray(actions).astype(np.int64))
            self.steps += 1
            if self.steps == 6 * horizon + 1:  # the first step of epoch 6 (0-based)
                obs = np.full_like(obs, np.nan)
            return obs.astype(np.float32), rew.astype(np.float32), (term | trunc).astype(np.uint8), {}

        def reset(self):
            return self.envs.reset(seed=0)[0].astype(np.float32)

        def get_env_info(self):
            return {"action_space": self.envs.single_action_space, "observation_space": self.envs.single_observation_space,
                    "agents": 1, "value_size": 1}

    vecenv.register("WATCHDOG_CARTPOLE", lambda config_name, num_actors, **kw: CartPoles())
    env_configurations.register("cartpole_watchdog", {"vecenv_type": "WATCHDOG_CARTPOLE", "env_creator": lambda **kw: None})
    params = rl_games_ppo.agent_params(0, iterations=12, num_actors=actors, horizon=horizon, run_dir=tmp_path / "run")
    params["params"].update({"algo": {"name": "a2c_discrete"}, "model": {"name": "discrete_a2c"},
                             "network": {"name": "actor_critic", "separate": False, "space": {"discrete": {}},
                                         "mlp": {"units": [32, 32], "activation": "elu", "initializer": {"name": "default"}}}})
    params["params"]["config"].update({"env_name": "cartpole_watchdog", "bounds_loss_coef": None})
    observer, events = run_watched(params, tmp_path / "run")
    alarm, = kinds(events, "alarm")
    rollback, = kinds(events, "rollback")
    assert (alarm["iteration"], alarm["detector"]) == (6, "nonfinite") and rollback["to_iteration"] < 6
    after = [m["metrics"] for m in kinds(events, "metrics") if m["iteration"] > 6]
    assert len(after) == 5 and all(math.isfinite(m["train/value_loss"]) for m in after)
    assert all(m["train/learning_rate"] == pytest.approx(SAFE_LR) for m in after)
    assert "train/log_std_max" not in after[0]  # a categorical policy has no std


def test_a_real_learning_rate_fault_is_caught_live_and_rolled_back_before_it(tmp_path):
    """Not an injected number: rl_games' learning rate set to 1.0 (from 1e-3) before epoch 60's update, through
    the env's ``set_train_info`` hook (how the committed rl_games fault run was made), on rl_games' fixed schedule,
    which keeps it. The update blows the value loss up ~10^4x and the policy's std out (log-std -0.06 -> 3.1):
    ``blowup`` within 2 epochs, dated 60, a rollback to before 60, and the run trains on at the safe lr."""
    from rl_games.common import env_configurations, vecenv

    class Spiked(rl_games_ppo.make_env_class()):
        def set_train_info(self, env_frames, algo=None, *args, **kwargs):
            if algo is not None and algo.epoch_num - 1 == 60:
                algo.last_lr = 1.0

    vecenv.register("WATCHDOG_PUSH_LITE", lambda config_name, num_actors, **kw: Spiked(16, horizon=HORIZON, seed=0))
    env_configurations.register(rl_games_ppo.ENV_NAME, {"vecenv_type": "WATCHDOG_PUSH_LITE",
                                                        "env_creator": lambda **kw: None})
    params = rl_games_ppo.agent_params(0, iterations=75, num_actors=32, horizon=HORIZON, run_dir=tmp_path / "run")
    params["params"]["config"]["lr_schedule"] = "fixed"
    observer, events = run_watched(params, tmp_path / "run")
    alarm, = kinds(events, "alarm")
    rollback, = kinds(events, "rollback")
    assert alarm["detector"] == "blowup" and 60 <= alarm["iteration"] <= 62 and alarm["onset_iteration"] == 60
    assert rollback["to_iteration"] < 60 and not observer.result.stopped
    after = [m["metrics"] for m in kinds(events, "metrics") if m["iteration"] > alarm["iteration"]]
    assert len(after) == 74 - alarm["iteration"] and all(m["train/learning_rate"] == pytest.approx(SAFE_LR) for m in after)
    assert max(m["train/value_loss"] for m in after[2:]) < 5  # back to the loss's healthy range (0.1-1.3)


def test_a_curriculum_step_the_env_reports_restarts_the_reward_and_value_detectors_live(tmp_path):
    """Isaac Lab's curriculum terms reach rl_games in the env's step info (``infos["log"]["Curriculum/<term>"]``,
    what its rl_games observer logs as ``Episode/Curriculum/<term>``); the observer reads them as rsl_rl's
    runner does: a term that held 0 for 15 epochs (10 suffice here) and then takes 2 is a staged change of the
    task, and the task-scaled detectors start over there."""
    from rl_games.common import env_configurations, vecenv

    class Staged(rl_games_ppo.make_env_class()):
        def step(self, actions):
            level = 2.0 if self.iteration >= 15 else 0.0  # the epoch this step's rollout belongs to, from 15 on
            obs, rewards, dones, _ = super().step(actions)
            levels = torch.full((len(rewards),), level)
            return obs, rewards, dones, {"log": {"Curriculum/levels": levels, "Episode_Reward/other": 1.0}}

    vecenv.register("WATCHDOG_PUSH_LITE", lambda config_name, num_actors, **kw: Staged(WORLDS, horizon=HORIZON, seed=0))
    env_configurations.register(rl_games_ppo.ENV_NAME, {"vecenv_type": "WATCHDOG_PUSH_LITE",
                                                        "env_creator": lambda **kw: None})
    params = rl_games_ppo.agent_params(0, iterations=25, num_actors=WORLDS * 2, horizon=HORIZON, run_dir=tmp_path / "run")
    observer = Recording(config=WatchdogConfig.model_validate({**QUICK, "curriculum": {"still_iters": 10}}),
                         console=WatchdogConsole(io.StringIO()))
    _, events = run_watched(params, tmp_path / "run", observer)
    change, = kinds(events, "task_change")
    assert change["iteration"] == 15 and change["change"] == "levels 0 -> 2 (held 15 iterations)"
    assert {"reward_collapse", "blowup:train/value_loss"} <= set(change["restarted"])
    assert kinds(events, "metrics")[-1]["metrics"]["curriculum/levels"] == 2.0


def asymmetric_params(tmp_path: Path, epochs: int, inject: list[str], *, nan_states_at: int | None = None,
                      critic_rnn: bool = False) -> dict:
    """rl_games with a central value net (Isaac Lab's asymmetric actor-critic tasks: the critic sees ``states``,
    here the observations; NaN for one rollout step of epoch ``nan_states_at``, the actor's observations finite)."""
    from rl_games.common import env_configurations, vecenv

    base = rl_games_ppo.make_env_class()

    class WithStates(base):
        def step(self, actions):
            epoch, step = self.iteration, self._rollout_steps
            obs, rewards, dones, infos = super().step(actions)
            states = obs.copy()
            if epoch == nan_states_at and step == 3:
                states[:] = np.nan
            return {"obs": obs, "states": states}, rewards, dones, infos

        def reset(self):
            obs = super().reset()
            return {"obs": obs, "states": obs.copy()}

        def get_env_info(self):
            info = super().get_env_info()
            return {**info, "state_space": info["observation_space"]}

    vecenv.register("WATCHDOG_PUSH_LITE", lambda config_name, num_actors, **kw: WithStates(
        WORLDS, horizon=HORIZON, seed=0, faults=FaultSchedule.from_specs(inject)))
    env_configurations.register(rl_games_ppo.ENV_NAME, {"vecenv_type": "WATCHDOG_PUSH_LITE",
                                                        "env_creator": lambda **kw: None})
    params = rl_games_ppo.agent_params(0, iterations=epochs, num_actors=WORLDS * 2, horizon=HORIZON,
                                       run_dir=tmp_path / "run")
    network = {"name": "actor_critic", "central_value": True,
               "mlp": {"units": [64, 64], "activation": "elu", "initializer": {"name": "default"}}}
    if critic_rnn:  # as IsaacGymEnvs' ShadowHandOpenAI_LSTM
        network["rnn"] = {"name": "lstm", "units": 32, "layers": 1, "before_mlp": True, "layer_norm": False}
    params["params"]["config"]["central_value_config"] = {
        "minibatch_size": WORLDS * 2 * HORIZON // 4, "mini_epochs": 4, "learning_rate": 1e-3, "lr_schedule": "adaptive",
        "kl_threshold": 0.008, "clip_value": True, "normalize_input": True, "truncate_grads": True, "network": network}
    return params


@pytest.mark.parametrize("experimental_cv", [True, False], ids=["own-value-head", "central-value-only"])
def test_an_asymmetric_critic_is_rolled_back_and_switched_with_the_actor(tmp_path, experimental_cv):
    """rl_games' central value net (Isaac Lab's asymmetric actor-critic tasks: the critic sees ``states``): its
    weights, optimizer and lr come back with the actor's on a rollback, and the safe lr is the critic's too. The
    value loss judged is the actor-critic's own ``c_loss`` while it trains its value head too (rl_games'
    default ``use_experimental_cv: True``), else (``False``: its ``c_loss`` is 0) the central value net's loss."""
    params = asymmetric_params(tmp_path, 14, ["nan@8"])
    params["params"]["config"]["use_experimental_cv"] = experimental_cv
    observer = Recording(safe_config=str(ROOT / "cfgs" / "rl_games_safe.yaml"), console=WatchdogConsole(io.StringIO()))
    _, events = run_watched(params, tmp_path / "run", observer)
    rollback, = kinds(events, "rollback")
    switch, = kinds(events, "config_switch")
    assert rollback["iteration"] == 8 and switch["changes"]["central_value_learning_rate"]["new"] == pytest.approx(SAFE_LR)
    saved, _ = load_checkpoint(rollback["checkpoint"])
    live = next(state for rollbacks, state in observer.update_starts if rollbacks == 1)
    assert_same_tensors(live["central_value"], saved["central_value"], "central_value")
    assert_same_tensors(live["central_value_optimizer"]["state"], saved["central_value_optimizer"]["state"], "cv.opt")
    net = observer.agent.central_value_net
    assert net.lr == pytest.approx(SAFE_LR) and all(g["lr"] == pytest.approx(SAFE_LR) for g in net.optimizer.param_groups)
    # a real value loss either way (never the 0 of a c_loss without a value head), NaN at the fault
    losses = {m["iteration"]: m["metrics"]["train/value_loss"] for m in kinds(events, "metrics")}
    assert all(isinstance(v, float) and v > 0 for i, v in losses.items() if i != 8) and not math.isfinite(float(losses[8]))
    logs = tmp_path / "logs"  # the run's own TensorBoard logs, without the event log
    shutil.copytree(tmp_path / "run" / "summaries", logs / "summaries")
    report = replay_run(logs)
    replayed = {r.iteration: r.metrics.get("train/value_loss") for r in report.records}
    # replay reads the same value loss, epoch by epoch: c_loss, or (c_loss all 0) the critic's cval_loss, said so
    assert all(replayed[i] == pytest.approx(float(v), rel=1e-6) for i, v in losses.items() if i < 8)
    assert any("losses/cval_loss" in w for w in report.input_warnings) != experimental_cv
    # watch, following the file as it grew (cut at arbitrary bytes): the same iterations and value loss, the same
    # note, once
    from watchdog.frameworks import CRITIC_LOSS_NOTE
    from watchdog.watch import RunFollower

    src, = (logs / "summaries").glob("events.out.tfevents.*")
    grown = tmp_path / "grown" / "summaries"
    grown.mkdir(parents=True)
    data, follower, followed = src.read_bytes(), RunFollower(tmp_path / "grown"), []
    for cut in range(0, len(data), 997):
        with open(grown / src.name, "ab") as f:
            f.write(data[cut:cut + 997])
        followed += follower.poll()
    followed += follower.poll(final=True)
    watched = {r.iteration: r.metrics.get("train/value_loss") for r in followed}
    assert [r.iteration for r in followed] == [r.iteration for r in report.records]  # frame 0 first, alone: iteration 0 once
    assert all(watched[i] == pytest.approx(float(v), rel=1e-6) for i, v in losses.items() if i < 8)
    assert follower.notes == ([] if experimental_cv else [CRITIC_LOSS_NOTE])


def test_the_mixed_precision_scalers_of_actor_and_critic_go_back_with_the_weights(tmp_path):
    """With ``mixed_precision`` the actor-critic and the central value net each keep a GradScaler whose scale a
    run of inf gradients halves; a rollback that left it would go on at the diverged stretch's scale. (Until
    session 29 only the actor-critic's was captured.) rl_games' own scalers are CUDA's, disabled on a CPU: here
    each is a live CPU GradScaler, the state rl_games would hold on a GPU."""
    observer = Recording(console=WatchdogConsole(io.StringIO()))
    run_watched(asymmetric_params(tmp_path, 2, []), tmp_path / "run", observer)
    agent = observer.agent
    scalers = {"actor-critic": agent, "central value net": agent.central_value_net}
    for owner in scalers.values():
        owner.mixed_precision = True
        owner.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    snapshot = wrg.capture_state(agent)
    for owner in scalers.values():  # the diverged stretch: inf gradients halved the scale again and again
        owner.scaler.load_state_dict({**owner.scaler.state_dict(), "scale": 8.0})
    wrg.restore_state(agent, snapshot)
    assert {name: owner.scaler.state_dict()["scale"] for name, owner in scalers.items()} == {
        "actor-critic": 1024.0, "central value net": 1024.0}


def test_an_asymmetric_critic_keeps_its_own_lower_lr_and_takes_the_safe_clip(tmp_path):
    """Found by a review (session 27): the central value net took the actor's safe lr (a critic at 1e-4 raised to
    3e-4, against "never above the run's own"), and never the safe grad_norm, which the switch said was applied."""
    params = asymmetric_params(tmp_path, 12, ["nan@8"])
    params["params"]["config"]["central_value_config"].update(learning_rate=1e-4, lr_schedule="identity", grad_norm=1.0)
    observer = Recording(safe_config=str(ROOT / "cfgs" / "rl_games_safe.yaml"), console=WatchdogConsole(io.StringIO()))
    _, events = run_watched(params, tmp_path / "run", observer)
    switch, = kinds(events, "config_switch")
    net = observer.agent.central_value_net
    assert "central_value_learning_rate" not in switch["changes"] and net.lr == pytest.approx(1e-4)
    assert switch["changes"]["central_value_grad_norm"] == {"old": 1.0, "new": 0.5}
    assert (net.grad_norm, net.truncate_grads) == (0.5, True)


def test_a_recurrent_critic_starts_afresh_after_a_rollback(tmp_path):
    """Found by an audit (session 17): the central value net keeps its own RNN states, which ``reset_envs`` (the
    actor's) leaves alone and rl_games zeroes only where an episode ends: one NaN step of the critic's states kept
    the run NaN, rollback after rollback, until the budget was spent."""
    params = asymmetric_params(tmp_path, 14, [], nan_states_at=8, critic_rnn=True)
    observer = Recording(safe_config=str(ROOT / "cfgs" / "rl_games_safe.yaml"), console=WatchdogConsole(io.StringIO()))
    _, events = run_watched(params, tmp_path / "run", observer)
    alarm, = kinds(events, "alarm")
    assert (alarm["iteration"], alarm["detector"]) == (8, "nonfinite") and len(kinds(events, "rollback")) == 1
    losses = [m["metrics"]["train/value_loss"] for m in kinds(events, "metrics") if m["iteration"] > 8]
    assert len(losses) == 5 and all(isinstance(v, float) and math.isfinite(v) for v in losses)
    assert all(torch.isfinite(s).all() for s in observer.agent.central_value_net.rnn_states)
