"""Stable-Baselines3: the live watchdog as a callback, ``model.learn(..., callback=WatchdogCallback(run_dir))``.

Supported: stable-baselines3 >= 2.0 (gymnasium), ``PPO`` (``A2C`` works without the PPO-only
keys). Where it hooks in: SB3's ``OnPolicyAlgorithm.learn`` runs ``collect_rollouts`` (the
callback's rollout/step hooks) then ``self.train()``, and the update's numbers only sit in
``model.logger.name_to_value`` between ``train()`` and the next ``dump_logs``. So the callback
wraps the model's ``train`` (and ``collect_rollouts``) for the length of ``learn``: right after
each update it builds one :class:`MetricRecord` and judges it, so a rollback or the safe config
takes effect before the next rollout, and a rollout that crashes on NaN (``Normal(loc=nan)``)
counts as a non-finite iteration instead of killing the run. Both wrappers are removed again in
``_on_training_end``.

The record, in the library's keys: ``train/value_loss``, ``train/policy_loss`` (SB3's
``policy_gradient_loss``), ``train/dist_entropy`` (minus SB3's ``entropy_loss``),
``train/approx_kl``, ``train/log_std_max`` (a Gaussian policy's largest log-std), SB3's
``train/clip_fraction``, ``train/explained_variance``, ``train/std`` as they are, and
``rollout/average_step_reward``: the mean reward per env step of the rollout, as the env
returned it (before SB3 adds the bootstrap value at time-outs; under a ``VecNormalize``, its
unnormalised reward), the same meaning as OpenRL's.
No critic gradient norm: SB3 clips one joint gradient, so the critic's part would cost a norm
per minibatch; the detectors that read it stay silent.

Value loss: the absolute 0.2 rule assumes normalised value targets (OpenRL's ValueNorm). SB3's
targets are raw discounted returns (Pendulum's value loss is in the hundreds), so
:func:`default_config` switches ``value_loss`` off; the trend detector (relative to the run's
own baseline) and the non-finite check still watch it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from watchdog.config import SB3SafeConfig, WatchdogConfig, load_watchdog_config, read_yaml, safe_lr, validate_mapping
from watchdog.checkpoints import clone_tree, nonfinite_keys
from watchdog.console import WatchdogConsole
from watchdog.driver import ConfigSwitch
from watchdog.errors import WatchdogError
from watchdog.frameworks import curriculum_key, live_config
from watchdog.pipeline import Watchdog
from watchdog.policy import Rollback, SaveStable
from watchdog.resources import ResourceSampler
from watchdog.session import IntegrationSession, SessionResult, reseed, rollback_seed, supervised_run_dir
from watchdog.signals import (
    APPROX_KL,
    ENTROPY,
    EPISODE_RETURN,
    LEARNING_RATE,
    LOG_STD_MAX,
    POLICY_LOSS,
    STEP_REWARD,
    VALUE_LOSS,
    MetricRecord,
)

log = logging.getLogger(__name__)

# The field report's safe values where SB3 has the knob (the same as cfgs/sb3_safe.yaml).
FIELD_REPORT_SAFE = SB3SafeConfig(learning_rate=3e-4, max_grad_norm=0.5, clip_range=0.2, normalize_advantage=True)
# SB3's logged name -> ours; a minus sign where SB3 logs the loss of a quantity we track.
_LOGGED = {
    "train/value_loss": (VALUE_LOSS, 1.0),
    "train/policy_gradient_loss": (POLICY_LOSS, 1.0),  # PPO
    "train/policy_loss": (POLICY_LOSS, 1.0),  # A2C
    "train/entropy_loss": (ENTROPY, -1.0),  # SB3 logs -mean(entropy)
    "train/approx_kl": (APPROX_KL, 1.0),
    "train/clip_fraction": ("train/clip_fraction", 1.0),
    "train/explained_variance": ("train/explained_variance", 1.0),
    "train/std": ("train/std", 1.0),
    "train/learning_rate": (LEARNING_RATE, 1.0),  # as replay maps SB3's tag
}
_PLAIN_KEYS = ("max_grad_norm", "normalize_advantage", "ent_coef", "vf_coef", "n_epochs", "target_kl")
_SCHEDULE_KEYS = ("learning_rate", "clip_range")


def default_config() -> WatchdogConfig:
    """The library's defaults without the absolute value-loss rule (SB3's value targets are raw returns),
    the reward detector on the mean episode return (SB3's ``rollout/ep_rew_mean``, what replay judges:
    a step reward is constant on CartPole-like tasks, where only the episodes' lengths change). A config
    the callback is given gets the same treatment."""
    return live_config("sb3", reward=EPISODE_RETURN)


def load_safe_config(path: str | Path) -> SB3SafeConfig:
    """Load ``cfgs/sb3_safe.yaml`` (one-line ConfigError on any problem)."""
    return validate_mapping(SB3SafeConfig, read_yaml(path), source=str(path))


def constant_schedule(value: float):
    """SB3's own constant schedule (picklable, so ``model.save`` keeps working)."""
    try:
        from stable_baselines3.common.utils import FloatSchedule  # SB3 >= 2.6
    except ImportError:  # older SB3
        from stable_baselines3.common.utils import get_schedule_fn as FloatSchedule
    return FloatSchedule(float(value))


# --- the training state ---------------------------------------------------------------------------


def capture_state(model: Any) -> dict:
    """The model's training state as plain tensors and numbers (a copy, weights-only loadable)."""
    state = {"policy": {k: v.detach().clone() for k, v in model.policy.state_dict().items()},
             "optimizer": clone_tree(model.policy.optimizer.state_dict())}
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is not None:
        state["vec_normalize"] = {"obs_rms": _rms_state(getattr(vecnorm, "obs_rms", None)),
                                  "ret_rms": _rms_state(vecnorm.ret_rms)}
    if model.ep_info_buffer is not None:  # the finished episodes behind rollout/ep_rew_mean, as of this state
        state["episodes"] = torch.tensor([[info["r"], info["l"], info.get("t", 0.0)] for info in model.ep_info_buffer],
                                         dtype=torch.float64).reshape(-1, 3)
    return state


def restore_state(model: Any, state: dict) -> None:
    """Load ``state`` into the live policy, optimizer and VecNormalize, in place."""
    model.policy.load_state_dict(state["policy"])
    # a copy: torch's load_state_dict keeps the given tensors as the optimizer's state, and the
    # snapshot must survive the next optimizer.step for a second rollback to the same target
    model.policy.optimizer.load_state_dict(clone_tree(state["optimizer"]))
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is not None and "vec_normalize" in state:
        _load_rms(getattr(vecnorm, "obs_rms", None), state["vec_normalize"]["obs_rms"])
        _load_rms(vecnorm.ret_rms, state["vec_normalize"]["ret_rms"])
    if model.ep_info_buffer is not None and "episodes" in state:
        # the abandoned stretch's episodes go with it: the episode return judged next is the restored policy's
        model.ep_info_buffer.clear()
        model.ep_info_buffer.extend({"r": r, "l": int(n), "t": t} for r, n, t in state["episodes"].tolist())


def _rms_state(rms: Any) -> Any:
    """A RunningMeanStd (or a dict of them, for Dict observations) as tensors."""
    if rms is None:
        return None
    if isinstance(rms, dict):
        return {k: _rms_state(v) for k, v in rms.items()}
    return {"mean": torch.from_numpy(np.array(rms.mean, dtype=np.float64)),
            "var": torch.from_numpy(np.array(rms.var, dtype=np.float64)), "count": float(rms.count)}


def _load_rms(rms: Any, state: Any) -> None:
    if rms is None or state is None:
        return
    if isinstance(rms, dict):
        for k, v in rms.items():
            _load_rms(v, state[k])
        return
    rms.mean = state["mean"].numpy().copy()
    rms.var = state["var"].numpy().copy()
    rms.count = float(state["count"])


def restart_rollout(model: Any, seed: int) -> None:
    """Fresh RNGs, env and rollout buffer: a failed rollout may have left NaN in all of them."""
    reseed(seed)
    model.action_space.seed(seed)
    model.env.seed(seed)  # used by the next reset
    model.rollout_buffer.reset()
    vecnorm = model.get_vec_normalize_env()
    training = vecnorm is not None and vecnorm.training
    if training:  # its reset would add the new first observations to the statistics just restored
        vecnorm.training = False
    try:
        model._last_obs = model.env.reset()
    finally:
        if training:
            vecnorm.training = True
    model._last_episode_starts = np.ones((model.env.num_envs,), dtype=bool)


def nonfinite_where(model: Any) -> str | None:
    """Where the training state holds NaN/Inf (weights, the env's last observation, the rollout
    buffer), else None: a crash with finite numbers is a bug, not a divergence."""
    with torch.no_grad():
        if any(not torch.isfinite(p).all() for p in model.policy.parameters()):
            return "policy weights"
    if nonfinite_keys(model._last_obs):
        return "observations"
    buffer = model.rollout_buffer
    for name in ("observations", "rewards", "values", "log_probs", "returns", "advantages"):
        if nonfinite_keys(getattr(buffer, name, None)):
            return f"rollout buffer ({name})"
    return None


def current_value(model: Any, key: str) -> Any:
    """The value ``key`` has on the model now (schedules evaluated at the current progress)."""
    value = getattr(model, "lr_schedule" if key == "learning_rate" else key)
    return float(value(model._current_progress_remaining)) if callable(value) else value


# --- the driver -----------------------------------------------------------------------------------


class SB3Session(IntegrationSession):
    """The SB3 :class:`~watchdog.driver.Driver`: the library's session acting on a live model."""

    resumes = True  # WatchdogCallback's training start continues a restarted run at the checkpoint's env steps

    def __init__(self, model: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.model = model

    def capture(self, action: SaveStable) -> dict:
        return capture_state(self.model)

    def restore_snapshot(self, snap: dict, action: Rollback) -> None:
        """Weights, optimizer and VecNormalize statistics back in place; fresh RNG, env and buffer."""
        restore_state(self.model, snap)
        restart_rollout(self.model, rollback_seed(self.seed, action))

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        """The safe config's keys on the live model, the learning rate scaled by ``action.lr_scale``."""
        model, values = self.model, self.safe.set_values()
        changes: dict[str, tuple[Any, Any]] = {}
        kept: dict[str, str] = {}
        if "learning_rate" in values or action.lr_scale != 1.0:
            old = current_value(model, "learning_rate")
            own = self.own_lr(old, restored=action.target.iteration,  # (the schedule is the last switch's)
                              restored_lr=model.policy.optimizer.param_groups[0]["lr"])
            new = safe_lr(values.get("learning_rate"), own) * action.lr_scale
            model.learning_rate, model.lr_schedule = new, constant_schedule(new)
            for group in model.policy.optimizer.param_groups:  # now, not only at the next train()
                group["lr"] = new
            changes["learning_rate"] = (old, new)
        for key, new in values.items():
            if key == "learning_rate":
                continue
            if not hasattr(model, key):
                kept[key] = f"{type(model).__name__} has no {key}"
                continue
            old, scheduled = current_value(model, key), callable(getattr(model, key))
            if old == new and not scheduled:
                continue
            # a schedule is replaced by the constant even where its value now is the safe one (it moves on)
            setattr(model, key, constant_schedule(new) if key in _SCHEDULE_KEYS else new)
            if old != new:
                changes[key] = (old, new)
        return ConfigSwitch(changes, kept)


class WatchdogCallback(BaseCallback):
    """The live watchdog for ``model.learn(total_timesteps, callback=WatchdogCallback(run_dir))``.

    After every PPO update: one metric record, the detectors and policy, and their actions carried
    out on the live model (stable checkpoints in ``run_dir/checkpoints/watchdog``, a rollback in
    place, the safe config, a stop). Events go to ``run_dir/watchdog_events.jsonl``, the console
    and SB3's logger (``watchdog/state``, ``watchdog/rollbacks``, ``watchdog/onset_iteration``).

    ``config``: a :class:`WatchdogConfig` or a YAML path (default :func:`default_config`);
    ``safe_config``: an :class:`SB3SafeConfig` or a YAML path (default the field report's values);
    ``console``: a :class:`WatchdogConsole`, or False for none. After ``learn``, :attr:`result`
    says how it ended (``stopped`` True: the rollback budget was spent; exit non-zero).
    """

    def __init__(self, run_dir: str | Path, *, config: WatchdogConfig | str | Path | None = None,
                 safe_config: SB3SafeConfig | str | Path | None = None,
                 console: WatchdogConsole | bool = True, seed: int | None = None, verbose: int = 0):
        super().__init__(verbose)
        self.run_dir = supervised_run_dir(run_dir)  # under `watchdog run`: its run dir, for every attempt
        # a given config is judged as replay judges SB3 too (frameworks.config_for_run: the value-loss rule,
        # the trend and the reward signal for raw-return value targets; tags.value_targets_normalized decides)
        given = config if isinstance(config, WatchdogConfig) or config is None else load_watchdog_config(config)
        self.cfg = live_config("sb3", given, reward=EPISODE_RETURN)
        self.safe_name = "field report safe values" if safe_config is None else (
            "safe config" if isinstance(safe_config, SB3SafeConfig) else Path(safe_config).name)
        self.safe = safe_config if isinstance(safe_config, SB3SafeConfig) else (
            FIELD_REPORT_SAFE if safe_config is None else load_safe_config(safe_config))
        self.console = (WatchdogConsole() if console is True else console) or None
        self.seed = seed
        self.session: SB3Session | None = None
        self.iteration = 0  # PPO iterations run (rollout + update), rolled-back and failed ones included
        self._originals: dict[str, Any] = {}
        self._skip_update = False
        self._closed = False
        self._vecnorm: VecNormalize | None = None
        self._step_rewards = np.zeros((0, 0))  # this rollout's env rewards, one row per step
        self._steps = 0
        self._curriculum: dict[str, float] = {}  # curriculum terms recorded in SB3's logger, newest by our key

    @property
    def watchdog(self) -> Watchdog | None:
        return None if self.session is None else self.session.watchdog

    @property
    def result(self) -> SessionResult:
        return SessionResult() if self.session is None else self.session.result

    # --- SB3's callback hooks -------------------------------------------------------------------

    def _on_training_start(self) -> None:
        """Build the watchdog and session, and wrap the model's update and rollout for this ``learn``."""
        if not isinstance(self.model, OnPolicyAlgorithm):  # SAC, TD3, DQN: no rollouts, another update
            raise WatchdogError(f"the watchdog watches SB3's on-policy algorithms (PPO, A2C); {type(self.model).__name__} "
                                "is off-policy", hint="train PPO or A2C, or leave WatchdogCallback out")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._closed = False  # each learn() is one watched session; iterations keep counting across them
        seed = self.seed if self.seed is not None else (self.model.seed or 0)
        self.session = SB3Session(self.model, safe=self.safe, seed=seed, watchdog=Watchdog(self.cfg),
                                  run_dir=self.run_dir, safe_name=self.safe_name, console=self.console,
                                  scalar=self._record_scalar, resources=ResourceSampler(self.model.device))
        self._vecnorm = self.model.get_vec_normalize_env()  # its rewards are normalised: read the raw ones
        self._originals = {"train": self.model.train, "collect_rollouts": self.model.collect_rollouts}
        self.model.train = self._train
        self.model.collect_rollouts = self._collect_rollouts
        self.session.start(framework="stable-baselines3", algorithm=type(self.model).__name__,
                           n_envs=self.model.n_envs, n_steps=getattr(self.model, "n_steps", None),
                           safe_config=self.safe.set_values())
        resumed = self.session.resume_from_env()  # a process `watchdog run` restarted: on from its stable checkpoint
        if resumed is not None:  # learn's loop runs on to its total_timesteps from the checkpoint's env steps
            self.iteration = resumed.iteration + 1
            self.model.num_timesteps = resumed.env_steps

    def _on_step(self) -> bool:
        """Keep the env's rewards (SB3 adds time-out bootstraps to them next); False once stopped."""
        rewards = self._vecnorm.get_original_reward() if self._vecnorm is not None else self.locals.get("rewards")
        if rewards is not None and self._steps < len(self._step_rewards):
            self._step_rewards[self._steps] = rewards  # a copy: SB3 then adds time-out bootstraps in place
            self._steps += 1
        return not self.session.result.stopped

    def _on_rollout_end(self) -> None:
        """Curriculum terms recorded at the rollout's end (by a callback before this one in the list, or by
        the env): SB3 dumps its logger before the update, so they are read here."""
        self._note_curriculum()

    def _note_curriculum(self) -> None:
        for name, value in self.model.logger.name_to_value.items():  # "Curriculum/<term>", as replay reads it
            key = curriculum_key(name)
            if key is not None:
                self._curriculum[key] = float(value)

    def _on_training_end(self) -> None:
        """Flush the last update's scalars, then detach. SB3 dumps an update's at the next iteration's rollout end
        (update k at (k + 2) rollouts), so the last one goes where that dump would have been: at the step of the
        previous update's, replay of the TensorBoard file would average the two into one record."""
        self.model.logger.dump(self.model.num_timesteps + self._rollout_steps())
        self.detach()

    def _rollout_steps(self) -> int:
        """Env steps of one rollout, all envs (n_steps x n_envs)."""
        return int(getattr(self.model, "n_steps", 1)) * int(self.model.n_envs)

    def detach(self) -> None:
        """Unwrap the model and write the end event; idempotent. ``learn`` calls it when it returns;
        call it yourself (in a ``finally``) when ``learn`` raised."""
        for name in self._originals:
            self.model.__dict__.pop(name, None)
        self._originals = {}
        if self.session is not None and not self._closed:
            self._closed = True
            self.session.close()

    # --- the wrapped update and rollout ---------------------------------------------------------

    def _train(self) -> None:
        """SB3's update, then judge it at once (before the next rollout starts)."""
        if self._skip_update:  # the rollout failed and was rolled back: nothing to learn from
            self._skip_update = False
            return
        try:
            self._originals["train"]()
        except Exception as exc:  # a NaN reward with finite observations: the rollout ran, the update went NaN
            if not self._failed("update", exc, self.model.num_timesteps):
                raise
            return
        self._judge(self._record())

    def _collect_rollouts(self, env, callback, rollout_buffer, n_rollout_steps: int) -> bool:
        """SB3's rollout; one that crashes on non-finite numbers is a non-finite iteration."""
        if self.result.stopped:
            return False
        if self._step_rewards.shape != (n_rollout_steps, env.num_envs):
            self._step_rewards = np.zeros((n_rollout_steps, env.num_envs))
        self._steps = 0
        start_steps = self.model.num_timesteps
        try:
            return self._originals["collect_rollouts"](env, callback, rollout_buffer, n_rollout_steps)
        except Exception as exc:
            # the failed iteration spends its whole slot (as OpenRL's), so iterations and steps stay in step
            keep_going = self._failed("rollout", exc, start_steps + n_rollout_steps * env.num_envs)
            if keep_going is None:
                raise
            self._skip_update = keep_going
            return keep_going

    def _failed(self, part: str, exc: BaseException, env_steps: int) -> bool | None:
        """An iteration whose rollout or update raised: a non-finite iteration when the training state holds
        NaN/Inf (judged, rolled back or stopped: whether training goes on), else None (a bug: re-raise)."""
        where = nonfinite_where(self.model)
        if where is None:  # finite numbers: a bug, not a divergence
            return None
        self.session.iteration_failed(self.iteration, env_steps, exc, f"{where} ({part})")
        self.model.num_timesteps = env_steps
        # the previous update's values, where SB3's dump after this rollout would have put them (before this
        # record's overwrite them; at the rollout's start they would land on the update before's). None left
        # when the update failed after SB3's dump: an empty dump would be a blank CSV row
        if self.model.logger.name_to_value:
            self.model.logger.dump(self.model.num_timesteps)
        record = MetricRecord(self.iteration, self.model.num_timesteps, {VALUE_LOSS: math.nan})
        return self.session.judge_failed(lambda: self._judge(record), where, exc)

    def _judge(self, record: MetricRecord) -> bool:
        keep_going = self.session.observe(record)
        self.iteration += 1
        return keep_going

    def _record(self) -> MetricRecord:
        """This update's numbers from SB3's logger, in the library's keys."""
        logged = self.model.logger.name_to_value
        metrics = {ours: sign * float(logged[theirs]) for theirs, (ours, sign) in _LOGGED.items() if theirs in logged}
        self._note_curriculum()  # (terms recorded during the update)
        metrics.update(self._curriculum)
        log_std = getattr(self.model.policy, "log_std", None)
        if isinstance(log_std, torch.Tensor):
            with torch.no_grad():
                metrics[LOG_STD_MAX] = float(log_std.max())
        if self._steps:
            metrics[STEP_REWARD] = float(self._step_rewards[: self._steps].mean())
        episodes = self.model.ep_info_buffer  # SB3's last 100 finished episodes (its rollout/ep_rew_mean)
        if episodes:
            metrics[EPISODE_RETURN] = float(np.mean([info["r"] for info in episodes]))
        return MetricRecord(self.iteration, self.model.num_timesteps, metrics)

    def _record_scalar(self, tag: str, value: float, step: int) -> None:
        """The watchdog's scalars go out with SB3's own at its next dump (TensorBoard, CSV, stdout)."""
        self.model.logger.record(tag, value)
