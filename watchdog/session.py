"""A watched training session: the framework-independent half of every live :class:`~watchdog.driver.Driver`.

OpenRL's hook (``openrl_ws.hook``) and the integrations for other frameworks
(``watchdog.integrations``) subclass :class:`TrainingSession` and fill in four framework methods:

* ``capture(action)`` — the training state now (weights, optimizers, normalisers), as any object;
* ``to_state(snap)`` / ``from_state(state)`` — to and from a plain, weights-only dict for disk;
* ``restore_snapshot(snap, action)`` — put it back in place and restart the rollout;
* ``apply_config(action)`` — switch the live trainer to the safe config (a ``ConfigSwitch``).

Everything else is here, once: feeding records to the watchdog, the event log, the console,
in-memory snapshots plus the checkpoint store on disk (weights-only, verified, fsynced), what a
disk failure means, forgetting and abandoning copies as the library's registry says, stopping,
resumable checkpoints for resource alarms, and (opt-in: ``resources=ResourceSampler(device)``)
the ``sys/*`` resource keys of every record, in the event log and TensorBoard.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from watchdog.checkpoints import CheckpointStore, load_checkpoint
from watchdog.console import recoveries_said
from watchdog.detectors import Verdict
from watchdog.driver import ConfigSwitch, carry_out
from watchdog.errors import NonFiniteTraining, WatchdogError
from watchdog.eventlog import EVENTS_FILENAME, EventLog, make_event
from watchdog.onset import Onset
from watchdog.pipeline import Watchdog
from watchdog.policy import STATE_CODES, CheckpointRef, Rollback, SaveResume, SaveStable, State, Stop
from watchdog.resources import MB, ResourceSampler, held_bytes
from watchdog.signals import (SYS_PREFIX, SYS_WATCHDOG_CUDA_MB, SYS_WATCHDOG_HOST_MB, WATCHDOG_ONSET, WATCHDOG_ROLLBACKS,
                              WATCHDOG_STATE, MetricRecord)
from watchdog.supervise import (RESTART_ENV, RESUME_ENV, RUN_DIR_ENV, count_recoveries, resumes_on_own_config,
                                run_events)

log = logging.getLogger(__name__)

STORE_SUBDIR = ("checkpoints", "watchdog")
Scalar = Callable[[str, float, int], None]  # (tag, value, step) -> TensorBoard


@dataclass
class SessionResult:
    """How the watched run ended."""

    stopped: bool = False
    stop_reason: str = ""
    rollbacks: int = 0  # the run's recoveries so far: this process's rollbacks and those before it (a resumed run)
    recoveries_before: int = 0  # of those, the earlier processes' (rollbacks and restarts)
    iterations: int = 0
    env_steps: int = 0
    final_record: MetricRecord | None = None
    events: list[dict] = field(default_factory=list)
    restartable: bool = False  # a resource stop: restart the process from resume_checkpoint
    resume_checkpoint: str | None = None  # the newest checkpoint saved for a resource alarm

    def recoveries_said(self) -> str:
        """'N rollback(s)' of this process, and the recoveries before it (a resumed run): restarts are not rollbacks."""
        return recoveries_said(self.rollbacks - self.recoveries_before, self.recoveries_before)


def rollback_seed(seed: int, action: Rollback) -> int:
    """The RNG seed after ``action``: new for every rollback, so the restored run does not replay the
    samples that led to the alarm, and the same on every rank and every rerun."""
    return seed + 7919 * action.number + action.from_iteration


def supervised_run_dir(given: str | Path | None) -> Path | None:
    """The run dir ``watchdog run`` gave every attempt (``WATCHDOG_SUPERVISED_RUN_DIR``), else ``given``: the
    attempts of a supervised run share one event log and one checkpoint store, whatever directory the script
    picks (Isaac Lab's train scripts pick a new timestamped one per launch)."""
    supervised = os.environ.get(RUN_DIR_ENV)
    if supervised:
        return Path(supervised)
    return None if given is None else Path(given)


def refuse_resume(what: str, hint: str) -> WatchdogError:
    """The one-line error of a restarted process that cannot resume in place (``what`` says why), after a ``stop``
    event in the supervised run's event log: the exception ends the process with exit 1, and the supervisor
    reads that stop as final instead of restarting the same refusal again."""
    message = f"watchdog run restarted this process to resume from {os.environ.get(RESUME_ENV)}, and {what}"
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir:
        try:
            with EventLog(Path(run_dir) / EVENTS_FILENAME, hold=False) as log:
                log.write(make_event("stop", iteration=-1, env_steps=0, state="stopped", by="watchdog",
                                     reason=f"cannot resume in place: {what}"))
        except OSError:  # the error itself still says it; the supervisor then restarts, and it refuses again
            pass
    return WatchdogError(message, hint=hint)


def resumed_from() -> dict:
    """``{"resumed_from": checkpoint}`` for the start event of a process ``watchdog run`` restarted to resume in place
    (``WATCHDOG_RESUME``), else ``{}``: what the integrations add to their start event."""
    checkpoint = os.environ.get(RESUME_ENV)
    return {"resumed_from": checkpoint} if checkpoint else {}


def restart_rollback(ref: CheckpointRef, number: int, why: str) -> Rollback:
    """A restart as the rollback across processes it is (to ``ref``, the run's recovery ``number``, at the safe
    config's full scale): what a restarted process hands ``restore_snapshot`` and ``apply_config``."""
    it, steps = ref.iteration, ref.env_steps
    return Rollback(target=ref, onset=Onset(it, it, it, "restart"), from_iteration=it + 1, from_env_steps=steps,
                    number=number, lr_scale=1.0,
                    alarm=Verdict("restart", "alarm", "", float("nan"), float("nan"), why, it, steps))


def abandon_after_resume(store_root: Path, iteration: int) -> list[str]:
    """A process resumed a run at ``iteration + 1``: the stable checkpoints on disk after ``iteration`` are of the
    trajectory it abandons (a hand resume from an older checkpoint), stable no more; returns their tags."""
    from watchdog.checkpoints import CheckpointStore

    if not store_root.is_dir():
        return []
    return CheckpointStore(store_root, keep_last=None).abandon_after(
        iteration, reason=f"abandoned by a resume from iteration {iteration}")


def release_freed_memory() -> None:
    """Hand the memory of a dropped snapshot back to the operating system (glibc's ``malloc_trim``; elsewhere
    nothing). Its tensors (a few MiB each) come from the heap, which glibc keeps after a free: without this the
    process's resident memory kept the dropped copies' pages on top of the copies it holds, and the memory
    forecast, which leaves out only the held ones, saw the difference climb for a while."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return None


_MALLOC_TRIM = _malloc_trim()


def reseed(seed: int) -> None:
    """Reseed torch (CPU and CUDA), numpy and random. Environments with their own generators
    (gym's ``np_random``) are not touched; Isaac Gym tasks draw from torch, which this covers."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class TrainingSession:
    """Feeds one record per iteration to the watchdog and carries its actions out on a trainer.

    ``writes_files`` False (a non-zero torchrun rank): memory snapshots only, no event log, no
    console, no disk; rank 0 writes the same checkpoints under the same paths.
    """

    def __init__(self, *, watchdog: Watchdog | None, run_dir: Path, safe_name: str, console: Any = None,
                 scalar: Scalar | None = None, writes_files: bool = True,
                 resources: ResourceSampler | None = None):
        self.watchdog = watchdog
        self.resources = resources  # None: the records get no sys/* keys from this session
        self.run_dir = Path(run_dir)
        self.safe_name = safe_name
        self.console = console
        self.scalar = scalar
        self.writes_files = writes_files
        self.store_root = self.run_dir.joinpath(*STORE_SUBDIR)
        # retention is the library registry's (policy.keep_stable), the same on every rank
        self.store = CheckpointStore(self.store_root, keep_last=None) if writes_files and watchdog else None
        self.snapshots: dict[str, Any] = {}
        self.snapshot_bytes: dict[str, dict[str, int]] = {}  # tag -> bytes by device (measured with a sampler)
        self._writer: ThreadPoolExecutor | None = None  # the disk writes, off the training loop
        self._pending: list[Future] = []
        self._unwritten: list[tuple[str, OSError]] = []
        self.result = SessionResult()
        self._own_lrs: dict[str, float] = {}  # the run's own learning rates, as at its first switch (``own_lr``)
        self._own_lrs_at: dict[str, int] = {}  # the iteration of the checkpoint that first switch restored
        self.events: EventLog | None = None
        if watchdog is not None and writes_files:
            message = getattr(console, "message", None)  # a disk that refuses the log's lines is said there, once
            say = None if message is None else (lambda text: message(f"watchdog: {text}", style="yellow"))
            self.events = EventLog(self.run_dir / EVENTS_FILENAME, say=say)
            watchdog.listeners += [self.events, *([console] if console is not None else []), self.result.events.append]
        elif watchdog is not None:
            watchdog.listeners.append(self.result.events.append)

    def own_lr(self, current: float, key: str = "lr", restored: int | None = None,
               restored_lr: float | None = None) -> float:
        """The run's own learning rate ``key`` as it was at its first switch (``current`` then): what a safe config
        without that learning rate scales. A later rollback can restore a checkpoint saved after an earlier, scaled
        switch, whose lr must not be scaled again (until session 16 in the integrations, session 19 in OpenRL, the
        scales multiplied: x0.5 then x0.25 ran at x0.125). One saved before the first switch (``restored``, the
        iteration of the checkpoint restored, at or before the first switch's) holds the run's own lr of its time
        (``restored_lr``, the restored optimizer's; default ``current``, where the restore put the framework's lr
        back), and the switch stays below that too: an adaptive schedule's older, lower lr (rsl_rl's 1e-5 floor) was
        raised 5.7x by a second rollback until session 27."""
        own = self._own_lrs.setdefault(key, float(current))
        first = self._own_lrs_at.setdefault(key, restored) if restored is not None else self._own_lrs_at.get(key)
        if restored is None or first is None or restored > first:
            return own
        return min(own, float(current if restored_lr is None else restored_lr))

    # --- framework methods (subclasses) ---------------------------------------------------------

    def capture(self, action: SaveStable) -> Any:
        raise NotImplementedError

    def to_state(self, snap: Any) -> dict:
        raise NotImplementedError

    def from_state(self, state: dict) -> Any:
        raise NotImplementedError

    def restore_snapshot(self, snap: Any, action: Rollback) -> None:
        raise NotImplementedError

    def resume_at(self, ref: CheckpointRef) -> None:
        """A restarted process goes on at ``ref``'s next iteration: where a framework's counters drive a schedule the
        config switch fits (rl_games' linear lr), they are set here, after the restore and before the switch. Others
        set theirs in their own loop once ``resume_from_env`` returns."""

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        raise NotImplementedError

    # --- per iteration --------------------------------------------------------------------------

    def with_resources(self, record: MetricRecord) -> MetricRecord:
        """``record`` plus this process's ``sys/*`` keys (once per iteration; a no-op without a sampler
        or when the record has them already). Distributed sessions call it before reducing the record."""
        if self.resources is not None and not any(k.startswith(SYS_PREFIX) for k in record.metrics):
            record.metrics.update(self.resources.sample(record.env_steps))
            record.metrics.update(self.held_mb())
        return record

    def held_mb(self) -> dict[str, float]:
        """The memory this session's in-memory snapshots hold now, as ``sys/watchdog_*_mb``: the memory forecast
        leaves it out of the climb it fits (the copies are bounded by retention; until session 18 their climb was
        forecast as a leak), the logged ``sys/rss_mb`` keeps it."""
        for tag in [t for t in self.snapshot_bytes if t not in self.snapshots]:  # forgotten, abandoned, dropped
            del self.snapshot_bytes[tag]
        held = [self.snapshot_bytes[t] for t in self.snapshots if t in self.snapshot_bytes]
        out = {SYS_WATCHDOG_HOST_MB: sum(b.get("cpu", 0) for b in held) / MB}
        if self.resources.cuda is not None:
            out[SYS_WATCHDOG_CUDA_MB] = sum(b.get(str(self.resources.cuda), 0) for b in held) / MB
        return out

    def observe(self, record: MetricRecord) -> bool:
        """Judge one iteration's record and carry the actions out; False: stop training."""
        record = self.with_resources(record)
        if self._pending:  # the previous checkpoint had a whole iteration to reach the disk
            self.settle()
        self.result.iterations, self.result.env_steps = record.iteration + 1, record.env_steps
        self.result.final_record = record
        if self.watchdog is None:
            return True
        if self.events is not None:
            self.events.write(make_event("metrics", iteration=record.iteration, env_steps=record.env_steps,
                                         state=self.watchdog.state.value, metrics=record.to_dict()["metrics"]))
        actions = self.watchdog.observe(record)
        self.check_agreement(actions)
        keep_going = carry_out(self.watchdog, actions, self, config_name=self.safe_name)
        if self.writes_files:
            self._log_watchdog_scalars(record)
            if self.console is not None:
                # this process's rollbacks, as its closing summary says (it counted the restarts before it: session 18)
                self.console.status(record, self.watchdog.state.value,
                                    self.watchdog.policy.rollbacks - self.result.recoveries_before)
        return keep_going

    def iteration_failed(self, iteration: int, env_steps: int, exc: BaseException, where: str) -> None:
        """A crashed update: one sentence on the console, the full error in the event log (every driver's: the
        integrations logged the raw error on stderr, and nothing reached the event log, until session 18)."""
        event = make_event("iteration_failed", iteration=iteration, env_steps=env_steps,
                           state=self.watchdog.state.value, exception=type(exc).__name__, where=where,
                           error="".join(traceback.format_exception(exc)).rstrip())
        log.info("iteration %d failed with non-finite numbers in the %s: %s", iteration, where, exc)
        if self.events is not None:
            self.events.write(event)
        if self.writes_files and self.console is not None:
            self.console(event)

    def judge_failed(self, judge: Callable[[], bool], where: str, exc: BaseException) -> bool:
        """An iteration that crashed on non-finite numbers (in ``where``), judged by ``judge()`` (which
        feeds its NaN record and returns keep-going). Only a rollback lets training go on; with none
        (``action: alert``) the crash ends the run: :class:`NonFiniteTraining` (exit 3)."""
        rollbacks = self.result.rollbacks
        if self.resources is not None:
            self.resources.interrupted()  # its steps were not all taken: no steps/s from it
        keep_going = judge()
        if keep_going and self.result.rollbacks == rollbacks:
            stopped = self.watchdog is not None and self.watchdog.state is State.STOPPED
            why = ("the watchdog had stopped the run (the training went on past its stop)" if stopped
                   else "the watchdog (action: alert) does not roll back")  # (until session 29 "alert" for both)
            raise NonFiniteTraining(f"non-finite numbers in the {where} and {why}") from exc
        return keep_going

    def check_agreement(self, actions: list) -> None:
        """Distributed sessions check that every rank decided the same (default: one process)."""

    # --- the Driver contract (watchdog.driver) --------------------------------------------------

    def save(self, action: SaveStable, watchdog_state: Callable[[], dict]) -> str | None:
        """Snapshot into memory now and (rank 0) into the store on the writer thread: the fsynced write
        overlaps the next iteration, which waits for it before it is judged. A disk failure keeps
        training on memory (said at the next record)."""
        tag = action.tag
        self.snapshots[tag] = snap = self.capture(action)
        if self.resources is not None:
            self.snapshot_bytes[tag] = held_bytes(snap)
        path = str(self.store_root / tag)
        if self.store is None:  # a non-zero rank: rank 0 writes the same checkpoint under the same path
            return path
        meta = {"iteration": action.iteration, "env_steps": action.env_steps,
                "stable": getattr(action, "stable", True), "watchdog": watchdog_state()}
        if self._own_lrs:  # a restart from it scales the run's own, not this checkpoint's already scaled lr
            meta["own_lrs"], meta["own_lrs_at"] = dict(self._own_lrs), dict(self._own_lrs_at)
        self._on_disk(self._write, tag, self.to_state(snap), meta)
        return path

    def _write(self, tag: str, state: dict, meta: dict) -> None:
        """On the writer thread: one checkpoint, atomically; OSError (disk full, read-only) is noted."""
        try:
            self.store.save(tag, state, meta)
        except OSError as exc:
            self._unwritten.append((tag, exc))
            log.warning("stable checkpoint %s not written: %s", tag, exc)

    def _on_disk(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        """Run a store operation on the one writer thread (in order: a delete never passes its write)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watchdog-checkpoints")
        self._pending.append(self._writer.submit(fn, *args, **kwargs))

    def settle(self) -> None:
        """Wait for the pending disk operations: re-raise a bug, and for a checkpoint that could not
        be written say so and drop its path (rollbacks use the memory copy)."""
        done, self._pending = self._pending, []
        for future in done:
            future.result()  # anything but the OSError _write handles is a bug: raise it here
        while self._unwritten:
            tag, exc = self._unwritten.pop(0)
            if self.watchdog is not None:
                self.watchdog.policy.registry.unwritten(tag)
            self.say(f"watchdog: could not write stable checkpoint {self.store_root / tag}: {exc.strerror or exc}; "
                     "the checkpoints already on disk are intact and rollbacks use the in-memory copy - free "
                     "space or fix permissions to get disk checkpoints again", style="bold red")

    def resume_from_env(self) -> CheckpointRef | None:
        """In a process ``watchdog run`` restarted (``WATCHDOG_RESUME`` names the verified stable checkpoint it
        chose): put that checkpoint in place and continue the run's watchdog, as a rollback across processes.
        The detectors and policy come back as they were at the checkpoint (its ``meta.json``), the stable
        checkpoints still on disk are the rollback targets, the recoveries in the run's event log (rollbacks
        and restarts) share the one budget, and the trainer switches to the safe config (not after a resource
        stop, which the supervisor's restart event says, of a run that never recovered: it was not diverging; one
        that had switched goes on on the safe config, which its weights-only checkpoint does not carry). Returns the
        checkpoint (the framework goes on at ``ref.iteration + 1``), None when the process was not restarted or was
        restarted with no stable checkpoint to resume from (:meth:`_restarted_from_scratch`: it starts at 0).
        A checkpoint that fails verification is a :class:`~watchdog.errors.CheckpointError` (one line, exit 2)."""
        if self.watchdog is None:
            return None
        raw = os.environ.get(RESUME_ENV)
        if not raw:
            if os.environ.get(RESTART_ENV):
                self._restarted_from_scratch()
            return None
        state, meta = load_checkpoint(raw)
        wd = self.watchdog
        if isinstance(meta.get("watchdog"), dict):
            wd.load_state_dict(meta["watchdog"])
            wd.policy.registry.retain(lambda r: r.path is not None and Path(r.path).is_dir())
        # the run's own learning rates (its first switch's), for this and later switches: the checkpoint's optimizer
        # holds an escalated one (x0.5 after a second rollback), which was taken for the run's own until session 21
        # and scaled again (a fourth rollback ran at x0.0625 of the run's lr, not x0.125)
        own, at = meta.get("own_lrs"), meta.get("own_lrs_at")
        if isinstance(own, dict):
            self._own_lrs.update({str(k): float(v) for k, v in own.items() if isinstance(v, (int, float))})
        if isinstance(at, dict):
            self._own_lrs_at.update({str(k): int(v) for k, v in at.items() if isinstance(v, int)})
        iteration, env_steps = int(meta["iteration"]), int(meta["env_steps"])
        ref = CheckpointRef(str(meta.get("tag") or Path(raw).name), iteration, env_steps, str(raw))
        events = run_events(self.run_dir)  # the supervisor's restart event included
        recoveries = count_recoveries(events)
        wd.resumed(ref, iteration + 1, recoveries=recoveries)
        if self.store is not None:
            abandon_after_resume(self.store_root, iteration)
        wd.restored_at = iteration  # a rollback across processes, as replay's restart_replayed dates it
        action = restart_rollback(ref, recoveries, f"the process was restarted by watchdog run from {raw}")
        self.restore_snapshot(self.from_state(state), action)
        self.resume_at(ref)
        self.result.rollbacks = self.result.recoveries_before = recoveries
        self.say(f"watchdog: resumed from stable checkpoint {raw} (iteration {iteration}); recoveries so far "
                 f"{recoveries} (rollbacks and restarts, one budget)", style="bold yellow")
        wd.last_record = MetricRecord.from_mapping(iteration, env_steps, {})  # where the run stands: its events' place
        if not resumes_on_own_config(events):
            wd.config_switched(self.apply_config(action), config_name=self.safe_name)
        return ref

    def _restarted_from_scratch(self) -> None:
        """A process ``watchdog run`` restarted with no stable checkpoint to resume from (the run died before its
        first): it trains from iteration 0 again, as a recovery of the run all the same, as OpenRL's train.py does
        since session 17: the recoveries in the run's event log (this restart included) share the one budget, and
        the trainer switches to the safe config (not where :func:`resumes_on_own_config` says the restart keeps the
        run's own). Until session 27 such a process started afresh: its own config, no recovery counted, so a run
        with a budget of 1 was allowed another rollback after the crash."""
        wd = self.watchdog
        events = run_events(self.run_dir)  # the supervisor's restart event included
        recoveries = count_recoveries(events)
        wd.resumed(None, 0, recoveries=recoveries)
        self.result.rollbacks = self.result.recoveries_before = recoveries
        self.say(f"watchdog: restarted by watchdog run with no stable checkpoint to resume from: training from the "
                 f"start; recoveries so far {recoveries} (rollbacks and restarts, one budget)", style="bold yellow")
        if not resumes_on_own_config(events):
            scratch = CheckpointRef("scratch", -1, 0)  # the state before update 0
            action = restart_rollback(scratch, recoveries, "the process was restarted by watchdog run from scratch")
            wd.config_switched(self.apply_config(action), config_name=self.safe_name)

    def restore(self, action: Rollback) -> None:
        """The target's snapshot from memory (else from disk) back in place."""
        snap = self.snapshots.get(action.target.tag)
        if snap is None:  # e.g. after a resume: the copy on disk (rank 0's; all ranks share run_dir)
            self.settle()
            state, _ = load_checkpoint(action.target.path or self.store_root / action.target.tag)
            snap = self.from_state(state)
        self.restore_snapshot(snap, action)
        self.result.rollbacks = action.number

    def forget(self, ref: CheckpointRef, *, abandoned: bool, reason: str | None = None) -> None:
        """Drop the memory copy; on disk, delete (retention) or mark as abandoned (kept for the record)."""
        if self.snapshots.pop(ref.tag, None) is not None:
            release_freed_memory()
        if self.store is None:
            return
        if abandoned:
            self._on_disk(self.store.mark_unstable, ref.tag,
                          reason=reason or f"abandoned by rollback {self.result.rollbacks}")
            # on disk before training goes on: a crash in the next iteration must not restart from a checkpoint
            # this rollback rejected (`watchdog run` takes the newest one marked stable; until session 16 the mark
            # waited for the next record)
            self.settle()
        else:
            self._on_disk(self.store.delete, ref.tag)

    def stop(self, action: Stop) -> None:
        self.result.stopped, self.result.stop_reason = True, action.reason
        self.result.restartable = action.restartable

    def save_resume(self, action: SaveResume, watchdog_state: Callable[[], dict]) -> str | None:
        """A resumable checkpoint now, in the store's format (what ``--checkpoint`` and ``watchdog run``
        resume from); only a stable one stays in memory as a rollback target."""
        path = self.save(action, watchdog_state)
        self.settle()  # a resume point must be on disk before the run stops
        if self.store is not None and not (self.store_root / action.tag).is_dir():
            path = None
        if not action.stable and self.snapshots.pop(action.tag, None) is not None:
            release_freed_memory()
        self.result.resume_checkpoint = path
        return path

    # --- the rest -------------------------------------------------------------------------------

    def say(self, text: str, style: str | None = None) -> None:
        if self.console is not None and self.writes_files:
            self.console.message(text, style=style)

    def _log_watchdog_scalars(self, record: MetricRecord) -> None:
        if self.scalar is None:
            return
        self.scalar(WATCHDOG_STATE, STATE_CODES[self.watchdog.state], record.env_steps)
        self.scalar(WATCHDOG_ROLLBACKS, self.watchdog.policy.rollbacks, record.env_steps)
        for key, value in record.metrics.items():  # resources: flat tags like the watchdog's own
            if key.startswith(SYS_PREFIX):
                self.scalar(key, value, record.env_steps)
        onset = next((e.get("onset_iteration") for e in reversed(self.result.events) if e["event"] == "alarm"), None)
        if onset is not None:
            self.scalar(WATCHDOG_ONSET, onset, record.env_steps)

    def close(self, ended: str | None = None) -> None:
        """Every checkpoint on disk, then the run's ``end`` event; ``ended``: how the process's training ended, when
        the caller knows ("finished", "interrupted", "crashed: <exception>"; an end event looked the same after a
        finish, Ctrl-C and a crash until session 18)."""
        if self._writer is not None:  # every checkpoint on disk before the run's `end`
            self.settle()
            self._writer.shutdown()
        if self.watchdog is not None:
            self.watchdog.end(stopped=self.result.stopped, reason=self.result.stop_reason,
                              iterations=self.result.iterations, env_steps_spent=self.result.env_steps,
                              **({"ended": ended} if ended else {}))
        if self.events is not None:
            self.events.close()


class IntegrationSession(TrainingSession):
    """The session of a framework integration (``watchdog.integrations``): its snapshots are already plain,
    weights-only dicts of tensors and numbers (stored as they are), and it keeps the safe config it switches to
    and the seed its rollbacks reseed from. Subclasses fill in ``capture``, ``restore_snapshot`` and
    ``apply_config``."""

    resumes = False  # picks up a restarted process's WATCHDOG_RESUME (``resume_from_env``) in its framework's loop

    def __init__(self, *, safe: Any, seed: int, **kwargs: Any):
        if os.environ.get(RESUME_ENV) and not self.resumes:
            raise refuse_resume(f"this integration ({type(self).__name__}) cannot resume a run in place yet",
                                hint="restart it yourself from the framework's own checkpoint")
        kwargs["run_dir"] = supervised_run_dir(kwargs["run_dir"])  # under `watchdog run`: its run dir
        super().__init__(**kwargs)
        self.safe = safe
        self.seed = seed

    def start(self, **facts: Any) -> None:
        """The run's start event: the framework's ``facts``, the run dir, and (in a process ``watchdog run``
        restarted) the checkpoint it resumes from; :meth:`resume_from_env` then puts that checkpoint in place,
        where the framework's loop can take it."""
        self.watchdog.start(run_dir=str(self.run_dir), **facts, **resumed_from())

    def to_state(self, snap: dict) -> dict:
        return snap

    def from_state(self, state: dict) -> dict:
        return state
