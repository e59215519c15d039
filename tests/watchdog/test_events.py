"""The JSONL event log: valid lines, flushed per line, torn tails tolerated, followable."""

from __future__ import annotations

import json
import math

import pytest

from tests.watchdog.drive import drive
from tests.watchdog.synthetic import diverge, healthy, records
from watchdog.console import WatchdogConsole, describe_event
from watchdog.eventlog import EventLog, EventTail, read_events

REQUIRED = {"time", "event", "iteration", "env_steps", "state"}


def test_pipeline_events_have_the_documented_fields(tmp_path):
    path = tmp_path / "watchdog_events.jsonl"
    log = EventLog(path)
    rows = diverge(healthy(260, seed=1), 180, "exp")
    out = drive(records(rows), stop_after_rollback=True)
    for ev in out.events:
        log.write(ev)
    events = read_events(path).events
    assert [e["event"] for e in events] == [e["event"] for e in out.events]
    assert all(REQUIRED <= set(e) for e in events)
    alarm = next(e for e in events if e["event"] == "alarm")
    assert {"detector", "value", "threshold", "onset_iteration"} <= set(alarm)
    rollback = next(e for e in events if e["event"] == "rollback")
    assert {"from_iteration", "to_iteration", "checkpoint", "config"} <= set(rollback)
    switch = next(e for e in events if e["event"] == "config_switch")
    assert switch["changes"] == {"lr": {"old": 5e-3, "new": 3e-4}}


def test_lines_are_readable_while_written_and_nan_is_valid_json(tmp_path):
    path = tmp_path / "ev.jsonl"
    log = EventLog(path)
    tail = EventTail(path)
    log.write({"event": "alarm", "value": math.nan, "iteration": 1})
    assert tail.poll()[0]["value"] == "nan"  # visible before close: flushed per line
    json.loads(path.read_text().splitlines()[0])
    log.write({"event": "end", "iteration": 2})
    assert [e["event"] for e in tail.poll()] == ["end"]
    log.close()


@pytest.mark.parametrize("then", ["start", "restart", None])
def test_a_torn_line_closed_by_the_next_process_is_still_a_torn_line_not_a_lost_one(tmp_path, then):
    """A review of session 29: a run killed mid-line replayed with a warning (exit 0); the next process to open its
    log (a `watchdog run` restart, train.py --checkpoint) closes the torn line with a newline, and it became a damaged
    line in the middle (lost lines, the verdict bounded, exit 2) for the same data. Followed by that process's
    start (or the supervisor's restart), or last in the file, it is a torn line still; junk elsewhere is not."""
    path = tmp_path / "ev.jsonl"
    path.write_text('{"event": "start", "iteration": 0}\n{"event": "metrics", "iteration": 1, "met')
    with EventLog(path) as log:  # closes the torn line
        if then:
            log.write({"event": then, "iteration": 1})
    result = read_events(path)
    assert result.bad_lines == 0 and len(result.warnings) == 1 and "incomplete" in result.warnings[0]
    with EventLog(path) as log:
        log.write({"event": "end", "iteration": 2})
    with open(path, "a") as f:
        f.write('{"event": "metr\n{"event": "start", "iteration": 0}\n[1, 2]\n')  # cut before a start; JSON junk last
    # the JSON junk is a lost line, last or not; so is the first torn line once an `end` (no new process) follows it
    assert read_events(path).bad_lines == (1 if then else 2)


def test_a_torn_line_before_a_start_and_a_torn_tail_are_both_said(tmp_path):
    """Found reading session 29's change: the torn line's length, unpacked into the name of the file's size, hid the
    warning for a torn last line that came after it."""
    path = tmp_path / "ev.jsonl"
    path.write_text('{"event": "start", "iteration": 0}\n{"event": "metr\n{"event": "start", "iteration": 1}\n'
                    '{"event": "metrics", "iteration": 1, "metrics": {"train/value_loss": 0.0')
    result = read_events(path)
    assert [e["event"] for e in result.events] == ["start", "start"] and result.bad_lines == 0
    assert len(result.warnings) == 2 and "line 2 is incomplete" in result.warnings[0]
    assert result.warnings[1].startswith(f"{path}: last line is incomplete (")


