"""The watchdog pipeline: records -> detectors -> policy -> actions + events.

Live training (``openrl_ws``) and replay (``watchdog.replay``) are two drivers of this one class,
so replay predicts exactly what a live watchdog with the same config would do.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import deque
from pathlib import Path
from typing import Any, Callable, Collection, Iterable

from watchdog.config import CurriculumConfig, WatchdogConfig
from watchdog.detectors import Detector, Verdict, build_detectors, detector_key, median3, quantile
from watchdog.driver import ConfigSwitch
from watchdog.eventlog import make_event
from watchdog.onset import Onset, estimate_onset, log_badness
from watchdog.policy import EXACT_ONSET, RESTORED_ONSET, Action, CheckpointRef, Distrust, Policy, Rollback, SaveResume, State
from watchdog.signals import CURRICULUM_PREFIX, POLICY_LOSS, STD_CLIMB_KEYS, STEP_REWARD, VALUE_LOSS, MetricRecord

log = logging.getLogger(__name__)

Listener = Callable[[dict], None]
HISTORY_POINTS = 1024
MIN_ONSET_WINDOW = 40
ONSET_LOOKBACK_ITERS = 50
MAX_FIT_POINTS = 80
DEFERRED_SNAPSHOT_RECORDS = 200  # deferred snapshots: a copy of the detectors' state at least this often


def _build(cfg: WatchdogConfig, keys: Collection[str] | None) -> list[Detector]:
    """The enabled detectors, less those that read none of ``keys`` (when given)."""
    detectors = build_detectors(cfg)
    return detectors if keys is None else [d for d in detectors if any(k in keys for k in d.reads())]


def _feed(detectors: list[Detector], record: MetricRecord, cfg: WatchdogConfig, keys: Collection[str] | None,
          task_changed: bool) -> list[Verdict]:
    """One record to every detector (the task-scaled ones built afresh first where the task took a step
    at this record); their verdicts."""
    if task_changed:
        _start_over(detectors, cfg, keys)
    verdicts = []
    for detector in detectors:
        verdict = detector.update(record)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts


def _start_over(detectors: list[Detector], cfg: WatchdogConfig, keys: Collection[str] | None,
                scaled: Callable[[Detector], bool] = lambda d: d.task_scaled) -> None:
    """The ``scaled`` detectors (default: the task-scaled ones) as built (in place, in the same order)."""
    fresh = _build(cfg, keys)
    for i, detector in enumerate(detectors):
        if scaled(detector):
            detectors[i] = fresh[i]


class TaskChanges:
    """Staged changes of the task: a curriculum term the run logs (``curriculum/<term>``) that held one value
    for ``still_iters`` iterations and then took another (Isaac Lab's ``modify_reward_weight``: a reward
    weight switched after a number of steps; a config switched at a set time). A term that moves every
    record (a mean terrain level) never holds a value, so it never takes a step: a slow curriculum is
    the run's own drift, which the detectors' baselines follow. Steps are at least ``still_iters`` (a
    warm-up) apart, so the detectors that start over judge between them."""

    def __init__(self, cfg: CurriculumConfig, keys: Collection[str] | None):
        self.cfg = cfg
        # the run's curriculum keys when known in advance (replay: most runs have none), else looked up per record
        self.keys = None if keys is None else tuple(k for k in keys if k.startswith(CURRICULUM_PREFIX))
        self.terms: dict[str, list] = {}  # key -> [value, the iteration it took it]

    def step(self, record: MetricRecord) -> str | None:
        """What changed at this record (a step of one or more terms), else None."""
        if not self.cfg.enabled or self.keys == ():
            return None
        metrics = record.metrics
        keys = self.keys if self.keys is not None else [k for k in metrics if k.startswith(CURRICULUM_PREFIX)]
        steps = []
        for key in keys:
            value = metrics.get(key)
            if value is None or not math.isfinite(value):
                continue
            term = self.terms.get(key)
            if term is None:
                self.terms[key] = [value, record.iteration]
            elif value != term[0]:
                held = record.iteration - term[1]
                if held >= self.cfg.still_iters:
                    steps.append(f"{key[len(CURRICULUM_PREFIX):]} {term[0]:.4g} -> {value:.4g} (held {held} iterations)")
                term[0], term[1] = value, record.iteration
        return "; ".join(steps) or None

    def state_dict(self) -> dict:
        return {key: list(term) for key, term in self.terms.items()}

    def load_state_dict(self, state: dict) -> None:
        self.terms = {str(key): [float(value), int(since)] for key, (value, since) in state.items()}


def _detectors_state(detectors: list[Detector]) -> dict:
    return {detector_key(d): d.state_dict() for d in detectors}


def _load_detectors_state(detectors: list[Detector], state: dict) -> None:
    for d in detectors:
        if detector_key(d) in state:
            d.load_state_dict(state[detector_key(d)])


class DeferredSnapshot:
    """A stable checkpoint's detector state, described instead of copied: the detectors as built,
    loaded with ``anchor`` (an earlier copy; None: none) and fed ``records``, the task-scaled ones
    started over at the positions in ``changes`` (the task's staged steps). :meth:`state` takes it,
    once, when something needs it (a rollback to its checkpoint, :meth:`Watchdog.state_dict`).

    Exact: between copies, detectors are fed nothing but records and started over at task changes
    (their state is a fold of the records over the state they were loaded with), and
    ``state_dict``/``load_state_dict`` round-trip everything that decides a later ``state_dict``. So
    the same detectors fed the same records from the same anchor, started over at the same places,
    are in the state the live ones were in when the checkpoint was saved. (A rollback's start-over
    loads state, so the next snapshot after it is a copy.)
    """

    __slots__ = ("_cfg", "_keys", "_anchor", "_records", "_count", "_changes", "_state")

    def __init__(self, cfg: WatchdogConfig, keys: Collection[str] | None, anchor: dict | None,
                 records: list[MetricRecord], count: int, changes: list[int]):
        self._cfg, self._keys, self._anchor = cfg, keys, anchor
        self._records, self._count = records, count  # the first ``count`` (the list grows after)
        self._changes = changes  # positions in ``records`` where the task took a step (the list grows after)
        self._state: dict | None = None

    def state(self) -> dict:
        if self._state is None:
            detectors = _build(self._cfg, self._keys)
            if self._anchor is not None:
                _load_detectors_state(detectors, self._anchor)
            changes = {i for i in self._changes if i < self._count}
            for i, record in enumerate(self._records[: self._count]):
                _feed(detectors, record, self._cfg, self._keys, i in changes)
            self._state = _detectors_state(detectors)
            self._anchor = self._records = self._changes = None
        return self._state


def _taken(snapshot: dict | DeferredSnapshot) -> dict:
    return snapshot.state() if isinstance(snapshot, DeferredSnapshot) else snapshot


class Watchdog:
    """Feed one :class:`MetricRecord` per PPO iteration to :meth:`observe`; carry out its actions."""

    def __init__(self, cfg: WatchdogConfig | None = None, *, listeners: Iterable[Listener] = (),
                 keys: Collection[str] | None = None, defer_snapshots: bool = False):
        """``keys``: every metric key the records will carry, when known in advance (replay knows its
        run). A detector that reads none of them would see nothing (no point, no state, no verdict), so
        it is left out: the same verdicts, actions and events, fewer calls per record.

        ``defer_snapshots``: a stable checkpoint's detector snapshot is a :class:`DeferredSnapshot`
        (the records since the last copy) and a copy is taken every
        ``DEFERRED_SNAPSHOT_RECORDS`` records only: for replay, where retention lets most
        checkpoints go unused. A live run saves the watchdog's state with each checkpoint, so it
        copies them as they come (the default)."""
        self.cfg = cfg or WatchdogConfig()
        self.keys = None if keys is None else frozenset(keys)
        self.detectors: list[Detector] = _build(self.cfg, keys)
        self.policy = Policy(self.cfg)
        self.history: deque[MetricRecord] = deque(maxlen=HISTORY_POINTS)
        self.listeners: list[Listener] = list(listeners)
        self.detector_snapshots: dict[str, dict | DeferredSnapshot] = {}
        self.defer_snapshots = defer_snapshots
        # deferred snapshots: the detectors are ``_anchor`` (None: as built) fed ``_fed``; None: not known
        self._anchor: dict | None = None
        self._fed: list[MetricRecord] | None = [] if defer_snapshots else None
        self._fed_changes: list[int] = []  # positions in ``_fed`` where the task took a step
        self.last_record: MetricRecord | None = None
        self.last_verdicts: list[Verdict] = []
        self._new_process = False  # the next record is a new process's (replay: a second start event, new_process)
        self.task_changes = TaskChanges(self.cfg.curriculum, keys)
        self.last_task_change: int | None = None  # the iteration of the task's newest step

    @property
    def restored_at(self) -> int | None:
        """The checkpoint the training now continues from after a rollback or a restart (None: none yet): the history
        holds only its trajectory, no later onset is dated before it, and no later rollback goes past it for an
        estimate's margin. The policy's state (until session 30 the pipeline kept its own copy, which a restart set
        and the policy's did not)."""
        return self.policy.restored_iteration

    @restored_at.setter
    def restored_at(self, iteration: int | None) -> None:
        self.policy.restored_iteration = iteration

    @property
    def state(self) -> State:
        return self.policy.state

    # --- events ---------------------------------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        """Send one event (with iteration, steps and state filled in) to every listener."""
        rec = self.last_record
        obj = make_event(event, iteration=rec.iteration if rec else 0, env_steps=rec.env_steps if rec else 0,
                         state=self.state.value, **fields)
        for listener in self.listeners:
            try:
                listener(obj)
            except Exception:  # a broken sink must not take training down
                log.exception("event listener failed on %s", event)

    def start(self, **info: Any) -> None:
        self.emit("start", config=self.cfg.model_dump(), **info)

    def end(self, **info: Any) -> None:
        self.emit("end", rollbacks=self.policy.rollbacks, **info)

    # --- the loop -------------------------------------------------------------------------------

    def observe(self, record: MetricRecord) -> list[Action]:
        """Judge one iteration; returns the actions the driver must carry out now."""
        if self.last_record is not None and record.iteration < self.last_record.iteration:
            self._went_back(record.iteration)
        self.last_record = record
        self.history.append(record)
        if self._fed is not None:
            self._fed.append(record)
        change = self.task_changes.step(record)
        if change is not None:
            self.last_task_change = record.iteration
            if self._fed is not None:
                self._fed_changes.append(len(self._fed) - 1)
            # (named: those that had judged a point of the old task; the others have nothing to forget)
            self.emit("task_change", change=change,
                      restarted=[detector_key(d) for d in self.detectors if d.task_scaled and d.points])
        if self._new_process:  # (after _went_back: the resumed trajectory's detectors, but this process's resources)
            self._new_process = False
            self._start_over(lambda d: d.process_scaled)
        verdicts = _feed(self.detectors, record, self.cfg, self.keys, change is not None)
        self.last_verdicts = verdicts
        return self.policy.step(record, verdicts, self.emit, self.estimate_onset)

    def _went_back(self, iteration: int) -> None:
        """Iterations gone back (a run resumed into its own log folder from an earlier checkpoint, a restart from
        scratch): the stretch after ``iteration`` leaves the history, and the detectors are as they were when the
        trajectory that goes on was there: this watchdog's own copy at the newest stable checkpoint before it, or as
        built, fed the history's records up to it. Until session 20 they judged the resumed stretch against
        windows that held the abandoned stretch's later points (a preempted run resumed from its last checkpoint
        held each point twice; one resumed from before a divergence, the divergence)."""
        while self.history and self.history[-1].iteration >= iteration:
            self.history.pop()
        self._drop_snapshots(self.policy.went_back(iteration))  # (its restore point, too, if the stretch held it)
        refs = [r for r in self.policy.registry if r.iteration < iteration and r.tag in self.detector_snapshots]
        ref = max(refs, key=lambda r: r.iteration, default=None)
        if ref is not None and (not self.history or self.history[0].iteration <= ref.iteration):
            self.load_detectors_state(_taken(self.detector_snapshots[ref.tag]))
            since = ref.iteration
        else:
            self._start_over(lambda d: True)
            since = -1
        for record in self.history:
            if record.iteration > since:
                _feed(self.detectors, record, self.cfg, self.keys, False)

    def checkpoint_saved(self, ref: CheckpointRef) -> list[CheckpointRef]:
        """The driver saved a stable checkpoint; returns the ones retention lets go."""
        self.detector_snapshots[ref.tag] = self._snapshot()
        evicted = self.policy.add_stable(ref)
        self._drop_snapshots(evicted)
        self.emit("stable_checkpoint", checkpoint=ref.path or ref.tag, checkpoint_iteration=ref.iteration)
        return evicted

    def distrusted(self, action: Distrust) -> list[CheckpointRef]:
        """An alarm not rolled back for (alert mode, or a stop) dated its onset before some stable checkpoints: they are
        stable no more (a ``distrust`` event); returns them, for the driver to mark on disk."""
        dropped = self.policy.distrusted(action)
        self._drop_snapshots(dropped)
        self.emit("distrust", alarm_iteration=action.alarm_iteration, detector=action.detector,
                  after_iteration=action.after_iteration, checkpoints=[r.path or r.tag for r in dropped])
        return dropped

    def resume_saved(self, action: SaveResume, path: str | None) -> list[CheckpointRef]:
        """The driver saved a resumable checkpoint (a resource alarm): a stable one when the training
        was healthy; returns the checkpoints retention lets go."""
        evicted = []
        if action.stable:
            evicted = self.checkpoint_saved(CheckpointRef(action.tag, action.iteration, action.env_steps, path))
        self.emit("resume_checkpoint", checkpoint=path or action.tag, checkpoint_iteration=action.iteration,
                  stable=action.stable, reason=action.reason)
        return evicted

    def target_unreadable(self, action: Rollback, error: Exception) -> Rollback | list[Action]:
        """The driver could not read ``action.target`` (``error`` names it): the rollback goes to the next older stable
        checkpoint, or the run stops (``Policy.target_unreadable``)."""
        self._drop_snapshots([action.target])
        return self.policy.target_unreadable(action, str(error), self.emit)

    def rolled_back(self, action: Rollback, switch: ConfigSwitch, *, config_name: str) -> list[CheckpointRef]:
        """The driver restored ``action.target`` and applied the safe config: log it, re-arm.
        Returns the checkpoints of the abandoned stretch (after the target)."""
        target = action.target
        snapshot = self.detector_snapshots.get(target.tag)
        if snapshot is not None:
            self.load_detectors_state(_taken(snapshot))
            if self.last_task_change is not None and self.last_task_change > target.iteration:
                # the checkpoint's policy goes on in the task as it is now, not as it was then
                self._start_over(lambda d: d.task_scaled)
        abandoned = self.policy.rollback_done(action, self.last_record.iteration if self.last_record else 0)
        self._drop_snapshots(abandoned)
        # the abandoned stretch is no part of the trajectory that goes on from the target
        while self.history and self.history[-1].iteration > target.iteration:
            self.history.pop()
        self.emit("rollback", from_iteration=action.from_iteration, to_iteration=target.iteration,
                  to_env_steps=target.env_steps, checkpoint=target.path or target.tag, config=config_name,
                  onset_iteration=action.onset.iteration, number=action.number, lr_scale=action.lr_scale,
                  abandoned=[r.path or r.tag for r in abandoned],
                  **({} if action.passed_over is None else {"passed_over": action.passed_over}),
                  **({"unreadable": list(action.unreadable)} if action.unreadable else {}))
        self.config_switched(switch, config_name=config_name)
        self.last_record = MetricRecord.from_mapping(target.iteration, target.env_steps, {})  # where the run stands
        return abandoned

    def config_switched(self, switch: ConfigSwitch, *, config_name: str) -> None:
        """The driver switched the live trainer to the safe config (after a rollback, or in a restarted process)."""
        self._start_over(lambda d: d.config_scaled)  # the run's speed is another now
        if switch.changes or switch.kept:
            self.emit("config_switch", config=config_name,
                      changes={k: {"old": old, "new": new} for k, (old, new) in switch.changes.items()},
                      kept=dict(switch.kept))

    def resumed(self, ref: CheckpointRef | None, record_iteration: int, *, recoveries: int = 0) -> None:
        """This process continues a run: ``load_state_dict`` first (when the checkpoint carried the
        watchdog's state), then this registers ``ref`` and the run's recoveries so far."""
        self.policy.resumed(ref, record_iteration, recoveries)
        if ref is not None:
            self.detector_snapshots.setdefault(ref.tag, self.detectors_state())

    def new_process(self) -> None:
        """Replay: the next record is a new process's (a run resumed by hand into its own folder, train.py
        --checkpoint: a second start event, no restart event). Its memory and speed are its own, as live (the
        process-scaled detectors keep no state in a checkpoint): until session 29 replay judged its throughput
        against the first process's rate."""
        self._new_process = True

    def restart_replayed(self, event: dict, recovery: bool) -> None:
        """Replay of a restart ``watchdog run`` made (its event in the run's log, before the restarted process's
        records): that process went on with the watchdog as it was at the checkpoint it resumed from, the restart
        counted among the run's recoveries (``recovery``: not after a resource stop). The detectors come back from
        this watchdog's own copy of that checkpoint (replay keeps its stable checkpoints where the live run did, by
        the same name), and the stretch after it is no part of the trajectory that goes on; a restart from scratch
        or from a checkpoint replay did not keep counts the recovery only. (Until session 17 replay fed the restarted
        process's records to the crashed one's detectors: another onset, rollback target and escalation than live.)"""
        self.emit("restart", **{k: v for k, v in event.items() if k not in ("time", "event", "iteration", "env_steps",
                                                                             "state")})
        tag = Path(event["checkpoint"]).name if event.get("checkpoint") else None
        ref = next((r for r in self.policy.registry if r.tag == tag), None)
        snapshot = self.detector_snapshots.get(tag) if ref is not None else None
        if snapshot is not None:
            self.load_detectors_state(_taken(snapshot))
            self._drop_snapshots(self.policy.registry.abandon_after(ref.iteration))
            self.restored_at = ref.iteration  # a rollback across processes
            self.last_record = MetricRecord.from_mapping(ref.iteration, ref.env_steps, {})
        self.history.clear()  # a new process keeps no history (state_dict leaves it out): its onset fits see the same
        self._start_over(lambda d: d.process_scaled)  # its memory and speed are its own
        policy = self.policy
        policy.state, policy.active_warnings, policy.quiet_points = State.HEALTHY, [], 0  # as at a stable checkpoint
        policy.resumed(ref if snapshot is not None else None, (ref.iteration if ref else event.get("iteration", 0)) + 1,
                       policy.rollbacks + recovery)

    def _start_over(self, scaled: Callable[[Detector], bool]) -> None:
        """The ``scaled`` detectors as built, outside the record stream (a config switch, a replayed restart):
        not a fold of records any more, so the next snapshot is a copy."""
        _start_over(self.detectors, self.cfg, self.keys, scaled)
        if self.defer_snapshots:
            self._fed = None

    def _snapshot(self) -> dict | DeferredSnapshot:
        """The detectors' state for a stable checkpoint: a copy, or (deferred) how to get one."""
        fed = self._fed
        if fed is not None and len(fed) < DEFERRED_SNAPSHOT_RECORDS:
            return DeferredSnapshot(self.cfg, self.keys, self._anchor, fed, len(fed), self._fed_changes)
        state = self.detectors_state()
        if self.defer_snapshots:  # the next deferred ones start from this copy
            self._anchor, self._fed, self._fed_changes = state, [], []
        return state

    def _drop_snapshots(self, refs: list[CheckpointRef]) -> None:
        for ref in refs:
            self.detector_snapshots.pop(ref.tag, None)

    # --- onset ----------------------------------------------------------------------------------

    def estimate_onset(self, alarm: Verdict) -> Onset:
        """Where the trouble behind ``alarm`` began, from the recent history.

        The earliest hint among this record's verdicts (a trend warning's last quiet point often
        precedes the threshold's first crossing by far) decides how far back the fit looks.
        """
        # a std climb's onset says nothing about where a value-loss divergence began (and vice versa)
        hints = [v.onset_hint for v in self.last_verdicts if v.onset_hint is not None
                 and (v.signal in STD_CLIMB_KEYS) == (alarm.signal in STD_CLIMB_KEYS)]
        history = list(self.history)
        began = [d.first_iteration for d in self.detectors if d.first_iteration is not None]
        judged_from = min(began) + self.cfg.warmup.min_iters if began else None
        onset = onset_from_history(history, alarm, earliest_hint=min(hints, default=None), not_before=judged_from)
        if (alarm.detector == "nonfinite" and onset.method == "fallback" and onset.iteration == alarm.iteration
                and surrogate_blew_up(history, alarm.iteration, self.cfg.surrogate_surge)):
            # no value-loss rise before the NaN, but the surrogate (policy) loss blew up first: the policy
            # left its trust region (ratios far beyond the clip on negative advantages); dated on its size
            onset = onset_from_history(history, alarm, key=POLICY_LOSS)
        if alarm.detector == "nonfinite" and onset.method == "fallback" and onset.iteration == alarm.iteration:
            # NaN/Inf out of finite numbers that show no rise before it (a bad batch, not a slow
            # climb): it began exactly here
            return Onset(alarm.iteration, alarm.iteration, alarm.iteration, EXACT_ONSET)
        floor = self.restored_at
        if floor is not None and onset.iteration <= floor:
            # a divergence after a rollback to ``floor`` belongs to the trajectory that went on from there:
            # dated there at the earliest (not wherever a long fit window finds the run's early dynamics),
            # and then its checkpoint is the target again, at the next rollback's learning rates
            return Onset(floor, floor, max(onset.high, floor), RESTORED_ONSET)
        return onset

    # --- state ----------------------------------------------------------------------------------

    def detectors_state(self) -> dict:
        return _detectors_state(self.detectors)

    def load_detectors_state(self, state: dict) -> None:
        _load_detectors_state(self.detectors, state)
        if self.defer_snapshots:  # not a fold of records any more: the next snapshot is a copy
            self._fed = None

    def state_dict(self) -> dict:
        """Detectors, policy and per-checkpoint detector snapshots (the history is not kept)."""
        return {
            "detectors": self.detectors_state(),
            "policy": self.policy.state_dict(),
            "task_changes": {"terms": self.task_changes.state_dict(), "last": self.last_task_change},
            "detector_snapshots": copy.deepcopy({tag: _taken(s) for tag, s in self.detector_snapshots.items()}),
        }

    def load_state_dict(self, state: dict) -> None:
        self.load_detectors_state(state["detectors"])
        self.policy.load_state_dict(state["policy"])
        changes = state.get("task_changes") or {}  # (a state saved before task changes were tracked: none)
        self.task_changes.load_state_dict(changes.get("terms", {}))
        last = changes.get("last")
        self.last_task_change = None if last is None else int(last)
        self.detector_snapshots = copy.deepcopy(state.get("detector_snapshots", {}))
        restored = state.get("restored_at")  # a state saved before session 30 kept it here, a restart's too
        if restored is not None:
            self.restored_at = int(restored)


def onset_from_history(history: list[MetricRecord], alarm: Verdict, *, earliest_hint: int | None = None,
                       key: str | None = None, not_before: int | None = None) -> Onset:
    """Fit the change model to the alarm's signal over a window reaching well before its hint.

    The signal fitted: the reward for a reward alarm, else the log value loss; ``key=POLICY_LOSS``, the
    log of the surrogate loss's size (its blow-up before a NaN).

    The window starts ``ONSET_LOOKBACK_ITERS`` (or twice the hint-to-alarm span) iterations
    before the earliest hint (other detectors' hints count up to ``ONSET_LOOKBACK_ITERS`` before the alarm's own), and holds at least ``MIN_ONSET_WINDOW`` points: a slow climb departs
    from its settled level long after it began. Beyond ``MAX_FIT_POINTS`` points, blocks of
    neighbouring points are merged (their median), so the fit costs the same at any logging rate.
    ``not_before``: where judging began (warm-up over); a hint after it keeps the window there, for the run's
    start-up (a loss falling 2.0 -> 0.0005 in 20 updates) is no history a divergence grew from: a skrl Hopper
    collapse at 164 was dated 21, the bottom of that fall, and rolled back to 10 until session 21.
    """
    fallback = alarm.onset_hint if alarm.onset_hint is not None else alarm.iteration
    reach = fallback
    if earliest_hint is not None:  # another detector's hint, but not from a different era of the run
        reach = max(min(reach, earliest_hint), fallback - ONSET_LOOKBACK_ITERS)
    if alarm.signal in STD_CLIMB_KEYS or alarm.detector in ("policy_collapse", "kl_surge"):
        # a steady climb, an entropy that left its recent range and fell on, or a KL that left its range (the
        # surge's first point above it): the detector knows its onset, and the value loss it did not judge does not
        return Onset(fallback, fallback, alarm.iteration, "detector")
    if key == POLICY_LOSS:
        transform = _log_size
    elif alarm.signal == STEP_REWARD or alarm.signal.startswith("rollout/"):
        key, transform = alarm.signal, _negated
    else:
        key, transform = VALUE_LOSS, log_badness
    # The window ends at the last finite value and starts well before the detector's hint.
    finite = [r for r in history if r.iteration <= alarm.iteration and math.isfinite(r.metrics.get(key, math.nan))]
    if not finite:
        return Onset(fallback, fallback, fallback, "fallback")
    first = reach - max(ONSET_LOOKBACK_ITERS, 2 * (alarm.iteration - reach))
    if not_before is not None and reach >= not_before:
        first = max(first, not_before)
    start = next((i for i, r in enumerate(finite) if r.iteration >= first), len(finite) - 1)
    window = finite[max(0, min(start, len(finite) - MIN_ONSET_WINDOW)):]
    its = [r.iteration for r in window]
    values = transform([r.metrics[key] for r in window])
    its, values = _merge_blocks(its, values, MAX_FIT_POINTS)
    return estimate_onset(its, values, fallback=fallback)


def surrogate_blew_up(history: list[MetricRecord], before: int, surge) -> bool:
    """Did PPO's surrogate (policy) loss blow up just before iteration ``before``? The median size of its
    last 3 finite values at least ``surge.ratio`` x the 95 % quantile of its size over the
    ``surge.baseline_iters`` iterations before them (``surrogate_surge``'s test, on 2 of the last 3
    points: a run's last updates before a NaN may dip once). A loss that only wanders (its log size
    around zero is noisy) does not date a NaN."""
    sizes = [(r.iteration, abs(v)) for r in history if r.iteration < before
             and (v := r.metrics.get(POLICY_LOSS)) is not None and math.isfinite(v)]
    if len(sizes) < 13:
        return False
    last = median3(*(s for _, s in sizes[-3:]))
    since = sizes[-4][0] - surge.baseline_iters
    ranked = sorted(s for it, s in sizes[:-3] if it >= since)
    return len(ranked) >= 10 and last >= surge.ratio * quantile(ranked, 0.95)


def _merge_blocks(its: list[int], values, limit: int, keep: int = 40) -> tuple[list[int], list[float]]:
    """At most ``limit`` points: the newest ``keep`` as they are (a fast climb is all in them), older
    ones merged into blocks (each its first iteration and its median value)."""
    n = len(its)
    if n <= limit:
        return its, list(values)
    head = n - keep
    size = -(-head // (limit - keep))
    out_its, out_vals = [], []
    for hi in range(head, 0, -size):  # blocks end exactly at the kept tail
        lo = max(0, hi - size)
        block = sorted(values[lo:hi])
        out_its.append(its[lo])
        out_vals.append(block[len(block) // 2])
    out_its.reverse()
    out_vals.reverse()
    return out_its + its[head:], out_vals + list(values[head:])


def _negated(values) -> list[float]:
    return [-v for v in values]


def _log_size(values):
    """log |x|: a loss that may take either sign (PPO's surrogate), judged by its size."""
    return log_badness([abs(v) for v in values])
