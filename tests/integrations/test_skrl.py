"""skrl under the watchdog: real skrl PPO (Gaussian policy, running scalers, KLAdaptiveLR) on push_lite (tiny),
with injected faults.

Save -> train -> fault -> roll back -> the next update starts from exactly the saved tensors, at the safe
learning rate, and skrl's trainer goes on to its end (or is left at a stop, without a checkpoint of diverged
weights).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skrl", reason="skrl is not installed (pip install 'ppo-watchdog[skrl]')")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from openrl_ws.envs import push_lite  # noqa: E402
from openrl_ws.inject import FaultSchedule  # noqa: E402
from tests.integrations.common import assert_same_tensors, kinds, spy_reseed  # noqa: E402
from watchdog.checkpoints import load_checkpoint  # noqa: E402
from watchdog.config import SkrlSafeConfig, WatchdogConfig, load_any_config  # noqa: E402
from watchdog.console import WatchdogConsole  # noqa: E402
from watchdog.errors import WatchdogError  # noqa: E402
from watchdog.eventlog import read_events  # noqa: E402
from watchdog.integrations import skrl as wsk  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import skrl_ppo  # noqa: E402

torch.set_num_threads(1)
WORLDS, ROLLOUTS = 8, 16  # 16 envs x 16 steps per update
SAFE_LR = 3e-4
QUICK = {"warmup": {"min_iters": 5, "baseline_points": 5},
         "trend": {"baseline_iters": 10, "lag_iters": 2},
         "policy": {"stable_every_iters": 2, "onset_margin_iters": 2, "cooldown_iters": 5}}


@pytest.fixture(autouse=True)
def _skrl_quiet(skrl_quiet_at_exit):
    """(tests/conftest.py)"""


@pytest.fixture(autouse=True)
def _argument_checks_off_as_in_a_skrl_process():
    """skrl's Gaussian models turn torch.distributions' argument checks off for the whole process when first
    imported; tests/conftest.py restores the setting after each test, so each test here starts as a skrl
    process is (NaN reaches the losses instead of raising in ``act``)."""
    torch.distributions.Distribution.set_default_validate_args(False)


class Run:
    """One tiny watched skrl run, recording the training state each update starts from."""

    def __init__(self, tmp_path: Path, inject: list[str], updates: int, *, wd_cfg: WatchdogConfig | None = None,
                 safe: SkrlSafeConfig | str | None = str(ROOT / "cfgs" / "skrl_safe.yaml")):
        torch.manual_seed(0)
        self.run_dir = tmp_path / "run"
        env = skrl_ppo.make_env(WORLDS, rollouts=ROLLOUTS, seed=0, faults=FaultSchedule.from_specs(inject))
        self.agent, self.trainer = skrl_ppo.build_agent(env, iterations=updates, rollouts=ROLLOUTS, run_dir=self.run_dir)
        self.watch = wsk.SkrlWatchdog(self.agent, config=wd_cfg, safe_config=safe, console=WatchdogConsole(io.StringIO()))
        self.rollbacks_seen = 0
        self.update_starts: list[tuple[int, dict]] = []
        self.watch.watch.watchdog.listeners.append(self._on_event)
        agent, update = self.agent, self.agent.update

        def recording_update(*, timestep, timesteps):
            state = wsk.capture_state(agent)
            state["group_lrs"] = [g["lr"] for g in agent.optimizer.param_groups]
            self.update_starts.append((self.rollbacks_seen, state))
            return update(timestep=timestep, timesteps=timesteps)

        agent.update = recording_update

    def _on_event(self, event: dict) -> None:
        self.rollbacks_seen += event["event"] == "rollback"

    def train(self) -> list[dict]:
        with self.watch:
            self.trainer.train()
        return read_events(self.run_dir / "watchdog_events.jsonl").events


def assert_restored_exactly(run: Run, rollback: dict) -> None:
    saved, meta = load_checkpoint(rollback["checkpoint"])
    assert meta["iteration"] == rollback["to_iteration"]
    live = next(state for rollbacks, state in run.update_starts if rollbacks == 1)
    for name in ("policy", "value", "_observation_preprocessor", "_value_preprocessor"):
        assert_same_tensors(live[name], saved[name], name)
    assert_same_tensors(live["optimizer"]["state"], saved["optimizer"]["state"], "optimizer.state")
    assert live["group_lrs"] == [pytest.approx(SAFE_LR)]


def assert_trained_on_at_safe_lr(run: Run, events: list[dict], updates: int, rollback: dict) -> None:
    assert not run.watch.result.stopped and run.watch.result.rollbacks == 1
    metrics = kinds(events, "metrics")
    assert metrics[-1]["iteration"] == updates - 1
    after = [m["metrics"] for m in metrics if m["iteration"] > rollback["iteration"]]
    assert after and all(m["train/learning_rate"] == pytest.approx(SAFE_LR) for m in after)
    assert all(math.isfinite(m["train/value_loss"]) for m in after)
    assert run.agent.scheduler is None and run.agent.cfg.grad_norm_clip == 0.5
    assert all(torch.isfinite(p).all() for p in run.agent.policy.parameters())
    assert kinds(events, "end") and "update" not in run.agent.__dict__  # skrl's own update again


def test_nan_rolls_back_before_the_fault_and_restores_exactly(tmp_path, monkeypatch):
    seeds = spy_reseed(monkeypatch, wsk)
    run = Run(tmp_path, ["nan@8"], 14)
    events = run.train()
    assert len(seeds) == 1  # torch, numpy and random reseeded at the rollback
    alarm, = kinds(events, "alarm")
    assert (alarm["iteration"], alarm["detector"]) == (8, "nonfinite") and alarm["onset_iteration"] == 8
    rollback, = kinds(events, "rollback")
    assert rollback["to_iteration"] < 8
    switch, = kinds(events, "config_switch")
    assert switch["changes"]["learning_rate_scheduler"] == {"old": "KLAdaptiveLR", "new": "fixed"}
    assert switch["changes"]["grad_norm_clip"] == {"old": 1.0, "new": 0.5}
    assert switch["changes"]["learning_rate"]["new"] == pytest.approx(SAFE_LR)
    assert_restored_exactly(run, rollback)
    assert_trained_on_at_safe_lr(run, events, 14, rollback)


def test_the_returns_after_a_rollback_are_not_poisoned_by_the_abandoned_nan_reward(tmp_path):
    run = Run(tmp_path, ["nan@20"], 30, wd_cfg=WatchdogConfig.model_validate(QUICK))
    events = run.train()
    rollback, = kinds(events, "rollback")
    assert rollback["iteration"] == 20
    returns = [m["metrics"].get("rollout/episode_return") for m in kinds(events, "metrics") if m["iteration"] > 20]
    assert returns and all(r is None or math.isfinite(r) for r in returns) and any(r is not None for r in returns)


@pytest.mark.parametrize("wd_cfg", [None, WatchdogConfig.model_validate(QUICK)], ids=["default", "quick"])
def test_a_short_healthy_run_is_never_rolled_back(tmp_path, wd_cfg):
    run = Run(tmp_path, [], 30, wd_cfg=wd_cfg)
    events = run.train()
    assert not kinds(events, "alarm") and not kinds(events, "rollback") and not run.watch.result.stopped
    assert len(kinds(events, "metrics")) == 30 and kinds(events, "end")


def test_a_stop_leaves_the_trainer_without_a_checkpoint_of_diverged_weights(tmp_path):
    cfg = WatchdogConfig.model_validate({"policy": {"rollback_budget": 1}})
    run = Run(tmp_path, ["nan@4", "nan@12"], 30, wd_cfg=cfg)
    events = run.train()  # the stop ends the with block quietly
    stop, = kinds(events, "stop")
    assert stop["iteration"] == 12 and run.watch.result.stopped
    assert max(e["iteration"] for e in kinds(events, "metrics")) == 12
    # skrl checkpoints every 10 updates (160 timesteps): 160 only; 320 would come after the stop
    assert sorted(p.name for p in (run.run_dir / "checkpoints").glob("agent_*.pt")) == ["agent_160.pt"]


def test_a_kl_adaptive_schedule_left_in_place_is_said_to_move_the_safe_lr(tmp_path):
    run = Run(tmp_path, ["nan@6"], 8, safe=SkrlSafeConfig(learning_rate=SAFE_LR))
    events = run.train()
    switch, = kinds(events, "config_switch")
    assert "KLAdaptiveLR moves it" in switch["kept"]["learning_rate"]
    assert isinstance(run.agent.scheduler, wsk.KLAdaptiveLR)


def test_a_torch_schedule_left_in_place_goes_on_from_the_safe_lr(tmp_path):
    """Found by an audit (session 16): a torch scheduler computed from its base lrs (LambdaLR here) set the run's
    own lr again at its next step, so a safe lr with learning_rate_scheduler left unset never took effect."""
    run = Run(tmp_path, ["nan@6"], 10, safe=SkrlSafeConfig(learning_rate=SAFE_LR))
    run.agent.scheduler = torch.optim.lr_scheduler.LambdaLR(run.agent.optimizer, lambda n: 1.0)
    events = run.train()
    rollback, = kinds(events, "rollback")
    after = [m["metrics"]["train/learning_rate"] for m in kinds(events, "metrics") if m["iteration"] > rollback["iteration"]]
    assert after and all(lr == pytest.approx(SAFE_LR) for lr in after), after


@pytest.mark.parametrize("schedule", [
    lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=50),
    lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, base_lr=1e-4, max_lr=1e-3, step_size_up=8, cycle_momentum=False),
], ids=["OneCycleLR", "CyclicLR"])
def test_a_torch_schedule_of_its_own_lrs_goes_on_scaled_to_the_safe_lr(tmp_path, schedule):
    """Found by an audit (session 17): OneCycleLR computes the lr from its groups' initial, max and min lrs and
    CyclicLR from its max lrs as well as its base lrs: after one epoch they were back on the run's own curve."""
    run = Run(tmp_path, ["nan@6"], 10, safe=SkrlSafeConfig(learning_rate=SAFE_LR))
    run.agent.scheduler = schedule(run.agent.optimizer)
    events = run.train()
    rollback, = kinds(events, "rollback")
    switch, = kinds(events, "config_switch")
    after = [s["group_lrs"][0] for n, s in run.update_starts if n == 1]
    change = switch["changes"].get("learning_rate")
    if change is None:  # the schedule had the lr below the safe one (OneCycleLR's warm-up): kept, and its own curve
        # goes on, never scaled up (until session 20 a safe lr 7.5x the warm-up's scaled the curve to peak at 7.5e-3)
        assert after[0] <= SAFE_LR and max(after) <= 1e-3 * (1 + 1e-9), after
    else:
        scale = change["new"] / change["old"]  # the run's curve, scaled to give the safe lr then
        assert change["new"] == pytest.approx(SAFE_LR) and scale < 1
        assert after[0] == pytest.approx(SAFE_LR) and max(after) <= 1e-3 * scale * (1 + 1e-9), (scale, after)


