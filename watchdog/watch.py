"""`watchdog watch RUN_DIR`: the live watchdog for a run written by a process we did not start.

It follows the run's TensorBoard event files (new files appearing, files growing, a writer
rotating to a new file) or, without them, OpenRL's ``log.txt``; assembles one record per logged
step; feeds the same :class:`~watchdog.pipeline.Watchdog` as training and replay; renders the
same console; appends events to its own JSONL log; and can run a command on alarm so a cluster
user can stop or requeue the job. It only reads the training's files.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from watchdog.config import load_watchdog_config
from watchdog.console import WatchdogConsole
from watchdog.errors import InputError
from watchdog.events import EventLog
from watchdog.logtxt import LogTxtTail
from watchdog.pipeline import Watchdog
from watchdog.policy import CheckpointRef, SaveStable
from watchdog.signals import MetricRecord, normalize_key
from watchdog.tfevents import EventFileTail

WATCH_EVENTS = "watchdog_watch_events.jsonl"


class RunFollower:
    """Turns a growing run directory into complete records, oldest first."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.tails: dict[Path, EventFileTail] = {}
        self.pending: dict[int, dict[str, float]] = {}
        self.newest_step = -1
        self.steps_per_iteration: int | None = None
        self.log_tail: LogTxtTail | None = None

    def poll(self, *, final: bool = False) -> list[MetricRecord]:
        """New complete records. A step is complete once a later step has appeared (OpenRL logs
        every tag of an iteration together), or when ``final`` (the writer is done)."""
        files = sorted(self.run_dir.rglob("events.out.tfevents.*"))
        if not files:
            return self._poll_log(final)
        for path in files:
            tail = self.tails.setdefault(path, EventFileTail(path))
            for tag, series in tail.poll().items():
                key = normalize_key(tag)
                for step, value in zip(series.steps.tolist(), series.values.tolist()):
                    self.pending.setdefault(int(step), {})[key] = float(value)
                    self.newest_step = max(self.newest_step, int(step))
        ready = sorted(s for s in self.pending if final or s < self.newest_step)
        records = []
        for step in ready:
            metrics = self.pending.pop(step)
            if step <= 0:
                continue
            if self.steps_per_iteration is None:
                self.steps_per_iteration = step
            records.append(MetricRecord(step // self.steps_per_iteration - 1, step, metrics))
        return records

    def _poll_log(self, final: bool) -> list[MetricRecord]:
        path = self.run_dir / "log.txt"
        if not path.exists():
            return []
        if self.log_tail is None:
            self.log_tail = LogTxtTail(path)
        return self.log_tail.poll(final=final)

    def size(self) -> int:
        """Bytes of everything we follow: growth means the training is alive."""
        total = 0
        for path in [*self.run_dir.rglob("events.out.tfevents.*"), self.run_dir / "log.txt"]:
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return total


def run_on_alarm(command: str, event: dict, run_dir: Path, console: WatchdogConsole) -> None:
    """Run the user's command with the alarm's facts in the environment; never raise."""
    env = dict(os.environ, WATCHDOG_RUN_DIR=str(run_dir), WATCHDOG_ITERATION=str(event.get("iteration")),
               WATCHDOG_ENV_STEPS=str(event.get("env_steps")), WATCHDOG_DETECTOR=str(event.get("detector")),
               WATCHDOG_ONSET=str(event.get("onset_iteration")), WATCHDOG_REASON=str(event.get("reason")))
    try:
        done = subprocess.run(command, shell=True, env=env, timeout=300)
        console.message(f"on-alarm command exited with {done.returncode}: {command}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        console.message(f"on-alarm command failed: {exc}", style="red")


def watch(run_dir: Path, *, config: str | None, interval_s: float, idle_exit_s: float | None,
          on_alarm: str | None, events_out: Path, console: WatchdogConsole) -> int:
    """Follow ``run_dir`` until interrupted (or idle for ``idle_exit_s``); 1 if it diverged."""
    if not run_dir.is_dir():
        raise InputError("run directory not found", path=str(run_dir), hint="check the path")
    cfg = load_watchdog_config(config).model_copy(update={"action": "alert"})
    follower = RunFollower(run_dir)
    diverged = False
    with EventLog(events_out) as log:
        alarms: list[dict] = []
        wd = Watchdog(cfg, listeners=[log, console, lambda e: alarms.append(e) if e["event"] == "alarm" else None])
        wd.start(run_dir=str(run_dir), mode="watch")
        last_size, last_growth = -1, time.monotonic()
        while True:
            size = follower.size()
            if size != last_size:
                last_size, last_growth = size, time.monotonic()
            idle = idle_exit_s is not None and time.monotonic() - last_growth >= idle_exit_s
            for record in follower.poll(final=idle):
                for action in wd.observe(record):
                    if isinstance(action, SaveStable):  # nothing to save: remember where it was healthy
                        wd.checkpoint_saved(CheckpointRef(f"healthy_{action.env_steps}", action.iteration, action.env_steps))
                console.status(record, wd.state.value)
                while alarms:
                    diverged = True
                    event = alarms.pop(0)
                    if on_alarm:
                        run_on_alarm(on_alarm, event, run_dir, console)
            if idle:
                wd.end(reason=f"no new data for {idle_exit_s:g} s")
                return 1 if diverged else 0
            time.sleep(interval_s)


def _cmd_watch(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    events_out = Path(args.events_out) if args.events_out else run_dir / WATCH_EVENTS
    try:
        return watch(run_dir, config=args.config, interval_s=args.interval, idle_exit_s=args.idle_exit,
                     on_alarm=args.on_alarm, events_out=events_out, console=WatchdogConsole())
    except KeyboardInterrupt:
        return 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watch", help="follow a run being written by another process; alert (and run a command) on divergence")
    p.add_argument("run_dir")
    p.add_argument("--config", default=None, help="watchdog config (default: built-in defaults); action is always alert")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    p.add_argument("--idle-exit", type=float, default=None,
                   help="exit after this many seconds without new data (default: run until Ctrl-C)")
    p.add_argument("--on-alarm", default=None,
                   help="shell command run on each alarm; WATCHDOG_RUN_DIR, WATCHDOG_ITERATION, WATCHDOG_DETECTOR, "
                        "WATCHDOG_ONSET, WATCHDOG_REASON are set")
    p.add_argument("--events-out", default=None, help=f"event log to append to (default RUN_DIR/{WATCH_EVENTS})")
    p.set_defaults(func=_cmd_watch)
