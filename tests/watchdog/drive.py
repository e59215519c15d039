"""A minimal driver for tests: feeds records, fakes checkpoint saves, records what happened."""

from __future__ import annotations

from dataclasses import dataclass, field

from watchdog.config import WatchdogConfig
from watchdog.pipeline import Watchdog
from watchdog.policy import CheckpointRef, Rollback, SaveStable, Stop
from watchdog.signals import MetricRecord


@dataclass
class Outcome:
    events: list[dict] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    watchdog: Watchdog | None = None

    def kinds(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def first(self, kind: str) -> dict | None:
        found = self.kinds(kind)
        return found[0] if found else None


def drive(recs: list[MetricRecord], cfg: WatchdogConfig | None = None, *, stop_after_rollback: bool = False) -> Outcome:
    out = Outcome()
    wd = Watchdog(cfg, listeners=[out.events.append])
    out.watchdog = wd
    for rec in recs:
        for action in wd.observe(rec):
            if isinstance(action, SaveStable):
                wd.checkpoint_saved(CheckpointRef(f"it{action.iteration}", action.iteration, action.env_steps))
            elif isinstance(action, Rollback):
                out.rollbacks.append(action)
                wd.rolled_back(action, config_changes={"lr": (5e-3, 3e-4)}, config_name="ppo_safe.yaml")
                if stop_after_rollback:
                    return out
            elif isinstance(action, Stop):
                out.stops.append(action)
                return out
    return out
