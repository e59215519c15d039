"""The driver contract: one place turns the policy's actions into calls on a training loop.

Every way the watchdog runs — live OpenRL training, replay, watch, the supervisor's restarts,
torchrun ranks, and the integrations for other frameworks — is a :class:`Driver`: a small object
that can save the training state, restore it, forget a copy, apply the safe config and stop.
:func:`carry_out` is the only action-dispatch loop, and :class:`StableRegistry` the only
bookkeeping of stable checkpoints (retention, the protected first one, what a rollback abandons),
so what replay says ``--watchdog`` would have done is what it does.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:  # the policy imports this module; only the types flow back
    from watchdog.pipeline import Watchdog
    from watchdog.policy import CheckpointRef, Distrust, Rollback, SaveResume, SaveStable, Stop


@dataclass
class ConfigSwitch:
    """What applying the safe config did: ``changes`` {key: (old, new)}; ``kept`` {key: why not}."""

    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)


class Driver(Protocol):
    """What a training loop implements so the watchdog can act on it (see :func:`carry_out`)."""

    def save(self, action: "SaveStable", watchdog_state: Callable[[], dict]) -> str | None:
        """Snapshot the training state now; return where it lives on disk (None: memory only).
        ``watchdog_state()`` gives the watchdog's state for the checkpoint's metadata."""

    def restore(self, action: "Rollback") -> None:
        """Put ``action.target``'s state back into the live objects, in place."""

    def apply_config(self, action: "Rollback") -> ConfigSwitch:
        """Switch the live trainer to the safe config, learning rates scaled by ``action.lr_scale``."""

    def forget(self, ref: "CheckpointRef", *, abandoned: bool, reason: str | None = None) -> None:
        """Drop a copy the registry no longer holds: by retention (``abandoned`` False: delete it),
        or because a rollback abandoned the stretch it belongs to, or an alarm not rolled back for (alert mode, a
        stop) dated its onset before it (keep the files, not as stable; ``reason`` says which, None: a rollback)."""

    def stop(self, action: "Stop") -> None:
        """The watchdog gives up: end training after this iteration (the run exits 1). With
        ``action.restartable`` (a resource stop) the run is to be restarted from its checkpoint."""

    def save_resume(self, action: "SaveResume", watchdog_state: Callable[[], dict]) -> str | None:
        """Save a checkpoint to resume the run from (a resource alarm: never a rollback); return where
        it lives on disk (None: nowhere). Stable, and so a restart target, when ``action.stable``."""


class VirtualDriver:
    """A driver that only pretends: replay, watch and tests judge records without a trainer."""

    def save(self, action: "SaveStable", watchdog_state: Callable[[], dict]) -> str | None:
        return None

    def restore(self, action: "Rollback") -> None:
        return None

    def apply_config(self, action: "Rollback") -> ConfigSwitch:
        return ConfigSwitch()

    def forget(self, ref: "CheckpointRef", *, abandoned: bool, reason: str | None = None) -> None:
        return None

    def stop(self, action: "Stop") -> None:
        return None

    def save_resume(self, action: "SaveResume", watchdog_state: Callable[[], dict]) -> str | None:
        return None


def carry_out(wd: "Watchdog", actions: list, driver: Driver, *, config_name: str) -> bool:
    """Carry ``actions`` (from ``wd.observe``) out on ``driver``; False once the run must stop."""
    if not actions:  # most records
        return True
    from watchdog.policy import CheckpointRef, Distrust, Rollback, SaveResume, SaveStable, Stop

    for action in actions:
        if isinstance(action, SaveStable):
            path = driver.save(action, wd.state_dict)
            for ref in wd.checkpoint_saved(CheckpointRef(action.tag, action.iteration, action.env_steps, path)):
                driver.forget(ref, abandoned=False)
        elif isinstance(action, Rollback):
            action = _restore(wd, driver, action)
            if not isinstance(action, Rollback):  # nothing readable to roll back to: the policy's stop (and distrust)
                return carry_out(wd, action, driver, config_name=config_name)
            switch = driver.apply_config(action)
            for ref in wd.rolled_back(action, switch, config_name=config_name):
                driver.forget(ref, abandoned=True)
        elif isinstance(action, SaveResume):
            path = driver.save_resume(action, wd.state_dict)
            for ref in wd.resume_saved(action, path):
                driver.forget(ref, abandoned=False)
        elif isinstance(action, Distrust):
            mode = "alert mode" if wd.cfg.action == "alert" else "the run stopped"
            reason = f"after the onset of the {action.detector} alarm at {action.alarm_iteration} ({mode})"
            for ref in wd.distrusted(action):
                driver.forget(ref, abandoned=True, reason=reason)
        elif isinstance(action, Stop):
            driver.stop(action)
            return False
    return True


