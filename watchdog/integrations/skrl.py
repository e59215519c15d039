"""The watchdog inside skrl's PPO agent (skrl 2.x, torch), one of Isaac Lab's trainers.

skrl's trainer owns the loop and calls the agent; the watchdog wraps the agent for the length of a ``with``
block around training::

    from watchdog.integrations.skrl import SkrlWatchdog

    with SkrlWatchdog(agent, safe_config="cfgs/skrl_safe.yaml") as watch:   # Isaac Lab: runner.agent
        trainer.train()                                                      # or runner.run()
    if watch.result.stopped: ...                                             # the watchdog gave up

Attach point: the agent's ``update`` (instance attribute, removed again when the block ends). Right after each
update its record is built from what skrl tracked for it and judged, so a rollback and the safe config take
effect before the next rollout; a stop leaves the trainer's loop by an exception that the ``with`` block
swallows, before skrl writes that step's data or a checkpoint of the diverged weights. skrl's Gaussian models
turn off torch's argument checks, so NaN reaches the losses instead of raising: a non-finite update is an alarm.

The record (iteration = updates run so far, rolled-back ones included, 0-based; env steps = (timestep + 1) x
envs, skrl's timestep x envs after the update's step): ``train/value_loss`` (``Loss / Value loss``),
``train/policy_loss`` (``Loss / Policy loss``), ``train/entropy`` (minus ``Loss / Entropy loss``, where
``entropy_loss_scale`` is set), ``train/log_std_mean`` (log of ``Policy / Standard deviation``, the mean std, as
replay reads it), ``train/learning_rate`` (the optimizer's), ``rollout/episode_return`` (the mean return of the
finished episodes skrl holds for its ``Reward / Total reward (mean)``; absent until one has finished).

The value-loss rule follows the agent's ``value_preprocessor`` (on with one, as replay reads it from the run's
``params/agent.yaml``). Supported: skrl 2.x, one process, one agent.

Under ``watchdog run``, a restarted process resumes in place on entering the block (``WATCHDOG_RESUME``): skrl's
trainer counts its loop from 0 again, so the agent's methods get its timestep plus the checkpoint's, and the
block ends at the trainer's last timestep.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from watchdog.checkpoints import clone_tree
from watchdog.config import (
    SkrlSafeConfig,
    WatchdogConfig,
    load_skrl_safe_config,
    load_watchdog_config,
    safe_lr,
)
from watchdog.console import WatchdogConsole
from watchdog.driver import ConfigSwitch
from watchdog.errors import WatchdogError
from watchdog.frameworks import live_config
from watchdog.integrations import CurriculumTerms, supported_version
from watchdog.pipeline import Watchdog
from watchdog.policy import Rollback, SaveStable
from watchdog.resources import ResourceSampler
from watchdog.session import IntegrationSession, SessionResult, reseed, rollback_seed
from watchdog.signals import (
    EPISODE_RETURN,
    LEARNING_RATE,
    LOG_STD_MEAN,
    POLICY_ENTROPY,
    POLICY_LOSS,
    VALUE_LOSS,
    MetricRecord,
)

SUPPORTED = ">=2.0,<3"
# The field report's safe values where skrl has the knob (cfgs/skrl_safe.yaml says the same).
FIELD_REPORT_SAFE = SkrlSafeConfig(learning_rate=3e-4, learning_rate_scheduler="fixed", grad_norm_clip=0.5,
                                   ratio_clip=0.2)
_LIVE_KEYS = ("grad_norm_clip", "ratio_clip", "value_clip", "entropy_loss_scale", "value_loss_scale",
              "learning_epochs", "mini_batches")
_MODULES = ("policy", "value", "_observation_preprocessor", "_state_preprocessor", "_value_preprocessor")


def skrl_version() -> str:
    """The installed skrl version; a one-line error when it is not a supported one."""
    return supported_version("skrl", "skrl", SUPPORTED, "skrl", lambda v: v.split(".")[0] == "2")


SKRL_VERSION = skrl_version()

from skrl.resources.schedulers.torch import KLAdaptiveLR  # noqa: E402  (after the version check)


def default_watchdog_config(value_preprocessor: bool = True) -> WatchdogConfig:
    """The watchdog defaults as replay judges a skrl run: the reward detector on the episode return, and the
    absolute value-loss rule only with normalised value targets (a ``value_preprocessor``, as Isaac Lab's
    configs have). A config the watchdog is given gets the same treatment."""
    return live_config("skrl", reward=EPISODE_RETURN, normalization=_normalization(value_preprocessor))


def _normalization(value_preprocessor: bool) -> tuple[bool, str]:
    return bool(value_preprocessor), f"the agent's value_preprocessor: {'set' if value_preprocessor else 'none'}"


# --- the training state -------------------------------------------------------------------------


def _modules(agent: Any) -> dict[str, torch.nn.Module]:
    """The agent's modules an update changes: models and the running preprocessors (not skrl's no-op one)."""
    found = {}
    for name in _MODULES:
        module = getattr(agent, name, None)
        if isinstance(module, torch.nn.Module) and not any(module is m for m in found.values()):
            found[name] = module  # a shared policy/value model once
    return found


def capture_state(agent: Any) -> dict:
    """A weights-only copy of everything an update changes: the models, the running preprocessors
    (observations, states, values), the optimizer, the scheduler and the mixed-precision scaler."""
    state = {name: {k: v.detach().clone() for k, v in module.state_dict().items()}
             for name, module in _modules(agent).items()}
    state["optimizer"] = clone_tree(agent.optimizer.state_dict())
    if getattr(agent, "scheduler", None) is not None:
        state["scheduler"] = clone_tree(agent.scheduler.state_dict())
    state["scaler"] = clone_tree(agent.scaler.state_dict())
    return state


def restore_state(agent: Any, state: dict) -> None:
    """Load ``state`` into the live agent, in place."""
    for name, module in _modules(agent).items():
        module.load_state_dict(state[name])
    agent.optimizer.load_state_dict(clone_tree(state["optimizer"]))
    if "scheduler" in state and getattr(agent, "scheduler", None) is not None:
        agent.scheduler.load_state_dict(clone_tree(state["scheduler"]))
    agent.scaler.load_state_dict(clone_tree(state["scaler"]))


def episodes_state(agent: Any) -> dict:
    """skrl's finished-episode returns and lengths (what its ``Reward / Total reward`` reads)."""
    return {name: torch.tensor(list(getattr(agent, name)), dtype=torch.float64)
            for name in ("_track_rewards", "_track_timesteps")}


