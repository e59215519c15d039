"""The Stable-Baselines3 integration, specified on real SB3 PPO training (Pendulum-v1, CPU, seconds).

A fault (NaN batch, reward x50) -> alarm -> rollback in place to a checkpoint before the fault ->
the next update starts from exactly that checkpoint's parameters and optimizer state -> the
optimizer runs at the safe learning rate -> the run finishes. A healthy run is never rolled back.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import CallbackList  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402

from openrl_ws.inject import FaultSchedule  # noqa: E402
from watchdog.checkpoints import load_checkpoint  # noqa: E402
from watchdog.config import SB3SafeConfig, WatchdogConfig  # noqa: E402
from watchdog.errors import NonFiniteTraining, WatchdogError  # noqa: E402
from watchdog.eventlog import EVENTS_FILENAME  # noqa: E402
from watchdog.integrations.sb3 import (  # noqa: E402
    WatchdogCallback, capture_state, default_config, restart_rollout, restore_state)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sb3_ppo.py"
N_ENVS, N_STEPS = 4, 64
SAFE_LR, BASE_LR = 3e-4, 1e-3


def _example_module():
    spec = importlib.util.spec_from_file_location("sb3_ppo_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _example_module()


def small_config(**policy) -> WatchdogConfig:
    """The integration's defaults with a warm-up short enough for a 30-iteration run."""
    cfg = default_config().model_dump()
    cfg["warmup"] = {"min_iters": 5, "baseline_points": 5}
    cfg["trend"].update(baseline_iters=10, lag_iters=3)
    cfg["policy"].update({"stable_every_iters": 5, "onset_margin_iters": 3, **policy})
    return WatchdogConfig.model_validate(cfg)


class ProbedPPO(PPO):
    """PPO that records, at every update, the state it starts from and the lr it ran at."""

    callback: WatchdogCallback | None = None

    def train(self) -> None:
        probe = {"iteration": self.callback.iteration if self.callback else None,
                 "policy": {k: v.detach().clone() for k, v in self.policy.state_dict().items()},
                 "optimizer": copy.deepcopy(self.policy.optimizer.state_dict())}
        super().train()
        probe["lr"] = [g["lr"] for g in self.policy.optimizer.param_groups]
        self.probes.append(probe)


def make_model(seed: int = 0, *, vecnorm: bool = False, faults: type = example.FaultInjection
               ) -> tuple[ProbedPPO, object]:
    torch.set_num_threads(1)
    venv = faults(make_vec_env("Pendulum-v1", n_envs=N_ENVS, seed=seed))
    env = VecNormalize(venv) if vecnorm else venv
    model = ProbedPPO("MlpPolicy", env, n_steps=N_STEPS, batch_size=64, n_epochs=4, gamma=0.9,
                      learning_rate=BASE_LR, seed=seed, device="cpu")
    model.probes = []
    return model, venv


def run(tmp_path: Path, iterations: int, inject: list[str], cfg: WatchdogConfig, *, seed: int = 0,
        vecnorm: bool = False, safe_config: Path = ROOT / "cfgs" / "sb3_safe.yaml", faults: type = example.FaultInjection):
    model, venv = make_model(seed, vecnorm=vecnorm, faults=faults)
    callback = WatchdogCallback(tmp_path, config=cfg, safe_config=safe_config, console=False)
    model.callback = callback
    callbacks = [example.InjectFaults(FaultSchedule.from_specs(inject), venv)] if inject else []
    model.learn(iterations * N_ENVS * N_STEPS, callback=CallbackList([*callbacks, callback]))
    events = [json.loads(line) for line in (tmp_path / EVENTS_FILENAME).read_text().splitlines()]
    return model, callback, events


