"""The training hook: a watched OpenRL on-policy driver and the session that carries out actions.

OpenRL's callbacks never see ``train_infos`` (value loss, grad norms), so the hook is a driver
subclass: after every PPO iteration it builds a :class:`MetricRecord` from the rollout's reward
summary and the update's ``train_infos``, feeds the watchdog, and carries out its actions:
snapshot (memory + disk), roll back *in place*, switch to the safe config, or stop.
"""

from __future__ import annotations

import logging
import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import openrl.runners.common  # noqa: F401  (first: OpenRL 0.2.0 has an import cycle through the drivers)
from openrl.drivers.onpolicy_driver import OnPolicyDriver
from openrl.modules.networks.utils.distributions import DiagGaussian

from openrl_ws.inject import FaultSchedule
from openrl_ws.live_config import apply_ppo_overrides, scale_learning_rates
from openrl_ws.run_logger import RunLogger, _scalar
from openrl_ws.snapshot import (
    TrainingSnapshot,
    capture,
    from_state,
    openrl_checkpoint_dir,
    reseed,
    restore,
    save_openrl_module,
    to_state,
)
from watchdog.checkpoints import CheckpointStore, load_checkpoint
from watchdog.config import PPOConfig
from watchdog.console import WatchdogConsole
from watchdog.events import EVENTS_FILENAME, EventLog, make_event
from watchdog.pipeline import Watchdog
from watchdog.policy import STATE_CODES, CheckpointRef, Rollback, SaveStable, Stop
from watchdog.signals import VALUE_LOSS, WATCHDOG_ONSET, WATCHDOG_ROLLBACKS, WATCHDOG_STATE, MetricRecord

log = logging.getLogger(__name__)

MEMORY_SNAPSHOTS = 20
# Messages of exceptions that mean "the numbers went non-finite" rather than a bug.
_NONFINITE_MARKERS = ("nan", "inf", "expected parameter", "invalid values", "non-finite")


@dataclass
class SessionResult:
    """How the watched run ended."""

    stopped: bool = False
    stop_reason: str = ""
    rollbacks: int = 0
    iterations: int = 0
    env_steps: int = 0
    final_record: MetricRecord | None = None
    events: list[dict] = field(default_factory=list)


