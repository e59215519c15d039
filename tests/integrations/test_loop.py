"""A PPO loop of your own under the watchdog: CleanRL's ppo.py loop on CartPole (the rewrite that made the committed
CleanRL runs, tests/data/frameworks/make_runs.py), with ``LoopWatchdog`` called once per update."""

from __future__ import annotations

import collections
import io
import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions.categorical import Categorical

from tests.data.frameworks.make_runs import cleanrl_gae, cleanrl_losses
from tests.integrations.common import assert_same_tensors, kinds, spy_reseed
from watchdog.checkpoints import clone_tree, load_checkpoint
from watchdog.config import WatchdogConfig
from watchdog.console import WatchdogConsole
from watchdog.errors import NonFiniteTraining, WatchdogError
from watchdog.eventlog import read_events
from watchdog.integrations import loop as loop_module
from watchdog.integrations.loop import LoopWatchdog

ENVS, STEPS, LR, SAFE_LR = 4, 32, 2.5e-4, 1e-4
QUICK = {"warmup": {"min_iters": 5, "baseline_points": 5},
         "policy": {"stable_every_iters": 2, "onset_margin_iters": 2, "cooldown_iters": 5}}


class CleanRLLoop:
    """CleanRL's ppo.py, reduced to CartPole on CPU, with the watchdog's few lines in it. ``nan_reward_at``: the
    updates whose rollout gets one NaN reward (the env's fault); ``nan_obs_at``: one NaN observation (the policy's
    Categorical raises). The learning rate is annealed from ``learning_rate`` (CleanRL's ``args.learning_rate``)
    at each update's start, as CleanRL's ``anneal_lr`` (on by default) does."""

    def __init__(self, run_dir: Path, *, cfg: WatchdogConfig | None = None, nan_reward_at=(), nan_obs_at=()):
        self.learning_rate = LR  # CleanRL's args.learning_rate: what anneal_lr scales at every update
        torch.manual_seed(1)
        self.envs = gym.vector.SyncVectorEnv([lambda: gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1"))
                                              for _ in range(ENVS)])
        self.critic = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
        self.actor = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        self.params = [*self.critic.parameters(), *self.actor.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=LR, eps=1e-5)
        self.nan_reward_at, self.nan_obs_at = set(nan_reward_at), set(nan_obs_at)
        self.update_starts: list[tuple[int, dict]] = []  # (rollbacks so far, state) at each update's start
        self.watch = LoopWatchdog(run_dir, capture=self.capture, restore=self.restore, switch=self.switch,
                                  config=cfg, safe_name="lr 1e-4", console=WatchdogConsole(io.StringIO()))

    # the three functions a user writes
    def capture(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(), "optimizer": self.opt.state_dict()}

    def restore(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["optimizer"])

    def switch(self, lr_scale: float) -> dict:
        # the lr anneal_lr starts from, not only the optimizer's: CleanRL sets the optimizer's lr from
        # args.learning_rate at the next update's start (a switch of the optimizer alone was undone there)
        old, self.learning_rate = self.learning_rate, SAFE_LR * lr_scale
        self.opt.param_groups[0]["lr"] = self.learning_rate
        return {"learning_rate": (old, self.learning_rate)}

    def train(self, updates: int) -> list[dict]:
        returns = collections.deque(maxlen=100)
        start = self.watch.resume()  # under `watchdog run`: where a restarted process goes on
        next_obs, next_done = torch.tensor(self.envs.reset(seed=1)[0], dtype=torch.float32), torch.zeros(ENVS)
        global_step = start.env_steps
        obs_buf = torch.zeros(STEPS, ENVS, 4)
        act_buf, logp_buf, rew_buf, done_buf, val_buf = (torch.zeros(STEPS, ENVS) for _ in range(5))
        for update in range(start.iteration, updates):
            frac = 1.0 - update / updates  # CleanRL's anneal_lr
            self.opt.param_groups[0]["lr"] = frac * self.learning_rate
            state = clone_tree(self.capture())  # state_dict() holds the live tensors
            self.update_starts.append((self.watch.result.rollbacks,
                                       {**state, "lr": self.opt.param_groups[0]["lr"], "frac": frac}))
            try:
                for t in range(STEPS):
                    global_step += ENVS
                    if update in self.nan_obs_at and t == 0:
                        next_obs = torch.full_like(next_obs, math.nan)
                    obs_buf[t], done_buf[t] = next_obs, next_done
                    with torch.no_grad():
                        dist = Categorical(logits=self.actor(next_obs))
                        action = dist.sample()
                        val_buf[t] = self.critic(next_obs).flatten()
                    act_buf[t], logp_buf[t] = action, dist.log_prob(action)
                    o, r, term, trunc, info = self.envs.step(action.numpy())
                    rew_buf[t] = torch.tensor(r, dtype=torch.float32)
                    if update in self.nan_reward_at and t == 0:
                        rew_buf[t, 0] = math.nan
                    next_obs = torch.tensor(o, dtype=torch.float32)
                    next_done = torch.tensor(term | trunc, dtype=torch.float32)
                    returns.extend(f["episode"]["r"].item() for f in info.get("final_info", ()) if f and "episode" in f)
                with torch.no_grad():
                    adv, ret = cleanrl_gae(rew_buf, val_buf, done_buf, self.critic(next_obs).flatten(), next_done)
                b_obs, b_act, b_logp = obs_buf.reshape(-1, 4), act_buf.reshape(-1), logp_buf.reshape(-1)
                b_adv, b_ret, b_val = adv.reshape(-1), ret.reshape(-1), val_buf.reshape(-1)
                for _ in range(2):
                    for mb in torch.randperm(len(b_obs)).split(len(b_obs) // 2):
                        dist = Categorical(logits=self.actor(b_obs[mb]))
                        pg_loss, v_loss, _, approx_kl = cleanrl_losses(
                            dist.log_prob(b_act[mb]) - b_logp[mb], b_adv[mb], self.critic(b_obs[mb]).flatten(),
                            b_val[mb], b_ret[mb], 0.2, [])
                        entropy = dist.entropy().mean()
                        self.opt.zero_grad()
                        (pg_loss - 0.01 * entropy + 0.5 * v_loss).backward()
                        torch.nn.utils.clip_grad_norm_(self.params, 0.5)
                        self.opt.step()
            except ValueError as exc:  # Categorical(logits=nan): non-finite numbers, judged as such
                step = self.watch.failed(update, global_step, exc)
            else:  # the watchdog's line, where CleanRL writes its scalars
                metrics = {"losses/value_loss": v_loss.item(), "losses/policy_loss": pg_loss.item(),
                           "losses/entropy": entropy.item(), "losses/approx_kl": approx_kl.item(),
                           "charts/learning_rate": self.opt.param_groups[0]["lr"]}
                if returns:
                    metrics["rollout/episode_return"] = float(np.mean(returns))
                step = self.watch.step(update, global_step, metrics)
            if step.stopped:
                break
            if step.rolled_back:  # the next rollout starts from fresh observations
                next_obs, next_done = torch.tensor(self.envs.reset()[0], dtype=torch.float32), torch.zeros(ENVS)
        self.watch.close()
        return read_events(self.watch.watch.run_dir / "watchdog_events.jsonl").events

    def first_update_after_rollback(self) -> dict:
        return next(state for rollbacks, state in self.update_starts if rollbacks == 1)


def assert_restored_exactly_at_the_safe_lr(loop: CleanRLLoop, rollback: dict) -> None:
    saved, meta = load_checkpoint(rollback["checkpoint"])
    assert meta["iteration"] == rollback["to_iteration"]
    live = loop.first_update_after_rollback()
    for name in ("actor", "critic"):
        assert_same_tensors(live[name], saved[name], name)
    assert_same_tensors(live["optimizer"]["state"], saved["optimizer"]["state"], "optimizer.state")
    assert live["lr"] == pytest.approx(SAFE_LR * live["frac"])  # annealed from the safe lr


def test_a_nan_reward_rolls_back_before_it_restores_exactly_and_trains_on_at_the_safe_lr(tmp_path, monkeypatch):
    seeds = spy_reseed(monkeypatch, loop_module)
    loop = CleanRLLoop(tmp_path / "run", cfg=WatchdogConfig.model_validate(QUICK), nan_reward_at=[12])
    events = loop.train(20)
    assert len(seeds) == 1  # torch, numpy and random reseeded at the rollback
    alarm, = kinds(events, "alarm")
    rollback, = kinds(events, "rollback")
    assert (alarm["iteration"], alarm["detector"], alarm["onset_iteration"]) == (12, "nonfinite", 12)
    assert rollback["to_iteration"] == 10 and rollback["config"] == "lr 1e-4"  # checkpoints every 2
    switch, = kinds(events, "config_switch")
    assert switch["changes"]["learning_rate"] == {"old": LR, "new": SAFE_LR}
    assert_restored_exactly_at_the_safe_lr(loop, rollback)
    after = [m["metrics"] for m in kinds(events, "metrics") if m["iteration"] > 12]
    assert len(after) == 7 and all(math.isfinite(m["train/value_loss"]) for m in after)
    assert all(torch.isfinite(p).all() for p in loop.params) and not loop.watch.result.stopped


def test_an_update_that_raises_on_nan_is_judged_and_rolled_back(tmp_path):
    loop = CleanRLLoop(tmp_path / "run", cfg=WatchdogConfig.model_validate(QUICK), nan_obs_at=[10])
    events = loop.train(16)
    alarm, = kinds(events, "alarm")
    rollback, = kinds(events, "rollback")
    assert (alarm["iteration"], alarm["detector"]) == (10, "nonfinite") and rollback["to_iteration"] < 10
    assert_restored_exactly_at_the_safe_lr(loop, rollback)
    assert kinds(events, "metrics")[-1]["iteration"] == 15
    failed, = kinds(events, "iteration_failed")  # its full error in the event log (nothing until session 18)
    assert failed["iteration"] == 10 and "Traceback" in failed["error"]


def test_alert_mode_does_not_swallow_an_update_that_raised_on_nan(tmp_path):
    cfg = WatchdogConfig.model_validate({**QUICK, "action": "alert"})
    with pytest.raises(NonFiniteTraining, match="alert"):
        CleanRLLoop(tmp_path / "run", cfg=cfg, nan_obs_at=[8]).train(12)


def test_a_spent_budget_stops_the_loop(tmp_path):
    cfg = WatchdogConfig.model_validate({**QUICK, "policy": {**QUICK["policy"], "rollback_budget": 1}})
    loop = CleanRLLoop(tmp_path / "run", cfg=cfg, nan_reward_at=[8, 11])
    events = loop.train(20)
    stop, = kinds(events, "stop")
    assert stop["iteration"] == 11 and loop.watch.result.stopped
    assert kinds(events, "metrics")[-1]["iteration"] == 11


def test_a_healthy_loop_is_never_rolled_back_and_replays_as_a_loop_of_your_own(tmp_path):
    loop = CleanRLLoop(tmp_path / "run", cfg=WatchdogConfig.model_validate(QUICK))
    events = loop.train(30)
    assert not kinds(events, "alarm") and len(kinds(events, "metrics")) == 30
    out = subprocess.run([sys.executable, "-m", "watchdog.cli", "replay", str(tmp_path / "run")],
                         capture_output=True, text=True, cwd=tmp_path, check=False)
    assert out.returncode == 0 and "HEALTHY" in out.stdout, out.stderr[-2000:]
    assert "a loop of your own" in out.stdout and "absolute value-loss rule off" in out.stdout


# --- what a user's loop hands over (found by an audit, session 17) ------------------------------------------------


def _tiny(tmp_path: Path, *, capture=None, switch=None) -> LoopWatchdog:
    """A loop of a few tensors, its metrics made up: what LoopWatchdog does with what it is given."""
    weights = torch.zeros(3)
    return LoopWatchdog(tmp_path / "run", capture=capture or (lambda: {"w": weights.clone()}), restore=lambda state: None,
                        switch=switch, config=WatchdogConfig.model_validate(QUICK), console=WatchdogConsole(io.StringIO()))


def _steps(watch: LoopWatchdog, nan_at: int) -> None:
    for it in range(nan_at + 1):
        watch.step(it, 64 * (it + 1), {"losses/value_loss": math.nan if it == nan_at else 0.1 + 0.01 * (it % 3)})


def test_a_capture_that_a_checkpoint_cannot_hold_is_one_line_at_once(tmp_path):
    """A numpy array (an observation normaliser's mean) was an InternalError ("our bug") an update later, its stable
    checkpoint already announced and never written, that update's metrics line lost; its snapshot aliased the array."""
    watch = _tiny(tmp_path, capture=lambda: {"rms": {"mean": np.zeros(3)}})
    with pytest.raises(WatchdogError) as err:
        watch.step(0, 64, {"losses/value_loss": 0.1})
    message = str(err.value)
    assert "capture().rms.mean holds a ndarray" in message and "torch.as_tensor" in message and "\n" not in message


def test_a_switch_is_logged_with_numbers_and_a_malformed_one_is_one_line(tmp_path):
    """numpy or tensor values lost the config_switch event (JSON refused them; a traceback in the log); a switch
    returning {key: value} instead of {key: (old, new)} was a bare TypeError after the restore."""
    watch = _tiny(tmp_path / "a", switch=lambda scale: {"learning_rate": (np.float32(1e-3), torch.tensor(3e-4 * scale))})
    _steps(watch, nan_at=8)
    switch, = kinds(read_events(tmp_path / "a" / "run" / "watchdog_events.jsonl").events, "config_switch")
    assert switch["changes"]["learning_rate"] == {"old": pytest.approx(1e-3), "new": pytest.approx(3e-4)}
    watch = _tiny(tmp_path / "b", switch=lambda scale: {"learning_rate": 3e-4 * scale})
    with pytest.raises(WatchdogError) as err:
        _steps(watch, nan_at=8)
    assert "not a dict of key -> (old, new)" in str(err.value) and "\n" not in str(err.value)


def test_a_metric_that_is_not_a_number_is_one_line_naming_it(tmp_path):
    with pytest.raises(WatchdogError) as err:
        _tiny(tmp_path).step(0, 64, {"losses/value_loss": 0.1, "losses/clipfrac": None})
    assert "metric 'losses/clipfrac' is None, not a number" in str(err.value)


def test_metrics_that_hold_no_key_we_read_are_said_once(tmp_path):
    """A loop logging only keys of its own (CleanRL's charts/episodic_return is not read in a loop; a misspelt value
    loss) was watched in silence, its NaN included (found by an audit, session 17)."""
    out = io.StringIO()
    watch = LoopWatchdog(tmp_path / "run", capture=lambda: {"w": torch.zeros(1)}, restore=lambda state: None,
                         config=WatchdogConfig.model_validate(QUICK), console=WatchdogConsole(out))
    for it in range(3):
        watch.step(it, 64 * (it + 1), {"losses/value_los": 0.1, "charts/episodic_return": 20.0})
    said = [line for line in out.getvalue().splitlines() if "hold no key the watchdog reads" in line]
    assert len(said) == 1 and "losses/value_los" in said[0] and "update 0's" in said[0]
    watch.close()


def test_an_update_given_twice_or_counted_back_is_one_line(tmp_path):
    """A loop that went back to the checkpoint's iteration after a rollback (or judged an update twice) was taken
    as it came (session 18): its stable checkpoints and onsets were dated on two clocks. Iterations count every
    update run, rolled-back ones included."""
    watch = _tiny(tmp_path)
    _steps(watch, nan_at=8)
    rollback, = kinds(watch.result.events, "rollback")
    for again in (rollback["to_iteration"] + 1, 8):
        with pytest.raises(WatchdogError) as err:
            watch.step(again, 64 * 9, {"losses/value_loss": 0.1})
        assert f"update {again} given after update 8" in str(err.value) and "rolled-back ones included" in str(err.value)
    assert not watch.step(9, 64 * 10, {"losses/value_loss": 0.1}).rolled_back  # the count goes on: accepted
    with pytest.raises(WatchdogError, match="update -1 given: iterations start at 0"):
        _tiny(tmp_path / "b").step(-1, 0, {"losses/value_loss": 0.1})


def test_a_leaking_loop_is_warned_about_and_stopped_before_its_memory_limit(tmp_path):
    """The integrations sampled no resources (until session 18): a loop growing 16 MiB an update up to its limit was
    watched in silence. Its records carry sys/* now, and the memory forecast stops it, restartable, before the limit."""
    from watchdog.resources import rss_mb

    cfg = WatchdogConfig.model_validate({**QUICK, "memory": {"rss_limit_mb": rss_mb() + 400, "warmup_points": 2,
                                                             "window_points": 5}})
    watch = LoopWatchdog(tmp_path / "run", capture=lambda: {"w": torch.zeros(1)}, restore=lambda state: None,
                         config=cfg, console=WatchdogConsole(io.StringIO()))
    leak = []
    for it in range(40):
        leak.append(torch.ones(4 * 1024 * 1024))  # 16 MiB, resident (written)
        if watch.step(it, (it + 1) * 64, {"losses/value_loss": 0.05, "rollout/episode_return": 1.0}).stopped:
            break
    watch.close()
    events = read_events(tmp_path / "run" / "watchdog_events.jsonl").events
    assert all("sys/rss_mb" in e["metrics"] for e in kinds(events, "metrics"))
    alarm, = [e for e in kinds(events, "alarm") if e["detector"] == "memory"]
    stop, = kinds(events, "stop")
    assert watch.result.stopped and watch.result.restartable and stop["iteration"] == alarm["iteration"] < 25
    assert rss_mb() < cfg.memory.rss_limit_mb  # stopped before it


@pytest.mark.parametrize("mode", ["alert", "budget spent"])
def test_an_alarm_in_alert_mode_leaves_no_restart_point_inside_the_divergence(tmp_path, mode):
    """Found by an audit (session 19): alert mode reports an alarm and rolls nothing back, so the stable checkpoints
    taken between the onset and the alarm stayed stable, and `watchdog run` restarted a later crash from inside the
    divergence. Now they are stable no more (a `distrust` event, marked on disk as a rollback marks what it
    abandons), and the restart point is the newest checkpoint before the onset. The same after a stop (the rollback
    budget spent; session 21): a process resumed by hand from before the onset that crashed was restarted inside it."""
    from watchdog.checkpoints import CheckpointStore
    from watchdog.supervise import choose_restart_point

    net = nn.Linear(2, 2)
    policy = {**QUICK["policy"], "stable_every_iters": 4, **({"rollback_budget": 0} if mode != "alert" else {})}
    cfg = WatchdogConfig.model_validate({**QUICK, "action": "alert" if mode == "alert" else "rollback", "policy": policy})
    watch = LoopWatchdog(tmp_path, capture=lambda: {"net": net.state_dict()}, config=cfg,
                         restore=lambda s: net.load_state_dict(s["net"]), value_targets_normalized=True,
                         console=WatchdogConsole(io.StringIO()))
    for i in range(150):  # the value loss climbs 10 % an update from 110
        watch.step(i, (i + 1) * 100, {"losses/value_loss": 0.01 * (1 + 0.2 * math.sin(i)) * 1.1 ** max(0, i - 110)})
    watch.close()
    events = read_events(tmp_path / "watchdog_events.jsonl").events
    alarm, = kinds(events, "alarm")
    distrust, = kinds(events, "distrust")
    assert 105 <= alarm["onset_iteration"] < distrust["alarm_iteration"] == alarm["iteration"]
    assert distrust["after_iteration"] < alarm["onset_iteration"] and len(distrust["checkpoints"]) >= 3
    assert not kinds(events, "rollback")  # alert mode: nothing rolled back
    metas = {c.tag: c.meta for c in CheckpointStore(tmp_path / "checkpoints" / "watchdog").list()}
    for path in distrust["checkpoints"]:
        meta = metas[Path(path).name]
        assert meta["iteration"] > distrust["after_iteration"] and not meta["stable"]
        assert meta["unstable_reason"] == (f"after the onset of the {alarm['detector']} alarm at {alarm['iteration']} "
                                           f"({'alert mode' if mode == 'alert' else 'the run stopped'})")
    assert len(kinds(events, "stop")) == (mode != "alert")
    point = choose_restart_point(tmp_path)
    assert point.kind == "stable" and point.iteration <= distrust["after_iteration"]


@pytest.mark.parametrize("entry", ["resume", "step"])
@pytest.mark.parametrize(("restart", "switched", "recoveries"), [
    # died before its first stable checkpoint: restarted from scratch, on the safe config, the restart counted
    ({"cause": "crash", "checkpoint_kind": "scratch", "config": "its loop watchdog's safe config"}, True, 1),
    # died before its watchdog's start event: restarted unchanged, on its own config (as the supervisor said)
    ({"cause": "crash", "checkpoint_kind": "scratch", "config": None}, False, 1),
    # a resource stop of a run that never recovered: its own config, no recovery
    ({"cause": "resource", "checkpoint_kind": "scratch", "config": "its loop watchdog's config as it was"}, False, 0),
])
def test_a_loop_restarted_with_no_checkpoint_to_resume_counts_the_restart_and_takes_the_config_it_was_told(
        tmp_path, monkeypatch, entry, restart, switched, recoveries):
    """Found by a review (session 27): a process `watchdog run` restarted with no stable checkpoint (no
    WATCHDOG_RESUME) started afresh, on its own lr with no recovery counted, whatever the restart event said. From
    resume() and from a loop that goes straight to step() alike (its own 0 is right: there is nothing to resume)."""
    from watchdog.eventlog import EventLog, make_event
    from watchdog.supervise import RESTART_ENV, RESUME_ENV

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with EventLog(run_dir / "watchdog_events.jsonl") as log:
        log.write(make_event("restart", iteration=-1, env_steps=0, state="restarting", checkpoint=None, attempt=1,
                             **restart))
    monkeypatch.setenv(RESTART_ENV, "1")
    monkeypatch.delenv(RESUME_ENV, raising=False)
    lr = {"now": LR}

    def switch(scale):
        old, lr["now"] = lr["now"], SAFE_LR * scale
        return {"learning_rate": (old, lr["now"])}

    watch = _tiny(tmp_path, switch=switch)
    if entry == "resume":
        assert watch.resume().iteration == 0
    watch.step(0, 64, {"losses/value_loss": 0.1})
    watch.close()
    events = read_events(run_dir / "watchdog_events.jsonl").events
    assert bool(kinds(events, "config_switch")) is switched and lr["now"] == (SAFE_LR if switched else LR)
    assert watch.result.rollbacks == recoveries and kinds(events, "end")[0]["rollbacks"] == recoveries