def _equal(a, b) -> bool:
    """Tensors, dicts and lists equal exactly (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize(("inject", "fault_start"), [
    (["nan@16"], 16),                 # one step of NaN observations/rewards: the rollout crashes (Normal(loc=nan))
    (["reward_scale@16-17:50"], 16),  # rewards x50 for two rollouts: the value loss explodes (blow-up alarm; one
                                      # rollout is a spike the run recovers from, and raises nothing)
])
def test_fault_is_rolled_back_in_place_and_training_goes_on_at_the_safe_lr(tmp_path, inject, fault_start):
    model, callback, events = run(tmp_path, 30, inject, small_config())
    kinds = [e["event"] for e in events]
    alarm = next(e for e in events if e["event"] == "alarm")
    rollback = next(e for e in events if e["event"] == "rollback")
    switch = next(e for e in events if e["event"] == "config_switch")
    assert alarm["iteration"] >= fault_start and rollback["to_iteration"] < fault_start
    assert kinds.count("rollback") == 1 and switch["changes"]["learning_rate"] == {"old": BASE_LR, "new": SAFE_LR}
    # the next update starts from exactly the checkpoint's parameters and optimizer state
    state, meta = load_checkpoint(rollback["checkpoint"])
    assert meta["iteration"] == rollback["to_iteration"]
    after = next(p for p in model.probes if p["iteration"] > rollback["iteration"])
    assert after["iteration"] == rollback["iteration"] + 1
    assert _equal(after["policy"], state["policy"])
    assert _equal(after["optimizer"]["state"], state["optimizer"]["state"])
    # ... and every update after the rollback runs at the safe learning rate
    assert all(p["lr"] == [SAFE_LR] for p in model.probes if p["iteration"] > rollback["iteration"])
    assert all(p["lr"] == [BASE_LR] for p in model.probes if p["iteration"] < fault_start)
    assert not callback.result.stopped and kinds[-1] == "end"
    assert model.num_timesteps == 30 * N_ENVS * N_STEPS and callback.iteration == 30
    assert "train" not in model.__dict__ and "collect_rollouts" not in model.__dict__  # unwrapped after learn


def test_vecnormalize_statistics_are_rolled_back_with_the_weights(tmp_path):
    model, callback, events = run(tmp_path, 14, ["nan@8"], small_config(), vecnorm=True)
    rollback = next(e for e in events if e["event"] == "rollback")
    state, _ = load_checkpoint(rollback["checkpoint"])
    assert set(state["vec_normalize"]) == {"obs_rms", "ret_rms"} and callback.result.rollbacks == 1
    vecnorm = model.get_vec_normalize_env()  # the NaN batch went into its running statistics: restored
    assert all(torch.isfinite(torch.from_numpy(a)).all() for a in (vecnorm.obs_rms.mean, vecnorm.obs_rms.var))
    rewards = [e["metrics"]["rollout/average_step_reward"] for e in events  # the NaN batch's is "nan"
               if e["event"] == "metrics" and isinstance(e["metrics"].get("rollout/average_step_reward"), float)]
    assert -17 < min(rewards) and max(rewards) < 0  # Pendulum's raw reward per step, not VecNormalize's


class NaNRewardsOnly(example.FaultInjection):
    """``nan@N`` as one step of NaN rewards with finite observations: the rollout runs, the update goes NaN."""

    def step_wait(self):
        nan, self.nan_next_step = self.nan_next_step, False
        obs, rewards, dones, infos = super().step_wait()
        return obs, np.full_like(rewards, np.nan) if nan else rewards, dones, infos


@pytest.mark.parametrize("vecnorm", [False, True])
def test_an_update_that_goes_nan_is_rolled_back_like_a_rollout_that_does(tmp_path, vecnorm):
    """SB3's first mini-batch on a NaN reward makes the weights NaN and the next one's ``Normal(loc=nan)``
    raises inside ``train()``: that crashed ``learn`` with the weights NaN and no alarm (only a crash in the
    rollout was judged). With ``VecNormalize(norm_reward)`` the NaN also went into its return statistics."""
    model, callback, events = run(tmp_path, 14, ["nan@8"], small_config(), vecnorm=vecnorm, faults=NaNRewardsOnly)
    alarm, = [e for e in events if e["event"] == "alarm"]
    rollback, = [e for e in events if e["event"] == "rollback"]
    assert (alarm["iteration"], alarm["detector"]) == (8, "nonfinite") and rollback["to_iteration"] < 8
    state, _ = load_checkpoint(rollback["checkpoint"])
    after = next(p for p in model.probes if p["iteration"] > rollback["iteration"])
    assert _equal(after["policy"], state["policy"]) and after["lr"] == [SAFE_LR]
    assert not callback.result.stopped and events[-1]["event"] == "end" and callback.iteration == 14
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    if vecnorm:
        assert np.isfinite(model.get_vec_normalize_env().ret_rms.var).all()


def test_a_healthy_run_is_never_rolled_back(tmp_path):
    model, callback, events = run(tmp_path, 30, [], small_config(), seed=1)
    kinds = {e["event"] for e in events}
    assert "alarm" not in kinds and "rollback" not in kinds and callback.result.rollbacks == 0
    assert kinds >= {"start", "stable_checkpoint", "end"} and len(model.probes) == 30
    metrics = [e["metrics"] for e in events if e["event"] == "metrics"]
    assert len(metrics) == 30 and {"train/value_loss", "train/policy_loss", "train/dist_entropy", "train/approx_kl",
                                   "train/log_std_max", "rollout/average_step_reward"} <= set(metrics[-1])
    # SB3 logs the entropy *loss*: ours is the entropy itself (a 1-d Gaussian's starts near 1.42)
    assert metrics[0]["train/dist_entropy"] > 1.0
    assert all(p["lr"] == [BASE_LR] for p in model.probes)


def test_a_curriculum_term_recorded_in_sb3s_logger_is_a_task_change_live(tmp_path):
    """A callback that records ``Curriculum/stage`` in SB3's logger (0 for 12 updates, then 1): the live
    record carries it as replay reads the tag, and the reward and value-loss detectors start over there."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Stage(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            self.logger.record("Curriculum/stage", 0.0 if self.model.num_timesteps <= 12 * N_ENVS * N_STEPS else 1.0)

    cfg = WatchdogConfig.model_validate({**small_config().model_dump(), "curriculum": {"still_iters": 10}})
    model, venv = make_model(1)
    callback = WatchdogCallback(tmp_path, config=cfg, safe_config=ROOT / "cfgs" / "sb3_safe.yaml", console=False)
    model.learn(20 * N_ENVS * N_STEPS, callback=CallbackList([Stage(), callback]))
    events = [json.loads(line) for line in (tmp_path / EVENTS_FILENAME).read_text().splitlines()]
    changes = [e for e in events if e["event"] == "task_change"]
    assert [(e["iteration"], e["change"]) for e in changes] == [(12, "stage 0 -> 1 (held 12 iterations)")]
    assert "reward_collapse" in changes[0]["restarted"]
    assert [e["metrics"].get("curriculum/stage") for e in events if e["event"] == "metrics"][11:13] == [0.0, 1.0]