def restore_episodes(agent: Any, state: dict | None) -> None:
    """Put back a stable checkpoint's finished episodes, and zero the sums of the running ones: a rollback's
    abandoned stretch (a NaN reward, say) must not reach the returns judged next. The episodes running at the
    rollback count their return from it."""
    for name, values in (state or {}).items():
        buf = getattr(agent, name)
        buf.clear()
        buf.extend(values.tolist())
    for name in ("_cumulative_rewards", "_cumulative_timesteps"):
        sums = getattr(agent, name, None)
        if isinstance(sums, torch.Tensor):
            sums.zero_()


def set_learning_rate(agent: Any, lr: float) -> None:
    for group in agent.optimizer.param_groups:
        group["lr"] = float(lr)
    if isinstance(agent.scheduler, KLAdaptiveLR):
        agent.scheduler._last_lr = [float(lr)] * len(agent.optimizer.param_groups)


def apply_safe_config(agent: Any, safe: SkrlSafeConfig, lr_scale: float = 1.0,
                      base_lr: float | None = None) -> ConfigSwitch:
    """Switch the live agent to ``safe``: every key it sets (skrl's PPO reads ``agent.cfg`` at each update), the
    learning rate times ``lr_scale``. ``learning_rate_scheduler: fixed`` removes the run's scheduler (skrl's
    ``KLAdaptiveLR``, Isaac Lab's choice, multiplies the lr by 1.5 after each epoch whose KL is below half its
    threshold, up to 1e-2); left unset, the scheduler moves a safe lr from the next epoch on, and the switch
    says so."""
    values = safe.live_values()
    changes: dict[str, tuple[Any, Any]] = {}
    for key in _LIVE_KEYS:
        if key in values and getattr(agent.cfg, key) != values[key]:
            changes[key] = (getattr(agent.cfg, key), values[key])
            setattr(agent.cfg, key, values[key])
    if values.get("learning_rate_scheduler") == "fixed" and agent.scheduler is not None:
        changes["learning_rate_scheduler"] = (type(agent.scheduler).__name__, "fixed")
        agent.scheduler = None
    old_lr = float(agent.optimizer.param_groups[0]["lr"])
    new_lr = safe_lr(values.get("learning_rate"), old_lr if base_lr is None else base_lr) * lr_scale
    set_learning_rate(agent, new_lr)
    if agent.scheduler is not None and old_lr > 0:
        # a torch schedule computes the lr from lrs of its own (LambdaLR its base lrs, CyclicLR also its max lrs,
        # OneCycleLR its groups' initial, max and min lrs) and would set the run's own lr at its next step: they
        # move with the lr, so it goes on from the safe lr (until session 16 none did, until session 17 only base lrs)
        scale, sched = new_lr / old_lr, agent.scheduler
        for name in ("base_lrs", "max_lrs"):
            if isinstance(getattr(sched, name, None), list):
                setattr(sched, name, [lr * scale for lr in getattr(sched, name)])
        for group in agent.optimizer.param_groups:
            for key in ("initial_lr", "max_lr", "min_lr"):
                if isinstance(group.get(key), float):
                    group[key] *= scale
    if new_lr != old_lr:
        changes["learning_rate"] = (old_lr, new_lr)
    kept = {}
    if agent.scheduler is not None:
        kept["learning_rate"] = (f"starts at {new_lr:g}; the run's {type(agent.scheduler).__name__} moves it from "
                                 "there (learning_rate_scheduler: fixed would hold it)")
    return ConfigSwitch(changes, kept)


