"""Everything rich renders: the live status line, alert panels, replay reports.

On a terminal: colours and panels. Otherwise (a log file, CI, a pipe): plain one-line messages
that grep well. The library never prints; only this module and the CLI do.
"""

from __future__ import annotations

import math
import sys
from typing import IO, Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from watchdog.signals import (
    CRITIC_GRAD_NORM,
    STEP_REWARD,
    SYS_CUDA_RESERVED_MB,
    SYS_RSS_MB,
    SYS_STEPS_PER_S,
    VALUE_LOSS,
    MetricRecord,
)

_STYLE = {"restart": "magenta", "warning": "yellow", "alarm": "bold red", "rollback": "magenta", "config_switch": "cyan",
          "stop": "bold red", "recovered": "green", "stable_checkpoint": "dim", "start": "bold", "end": "bold"}
_STATE_STYLE = {"healthy": "green", "warning": "yellow", "diverged": "red", "rolled_back": "magenta", "stopped": "red"}
PANEL_EVENTS = ("warning", "alarm", "rollback", "config_switch", "restart", "stop")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def describe_event(ev: dict) -> str:
    """One line that says what happened, the value, the threshold, the onset and what was done."""
    kind = ev.get("event", "?")
    head = f"it {ev.get('iteration')} ({ev.get('env_steps'):,} steps)" if isinstance(ev.get("env_steps"), int) else f"it {ev.get('iteration')}"
    if kind in ("warning", "alarm"):
        onset = ev.get("onset_iteration")
        rng = f" ({ev['onset_low']}-{ev['onset_high']})" if "onset_low" in ev else ""
        text = f"{head}: [{ev.get('detector')}] {ev.get('reason')}; value {_fmt(ev.get('value'))}, threshold {_fmt(ev.get('threshold'))}"
        return text + (f"; onset ~ it {onset}{rng}" if onset is not None else "")
    if kind == "rollback":
        return (f"{head}: rolled back #{ev.get('number')} to it {ev.get('to_iteration')} "
                f"({ev.get('checkpoint')}), before the onset at it {ev.get('onset_iteration')}; "
                f"config {ev.get('config')}, lr x{_fmt(ev.get('lr_scale'))}")
    if kind == "config_switch":
        changes = ", ".join(f"{k} {_fmt(v['old'])} -> {_fmt(v['new'])}" for k, v in (ev.get("changes") or {}).items())
        return f"{head}: switched to {ev.get('config')}: {changes or 'no changes'}"
    if kind == "restart":
        why = ev.get("signal") or (f"exit code {ev.get('exit_code')}" if ev.get("exit_code") is not None else "a stall")
        return (f"{head}: training process died ({why}); restart {ev.get('attempt')}/{ev.get('max_restarts')} "
                f"from {ev.get('checkpoint') or 'scratch'} with {ev.get('config')}")
    if kind == "stop":
        return f"{head}: STOPPED: {ev.get('reason')}"
    if kind == "stable_checkpoint":
        return f"{head}: stable checkpoint {ev.get('checkpoint')}"
    if kind == "recovered":
        return f"{head}: back to healthy (was {ev.get('previous')})"
    if kind == "start":
        return f"watchdog on: action={ev.get('config', {}).get('action', '?')}, run {ev.get('run_dir', '')}"
    if kind == "end":
        return f"{head}: training ended; {ev.get('rollbacks', 0)} rollback(s); {ev.get('summary', '')}".rstrip("; ")
    return f"{head}: {kind}"


def status_line(record: MetricRecord, state: str, rollbacks: int) -> str:
    """The compact per-iteration line: iteration, steps, key metrics, state."""
    def metric(key: str, label: str) -> str:
        value = record.metrics.get(key)
        return f"{label} {_fmt(value)}" if value is not None else ""

    parts = [f"it {record.iteration}", f"{record.env_steps:,} steps", metric(VALUE_LOSS, "vloss"),
             metric(CRITIC_GRAD_NORM, "cgrad"), metric(STEP_REWARD, "reward"), _resources(record), state]
    if rollbacks:
        parts.append(f"rollbacks {rollbacks}")
    return " | ".join(p for p in parts if p)


def _resources(record: MetricRecord) -> str:
    """``mem 812 MiB, 2.3k steps/s`` when the record has resource keys (CUDA memory before host)."""
    mem = record.metrics.get(SYS_CUDA_RESERVED_MB, record.metrics.get(SYS_RSS_MB))
    rate = record.metrics.get(SYS_STEPS_PER_S)
    parts = ([f"{'cuda ' if SYS_CUDA_RESERVED_MB in record.metrics else ''}mem {mem:.0f} MiB"] if mem is not None else [])
    parts += [f"{rate / 1000:.1f}k steps/s" if rate >= 1000 else f"{rate:.0f} steps/s"] if rate is not None else []
    return ", ".join(parts)


class WatchdogConsole:
    """Renders events and status lines; usable as an event listener (``console(event)``)."""

    def __init__(self, file: IO[str] | None = None, *, rich: bool | None = None, status_every: int = 1):
        file = file or sys.stdout
        self.rich = file.isatty() if rich is None else rich
        self.console = Console(file=file, force_terminal=self.rich, no_color=not self.rich,
                               highlight=False, soft_wrap=not self.rich)
        self.status_every = max(1, status_every)

    def __call__(self, ev: dict) -> None:
        self.event(ev)

    def event(self, ev: dict) -> None:
        kind = ev.get("event", "?")
        if kind == "metrics":
            return
        line = describe_event(ev)
        if not self.rich:
            self.console.print(f"[watchdog] {kind.upper()} {line}", markup=False)
            return
        style = _STYLE.get(kind, "")
        if kind in PANEL_EVENTS:
            self.console.print(Panel(Text(line), title=f"watchdog: {kind.replace('_', ' ')}", border_style=style,
                                     expand=False))
        else:
            self.console.print(Text(f"watchdog: {line}", style=style))

    def status(self, record: MetricRecord, state: str, rollbacks: int = 0) -> None:
        if record.iteration % self.status_every:
            return
        line = status_line(record, state, rollbacks)
        if self.rich:
            self.console.print(Text(line, style=_STATE_STYLE.get(state, "")))
        else:
            self.console.print(line, markup=False)

    def message(self, text: str, *, style: str = "") -> None:
        self.console.print(Text(text, style=style) if self.rich else text, markup=False)

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        if not self.rich:
            self.console.print(title, markup=False)
            self.console.print("\t".join(columns), markup=False)
            for row in rows:
                self.console.print("\t".join(_fmt(c) for c in row), markup=False)
            return
        table = Table(title=title)
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*(_fmt(c) for c in row))
        self.console.print(table)
