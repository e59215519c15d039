"""`watchdog watch RUN_DIR | PARENT_DIR`: the live watchdog for runs written by processes we did not start.

It follows a run's TensorBoard event files (new files appearing, files growing, a writer
rotating to a new file) or, without them, SB3's ``progress.csv`` or OpenRL's ``log.txt``; assembles one record per logged
step; feeds the same :class:`~watchdog.pipeline.Watchdog` as training and replay; renders the
same console; appends events to its own JSONL log; and can run a command on alarm so a cluster
user can stop or requeue the job. It only reads the training's files.

Given a folder whose children are runs (a cluster user's ``results/`` tree of seeds), it follows
every run (runs appearing later are picked up), one follower and one watchdog per run; each poll
reads only the runs whose files changed (a cheap stat signature per run; a run's tree is
re-listed only when one of its watched directories changed, or every ``rescan_every`` polls),
prints alerts and a summary table, and can write a Prometheus textfile after every poll.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from watchdog.config import TagsConfig, load_watchdog_config
from watchdog.csvlog import PROGRESS_CSV, ProgressCsvTail, is_progress_csv, progress_csv_columns
from watchdog.errors import InputError, WatchdogError, check_number, check_output_file, check_run_dir
from watchdog.eventlog import EVENTS_FILENAME, EventLog, EventTail
from watchdog.logtxt import LogTxtTail, first_logged_iteration, openrl_steps_per_iteration
from watchdog.pipeline import Watchdog
from watchdog.driver import VirtualDriver, carry_out
from watchdog.frameworks import (
    CRITIC_LOSS_NOTE,
    FRAMEWORKS,
    OPENRL,
    Detected,
    RecordAssembler,
    config_for_run,
    detect,
    in_feed_order,
    known_step_size,
    safe_config_name,
    signals_found,
    value_normalization,
)
from watchdog.policy import STATE_CODES, State
from watchdog.replay import (UNRECOGNISED, ValueLossSpan, healthy_limits, is_run_dir, iter_run_dirs, log_txt_run,
                             real_path, run_by_logs, too_few_records, verdict_bounded, verdict_bounds)
from watchdog.signals import VALUE_LOSS, MetricRecord, normalize_key
from watchdog.tfevents import EventFileTail, is_hparams_session, series_tag, session_of, session_starts

if TYPE_CHECKING:  # rich is imported when `watch` runs, not when the CLI registers the command
    from watchdog.console import WatchdogConsole

WATCH_EVENTS = "watchdog_watch_events.jsonl"
WATCHER = VirtualDriver()
EVENT_PREFIX = "events.out.tfevents."
MAX_INTERVAL_S = 86_400.0  # --interval: a poll at least once a day (time.sleep overflows near 1e10 s)
RESCAN_EVERY = 20  # polls between full re-listings of a run's tree (or of the parent folder)
WAITING = "waiting"  # a followed run's state before its first record is judged
HOLD_POINTS = 100_000  # points kept per run while no tag we read has appeared (SB3's first dump: time/* only)
MAX_NESTED_DEPTH = 5  # folders of runs inside the parent (logs/rsl_rl/<experiment>/<run>), searched when re-listing
# A folder modified this recently may change again within the same (coarse, jiffy-sized) mtime tick:
# list it again next poll. Network filesystems (attribute caching) rely on the periodic rescan.
SETTLE_NS = 100_000_000
# An OpenRL tag file not written for this long while another file was has stopped being logged: its tag no
# longer holds the steps back. TensorBoard's writers flush every 120 s (``flush_secs``) at the latest.
STALE_NS = 240 * 1_000_000_000


def _holds_anything(path: Path) -> bool:
    """Does the folder exist and hold any file or folder (hidden ones aside)?"""
    try:
        return any(not p.name.startswith(".") for p in path.iterdir())
    except OSError:
        return False


def _log_txt_alone(path: Path) -> bool:
    """A folder whose one run marker is a ``log.txt`` that holds no OpenRL record yet, with no run below it: an OpenRL
    run's first seconds, or a sweep's console output (``python sweep.py > sweep/log.txt``) before its runs appear.
    Undecided until records or runs come (a review of session 20: such a sweep was watched as one run, its runs'
    TensorBoard files merged into one timeline)."""
    if not (path / "log.txt").is_file() or run_by_logs(path) or not log_txt_run(path):
        return False
    try:  # the whole file, a chunk at a time (Isaac Gym's banners and tracebacks can fill the first 64 KiB)
        with open(path / "log.txt", "rb") as f:
            tail = b""
            while chunk := f.read(1 << 20):
                text = tail + chunk
                if b"Episode:" in text or b"value_loss:" in text:
                    return False
                tail = text[-16:]
    except OSError:
        return False
    return True


def _ident(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


HEAD_BYTES = 4096  # the first bytes of a file read, kept to tell a copy of it written anew from another file


def _head(path: Path, size: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return None


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@dataclass
class _Channel:
    """One tag of an OpenRL run as read so far: the process that wrote its newest point (a restarted run's
    processes share the folder: :func:`~watchdog.tfevents.session_starts`), its segment in that process (a step
    going back starts the next one, as replay's ``tb_records`` counts them), its newest step, and its cadence (the
    smallest step between two of its points)."""

    session: int = 0
    segment: int = 0
    last: int | None = None
    gap: int | None = None
    path: Path | None = None  # the file of its newest points (its mtime says whether it is still written)

    def add(self, step: int, session: int) -> None:
        if session != self.session:
            self.session, self.segment, self.last = session, 0, None
        if self.last is not None:
            if step < self.last:
                self.segment += 1
            elif step > self.last:
                self.gap = step - self.last if self.gap is None else min(self.gap, step - self.last)
        self.last = step

    def position(self) -> tuple[int, int, int]:
        assert self.last is not None
        return (self.session, self.segment, self.last)

    def due(self) -> tuple[int, int, int]:
        """The first (session, segment, step) at which this tag may still log a point (with one point so far, any
        later step)."""
        assert self.last is not None
        return (self.session, self.segment, self.last + (self.gap or 1))


class RunFollower:
    """Turns a growing run directory into complete records, oldest first.

    Keeps the list of event files it follows and the mtimes of the directories that can gain one
    (the run folder, its ``logs/`` subtree, the folders holding event files); the tree is listed
    again only when one of those changed, or every ``rescan_every`` refreshes. :meth:`changed` is
    a cheap stat of the followed files (sizes and mtimes) against the previous call.
    """

    def __init__(self, run_dir: Path, *, rescan_every: int = RESCAN_EVERY, tags: TagsConfig | None = None):
        self.run_dir = Path(run_dir)
        self.tags = tags or TagsConfig()
        self.detected: Detected | None = None  # the framework, once a tag we read has appeared
        self.assembler: RecordAssembler | None = None  # other frameworks' records (OpenRL: pending below)
        self.tags_seen: set[str] = set()
        self._held: dict[str, tuple[list[int], list[float], list[int]]] = {}  # points read before the framework was known
        self.tails: dict[Path, EventFileTail] = {}
        self.pending: dict[tuple[int, int, int], dict[str, float]] = {}  # OpenRL: (session, segment, step) -> points
        self.channels: dict[str, _Channel] = {}  # OpenRL: where each tag is, how often it logs
        self._source: dict[str, Path] = {}  # tag -> the file its newest points came from
        self._pointed: set[Path] = set()  # files that gave points
        self.steps_per_iteration: int | None = None
        self.log_tail: LogTxtTail | None = None
        self._log_until: int | None = None  # the last iteration judged from log.txt (its event files came later)
        self._inodes: dict[Path, tuple[int, int]] = {}  # the files read from, as first seen (see gone)
        self._heads: dict[Path, bytes] = {}  # their first bytes read (up to HEAD_BYTES): a copy of one is the same file
        self._not_hparams: set[Path] = set()  # event files known not to be an hparams session alone
        self.rescan_every = max(1, rescan_every)
        self.files: list[Path] = []
        self.scans = 0  # full listings of the tree
        self.reads = 0  # polls that read the files
        self._dirs: dict[Path, int | None] = {}
        self._unsettled = True
        self._refreshes = 0
        self._last_scan = -1
        self._signature: tuple | None = None
        self.notes: list[str] = []  # what the reading changed, said once each (the caller takes them)
        self.input_warnings: list[str] = []  # damaged, shrunk or undecodable files, said once each (the caller takes them)
        self._warned: dict[Path, int] = {}  # how many of each file's warnings were passed on
        self.csv = ProgressCsvTail(self.run_dir / PROGRESS_CSV)  # SB3's CSV logger: where no event file serves
        self.csv_mode = False  # following it (no event files, or none with a tracked signal)
        self._critic_said = False

    # --- the cheap part: which files, did they change -------------------------------------------

    def _scan(self) -> None:
        now = time.time_ns()
        dirs: dict[Path, int | None] = {self.run_dir: _mtime(self.run_dir)}
        files: list[Path] = []
        logs = self.run_dir / "logs"
        for root, _dnames, fnames in os.walk(self.run_dir):
            rootp = Path(root)
            events = [rootp / f for f in fnames if f.startswith(EVENT_PREFIX) and not self._hparams_session(rootp / f)]
            files.extend(events)
            if events or rootp == logs or logs in rootp.parents:
                p = rootp
                while p != self.run_dir and p not in dirs:  # the folder and its ancestors in the run
                    dirs[p] = _mtime(p)
                    p = p.parent
        self.files = sorted(files)
        self._dirs = dirs
        self._unsettled = any(m is None or now - m < SETTLE_NS for m in dirs.values())
        self._last_scan = self._refreshes
        self.scans += 1

    def _hparams_session(self, path: Path) -> bool:
        """:func:`~watchdog.tfevents.is_hparams_session`, asked once of a file past 64 KiB without the session's
        marker in its head (it never gets one: a fleet's every file was read again at every listing)."""
        if path in self._not_hparams:
            return False
        found = is_hparams_session(path)
        try:
            if not found and path.stat().st_size > 1 << 16:
                self._not_hparams.add(path)
        except OSError:
            pass
        return found

    def refresh(self) -> None:
        """List the tree again if a watched directory changed (or is too fresh to trust), or periodically."""
        self._refreshes += 1
        if (self._last_scan < 0 or self._unsettled or self._refreshes - self._last_scan >= self.rescan_every
                or any(_mtime(d) != m for d, m in self._dirs.items())):
            self._scan()

    def signature(self) -> tuple:
        sig = []
        for path in [*self.files, self.csv.path, self.run_dir / "log.txt"]:
            try:
                st = path.stat()
                sig.append((st.st_size, st.st_mtime_ns))
            except OSError:
                sig.append(None)
        return tuple(self.files), tuple(sig)

    def changed(self) -> bool:
        """Did the followed files (or the set of them) change since the previous call? Cheap."""
        self.refresh()
        sig = self.signature()
        if sig == self._signature:
            return False
        self._signature = sig
        return True

    # --- reading --------------------------------------------------------------------------------

    def poll(self, *, final: bool = False, refresh: bool = True) -> list[MetricRecord]:
        """New complete records, oldest first; every record once the writer is done (``final``).

        OpenRL puts each tag in a file of its own, and the files are flushed at different times and can log
        at different cadences (our ``train.py --watchdog``: the losses every iteration, the rewards every
        ``log_interval``): a step is complete when every tag has passed it, or has no point due at it by its
        own cadence (:class:`_Channel`), and a later step has appeared. A tag whose file has not changed for
        ``STALE_NS`` while another did (it stopped being logged) no longer holds steps back. (Until session
        15 any file's later step completed a step, so a file flushed later gave its points as an extra record
        of an iteration already judged, out of order.)"""
        records = self._poll(final, refresh)
        if self._log_until is not None and self.files:
            # OpenRL's log.txt had blocks before TensorBoard flushed its files (every 120 s): the event files go on
            # from where it stood; their earlier iterations were judged, once (until session 21 the whole run was
            # judged again from them, an alarm said and --on-alarm run twice). Once past it, every record counts
            # (a restart in place that goes back is the run's, as replay reads it).
            first_new = next((i for i, r in enumerate(records) if r.iteration > self._log_until), None)
            records = [] if first_new is None else records[first_new:]
            if first_new is not None:
                self._log_until = None
        elif records and not self.files and self.log_tail is not None:
            self._log_until = records[-1].iteration
        self._remember_files()
        return records

    def _poll(self, final: bool, refresh: bool) -> list[MetricRecord]:
        if refresh:
            self.refresh()
        self.reads += 1
        new: dict[str, tuple[list[int], list[float], list[int]]] = {}
        if self.files and not self.csv_mode:
            self._read_tails(new, final)
            # OpenRL writes one file per tag, every tag of an iteration before the next one's: a file read
            # early in the pass can miss a point that its iteration's other tags, read later, already
            # follow. A second pass has them (the files' new bytes only: cheap), so such a step need not wait
            # for the next poll.
            if len(self.files) > 1:
                self._read_tails(new, final)
            self.csv_mode = self._events_fail(new)
        elif not self.files:
            self.csv_mode = is_progress_csv(self.csv.path)
        if self.csv_mode:
            new.clear()
            self._read_csv(new, final)
        elif not self.files:
            return self._poll_log(final)
        if not self._identify(new, final):
            return []
        if self.assembler is not None:
            for tag, (steps, values, _) in in_feed_order(new):
                self.assembler.feed(tag, steps, values)
            if self.assembler.critic.swapped and not self._critic_said:
                self._critic_said = True
                self.notes.append(CRITIC_LOSS_NOTE)
            return self.assembler.records(final=final)
        for tag, (steps, values, sessions) in new.items():
            key = normalize_key(tag)
            channel = self.channels.setdefault(key, _Channel())
            channel.path = self._source.get(tag, channel.path)
            for step, value, session in zip(steps, values, sessions):
                channel.add(int(step), session)
                self.pending.setdefault(channel.position(), {})[key] = float(value)
        if final:
            ready = sorted(self.pending)
        else:  # a step holding a NaN/Inf is judged now: a run that dies on it logs no later step
            bound = self._bound()
            ready = sorted(k for k in self.pending
                           if k < bound or not all(math.isfinite(v) for v in self.pending[k].values()))
        if self.steps_per_iteration is None and ready:  # as replay's (logtxt.openrl_steps_per_iteration)
            steps = [k[-1] for k in ready if k[-1] > 0]
            first = first_logged_iteration(self.run_dir / "log.txt")
            nonfinite = any(not math.isfinite(v) for k in ready for v in self.pending[k].values())
            if first is None and len(steps) < 2 and not final and not nonfinite:
                return []  # one step alone cannot tell a resumed run's size: wait for a second (their gcd)
            if steps:
                self.steps_per_iteration = openrl_steps_per_iteration(steps, first)
        records = []
        for key in ready:
            metrics = self.pending.pop(key)
            step = key[-1]
            if step <= 0:
                continue
            records.append(MetricRecord(step // self.steps_per_iteration - 1, step, metrics))
        return records

    def _bound(self) -> tuple[int, int, int]:
        """The first (session, segment, step) not known complete: the newest any tag reached (a step waits for a
        later one: a tag whose file is not there yet) or the first at which a tag may still have a point to come."""
        channels = [c for c in self.channels.values() if c.last is not None]
        if not channels:
            return (0, 0, -1)
        bound = max(c.position() for c in channels)
        # OpenRL's tag files (logs/<tag>/<tag>/events..., below the main writer's) are created with their tag's
        # first point, which the writer may flush later than other tags' points: one that gave none yet holds
        # every step back. (The main writer's file can hold nothing at all: MAPush's.)
        shallowest = min(len(f.parts) for f in self.files)
        empty = [f for f in self.files if f not in self._pointed and len(f.parts) > shallowest]
        mtimes = {path: _mtime(path) for path in {c.path for c in channels} | set(empty)}
        newest = max((m for m in mtimes.values() if m is not None), default=None)

        def stale(path: Path | None) -> bool:  # stopped being logged (or its writer is gone): holds nothing back
            mtime = mtimes.get(path)
            return newest is not None and mtime is not None and newest - mtime > STALE_NS

        for c in channels:
            if not stale(c.path):
                bound = min(bound, c.due())
        if any(not stale(f) for f in empty):
            return (0, 0, -1)
        return bound

    def _read_tails(self, new: dict[str, tuple[list[int], list[float], list[int]]], final: bool = False) -> None:
        """Add every followed file's new points to ``new`` (tag -> (steps, values, sessions)): the session is the
        process that wrote the point, where a restarted OpenRL run's processes share the folder (as replay's)."""
        for path in self.files:
            self.tails.setdefault(path, EventFileTail(path))
        starts = session_starts({path: self.tails[path].first_wall_time for path in self.files})
        for path in self.files:
            tail = self.tails[path]
            points = tail.poll(final=final)
            self._take_warnings(path, tail.warnings)
            for tag, series in points.items():
                tag = series_tag(self.run_dir, path, tag)  # replay's name for it (add_scalars' sub-tag folders)
                self._source[tag] = path
                self._pointed.add(path)
                steps, values, sessions = new.setdefault(tag, ([], [], []))
                steps.extend(series.steps.tolist())
                values.extend(series.values.tolist())
                if starts:
                    sessions.extend(session_of(starts, wall) for wall in series.wall_times.tolist())
                else:
                    sessions.extend([0] * len(series.steps))

    def _take_warnings(self, path: Path, warnings: list[str]) -> None:
        """A followed file's warnings not passed on yet go to ``input_warnings`` (each said once)."""
        said = self._warned.get(path, 0)
        if len(warnings) > said:
            self.input_warnings.extend(warnings[said:])
            self._warned[path] = len(warnings)

    def _events_fail(self, new: dict) -> bool:
        """The run's event files give nothing to judge while its ``progress.csv`` would (replay then reads the CSV):
        every one of them corrupt before a point, or their tags, none tracked, beside a CSV whose columns are."""
        columns = progress_csv_columns(self.csv.path) if self.detected is None and not self.suspect else []
        if not columns:
            return False  # (a suspect record: undecided until it is read again)
        if all(tail.broken for tail in self.tails.values()) and not self.tags_seen:
            return True
        tags = self.tags_seen | set(new)
        return (bool(tags) and not detect(tags, forced=self.tags.framework, user_map=self.tags.map).recognised
                and detect(columns, forced=self.tags.framework, user_map=self.tags.map).recognised)

    def _read_csv(self, new: dict[str, tuple[list[int], list[float], list[int]]], final: bool) -> None:
        """SB3's ``progress.csv``: the points of the rows not read before (:class:`~watchdog.csvlog.ProgressCsvTail`)."""
        points = self.csv.poll(final=final)
        self._take_warnings(self.csv.path, self.csv.warnings)
        for tag, series in points.items():
            new[tag] = (series.steps.tolist(), series.values.tolist(), [0] * len(series))

    def _identify(self, new: dict[str, tuple[list[int], list[float], list[int]]], final: bool = False) -> bool:
        """Name the framework from the tags of a complete step; until then hold the points (False).

        A step's tags are all written once a later step has appeared (a framework writes an update's scalars
        together; the records wait for the same sign), so the name is decided from the tags of the steps before
        the newest held (or from all, once the writer is done): a poll that lands inside a write sees a prefix of
        its tags, and SB3's first two of an update (``time/fps``, ``train/approx_kl``) tie with OpenRL's names,
        which win a tie. (Until session 14 such a prefix decided, for good.)"""
        if self.detected is not None:
            return True
        self.tags_seen.update(new)
        for tag, points in new.items():
            held = self._held.setdefault(tag, ([], [], []))
            for kept, more in zip(held, points):
                kept.extend(more)
        if sum(len(steps) for steps, _, _ in self._held.values()) > HOLD_POINTS:
            self._held = {}  # a log of something else: keep its tag names (for the report), not its points
        tags = self.tags_seen
        if not final and self._held:
            newest = max((max(steps) for steps, _, _ in self._held.values() if steps), default=None)
            tags = {tag for tag, (steps, _, _) in self._held.items() if steps and min(steps) < newest}
        det = detect(tags, forced=self.tags.framework, user_map=self.tags.map)
        if not det.recognised:
            return False
        self.detected = det
        if det.framework != OPENRL or self.tags.map or self.csv_mode:  # a CSV's rows are whole records
            self.assembler = RecordAssembler(det, known_step_size(det.framework, self.run_dir))
        new.clear()
        new.update(self._held)
        self._held = {}
        return True

    @property
    def unread(self) -> bool:
        """Points read and not yet returned as records: the newest step, which waits for a later one (any
        framework's, not only OpenRL's), points held until the framework is named, or a log.txt being followed.
        (Until session 14 the end of a watch judged only OpenRL's last step, so another framework's last record,
        the NaN a run logs before it crashes among them, was never judged.)"""
        assembler = self.assembler
        return (bool(self.pending) or bool(self._held) or self.log_tail is not None
                or (assembler is not None and any(assembler.pending.values())) or self.suspect
                or any(t.torn_unsaid for t in self._followed()))

    @property
    def unrecognised(self) -> bool:
        """Tags have been read, and none of them is one we track (not: tracked ones whose step is not complete)."""
        return (self.detected is None and bool(self.tags_seen)
                and not detect(self.tags_seen, forced=self.tags.framework, user_map=self.tags.map).recognised)

    def info(self) -> dict:
        """What replay's ``RunData.info`` says about the run (framework, step unit, value targets)."""
        det = self.detected
        if det is None:
            return {}
        normalized, why = value_normalization(det.framework, self.run_dir)
        keys = det.keys()
        if det.framework in FRAMEWORKS:  # what it logs, not only what it has so far: its return may first come at
            keys |= set(FRAMEWORKS[det.framework].tags.values())  # its first finished episode, after the config is set
        return {"framework": det.framework, "framework_label": det.framework_label, "step_unit": det.step_unit,
                "keys": sorted(keys), "value_targets_normalized": normalized, "value_normalization": why}

    def _poll_log(self, final: bool) -> list[MetricRecord]:
        path = self.run_dir / "log.txt"
        if not path.exists():
            return []
        if self.log_tail is None:
            self.log_tail = LogTxtTail(path)
        records = self.log_tail.poll(final=final)
        self._take_warnings(path, self.log_tail.warnings)
        return records

    def _read_from(self) -> list[tuple[Path, int]]:
        """The files read from, with the bytes read from each."""
        return [(t.path, t.offset) for t in self.tails.values() if t.offset] + (
            [(self.csv.path, self.csv.size)] if self.csv.rows else []) + (
            [(self.log_tail.path, self.log_tail.offset)] if self.log_tail is not None and self.log_tail.offset else [])

    def _remember_files(self) -> None:
        """The files read from, as they are now (their inode and first bytes): :meth:`gone` tells another file of the
        same name."""
        for path, read in self._read_from():
            if path not in self._inodes:
                ident = _ident(path)
                if ident is not None:
                    self._inodes[path] = ident
            if len(self._heads.get(path, b"")) < min(read, HEAD_BYTES):
                head = _head(path, min(read, HEAD_BYTES))
                if head is not None:
                    self._heads[path] = head

    def gone(self) -> bool:
        """Has every file it read from vanished, or been replaced by another of its name (the run's folder deleted,
        or emptied for a new run)? A file of another inode that begins with the bytes read from the old one is the
        same file written anew (rsync's and sync clients' copy renamed into place): it is read on from where the old
        one was (until session 27 it was a new run, judged from its start, its alarm said and --on-alarm run again)."""
        if not self._inodes:
            return False
        for path, ident in self._inodes.items():
            now = _ident(path)
            if now == ident:
                return False
            head = self._heads.get(path)
            if now is not None and head and _head(path, len(head)) == head:
                self._inodes[path] = now  # the same file, a new copy
                return False
        return True  # every file read from vanished or holds other bytes

    def _followed(self) -> list:
        """The file tails the records come from: the CSV's once it is followed, else the event files'."""
        return [self.csv] if self.csv_mode else list(self.tails.values())

    @property
    def suspect(self) -> bool:
        """A file followed has a record that failed its checks and may still be being written (corrupt if it stays so)."""
        return any(t.suspect is not None and not t.broken for t in self._followed())

    @property
    def damaged(self) -> list[Path]:
        """Files followed read up to a corrupt record: the rest of each is lost (replay's ``damaged_files``)."""
        return [t.path for t in self._followed() if t.broken]

    @property
    def lost_lines(self) -> dict:
        """Replay's ``lost_lines`` and ``lost_lines_in``: the rows of the CSV followed, or the log.txt lines, whose
        record or value was left out (text where a number belongs); {} when none."""
        if self.csv_mode and self.csv.bad_rows:
            return {"lost_lines": self.csv.bad_rows, "lost_lines_in": PROGRESS_CSV}
        if self.log_tail is not None and self.log_tail.bad_values:
            return {"lost_lines": self.log_tail.bad_values, "lost_lines_in": "log.txt"}
        return {}

    def size(self) -> int:
        """Bytes of everything we follow: growth means the training is alive."""
        self.refresh()
        total = 0
        for path in [*self.files, self.csv.path, self.run_dir / "log.txt"]:
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


# --------------------------------------------------------------------------------------------- one run


class _BufferedLog:
    """A run's event log in fleet mode: events are kept during a poll and appended in one open,
    so hundreds of runs do not hold hundreds of open files."""

    def __init__(self, path: Path, say: Callable[[str], None]):
        self.path = path
        self.buffer: list[dict] = []
        self.say = say  # a run folder we cannot write (a read-only mount) is said once, not a crash of the fleet
        self.unwritable = False

    def __call__(self, event: dict) -> None:
        self.buffer.append(event)

    def flush(self) -> None:
        if self.buffer and not self.unwritable:
            try:
                with EventLog(self.path, hold=False) as log:
                    for event in self.buffer:
                        log.write(event)
            except OSError as exc:
                self.unwritable = True
                self.say(f"cannot write {self.path} ({exc.strerror or exc}): this run's watch events are shown "
                         "here only")
        self.buffer.clear()

    def close(self) -> None:
        self.flush()


@dataclass(eq=False)
class WatchedRun:
    """One followed run: its follower, its watchdog, what the summary and the metrics show."""

    name: str
    run_dir: Path
    follower: RunFollower
    wd: Watchdog
    log: EventLog | _BufferedLog
    alarms: int = 0
    last: MetricRecord | None = None
    error: str | None = None
    new_alarms: list[dict] = field(default_factory=list)
    adopted: bool = False  # the framework's config was applied (see _adopt_framework)
    unrecognised_said: bool = False
    would_switch_to: str = safe_config_name(OPENRL)  # the framework's safe config, once it is known
    gone_said: bool = False  # its folder was deleted while watched (said once; the verdict holds up to there)
    live: EventTail | None = None  # the training's own watchdog's event log, where it runs with one
    live_alarms: int = 0  # the divergence alarms in it
    judged: int = 0  # how many records were judged, over which iterations, with which keys: what bounds "healthy"
    iterations: tuple[int, int] | None = None  # the lowest and highest iteration judged (a log may go back)
    keys: set[str] = field(default_factory=set)
    last_value_loss: float = math.nan
    value_loss_span: ValueLossSpan = field(default_factory=ValueLossSpan)  # where the value loss stopped, if early

    def bounds(self) -> dict:
        """What the data lost bounds its verdict with, in replay's ``run_info`` keys (the end event carries them):
        damaged files, lost lines, a value loss that stopped early."""
        damaged = self.follower.damaged
        return {**({"damaged_files": [str(p) for p in damaged]} if damaged else {}), **self.follower.lost_lines,
                **self.value_loss_span.ends_early()}

    @property
    def divergence_alarms(self) -> int:
        """This watch's divergence alarms and those of the training's own watchdog (its event log in the run)."""
        return self.alarms + self.live_alarms

    @property
    def state(self) -> str:
        """The watchdog's state; "unrecognised" while the run's tags hold no signal we track, "waiting" until its
        first record is judged (no verdict yet: not "healthy"); "diverged" for good once it raised a divergence
        alarm, as replay's verdict is (a watcher rolls nothing back: until session 17 the summary table and the
        Prometheus state gauge went back to "healthy" a few quiet points after the alarm)."""
        if self.divergence_alarms:
            return State.DIVERGED.value
        if self.follower.unrecognised or (self.last is not None and not signals_found(self.keys)[0]):
            return UNRECOGNISED  # (a known framework's tags with no tracked signal among them, as replay: "healthy"
            # until session 30)
        if self.last is None:
            return WAITING
        return self.wd.state.value

    @property
    def value_loss(self) -> float:
        """The newest value loss judged (NaN: none yet, or a NaN): a last record without one (rl_games' reward-only
        frame) showed NaN in the table and the metrics until session 22."""
        return self.last_value_loss


_SEVERITY = {State.STOPPED.value: 0, State.DIVERGED.value: 0, State.ROLLED_BACK.value: 1, State.WARNING.value: 1,
             State.HEALTHY.value: 2}


def sort_runs(runs: list[WatchedRun]) -> list[WatchedRun]:
    """Diverged first, then warning, then healthy; by name within a state."""
    return sorted(runs, key=lambda r: (_SEVERITY.get(r.state, 1), r.name))


class _RunFinder:
    """The runs under a parent folder, including those that appear later."""

    def __init__(self, parent: Path, rescan_every: int):
        self.parent = parent
        self.rescan_every = max(1, rescan_every)
        self.known: set[Path] = set()
        self.known_real: set[Path] = set()  # the real folders of the runs found (links resolved)
        self.candidates: set[Path] = set()  # child folders that are not (yet) runs
        self.closed: set[Path] = set()  # folders it could not look into (said once: Watcher.poll)
        self.unsaid: list[tuple[Path, str]] = []  # ... with why, not said yet
        self._mtime: int | None = None
        self._candidate_mtimes: dict[Path, int | None] = {}  # the candidates' times when last looked into
        self._calls = 0
        self._last_list = -1

    def _moved(self, folder: Path) -> bool:
        """Has ``folder`` changed (or is it still settling) since it was last looked into?"""
        m = _mtime(folder)
        moved = m is None or m != self._candidate_mtimes.get(folder, -1) or time.time_ns() - m < SETTLE_NS
        self._candidate_mtimes[folder] = m
        return moved

    def new_runs(self) -> list[Path]:
        self._calls += 1
        m = _mtime(self.parent)
        if (m is None or m != self._mtime or time.time_ns() - m < SETTLE_NS
                or self._calls - self._last_list >= self.rescan_every):
            self._mtime, self._last_list = m, self._calls
            try:
                children = [p for p in self.parent.iterdir() if p.is_dir()]
            except OSError:
                children = []
            self.candidates |= {p for p in children if p not in self.known}
            looked = sorted(self.candidates)
            for folder in looked:
                self._moved(folder)
        else:
            # a run made inside a folder already listed (results/seed1/PPO_1) moves that folder's time, not the
            # parent's: until session 27 it was found at the periodic listing only (100 s by default)
            looked = [c for c in sorted(self.candidates) if self._moved(c)]
        closed: list[tuple[Path, str]] = []
        nested = [r for c in looked if not is_run_dir(c)
                  for r in iter_run_dirs(c, MAX_NESTED_DEPTH, closed=closed) if r not in self.known]
        for folder, why in closed:
            if folder not in self.closed:
                self.closed.add(folder)
                self.unsaid.append((folder, why))
        found = sorted({p for p in self.candidates if is_run_dir(p)} | set(nested), key=lambda p: (p.is_symlink(), p))
        self.candidates -= set(found)
        self.known |= set(found)
        new = []
        for run in found:  # one watcher per real folder: a link to a run (or a loop) is the same run
            real = real_path(run)
            if real is not None and real not in self.known_real:
                self.known_real.add(real)
                new.append(run)
        return sorted(new)


# --------------------------------------------------------------------------------------------- prometheus


def _escape_label(value: str) -> str:
    # a folder name that is not UTF-8 (its bytes kept as surrogates) is written with those bytes as \xff escapes: a
    # label is UTF-8 text (until session 22 such a name ended the watch with a UnicodeEncodeError)
    try:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name holds
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _prom_value(value: float | int) -> str:
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def prometheus_text(runs: list[WatchedRun], *, now: float | None = None) -> str:
    """Prometheus text exposition format (for node_exporter's textfile collector)."""
    codes = {s.value: c for s, c in STATE_CODES.items()}
    legend = ", ".join(f"{c} {s}" for s, c in sorted(codes.items(), key=lambda kv: kv[1]))
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {_prom_value(v)}" for labels, v in samples)

    def run_label(r: WatchedRun) -> str:
        return f'{{run="{_escape_label(r.name)}"}}'

    ordered = sorted(runs, key=lambda r: r.name)
    family("watchdog_run_state", "gauge", f"Watchdog state of the run ({legend}; -1 no verdict yet: no record "
           "judged, or no tracked signal).",
           [(run_label(r), codes.get(r.state, -1)) for r in ordered])
    family("watchdog_run_iteration", "gauge", "Last PPO iteration the watchdog judged (NaN: none yet).",
           [(run_label(r), r.last.iteration if r.last else math.nan) for r in ordered])
    family("watchdog_run_value_loss", "gauge", "The newest value loss judged (NaN: none yet).",
           [(run_label(r), r.value_loss) for r in ordered])
    family("watchdog_run_alarms_total", "counter", "Alarms raised on the run since the watch started.",
           [(run_label(r), r.divergence_alarms) for r in ordered])
    counts = {s: 0 for s in codes}
    for r in runs:
        counts[r.state] = counts.get(r.state, 0) + 1
    family("watchdog_runs", "gauge", "Number of followed runs in each state.",
           [(f'{{state="{_escape_label(s)}"}}', n) for s, n in counts.items()])
    family("watchdog_last_poll_timestamp_seconds", "gauge", "Unix time of the poll that wrote this file.",
           [("", time.time() if now is None else now)])
    return "\n".join(lines) + "\n"


def write_prometheus(path: Path, runs: list[WatchedRun]) -> None:
    """Atomically: a temporary file in the same folder, then ``os.replace``; through a symbolic link, the file it
    points at (the link stays)."""
    path = Path(os.path.realpath(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(prometheus_text(runs), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # (a full disk: no half-written temporary file left beside the collector's files)
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------- the loop


def _fleet_event(console: WatchdogConsole, name: str, ev: dict) -> None:
    """An alert in fleet mode: the usual line or panel, naming the run."""
    console.run_event(name, ev)


def print_summary(console: WatchdogConsole, runs: list[WatchedRun], title: str = "watch summary") -> None:
    def bounds(r: WatchedRun) -> str:  # the end line's words (until session 28 a damaged file alone, no lost lines)
        if r.last is None:
            return " (a damaged file: corrupt before a record)" if r.follower.damaged else ""
        notes = verdict_bounds(r.bounds(), r.last.iteration)
        return f" ({'; '.join(notes)})" if notes else ""

    rows = [[r.name, r.state + bounds(r),
             r.last.iteration if r.last else "-", r.value_loss if r.last else "-", r.divergence_alarms] for r in sort_runs(runs)]
    console.table(title, ["run", "state", "last iteration", "value loss", "alarms"], rows)


class Watcher:
    """The watch loop's state: the followed runs; :meth:`poll` is one pass over them."""

    def __init__(self, run_dir: Path, *, config: str | None = None, on_alarm: str | None = None,
                 events_out: Path | None = None, console: WatchdogConsole, fleet: bool | None = None,
                 prometheus: Path | None = None, rescan_every: int = RESCAN_EVERY):
        run_dir = check_run_dir(run_dir, may_be_missing=True)
        # a folder that is no run and holds none yet (or is not there yet: a watch started before the training) is
        # one run or a folder of runs by what appears in it first, whatever else it holds: a job script's empty seed
        # folders, a sweep.yaml (until session 17 an empty one was taken for one run, and every run after the first
        # that appeared in it was ignored; a missing one was an error; until session 27 one holding anything, empty
        # folders included, was one run, and the runs that then appeared in them were merged into one timeline)
        is_run = is_run_dir(run_dir)
        holds_runs = fleet is None and not is_run and bool(iter_run_dirs(run_dir))
        log_txt_alone = fleet is None and events_out is None and _log_txt_alone(run_dir)
        self.undecided = fleet is None and events_out is None and (log_txt_alone or not is_run and not holds_runs)
        if self.undecided:
            what = ("a log.txt with no records" if log_txt_alone else "no run in it" if _holds_anything(run_dir)
                    else "nothing in it" if run_dir.exists() else "not there")
            console.message(f"{run_dir}: {what} yet; waiting for a run (or runs) to appear", style="dim")
        if fleet is None:
            fleet = holds_runs
        if fleet and events_out is not None:
            raise InputError("--events-out is for one run; a folder of runs writes RUN/" + WATCH_EVENTS,
                             path=str(run_dir), hint="drop --events-out")
        self.run_dir, self.fleet, self.console, self.on_alarm = run_dir, fleet, console, on_alarm
        self.events_out, self.prometheus, self.rescan_every = events_out, prometheus, rescan_every
        cfg = load_watchdog_config(config)  # it cannot act on a process it does not own: alert only
        self.cfg = cfg.model_copy(update={"action": "alert", "memory": cfg.memory.model_copy(update={"action": "alert"})})
        self.runs: list[WatchedRun] = []
        self.finder = _RunFinder(run_dir, rescan_every) if fleet else None
        self.polls = 0
        self.replaced_alarms = 0  # divergence alarms of runs whose folder a new run took
        self.metrics_unwritable = False  # the last write of the Prometheus file failed (said once)
        if not fleet and not self.undecided:
            self.add_run(run_dir)

    def _decide(self) -> None:
        """The folder that held no run at start: one run once it is one, a folder of runs once runs appear in it."""
        if not self.run_dir.is_dir():
            return
        if _log_txt_alone(self.run_dir):  # neither yet
            return
        if is_run_dir(self.run_dir):
            self.undecided = False
            self.add_run(self.run_dir)
        elif iter_run_dirs(self.run_dir):
            self.undecided, self.fleet = False, True
            self.finder = _RunFinder(self.run_dir, self.rescan_every)
            self.console.message(f"{self.run_dir}: watching it as a folder of runs", style="dim")

    def add_run(self, path: Path) -> WatchedRun:
        fleet, console = self.fleet, self.console
        name = _relative_name(path, self.run_dir) if fleet else (path.name or str(path))
        if fleet:
            log = _BufferedLog(path / WATCH_EVENTS, lambda text: console.message(f"{name}: {text}", style="yellow"))
        else:
            log = _event_log(self.events_out or path / WATCH_EVENTS, console)
        follower = RunFollower(path, rescan_every=self.rescan_every, tags=self.cfg.tags)
        run = WatchedRun(name, path, follower, None, log)  # type: ignore[arg-type]

        def note(ev: dict) -> None:
            if ev["event"] == "alarm":
                run.alarms += 0 if ev.get("resource") else 1  # a memory alarm runs --on-alarm; it is not divergence
                run.new_alarms.append(ev)

        sinks = [run.log, (lambda ev: _fleet_event(console, name, ev)) if fleet else console, note]
        run.wd = Watchdog(self.cfg, listeners=sinks)
        run.wd.start(run_dir=str(path), mode="watch")
        if isinstance(run.log, _BufferedLog):
            run.log.flush()  # create our file now, before the run's tree is first listed
        self.runs.append(run)
        return run

    def poll(self) -> bool:
        """Pick up new runs, read the runs whose files changed; True if anything was new."""
        self.polls += 1
        if self.undecided:
            self._decide()
        new = self.finder.new_runs() if self.finder is not None else []
        while self.finder is not None and self.finder.unsaid:  # not known to be a run: said once, left out (replay's)
            folder, why = self.finder.unsaid.pop(0)
            self.console.message(f"{folder}: cannot look into it ({why}); left out", style="yellow")
        for path in new:
            self.add_run(path)
        for run in list(self.runs):  # (a folder deleted and made again: a new run, until session 27 judged on the old)
            if (not run.gone_said or run.run_dir.is_dir()) and run.follower.gone():
                self._vanished(run)
        changed = []
        for run in self.runs:
            try:
                if run.follower.changed() or run.follower.suspect:  # a bad record is looked at again, changed or not
                    changed.append(run)
            except (OSError, WatchdogError) as exc:
                _run_error(self.console, run, exc, self.fleet)
        for run in changed:
            _read(run, False, self.console, self.on_alarm, self.fleet)
        for run in self.runs:
            _read_live_log(run, self.console)
        return bool(new or changed)

    def _vanished(self, run: WatchedRun) -> None:
        """The files a run was read from are gone. Its folder still there: a new run in it, followed and judged from
        scratch (it was judged against the old run's history, its alarm missed, into a deleted event log); its
        folder gone: said once, and the verdict holds up to there (until session 17 nothing was said, exit 0)."""
        seen = f"it {run.last.iteration}" if run.last is not None else "its start"
        if run.run_dir.is_dir():
            self.replaced_alarms += run.divergence_alarms
            self.runs.remove(run)
            self.console.message(f"{run.name}: its files were replaced (a new run in its folder); judged up to {seen}, "
                                 "the new run from its start", style="bold yellow")
            self.add_run(run.run_dir)
        else:
            run.gone_said = True
            self.console.message(f"{run.name}: its folder is gone (deleted while watched); judged up to {seen}",
                                 style="bold red")

    def flush(self) -> None:
        """The writers are done: judge every run's last (pending) step."""
        for run in self.runs:
            if run.follower.unread:
                _read(run, True, self.console, self.on_alarm, self.fleet)
            _read_live_log(run, self.console)

    def write_metrics(self) -> None:
        """The Prometheus file, after each poll. A write the system refuses (its folder removed, a full disk) is said
        once and tried again at the next poll: the metrics are a view of the watch, not the watch (until session 27
        the error ended it, the runs unfollowed and --on-alarm dead)."""
        if self.prometheus is None:
            return
        try:
            write_prometheus(self.prometheus, self.runs)
        except OSError as exc:
            if not self.metrics_unwritable:
                self.metrics_unwritable = True
                self.console.message(f"watchdog: cannot write {self.prometheus} ({exc.strerror or exc}): the metrics "
                                     "are not updated; still watching, and trying again at each poll", style="yellow")
            return
        if self.metrics_unwritable:
            self.metrics_unwritable = False
            self.console.message(f"watchdog: {self.prometheus} written again", style="dim")

    def close(self, reason: str | None = None) -> None:
        for run in self.runs:
            if reason is not None:
                run.wd.end(reason=reason)
            run.log.close()

    @property
    def diverged(self) -> bool:
        return bool(self.replaced_alarms) or any(r.divergence_alarms for r in self.runs)


def watch(run_dir: Path, *, config: str | None, interval_s: float, idle_exit_s: float | None,
          on_alarm: str | None, events_out: Path | None, console: WatchdogConsole, fleet: bool | None = None,
          summary_every: int = 12, prometheus: Path | None = None, rescan_every: int = RESCAN_EVERY) -> int:
    """Follow ``run_dir`` (one run, or a folder of runs: ``fleet``, auto-detected when None) until
    interrupted or idle for ``idle_exit_s``; 1 if a run diverged."""
    w = Watcher(run_dir, config=config, on_alarm=on_alarm, events_out=events_out, console=console, fleet=fleet,
                prometheus=prometheus, rescan_every=rescan_every)
    last_growth = time.monotonic()
    reason = None
    try:
        while True:
            if w.poll():  # measured after reading: a long first pass over a big tree is not idleness
                last_growth = time.monotonic()
            idle = idle_exit_s is not None and time.monotonic() - last_growth >= idle_exit_s
            if idle:
                w.flush()
                reason = f"no new data for {idle_exit_s:g} s"
                for run in w.runs:  # the verdict on the END line (the exit code alone said it until session 18)
                    if run.state == UNRECOGNISED:
                        _say_unrecognised(run, console)
                    run.wd.end(reason=reason + _verdict_note(run), verdict=run.state, **run.bounds())
                if w.fleet:
                    print_summary(console, w.runs, "watch summary (final)")
                w.write_metrics()
                if any(r.state == UNRECOGNISED for r in w.runs):
                    return 2  # never "healthy" for a run we could not read
                if not any(r.last is not None for r in w.runs):  # nothing judged: no "no divergence seen" either
                    if w.diverged:  # but a training's own watchdog said its alarm here: a divergence seen, as replay's
                        return 1  # exit for its event log (until session 29: 2, "no verdict", after saying the alarm)
                    console.message(nothing_to_judge(run_dir, idle_exit_s, w.runs, w.fleet), style="red")
                    return 2
                if any(r.error is not None and r.last is None for r in w.runs):
                    return 2  # a run whose files could not be read, never judged (replay: unreadable; exit 0 until session 21)
                # judged up to a corrupt record, without lost lines, or with a value loss that stopped early, and not
                # diverged: "no divergence" for the whole run is more than the data says (replay's exit 2, and replay's
                # order: this before a divergence elsewhere; until session 27 lost lines and the value loss's end
                # were not this watch's rule)
                if any((verdict_bounded(r.bounds()) or r.gone_said) and not r.divergence_alarms for r in w.runs):
                    return 2  # (a folder deleted while watched: judged up to there only)
                return 1 if w.diverged else 0
            w.write_metrics()
            if w.fleet and summary_every > 0 and w.polls % summary_every == 0:
                print_summary(console, w.runs)
            time.sleep(interval_s)
    finally:
        w.close()


def _verdict_note(run: WatchedRun) -> str:
    """What bounds a run's verdict: (healthy) it was too short or logged no value loss; its files were damaged, lines
    of its log lost, its value loss read only part of the way (replay's headline says the same)."""
    notes = []
    if run.last is not None and run.state == State.HEALTHY.value:
        low, high = run.iterations or (0, 0)
        short = high - low < run.wd.cfg.warmup.min_iters or too_few_records(run.judged, run.wd.cfg)
        notes += healthy_limits(short, signals_found(run.keys)[1])
    notes += verdict_bounds(run.bounds(), run.last.iteration if run.last is not None else None)
    return "".join(f"; {note}" for note in notes)


def nothing_to_judge(run_dir: Path, idle_s: float, runs: list[WatchedRun] = (), fleet: bool = False) -> str:
    """Why a watch that read no metrics at all ends without a verdict (exit 2)."""
    if not run_dir.exists():
        return (f"{run_dir}: run directory not found in {idle_s:g} s (no run appeared there), so no verdict; check the "
                "path")
    if fleet and not runs and is_run_dir(run_dir):  # its own files are no folder of runs (said "none" until session 21)
        return (f"{run_dir}: no run below it in {idle_s:g} s, so no verdict; it is a run itself: watch it without "
                "--fleet")
    damaged = [p for r in runs for p in r.follower.damaged]
    events = [p for p in (run_dir / EVENTS_FILENAME, *run_dir.glob(f"*/{EVENTS_FILENAME}")) if p.is_file()]
    if damaged:
        return (f"{run_dir}: no metrics in {idle_s:g} s: {damaged[0]}"
                f"{f' and {len(damaged) - 1} more event file(s)' if len(damaged) > 1 else ''} corrupt before its "
                "first tracked point (the input line above says where), so no verdict")
    files = [f for r in runs for f in r.follower.files]
    if files:
        return (f"{run_dir}: no metrics in {idle_s:g} s: {len(files)} TensorBoard event file(s), none with a complete "
                "record of a tracked signal, so no verdict")
    hint = (f"; {events[0]} is a live watchdog's event log: that run is judged in its own process already, and "
            "`watchdog replay` reads it" if events else
            "; is it the folder the training writes its TensorBoard events (or SB3's progress.csv, or OpenRL's "
            "log.txt) to?")
    return (f"{run_dir}: no metrics in {idle_s:g} s (no TensorBoard event file, progress.csv or log.txt with a tracked "
            "signal), "
            f"so no verdict{hint}")


def _relative_name(path: Path, parent: Path) -> str:
    """A fleet's run by its path below the watched folder (nested runs: SB3's PPO_1 folders repeat)."""
    try:
        return str(path.relative_to(parent)) or path.name
    except ValueError:
        return path.name


def _run_error(console: WatchdogConsole, run: WatchedRun, exc: Exception, fleet: bool) -> None:
    """One run's unreadable file must not stop the fleet (one run alone: an error, as before)."""
    if not fleet:
        raise exc
    text = str(exc)
    if text != run.error:  # once per distinct problem, not once per poll
        console.message(f"{run.name}: {text}", style="red")
    run.error = text


def _read(run: WatchedRun, final: bool, console: WatchdogConsole, on_alarm: str | None, fleet: bool) -> None:
    try:
        records = run.follower.poll(final=final, refresh=False)
    except (OSError, WatchdogError) as exc:
        _run_error(console, run, exc, fleet)
        return
    _adopt_framework(run, console)
    while run.follower.notes:
        console.message(f"{run.name}: {run.follower.notes.pop(0)}", style="dim")
    while run.follower.input_warnings:  # replay's "input:" lines, as they happen
        console.message(f"{run.name}: input: {run.follower.input_warnings.pop(0)}", style="yellow")
    _judge(run, records, console, on_alarm, fleet)


def _say_unrecognised(run: WatchedRun, console: WatchdogConsole, when: str = "", then: str = "") -> None:
    """Once per run: none of its tags is a signal we track (its framework unknown, or known and none of its tags one
    the detectors read), so no verdict."""
    if run.unrecognised_said:
        return
    run.unrecognised_said = True
    tags = sorted(run.follower.tags_seen)
    console.message(f"{run.name}: no tracked signal among its tags{' ' + when if when else ''} ({', '.join(tags[:12])}"
                    f"{', ...' if len(tags) > 12 else ''}); {then}see docs/frameworks.md to name the framework or "
                    "map its tags", style="yellow")


def _adopt_framework(run: WatchedRun, console: WatchdogConsole) -> None:
    """Once the run's framework is known, before its first record is judged: the watchdog gets the
    run's config (the absolute value-loss rule off where value targets are not normalised), as in
    replay; a run whose tags are all unknown is said so, once."""
    follower = run.follower
    if follower.unrecognised:
        _say_unrecognised(run, console, "yet", "still following - ")
    if follower.detected is None or run.adopted:
        return
    run.adopted = True
    info = follower.info()
    run.would_switch_to = safe_config_name(info["framework"])
    if run.wd.last_record is None:
        cfg = config_for_run(run.wd.cfg, info)
        if cfg is not run.wd.cfg:
            run.wd = Watchdog(cfg, listeners=run.wd.listeners)
    rule = "on" if run.wd.cfg.value_loss.enabled else "off"
    console.message(f"{run.name}: {info['framework_label']} logs, steps are {info['step_unit']}; "
                    f"absolute value-loss rule {rule} ({info['value_normalization']})", style="dim")


def _judge(run: WatchedRun, records: list[MetricRecord], console: WatchdogConsole, on_alarm: str | None,
           fleet: bool) -> None:
    for record in records:
        # a watcher owns no checkpoints: it notes where the run was healthy and what it would do
        carry_out(run.wd, run.wd.observe(record), WATCHER, config_name=run.would_switch_to)
        run.last = record
        run.judged += 1
        low, high = run.iterations or (record.iteration, record.iteration)
        run.iterations = (min(low, record.iteration), max(high, record.iteration))
        run.keys.update(record.metrics)
        run.value_loss_span.add(record)
        run.last_value_loss = record.metrics.get(VALUE_LOSS, run.last_value_loss)
        if not fleet:
            console.status(record, run.wd.state.value)
        while run.new_alarms:
            event = run.new_alarms.pop(0)
            if on_alarm:
                run_on_alarm(on_alarm, event, run.run_dir, console)
    if isinstance(run.log, _BufferedLog):
        run.log.flush()


def _read_live_log(run: WatchedRun, console: WatchdogConsole) -> None:
    """A run trained with a live watchdog: its event log holds that watchdog's alarms, and the iterations it rolled
    back, which the TensorBoard files this watch judges leave out. Its divergence alarms count for the run (state,
    table, exit code), as replay, which reads that log, calls the run diverged (until session 17 such a run was
    watched to "healthy", exit 0). They are said, not acted on: the training's watchdog acted."""
    if run.live is None:
        path = run.run_dir / EVENTS_FILENAME
        try:
            if not path.is_file() or getattr(run.log, "path", None) == path:  # (--events-out naming it: our own)
                return
        except OSError:  # a folder we may not look into: its follower says why
            return
        run.live = EventTail(path)
    try:
        events = run.live.poll()
    except OSError:
        return
    for event in events:
        if event.get("event") == "alarm" and not event.get("resource"):
            run.live_alarms += 1
            # (what this watch judges, where it judges anything: a run logging to its event log alone is judged by its
            # own process only; until session 29 the line spoke of TensorBoard files there too)
            judged = (": the metrics judged here leave out the iterations it rolled back" if run.last is not None
                      else ": this watch reads no metrics of its own for it, the verdict is that watchdog's")
            console.message(f"{run.name}: the training's own watchdog raised an alarm at it {event.get('iteration')} "
                            f"[{event.get('detector')}] (see {run.live.path.name}; replay reads it){judged}",
                            style="bold red")


def _event_log(path: Path, console: WatchdogConsole) -> EventLog:
    """One run's watch event log, opened before the first poll: a folder we cannot write (a run on a read-only
    mount) is one line naming the way out; a disk that refuses its lines later is said on the console."""
    try:
        return EventLog(path, say=lambda text: console.message(f"watchdog: {text}", style="yellow"))
    except OSError as exc:
        raise InputError(f"cannot write the watch's event log ({exc.strerror or exc})", path=str(path),
                         hint="--events-out FILE in a folder you can write") from exc


def _check_args(args: argparse.Namespace) -> None:
    """The flags' values, and that the files watch writes can be written, before the first poll."""
    if args.run_dir == "":  # an unset variable: this folder, watched, until session 22
        check_run_dir(args.run_dir)
    check_number("--interval", args.interval, at_most=MAX_INTERVAL_S, hint="a poll at least once a day")
    if args.on_alarm is not None and not args.on_alarm.strip():  # an unset $CMD: the alarm would run nothing, unsaid
        raise InputError("--on-alarm is empty", hint="give the command to run at an alarm, or leave the flag out")
    check_number("--rescan-every", args.rescan_every, unit="polls")
    check_number("--summary-every", args.summary_every, zero_ok=True, unit="polls", hint="0: the table at exit only")
    if args.idle_exit is not None:
        check_number("--idle-exit", args.idle_exit, zero_ok=True, hint="0: read once; leave it out to watch until Ctrl-C")
    if args.prometheus is not None:
        check_output_file("--prometheus", args.prometheus, replaced=True,
                          hint="create it first (node_exporter's textfile collector directory)")
    if args.events_out is not None:
        check_output_file("--events-out", args.events_out, creates_folders=True)


def _cmd_watch(args: argparse.Namespace) -> int:
    from watchdog.console import WatchdogConsole

    _check_args(args)
    try:
        return watch(Path(args.run_dir), config=args.config, interval_s=args.interval, idle_exit_s=args.idle_exit,
                     on_alarm=args.on_alarm, events_out=Path(args.events_out) if args.events_out else None,
                     console=WatchdogConsole(role="watch"), fleet=True if args.fleet else None,
                     summary_every=args.summary_every, prometheus=Path(args.prometheus) if args.prometheus else None,
                     rescan_every=args.rescan_every)
    except KeyboardInterrupt:
        return 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watch", help="follow a run (or a folder of runs) being written by other processes; "
                                     "alert (and run a command) on divergence")
    p.add_argument("run_dir", help="a run directory, or a folder whose children are runs (followed as a fleet)")
    p.add_argument("--config", default=None, help="watchdog config (default: built-in defaults); action is always alert")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    p.add_argument("--idle-exit", type=float, default=None,
                   help="exit after this many seconds without new data in any run (default: run until Ctrl-C)")
    p.add_argument("--on-alarm", default=None,
                   help="shell command run on each alarm; WATCHDOG_RUN_DIR, WATCHDOG_ITERATION, WATCHDOG_DETECTOR, "
                        "WATCHDOG_ONSET, WATCHDOG_REASON are set")
    p.add_argument("--events-out", default=None, help=f"event log to append to (default RUN_DIR/{WATCH_EVENTS}; one run only)")
    p.add_argument("--fleet", action="store_true",
                   help="treat RUN_DIR as a folder of runs even when it holds none yet (auto-detected otherwise)")
    p.add_argument("--summary-every", type=int, default=12,
                   help="folder of runs: print the summary table every N polls (default 12; 0: only at exit)")
    p.add_argument("--prometheus", metavar="FILE", default=None,
                   help="after each poll, atomically write Prometheus text format metrics to FILE "
                        "(e.g. node_exporter's textfile collector directory, FILE ending in .prom)")
    p.add_argument("--rescan-every", type=int, default=RESCAN_EVERY,
                   help=f"list each run's tree again at least every N polls (default {RESCAN_EVERY})")
    p.set_defaults(func=_cmd_watch)