def test_the_second_rollback_halves_the_safe_learning_rate(tmp_path):
    _, callback, events = run(tmp_path, 30, ["nan@8", "nan@20"], small_config())
    switches = [e["changes"]["learning_rate"]["new"] for e in events if e["event"] == "config_switch"]
    assert switches == [SAFE_LR, SAFE_LR / 2] and callback.result.rollbacks == 2


def test_a_safe_config_without_a_learning_rate_scales_the_runs_own_once_per_rollback(tmp_path):
    """Found by an audit (session 16): the scale was applied to the lr already scaled by the rollback before
    (x0.5 then x0.25 ran at x0.125 of the run's lr)."""
    safe = tmp_path / "safe.yaml"
    safe.write_text("max_grad_norm: 0.5\n")
    _, callback, events = run(tmp_path / "run", 30, ["nan@8", "nan@15", "nan@22"], small_config(rollback_budget=5),
                              safe_config=safe)
    switches = [e["changes"]["learning_rate"]["new"] for e in events if e["event"] == "config_switch"
                and "learning_rate" in e["changes"]]
    assert callback.result.rollbacks == 3 and switches == [BASE_LR / 2, BASE_LR / 4]


def test_each_learn_call_is_one_watched_session(tmp_path):
    model, _ = make_model()
    callback = WatchdogCallback(tmp_path, config=small_config(), console=False)
    for _ in range(2):
        model.learn(6 * N_ENVS * N_STEPS, callback=callback, reset_num_timesteps=False)
        assert "train" not in model.__dict__
    events = [json.loads(line) for line in (tmp_path / EVENTS_FILENAME).read_text().splitlines()]
    assert [e["event"] for e in events].count("start") == 2 and [e["event"] for e in events].count("end") == 2
    assert [e["iteration"] for e in events if e["event"] == "metrics"] == list(range(12))


def test_alert_mode_does_not_swallow_a_nan_crash(tmp_path):
    cfg = small_config().model_copy(update={"action": "alert"})
    with pytest.raises(NonFiniteTraining):
        run(tmp_path, 10, ["nan@3"], cfg)


def test_an_off_policy_model_is_refused_in_one_line_and_left_unwrapped(tmp_path):
    """Found by an audit (session 17): SAC was wrapped, then failed with a TypeError traceback, left wrapped."""
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", "Pendulum-v1", learning_starts=0, seed=0, device="cpu")
    with pytest.raises(WatchdogError) as err:
        model.learn(10, callback=WatchdogCallback(tmp_path, console=False))
    assert "SAC is off-policy" in str(err.value) and "\n" not in str(err.value)
    assert "train" not in model.__dict__ and not (tmp_path / EVENTS_FILENAME).exists()