def test_the_value_loss_rule_follows_the_value_preprocessor_as_replay_does():
    on, off = wsk.default_watchdog_config(True), wsk.default_watchdog_config(False)
    assert on.value_loss.enabled and not off.value_loss.enabled and off.trend.alarm_ratio is None
    assert on.reward_collapse.signal == off.reward_collapse.signal == "rollout/episode_return"


def test_the_shipped_safe_config_is_the_field_reports():
    shipped = load_any_config(ROOT / "cfgs" / "skrl_safe.yaml")
    assert isinstance(shipped, SkrlSafeConfig) and shipped == wsk.FIELD_REPORT_SAFE


def test_an_unsupported_skrl_version_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.4.3")
    with pytest.raises(WatchdogError) as err:
        wsk.skrl_version()
    assert "skrl 1.4.3 is installed" in str(err.value) and "\n" not in str(err.value)


def test_skrls_a2c_is_refused_in_one_line(tmp_path):
    """A2C has PPO's shape (update, optimizer, memory) but no ratio clip: a traceback at the start until session 17."""
    from skrl.agents.torch.a2c import A2C, A2C_CFG
    from skrl.memories.torch import RandomMemory

    env = skrl_ppo.make_env(WORLDS, rollouts=ROLLOUTS, seed=0)
    ppo, _ = skrl_ppo.build_agent(env, iterations=2, rollouts=ROLLOUTS, run_dir=tmp_path / "run")
    a2c = A2C(models=ppo.models, memory=RandomMemory(memory_size=ROLLOUTS, num_envs=env.num_envs), cfg=A2C_CFG(),
              observation_space=env.observation_space, action_space=env.action_space, device=env.device)
    a2c.init()
    with pytest.raises(WatchdogError) as err:
        wsk.SkrlWatchdog(a2c, tmp_path / "run", console=WatchdogConsole(io.StringIO()))
    assert "A2C is not a skrl PPO agent: its config has no ratio_clip" in str(err.value) and "\n" not in str(err.value)


