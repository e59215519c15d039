"""A minimal driver for tests: feeds records through the library's dispatch, records what happened."""

from __future__ import annotations

from dataclasses import dataclass, field

from watchdog.config import WatchdogConfig
from watchdog.driver import ConfigSwitch, VirtualDriver, carry_out
from watchdog.pipeline import Watchdog
from watchdog.policy import Rollback, Stop
from watchdog.signals import MetricRecord


@dataclass
class Outcome(VirtualDriver):
    events: list[dict] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    watchdog: Watchdog | None = None

    def kinds(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def first(self, kind: str) -> dict | None:
        found = self.kinds(kind)
        return found[0] if found else None

    # the driver side: remember rollbacks and stops, pretend a config switch
    def restore(self, action: Rollback) -> None:
        self.rollbacks.append(action)

    def apply_config(self, action: Rollback) -> ConfigSwitch:
        return ConfigSwitch({"lr": (5e-3, 3e-4)})

    def stop(self, action: Stop) -> None:
        self.stops.append(action)


def drive(recs: list[MetricRecord], cfg: WatchdogConfig | None = None, *, stop_after_rollback: bool = False) -> Outcome:
    out = Outcome()
    wd = Watchdog(cfg, listeners=[out.events.append])
    out.watchdog = wd
    for rec in recs:
        if not carry_out(wd, wd.observe(rec), out, config_name="ppo_safe.yaml"):
            return out
        if stop_after_rollback and out.rollbacks:
            return out
    return out
