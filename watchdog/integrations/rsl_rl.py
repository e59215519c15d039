"""The watchdog inside rsl_rl's ``OnPolicyRunner`` (rsl-rl-lib 5.x, Isaac Lab's default trainer).

Replace ``OnPolicyRunner`` by :class:`WatchedOnPolicyRunner` in a training script::

    from watchdog.integrations.rsl_rl import WatchedOnPolicyRunner

    runner = WatchedOnPolicyRunner(env, train_cfg, log_dir, device="cuda:0",
                                   safe_config="cfgs/rsl_rl_safe.yaml")   # optional: watchdog_config=...
    runner.learn(num_learning_iterations=1500)
    if runner.watch_result.stopped: ...                                   # the watchdog gave up

Attach point: the runner's own ``learn`` loop runs unchanged. After each update it calls
``logger.log(it=..., loss_dict=...)``; the runner wraps that one call to build the iteration's
:class:`~watchdog.signals.MetricRecord` and feed the watchdog, and wraps
``alg.process_env_step`` to add up the rollout's raw env rewards. A rollback or a stop leaves
rsl_rl's loop by an exception the runner catches; after a rollback it re-enters the loop at the
next iteration, so rsl_rl reads fresh observations from the (reset) env. A rollout that rsl_rl
aborts on NaN (its ``check_nan``) counts as a non-finite iteration and is rolled back too.

Metrics per iteration: ``train/value_loss`` (loss dict ``value``), ``train/policy_loss``
(``surrogate``), ``train/dist_entropy`` (``entropy``), ``train/log_std_max`` (the actor's std),
``rollout/average_step_reward`` (mean raw env reward per env step of the rollout, before rsl_rl's
timeout bootstrapping and RND bonus: OpenRL's meaning), ``train/learning_rate``.

Not the OpenRL defaults: rsl_rl's value targets are raw returns, not normalised (OpenRL's
``ValueNorm``), so the absolute ``value_loss_max`` 0.2 rule means nothing here and
:func:`default_watchdog_config` disables it; the relative detectors (trend, non-finite, reward
collapse, policy std) judge the run against itself. A config passed in is used as given.

Supported: rsl-rl-lib >= 5.0, < 6 (tested on 5.5.1), single process (no multi-GPU).
"""

from __future__ import annotations

import logging
import math
import os
import statistics
from pathlib import Path
from typing import Any

import torch

