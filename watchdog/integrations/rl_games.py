"""The watchdog inside rl_games' PPO (rl-games 1.6.x: ``a2c_continuous`` and ``a2c_discrete``), the trainer of
IsaacGymEnvs and one of Isaac Lab's.

rl_games' own plug-in point is the algorithm observer a ``Runner`` is built with; pass
:class:`WatchdogObserver` (wrapping the observer the script used before, if any)::

    from watchdog.integrations.rl_games import WatchdogObserver

    observer = WatchdogObserver(safe_config="cfgs/rl_games_safe.yaml", wrap=IsaacAlgoObserver())
    runner = Runner(observer)            # was: Runner(IsaacAlgoObserver())
    runner.load(agent_cfg); runner.run({"train": True, "play": False})
    if observer.result.stopped: ...      # the watchdog gave up

Attach point: when rl_games has built its agent it calls ``observer.after_init(agent)``; the observer then
wraps three of that agent's methods (instance attributes; the class is untouched). ``train_epoch`` (one
rollout and its update): right after it returns, the epoch's record is built from the losses it returns and
judged, so a rollback and the safe config take effect before the next rollout; an epoch that crashes on
non-finite numbers counts as a non-finite iteration. ``save``: skipped once the watchdog has stopped the run
(the weights diverged). ``train``: the watched session closes when rl_games' loop ends. A stop ends that
loop at the end of the epoch, through rl_games' own ``max_epochs``.

The record (iteration = epochs run so far, rolled-back ones included, 0-based; env steps = rl_games'
``frame`` after the epoch, monotonic):

==========================  ==========================================================================
``train/value_loss``        the mean of the epoch's ``c_loss`` (``losses/c_loss``); with a central value net and
                            ``use_experimental_cv: False`` (``c_loss`` 0), that net's loss (``losses/cval_loss``)
``train/policy_loss``       ``a_loss`` (``losses/a_loss``)
``train/entropy``           ``entropy`` (``losses/entropy``)
``train/approx_kl``         the KL per mini-epoch, averaged (``info/kl``)
``train/learning_rate``     ``last_lr`` x ``lr_mul`` (``info/last_lr``)
``train/log_std_max``       the log of the largest std of the last mini-batch (Gaussian policies)
``rollout/episode_return``  the mean return of the last ``games_to_track`` (100) episodes, what rl_games
                            logs as ``rewards/step``; absent until an episode has finished
==========================  ==========================================================================

No critic gradient norm (one clipped gradient over actor and critic, as SB3) and no step reward (rl_games
logs the episodes' returns). The value-loss rule follows the agent's ``normalize_value``, as replay reads
it from the run's ``params/agent.yaml``: on with normalised value targets, off with raw ones.

Supported: rl-games 1.6.x, one process (``multi_gpu`` is refused with a one-line error).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from watchdog.checkpoints import clone_tree, nonfinite_keys
from watchdog.config import (
    RlGamesSafeConfig,
    WatchdogConfig,
    load_rl_games_safe_config,
    load_watchdog_config,
    safe_lr,
)
from watchdog.console import WatchdogConsole
from watchdog.driver import ConfigSwitch
from watchdog.errors import WatchdogError
from watchdog.frameworks import live_config
from watchdog.integrations import CurriculumTerms, supported_version
from watchdog.pipeline import Watchdog
from watchdog.policy import CheckpointRef, Rollback, SaveStable
from watchdog.resources import ResourceSampler
from watchdog.session import IntegrationSession, SessionResult, reseed, rollback_seed
from watchdog.signals import (
    APPROX_KL,
    EPISODE_RETURN,
    LEARNING_RATE,
    LOG_STD_MAX,
    POLICY_ENTROPY,
    POLICY_LOSS,
    VALUE_LOSS,
    MetricRecord,
)

log = logging.getLogger(__name__)

SUPPORTED = ">=1.6,<1.7"
# The field report's safe values where rl_games has the knob (cfgs/rl_games_safe.yaml says the same).
FIELD_REPORT_SAFE = RlGamesSafeConfig(learning_rate=3e-4, lr_schedule="fixed", grad_norm=0.5, e_clip=0.2,
                                      normalize_advantage=True)
# safe-config key -> the agent attribute rl_games reads it from at use time
_LIVE_ATTRS = {"grad_norm": "grad_norm", "e_clip": "e_clip", "entropy_coef": "entropy_coef",
               "critic_coef": "critic_coef", "bounds_loss_coef": "bounds_loss_coef", "mini_epochs": "mini_epochs_num",
               "normalize_advantage": "normalize_advantage"}
_EPISODE_METERS = ("game_rewards", "game_shaped_rewards", "game_lengths")


def rl_games_version() -> str:
    """The installed rl-games version; a one-line error when it is not a supported one."""
    return supported_version("rl-games", "rl_games", SUPPORTED, "rl-games", lambda v: v.split(".")[:2] == ["1", "6"])


RL_GAMES_VERSION = rl_games_version()

from rl_games.common import schedulers  # noqa: E402  (after the version check)
from rl_games.common.algo_observer import AlgoObserver  # noqa: E402


def default_watchdog_config(normalize_value: bool = True) -> WatchdogConfig:
    """The watchdog defaults as replay judges an rl_games run: the reward detector on the episode return, and
    the absolute value-loss rule only with normalised value targets (``normalize_value``, on in IsaacGymEnvs'
    and Isaac Lab's configs). A config the observer is given gets the same treatment."""
    return live_config("rl_games", reward=EPISODE_RETURN, normalization=_normalization(normalize_value))


def _normalization(normalize_value: bool) -> tuple[bool, str]:
    return bool(normalize_value), f"the agent's normalize_value: {bool(normalize_value)}"


# --- the training state -------------------------------------------------------------------------


def central_value_net(agent: Any) -> Any | None:
    """The agent's central value net (an asymmetric critic: Isaac Lab's tasks with ``states``), else None."""
    return agent.central_value_net if getattr(agent, "has_central_value", False) else None


def capture_state(agent: Any) -> dict:
    """A weights-only copy of everything an update changes: the model (its input and value normalisers are
    buffers inside it), the optimizer (Adam moments, steps), the lr and entropy coefficient the schedule
    moves, and where used the central value net, the mixed-precision scalers (the actor-critic's and the central value
    net's) and the advantage normaliser."""
    state = {
        "model": {k: v.detach().clone() for k, v in agent.model.state_dict().items()},
        "optimizer": clone_tree(agent.optimizer.state_dict()),
        "last_lr": float(agent.last_lr),
        "entropy_coef": float(agent.entropy_coef),
    }
    net = central_value_net(agent)
    if net is not None:
        state["central_value"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
        state["central_value_optimizer"] = clone_tree(net.optimizer.state_dict())
        state["central_value_lr"] = float(net.lr)
        if getattr(net, "mixed_precision", False):  # its own GradScaler (until session 29 left out)
            state["central_value_scaler"] = clone_tree(net.scaler.state_dict())
    if getattr(agent, "mixed_precision", False):
        state["scaler"] = clone_tree(agent.scaler.state_dict())
    if getattr(agent, "normalize_rms_advantage", False):
        state["advantage_mean_std"] = {k: v.detach().clone() for k, v in agent.advantage_mean_std.state_dict().items()}
    return state


def restore_state(agent: Any, state: dict) -> None:
    """Load ``state`` into the live model, optimizer and the rest, in place."""
    agent.model.load_state_dict(state["model"])
    # an optimizer keeps the tensors it is given: a copy, so training never writes into the snapshot
    agent.optimizer.load_state_dict(clone_tree(state["optimizer"]))
    set_learning_rate(agent, state["last_lr"])
    agent.entropy_coef = state["entropy_coef"]
    if "central_value" in state:
        agent.central_value_net.load_state_dict(state["central_value"])
        agent.central_value_net.optimizer.load_state_dict(clone_tree(state["central_value_optimizer"]))
        _set_central_value_lr(agent, state["central_value_lr"])
    if "central_value_scaler" in state:
        agent.central_value_net.scaler.load_state_dict(clone_tree(state["central_value_scaler"]))
    if "scaler" in state:
        agent.scaler.load_state_dict(clone_tree(state["scaler"]))
    if "advantage_mean_std" in state:
        agent.advantage_mean_std.load_state_dict(state["advantage_mean_std"])


def episodes_state(agent: Any) -> dict:
    """rl_games' finished-episode meters (the running means of the last ``games_to_track`` episodes)."""
    return {name: {"mean": getattr(agent, name).mean.detach().clone(),
                   "size": torch.tensor(int(getattr(agent, name).current_size))} for name in _EPISODE_METERS}


def restore_episodes(agent: Any, state: dict | None) -> None:
    """Put back the meters of a stable checkpoint: the abandoned stretch's episodes go with it, so the episode
    return judged next (and rl_games' ``rewards/step``) are the restored policy's."""
    for name, meter in (state or {}).items():
        live = getattr(agent, name)
        # assigned, as rl_games' own update does: a meter with no episode yet (a new process) has another shape
        live.mean = meter["mean"].to(device=live.mean.device, dtype=live.mean.dtype).clone()
        live.current_size = int(meter["size"])


def set_learning_rate(agent: Any, lr: float) -> None:
    """rl_games keeps the lr twice: ``last_lr`` (the schedule's, put on the optimizer after every mini-batch)
    and the optimizer's groups (what the next step uses)."""
    agent.last_lr = float(lr)
    for group in agent.optimizer.param_groups:
        group["lr"] = float(lr)


def _set_central_value_lr(agent: Any, lr: float) -> None:
    """The asymmetric critic's lr (rl_games' central value net keeps its own, and its own schedule)."""
    net = agent.central_value_net
    net.lr = float(lr)
    for group in net.optimizer.param_groups:
        group["lr"] = float(lr)


def _schedule(agent: Any) -> str:
    if isinstance(agent.scheduler, schedulers.AdaptiveScheduler):
        return "adaptive"
    if isinstance(agent.scheduler, schedulers.LinearScheduler):
        return "linear"
    return "fixed"


def apply_safe_config(agent: Any, safe: RlGamesSafeConfig, lr_scale: float = 1.0,
                      base_lr: float | None = None, central_value_base_lr: float | None = None) -> ConfigSwitch:
    """Switch the live agent to ``safe``: every key it sets, the learning rate times ``lr_scale`` (the central value
    net's too, never above its own: ``central_value_base_lr``, as ``base_lr`` is the actor's).

    ``lr_schedule: fixed`` replaces the agent's scheduler by rl_games' ``IdentityScheduler`` (the lr then stays
    where it is put); ``adaptive`` by a fresh ``AdaptiveScheduler`` (``kl_threshold``: the safe config's, else
    the run's, else rl_games' 0.008) that starts from the safe lr. Left unset, an adaptive or linear schedule
    moves a safe lr from the next mini-epoch on, and the switch says so."""
    values = safe.live_values()
    changes: dict[str, tuple[Any, Any]] = {}
    for key, attr in _LIVE_ATTRS.items():
        if key in values and getattr(agent, attr, None) != values[key]:
            changes[key] = (getattr(agent, attr, None), values[key])
            setattr(agent, attr, values[key])
    if "grad_norm" in values and not agent.truncate_grads:
        changes["truncate_grads"] = (False, True)
        agent.truncate_grads = True
    cv_net = central_value_net(agent)
    if cv_net is not None and "grad_norm" in values:
        # the field report's clip is on both networks: the central value net clips with its own (until session 27
        # the switch said grad_norm 1 -> 0.5 while the critic went on at 1, or unclipped)
        old_cv_clip = (cv_net.grad_norm, cv_net.truncate_grads)
        cv_net.grad_norm, cv_net.truncate_grads = values["grad_norm"], True
        if old_cv_clip != (values["grad_norm"], True):
            changes["central_value_grad_norm"] = (old_cv_clip[0] if old_cv_clip[1] else None, values["grad_norm"])
    if "entropy_coef" in values and getattr(agent.scheduler, "apply_to_entropy", False):
        # rl_games' linear schedule sets the entropy coefficient from its own start at every update: it would undo the
        # safe one an epoch later (until session 27); the schedule no longer moves it
        agent.scheduler.apply_to_entropy = False
        changes["entropy_schedule"] = ("linear", "fixed")
    old_schedule = _schedule(agent)
    schedule = values.get("lr_schedule", old_schedule)
    old_kl = getattr(agent, "kl_threshold", None)
    if schedule == "fixed" and old_schedule != "fixed":
        agent.scheduler = schedulers.IdentityScheduler()
        agent.is_adaptive_lr = False
    elif schedule == "adaptive":
        kl = float(values.get("kl_threshold", old_kl if old_kl is not None else 0.008))
        if old_schedule != "adaptive" or kl != old_kl:
            agent.scheduler = schedulers.AdaptiveScheduler(kl)
            agent.kl_threshold, agent.is_adaptive_lr = kl, True
            if kl != old_kl:
                changes["kl_threshold"] = (old_kl, kl)
    if schedule != old_schedule:
        changes["lr_schedule"] = (old_schedule, schedule)
    old_lr = float(agent.last_lr)
    new_lr = safe_lr(values.get("learning_rate"), old_lr if base_lr is None else base_lr) * lr_scale
    set_learning_rate(agent, new_lr)
    if new_lr != old_lr:
        changes["learning_rate"] = (old_lr, new_lr)
    if cv_net is not None and "learning_rate" in values:
        # the field report's critic lr is the safe lr too, never above the critic's own (until session 27 only the
        # actor's capped it: a critic at 1e-4 was raised to 3e-4); the central value net's schedule held it there
        net, old_cv = cv_net, float(cv_net.lr)
        cv_lr = safe_lr(values["learning_rate"], old_cv if central_value_base_lr is None else central_value_base_lr)
        cv_lr *= lr_scale
        if schedule == "fixed" or (isinstance(net.scheduler, schedulers.LinearScheduler)
                                   and not _linear_from(net.scheduler, cv_lr, net.epoch_num)):
            net.scheduler = schedulers.IdentityScheduler()
        _set_central_value_lr(agent, cv_lr)
        if cv_lr != old_cv:
            changes["central_value_learning_rate"] = (old_cv, cv_lr)
    kept = {}
    if schedule == "linear" and isinstance(agent.scheduler, schedulers.LinearScheduler):
        if _linear_from(agent.scheduler, new_lr, agent.epoch_num):
            kept["learning_rate"] = (
                f"starts at {new_lr:g}; rl_games' linear schedule takes it down to its min_lr "
                f"{agent.scheduler.min_lr:g} by its end (lr_schedule: fixed would hold it)" if agent.scheduler.use_epochs
                else f"{new_lr:g}; rl_games' linear schedule counted in frames holds it (rl_games gives it no frame "
                     "count)")
        else:  # the schedule has run out: it would hold its min_lr, not the safe lr
            agent.scheduler = schedulers.IdentityScheduler()
            changes["lr_schedule"] = ("linear", "fixed")
    elif schedule != "fixed":
        kept["learning_rate"] = (f"starts at {new_lr:g}; rl_games' {schedule} schedule moves it from there "
                                 "(lr_schedule: fixed would hold it)")
    if "kl_threshold" in values and schedule != "adaptive":  # (until session 27 left out without a word)
        kept["kl_threshold"] = (f"{values['kl_threshold']:g} not used: only rl_games' adaptive lr schedule reads "
                                f"it, and this run's is {schedule} (lr_schedule: adaptive would use it)")
    return ConfigSwitch(changes, kept)


def _linear_from(scheduler: Any, lr: float, epoch: int) -> bool:
    """rl_games' linear schedule sets the lr from its start lr at each update, whatever the lr is: it goes on from
    ``lr`` instead, down to its min_lr by its end (its start lr moved so that it gives ``lr`` now; until session 16 a
    safe lr under it never took effect). False when it has run out (it would hold its min_lr).

    Counted in frames (``max_epochs: -1``), it is moved as rl_games calls it: with no frames (1.6.5 passes 0,
    so it holds its start lr; read from the real frame count, the safe lr ran at twice its value)."""
    steps = epoch if scheduler.use_epochs else 0
    left = max(0, scheduler.max_steps - steps) / scheduler.max_steps
    if left <= 0 or lr <= scheduler.min_lr:
        return False
    scheduler.start_lr = scheduler.min_lr + (lr - scheduler.min_lr) / left
    return True


def _mean(values: list) -> float:
    """The mean of rl_games' per-mini-batch loss tensors (as its ``torch_ext.mean_list``), NaN for none."""
    if not values:
        return math.nan
    return float(torch.stack([torch.as_tensor(v, dtype=torch.float32).detach().reshape(()) for v in values]).mean())


def nonfinite_where(agent: Any) -> str | None:
    """Where a failed epoch's numbers went NaN/Inf (the weights, the observations), else None: a crash with
    finite numbers is a bug."""
    if any(not bool(torch.isfinite(p).all()) for p in agent.model.parameters()):
        return "model weights"
    obs = getattr(agent, "obs", None)
    leaves = list(obs.values()) if isinstance(obs, dict) else [obs]
    if nonfinite_keys([torch.as_tensor(x) for x in leaves if x is not None]):
        return "environment's observations"
    return None


# --- the driver ---------------------------------------------------------------------------------


class RlGamesSession(IntegrationSession):
    """The rl_games :class:`~watchdog.driver.Driver`: the library's session plus a live rl_games agent."""

    resumes = True  # the first watched epoch of a restarted run goes on from the checkpoint's next epoch

    def __init__(self, agent: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.agent = agent

    def capture(self, action: SaveStable) -> dict:
        return {**capture_state(self.agent), "episodes": episodes_state(self.agent)}

    def restore_snapshot(self, snap: dict, action: Rollback) -> None:
        """Weights, normalisers and optimizer back in place; fresh RNG, env, episode sums and RNN states."""
        agent = self.agent
        restore_state(agent, snap)
        restore_episodes(agent, snap.get("episodes"))
        reseed(rollback_seed(self.seed, action))
        batch = agent.num_agents * agent.num_actors
        agent.init_current_rewards(batch, (batch, agent.value_size))  # episode sums 0, every env done
        agent.reset_envs()  # the env's reset() and rl_games' RNN states (the actor's)
        net = central_value_net(agent)
        if net is not None and net.is_rnn:  # the central value's own: zeroed only where an episode ends (a NaN
            net.rnn_states = [s.to(net.ppo_device) for s in net.model.get_default_rnn_state()]  # step kept them NaN)

    def resume_at(self, ref: CheckpointRef) -> None:
        """The checkpoint's next epoch is this process's first, set before the config switch fits a linear schedule
        to it (until session 27 set after it: fitted at epoch 1, the lr ran 2.5x under the safe lr it was said to
        start at); max_epochs / max_frames end the run as planned."""
        self.agent.epoch_num, self.agent.frame = ref.iteration + 2, ref.env_steps

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        agent, restored, net = self.agent, action.target.iteration, central_value_net(self.agent)
        return apply_safe_config(
            agent, self.safe, action.lr_scale, base_lr=self.own_lr(agent.last_lr, restored=restored),
            central_value_base_lr=None if net is None else self.own_lr(net.lr, "central_value_lr", restored))


class WatchdogObserver(AlgoObserver):
    """rl_games' algorithm observer that watches the run; forwards every call to ``wrap`` (the observer the
    script used before, e.g. Isaac Lab's ``IsaacAlgoObserver``; default rl_games' ``DefaultAlgoObserver``).

    ``run_dir``: where ``watchdog_events.jsonl`` and ``checkpoints/watchdog/`` go (default the agent's
    experiment folder, ``<train_dir>/<experiment>/``, beside ``nn/`` and ``summaries/``); ``config``: a
    :class:`WatchdogConfig` or a YAML path (default :func:`default_watchdog_config`); ``safe_config``: a
    :class:`RlGamesSafeConfig` or a YAML path (default the field report's, :data:`FIELD_REPORT_SAFE`);
    ``console``: a :class:`WatchdogConsole` (default one on stdout). TensorBoard's ``watchdog/*`` scalars go
    through rl_games' own writer, on its frame axis. One observer watches one run.
    """

    def __init__(self, run_dir: str | Path | None = None, *, config: WatchdogConfig | str | Path | None = None,
                 safe_config: RlGamesSafeConfig | str | Path | None = None, console: Any = None, wrap: Any = None):
        super().__init__()
        # everything the user can get wrong, before rl_games builds anything
        self._config = config if config is None or isinstance(config, WatchdogConfig) else load_watchdog_config(config)
        self.safe = (safe_config if isinstance(safe_config, RlGamesSafeConfig) else
                     load_rl_games_safe_config(safe_config) if safe_config is not None else FIELD_REPORT_SAFE)
        self.safe_name = Path(safe_config).name if isinstance(safe_config, (str, Path)) else "rl_games safe config"
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.console = console
        if wrap is None:
            from rl_games.common.algo_observer import DefaultAlgoObserver

            wrap = DefaultAlgoObserver()
        self.wrap = wrap
        self.agent: Any = None
        self.watch: RlGamesSession | None = None
        self._axis = 0  # rl_games' frame axis of the epoch being judged (its TensorBoard step)
        self._stopped_at: int | None = None
        self._first_epoch = True  # a restarted run resumes there, inside rl_games' loop (as a rollback would)
        self._curriculum = CurriculumTerms()  # the task's curriculum terms from the env's step infos

    @property
    def result(self) -> SessionResult:
        """How the watched run went: ``stopped``, ``stop_reason``, ``rollbacks``, ``iterations``, ``events``."""
        return self.watch.result if self.watch is not None else SessionResult()

    # --- rl_games' observer calls -----------------------------------------------------------------

    def before_init(self, base_name: str, config: dict, experiment_name: str) -> None:
        self.wrap.before_init(base_name, config, experiment_name)

    def after_init(self, algo: Any) -> None:
        self.wrap.after_init(algo)
        if self.agent is not None:
            raise WatchdogError("this WatchdogObserver already watches an agent (its event log is open)",
                                hint="build a new observer (and Runner) per run")
        if getattr(algo, "multi_gpu", False):
            raise WatchdogError("the rl_games watchdog runs in one process; multi_gpu rl_games training is not "
                                "supported yet", hint="train without multi_gpu, or leave the observer out")
        if not all(hasattr(algo, name) for name in ("train_epoch", "last_lr", "scheduler", "model", "optimizer")):
            raise WatchdogError(f"{type(algo).__name__} is not an rl_games PPO agent (a2c_continuous or "
                                "a2c_discrete)", hint="use the watchdog with rl_games' PPO agents only")
        self.agent = algo
        normalization = _normalization(getattr(algo, "normalize_value", False))
        cfg = live_config("rl_games", self._config, reward=EPISODE_RETURN, normalization=normalization)
        run_dir = self.run_dir or Path(algo.experiment_dir)
        self.watch = RlGamesSession(
            algo, watchdog=Watchdog(cfg), safe=self.safe, safe_name=self.safe_name, run_dir=run_dir,
            console=self.console if self.console is not None else WatchdogConsole(),
            seed=int(algo.config.get("seed", 0) or 0), scalar=self._scalar,
            resources=ResourceSampler(getattr(algo, "ppo_device", "cpu")))
        self._train_epoch, self._save, self._train = algo.train_epoch, algo.save, algo.train
        algo.train_epoch, algo.save, algo.train = self._watched_epoch, self._save_unless_stopped, self._watched_train
        self._update_epoch, algo.update_epoch = algo.update_epoch, self._watched_update_epoch
        self._cval_loss: float | None = None
        self._trained = False
        if getattr(algo, "has_central_value", False) and not getattr(algo, "has_value_loss", True):
            # an asymmetric critic alone (use_experimental_cv: False): the actor-critic's c_loss is 0, the central
            # value net's loss is the value loss
            self._train_central_value = algo.train_central_value
            algo.train_central_value = self._watched_central_value

    def process_infos(self, infos: Any, done_indices: Any) -> None:
        self.wrap.process_infos(infos, done_indices)
        self._curriculum.update(infos)  # Isaac Lab's curriculum terms, as its rl_games observer reads them

    def after_steps(self) -> None:
        self.wrap.after_steps()

    def after_clear_stats(self) -> None:
        if hasattr(self.wrap, "after_clear_stats"):
            self.wrap.after_clear_stats()

    def after_print_stats(self, frame: int, epoch_num: int, total_time: float) -> None:
        self.wrap.after_print_stats(frame, epoch_num, total_time)

    # --- the wrapped agent methods ----------------------------------------------------------------

    def _watched_train(self) -> Any:
        """rl_games' ``train``, with the watched session around it (once: its event log closes at the end)."""
        if self._trained:
            raise WatchdogError("this WatchdogObserver's run already ended (its event log is closed)",
                                hint="build a new observer and Runner per run")
        self._trained = True
        agent = self.agent
        self.watch.start(
            framework="rl_games", rl_games_version=RL_GAMES_VERSION,
            value_targets_normalized=bool(agent.normalize_value),
            ppo={"learning_rate": float(agent.last_lr), "lr_schedule": _schedule(agent),
                 "grad_norm": agent.grad_norm if agent.truncate_grads else None, "e_clip": agent.e_clip,
                 "normalize_value": bool(agent.normalize_value)},
            steps_per_iteration=int(agent.batch_size_envs))
        try:
            return self._train()
        finally:
            self.watch.close()
            if getattr(agent, "writer", None) is not None:
                agent.writer.flush()

    def _watched_update_epoch(self) -> int:
        """rl_games' ``update_epoch``, its loop's first call each epoch: the number it returns is a local of that loop
        (its max_epochs check, its checkpoints' names, its ``*/iter`` points). A process `watchdog run` restarted
        resumes from its stable checkpoint here, before that number is taken (until session 29 inside the epoch, so
        its first epoch counted as 1: one epoch past max_epochs, and a stop there trained on)."""
        epoch = self._update_epoch()
        if self._first_epoch:
            self._first_epoch = False
            if self.watch.resume_from_env() is not None:  # the checkpoint's next epoch
                return int(self.agent.epoch_num)
        return epoch

    def _watched_epoch(self) -> tuple:
        """One rl_games epoch (rollout + update), then the watchdog judges it."""
        agent = self.agent
        started = time.perf_counter()
        try:
            out = self._train_epoch()
        except Exception as exc:
            where = nonfinite_where(agent)
            if where is None:  # finite numbers: a bug, not a divergence
                raise
            return self._failed_epoch(where, exc, max(time.perf_counter() - started, 1e-9))
        losses = dict(zip(("a", "c", "b", "entropy", "kl"), out[4:9])) if len(out) == 11 else \
            dict(zip(("a", "c", "entropy", "kl"), out[4:8]))
        self._judge(self.record(losses, last_lr=out[-2], lr_mul=out[-1]))
        return out

    def _watched_central_value(self) -> Any:
        loss = self._train_central_value()
        self._cval_loss = _mean([loss])
        return loss

    def _save_unless_stopped(self, fn: str) -> None:
        if self._stopped_at is not None:
            log.info("not saving %s: the watchdog stopped the run at iteration %d (the weights diverged)",
                     fn, self._stopped_at)
            return
        self._save(fn)

    # --- judging ----------------------------------------------------------------------------------

    def record(self, losses: dict, *, last_lr: float, lr_mul: float) -> MetricRecord:
        """This epoch's metrics under the watchdog's keys (iteration: the 0-based epoch index)."""
        agent = self.agent
        value_loss, self._cval_loss = (_mean(losses["c"]) if self._cval_loss is None else self._cval_loss), None
        values: dict[str, Any] = {VALUE_LOSS: value_loss, POLICY_LOSS: _mean(losses["a"]),
                                  POLICY_ENTROPY: _mean(losses["entropy"]), APPROX_KL: _mean(losses["kl"]),
                                  LEARNING_RATE: float(last_lr) * float(lr_mul)}
        if losses.get("b"):
            values["extra/bounds_loss"] = _mean(losses["b"])
        result = getattr(agent, "train_result", None)
        if isinstance(result, tuple) and len(result) == 9:  # continuous: (..., mu, sigma, b_loss)
            sigma = result[7]
            if isinstance(sigma, torch.Tensor) and sigma.numel():
                values[LOG_STD_MAX] = math.log(max(float(sigma.max()), 1e-45))
        if agent.game_rewards.current_size > 0:
            values[EPISODE_RETURN] = float(agent.game_rewards.get_mean().reshape(-1)[0])
        values.update(self._curriculum.values())
        it = int(agent.epoch_num) - 1
        return MetricRecord.from_mapping(it, int(agent.frame) + int(agent.curr_frames), values)

    def _judge(self, record: MetricRecord) -> bool:
        """Feed the watchdog; a stop ends rl_games' loop after this epoch (its ``max_epochs``). False: stopped."""
        self._axis = int(self.agent.frame) // max(1, int(self.agent.num_agents))  # where rl_games logs this epoch
        if self.watch.observe(record):
            return True
        self._stopped_at = record.iteration
        self.agent.max_epochs = int(self.agent.epoch_num)  # rl_games' own exit at the end of this epoch
        return False

    def _failed_epoch(self, where: str, exc: BaseException, elapsed: float) -> tuple:
        """An epoch died on non-finite numbers: judge it as a NaN record; only a rollback (or a stop) lets the
        run go on to rl_games' next epoch (or its end); with neither (``action: alert``) it is the run's end
        (:class:`~watchdog.errors.NonFiniteTraining`). Returns what ``train_epoch`` returns, with NaN losses."""
        agent = self.agent
        it = int(agent.epoch_num) - 1
        self._cval_loss = None
        record = MetricRecord.from_mapping(it, int(agent.frame) + int(agent.curr_frames), {VALUE_LOSS: math.nan})
        self.watch.iteration_failed(it, record.env_steps, exc, where)
        self.watch.judge_failed(lambda: self._judge(record), where, exc)
        nan = [torch.tensor(math.nan)]
        losses = (nan, nan, nan, nan) if agent.is_discrete else (nan, nan, [], nan, nan)  # continuous: + b_losses
        return (elapsed, elapsed, elapsed, elapsed, *losses, float(agent.last_lr), 1.0)

    def _scalar(self, tag: str, value: float, env_steps: int) -> None:
        """``watchdog/*`` scalars through rl_games' writer, at the frame rl_games logs this epoch at."""
        writer = getattr(self.agent, "writer", None)
        if writer is not None:
            writer.add_scalar(tag, value, self._axis)
