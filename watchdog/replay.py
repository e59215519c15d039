"""Offline: runs -> the same pipeline -> onset, verdict, recommendation.

Replay is a second driver of :class:`watchdog.pipeline.Watchdog` (live training is the first):
it feeds a finished run's records through the same detectors and policy, fakes the checkpoint
saves and rollbacks the live driver would do, and reports what a live watchdog would have done.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shlex
import sys
from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from watchdog.config import NonFiniteConfig, TagsConfig, WarmupConfig, WatchdogConfig
from watchdog.detectors import NonFinite, ValueLossThreshold, Verdict
from watchdog.errors import CheckpointError, InputError, check_run_dir
from watchdog.eventlog import EVENTS_FILENAME, _jsonable, is_recovery, read_events
from watchdog.frameworks import (
    FRAMEWORKS,
    LIVE_FRAMEWORKS,
    LOOP,
    OPENRL,
    RL_GAMES_EPOCHS,
    assemble,
    check_framework_checkpoint,
    config_for_run,
    detect,
    epoch_frames,
    framework_resume_command,
    known_step_size,
    list_framework_checkpoints,
    py_path_literal,
    safe_config_name,
    signals_found,
    value_normalization,
    value_rule,
)
from watchdog.logtxt import first_logged_iteration, openrl_steps_per_iteration, parse_log_txt
from watchdog.pipeline import Watchdog, onset_from_history
from watchdog.driver import VirtualDriver, carry_out
from watchdog.policy import EXACT_ONSET, Rollback, Stop, latest_target_iteration
from watchdog.signals import CURRICULUM_PREFIX, EPISODE_RETURN, STEP_REWARD, VALUE_LOSS, WATCHDOG_ROLLBACKS, MetricRecord

log = logging.getLogger(__name__)

UNRECOGNISED = "unrecognised"  # verdict of a run in which no tracked signal was found
# what a replay's timeline (and --json's events) holds: what the watchdog said and did, and the restarts it replayed
TIMELINE_EVENTS = ("task_change", "warning", "alarm", "rollback", "restart", "stop", "recovered")
UNREADABLE = "unreadable"  # verdict of a run whose files could not be read (replayed among others)
REFINE_POINTS_AFTER = 10  # points after the alarm the offline onset fit may use
SAFE_CONFIG = safe_config_name(OPENRL)
TRAIN_TASKS = ("push_lite", "go1push_mid", "go1push_upper")
"""openrl_ws/train.py's ``--task`` values (``openrl_ws.envs.TASKS``, not imported: the library does not import OpenRL's
side)."""
CHECKPOINT_FACTS = ("task", "algo", "num_envs", "hidden_size", "layer_N")
"""What an OpenRL checkpoint's config says that a resume command must repeat: train.py's own flags, and the network's
shape (passed on to OpenRL's parser), without which its weights do not load."""
_OUR_CKPT = re.compile(r"^stable_(\d+)_steps$")
EVENT_PREFIX = "events.out.tfevents."


# --------------------------------------------------------------------------- loading


@dataclass
class RunData:
    """One run's records from its richest source, plus what the readers warned about."""

    records: list[MetricRecord]
    source: str  # "events" | "tensorboard" | "csv" (SB3's progress.csv) | "log.txt"
    warnings: list[str] = field(default_factory=list)
    steps_per_iteration: int | None = None
    # task, num_envs when known; framework, framework_label, step_unit, keys, signals_found,
    # signals_absent, tags_seen, value_targets_normalized, value_normalization (see load_run)
    info: dict[str, Any] = field(default_factory=dict)


MAX_RUN_DEPTH = 6  # folders below a path searched for runs


def _holds_events(path: Path) -> bool:
    try:
        return any(c.name.startswith(EVENT_PREFIX) and c.is_file() for c in path.iterdir())
    except OSError:
        return False


def _openrl_logs(logs: Path) -> bool:
    """OpenRL's ``logs/``: an event file in it, or ``logs/<tag>/<tag>/`` folders (add_scalars)."""
    if not logs.is_dir():
        return False
    if _holds_events(logs):
        return True
    try:
        return any((c / c.name).is_dir() for c in logs.iterdir() if c.is_dir())
    except OSError:
        return False


def is_run_dir(path: Path) -> bool:
    """A run: our event log, OpenRL's log.txt or logs/ folder, event files directly in it (SB3's
    ``PPO_1/``, rsl_rl, skrl) or in its ``summaries/`` (rl_games), or SB3's ``progress.csv``."""
    try:
        if not path.is_dir():
            return False
        return run_by_logs(path) or log_txt_run(path)
    except OSError:  # a folder we may not look into (iter_run_dirs' ``closed`` says so): until session 21 a traceback
        return False  # that ended a fleet's replay or watch


def log_txt_run(path: Path) -> bool:
    """A run by its ``log.txt`` (OpenRL's, TensorBoard off): one with runs below it is a sweep's console output, its
    folder a folder of runs (until session 20 one run whose TensorBoard files, read from every folder below, were
    those runs' merged into one timeline)."""
    return (path / "log.txt").exists() and not _runs_below(path)


def run_by_logs(path: Path) -> bool:
    """A run by anything but a ``log.txt`` (the one marker a folder of runs may hold too: a sweep's console output)."""
    from watchdog.csvlog import PROGRESS_CSV, is_progress_csv

    if (path / EVENTS_FILENAME).exists() or _openrl_logs(path / "logs"):
        return True
    csv_file = path / PROGRESS_CSV
    return (_holds_events(path) or _holds_events(path / "summaries") or is_progress_csv(csv_file)
            or csv_file.is_file() and not _can_open(csv_file))  # SB3's by its name: said unreadable, not left out


def _can_open(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def real_path(path: Path) -> Path | None:
    """The folder a path leads to, links resolved; None where they loop beyond what Python resolves."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def iter_run_dirs(path: Path, max_depth: int = MAX_RUN_DEPTH, seen: set[Path] | None = None,
                  closed: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The runs at or below ``path`` (nested folders of runs), not looking inside a run. Each folder once
    (``seen``: the real paths met so far): a symlink to a run beside it (``latest -> run8``) or back up the tree
    (a loop) counted the same run again, rolled back twice as often, or seven times. ``closed`` collects the
    folders that could not be looked into, with why: a folder of runs may hold one (another user's run, a file
    system's ``lost+found``), which is said and left out, not a run said unreadable."""
    seen = set() if seen is None else seen
    real = real_path(path)
    if real is None or real in seen:
        return []
    seen.add(real)
    if is_run_dir(path):
        return [path]
    if not path.is_dir():
        return []
    # (at the depth bound a folder is listed only to say one that cannot be)
    children = _child_folders(path, closed) if max_depth > 0 or closed is not None else []
    if max_depth <= 0:
        return []
    return [run for child in children for run in iter_run_dirs(child, max_depth - 1, seen, closed)]


def _child_folders(path: Path, closed: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The folders in ``path``; one that cannot be listed goes to ``closed`` with why."""
    try:
        entries = list(path.iterdir())
    except OSError as exc:
        if closed is not None:
            closed.append((path, exc.strerror or str(exc)))
        return []
    try:  # folders before links to folders: a run is named by its own folder when a link also leads to it
        return sorted((p for p in entries if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: (p.is_symlink(), p.name))
    except OSError:
        return []


def _runs_below(path: Path) -> bool:
    seen = {real} if (real := real_path(path)) is not None else set()
    return any(iter_run_dirs(child, MAX_RUN_DEPTH - 1, seen) for child in _child_folders(path))


def find_run_dirs(paths: list[str | Path], closed: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Each path is a run, or a folder with runs somewhere below it; anything else is bad input. ``closed`` collects
    the folders below them that could not be looked into (left out, for the caller to say)."""
    from watchdog.csvlog import PROGRESS_CSV, STEP_COLUMN

    runs: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = check_run_dir(raw)
        if real_path(path) in seen:
            continue  # named twice, or met inside a folder named before: judged once
        found = iter_run_dirs(path, seen=seen, closed=closed)  # (a named folder we may not read: check_run_dir's error)
        csv_file = path / PROGRESS_CSV
        if not found and csv_file.is_file():  # named, not "no runs": empty, damaged, or another program's CSV
            raise InputError(f"{PROGRESS_CSV} is not SB3's: no {STEP_COLUMN} column in its first line (empty, "
                             "damaged, or another program's CSV)", path=str(csv_file),
                             hint="pass the folder of an SB3 run whose CSV logger wrote it")
        if not found:
            raise InputError("not a run directory and holds no runs", path=str(path),
                             hint="pass a folder with TensorBoard event files (any framework), SB3's progress.csv, "
                                  "log.txt, logs/ or watchdog_events.jsonl, or a folder of such runs")
        runs.extend(found)
    return runs


def load_run(run_dir: str | Path, tags: TagsConfig | None = None) -> RunData:
    """Records from our event log, else TensorBoard events, else SB3's progress.csv, else log.txt (the richest
    first).

    A source whose records carry no tracked signal gives way to the next; when none has one, the
    first source that had records is returned with ``info["signals_found"] == []`` and the tags it
    saw, so the caller can say so instead of calling the run healthy.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError("run directory not found", path=str(root), hint="check the path")
    warnings: list[str] = []
    unrecognised: RunData | None = None
    lost: dict = {}  # an event log whose lines were damaged and held no record: what the live watchdog did is lost
    for loader in (_load_events, _load_tensorboard, _load_csv, _load_logtxt):
        try:
            data = loader(root, warnings) if loader in (_load_events, _load_logtxt) else loader(root, warnings, tags)
        except OSError as exc:  # a file we may not read (permissions): one line naming it, the run said unreadable
            raise InputError(f"cannot read it ({exc.strerror or exc})", path=str(exc.filename or root),
                             hint="check the file's permissions") from None
        if data is not None and not data.records and data.info.get("lost_lines"):
            lost = {k: data.info[k] for k in ("lost_lines", "lost_lines_in")}
            continue
        if data is None or not data.records and not data.info.get("tags_seen"):
            continue
        _note_signals(data)
        if data.info["signals_found"]:
            data.warnings = warnings + data.warnings
            # the fallback's verdict is bounded by what the damaged log held (its alarms, rollbacks, NaNs): never a
            # plain "healthy", exit 2 (until session 19 a damaged log of a run that diverged replayed HEALTHY, exit 0)
            data.info.update(lost)
            return data
        unrecognised = unrecognised or data
    if unrecognised is not None:
        unrecognised.warnings = warnings + unrecognised.warnings
        return unrecognised
    detail = f" ({warnings[0]})" if warnings else ""
    raise InputError(f"no readable metrics{detail}", path=str(root),
                     hint="expected watchdog_events.jsonl, TensorBoard event files, SB3's progress.csv or log.txt "
                          "with metrics")


def _note_signals(data: RunData) -> None:
    """``info``: the keys the records carry, and which detector signals were found / absent."""
    keys = set()
    for rec in data.records:
        keys.update(rec.metrics)
    found, absent = signals_found(keys)
    data.info.setdefault("framework", OPENRL)
    data.info.setdefault("step_unit", "env steps")
    if "value_targets_normalized" not in data.info:
        normalized, why = value_normalization(data.info["framework"], None)
        data.info["value_targets_normalized"], data.info["value_normalization"] = normalized, why
    data.info["keys"] = sorted(keys)
    data.info["signals_found"], data.info["signals_absent"] = found, absent


_NONFINITE = ("nan", "inf", "-inf")  # MetricRecord.to_dict's strings, which MetricRecord.from_mapping reads


_MAX_FLOAT_INT = int(sys.float_info.max)  # a JSON integer beyond it has no float


def _metrics_record(ev: dict) -> MetricRecord | str:
    """A metrics event's record, or why the event cannot be one (the words after "a metrics event"). Until session
    22 an iteration "forty" or null ended replay with a traceback (exit 1, diverged's code) and a value "abc" was
    dropped with nothing said."""
    iteration, steps, metrics = ev.get("iteration"), ev.get("env_steps"), ev.get("metrics")
    for name, value in (("iteration", iteration), ("env_steps", steps)):
        if type(value) is not int or value < 0:
            return f"has {name} {json.dumps(value)[:40]} (a count >= 0 expected)"
    if not isinstance(metrics, dict):
        return f"at iteration {iteration} has metrics {json.dumps(metrics)[:40]} (an object of numbers expected)"
    for key, value in metrics.items():
        if not (type(value) in (int, float) or isinstance(value, str) and value.lower() in _NONFINITE):
            return f"at iteration {iteration} has {key} = {json.dumps(value)[:40]} (a number expected)"
        if type(value) is int and abs(value) > _MAX_FLOAT_INT:  # (a traceback, exit 1, until session 29)
            return f"at iteration {iteration} has {key} = {str(value)[:40]}... (a number a float can hold expected)"
    return MetricRecord.from_mapping(iteration, steps, metrics)


def _load_events(root: Path, warnings: list[str]) -> RunData | None:
    path = root / EVENTS_FILENAME
    if not path.is_file():
        return None
    res = read_events(path)
    records, info, restarts, last_rollback, processes = [], {}, [], None, []
    stopped, resumed = None, None  # the last divergence stop; a process a person resumed after it (train.py --checkpoint)
    for ev in res.events:
        # how the log ends: a rollback trained on to a finish; not a later rollback, a divergence stop (a resource stop
        # is restarted and may still finish), a crash or an interrupt (the end event's `ended`)
        divergence_stop = ev["event"] == "stop" and not ev.get("restartable")
        if ev["event"] == "rollback" or divergence_stop:
            info.pop("live_recovered", None)
        if ev["event"] == "rollback":
            last_rollback, info["live_rollbacks"] = ev, info.get("live_rollbacks", 0) + 1
        elif divergence_stop:
            last_rollback, stopped, resumed = None, ev, None  # stopped after it: not recovered
        elif ev["event"] == "start" and stopped is not None and ev.get("resumed_from"):
            resumed = ev
        elif ev["event"] == "end" and ev.get("ended", "finished") != "finished":
            info.pop("live_recovered", None)  # crashed or interrupted: the next process, if any, says more
        elif ev["event"] == "end" and resumed is not None and last_rollback is None and not ev.get("stopped"):
            # resumed by hand after the stop and trained on to its end: its final weights are the run's (until session
            # 20 replay recommended the same resume again, for ever)
            info["live_recovered"] = {"rollbacks": info.get("live_rollbacks", 0), "from_iteration": stopped.get(
                "iteration"), "to_iteration": None, "end_iteration": ev.get("iteration"),
                "resumed_from": str(resumed["resumed_from"])}
        elif ev["event"] == "end" and last_rollback is not None and not ev.get("stopped"):
            info["live_recovered"] = {"rollbacks": info["live_rollbacks"], "from_iteration": last_rollback.get(
                "from_iteration"), "to_iteration": last_rollback.get("to_iteration"), "end_iteration": ev.get("iteration")}
        if ev["event"] == "metrics":
            record = _metrics_record(ev)
            if isinstance(record, str):  # a damaged line that is still JSON: lost, as one that is not
                res.warnings.append(f"{path}: a metrics event {record}; skipped")
                res.bad_lines += 1
            else:
                records.append(record)
        elif ev["event"] == "start":
            info.update(_info_from_start(ev, res.warnings, path))
            if records:  # a later process's start (resumed by hand, or a restart's child): its resources are its own
                processes.append(len(records))
        elif ev["event"] == "restart":  # `watchdog run` restarted the process: replayed before the next record
            restarts.append((len(records), ev))
    if restarts:
        info["restarts"] = restarts
    if processes:
        info["processes"] = processes
    if not records:
        warnings.append(f"{path}: no metrics events; falling back")
        if res.bad_lines:
            return RunData([], "events", [], None, {"lost_lines": res.bad_lines, "lost_lines_in": EVENTS_FILENAME})
        return None
    first = records[0]
    spi = first.env_steps // (first.iteration + 1) if first.env_steps else None
    if res.bad_lines:  # a damaged line mid-file: its record (a NaN, an alarm's) is lost, so is "healthy" for the run
        info["lost_lines"], info["lost_lines_in"] = res.bad_lines, EVENTS_FILENAME
    if info.get("framework") in FRAMEWORKS:
        info["step_size"], info["live_axis"] = spi or None, True  # the framework's checkpoints, on our axis
    return RunData(records, "events", list(res.warnings), spi or None, info)


def _info_from_start(ev: dict, warnings: list[str], path: Path) -> dict:
    """task / num_envs from the live run's start event (its argv); the framework of an integration's run
    (``watchdog.integrations``) and, where the integration knew it, whether its value targets are normalised
    (rl_games' ``normalize_value``), so replay judges the event log as the live run was judged. A field of the wrong
    type (a damaged line that is still JSON) is said in ``warnings`` and left out (a traceback, exit 1, until session
    28)."""
    info = {}
    for key, kind in (("config", dict), ("argv", list)):
        if ev.get(key) is not None and not isinstance(ev[key], kind):
            warnings.append(f"{path}: a start event's {key} is not a {'mapping' if kind is dict else 'list'} "
                            f"({type(ev[key]).__name__}); ignored")
            ev = {k: v for k, v in ev.items() if k != key}
    config = ev.get("config") or {}
    framework = LIVE_FRAMEWORKS.get(str(ev.get("framework")))
    if framework is not None:
        info["framework"] = framework
        if framework == LOOP:
            info["framework_label"] = "a loop of your own (watchdog.integrations.loop)"
        rule = config.get("reward_collapse")
        signal = rule.get("signal") if isinstance(rule, dict) else None
        if isinstance(signal, str):
            info["live_reward"] = signal  # the reward the integration judged (its records carry several)
        if isinstance(ev.get("envs"), int):
            info["envs"] = ev["envs"]  # skrl: its checkpoints count timesteps, each one env step of every env
        if isinstance(ev.get("value_targets_normalized"), bool):
            flag = ev["value_targets_normalized"]
            info["value_targets_normalized"] = flag
            info["value_normalization"] = f"the live run's start event: value targets normalised: {str(flag).lower()}"
    memory = config.get("memory")
    if isinstance(memory, dict):  # the live run's memory limits and action (config_for_run)
        info["live_memory"] = memory
    if ev.get("task") and isinstance(ev["task"], str):
        info["task"] = ev["task"]
    argv = [str(a) for a in ev.get("argv") or []]
    if framework is None and isinstance(ev.get("argv"), list):  # our train.py's command line: the resume command's
        info["argv"] = argv
    for i, arg in enumerate(argv[:-1]):
        if arg == "--num_envs":
            info["num_envs"] = argv[i + 1]
    return info


def _load_tensorboard(root: Path, warnings: list[str], tags: TagsConfig | None = None) -> RunData | None:
    from watchdog.tfevents import find_event_files, read_run_scalars

    tags = tags or TagsConfig()
    try:
        res = read_run_scalars(root)
    except InputError as exc:
        if find_event_files(root):  # there, and not readable (permissions): said, not silently another source
            warnings.append(str(exc))
        return None
    det = detect(res.scalars, forced=tags.framework, user_map=tags.map)
    if det.framework == OPENRL and not tags.map:
        records, spi = tb_records(res.scalars, res.sessions, first_logged_iteration(root / "log.txt"))
    else:
        notes: list[str] = []
        records, spi = assemble(res.scalars, det, notes, known_step_size(det.framework, root))
        warnings.extend(f"{root}: {note}" for note in notes)
    info = {"framework": det.framework, "framework_label": det.framework_label, "step_unit": det.step_unit,
            "tags_seen": sorted(res.scalars), "step_size": spi,
            "event_dirs": sorted({str(Path(f).parent) for f in res.files}), "damaged_files": res.damaged}
    live = res.scalars.get(WATCHDOG_ROLLBACKS)
    recoveries = int(np.nanmax(live.values)) if live is not None and len(live.values) else 0
    if recoveries > 0 and not (root / EVENTS_FILENAME).exists():
        # a live watchdog's own tags, without its event log: what it saw (a NaN iteration, its alarm) is in neither
        # the framework's tags nor here (replayed as plain healthy until session 19, found by an audit)
        warnings.append(f"{root}: its TensorBoard files say a live watchdog recovered the run {recoveries} "
                        f"time(s) ({WATCHDOG_ROLLBACKS}: rollbacks and restarts), and its {EVENTS_FILENAME}, which says "
                        "what that watchdog saw and did, is missing: replay judges the logged records alone (an update "
                        "that crashed on a NaN logs none)")
    if det.framework == "rl_games" and RL_GAMES_EPOCHS in res.scalars:
        series = res.scalars[RL_GAMES_EPOCHS]
        info["epoch_steps"] = epoch_frames(series.steps.tolist(), series.values.tolist())
    normalized, why = value_normalization(det.framework, root)
    info["value_targets_normalized"], info["value_normalization"] = normalized, why
    if not records:
        warnings.extend(res.warnings)
    return RunData(records, "tensorboard", list(res.warnings), spi, info)


def _load_csv(root: Path, warnings: list[str], tags: TagsConfig | None = None) -> RunData | None:
    """SB3's CSV logger's ``progress.csv``: its columns are its TensorBoard tags, read as SB3's TensorBoard is."""
    from watchdog.csvlog import PROGRESS_CSV, is_progress_csv, read_progress_csv
    from watchdog.logtxt import torn_line_warning

    path = root / PROGRESS_CSV
    if not is_progress_csv(path):
        if path.is_file():  # SB3's by its name, and not readable: the OSError load_run says in one line, not "none"
            open(path, "rb").close()
        return None
    tags = tags or TagsConfig()
    res = read_progress_csv(path)
    res.warnings += [w for w in (res.damage, res.torn and torn_line_warning(path, res.torn)) if w]
    det = detect(res.scalars, forced=tags.framework, user_map=tags.map)
    records, spi = assemble(res.scalars, det)
    normalized, why = value_normalization(det.framework, root)
    info = {"framework": det.framework, "framework_label": det.framework_label, "step_unit": det.step_unit,
            "tags_seen": sorted(res.scalars), "step_size": spi, "value_targets_normalized": normalized,
            "value_normalization": why, "damaged_files": [str(path)] if res.damage else []}
    if res.bad_rows:
        info["lost_lines"], info["lost_lines_in"] = res.bad_rows, PROGRESS_CSV
    return RunData(records, "csv", list(res.warnings), spi, info)


def tb_records(scalars: dict, sessions: list[float] | None = None,
               first_iteration: int | None = None) -> tuple[list[MetricRecord], int | None]:
    """Group TensorBoard series by step into records; a step going backwards starts a new segment.

    OpenRL logs iteration i at step (i + 1) x steps per iteration (:func:`~watchdog.logtxt.openrl_steps_per_iteration`,
    with ``first_iteration``, the first logged one's iteration, from ``log.txt``). Segments (a rolled-back run's
    restarts) stay in file order, never merged; ``sessions`` (:func:`~watchdog.tfevents.session_starts`) puts each
    point in the process that wrote it first.
    """
    points = _rows_at_shared_steps(scalars)
    if points is None:
        points = _points_by_segment(scalars, sessions or [])
    steps = [s for s, _ in points if s > 0]
    if not steps:
        return [], None
    spi = openrl_steps_per_iteration(steps, first_iteration)
    return [MetricRecord(s // spi - 1, s, metrics) for s, metrics in points], spi


def _rows_at_shared_steps(scalars: dict) -> list[tuple[int, dict[str, float]]] | None:
    """(step, metrics) built row by row when every tag has the same strictly increasing integer steps
    and float64 values (OpenRL's one scalar per tag per iteration, the common case); else None."""
    keys = list(scalars)
    series = [scalars[k] for k in keys]
    if not series:
        return None
    first = series[0].steps
    for s in series:
        if not (isinstance(s.steps, np.ndarray) and isinstance(s.values, np.ndarray)) or s.steps.ndim != 1 \
                or s.steps.dtype.kind not in "iu" or s.values.dtype != np.float64 \
                or s.steps.shape != first.shape or not np.array_equal(s.steps, first):
            return None
    if not bool(np.all(first[1:] > first[:-1])):
        return None
    columns = [s.values.tolist() for s in series]
    return [(step, dict(zip(keys, row))) for step, row in zip(first.tolist(), zip(*columns))]


def _points_by_segment(scalars: dict, sessions: list[float]) -> list[tuple[int, dict[str, float]]]:
    """(step, metrics) in (session, segment, step) order: the general case, steps going backwards included.

    A restarted OpenRL run's new process logs into the same folder (:func:`~watchdog.tfevents.session_starts`):
    its points come after the old one's whatever their steps, so a tag it logs every ``log_interval`` joins the
    new process's losses, not the old process's records. (Until session 15 a segment was each tag's own: such a
    tag, whose first new step was above its last old one, gave the old segment records of the new process.)"""
    from watchdog.tfevents import session_of

    points: dict[tuple[int, int, int], dict[str, float]] = {}
    for key, series in scalars.items():
        session, segment, previous = 0, 0, None
        walls = series.wall_times.tolist() if sessions else repeat(0.0)
        for step, value, wall in zip(series.steps.tolist(), series.values.tolist(), walls):
            if sessions and (now := session_of(sessions, wall)) != session:
                session, segment, previous = now, 0, None
            if previous is not None and step < previous:
                segment += 1
            previous = step
            points.setdefault((session, segment, int(step)), {})[key] = float(value)
    return [(k[2], metrics) for k, metrics in sorted(points.items())]


def _load_logtxt(root: Path, warnings: list[str]) -> RunData | None:
    path = root / "log.txt"
    if not path.is_file():
        return None
    res = parse_log_txt(path)
    if not res.records:
        if _looks_binary(path):  # (said as "a torn last line" with its raw bytes until session 19)
            warnings.append(f"{path}: binary data, not a text log (damaged, or another program's file)")
        else:
            warnings.extend(res.warnings or [f"{path}: no metric blocks found"])
        return None
    # OpenRL's log.txt counts episodes (iterations), not env steps: its env count and rollout length are in the
    # config its OpenRL checkpoints carry; without them its steps are said to be iterations (it said "1,296 env
    # steps" for 129,600,000), and its checkpoints cannot be placed
    spi, source = _openrl_checkpoint_step_size(root)
    # a value that is not a number was left out of its record (the NaN that was the run's end?): the verdict says so
    # (a plain verdict, exit 0, until session 22)
    lost = {"lost_lines": res.bad_values, "lost_lines_in": "log.txt"} if res.bad_values else {}
    if spi:
        res = parse_log_txt(path, steps_per_iteration=spi)
        return RunData(res.records, "log.txt", list(res.warnings), spi, {"step_size_from": source, **lost})
    for rec in res.records:  # its step is its iteration, as rsl_rl's ("it 71", not "it 71 (72 steps)")
        rec.env_steps = rec.iteration
    return RunData(res.records, "log.txt", list(res.warnings), None, {"step_unit": "iterations", **lost})


def _looks_binary(path: Path) -> bool:
    """A file whose first 4 KiB hold a NUL byte or are not UTF-8 text (a cut may split one character at the end)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4
    return b"\x00" in head


def _openrl_checkpoint_step_size(root: Path) -> tuple[int | None, str | None]:
    """(env steps of one iteration, where from) for a run kept as log.txt and OpenRL checkpoints: num_envs x
    episode_length of the config its first ``rl_model_<steps>_steps/module.pt`` carries, when every checkpoint's steps
    are a whole number of such iterations; else (None, None). Until session 18 such a run's checkpoints (env steps)
    were compared with its records' iterations, and every one was rejected as "after onset"."""
    found = [(step, path) for step, kind, path in list_checkpoints(root) if kind == "openrl"]
    if not found:
        return None, None
    from watchdog.checkpoints import read_openrl_module

    try:
        config = read_openrl_module(found[0][1]).config
    except CheckpointError:
        return None, None
    envs, length = config.get("num_envs"), config.get("episode_length")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (envs, length)):
        return None, None
    spi = envs * length
    if any(step % spi for step, _ in found):
        return None, None
    return spi, f"{found[0][1].name}'s config: num_envs {envs} x episode_length {length}"


# --------------------------------------------------------------------------- the report


@dataclass
class RunReport:
    """What a live watchdog would have done on one run, and where to resume from."""

    run: str
    source: str
    verdict: str = "healthy"  # healthy | warning (still warning at the end) | diverged
    final_state: str = "healthy"
    first_alarm: dict | None = None
    online_onset: dict | None = None
    onset: dict | None = None
    first_nonfinite: dict | None = None
    first_crossing: dict | None = None  # first value loss above value_loss_max after arming
    would_roll_back: list[dict] = field(default_factory=list)
    stopped: dict | None = None
    recommended_checkpoint: dict | None = None
    rejected_checkpoints: list[dict] = field(default_factory=list)
    resume_command: str | None = None
    # the live watchdog rolled back and the run trained on to its end: no checkpoint to resume from
    live_recovered: dict | None = None
    events: list[dict] = field(default_factory=list)
    input_warnings: list[str] = field(default_factory=list)
    iterations: int = 0
    run_info: dict = field(default_factory=dict)  # framework, step_unit, signals found/absent (run_summary)
    reward_signal: str | None = None  # the key reward_collapse judged
    records: list[MetricRecord] = field(default_factory=list, repr=False)

    @property
    def warnings(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "warning"]

    @property
    def reward_key(self) -> str:
        """The reward a person should look at: the one the detectors judged (``reward_collapse.signal``) where the
        run has at least 10 finite values of it, else the step reward, else the episode return."""
        keys = list(dict.fromkeys(k for k in (self.reward_signal, STEP_REWARD, EPISODE_RETURN) if k))
        for key in keys:
            if sum(1 for r in self.records if key in r.metrics and math.isfinite(r.metrics[key])) >= 10:
                return key
        return next((k for k in keys if any(k in r.metrics for r in self.records)), keys[0])

    @property
    def reward_path(self) -> dict | None:
        """Where the reward began and ended (medians of its first and last tenth, at least 3 points each) and
        its best: whether the run learned, which no verdict says (``healthy`` is "no divergence", also of a
        run that never learned): the reward the detectors judged, else the step reward or the episode return.
        None with fewer than 10 finite values."""
        key = self.reward_key
        points = [(r.iteration, r.metrics[key]) for r in self.records
                  if key in r.metrics and math.isfinite(r.metrics[key])]
        if len(points) < 10:
            return None
        values = [v for _, v in points]
        tenth = max(3, len(values) // 10)
        best_at, best = max(points, key=lambda p: p[1])
        return {"signal": key, "first": float(np.median(values[:tenth])), "last": float(np.median(values[-tenth:])),
                "best": best, "best_iteration": best_at}

    def to_dict(self) -> dict:
        """JSON-ready summary (no records, no per-iteration events)."""
        return _jsonable({
            "run": self.run, "source": self.source, "verdict": self.verdict, "final_state": self.final_state,
            **self.run_info,
            "iterations": self.iterations, "warnings": len(self.warnings), "reward": self.reward_path,
            "first_alarm": self.first_alarm, "online_onset": self.online_onset, "onset": self.onset,
            "first_nonfinite": self.first_nonfinite, "first_crossing": self.first_crossing,
            "would_roll_back": self.would_roll_back, "stopped": self.stopped,
            "recommended_checkpoint": self.recommended_checkpoint, "rejected_checkpoints": self.rejected_checkpoints,
            "resume_command": self.resume_command, "live_recovered": self.live_recovered,
            "input_warnings": self.input_warnings,
            "events": [_strip_time(e) for e in self.events if e["event"] in TIMELINE_EVENTS],
        })


def _strip_time(ev: dict) -> dict:
    return {k: v for k, v in ev.items() if k not in ("time", "config")}


def replay_run(run_dir: str | Path, cfg: WatchdogConfig | None = None) -> RunReport:
    """Load a run and drive it through the pipeline, then refine the onset and pick a checkpoint."""
    cfg = cfg or WatchdogConfig()
    data = load_run(run_dir, cfg.tags)
    run_cfg = config_for_run(cfg, data.info)
    report = replay_records(data, run_cfg, run=str(run_dir))
    if not data.info.get("signals_found") and report.first_alarm is None:
        # no tracked signal: no verdict, unless what it did log alarmed (a NaN in its policy loss, a KL surge): watch
        # says the same (until session 30 replay said "unrecognised" over a NaN that watch called a divergence)
        return unrecognised_report(str(run_dir), data)
    report.run_info = run_summary(data, cfg)
    if report.first_alarm is not None:
        report.onset = refine_onset(data.records, report, data.steps_per_iteration, run_cfg.warmup.min_iters)
        report.live_recovered = data.info.get("live_recovered")
        if report.live_recovered is None:  # (a run that recovered live was told to resume from before its onset, and
            # the healthy final model trained after the rollback was 'rejected: after onset', until session 18)
            recommend_checkpoint(Path(run_dir), report, data, margin_iters=cfg.policy.onset_margin_iters)
    return report


def run_summary(data: RunData, cfg: WatchdogConfig) -> dict:
    """What the report says about the run's origin: framework, step unit, signals, the value rule."""
    info = data.info
    # (the iterations' range, not last minus first: a log whose steps go back, a resumed run's or a CSV's rows out of
    # order, read "all within the first 50 iterations" until session 28)
    its = [r.iteration for r in data.records]
    span = max(its) - min(its) if its else 0
    return {"framework": info.get("framework_label") or info.get("framework", OPENRL),
            "step_unit": info.get("step_unit", "env steps"),
            # log.txt's iterations made env steps by the config an OpenRL checkpoint carries
            **({"step_size_from": info["step_size_from"]} if info.get("step_size_from") else {}),
            "signals_found": info.get("signals_found", []), "signals_absent": info.get("signals_absent", []),
            "curriculum_terms": [k[len(CURRICULUM_PREFIX):] for k in info.get("keys", []) if k.startswith(CURRICULUM_PREFIX)],
            "value_loss_rule": value_rule(cfg, info)[0], "value_normalization": value_rule(cfg, info)[1],
            # shorter than the warm-up: only non-finite values and blow-ups were judged, and "healthy" says no more
            "within_warmup": span < cfg.warmup.min_iters, "warmup_iters": cfg.warmup.min_iters,
            # fewer records than a detector needs for its baseline (a sparse log): judged as little (until session 28
            # five records over 400 iterations were plain "healthy", their value loss 0.5 -> 1e7 unjudged)
            "too_few_records": too_few_records(len(data.records), cfg), "baseline_points": cfg.warmup.baseline_points,
            # files whose reading stopped at a corrupt record: the verdict holds up to there, no further
            **({"damaged_files": info["damaged_files"]} if info.get("damaged_files") else {}),
            # our event log's lines that are not events (mid-file): their records are lost, the rest judged
            **({"lost_lines": info["lost_lines"], "lost_lines_in": info["lost_lines_in"]} if info.get("lost_lines") else {}),
            **value_loss_ends_early(data.records)}


SIGNAL_END_POINTS = 10  # log points a run may go on past its value loss's last before the verdict says so


def value_loss_ends_early(records: list[MetricRecord], points: int = SIGNAL_END_POINTS) -> dict:
    """``{"value_loss_until": iteration}`` when the value loss's last point is more than ``points`` of its own log
    points (the median spacing of its iterations: OpenRL logs it every ``log_interval``, a live watchdog its own tags
    every iteration) before the run's last record: the run went on, its value loss was not read (a file damaged or
    cut mid-run, a tag no longer logged), and a verdict holds for the value loss's rules up to there. Until session
    22 a run whose value-loss file was damaged at iteration 640 of 1295 was HEALTHY "judged up to it 1295", and one
    cut there was a plain HEALTHY. (On the 150 data runs the gap is at most one of its points: a crash restart's.)"""
    span = ValueLossSpan()
    for rec in records:
        span.add(rec)
    return span.ends_early(points)


class ValueLossSpan:
    """:func:`value_loss_ends_early`'s rule fed one record at a time, in a few counters: a watch judges a run for days
    and keeps no records (until session 27 it had no such rule: a run whose value-loss file stopped at 40 % was a
    plain "healthy", exit 0, where replay said "its value loss read up to it 510 of 1295", exit 2)."""

    def __init__(self) -> None:
        self.last: int | None = None  # the run's newest iteration
        self.until: int | None = None  # the value loss's newest iteration
        self._previous: int | None = None  # the value loss's previous iteration, in record order
        self._spacings: Counter[int] = Counter()  # the steps between its iterations going forward, and how often

    def add(self, record: MetricRecord) -> None:
        it = record.iteration
        self.last = it if self.last is None else max(self.last, it)
        if VALUE_LOSS not in record.metrics:
            return
        if self._previous is not None and it > self._previous:
            self._spacings[it - self._previous] += 1
        self._previous = it
        self.until = it if self.until is None else max(self.until, it)

    def ends_early(self, points: int = SIGNAL_END_POINTS) -> dict:
        """``{"value_loss_until": iteration}`` as :func:`value_loss_ends_early` says it of the records added so far."""
        if self.until is None or self.last is None:
            return {}
        middle, seen, step = sum(self._spacings.values()) // 2, 0, 1  # the median spacing (the upper one of two)
        for spacing in sorted(self._spacings):
            seen += self._spacings[spacing]
            if seen > middle:
                step = spacing
                break
        return {"value_loss_until": self.until} if self.last - self.until > points * step else {}


NO_VALUE_LOSS = "no value loss logged: its rules judged nothing"


def too_few_records(records: int, cfg: WatchdogConfig) -> bool:
    """Fewer records than the detectors need to learn a baseline (``warmup.baseline_points``): past the warm-up or
    not, no more than non-finite values and blow-ups were judged, and "healthy" would say more than the data can.
    Replay and watch."""
    return records < cfg.warmup.baseline_points


def healthy_limits(short: bool, signals_absent: Iterable[str]) -> list[str]:
    """What a "healthy" verdict could not judge: a run shorter than the warm-up (``short``: only non-finite values and
    blow-ups were judged), one without the value loss (its rules, the first evidence of most divergences, saw nothing;
    until session 19 such a run was plain "healthy"). Replay's headline and watch's END line say the same."""
    limits = ["too short to judge"] if short else []
    return limits + ([NO_VALUE_LOSS] if "value loss" in signals_absent else [])


def damage_bound(iteration: int, files: int) -> str:
    """What bounds a verdict judged up to a corrupt record: replay's headline and watch's end event say the same."""
    damaged = "a damaged file" if files == 1 else f"{files} damaged files"
    return f"judged up to it {iteration}: the rest of {damaged} is lost"


def value_loss_bound(until: int, last: int) -> str:
    """What bounds a verdict whose value loss was read up to ``until`` of the run's ``last`` iteration
    (:func:`value_loss_ends_early`): replay's headline and watch's end event say the same."""
    return f"its value loss read up to it {until} of {last}"


def lost_lines_bound(lines: int, where: str) -> str:
    """What bounds a verdict read without ``lines`` damaged lines of its ``where`` (replay's ``lost_lines``): a log.txt
    line's value, another file's record, left out (the NaN that was the run's end?)."""
    return (f"without {'a damaged line' if lines == 1 else f'{lines} damaged lines'} of its {where}, whose "
            f"{'values' if where == 'log.txt' else 'records'} are lost")


def verdict_bounds(info: dict, last_iteration: int | None) -> list[str]:
    """What the data lost bounds a verdict with, from a run's ``damaged_files``, ``value_loss_until`` and
    ``lost_lines`` (replay's ``run_info`` keys; watch fills them from what it followed): replay's headline and watch's
    end event say the same."""
    bounds = []
    if info.get("damaged_files") and last_iteration is not None:
        bounds.append(damage_bound(last_iteration, len(info["damaged_files"])))
    if info.get("value_loss_until") is not None and last_iteration is not None:
        bounds.append(value_loss_bound(info["value_loss_until"], last_iteration))
    if info.get("lost_lines"):
        bounds.append(lost_lines_bound(info["lost_lines"], info["lost_lines_in"]))
    return bounds


def verdict_bounded(info: dict) -> bool:
    """Judged up to a corrupt record, without lost lines, or with a value loss that stopped early: a verdict short of
    "diverged" is more than the data says, and replay and watch exit 2."""
    return bool(info.get("damaged_files") or info.get("lost_lines") or info.get("value_loss_until") is not None)


def unrecognised_report(run: str, data: RunData) -> RunReport:
    """A run in which no tracked signal was found: never "healthy"; the tags it held are listed."""
    report = RunReport(run=run, source=data.source, verdict=UNRECOGNISED, final_state=UNRECOGNISED,
                       input_warnings=list(data.warnings), iterations=len(data.records))
    report.run_info = {"framework": data.info.get("framework_label") or data.info.get("framework"),
                       "step_unit": data.info.get("step_unit"), "signals_found": [],
                       "signals_absent": list(data.info.get("signals_absent") or []),
                       "tags_seen": data.info.get("tags_seen") or data.info.get("keys") or []}
    return report


def unreadable_report(run: str, error: InputError) -> RunReport:
    """A run among several whose files could not be read: never "healthy", and the others are still replayed."""
    return RunReport(run=run, source="none", verdict=UNREADABLE, final_state=UNREADABLE, input_warnings=[str(error)])


def replay_records(data: RunData, cfg: WatchdogConfig, *, run: str = "") -> RunReport:
    """Feed the records through ``Watchdog(cfg)``, carrying out its actions virtually."""
    report = RunReport(run=run, source=data.source, input_warnings=list(data.warnings), records=data.records,
                       iterations=len(data.records), reward_signal=cfg.reward_collapse.signal)
    keys: set[str] = set()
    for rec in data.records:
        keys.update(rec.metrics)
    # only the detectors that can see something; snapshots taken when a rollback needs one
    wd = Watchdog(cfg, listeners=[report.events.append], keys=keys, defer_snapshots=True)
    threshold = next((d for d in wd.detectors if isinstance(d, ValueLossThreshold)), None)
    report.first_nonfinite = first_nonfinite(data.records)
    driver = ReplayDriver(report)
    safe_name = safe_config_name(data.info.get("framework", OPENRL))
    restarts = list(data.info.get("restarts", []))
    processes = set(data.info.get("processes", []))
    for index, rec in enumerate(data.records):
        while restarts and restarts[0][0] <= index:
            event = restarts.pop(0)[1]
            wd.restart_replayed(event, recovery=is_recovery(event))
        if index in processes:
            wd.new_process()
        actions = wd.observe(rec)
        _note_crossing(report, threshold, rec, cfg)
        if not carry_out(wd, actions, driver, config_name=safe_name):
            break
    report.final_state = wd.state.value
    _summarise(report, cfg)
    return report


def first_nonfinite(records: list[MetricRecord]) -> dict | None:
    """The first record with a NaN/Inf tracked metric (over the whole run, even after a stop), as ``nonfinite`` judges
    them (a policy std never a number is no std)."""
    judge = NonFinite(NonFiniteConfig(), WarmupConfig())
    for rec in records:
        bad = judge.bad_keys(rec)
        if bad:
            return {"iteration": rec.iteration, "step": rec.env_steps, "keys": bad}
    return None


def _note_crossing(report: RunReport, threshold, rec: MetricRecord, cfg: WatchdogConfig) -> None:
    """The first value loss above value_loss_max once the 0.2 rule is armed."""
    if report.first_crossing is not None or threshold is None or not threshold.armed:
        return
    value = rec.metrics.get("train/value_loss")
    if value is not None and (not math.isfinite(value) or value > cfg.value_loss.value_loss_max):
        report.first_crossing = {"iteration": rec.iteration, "step": rec.env_steps, "value": value}


class ReplayDriver(VirtualDriver):
    """Replay's driver: pretends like any virtual driver and notes what it would have done."""

    def __init__(self, report: RunReport):
        self.report = report

    def restore(self, action: Rollback) -> None:
        self.report.would_roll_back.append({
            "iteration": action.from_iteration, "to_step": action.target.env_steps,
            "to_iteration": action.target.iteration, "onset_iteration": action.onset.iteration,
        })

    def stop(self, action: Stop) -> None:
        self.report.stopped = {"iteration": action.iteration, "reason": action.reason,
                               "restartable": action.restartable}


def _summarise(report: RunReport, cfg: WatchdogConfig) -> None:
    # a resource alarm (memory) is in the timeline and may stop the run, but it is not divergence
    alarm = next((e for e in report.events if e["event"] == "alarm" and not e.get("resource")), None)
    if alarm is not None:
        report.first_alarm = {"iteration": alarm["iteration"], "step": alarm["env_steps"],
                              "detector": alarm["detector"], "signal": alarm.get("signal"),
                              "value": _num(alarm.get("value")), "threshold": _num(alarm.get("threshold")),
                              "reason": alarm.get("reason")}
        report.online_onset = {"iteration": alarm.get("onset_iteration"), "low": alarm.get("onset_low"),
                               "high": alarm.get("onset_high"), "method": alarm.get("onset_method")}
        report.verdict = "diverged"
    elif report.final_state == "warning":
        # A warning that resolved on its own is part of a healthy run; one still open is not.
        report.verdict = "warning"


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------- onset


def refine_onset(records: list[MetricRecord], report: RunReport, spi: int | None, warmup_iters: int = 0) -> dict | None:
    """Re-fit the onset with up to REFINE_POINTS_AFTER points after the first alarm (hindsight), from where judging
    began at the earliest (as the live fit: ``onset_from_history``'s ``not_before``)."""
    alarm, online = report.first_alarm, report.online_onset or {}
    if alarm is None:
        return None
    if online.get("method") == EXACT_ONSET:  # a first NaN out of a quiet run: hindsight adds nothing
        return {**online, "step": alarm["step"]}
    idx = next(i for i, r in enumerate(records) if r.iteration == alarm["iteration"] and r.env_steps == alarm["step"])
    start = _segment_start(records, idx)
    window = records[start: idx + REFINE_POINTS_AFTER + 1]
    window = [r for r in window if r.iteration <= window[-1].iteration]
    hint = online.get("iteration")
    verdict = Verdict(alarm["detector"], "alarm", alarm.get("signal") or "train/value_loss", alarm["value"],
                      alarm["threshold"], alarm.get("reason") or "", window[-1].iteration, window[-1].env_steps,
                      onset_hint=hint if hint is not None else alarm["iteration"])
    # (a later segment, a restart or resume into the same folder, went on with its restored detectors: no warm-up)
    onset = onset_from_history(window, verdict, earliest_hint=online.get("low"),
                               not_before=records[start].iteration + warmup_iters if start == 0 else None)
    if onset.iteration > alarm["iteration"]:
        # hindsight found its bend after the alarm (a bigger climb after it, points past a gap in the log): the
        # trouble the alarm saw began before it, where the live fit dated it (until session 29, a fuzz: after it)
        if online.get("iteration") is None:  # (the live onset is never after its alarm: test_fuzz's property)
            return {"iteration": alarm["iteration"], "step": alarm["step"], "low": alarm["iteration"],
                    "high": alarm["iteration"], "method": EXACT_ONSET}
        return {**online, "step": _step_of(records[start:], online["iteration"], spi)}
    return {"iteration": onset.iteration, "step": _step_of(records[start:], onset.iteration, spi),
            "low": onset.low, "high": onset.high, "method": onset.method}


def _segment_start(records: list[MetricRecord], idx: int) -> int:
    """Index where the segment holding ``idx`` begins (a rolled-back run restarts iterations)."""
    i = idx
    while i > 0 and records[i - 1].iteration < records[i].iteration:
        i -= 1
    return i


def _step_of(records: list[MetricRecord], iteration: int, spi: int | None) -> int:
    for rec in records:
        if rec.iteration == iteration:
            return rec.env_steps
    if spi:
        return (iteration + 1) * spi
    nearest = min(records, key=lambda r: abs(r.iteration - iteration))
    return nearest.env_steps


# --------------------------------------------------------------------------- checkpoints


def list_checkpoints(run_dir: Path, info: dict | None = None) -> list[tuple[int, str, Path]]:
    """(step, kind, path) of OpenRL's rl_model_<steps>_steps and our stable_<steps>_steps, by step;
    for another framework's run (``info["framework"]``), that framework's own checkpoints."""
    info = info or {}
    if info.get("framework") in FRAMEWORKS:
        found = []
        for folder in [run_dir, *(Path(d) for d in info.get("event_dirs", ()) if Path(d) != run_dir)]:
            found += list_framework_checkpoints(info["framework"], folder, epoch_steps=info.get("epoch_steps"),
                                                step_size=info.get("step_size"))
        if info.get("live_axis") and info["framework"] == "rsl_rl":
            # an integration's event log counts env steps, (it + 1) x steps per iteration; model_<it>.pt is
            # saved after iteration it's update (rl_games' epoch x step size and SB3's steps are env steps already)
            found = [((it + 1) * info["step_size"], kind, path) for it, kind, path in found if info.get("step_size")]
        elif info.get("live_axis") and info["framework"] == "skrl":
            # agent_<timestep>.pt holds the weights of the updates up to that timestep: timestep x envs env steps
            found = [(t * info["envs"], kind, path) for t, kind, path in found if info.get("envs")]
        return sorted(set(found), key=lambda t: (t[0], str(t[2])))
    found = []
    root = run_dir / "checkpoints"
    if not root.is_dir():  # no checkpoints: no need to import torch (watchdog.checkpoints) for their names
        return found
    from watchdog.checkpoints import OPENRL_CHECKPOINT_DIR  # lazy: torch is only needed with checkpoints

    for parent, pattern, kind in ((root, OPENRL_CHECKPOINT_DIR, "openrl"), (root / "watchdog", _OUR_CKPT, "watchdog")):
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            m = pattern.match(child.name)
            if m and child.is_dir():
                found.append((int(m.group(1)), kind, child))
    return sorted(found, key=lambda t: (t[0], t[1]))


def check_checkpoint(kind: str, path: Path) -> tuple[str | None, dict]:
    """None when usable (else the reason), plus config facts (task, num_envs) it carries."""
    from watchdog.checkpoints import load_checkpoint, read_openrl_module

    if kind in FRAMEWORKS:
        return check_framework_checkpoint(path), {}
    try:
        if kind == "openrl":
            module = read_openrl_module(path)
            facts = {k: module.config[k] for k in CHECKPOINT_FACTS if module.config.get(k) is not None}
            return (None if module.all_finite() else "non-finite weights"), facts
        _, meta = load_checkpoint(path)
        if meta.get("stable") is False:  # e.g. the stretch a live rollback abandoned
            return meta.get("unstable_reason") or "not stable", {}
        return None, {}
    except CheckpointError as err:
        reason = "non-finite weights" if "NaN/Inf" in str(err) else f"unreadable: {err}"
        return reason, {}


def recommend_checkpoint(run_dir: Path, report: RunReport, data: RunData, *, margin_iters: int) -> None:
    """The newest usable checkpoint by the live rollback's rule (``policy.latest_target_iteration``:
    at least ``margin_iters`` iterations before an estimated onset, before an exact one); later
    ones listed with why not."""
    onset = report.onset or report.online_onset
    if onset is None or onset.get("iteration") is None:
        return
    onset_step = onset.get("step") or _step_of(data.records, onset["iteration"], data.steps_per_iteration)
    latest = latest_target_iteration(onset["iteration"], onset.get("method"), margin_iters, onset.get("low"))
    limit_step = _step_of(data.records, latest, data.steps_per_iteration)
    info = dict(data.info)
    for step, kind, path in reversed(list_checkpoints(run_dir, info)):
        if step > limit_step:
            reason = "after onset" if step > onset_step else f"less than {margin_iters} iterations before the onset"
            report.rejected_checkpoints.append({"path": str(path), "step": step, "reason": reason})
            continue
        reason, facts = check_checkpoint(kind, path)
        if reason is not None:
            report.rejected_checkpoints.append({"path": str(path), "step": step, "reason": reason})
            continue
        for key, value in facts.items():
            info.setdefault(key, value)
        report.recommended_checkpoint = {"path": str(path), "step": step, "kind": kind}
        report.resume_command = resume_command(path, info, run_dir)
        return


def _resume_from_argv(argv: list[str], target: Path, run_dir: Path | None = None) -> str:
    """The run's own train.py command (``--watchdog``, its sizes and its own ``--config`` kept; its injected faults,
    incidents, not) from ``target``, starting on the safe config's hyper-parameters over its own config
    (``--start_safe``, start-up keys kept, as a rollback's switch). Until session 18 it was the task and env count
    alone with ``--config cfgs/ppo_safe.yaml``: unwatched, and that file's start-up keys (``episode_length: 200``,
    the network) replaced the run's, which restarted its iteration count at 0 or failed to load its checkpoint.
    It trains on in the folder replayed (``run_dir``), named absolutely, as the checkpoint is: until session 22 it
    named the start event's ``--run_dir``, another run's folder once the run was moved or copied, and paths relative
    to where replay ran."""
    from watchdog.supervise import resume_argv, set_flag

    if run_dir is not None:
        argv = set_flag(argv, "--run_dir", os.path.abspath(run_dir))
    out = resume_argv(argv, os.path.abspath(target), start_safe=True)
    return shlex.join(["python", "openrl_ws/train.py", *out])


def resume_command(path: Path, info: dict, run_dir: Path | None = None) -> str:
    """The command that resumes from ``path``: train.py under the safe config for OpenRL runs,
    the framework's own way otherwise (``watchdog.frameworks.framework_resume_command``)."""
    if info.get("framework") in FRAMEWORKS:
        return framework_resume_command(info["framework"], path, run_dir or path.parent, info)
    if info.get("framework") == LOOP:  # our stable checkpoint of your loop's capture(): your restore() loads it
        code = f"from watchdog.checkpoints import load_checkpoint; state, meta = load_checkpoint({py_path_literal(path)})"
        return f"python -c {shlex.quote(code)}  # then your restore(state), and train on from meta['iteration']"
    target = path / "module.pt" if (path / "module.pt").is_file() else path
    if "argv" in info:  # the run's own command line (train.py's start event)
        return _resume_from_argv(info["argv"], target, run_dir)
    # absolute and quoted, as the event log's (until session 27 relative to where replay ran, and split at a space)
    # a run kept by OpenRL alone (its TensorBoard files or log.txt, its module.pt): the task, algorithm, sizes and
    # network its checkpoint's config names, watched. Until session 28 the task and env count only, unwatched: a
    # MAPush run's command trained push_lite (train.py's default) on a 64-unit network, not its checkpoint's
    cmd = ["python", "openrl_ws/train.py", "--watchdog", "--checkpoint", os.path.abspath(target),
           "--config", str(SAFE_CONFIG)]
    task = info.get("task")
    for key in CHECKPOINT_FACTS:
        if info.get(key) is not None and (key != "task" or task in TRAIN_TASKS):
            cmd += [f"--{key}", str(info[key])]
    line = shlex.join(cmd)
    if task is not None and task not in TRAIN_TASKS:  # MQE's own name ('go1push' for both MAPush tasks) says not which
        line += (f"  # add --task {' or '.join(TRAIN_TASKS[1:])}: the checkpoint names the task {str(task)!r}, "
                 "not train.py's name for it")
    return line