def test_a_tail_follows_an_event_log_replaced_by_a_longer_one_from_its_start(tmp_path):
    """A review of session 29: watch's reader of a training's event log took a rewrite for one only when the file
    shrank; a log removed and written anew by a new process, already longer than the old offset when polled (its
    inode often the old one's), was read from that offset: its start and its first lines (an alarm) lost."""
    import os

    path = tmp_path / "ev.jsonl"
    with EventLog(path) as log:
        for it in range(5):
            log.write({"event": "metrics", "iteration": it, "run": "old"})
    tail = EventTail(path)
    assert len(tail.poll()) == 5
    os.unlink(path)
    with EventLog(path) as log:
        log.write({"event": "start", "iteration": 0, "run": "new"})
        log.write({"event": "alarm", "iteration": 1, "run": "new"})
        for it in range(2, 12):
            log.write({"event": "metrics", "iteration": it, "run": "new"})
    new = tail.poll()
    assert [e["event"] for e in new[:2]] == ["start", "alarm"] and len(new) == 12
    with EventLog(path) as log:
        log.write({"event": "end", "iteration": 12})
    assert [e["event"] for e in tail.poll()] == ["end"]  # and on from there


def test_arrays_tensors_and_other_objects_in_an_event_are_written_not_lost(tmp_path):
    """A review of session 29: a loop's switch() reporting per-group learning rates as a numpy array raised inside
    the event log's write (JSON refuses arrays): the config_switch line was lost, a traceback on stderr."""
    import numpy as np
    import torch

    path = tmp_path / "ev.jsonl"
    with EventLog(path) as log:
        log.write({"event": "config_switch", "iteration": 80, "changes": {
            "lr": {"old": np.array([0.1, 0.1]), "new": torch.tensor([0.05, math.inf], dtype=torch.float64)}, "betas": {"old": object}}})
    (event,) = read_events(path).events
    assert event["changes"]["lr"] == {"old": [0.1, 0.1], "new": [0.05, "inf"]}
    assert event["changes"]["betas"]["old"] == "<class 'object'>"


def test_torn_last_line_is_a_warning_and_the_next_writer_starts_clean(tmp_path):
    path = tmp_path / "ev.jsonl"
    path.write_text('{"event": "start", "iteration": 0}\n{"event": "ala')
    result = read_events(path)
    assert [e["event"] for e in result.events] == ["start"]
    assert len(result.warnings) == 1 and "incomplete" in result.warnings[0]
    with EventLog(path) as log:
        log.write({"event": "end", "iteration": 5})
    result = read_events(path)
    assert [e["event"] for e in result.events] == ["start", "end"]
    assert result.warnings[0].startswith(f"{path}: line 2 is not valid JSON (")
    with open(path, "a") as f:
        f.write('[1, 2]\n{"iteration": 3}\n')
    result = read_events(path)
    assert [w.split(": ", 1)[1] for w in result.warnings[1:]] == [
        'line 4 is JSON but not a watchdog event (an object with an "event" name); skipped',
        'line 5 is JSON but not a watchdog event (an object with an "event" name); skipped']


def test_console_plain_lines_when_not_a_terminal(tmp_path):
    import io

    buf = io.StringIO()
    console = WatchdogConsole(buf)
    rows = diverge(healthy(260, seed=1), 180, "exp")
    out = drive(records(rows), stop_after_rollback=True)
    for ev in out.events:
        console(ev)
    text = buf.getvalue()
    assert "\x1b[" not in text  # no colour codes
    alarm_line = next(line for line in text.splitlines() if line.startswith("[watchdog] ALARM"))
    # what happened, the value against its threshold, the onset, the likely cause and the next step
    assert "value_loss" in alarm_line and " against " in alarm_line and "onset ~ it" in alarm_line
    assert "; cause " in alarm_line and "; next " in alarm_line
    assert any(line.startswith("[watchdog] ROLLBACK") and "rolled back #1" in line for line in text.splitlines())


