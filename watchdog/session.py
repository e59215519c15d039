"""A watched training session: the framework-independent half of every live :class:`~watchdog.driver.Driver`.

OpenRL's hook (``openrl_ws.hook``) and the integrations for other frameworks
(``watchdog.integrations``) subclass :class:`TrainingSession` and fill in four framework methods:

* ``capture(action)`` — the training state now (weights, optimizers, normalisers), as any object;
* ``to_state(snap)`` / ``from_state(state)`` — to and from a plain, weights-only dict for disk;
* ``restore_snapshot(snap, action)`` — put it back in place and restart the rollout;
* ``apply_config(action)`` — switch the live trainer to the safe config (a ``ConfigSwitch``).

Everything else is here, once: feeding records to the watchdog, the event log, the console,
in-memory snapshots plus the checkpoint store on disk (weights-only, verified, fsynced), what a
disk failure means, forgetting and abandoning copies as the library's registry says, stopping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from watchdog.checkpoints import CheckpointStore, load_checkpoint
from watchdog.driver import ConfigSwitch, carry_out
from watchdog.events import EVENTS_FILENAME, EventLog, make_event
from watchdog.pipeline import Watchdog
from watchdog.policy import STATE_CODES, CheckpointRef, Rollback, SaveStable, Stop
from watchdog.signals import WATCHDOG_ONSET, WATCHDOG_ROLLBACKS, WATCHDOG_STATE, MetricRecord

log = logging.getLogger(__name__)

STORE_SUBDIR = ("checkpoints", "watchdog")
Scalar = Callable[[str, float, int], None]  # (tag, value, step) -> TensorBoard


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


class TrainingSession:
    """Feeds one record per iteration to the watchdog and carries its actions out on a trainer.

    ``writes_files`` False (a non-zero torchrun rank): memory snapshots only, no event log, no
    console, no disk; rank 0 writes the same checkpoints under the same paths.
    """

    def __init__(self, *, watchdog: Watchdog | None, run_dir: Path, safe_name: str, console: Any = None,
                 scalar: Scalar | None = None, writes_files: bool = True):
        self.watchdog = watchdog
        self.run_dir = Path(run_dir)
        self.safe_name = safe_name
        self.console = console
        self.scalar = scalar
        self.writes_files = writes_files
        self.store_root = self.run_dir.joinpath(*STORE_SUBDIR)
        # retention is the library registry's (policy.keep_stable), the same on every rank
        self.store = CheckpointStore(self.store_root, keep_last=None) if writes_files and watchdog else None
        self.snapshots: dict[str, Any] = {}
        self.result = SessionResult()
        self.events: EventLog | None = None
        if watchdog is not None and writes_files:
            self.events = EventLog(self.run_dir / EVENTS_FILENAME)
            watchdog.listeners += [self.events, *([console] if console is not None else []), self.result.events.append]
        elif watchdog is not None:
            watchdog.listeners.append(self.result.events.append)

    # --- framework methods (subclasses) ---------------------------------------------------------

    def capture(self, action: SaveStable) -> Any:
        raise NotImplementedError

    def to_state(self, snap: Any) -> dict:
        raise NotImplementedError

    def from_state(self, state: dict) -> Any:
        raise NotImplementedError

    def restore_snapshot(self, snap: Any, action: Rollback) -> None:
        raise NotImplementedError

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        raise NotImplementedError

    # --- per iteration --------------------------------------------------------------------------

    def observe(self, record: MetricRecord) -> bool:
        """Judge one iteration's record and carry the actions out; False: stop training."""
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
                self.console.status(record, self.watchdog.state.value, self.watchdog.policy.rollbacks)
        return keep_going

    def check_agreement(self, actions: list) -> None:
        """Distributed sessions check that every rank decided the same (default: one process)."""

    # --- the Driver contract (watchdog.driver) --------------------------------------------------

    def save(self, action: SaveStable, watchdog_state: Callable[[], dict]) -> str | None:
        """Snapshot into memory and (rank 0) into the store; a disk failure keeps training on memory."""
        tag = action.tag
        self.snapshots[tag] = snap = self.capture(action)
        if self.store is None:  # a non-zero rank: rank 0 writes the same checkpoint under the same path
            return str(self.store_root / tag)
        try:
            info = self.store.save(tag, self.to_state(snap), {"iteration": action.iteration,
                                                              "env_steps": action.env_steps, "stable": True,
                                                              "watchdog": watchdog_state()})
        except OSError as exc:  # disk full, read-only
            self.say(f"watchdog: could not write stable checkpoint {self.store.root / tag}: {exc.strerror or exc}; "
                     "the checkpoints already on disk are intact and rollbacks use the in-memory copy - free "
                     "space or fix permissions to get disk checkpoints again", style="bold red")
            log.warning("stable checkpoint %s not written: %s", tag, exc)
            return None
        return str(info.path)

    def restore(self, action: Rollback) -> None:
        """The target's snapshot from memory (else from disk) back in place."""
        snap = self.snapshots.get(action.target.tag)
        if snap is None:  # e.g. after a resume: the copy on disk (rank 0's; all ranks share run_dir)
            state, _ = load_checkpoint(action.target.path or self.store_root / action.target.tag)
            snap = self.from_state(state)
        self.restore_snapshot(snap, action)
        self.result.rollbacks = action.number

    def forget(self, ref: CheckpointRef, *, abandoned: bool) -> None:
        """Drop the memory copy; on disk, delete (retention) or mark as abandoned (kept for the record)."""
        self.snapshots.pop(ref.tag, None)
        if self.store is None:
            return
        if abandoned:
            self.store.mark_unstable(ref.tag, reason=f"abandoned by rollback {self.result.rollbacks}")
        else:
            self.store.delete(ref.tag)

    def stop(self, action: Stop) -> None:
        self.result.stopped, self.result.stop_reason = True, action.reason

    # --- the rest -------------------------------------------------------------------------------

    def say(self, text: str, style: str | None = None) -> None:
        if self.console is not None and self.writes_files:
            self.console.message(text, style=style)

    def _log_watchdog_scalars(self, record: MetricRecord) -> None:
        if self.scalar is None:
            return
        self.scalar(WATCHDOG_STATE, STATE_CODES[self.watchdog.state], record.env_steps)
        self.scalar(WATCHDOG_ROLLBACKS, self.watchdog.policy.rollbacks, record.env_steps)
        onset = next((e.get("onset_iteration") for e in reversed(self.result.events) if e["event"] == "alarm"), None)
        if onset is not None:
            self.scalar(WATCHDOG_ONSET, onset, record.env_steps)

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.end(stopped=self.result.stopped, reason=self.result.stop_reason,
                              iterations=self.result.iterations, env_steps_spent=self.result.env_steps)
        if self.events is not None:
            self.events.close()