class WatchSession:
    """Everything the watched driver needs besides OpenRL: watchdog, stores, logs, console, faults."""

    def __init__(self, *, watchdog: Watchdog | None, run_dir: Path, logger: RunLogger, safe: PPOConfig,
                 safe_name: str, console: WatchdogConsole, faults: FaultSchedule, seed: int,
                 save_interval_steps: int, keep_last: int = 5, dist: Any = None, start_iteration: int = 0):
        self.watchdog = watchdog
        self.start_iteration = start_iteration  # > 0 when resuming: iterations and env steps continue
        self.run_dir = Path(run_dir)
        self.logger = logger
        self.safe = safe
        self.safe_name = safe_name
        self.console = console
        self.faults = faults
        self.seed = seed
        self.save_interval_steps = save_interval_steps
        # Distributed (openrl_ws.distributed.DistContext): only rank 0 writes files; every rank
        # keeps identical in-memory snapshots and reaches the same decisions (see that module).
        self.dist = dist
        self.writes_files = dist is None or dist.is_main
        store_root = self.run_dir / "checkpoints" / "watchdog"
        self.store = CheckpointStore(store_root, keep_last=keep_last) if self.writes_files else None
        self._store_root = store_root
        self.snapshots: dict[str, TrainingSnapshot] = {}
        self.result = SessionResult()
        self.events: EventLog | None = None
        self._next_module_save = save_interval_steps
        if watchdog is not None and self.writes_files:
            self.events = EventLog(self.run_dir / EVENTS_FILENAME)
            watchdog.listeners += [self.events, console, self.result.events.append]
        elif watchdog is not None:
            watchdog.listeners.append(self.result.events.append)

    # --- per iteration --------------------------------------------------------------------------

    def begin_iteration(self, driver: OnPolicyDriver) -> None:
        """Fault injection counts iterations actually run (monotonic, rolled-back ones included)."""
        if self.faults:
            for note in self.faults.begin_iteration(driver.episode, driver.envs, driver.trainer):
                self.console.message(f"inject: {note}", style="bold yellow")

    def end_iteration(self, driver: OnPolicyDriver, record: MetricRecord) -> bool:
        """Judge the iteration and act; returns False to stop training."""
        self.result.iterations, self.result.env_steps = record.iteration + 1, record.env_steps
        self.result.final_record = record
        if self.watchdog is None:
            if self.writes_files:
                self.console.status(record, "unwatched")
            return True
        if self.dist is not None:  # the same record on every rank -> the same decisions
            record = self.dist.reduce_record(record)
            self.result.final_record = record
        if self.events is not None:
            self.events.write(make_event("metrics", iteration=record.iteration, env_steps=record.env_steps,
                                         state=self.watchdog.state.value, metrics=record.to_dict()["metrics"]))
        keep_going = True
        actions = self.watchdog.observe(record)
        if self.dist is not None:
            self.dist.agree_actions(actions)  # raises InternalError if ranks decided differently
        for action in actions:
            if isinstance(action, SaveStable):
                self._save_stable(driver, action)
            elif isinstance(action, Rollback):
                self._roll_back(driver, action, record)
            elif isinstance(action, Stop):
                self.result.stopped, self.result.stop_reason = True, action.reason
                keep_going = False
        self._maybe_save_module(driver, record)
        if self.writes_files:
            self._log_watchdog_scalars(record)
            self.console.status(record, self.watchdog.state.value, self.watchdog.policy.rollbacks)
        return keep_going

    def iteration_failed(self, iteration: int, env_steps: int, exc: BaseException) -> None:
        """A crashed update: one sentence on the console, the full error in the event log."""
        event = make_event("iteration_failed", iteration=iteration, env_steps=env_steps,
                           state=self.watchdog.state.value if self.watchdog is not None else "unwatched",
                           exception=type(exc).__name__, error="".join(traceback.format_exception(exc)).rstrip())
        log.info("iteration %d failed with non-finite numbers: %s", iteration, exc)
        if self.events is not None:
            self.events.write(event)
        if self.writes_files:
            self.console(event)

    # --- actions --------------------------------------------------------------------------------

    def _save_stable(self, driver: OnPolicyDriver, action: SaveStable) -> None:
        tag = action.tag
        snap = capture(driver.trainer, extra={"iteration": action.iteration, "env_steps": action.env_steps})
        self.snapshots[tag] = snap
        if self.store is not None:
            try:
                info = self.store.save(tag, to_state(snap), {"iteration": action.iteration, "env_steps": action.env_steps,
                                                             "stable": True, "watchdog": self.watchdog.state_dict()})
                path = info.path
                if not self.store.protected:  # the run's first known-good state outlives retention: a
                    self.store.protect(tag)   # slow climb's onset can lie before every newer checkpoint
            except OSError as exc:  # disk full, read-only: keep training on the in-memory snapshot
                path = None
                self.console.message(
                    f"watchdog: could not write stable checkpoint {self.store.root / tag}: {exc.strerror or exc}; "
                    "the checkpoints already on disk are intact and rollbacks use the in-memory copy - free "
                    "space or fix permissions to get disk checkpoints again", style="bold red")
                log.warning("stable checkpoint %s not written: %s", tag, exc)
        else:  # a non-zero rank: rank 0 writes the same checkpoint under the same path
            path = self._store_root / tag
        self.watchdog.checkpoint_saved(CheckpointRef(tag, action.iteration, action.env_steps,
                                                     str(path) if path is not None else None))
        while len(self.snapshots) > MEMORY_SNAPSHOTS:
            oldest = next(iter(self.snapshots))
            del self.snapshots[oldest]
            # Non-zero ranks have no disk copy; rank 0's retention (keep_last < MEMORY_SNAPSHOTS)
            # has deleted this one long before, so both forget it in the same iteration.
            if self.store is None or not (self.store.root / oldest).exists():
                self.watchdog.checkpoint_deleted(oldest)

    def _roll_back(self, driver: OnPolicyDriver, action: Rollback, record: MetricRecord) -> None:
        tag = action.target.tag
        snap = self.snapshots.get(tag)
        if snap is None:  # e.g. after a resume: fall back to the copy on disk
            state, _ = load_checkpoint(self._store_root / tag)  # rank 0's copy (all ranks share run_dir)
            snap = from_state(state)
        restore(driver.trainer, snap)
        reseed(self.seed + 7919 * action.number + record.iteration)
        reset_rollout(driver)  # the env and buffer may hold the NaN/garbage that caused the alarm
        changes = apply_ppo_overrides(driver.trainer, self.safe.live_values())
        if action.lr_scale != 1.0:
            for key, (old, new) in scale_learning_rates(driver.trainer, action.lr_scale).items():
                changes[key] = (changes.get(key, (old, new))[0], new)
        self.result.rollbacks = action.number
        self.watchdog.rolled_back(action, config_changes=changes, config_name=self.safe_name)

    def _maybe_save_module(self, driver: OnPolicyDriver, record: MetricRecord) -> None:
        """OpenRL-compatible ``rl_model_<steps>_steps/module.pt`` every ``save_interval_steps``."""
        if self.save_interval_steps and record.env_steps >= self._next_module_save:
            if self.writes_files:
                self.save_module(driver, record.env_steps)
            while self._next_module_save <= record.env_steps:
                self._next_module_save += self.save_interval_steps

    def save_module(self, driver: OnPolicyDriver, env_steps: int) -> Path:
        return save_openrl_module(driver.trainer.algo_module, openrl_checkpoint_dir(self.run_dir / "checkpoints", env_steps))

    def _log_watchdog_scalars(self, record: MetricRecord) -> None:
        self.logger.add_scalar(WATCHDOG_STATE, STATE_CODES[self.watchdog.state], record.env_steps)
        self.logger.add_scalar(WATCHDOG_ROLLBACKS, self.watchdog.policy.rollbacks, record.env_steps)
        onset = next((e.get("onset_iteration") for e in reversed(self.result.events) if e["event"] == "alarm"), None)
        if onset is not None:
            self.logger.add_scalar(WATCHDOG_ONSET, onset, record.env_steps)

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.end(stopped=self.result.stopped, reason=self.result.stop_reason,
                              iterations=self.result.iterations, env_steps_spent=self.result.env_steps)
        if self.events is not None:
            self.events.close()