def example(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "examples" / "skrl_ppo.py"), "--num_worlds", str(WORLDS),
                           "--run_dir", str(tmp_path / "run"), *args], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, check=False)


def test_example_nan_at_20_of_30_rolls_back_and_exits_0_and_replays_as_skrl(tmp_path):
    out = example(tmp_path, "--watchdog", "--inject", "nan@20", "--iterations", "30")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ROLLBACK it 20" in out.stdout and "finished: 30 updates" in out.stdout
    metrics = [e for e in read_events(tmp_path / "run" / "watchdog_events.jsonl").events if e["event"] == "metrics"]
    assert "sys/rss_mb" in metrics[-1]["metrics"]  # resources watched (session 18)
    replay = subprocess.run([sys.executable, "-m", "watchdog.cli", "replay", str(tmp_path / "run")],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert replay.returncode == 1 and "framework: skrl" in replay.stdout and "openrl_ws" not in replay.stdout
    assert "would train on with cfgs/skrl_safe.yaml" in replay.stdout
    assert "recovered live" in replay.stdout and "recommended checkpoint" not in replay.stdout  # trained on to its end
    log = tmp_path / "run" / "watchdog_events.jsonl"  # killed before its end event: its checkpoints are weighed
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    replay = subprocess.run([sys.executable, "-m", "watchdog.cli", "replay", str(tmp_path / "run")],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    # the first NaN at update 20 is an exact onset: agent_320.pt (timestep 320 x 16 envs = after update 19) is before it
    assert "recommended checkpoint: " + str(tmp_path / "run" / "checkpoints" / "agent_320.pt") in replay.stdout


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--inject", "nan@5", "--iterations", "8"], 3, "non-finite policy weights"),  # unwatched: skrl trains on
    (["--watchdog", "--inject", "nan@5", "--iterations", "8", "--watchdog_config", "ALERT"], 3, "non-finite"),
    (["--watchdog", "--inject", "lr_spike@3:10"], 2, "not supported"),
    (["--watchdog", "--safe_config", "missing.yaml"], 2, "missing.yaml"),
])
def test_example_exit_codes(tmp_path, args, code, says):
    (tmp_path / "alert.yaml").write_text("action: alert\n")
    out = example(tmp_path, *[str(tmp_path / "alert.yaml") if a == "ALERT" else a for a in args])
    assert out.returncode == code, (out.stdout[-2000:], out.stderr[-2000:])
    assert says in out.stderr
    if code == 2:
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_a_real_learning_rate_fault_rolls_back_past_the_checkpoint_it_broke(tmp_path):
    """Not an injected number: the learning rate x1000 (1e-3 -> 1.0) for update 60 alone, through skrl's own
    ``learning_rate_scheduler`` (a torch ``LambdaLR``, as the committed skrl lr faults were made). skrl logs no
    KL, and update 60's losses look normal (value loss 0.71, the log-std up 0.7 nats): its checkpoint is taken
    as stable. Update 61 is NaN, an exact onset: back to 60, whose weights go NaN again at once; the next
    rollback passes 60 over and goes back to 50, and the run trains on to its end at the safe lr, halved."""
    torch.manual_seed(0)
    run_dir = tmp_path / "run"
    env = skrl_ppo.make_env(16, rollouts=ROLLOUTS, seed=0)
    agent, trainer = skrl_ppo.build_agent(env, iterations=75, rollouts=ROLLOUTS, run_dir=run_dir)
    epochs = agent.cfg.learning_epochs  # LambdaLR counts the scheduler's steps: one per learning epoch
    agent.scheduler = torch.optim.lr_scheduler.LambdaLR(agent.optimizer, lambda n: 1000.0 if n // epochs == 60 else 1.0)
    with wsk.SkrlWatchdog(agent, safe_config=ROOT / "cfgs" / "skrl_safe.yaml", console=WatchdogConsole(io.StringIO())) as watch:
        trainer.train()
    events = read_events(run_dir / "watchdog_events.jsonl").events
    first, second = kinds(events, "rollback")
    assert (first["iteration"], first["to_iteration"]) == (61, 60)
    assert (second["iteration"], second["to_iteration"], second["passed_over"]) == (62, 50, 60)
    assert not watch.result.stopped and len(kinds(events, "alarm")) == 2
    after = [m["metrics"] for m in kinds(events, "metrics") if m["iteration"] > 62]
    assert len(after) == 12 and all(math.isfinite(m["train/value_loss"]) for m in after)
    assert all(m["train/learning_rate"] == pytest.approx(SAFE_LR / 2) for m in after)


def test_a_curriculum_step_the_env_reports_restarts_the_reward_and_value_detectors_live(tmp_path):
    """Isaac Lab's curriculum terms reach skrl's ``record_transition`` in the step info (``infos["log"]``); the
    watchdog reads them there: a term that held 0 for 15 updates and then takes 2 is a task change."""
    cfg = WatchdogConfig.model_validate({**QUICK, "curriculum": {"still_iters": 10}})
    run = Run(tmp_path, [], 25, wd_cfg=cfg)
    env, step, steps = run.trainer.env, run.trainer.env.step, [0]

    def with_curriculum(actions):  # the env's extras, as Isaac Lab's env returns them through skrl's wrapper
        obs, rewards, terminated, truncated, _ = step(actions)
        steps[0] += 1  # update u's rollout is steps u * ROLLOUTS + 1 .. (u + 1) * ROLLOUTS
        level = 2.0 if steps[0] > 15 * ROLLOUTS else 0.0
        return obs, rewards, terminated, truncated, {"log": {"Curriculum/levels": torch.full((WORLDS * 2,), level)}}

    env.step = with_curriculum
    events = run.train()
    change, = kinds(events, "task_change")
    assert change["iteration"] == 15 and change["change"] == "levels 0 -> 2 (held 15 iterations)"
    assert kinds(events, "metrics")[-1]["metrics"]["curriculum/levels"] == 2.0


# --- PPO_RNN --------------------------------------------------------------------------------------
# skrl keeps the rollout's hidden states outside every state_dict (``agent._rnn_initial_states``) and zeroes an
# env's only when its episode ends. A NaN step left them NaN through the rollback, and the run went NaN again at
# every update until the rollback budget was spent (found by an audit, session 17). Isaac Lab's episodes are long
# (1,000 steps) and its envs clip NaN actions rather than end the episode, as the env of this test does.

RNN_WORLDS, SEQUENCE, HIDDEN = 4, 8, 32


def gru_models(env) -> dict:
    from skrl.models.torch import DeterministicMixin, GaussianMixin, Model

    class GRU(Model):
        """A one-layer GRU and a linear head; skrl feeds it sequences of SEQUENCE steps when training."""

        def __init__(self, outputs: int):
            Model.__init__(self, observation_space=env.observation_space, action_space=env.action_space,
                           device=env.device)
            self.gru = nn.GRU(self.num_observations, HIDDEN, batch_first=True)
            self.head = nn.Linear(HIDDEN, outputs)

        def get_specification(self):
            return {"rnn": {"sequence_length": SEQUENCE, "sizes": [(1, env.num_envs, HIDDEN)]}}

        def features(self, inputs):
            x, h = inputs["observations"], inputs["rnn"][0]
            if self.training:  # (env, sequence) batches and each sequence's first hidden state
                x = x.view(-1, SEQUENCE, x.shape[-1])
                h = h.view(1, -1, SEQUENCE, h.shape[-1])[:, :, 0, :].contiguous()
            else:
                x = x.view(-1, 1, x.shape[-1])
            out, h = self.gru(x, h)
            return self.head(out.flatten(0, 1)), h

    class Policy(GaussianMixin, GRU):
        def __init__(self):
            GRU.__init__(self, env.action_space.shape[0])
            GaussianMixin.__init__(self, clip_actions=True, clip_log_std=True, min_log_std=-20.0, max_log_std=2.0)
            self.log_std = nn.Parameter(torch.zeros(self.num_actions))

        def compute(self, inputs, role):
            mean, h = self.features(inputs)
            return mean, {"log_std": self.log_std, "rnn": [h]}

    class Value(DeterministicMixin, GRU):
        def __init__(self):
            GRU.__init__(self, 1)
            DeterministicMixin.__init__(self)

        def compute(self, inputs, role):
            value, h = self.features(inputs)
            return value, {"rnn": [h]}

    return {"policy": Policy(), "value": Value()}


@pytest.fixture
def long_episodes_clipping_nan_actions(monkeypatch):
    """push_lite with Isaac Lab's kind of episode (1,000 steps) and action handling (a NaN action is clipped to
    0, not the end of the episode, which would zero the hidden states and hide the fault's trace)."""
    init, step = push_lite.PushLiteVecEnv.__init__, push_lite.PushLiteVecEnv.step

    def long_init(self, *args, config=None, **kwargs):
        init(self, *args, config=dataclasses.replace(config or push_lite.PushLiteConfig(), max_episode_steps=1000),
             **kwargs)

    def clipping_step(self, actions, *args, **kwargs):
        return step(self, np.nan_to_num(np.asarray(actions, dtype=np.float32), nan=0.0), *args, **kwargs)

    monkeypatch.setattr(push_lite.PushLiteVecEnv, "__init__", long_init)
    monkeypatch.setattr(push_lite.PushLiteVecEnv, "step", clipping_step)


def test_a_rollback_starts_the_rnn_hidden_states_afresh(tmp_path, long_episodes_clipping_nan_actions):
    from skrl.agents.torch.ppo import PPO_RNN
    from skrl.memories.torch import RandomMemory
    from skrl.trainers.torch import SequentialTrainer

    torch.manual_seed(0)
    run_dir, updates = tmp_path / "run", 16
    env = skrl_ppo.make_env(RNN_WORLDS, rollouts=ROLLOUTS, seed=0, faults=FaultSchedule.from_specs(["nan@8"]))
    agent = PPO_RNN(models=gru_models(env), memory=RandomMemory(memory_size=ROLLOUTS, num_envs=env.num_envs),
                    cfg=skrl_ppo.ppo_cfg(env, rollouts=ROLLOUTS, run_dir=run_dir), observation_space=env.observation_space, action_space=env.action_space,
                    device=env.device)
    trainer = SequentialTrainer(cfg={"timesteps": updates * ROLLOUTS, "headless": True, "disable_progressbar": True},
                                env=env, agents=agent)
    watch = wsk.SkrlWatchdog(agent, config=WatchdogConfig.model_validate(QUICK),
                             safe_config=ROOT / "cfgs" / "skrl_safe.yaml", console=WatchdogConsole(io.StringIO()))
    with watch:
        trainer.train()
    events = read_events(run_dir / "watchdog_events.jsonl").events
    alarm, = kinds(events, "alarm")
    assert (alarm["iteration"], alarm["detector"]) == (8, "nonfinite")
    assert len(kinds(events, "rollback")) == 1 and not watch.result.stopped
    after = [m["metrics"]["train/value_loss"] for m in kinds(events, "metrics") if m["iteration"] > 8]
    assert len(after) == updates - 9 and all(math.isfinite(v) for v in after)
    assert all(torch.isfinite(s).all() for states in agent._rnn_initial_states.values() for s in states)