def test_console_rich_panels_on_a_terminal():
    import io

    buf = io.StringIO()
    console = WatchdogConsole(buf, rich=True)
    console({"event": "alarm", "iteration": 10, "env_steps": 100, "state": "diverged", "detector": "nonfinite",
             "reason": "non-finite train/value_loss", "value": "nan", "threshold": 0.0, "onset_iteration": 10})
    text = buf.getvalue()
    assert "watchdog: alarm" in text and "\x1b[" in text
    assert "non-finite" in describe_event({"event": "alarm", "iteration": 1, "reason": "non-finite x"})


def test_a_disk_that_refuses_lines_loses_none_and_says_so_twice(tmp_path):
    """A full disk (ENOSPC from the first write, then a line cut short, then space again): every line reaches the
    file whole and in order, and the console hears one line when writes fail and one when they work again. Until
    session 19 each event was a traceback and its line was lost (found by a helper's audit, on a full tmpfs)."""
    import errno

    said, path = [], tmp_path / "events.jsonl"
    log = EventLog(path, say=said.append)
    real, calls = log._fh.write, [0]

    def disk(data: bytes):  # the OS's answer: refused twice, then half a line, then everything
        calls[0] += 1
        if calls[0] in (2, 3):
            raise OSError(errno.ENOSPC, "No space left on device")
        if calls[0] == 4:
            return real(data[: len(data) // 2])
        return real(data)

    log._fh = type("Disk", (), {"write": staticmethod(disk), "fileno": log._fh.fileno, "tell": log._fh.tell,
                                "close": log._fh.close, "closed": property(lambda self: real.__self__.closed)})()
    for i in range(6):
        log.write({"event": "metrics", "iteration": i})
    log.close()
    res = read_events(path)
    assert [e["iteration"] for e in res.events] == list(range(6)) and res.bad_lines == 0 and not res.warnings
    assert len(said) == 2 and "cannot write (No space left on device)" in said[0] and "written again" in said[1]


def test_watch_onto_a_full_disk_says_it_once_and_still_exits_on_the_verdict(capsys):
    """``watch --events-out /dev/full`` on a run that diverged: one line about the file, exit 1 (divergence). Until
    session 19: a traceback per event and `error: No space left on device`, exit 2."""
    from pathlib import Path

    from watchdog.cli import main

    run = Path(__file__).resolve().parents[1] / "data" / "long_faults" / "rsl_rl" / "push_lite_lr_fault" / "logs" / "2026-11-30_06-00-00"
    assert main(["watch", str(run), "--idle-exit", "0", "--events-out", "/dev/full"]) == 1
    said = "".join(capsys.readouterr())
    assert "Traceback" not in said and said.count("/dev/full: cannot write (No space left on device)") == 1, said


def test_a_log_opened_for_a_line_or_two_raises_what_the_disk_refuses(capsys):
    """A fleet's per-poll log and the supervisor's events open the log, write, close: holding refused lines there
    said they were 'kept in memory and written once it can be' and then lost them at once, each poll (a review of
    session 19). ``hold=False`` raises to the caller, which says it once."""
    from pathlib import Path

    import pytest

    from watchdog.watch import _BufferedLog

    with pytest.raises(OSError):
        with EventLog("/dev/full", hold=False) as log:
            log.write({"event": "restart", "iteration": 3})
    said = []
    fleet_log = _BufferedLog(Path("/dev/full"), said.append)
    for poll in range(3):
        fleet_log({"event": "metrics", "iteration": poll})
        fleet_log.flush()
    assert fleet_log.unwritable and said == ["cannot write /dev/full (No space left on device): this run's watch "
                                             "events are shown here only"]
    assert "kept in memory" not in "".join(capsys.readouterr())