def test_a_clip_range_schedule_is_replaced_even_where_it_stands_at_the_safe_value(tmp_path):
    """Found by an audit (session 17): a schedule whose value at the switch equalled the safe clip (0.2) was left
    in place and went on to 0.1, while the docs promised a constant."""
    model, venv = make_model()
    model.clip_range = lambda progress: 0.2 if progress > 0.5 else 0.1  # progress runs from 1 to 0
    callback = WatchdogCallback(tmp_path, config=small_config(), safe_config=ROOT / "cfgs" / "sb3_safe.yaml",
                                console=False)
    model.callback = callback
    model.learn(16 * N_ENVS * N_STEPS, callback=CallbackList([
        example.InjectFaults(FaultSchedule.from_specs(["nan@6"]), venv), callback]))
    assert callback.result.rollbacks == 1
    assert model.clip_range(0.0) == 0.2 and model.clip_range(1.0) == 0.2  # a constant now


def test_restore_is_in_place_and_a_snapshot_survives_further_training(tmp_path):
    model, _ = make_model(vecnorm=True)
    model.learn(2 * N_ENVS * N_STEPS)
    snap = capture_state(model)
    reference = copy.deepcopy(snap)
    params = [id(p) for p in model.policy.parameters()]
    vecnorm = model.get_vec_normalize_env()
    for _ in range(2):  # twice to the same snapshot: it must not alias the live optimizer's tensors
        model.learn(N_ENVS * N_STEPS, reset_num_timesteps=False)
        assert not _equal(capture_state(model)["policy"], reference["policy"])
        restore_state(model, snap)
        assert _equal(capture_state(model), reference) and _equal(snap, reference)
    assert [id(p) for p in model.policy.parameters()] == params  # the live objects, not new ones
    assert torch.equal(torch.from_numpy(vecnorm.obs_rms.mean), reference["vec_normalize"]["obs_rms"]["mean"])
    path = tmp_path / "state.pt"
    torch.save(snap, path)
    assert _equal(torch.load(path, weights_only=True), reference)  # plain tensors and numbers only


def test_a_fresh_rollout_after_a_restore_keeps_the_restored_normaliser_statistics(tmp_path):
    """Found by a review (session 27): the env's reset after a rollback or a resume added its observations to the
    VecNormalize statistics just restored (count +n_envs), so the run went on from a state no checkpoint held."""
    model, _ = make_model(vecnorm=True)
    model.learn(2 * N_ENVS * N_STEPS)
    snap = capture_state(model)
    reference = copy.deepcopy(snap)
    model.learn(N_ENVS * N_STEPS, reset_num_timesteps=False)
    restore_state(model, snap)
    restart_rollout(model, seed=1)
    assert _equal(capture_state(model)["vec_normalize"], reference["vec_normalize"])
    assert model.get_vec_normalize_env().training  # and it goes on learning its statistics


def test_default_config_leaves_the_normalised_value_loss_rule_off():
    assert default_config().value_loss.enabled is False and WatchdogConfig().value_loss.enabled is True


def test_safe_config_file_holds_the_field_report_values():
    from watchdog.cli import main

    assert main(["check", str(ROOT / "cfgs" / "sb3_safe.yaml")]) == 0
    assert main(["check", str(ROOT / "cfgs" / "sb3_watchdog.yaml")]) == 0  # the example's watchdog config
    from watchdog.integrations.sb3 import FIELD_REPORT_SAFE, load_safe_config

    assert load_safe_config(ROOT / "cfgs" / "sb3_safe.yaml") == FIELD_REPORT_SAFE
    assert FIELD_REPORT_SAFE == SB3SafeConfig(learning_rate=3e-4, max_grad_norm=0.5, clip_range=0.2,
                                              normalize_advantage=True)


def test_watchdog_check_rejects_a_misspelt_sb3_key(tmp_path, capsys):
    from watchdog.cli import main

    bad = tmp_path / "safe.yaml"
    bad.write_text("learning_rate: 3.0e-4\nclip_rnage: 0.2\n")
    assert main(["check", str(bad)]) == 2
    assert "clip_rnage" in capsys.readouterr().err