# --- the driver ---------------------------------------------------------------------------------


class SkrlSession(IntegrationSession):
    """The skrl :class:`~watchdog.driver.Driver`: the library's session plus a live skrl agent."""

    resumes = True  # SkrlWatchdog shifts the restarted trainer's timesteps to go on from the checkpoint's

    def __init__(self, agent: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.agent = agent

    def capture(self, action: SaveStable) -> dict:
        return {**capture_state(self.agent), "episodes": episodes_state(self.agent)}

    def restore_snapshot(self, snap: dict, action: Rollback) -> None:
        """Models, preprocessors, optimizer and scheduler back in place; fresh RNG, episode sums and RNN states.
        The env is the trainer's: the next rollout goes on from its current observations."""
        restore_state(self.agent, snap)
        restore_episodes(self.agent, snap.get("episodes"))
        reseed(rollback_seed(self.seed, action))
        # PPO_RNN's hidden states, outside every state_dict and zeroed only where an episode ends: every env
        # starts as at an episode's start (a NaN step left them NaN, and the run NaN, rollback after rollback)
        for states in getattr(self.agent, "_rnn_initial_states", {}).values():
            for state in states:
                state.zero_()

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        lr = self.agent.optimizer.param_groups[0]["lr"]
        return apply_safe_config(self.agent, self.safe, action.lr_scale,
                                 base_lr=self.own_lr(lr, restored=action.target.iteration))


class _Stop(Exception):
    """The watchdog stopped the run: leave skrl's trainer loop (swallowed by :class:`SkrlWatchdog`)."""


class _Done(Exception):
    """A resumed run reached the trainer's last timestep: leave its loop, whose count started at 0 again
    (swallowed by :class:`SkrlWatchdog`)."""


_SHIFTED = ("pre_interaction", "act", "post_interaction")  # the agent's methods the trainer hands its timestep


class SkrlWatchdog:
    """Watches a skrl PPO agent for the length of a ``with`` block (the agent must be ``init``-ed: build the
    trainer, or skrl's runner, first).

    ``run_dir``: where ``watchdog_events.jsonl`` and ``checkpoints/watchdog/`` go (default the agent's
    ``experiment_dir``, beside skrl's events and ``checkpoints/``); ``config``: a :class:`WatchdogConfig` or a
    YAML path (default :func:`default_watchdog_config`); ``safe_config``: a :class:`SkrlSafeConfig` or a YAML
    path (default the field report's, :data:`FIELD_REPORT_SAFE`); ``console``: a :class:`WatchdogConsole`;
    ``seed``: the base of the rollbacks' reseeding. TensorBoard's ``watchdog/*`` scalars go through skrl's
    writer, on its timestep axis. One block per watchdog.
    """

    def __init__(self, agent: Any, run_dir: str | Path | None = None, *, config: WatchdogConfig | str | Path | None = None,
                 safe_config: SkrlSafeConfig | str | Path | None = None, console: Any = None, seed: int = 0):
        cfg = config if config is None or isinstance(config, WatchdogConfig) else load_watchdog_config(config)
        safe = (safe_config if isinstance(safe_config, SkrlSafeConfig) else
                load_skrl_safe_config(safe_config) if safe_config is not None else FIELD_REPORT_SAFE)
        if not all(hasattr(agent, name) for name in ("update", "optimizer", "memory", "tracking_data", "cfg")):
            raise WatchdogError(f"{type(agent).__name__} is not a skrl PPO agent", hint="watch skrl's PPO agent")
        missing = [key for key in _LIVE_KEYS if not hasattr(agent.cfg, key)]
        if missing:  # skrl's A2C has PPO's shape but not its clip (a traceback at the start, until session 17)
            raise WatchdogError(f"{type(agent).__name__} is not a skrl PPO agent: its config has no "
                                f"{', '.join(missing)}", hint="watch skrl's PPO (or PPO_RNN) agent")
        if getattr(agent, "memory", None) is None or getattr(agent, "optimizer", None) is None:
            raise WatchdogError("the skrl agent has no memory or optimizer yet (an evaluation-only agent?)",
                                hint="watch the agent a trainer trains")
        self.agent = agent
        self.num_envs = int(agent.memory.num_envs)
        normalization = _normalization(bool(agent.cfg.value_preprocessor))
        self.watch = SkrlSession(
            agent, watchdog=Watchdog(live_config("skrl", cfg, reward=EPISODE_RETURN, normalization=normalization)),
            safe=safe, safe_name=Path(safe_config).name if isinstance(safe_config, (str, Path)) else "skrl safe config",
            run_dir=Path(run_dir) if run_dir is not None else Path(agent.experiment_dir),
            console=console if console is not None else WatchdogConsole(), seed=seed, scalar=self._scalar,
            resources=ResourceSampler(agent.device))
        self._updates = 0
        self._axis = 0
        self._offset = 0  # a resumed run: the timesteps the trainer's loop, counting from 0 again, is behind
        self._update = self._record_transition = None
        self._used = False
        self._curriculum = CurriculumTerms()  # the task's curriculum terms from the env's step infos

    @property
    def result(self) -> SessionResult:
        """How the watched run went: ``stopped``, ``stop_reason``, ``rollbacks``, ``iterations``, ``events``."""
        return self.watch.result

    def __enter__(self) -> "SkrlWatchdog":
        if self._used:
            raise WatchdogError("this SkrlWatchdog already watched a run (its event log is closed)",
                                hint="build a new one per run")
        self._used = True
        agent = self.agent
        self.watch.start(
            framework="skrl", skrl_version=SKRL_VERSION,
            value_targets_normalized=bool(agent.cfg.value_preprocessor),
            ppo={"learning_rate": float(agent.optimizer.param_groups[0]["lr"]),
                 "learning_rate_scheduler": type(agent.scheduler).__name__ if agent.scheduler is not None else None,
                 "grad_norm_clip": agent.cfg.grad_norm_clip, "ratio_clip": agent.cfg.ratio_clip},
            envs=self.num_envs, steps_per_iteration=int(agent.cfg.rollouts) * self.num_envs)
        self._update, self._record_transition = agent.update, agent.record_transition
        agent.update, agent.record_transition = self._watched_update, self._watched_record_transition
        resumed = self.watch.resume_from_env()  # a process `watchdog run` restarted: on from its stable checkpoint
        if resumed is not None:
            self._resume_at(resumed.iteration, resumed.env_steps)
        return self

    def _resume_at(self, iteration: int, env_steps: int) -> None:
        """Go on after the update of ``iteration`` (skrl's timestep ``env_steps / envs - 1``): skrl's trainer
        counts its loop from 0 again, so the agent's methods get its timestep plus the steps already run (its
        updates, TensorBoard axis and checkpoint names go on from there), and the loop ends at the trainer's
        last timestep."""
        self._updates = iteration + 1
        self._offset = env_steps // self.num_envs
        self._axis = self._offset - 1
        for name in _SHIFTED:
            setattr(self.agent, name, self._shifted(getattr(self.agent, name), name == "pre_interaction"))

    def _shifted(self, method: Any, first: bool) -> Any:
        offset = self._offset

        def call(*args: Any, timestep: int, timesteps: int, **kwargs: Any) -> Any:
            if first and timestep + offset >= timesteps:
                raise _Done()
            return method(*args, timestep=timestep + offset, timesteps=timesteps, **kwargs)

        return call

    def __exit__(self, exc_type, exc, tb) -> bool:
        for name in ("update", "record_transition", *_SHIFTED):
            self.agent.__dict__.pop(name, None)  # skrl's own methods again
        self.watch.close()
        writer = getattr(self.agent, "writer", None)
        if writer is not None:
            writer.flush()
        return exc_type in (_Stop, _Done)  # a stop or a resumed run's end ends the block quietly; anything else goes on up

    def _watched_update(self, *, timestep: int, timesteps: int) -> None:
        """skrl's update, then the watchdog judges it; a stop leaves the trainer's loop."""
        self._update(timestep=timestep, timesteps=timesteps)
        record = self.record(timestep)
        self._updates += 1
        self._axis = int(timestep)
        if not self.watch.observe(record):
            raise _Stop()

    def _watched_record_transition(self, **kwargs: Any) -> None:
        """skrl's per-step bookkeeping; the env's step info first gives up its curriculum terms (Isaac Lab's
        ``Curriculum/<term>`` in ``extras["log"]``)."""
        self._curriculum.update(kwargs.get("infos"))
        if "timestep" in kwargs:
            kwargs["timestep"] += self._offset
        self._record_transition(**kwargs)

    def record(self, timestep: int) -> MetricRecord:
        """This update's metrics under the watchdog's keys, from the newest values skrl tracked."""
        agent, data = self.agent, self.agent.tracking_data

        def newest(tag: str) -> float | None:
            values = data.get(tag)
            return float(values[-1]) if values else None

        values: dict[str, Any] = {VALUE_LOSS: newest("Loss / Value loss"), POLICY_LOSS: newest("Loss / Policy loss"),
                                  LEARNING_RATE: float(agent.optimizer.param_groups[0]["lr"])}
        entropy_loss = newest("Loss / Entropy loss")
        if entropy_loss is not None:
            values[POLICY_ENTROPY] = -entropy_loss
        std = newest("Policy / Standard deviation")
        if std is not None:
            values[LOG_STD_MEAN] = math.log(std) if std > 0 else math.nan  # skrl tracks the mean; NaN: non-finite
        if agent._track_rewards:
            values[EPISODE_RETURN] = float(np.mean(np.asarray(agent._track_rewards)))  # as skrl's Total reward (mean)
        values = {k: v for k, v in values.items() if v is not None}  # a key skrl did not track is absent, not NaN
        values.update(self._curriculum.values())
        return MetricRecord.from_mapping(self._updates, (int(timestep) + 1) * self.num_envs, values)

    def _scalar(self, tag: str, value: float, env_steps: int) -> None:
        """``watchdog/*`` scalars through skrl's writer, on its timestep axis."""
        writer = getattr(self.agent, "writer", None)
        if writer is not None:
            writer.add_scalar(tag=tag, value=value, timestep=self._axis)  # skrl's own writer: keywords only