from watchdog.config import (
    RslRlSafeConfig,
    WatchdogConfig,
    load_rsl_rl_safe_config,
    load_watchdog_config,
    safe_lr,
)
from watchdog.checkpoints import clone_tree, nonfinite_keys
from watchdog.console import WatchdogConsole
from watchdog.driver import ConfigSwitch
from watchdog.errors import WatchdogError
from watchdog.frameworks import live_config
from watchdog.integrations import CurriculumTerms, supported_version
from watchdog.pipeline import Watchdog
from watchdog.policy import Rollback, SaveStable
from watchdog.resources import ResourceSampler
from watchdog.session import IntegrationSession, SessionResult, reseed, rollback_seed, supervised_run_dir
from watchdog.signals import (
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

SUPPORTED = ">=5.0,<6"
# The field report's safe values where rsl_rl has the knob (cfgs/rsl_rl_safe.yaml says the same).
FIELD_REPORT_SAFE = RslRlSafeConfig(learning_rate=3e-4, schedule="fixed", max_grad_norm=0.5, clip_param=0.2)
_LIVE_KEYS = ("schedule", "desired_kl", "max_grad_norm", "clip_param", "entropy_coef", "value_loss_coef",
              "num_learning_epochs", "num_mini_batches")


def rsl_rl_version() -> str:
    """The installed rsl-rl-lib version; a one-line error when it is not a supported one."""
    return supported_version("rsl-rl-lib", "rsl_rl", SUPPORTED, "rsl-rl", lambda v: v.split(".")[0] == "5")


RSL_RL_VERSION = rsl_rl_version()

from rsl_rl.algorithms import PPO  # noqa: E402  (after the version check: a 4.x import may fail oddly)
from rsl_rl.runners import OnPolicyRunner  # noqa: E402


def default_watchdog_config() -> WatchdogConfig:
    """The watchdog defaults with the absolute value-loss rule off (rsl_rl's value targets are not
    normalised) and the reward detector on the mean episode return (rsl_rl's ``Train/mean_reward``, what
    replay judges: a per-step reward can hold while the episodes' returns fall). A config the runner is
    given gets the same treatment."""
    return live_config("rsl_rl", reward=EPISODE_RETURN)


class _Restart(Exception):
    """A rollback: leave rsl_rl's loop so it starts again from the restored state and fresh observations."""


class _Stop(Exception):
    """The watchdog stopped the run: leave rsl_rl's loop without its final save."""


# --- the training state -------------------------------------------------------------------------


def _raw(alg: Any, name: str) -> torch.nn.Module:
    """The uncompiled actor/critic (5.5.1 keeps ``_raw_actor`` next to a ``torch.compile``d one; 5.0.0 has none)."""
    return getattr(alg, f"_raw_{name}", getattr(alg, name))


def _rnd_optimizer(alg: Any) -> Any:
    """RND's optimizer: ``alg.rnd.optimizer`` in 5.5.1, ``alg.rnd_optimizer`` in 5.0.0."""
    return getattr(alg.rnd, "optimizer", None) or getattr(alg, "rnd_optimizer", None)


def _disc_avg(alg: Any) -> Any:
    """RND's discounted sum of intrinsic rewards per env (behind its reward normaliser's statistics),
    a plain attribute outside ``state_dict``; None without RND's reward normalisation."""
    return getattr(getattr(getattr(alg, "rnd", None), "reward_normalizer", None), "disc_avg", None)


def _load_module(module: torch.nn.Module, state: dict) -> None:
    """``load_state_dict``, first giving a normal tensor back to every buffer rsl_rl rebound inside
    ``torch.inference_mode`` (the RND reward normaliser sets its std during the rollout): such a
    buffer refuses the in-place copy, and the rollback would crash the run."""
    for name, buf in list(module.named_buffers()):
        if buf.is_inference():
            owner, _, leaf = name.rpartition(".")
            (module.get_submodule(owner) if owner else module)._buffers[leaf] = buf.clone()
    module.load_state_dict(state)


def capture_state(alg: Any) -> dict:
    """A weights-only copy of everything an update changes: actor and critic (their observation
    normalisers are buffers inside them), the optimizer (Adam moments, steps, lr), RND if used
    (with its reward normaliser's running discounted sum, which a NaN would otherwise keep NaN)."""
    state = {
        "actor": {k: v.detach().clone() for k, v in _raw(alg, "actor").state_dict().items()},
        "critic": {k: v.detach().clone() for k, v in _raw(alg, "critic").state_dict().items()},
        "optimizer": clone_tree(alg.optimizer.state_dict()),
        "learning_rate": float(alg.learning_rate),
    }
    if getattr(alg, "rnd", None) is not None:
        state["rnd"] = {k: v.detach().clone() for k, v in alg.rnd.state_dict().items()}
        state["rnd_optimizer"] = clone_tree(_rnd_optimizer(alg).state_dict())
        disc = _disc_avg(alg)
        if disc is not None and disc.avg is not None:
            state["rnd_disc_avg"] = disc.avg.detach().clone()
    return state


def restore_state(alg: Any, state: dict) -> None:
    """Load ``state`` into the live modules and optimizer, in place, and empty the rollout storage."""
    _load_module(_raw(alg, "actor"), state["actor"])
    _load_module(_raw(alg, "critic"), state["critic"])
    # an optimizer keeps the tensors it is given: a copy, so training never writes into the snapshot
    alg.optimizer.load_state_dict(clone_tree(state["optimizer"]))
    alg.learning_rate = float(state["learning_rate"])
    if "rnd" in state and getattr(alg, "rnd", None) is not None:
        _load_module(alg.rnd, state["rnd"])
        _rnd_optimizer(alg).load_state_dict(clone_tree(state["rnd_optimizer"]))
        disc = _disc_avg(alg)
        if disc is not None:
            disc.avg = state["rnd_disc_avg"].clone() if "rnd_disc_avg" in state else None
    alg.storage.clear()
    alg.transition.clear()
    for model in (alg.actor, alg.critic):
        model.reset()  # recurrent hidden states


def set_learning_rate(alg: Any, lr: float) -> None:
    """rsl_rl keeps the lr twice: ``alg.learning_rate`` (the schedule's) and the optimizer's groups."""
    alg.learning_rate = lr
    for group in alg.optimizer.param_groups:
        group["lr"] = lr


def apply_safe_config(alg: Any, safe: RslRlSafeConfig, lr_scale: float = 1.0,
                      base_lr: float | None = None) -> ConfigSwitch:
    """Switch the live PPO to ``safe``: every key it sets, the learning rate times ``lr_scale``.

    The learning rate with rsl_rl's adaptive schedule: the schedule multiplies the lr by 1.5 after
    every mini-batch whose KL is below ``desired_kl / 2`` (up to 1e-2), so a safe lr under it lasts
    a few mini-batches. ``schedule: fixed`` (the shipped safe config) holds it; ``schedule:
    adaptive`` restarts the schedule from the safe lr (with ``desired_kl``, if set).
    """
    values = safe.live_values()
    changes: dict[str, tuple[Any, Any]] = {}
    for key in _LIVE_KEYS:
        if key in values and getattr(alg, key, None) != values[key]:
            changes[key] = (getattr(alg, key, None), values[key])
            setattr(alg, key, values[key])
    old_lr = float(alg.learning_rate)
    new_lr = safe_lr(values.get("learning_rate"), old_lr if base_lr is None else base_lr) * lr_scale
    set_learning_rate(alg, new_lr)
    if new_lr != old_lr:
        changes["learning_rate"] = (old_lr, new_lr)
    kept = {}
    if alg.schedule == "adaptive" and alg.desired_kl is not None:
        kept["learning_rate"] = (f"starts at {new_lr:g}; rsl_rl's adaptive KL schedule moves it from there "
                                 "(schedule: fixed would hold it)")
    return ConfigSwitch(changes, kept)


def log_std_max(policy: Any) -> float | None:
    """The largest log-std of the actor's Gaussian (its parameter when state-independent, else the
    last batch's), or None when the actor has no std."""
    dist = getattr(policy, "distribution", None)
    with torch.no_grad():
        if hasattr(dist, "std_param"):
            low, high = dist.std_range
            return math.log(float(dist.std_param.clamp(low, high).max()))
        if hasattr(dist, "log_std_param"):
            low, high = dist.log_std_range
            return float(dist.log_std_param.clamp(low, high).max())
        try:
            return math.log(float(policy.output_std.max()))
        except (AttributeError, RuntimeError, TypeError, ValueError):
            return None


def nonfinite_where(runner: OnPolicyRunner, exc: BaseException | None = None) -> str | None:
    """Where a failed iteration's numbers went NaN/Inf (rsl_rl's own NaN check on the env's output,
    the weights, the rollout storage), else None: a crash with finite numbers is a bug."""
    if exc is not None and _raised_by_check_nan(exc):
        return "environment's observations or rewards"
    alg = runner.alg
    for name in ("actor", "critic"):
        if any(not bool(torch.isfinite(p).all()) for p in _raw(alg, name).parameters()):
            return f"{name} weights"
    storage = alg.storage
    if nonfinite_keys([storage.rewards, getattr(storage, "values", None), *storage.observations.values()]):
        return "rollout storage"
    return None


def _raised_by_check_nan(exc: BaseException) -> bool:
    """rsl_rl raises ``ValueError`` from ``rsl_rl.utils.check_nan`` exactly when the env returned NaN."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code if tb is not None else None
    return code is not None and code.co_name == "check_nan" and "rsl_rl" in code.co_filename


# --- the driver ---------------------------------------------------------------------------------


class RslRlSession(IntegrationSession):
    """The rsl_rl :class:`~watchdog.driver.Driver`: the library's session plus a live ``OnPolicyRunner``."""

    resumes = True  # WatchedOnPolicyRunner.learn continues a restarted run at the checkpoint's next iteration

    def __init__(self, runner: "WatchedOnPolicyRunner", **kwargs: Any):
        super().__init__(scalar=runner.add_watchdog_scalar, **kwargs)
        self.runner = runner

    def capture(self, action: SaveStable) -> dict:
        return {**capture_state(self.runner.alg), "episodes": self.runner.episodes_state()}

    def restore_snapshot(self, snap: dict, action: Rollback) -> None:
        """Weights, normalisers and optimizer back in place; fresh RNG, env and rollout storage."""
        restore_state(self.runner.alg, snap)
        self.runner.restore_episodes(snap.get("episodes"))
        reseed(rollback_seed(self.seed, action))
        self.runner.restart_rollout()

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        alg = self.runner.alg
        return apply_safe_config(alg, self.safe, action.lr_scale,
                                 base_lr=self.own_lr(alg.learning_rate, restored=action.target.iteration))


class WatchedOnPolicyRunner(OnPolicyRunner):
    """rsl_rl's ``OnPolicyRunner`` under the watchdog: same constructor, same ``learn``.

    ``watchdog_config``: a :class:`WatchdogConfig` or a YAML path (default
    :func:`default_watchdog_config`); ``safe_config``: a :class:`RslRlSafeConfig` or a YAML path
    (default the field report's, :data:`FIELD_REPORT_SAFE`); ``run_dir``: where
    ``watchdog_events.jsonl`` and ``checkpoints/watchdog/`` go (default ``log_dir``). TensorBoard's
    ``watchdog/*`` scalars go through rsl_rl's own writer (one per ``log_dir``), on its iteration axis.
    """

    def __init__(self, env: Any, train_cfg: dict, log_dir: str | None = None, device: str = "cpu", *,
                 watchdog_config: WatchdogConfig | str | Path | None = None,
                 safe_config: RslRlSafeConfig | str | Path | None = None,
                 run_dir: str | Path | None = None, console: Any = None):
        run_dir = supervised_run_dir(run_dir or log_dir)  # everything the user can get wrong, before rsl_rl builds anything
        if run_dir is None:
            raise WatchdogError("the watched runner needs a directory for its event log and checkpoints",
                                hint="pass log_dir or run_dir")
        # a given config is judged as replay judges rsl_rl too (frameworks.config_for_run)
        wd_cfg = live_config("rsl_rl", _load(watchdog_config, WatchdogConfig, load_watchdog_config), reward=EPISODE_RETURN)
        safe = _load(safe_config, RslRlSafeConfig, load_rsl_rl_safe_config) or FIELD_REPORT_SAFE
        super().__init__(env, train_cfg, log_dir, device)
        if self.is_distributed:
            raise WatchdogError("the rsl_rl watchdog runs in one process; multi-GPU rsl_rl training is not supported yet",
                                hint="train without torchrun, or use OnPolicyRunner unwatched")
        if not isinstance(self.alg, PPO):  # Distillation: no value loss, schedule or lr to watch and switch
            raise WatchdogError(f"the rsl_rl watchdog watches PPO; {type(self.alg).__name__} is not supported",
                                hint="train PPO (algorithm class_name: PPO), or use rsl_rl's runner unwatched")
        self.steps_per_iteration = int(self.cfg["num_steps_per_env"]) * int(self.env.num_envs)
        self._next_it = self.current_learning_iteration
        self._record_it = 0
        self._tb = None
        self._started = self._finished = False
        self._reward_sum = torch.zeros((), device=self.device)
        self._reward_steps = 0
        self._curriculum = CurriculumTerms()  # the task's curriculum terms from the env's episode extras
        self.watch = RslRlSession(
            self, watchdog=Watchdog(wd_cfg), safe=safe,
            safe_name=Path(safe_config).name if isinstance(safe_config, (str, Path)) else "rsl_rl safe config",
            run_dir=Path(run_dir), console=console if console is not None else WatchdogConsole(),
            seed=int(self.cfg.get("seed", 0) or 0), resources=ResourceSampler(self.device))
        self._rsl_log = self.logger.log
        self.logger.log = self._log_and_watch
        self._rsl_process_env_step = self.alg.process_env_step
        self.alg.process_env_step = self._process_env_step
        self._rsl_init_writer = self.logger.init_logging_writer
        self.logger.init_logging_writer = self._init_writer_once

    @property
    def watch_result(self) -> SessionResult:
        """How the watched run went: ``stopped``, ``stop_reason``, ``rollbacks``, ``iterations``, ``events``."""
        return self.watch.result

    # --- the loop -----------------------------------------------------------------------------

    def learn(self, num_learning_iterations: int, init_at_random_ep_len: bool = False) -> None:
        """rsl_rl's ``learn``, re-entered after each rollback at the next iteration; ends early when
        the watchdog stops the run (``watch_result.stopped``)."""
        if self._finished:
            raise WatchdogError("this watched runner's learn() already ran (its event log is closed)",
                                hint="build a new runner per run")
        end = self.current_learning_iteration + num_learning_iterations
        self._start()
        resumed = self.watch.resume_from_env()  # a process `watchdog run` restarted: on from its stable checkpoint
        if resumed is not None:
            self.current_learning_iteration = resumed.iteration + 1
        self._next_it = self.current_learning_iteration
        completed = False  # rsl_rl's loop ran to its end (and wrote its final model itself)
        try:
            while self._next_it < end:
                self.current_learning_iteration = self._next_it
                try:
                    super().learn(end - self._next_it, init_at_random_ep_len)
                    completed = True
                    break
                except _Restart:
                    pass
                except _Stop:
                    break
                except Exception as exc:
                    where = nonfinite_where(self, exc)
                    if where is None:  # finite numbers: a bug, not a divergence
                        raise
                    if not self._judge_failed(where, exc):
                        break
                init_at_random_ep_len = False
        finally:
            self._finished = True
            self.watch.close()
            writer = getattr(self.logger, "writer", None)
            if hasattr(writer, "flush"):
                writer.flush()
            if self._tb is not None:
                self._tb.close()
        if not completed:
            self._end_without_rsl_rl()

    def _end_without_rsl_rl(self) -> None:
        """What rsl_rl's loop does at its end, when a rollback on the last iteration or a stop left it
        early: the final ``model_<it>.pt`` (not after a stop: those weights diverged), the writer's stop."""
        self.current_learning_iteration = self._next_it - 1  # the last iteration run (a failed one too)
        if getattr(self.logger, "writer", None) is None:
            return
        if not self.watch.result.stopped:
            self.save(os.path.join(self.logger.log_dir, f"model_{self.current_learning_iteration}.pt"))
        self.logger.stop_logging_writer()

    def _start(self) -> None:
        if not self._started:
            self._started = True
            alg = self.alg
            self.watch.start(
                framework="rsl_rl", rsl_rl_version=RSL_RL_VERSION,
                ppo={"learning_rate": alg.learning_rate, "schedule": alg.schedule, "desired_kl": alg.desired_kl,
                     "max_grad_norm": alg.max_grad_norm, "clip_param": alg.clip_param},
                steps_per_iteration=self.steps_per_iteration)

    def _log_and_watch(self, *args: Any, **kwargs: Any) -> None:
        """rsl_rl's per-iteration ``logger.log``, then the watchdog judges the iteration."""
        self._rsl_log(*args, **kwargs)
        self._judge(self.record(int(kwargs["it"]), kwargs["loss_dict"]))

    def _process_env_step(self, obs: Any, rewards: torch.Tensor, dones: torch.Tensor, extras: dict) -> None:
        """Add up the raw env rewards (no sync: a tensor sum), then rsl_rl's own step processing."""
        self._reward_sum = self._reward_sum + rewards.detach().sum()
        self._reward_steps += rewards.numel()
        self._curriculum.update(extras)  # what rsl_rl's logger reads, in its order
        return self._rsl_process_env_step(obs, rewards, dones, extras)

    def _init_writer_once(self) -> None:
        """rsl_rl opens a writer per ``learn``; re-entering after a rollback keeps the first one."""
        if getattr(self.logger, "writer", None) is None:
            self._rsl_init_writer()

    def record(self, it: int, loss_dict: dict) -> MetricRecord:
        """This iteration's metrics under the watchdog's keys (other loss terms as ``extra/<name>``)."""
        reward = float(self._reward_sum) / self._reward_steps if self._reward_steps else math.nan
        self._reward_sum, self._reward_steps = torch.zeros((), device=self.device), 0
        values: dict[str, Any] = {f"extra/{k}": v for k, v in loss_dict.items()
                                  if k not in ("value", "surrogate", "entropy")}
        values.update({VALUE_LOSS: loss_dict.get("value", math.nan), POLICY_LOSS: loss_dict.get("surrogate", math.nan),
                       ENTROPY: loss_dict.get("entropy", math.nan), STEP_REWARD: reward,
                       LEARNING_RATE: self.alg.learning_rate})
        std = log_std_max(self.alg.get_policy())
        if std is not None:
            values[LOG_STD_MAX] = std
        episodes = getattr(self.logger, "rewbuffer", None)  # rsl_rl's last 100 finished episodes
        if episodes:
            values[EPISODE_RETURN] = statistics.mean(episodes)  # as rsl_rl logs Train/mean_reward
        values.update(self._curriculum.values())  # each term's newest value (rsl_rl logs the iteration's mean of them)
        return MetricRecord.from_mapping(it, (it + 1) * self.steps_per_iteration, values)

    def episodes_state(self) -> dict:
        """rsl_rl's finished-episode buffers (returns, lengths) as float64 tensors, for a stable checkpoint."""
        return {name: torch.tensor(list(getattr(self.logger, name, ())), dtype=torch.float64)
                for name in ("rewbuffer", "lenbuffer")}

    def restore_episodes(self, state: dict | None) -> None:
        """Put back the finished episodes of a stable checkpoint: the abandoned stretch's go with it, so
        the episode return judged next (and rsl_rl's Train/mean_reward) are the restored policy's."""
        for name, values in (state or {}).items():
            buf = getattr(self.logger, name, None)
            if buf is not None:
                buf.clear()
                buf.extend(values.tolist())

    def _judge(self, record: MetricRecord) -> None:
        """Feed the watchdog; leave rsl_rl's loop after a rollback (restart) or a stop."""
        rollbacks = self.watch.result.rollbacks
        self._record_it, self._next_it = record.iteration, record.iteration + 1
        if not self.watch.observe(record):
            raise _Stop()
        if self.watch.result.rollbacks != rollbacks:
            raise _Restart()

    def _judge_failed(self, where: str, exc: BaseException) -> bool:
        """An iteration died on non-finite numbers: judge it as a NaN record. Only a rollback lets
        training go on (True); a stop ends it (False); with neither (``action: alert``) it is the
        run's end (:class:`NonFiniteTraining`, exit 3 in the example)."""
        it = self._next_it
        self.watch.iteration_failed(it, (it + 1) * self.steps_per_iteration, exc, where)
        self._reward_sum, self._reward_steps = torch.zeros((), device=self.device), 0
        record = MetricRecord.from_mapping(it, (it + 1) * self.steps_per_iteration, {VALUE_LOSS: math.nan})

        def judge() -> bool:
            try:
                self._judge(record)
            except _Restart:
                return True
            except _Stop:
                return False
            return True

        return self.watch.judge_failed(judge, where, exc)

    # --- what a rollback needs from the runner --------------------------------------------------

    def restart_rollout(self) -> None:
        """The next rollout starts from a reset env (when it has ``reset()``) and empty episode sums;
        rsl_rl's loop reads the observations again when it is re-entered. In inference mode, as rsl_rl
        steps the env: the env's and logger's buffers may be inference tensors."""
        with torch.inference_mode():
            reset = getattr(self.env, "reset", None)
            if callable(reset):
                reset()
            for name in ("cur_reward_sum", "cur_episode_length", "cur_ereward_sum", "cur_ireward_sum"):
                buf = getattr(self.logger, name, None)
                if isinstance(buf, torch.Tensor):
                    buf.zero_()
        extras = getattr(self.logger, "ep_extras", None)
        if isinstance(extras, list):
            extras.clear()
        self._reward_sum, self._reward_steps = torch.zeros((), device=self.device), 0

    def add_watchdog_scalar(self, tag: str, value: float, env_steps: int) -> None:
        """``watchdog/*`` scalars on rsl_rl's axis (iterations), through rsl_rl's writer, else our own."""
        writer = getattr(self.logger, "writer", None)
        if writer is None:
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.watch.run_dir))
            writer = self._tb
        writer.add_scalar(tag, value, self._record_it)


def _load(value: Any, model: type, loader: Any) -> Any:
    """A config given as a model instance, a YAML path, or None."""
    if value is None or isinstance(value, model):
        return value
    return loader(value)