def test_importing_watchdog_imports_no_framework():
    code = ("import sys, watchdog, watchdog.integrations, watchdog.pipeline, watchdog.session; "
            "print(sorted(m for m in ('stable_baselines3', 'rsl_rl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# --- the example, end to end ----------------------------------------------------------------------


def _example(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_example_nan_at_20_alarms_rolls_back_before_20_switches_config_and_finishes(tmp_path):
    out = _example("--watchdog", "--inject", "nan@20", "--iterations", "40", "--run_dir", str(tmp_path), cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    events = [json.loads(line) for line in (tmp_path / EVENTS_FILENAME).read_text().splitlines()]
    alarm = next(e for e in events if e["event"] == "alarm")
    rollback = next(e for e in events if e["event"] == "rollback")
    assert alarm["iteration"] == 20 and rollback["to_iteration"] < 20
    assert any(e["event"] == "config_switch" for e in events) and events[-1]["event"] == "end"
    assert max(e["iteration"] for e in events if e["event"] == "metrics") == 39
    # the crashed rollout: one sentence on the console, its full error in the event log (a raw log line on stderr,
    # and nothing in the log, until session 18)
    failed, = [e for e in events if e["event"] == "iteration_failed"]
    assert failed["iteration"] == 20 and "Traceback" in failed["error"] and "ITERATION_FAILED it 20" in out.stdout
    assert "Expected parameter" not in out.stderr
    assert "sys/rss_mb" in [e for e in events if e["event"] == "metrics"][-1]["metrics"]  # resources (session 18)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(next(tmp_path.glob("events.out.tfevents.*"))))  # SB3's own TensorBoard file
    tb.Reload()
    states = [e.value for e in tb.Scalars("watchdog/state")]
    assert len(states) == 40 and states[20] == 3.0 and tb.Scalars("watchdog/rollbacks")[-1].value == 1.0
    from watchdog.replay import replay_run  # the event log replays as an SB3 run's, as it was judged live

    report = replay_run(tmp_path)
    assert report.source == "events" and report.run_info["framework"] == "sb3"
    assert not report.run_info["value_loss_rule"] and "openrl_ws" not in (report.resume_command or "")
    # SB3's own TensorBoard file alone replays update for update as judged live: the failed rollout's flush and the
    # last update's go where SB3's next dump would have put them, not onto the update before's step (averaged)
    import shutil

    logs = tmp_path / "tb_only"
    logs.mkdir()
    shutil.copy(next(tmp_path.glob("events.out.tfevents.*")), logs)
    tb_only = replay_run(logs)
    live = {e["iteration"]: e["metrics"]["train/value_loss"] for e in events if e["event"] == "metrics"}
    read = {r.iteration: r.metrics.get("train/value_loss") for r in tb_only.records}
    judged = [i for i, v in live.items() if isinstance(v, float)]  # not the failed rollout's NaN: no update, no point
    assert sorted(read) == judged and len(judged) == 39
    assert [read[i] for i in judged] == pytest.approx([live[i] for i in judged], rel=1e-6)


@pytest.mark.parametrize(("args", "code"), [
    (["--inject", "nan@3", "--iterations", "6"], 3),                   # unwatched: dies on NaN, one line
    (["--watchdog", "--inject", "nan@3", "--iterations", "6"], 1),     # budget 0: stopped by the watchdog
    (["--inject", "nan@oops"], 2),                                     # bad input
])
def test_example_exit_codes(tmp_path, args, code):
    if "--watchdog" in args:
        cfg = tmp_path / "wd.yaml"
        cfg.write_text("value_loss: {enabled: false}\npolicy: {rollback_budget: 0}\n")
        args = [*args, "--watchdog_config", str(cfg)]
    out = _example(*args, "--run_dir", str(tmp_path / "run"), cwd=ROOT)
    assert out.returncode == code, out.stderr[-2000:]
    if code in (2, 3):
        lines = [line for line in out.stderr.splitlines() if line.startswith("sb3_ppo.py:")]
        assert len(lines) == 1 and "Traceback" not in out.stderr


def test_example_restarted_by_watchdog_run_does_not_inject_its_fault_again(tmp_path):
    """`--inject nan@3` in a process `watchdog run` restarted was injected again (session 18): not an incident but a
    property of the run, spending the restart budget."""
    out = subprocess.run([sys.executable, str(EXAMPLE), "--inject", "nan@3", "--iterations", "5",
                          "--run_dir", str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**os.environ, "WATCHDOG_RESTART": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "restart 2 by `watchdog run`: injected faults (nan@3) are not repeated" in out.stdout


def test_a_real_lr_fault_collapses_the_policy_live_and_is_rolled_back_before_it_at_the_safe_lr(tmp_path):
    """tests/data/long_faults/sb3/cartpole_lr_fault, live: the same SB3 CartPole run (2 envs x 32 steps,
    32x32, 2 epochs, seed 0) whose learning rate jumps x100 for every update after rollout 201. Its
    entropy collapses and its KL per update surges, then its episode return falls: the callback calls it
    a policy_collapse, rolls back in place to a stable checkpoint before the jump, and every later update
    runs at the safe learning rate (a constant, which replaces the jumping schedule)."""
    total, jump = 300, 200

    def schedule(progress_remaining: float) -> float:
        return 3e-4 * (100.0 if round((1 - progress_remaining) * total) > jump else 1.0)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = ProbedPPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=2, seed=0, learning_rate=schedule,
                      policy_kwargs={"net_arch": [32, 32]}, device="cpu")
    model.probes = []
    callback = WatchdogCallback(tmp_path, safe_config=ROOT / "cfgs" / "sb3_safe.yaml", console=False)
    model.callback = callback
    model.learn(total * 64, callback=callback)
    events = [json.loads(line) for line in (tmp_path / EVENTS_FILENAME).read_text().splitlines()]
    alarm = next(e for e in events if e["event"] == "alarm")
    rollback = next(e for e in events if e["event"] == "rollback")
    assert alarm["detector"] == "policy_collapse" and alarm["iteration"] > jump, alarm
    assert jump - 30 <= rollback["to_iteration"] <= jump and abs(alarm["onset_iteration"] - jump) <= 10, rollback
    assert all(p["lr"] == [SAFE_LR] for p in model.probes if p["iteration"] > rollback["iteration"])
    assert [e["event"] for e in events].count("rollback") == 1 and not callback.result.stopped


def test_a_given_config_is_judged_as_replay_judges_sb3(tmp_path):
    """A user's config (the library defaults here) gets what replay gives an SB3 run: no 0.2 rule, a
    trend that only warns, reward corroboration, the episode return as the reward; unless it says the
    value targets are normalised."""
    plain = WatchdogCallback(tmp_path / "a", config=WatchdogConfig(), console=False).cfg
    assert not plain.value_loss.enabled and plain.trend.alarm_ratio is None and plain.policy.reward_corroborates
    assert plain.reward_collapse.signal == "rollout/episode_return"
    normalised = WatchdogConfig.model_validate({"tags": {"value_targets_normalized": True}})
    kept = WatchdogCallback(tmp_path / "b", config=normalised, console=False).cfg
    assert kept.value_loss.enabled and kept.trend.alarm_ratio == WatchdogConfig().trend.alarm_ratio


def test_a_healthy_run_reaching_a_sparse_goal_is_not_rolled_back_live(tmp_path):
    """tests/data/sparse_goal/zoo_norm_seed2, live: SB3 PPO with the RL Zoo's MountainCarContinuous
    hyper-parameters (VecNormalize, gSDE) whose first episodes reach the flag at update 12. The value
    loss (unnormalised targets) blows up 5,000x there as the return jumps from -1 to 36: an advisory
    blow-up warning, no alarm, no rollback, the learning rate untouched."""
    from tests.data.sparse_goal.make_sparse_goal import build

    model = build("zoo_norm_seed2")
    callback = WatchdogCallback(tmp_path, safe_config=ROOT / "cfgs" / "sb3_safe.yaml", console=False)
    model.learn(20 * 512, callback=callback)
    events = [json.loads(line) for line in (tmp_path / EVENTS_FILENAME).read_text().splitlines()]
    blowup = next(e for e in events if e["event"] == "warning" and e["detector"] == "blowup")
    assert blowup["advisory"] and "return jumped" in blowup["reason"] and blowup["iteration"] >= 10, blowup
    assert blowup["value"] / blowup["threshold"] >= 10  # 1,000x its floor and more, not a marginal 100x
    kinds = [e["event"] for e in events]
    assert "alarm" not in kinds and "rollback" not in kinds and callback.result.rollbacks == 0
    returns = [e["metrics"]["rollout/episode_return"] for e in events
               if e["event"] == "metrics" and "rollout/episode_return" in e["metrics"]]
    assert max(returns) > 30  # the goal was reached (+100 at the flag): the run is learning
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(7.77e-05)