def _restore(wd: "Watchdog", driver: Driver, action: "Rollback") -> "Rollback | list":
    """Put the rollback's target back in place; a target the driver cannot read (deleted or damaged on disk) makes
    way for the next older stable checkpoint, until none is left (the policy's stop, as actions)."""
    from watchdog.errors import CheckpointError

    while True:
        try:
            driver.restore(action)
            return action
        except CheckpointError as exc:
            action = wd.target_unreadable(action, exc)
            if isinstance(action, list):
                return action


class StableRegistry:
    """The stable checkpoints a rollback may go back to, oldest first.

    Keeps the run's first stable checkpoint (a slow climb's onset can precede every newer one)
    and the newest ``keep``; a rollback abandons every checkpoint after its target. Saves come in
    iteration order (a rollback first drops everything after its target), so adding is O(1) and
    finding a target O(log n).
    """

    def __init__(self, keep: int):
        self.keep = keep
        self.refs: list["CheckpointRef"] = []
        self._iterations: list[int] = []

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self):
        return iter(self.refs)

    def add(self, ref: "CheckpointRef") -> list["CheckpointRef"]:
        """Register a new stable checkpoint; returns the ones retention lets go."""
        if self._iterations and ref.iteration <= self._iterations[-1]:  # a resumed run re-registering
            self.abandon_after(ref.iteration - 1)
        self.refs.append(ref)
        self._iterations.append(ref.iteration)
        evicted = []
        while len(self.refs) > self.keep + 1:  # the first is protected: evict the second-oldest
            evicted.append(self.refs.pop(1))
            self._iterations.pop(1)
        return evicted

    def target_before(self, iteration: int) -> "CheckpointRef | None":
        """Newest checkpoint at or before ``iteration`` (else the oldest one, else None)."""
        i = bisect.bisect_right(self._iterations, iteration)
        if i:
            return self.refs[i - 1]
        return self.refs[0] if self.refs else None

    def abandon_after(self, iteration: int) -> list["CheckpointRef"]:
        """Drop every checkpoint taken after ``iteration`` (the stretch a rollback abandons)."""
        i = bisect.bisect_right(self._iterations, iteration)
        dropped = self.refs[i:]
        del self.refs[i:], self._iterations[i:]
        return dropped

    def unwritten(self, tag: str) -> None:
        """The checkpoint ``tag`` never reached the disk: it lives in memory only (path None)."""
        from dataclasses import replace

        self.refs = [replace(r, path=None) if r.tag == tag else r for r in self.refs]

    def retain(self, keep: Callable[["CheckpointRef"], bool]) -> list["CheckpointRef"]:
        """Drop the checkpoints for which ``keep`` is false (e.g. gone from disk); returns them."""
        dropped = [r for r in self.refs if not keep(r)]
        self.refs = [r for r in self.refs if keep(r)]
        self._iterations = [r.iteration for r in self.refs]
        return dropped

    def tags(self) -> set[str]:
        return {r.tag for r in self.refs}

    def state_dict(self) -> list[dict]:
        return [asdict(r) for r in self.refs]

    def load_state_dict(self, state: list[dict]) -> None:
        from watchdog.policy import CheckpointRef

        self.refs = sorted((CheckpointRef(**r) for r in state), key=lambda r: r.iteration)
        self._iterations = [r.iteration for r in self.refs]