def reset_rollout(driver: OnPolicyDriver) -> None:
    """Start the next rollout from fresh env observations and a clean buffer position 0.

    OpenRL's ``init_buffer`` only rewrites the first observation: after an iteration that failed
    mid-rollout the buffer's insert pointer, masks and RNN states must be reset too.
    """
    data = driver.buffer.data
    data.step = 0
    for name, fill in (("masks", 1.0), ("rnn_states", 0.0), ("rnn_states_critic", 0.0)):
        array = getattr(data, name, None)
        if array is not None:
            array[0] = fill
    if hasattr(driver.envs, "batch_rewards"):
        driver.envs.batch_rewards(driver.buffer)  # discard the failed rollout's reward sums
    driver.reset_and_buffer_init()


def policy_log_std_max(algo_module) -> float | None:
    """The largest log-std of the Gaussian action heads (OpenRL's ``DiagGaussian``), or None."""
    found = [m.logstd._bias for model in algo_module.models.values() for m in model.modules()
             if isinstance(m, DiagGaussian)]
    if not found:
        return None
    with torch.no_grad():
        return float(max(float(b.max()) for b in found))


def is_nonfinite_failure(exc: BaseException) -> bool:
    """Did OpenRL/torch fail because numbers went NaN/Inf (e.g. Normal(loc=nan))?"""
    text = str(exc).lower()
    return isinstance(exc, (ValueError, RuntimeError, FloatingPointError)) and any(m in text for m in _NONFINITE_MARKERS)


def make_driver_class(session: WatchSession) -> type[OnPolicyDriver]:
    """An OnPolicyDriver subclass bound to ``session`` (OpenRL constructs the driver itself)."""

    class WatchedDriver(OnPolicyDriver):
        def run(self) -> None:
            """OpenRL's ``RLDriver.run``, starting at ``session.start_iteration`` when resuming, so
            iterations, env steps and checkpoint names continue instead of starting over."""
            self.episodes = int(self.num_env_steps) // self.episode_length // self.learner_n_rollout_threads
            self.reset_and_buffer_init()
            self.real_step = 0
            for episode in range(session.start_iteration, self.episodes):
                if self.cfg.log_each_episode:
                    self.logger.info(f"Episode: {episode}/{self.episodes}")
                self.episode = episode
                if not self._inner_loop():
                    break

        def _inner_loop(self) -> bool:
            session.begin_iteration(self)
            steps = (self.episode + 1) * self.episode_length * self.n_rollout_threads
            try:
                if session.dist is None:
                    rollout_infos, keep_going = self.actor_rollout()
                else:  # + one collective: any rank failed or non-finite -> all skip the update
                    rollout_infos, keep_going = session.dist.rollout(self)
                if not keep_going:
                    return False
                train_infos = self.learner_update()
                if session.dist is not None:
                    session.dist.after_update(self.trainer)  # average the ValueNorm statistics
                self.buffer.after_update()
            except Exception as exc:
                if session.watchdog is None or not is_nonfinite_failure(exc):
                    raise
                # The in-process crash the field report ends with: treat it as a non-finite
                # iteration so the watchdog rolls back instead of the run dying.
                session.iteration_failed(self.episode, steps, exc)
                self.total_num_steps = steps
                record = MetricRecord.from_mapping(self.episode, steps, {VALUE_LOSS: math.nan})
                return session.end_iteration(self, record)
            self.total_num_steps = steps
            log_std = policy_log_std_max(self.trainer.algo_module)
            if log_std is not None:  # logged like OpenRL's own train_infos: TensorBoard, log.txt, replay
                train_infos["log_std_max"] = log_std
            if self.episode % self.log_interval == 0:
                self.logger.log_info(rollout_infos, step=steps)
                self.logger.log_info(train_infos, step=steps)
            values = {k: _scalar(v) for k, v in {**rollout_infos, **train_infos}.items()}
            return session.end_iteration(self, MetricRecord.from_mapping(self.episode, steps, values))

    return WatchedDriver
