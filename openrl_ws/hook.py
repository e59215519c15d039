"""The training hook: a watched OpenRL on-policy driver and the session that carries out actions.

OpenRL's callbacks never see ``train_infos`` (value loss, grad norms), so the hook is a driver
subclass: after every PPO iteration it builds a :class:`MetricRecord` from the rollout's reward
summary and the update's ``train_infos``, feeds the watchdog, and carries out its actions:
snapshot (memory + disk), roll back *in place*, switch to the safe config, or stop.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

import openrl.runners.common  # noqa: F401  (first: OpenRL 0.2.0 has an import cycle through the drivers)
from openrl.drivers.onpolicy_driver import OnPolicyDriver
from openrl.modules.networks.utils.distributions import DiagGaussian

from openrl_ws.distributed import NonFiniteRollout
from openrl_ws.inject import FaultSchedule
from openrl_ws.live_config import apply_ppo_overrides, learning_rates, scale_learning_rates
from openrl_ws.run_logger import RunLogger, _scalar
from openrl_ws.snapshot import (
    TrainingSnapshot,
    capture,
    from_state,
    openrl_checkpoint_dir,
    restore,
    save_openrl_module,
    to_state,
)
from watchdog.checkpoints import nonfinite_keys
from watchdog.config import PPOConfig, safe_lr, startup_keys_kept
from watchdog.console import WatchdogConsole
from watchdog.driver import ConfigSwitch
from watchdog.errors import NonFiniteTraining
from watchdog.pipeline import Watchdog
from watchdog.policy import Rollback, SaveResume, SaveStable
from watchdog.resources import ResourceSampler
from watchdog.session import TrainingSession, reseed, rollback_seed
from watchdog.signals import VALUE_LOSS, MetricRecord

log = logging.getLogger(__name__)



class WatchSession(TrainingSession):
    """The OpenRL :class:`~watchdog.driver.Driver`: the library's session plus OpenRL's trainer.

    Capture and restore go through ``openrl_ws.snapshot`` (in place, into the objects the running
    trainer holds), the safe config through ``openrl_ws.live_config``; fault injection, torchrun
    and OpenRL's own ``module.pt`` checkpoints are here too.
    """

    def __init__(self, *, watchdog: Watchdog | None, run_dir: Path, logger: RunLogger, safe: PPOConfig,
                 safe_name: str, console: WatchdogConsole, faults: FaultSchedule, seed: int,
                 save_interval_steps: int, dist: Any = None, start_iteration: int = 0,
                 run_values: dict[str, Any] | None = None, resources: ResourceSampler | None = None):
        # Distributed (openrl_ws.distributed.DistContext): only rank 0 writes files; every rank
        # keeps identical in-memory snapshots and reaches the same decisions (see that module).
        super().__init__(watchdog=watchdog, run_dir=run_dir, safe_name=safe_name, console=console,
                         scalar=logger.add_scalar, writes_files=dist is None or dist.is_main, resources=resources)
        self.start_iteration = start_iteration  # > 0 when resuming: iterations and env steps continue
        self.logger = logger
        self.safe = safe
        self.faults = faults
        self.seed = seed
        self.save_interval_steps = save_interval_steps
        self.dist = dist
        # safe-config keys a running trainer cannot take and whose value differs from this run's
        self.kept = startup_keys_kept(safe, run_values or {})
        self.openrl: OnPolicyDriver | None = None  # the OpenRL driver whose trainer the actions act on
        self._next_module_save = save_interval_steps
        self._module_unwritten = False  # the last module.pt could not be written (said once per stretch)

    # --- per iteration --------------------------------------------------------------------------

    def begin_iteration(self, driver: OnPolicyDriver) -> None:
        """Fault injection counts iterations actually run (monotonic, rolled-back ones included)."""
        if self.faults:
            for note in self.faults.begin_iteration(driver.episode, driver.envs, driver.trainer):
                self.console.message(f"inject: {note}", style="bold yellow")

    def end_iteration(self, driver: OnPolicyDriver, record: MetricRecord) -> bool:
        """Judge the iteration and act; returns False to stop training."""
        record = self.with_resources(record)  # sys/* (before the reduction: every rank judges the same)
        if self.dist is not None and self.watchdog is not None:  # the same record on every rank
            record = self.dist.reduce_record(record)
        self.openrl = driver
        keep_going = self.observe(record)
        if self.watchdog is None and self.writes_files:  # unwatched runs get the status footer too
            self.console.status(record, "unwatched")
        self._maybe_save_module(driver, record)
        return keep_going

    def check_agreement(self, actions: list) -> None:
        if self.dist is not None:
            self.dist.agree_actions(actions)  # raises InternalError if ranks decided differently

    # --- the framework half of the Driver contract ----------------------------------------------

    def capture(self, action: SaveStable) -> TrainingSnapshot:
        return capture(self.openrl.trainer, extra={"iteration": action.iteration, "env_steps": action.env_steps})

    def to_state(self, snap: TrainingSnapshot) -> dict:
        return to_state(snap)

    def from_state(self, state: dict) -> TrainingSnapshot:
        return from_state(state)

    def restore_snapshot(self, snap: TrainingSnapshot, action: Rollback) -> None:
        """Weights, optimizers and hot params back in place; fresh RNG, env and rollout buffer."""
        restore(self.openrl.trainer, snap)
        reseed(rollback_seed(self.seed, action))
        reset_rollout(self.openrl)  # the env and buffer may hold the NaN/garbage that caused the alarm

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        """The safe config's live keys, learning rates scaled by ``action.lr_scale``."""
        trainer = self.openrl.trainer
        values, kept = self.safe.live_values(), dict(self.kept)
        if "critic_lr" in values and "critic" not in trainer.algo_module.optimizers:
            kept["critic_lr"] = ("a shared actor-critic has one optimizer: it takes lr "
                                 f"({values.get('lr', 'unchanged')}), critic_lr {values.pop('critic_lr')} is not used")
        module = trainer.algo_module
        for key, current in learning_rates(module).items():
            # scaled from the run's own (its decay base), not from a restored, scaled-once lr; never above it
            own = self.own_lr(getattr(module, key, current), key, action.target.iteration, restored_lr=current)
            values[key] = safe_lr(values.get(key), own)
        changes = apply_ppo_overrides(trainer, values)
        if action.lr_scale != 1.0:
            for key, (old, new) in scale_learning_rates(trainer, action.lr_scale).items():
                changes[key] = (changes.get(key, (old, new))[0], new)
        return ConfigSwitch(changes, kept)

    def save_resume(self, action: SaveResume, watchdog_state) -> str | None:
        """A resource alarm's checkpoint: ours in ``checkpoints/watchdog`` (weights, optimizers, the
        watchdog's state; what ``--checkpoint`` and ``watchdog run`` resume from) plus OpenRL's own
        ``rl_model_<steps>_steps/module.pt`` (what OpenRL's ``agent.load`` reads)."""
        path = super().save_resume(action, watchdog_state)
        if self.writes_files and self.openrl is not None:
            module = self.save_module(self.openrl, action.env_steps)
            self.say(f"watchdog: resumable checkpoint {path or '(not written)'}; OpenRL's {module or '(not written)'}",
                     style="bold")
        return path

    # --- OpenRL's own checkpoints ---------------------------------------------------------------

    def _maybe_save_module(self, driver: OnPolicyDriver, record: MetricRecord) -> None:
        """OpenRL-compatible ``rl_model_<steps>_steps/module.pt`` every ``save_interval_steps``."""
        if self.save_interval_steps and record.env_steps >= self._next_module_save:
            if self.writes_files:
                self.save_module(driver, record.env_steps)
            while self._next_module_save <= record.env_steps:
                self._next_module_save += self.save_interval_steps

    def save_module(self, driver: OnPolicyDriver, env_steps: int) -> Path | None:
        """OpenRL's ``module.pt`` at ``env_steps``; None when the disk refused it (full, read-only: said once per
        stretch of refusals, and training goes on: the watchdog's stable checkpoints are what it resumes from; until
        session 19 torch's write error ended the run)."""
        target = openrl_checkpoint_dir(self.run_dir / "checkpoints", env_steps)
        try:
            written = save_openrl_module(driver.trainer.algo_module, target)
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and "writ" not in str(exc):  # torch's "failed writing file"; else a bug
                raise
            if not self._module_unwritten:
                self.say(f"watchdog: could not write OpenRL's {target / 'module.pt'} "
                         f"({getattr(exc, 'strerror', None) or str(exc).splitlines()[0][:120]}); training goes on - "
                         "free space or fix permissions to get them again", style="bold red")
            self._module_unwritten = True
            return None
        self._module_unwritten = False
        return written


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


