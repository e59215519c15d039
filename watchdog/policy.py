"""The state machine: verdicts -> actions (alert, mark stable, roll back, escalate, stop).

    HEALTHY -> WARNING -> DIVERGED -> ROLLED_BACK -> (cool-down) -> HEALTHY
                                   \\-> STOPPED (rollback budget spent, or no checkpoint)

Stable checkpoints are only marked while HEALTHY, so every rollback target precedes the warning
that came before the alarm; the target is the newest stable checkpoint at least
``onset_margin_iters`` before the *estimated onset* (an exact onset, a first non-finite value
with no warning before it, needs no margin: the state after the iteration before it is known
good). The policy decides; :func:`watchdog.driver.carry_out` has a driver carry the actions out
and reports back through :meth:`Policy.rollback_done`.

Resource verdicts (about ``sys/*`` signals: memory, throughput) are a channel of their own: they
leave the training's state alone (a leak does not make the weights unstable), are reported once
while they last, and a resource alarm never rolls back (that frees no memory): per
``memory.action`` it alerts, saves a resumable checkpoint (:class:`SaveResume`), or saves one and
stops with a restartable :class:`Stop` that ``watchdog run`` restarts from it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Callable

from watchdog.config import WatchdogConfig
from watchdog.detectors import Verdict
from watchdog.driver import StableRegistry
from watchdog.onset import Onset
from watchdog.signals import CRITIC_GRAD_NORM, STD_CLIMB_KEYS, SYS_PREFIX, VALUE_LOSS, MetricRecord


class State(str, Enum):
    HEALTHY = "healthy"
    WARNING = "warning"
    DIVERGED = "diverged"
    ROLLED_BACK = "rolled_back"
    STOPPED = "stopped"


# Numeric codes for the `watchdog/state` TensorBoard scalar.
STATE_CODES = {State.HEALTHY: 0, State.WARNING: 1, State.DIVERGED: 2, State.ROLLED_BACK: 3, State.STOPPED: 4}


@dataclass(frozen=True)
class CheckpointRef:
    """A stable checkpoint the driver saved: where to go back to."""

    tag: str
    iteration: int
    env_steps: int
    path: str | None = None


@dataclass(frozen=True)
class SaveStable:
    """Action: snapshot the training state now and call ``Watchdog.checkpoint_saved``."""

    iteration: int
    env_steps: int

    @property
    def tag(self) -> str:
        """The checkpoint's name, live and in replay: ``stable_<env_steps>_steps``."""
        return f"stable_{self.env_steps}_steps"


@dataclass(frozen=True)
class Rollback:
    """Action: restore ``target`` in place, switch to the safe config scaled by ``lr_scale``."""

    target: CheckpointRef
    onset: Onset
    from_iteration: int
    from_env_steps: int
    number: int
    lr_scale: float
    alarm: Verdict
    passed_over: int | None = None  # the iteration of a restored checkpoint this rollback goes back past
    unreadable: tuple[str, ...] = ()  # newer targets the driver could not read ("path: why"), passed over


@dataclass(frozen=True)
class Stop:
    """Action: stop training now, with a final report; the run exits non-zero. ``restartable``: the
    process should be restarted from its newest checkpoint (a resource stop), not given up on."""

    reason: str
    iteration: int
    restartable: bool = False


@dataclass(frozen=True)
class SaveResume:
    """Action: save a checkpoint to resume the run from now (a resource alarm), then
    ``Watchdog.resume_saved``. ``stable``: the training was healthy, so it is a stable checkpoint
    too (a rollback or restart target); otherwise the newest stable one stays the restart point."""

    iteration: int
    env_steps: int
    reason: str
    stable: bool

    @property
    def tag(self) -> str:
        """``stable_<env_steps>_steps`` when stable (one name per checkpoint), else ``resume_<env_steps>_steps``."""
        return f"{'stable' if self.stable else 'resume'}_{self.env_steps}_steps"


@dataclass(frozen=True)
class Distrust:
    """Action (``action: alert``): an alarm the run is not rolled back for dated its onset before some stable
    checkpoints; those (taken after ``after_iteration``, the newest a rollback could have gone back to) are
    stable no more, so a restart after a crash does not resume from a checkpoint inside the divergence. Then
    ``Watchdog.distrusted``."""

    after_iteration: int
    alarm_iteration: int
    detector: str