def nonfinite_where(driver: OnPolicyDriver) -> str | None:
    """Where the training state holds NaN/Inf (weights, optimizer-free), else None: decides whether
    a crashed iteration is divergence or a bug, from the numbers rather than the error's text."""
    for name, model in driver.trainer.algo_module.models.items():
        with torch.no_grad():
            if any(not torch.isfinite(p).all() for p in model.parameters()):
                return f"{name} weights"
    return "rollout buffer" if nonfinite_keys(vars(driver.buffer.data)) else None


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
                where = "another rank" if isinstance(exc, NonFiniteRollout) else nonfinite_where(self)
                if where is None:  # finite numbers: a bug, not a divergence
                    raise
                if session.watchdog is None:  # (said where it died, and its error cut at a word, since session 18)
                    # the crashed update's value loss, NaN, in log.txt and TensorBoard: replay and watch of an unwatched
                    # run saw its last good iteration only and called it healthy, exit 0 (until session 20)
                    self.logger.log_info({"value_loss": math.nan}, step=steps)
                    error = " ".join(str(exc).split())
                    short = error if len(error) <= 160 else error[:160].rsplit(" ", 1)[0] + " ..."
                    raise NonFiniteTraining(f"non-finite numbers in the {where} at iteration {self.episode} "
                                            f"({steps:,} env steps): {short}") from exc
                # The in-process crash the field report ends with: a non-finite iteration, which
                # the watchdog rolls back instead of the run dying.
                session.iteration_failed(self.episode, steps, exc, where)
                self.total_num_steps = steps
                record = MetricRecord.from_mapping(self.episode, steps, {VALUE_LOSS: math.nan})
                return session.judge_failed(lambda: session.end_iteration(self, record), where, exc)
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