Action = SaveStable | Rollback | Stop | SaveResume | Distrust
EXACT_ONSET = "exact"  # Onset.method of a first non-finite value with no warning before it
RESTORED_ONSET = "restored"  # Onset.method of a divergence dated at the checkpoint the training was restored to
# advisory warnings that a policy left PPO's trust region: with a reward collapse, divergence
POLICY_CHANGE_DETECTORS = ("entropy_collapse", "entropy_surge", "kl_surge", "surrogate_surge")
Emit = Callable[..., None]
OnsetFn = Callable[[Verdict], Onset]


class Policy:
    """Turns each record's verdicts into actions and events."""

    def __init__(self, cfg: WatchdogConfig):
        self.cfg = cfg
        self.state = State.HEALTHY
        self.rollbacks = 0
        self.quiet_points = 0
        self.last_stable_iteration: int | None = None
        self.cooldown_until = -1
        self.active_warnings: list[str] = []
        # advisory warnings of the current stretch -> (quiet records since, the iteration it was last seen)
        self.advisory_active: dict[str, tuple[int, int]] = {}
        self.registry = StableRegistry(cfg.policy.keep_stable)
        self.last_alarm: dict | None = None
        self.restored_iteration: int | None = None  # the checkpoint the last rollback (or restart) restored
        # reported resource verdict -> quiet points since; this process's, like the resource
        # detectors' state, so neither saved nor restored
        self.resource_active: dict[str, int] = {}

    # --- decisions ------------------------------------------------------------------------------

    def step(self, record: MetricRecord, verdicts: list[Verdict], emit: Emit, onset_fn: OnsetFn) -> list[Action]:
        """One record's verdicts -> actions; events go to ``emit(kind, **fields)``."""
        if self.state is State.STOPPED:
            return []
        if not verdicts and not self.resource_active:  # a quiet record (the common case), in short
            if self.advisory_active:
                self._say_advisory([], record.iteration, emit)
            return self._on_quiet(record, emit)
        resources = [v for v in verdicts if v.signal.startswith(SYS_PREFIX)]
        training = [v for v in verdicts if not v.signal.startswith(SYS_PREFIX)]
        return self._on_resources(record, resources, self._judge_training(record, training, emit, onset_fn), emit)

    def _judge_training(self, record: MetricRecord, verdicts: list[Verdict], emit: Emit,
                        onset_fn: OnsetFn) -> list[Action]:
        """The divergence state machine: verdicts about the learning -> actions."""
        alarms = [v for v in verdicts if v.level == "alarm"]
        warnings = [v for v in verdicts if v.level == "warning"]
        corroborated = self._corroborated(warnings)
        if corroborated is not None:
            alarms.append(corroborated)
        if alarms:
            return self._on_alarm(record, alarms[0], emit, onset_fn)
        standing = [v for v in warnings if not v.advisory]
        self._say_advisory([v for v in warnings if v.advisory], record.iteration, emit)
        if standing:
            self._on_warnings(standing, emit)
            return []
        return self._on_quiet(record, emit)

    def _say_advisory(self, warnings: list[Verdict], iteration: int, emit: Emit) -> None:
        """Advisory warnings (a trend that cannot alarm alone) are said once per stretch; the state and the stable
        checkpoints are theirs to leave alone. A stretch ends once the warning has been absent for
        ``recover_points`` records and ``advisory_quiet_iters`` iterations (or the iterations went back: a rollback
        or a resume), so a fall that comes and goes at its rule's limit is said once, not at every dip (until
        session 25 a stretch ended after the records alone: ten advisories in 250 updates of a long skrl run)."""
        seen = {_warning_key(v): v for v in warnings}
        for key, v in seen.items():
            if key not in self.advisory_active:
                emit("warning", detector=v.detector, signal=v.signal, value=v.value, threshold=v.threshold,
                     reason=v.reason, onset_iteration=v.onset_hint, advisory=True)
            self.advisory_active[key] = (0, iteration)
        pol = self.cfg.policy
        for key in [k for k in self.advisory_active if k not in seen]:
            quiet, last = self.advisory_active[key]
            quiet += 1
            if quiet >= pol.recover_points and not 0 <= iteration - last < pol.advisory_quiet_iters:
                del self.advisory_active[key]
            else:
                self.advisory_active[key] = (quiet, last)

    def _on_resources(self, record: MetricRecord, verdicts: list[Verdict], actions: list[Action],
                      emit: Emit) -> list[Action]:
        """Report new resource verdicts once; a new alarm saves a resumable checkpoint and/or stops
        (``memory.action``), never rolls back. A key is forgotten after ``recover_points`` quiet points."""
        current = {f"{_warning_key(v)}:{v.level}": v for v in verdicts}
        for key in list(self.resource_active):
            self.resource_active[key] = 0 if key in current else self.resource_active[key] + 1
            if self.resource_active[key] >= self.cfg.policy.recover_points:
                del self.resource_active[key]
        new = [(k, v) for k, v in current.items() if k not in self.resource_active]
        alarm = None
        for key, v in new:
            self.resource_active[key] = 0
            emit(v.level, detector=v.detector, signal=v.signal, value=v.value, threshold=v.threshold,
                 reason=v.reason, onset_iteration=v.onset_hint, resource=True)
            alarm = alarm or (v if v.level == "alarm" else None)
        what = self.cfg.memory.action
        if alarm is None or what == "alert" or any(isinstance(a, Stop) for a in actions):
            return actions
        stable = self.state is State.HEALTHY and not any(isinstance(a, Rollback) for a in actions)
        if stable:
            self.last_stable_iteration = record.iteration
        # the resume checkpoint is this iteration's stable one, when the training is healthy
        actions = [a for a in actions if not isinstance(a, SaveStable)]
        actions.append(SaveResume(record.iteration, record.env_steps, alarm.reason, stable))
        if what == "stop":
            actions.append(self._stop(record.iteration, f"{alarm.detector}: {alarm.reason}", emit, restartable=True))
        return actions

    def _corroborated(self, warnings: list[Verdict]) -> Verdict | None:
        """Several different detectors warning at once is divergence too (when configured); so is a
        reward collapse while the policy's entropy has collapsed or surged or its KL per update surged
        (``policy_collapse``, always), and a climbing value loss (or critic grad norm) while the reward
        collapses (``reward_corroborates``)."""
        if not warnings:
            return None
        need = self.cfg.policy.corroboration
        names = {_warning_key(v) for v in warnings}
        if need and len(names) >= need:
            first = warnings[0]
            return Verdict("corroboration", "alarm", first.signal, first.value, first.threshold,
                           f"{len(names)} detectors warn at once: {', '.join(sorted(names))}",
                           first.iteration, first.env_steps,  # (a hint of 0 is a hint: it was the warning's iteration)
                           min(v.iteration if v.onset_hint is None else v.onset_hint for v in warnings))
        reward = next((v for v in warnings if v.detector == "reward_collapse"), None)
        if reward is None:
            return None
        changes = [v for v in warnings if v.detector in POLICY_CHANGE_DETECTORS]
        if changes:
            policy = min(changes, key=lambda v: v.iteration if v.onset_hint is None else v.onset_hint)
            # a policy pushed out of PPO's trust region (made near-deterministic, its noise running
            # away, or moved by far more than its usual KL per update), and the reward falling with
            # it: dated by whichever came first (the policy's change, as a rule: the returns follow
            # once the worse policy has acted)
            return Verdict("policy_collapse", "alarm", policy.signal, policy.value, policy.threshold,
                           f"the reward collapses ({reward.reason}) after the {policy.reason}",
                           reward.iteration, reward.env_steps,
                           min(h for h in (policy.onset_hint, reward.onset_hint, reward.iteration) if h is not None))
        if self.cfg.policy.reward_corroborates:
            value = next((v for v in warnings if v.signal in (VALUE_LOSS, CRITIC_GRAD_NORM)), None)
            if value is not None:
                # dated by the reward: the value loss also climbs while a policy learns, so its
                # climb may have begun long before the trouble did
                return Verdict("corroboration", "alarm", reward.signal, reward.value, reward.threshold,
                               f"the reward collapses ({reward.reason}) while {value.reason}",
                               reward.iteration, reward.env_steps, reward.onset_hint)
        return None

    def _on_alarm(self, record: MetricRecord, alarm: Verdict, emit: Emit, onset_fn: OnsetFn) -> list[Action]:
        if self.state is State.DIVERGED and self.cfg.action == "alert":
            self.quiet_points = 0
            return []  # already reported; alert-only mode keeps watching
        in_cooldown = self.state is State.ROLLED_BACK  # a rollback's trajectory that has not yet recovered
        self.state = State.DIVERGED
        self.quiet_points = 0
        onset = onset_fn(alarm)
        self.last_alarm = {"iteration": record.iteration, "env_steps": record.env_steps, "detector": alarm.detector}
        if (math.isfinite(alarm.value) and math.isfinite(alarm.threshold) and alarm.value != alarm.threshold
                and alarm.signal not in STD_CLIMB_KEYS and not alarm.signal.startswith(SYS_PREFIX)):
            # (not a forecast, policy_std's or memory's: its threshold is where it goes, not a level it crossed)
            # the level that raised it: alert mode is back to healthy only on the other side of it (below)
            self.last_alarm["bar"] = {"signal": alarm.signal, "threshold": alarm.threshold,
                                      "above": alarm.value > alarm.threshold}
        emit("alarm", detector=alarm.detector, signal=alarm.signal, value=alarm.value,
             threshold=alarm.threshold, reason=alarm.reason, onset_iteration=onset.iteration,
             onset_low=onset.low, onset_high=onset.high, onset_method=onset.method)
        if self.cfg.action == "alert":  # reported, not acted on
            return self._distrust(onset, record.iteration, alarm.detector)
        if self.rollbacks >= self.cfg.policy.rollback_budget:
            # (until session 21 the checkpoints after the onset stayed stable: a crash of a process resumed by hand
            # from before them restarted inside the divergence)
            distrust = self._distrust(onset, record.iteration, alarm.detector)
            return [*distrust, self._stop(record.iteration, f"divergence after {self.rollbacks} rollback(s): rollback "
                                                            f"budget ({self.cfg.policy.rollback_budget}) spent", emit)]
        target = self.registry.target_before(self.latest_target_iteration(onset))
        if target is None:  # (an empty registry: nothing to distrust either)
            return [self._stop(record.iteration, "divergence but no stable checkpoint to roll back to", emit)]
        passed_over = None
        if (in_cooldown and alarm.detector == "nonfinite" and self.restored_iteration is not None
                and target.iteration >= self.restored_iteration):
            # NaN/Inf within the cooldown of a restore, at the safe config: the restored weights themselves
            # cannot train (an update before that checkpoint broke them while its numbers still looked
            # finite, as skrl's KL-less lr fault does); going back to them again would fail again
            older = self.registry.target_before(self.restored_iteration - 1)
            if older is not None and older.iteration < self.restored_iteration:
                target, passed_over = older, self.restored_iteration
        self.rollbacks += 1
        scale = self.cfg.policy.escalation_lr_factor ** (self.rollbacks - 1)
        return [Rollback(target, onset, record.iteration, record.env_steps, self.rollbacks, scale, alarm, passed_over)]

    def _on_warnings(self, warnings: list[Verdict], emit: Emit) -> None:
        self.quiet_points = 0
        if self.state is State.HEALTHY:
            self.state = State.WARNING
        for v in warnings:
            key = _warning_key(v)
            if key in self.active_warnings:
                continue
            self.active_warnings.append(key)
            emit("warning", detector=v.detector, signal=v.signal, value=v.value, threshold=v.threshold,
                 reason=v.reason, onset_iteration=v.onset_hint)

    def _on_quiet(self, record: MetricRecord, emit: Emit) -> list[Action]:
        pol = self.cfg.policy
        if self.state in (State.WARNING, State.DIVERGED):
            back = self._back_from_alarm(record)
            self.quiet_points = self.quiet_points + 1 if back else self.quiet_points if back is None else 0
            if self.quiet_points >= pol.recover_points:
                self._recover(record, emit)
        elif self.state is State.ROLLED_BACK:
            # a warning in the restored trajectory needs recover_points quiet points after it, as from HEALTHY (until
            # session 27 the cooldown's end alone recovered, and the next stable checkpoint could follow a warning by
            # one record and become a later rollback's target)
            self.quiet_points += 1
            if record.iteration >= self.cooldown_until and (
                    not self.active_warnings or self.quiet_points >= pol.recover_points):
                self._recover(record, emit)
        if self.state is State.HEALTHY and (
            self.last_stable_iteration is None or record.iteration - self.last_stable_iteration >= pol.stable_every_iters
            # iterations gone back (a run resumed into its own log folder): a new trajectory from there, whose first
            # healthy point is stable (the registry lets the abandoned one's newer checkpoints go); until session 19 it
            # kept none until it passed the old trajectory's last, and a rollback in it went to one of that
            or record.iteration < self.last_stable_iteration
        ):
            self.last_stable_iteration = record.iteration
            return [SaveStable(record.iteration, record.env_steps)]
        return []

    def _back_from_alarm(self, record: MetricRecord) -> bool | None:
        """Is a diverged run (an alarm not acted on: alert mode, watch) back on the healthy side of the level that
        raised its alarm? Quiet detectors alone are not recovery: their windows take the diverged level in as the
        run's own, and watch said "back to healthy" 14 points after a value loss blew up a million-fold, which it
        still held (until session 20). A warning, or an alarm without a level (a NaN), recovers on quiet points."""
        bar = (self.last_alarm or {}).get("bar") if self.state is State.DIVERGED else None
        if bar is None:
            return True
        value = record.metrics.get(bar["signal"])
        if value is None:  # not logged this record: no evidence either way (the quiet points neither grow nor reset)
            return None
        if not math.isfinite(value):
            return False
        return value <= bar["threshold"] if bar["above"] else value >= bar["threshold"]

    def _recover(self, record: MetricRecord, emit: Emit) -> None:
        previous = self.state
        self.state = State.HEALTHY
        self.active_warnings = []
        self.quiet_points = 0
        emit("recovered", previous=previous.value)

    def _distrust(self, onset: Onset, alarm_iteration: int, detector: str) -> list[Distrust]:
        """An alarm not rolled back for (alert mode, or a stop): the stable checkpoints after the newest a rollback
        could have gone back to are inside the divergence, no restart point (a ``Distrust``, where there are any)."""
        after = self.latest_target_iteration(onset)
        return [Distrust(after, alarm_iteration, detector)] if any(r.iteration > after for r in self.registry) else []

    def _stop(self, iteration: int, reason: str, emit: Emit, *, restartable: bool = False) -> Stop:
        self.state = State.STOPPED
        emit("stop", reason=reason, rollbacks=self.rollbacks, restartable=restartable)
        return Stop(reason, iteration, restartable)

    def latest_target_iteration(self, onset: Onset) -> int:
        """The newest checkpoint iteration a rollback for ``onset`` may go back to. An onset after the checkpoint the
        last rollback restored keeps that checkpoint within reach: the margin for an estimate's uncertainty never
        takes the target past it (a review of session 29: an onset 5 iterations after the restore went back 10
        further, while one dated at the restore point has the restore point itself)."""
        latest = latest_target_iteration(onset.iteration, onset.method, self.cfg.policy.onset_margin_iters, onset.low)
        restored = self.restored_iteration
        if restored is not None and onset.iteration >= restored > latest:
            return restored
        return latest

    # --- driver feedback ------------------------------------------------------------------------

    def add_stable(self, ref: CheckpointRef) -> list[CheckpointRef]:
        """The driver saved a stable checkpoint; returns the ones retention lets go."""
        return self.registry.add(ref)

    def target_unreadable(self, action: Rollback, why: str, emit: Emit) -> Rollback | list[Action]:
        """The driver could not read ``action.target`` (deleted or damaged on disk since it was saved, and not held in
        memory: a checkpoint of an earlier process): it is no target any more; the next older stable checkpoint is,
        else the run stops, as a divergence with nothing to roll back to does, and the checkpoints after the onset are
        distrusted (the stop's actions). Until session 21 the driver's CheckpointError ended the run as bad input
        (exit 2), and ``watchdog run`` did not restart it."""
        bad = action.target
        self.registry.retain(lambda r: r.tag != bad.tag)
        older = self.registry.target_before(bad.iteration - 1)
        unreadable = (*action.unreadable, why)
        if older is not None and older.iteration < bad.iteration:
            return replace(action, target=older, unreadable=unreadable)
        self.rollbacks -= 1  # this one never happened
        distrust = self._distrust(action.onset, action.from_iteration, action.alarm.detector)
        reason = "divergence, and no readable stable checkpoint to roll back to (" + "; ".join(unreadable) + ")"
        return [*distrust, self._stop(action.from_iteration, reason, emit)]

    def rollback_done(self, action: Rollback, iteration: int) -> list[CheckpointRef]:
        """The driver restored ``action.target``; returns the abandoned stretch's checkpoints."""
        self.state = State.ROLLED_BACK
        self.active_warnings = []
        self.quiet_points = 0
        self.cooldown_until = iteration + self.cfg.policy.cooldown_iters
        self.last_stable_iteration = iteration
        self.restored_iteration = action.target.iteration
        return self.registry.abandon_after(action.target.iteration)

    def distrusted(self, action: Distrust) -> list[CheckpointRef]:
        """``action``'s checkpoints leave the registry (the run is not rolled back: nothing else changes)."""
        return self.registry.abandon_after(action.after_iteration)

    def went_back(self, iteration: int) -> list[CheckpointRef]:
        """Iterations went back to ``iteration`` (a run resumed into its own log folder, a restart from scratch): a
        rollback's cooldown and restore point in the abandoned stretch are none of the trajectory that goes on, nor
        are its stable checkpoints (returned). Until session 29 (a fuzz) a cooldown from the old stretch held the new
        one's stable checkpoints back until it passed the old iteration, and a rollback in between went "back" to
        one of the old stretch's checkpoints, after its alarm."""
        self.cooldown_until = min(self.cooldown_until, iteration)
        if self.restored_iteration is not None and self.restored_iteration >= iteration:
            self.restored_iteration = None
        return self.registry.abandon_after(iteration - 1)

    def resumed(self, ref: CheckpointRef | None, iteration: int, recoveries: int) -> None:
        """A new process continues this run at ``iteration`` from ``ref`` (a stable checkpoint, or
        None); ``recoveries`` (rollbacks + restarts in the run's event log) share one budget."""
        self.rollbacks = max(self.rollbacks, recoveries)
        self.last_stable_iteration = None if ref is None else ref.iteration
        if ref is not None:
            self.registry.add(ref)
        if self.state is State.STOPPED:
            self.state = State.HEALTHY

    # --- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "state": self.state.value,
            "rollbacks": self.rollbacks,
            "quiet_points": self.quiet_points,
            "last_stable_iteration": self.last_stable_iteration,
            "cooldown_until": self.cooldown_until,
            "active_warnings": list(self.active_warnings),
            "advisory_active": dict(self.advisory_active),
            "stable": self.registry.state_dict(),
            "last_alarm": copy.deepcopy(self.last_alarm),
            "restored_iteration": self.restored_iteration,
        }

    def load_state_dict(self, state: dict) -> None:
        self.state = State(state["state"])
        self.rollbacks = int(state["rollbacks"])
        self.quiet_points = int(state["quiet_points"])
        self.last_stable_iteration = state["last_stable_iteration"]
        self.cooldown_until = int(state["cooldown_until"])
        self.active_warnings = list(state["active_warnings"])
        # (a state saved before session 25 holds the quiet records alone: the stretch then ends on them)
        self.advisory_active = {str(k): (int(v), -10**12) if isinstance(v, int) else (int(v[0]), int(v[1]))
                                for k, v in state.get("advisory_active", {}).items()}
        self.registry.load_state_dict(state["stable"])
        self.last_alarm = copy.deepcopy(state.get("last_alarm"))
        self.restored_iteration = state.get("restored_iteration")


def latest_target_iteration(onset_iteration: int, method: str | None, margin_iters: int,
                            low: int | None = None) -> int:
    """The newest checkpoint iteration that may stand for the state before an onset (live rollback
    and replay's recommendation alike). A checkpoint of iteration ``i`` holds the state after
    update ``i``. Before an exact onset (a first NaN out of a quiet run) is enough; an estimated one
    is uncertain, so the checkpoint must be at least ``margin_iters`` before it *and* before the
    low end of its plausible range (``low``: the fit's 95 % profile range). A divergence dated at
    the checkpoint a rollback restored (it began with the trajectory that went on from there) has
    that checkpoint as its target: the same one again, at the next rollback's learning rates."""
    if method == EXACT_ONSET:
        return onset_iteration - 1
    if method == RESTORED_ONSET:  # the trajectory began at that checkpoint: nothing before it is part of it
        return onset_iteration
    latest = onset_iteration - max(1, margin_iters)
    return latest if low is None else min(latest, low - 1)


def _warning_key(v: Verdict) -> str:
    return f"{v.detector}:{v.signal}"
