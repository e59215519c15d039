"""Parser for OpenRL's text log (``log.txt``).

OpenRL's logger writes, every ``log_interval`` PPO iterations (OpenRL calls them episodes)::

    2025-11-07 17:40:53,572 [INFO] Episode: 0/1300
    2025-11-07 17:41:24,260 [INFO]
    \tvalue_loss: 5.043357959389686
    \tpolicy_loss: 0.027209501436902882

Metric lines (a tab or spaces, ``name: value``) belong to the most recent ``Episode: N/M`` line.
Anything else (Isaac Gym banners, tracebacks, other log messages) is ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.errors import InputError, read_input, read_input_range
from watchdog.signals import MetricRecord, normalize_key

__all__ = ["LogTxtResult", "LogTxtTail", "first_logged_iteration", "openrl_steps_per_iteration", "parse_log_txt"]

# "2025-11-07 17:40:53,572 [INFO] <message>"
_HEADER = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[,.]\d+)?\s+\[\w+\]\s?(.*)$")
_EPISODE = re.compile(r"^Episode:\s*(\d{1,18})\s*/\s*(\d{1,18})\s*$")  # bounded: int() of 5000 digits raises
# The name may hold single spaces ("average step reward") but no runs of blanks: a lazy
# `[\w ./-]*?` followed by `\s*` backtracks quadratically on a long run of blanks.
_METRIC = re.compile(r"^[ \t]+([A-Za-z_][\w./\-]*(?: [\w./\-]+)*)[ \t]*:[ \t]*(\S+)\s*$")



def torn_line_warning(path, tail: str) -> str:
    """A text log's last line without its newline, at the end of a run: said, and left out."""
    return f"{path}: ignored a torn last line without a newline ({tail[:60]!r}; the run was still writing?)"

def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        low = text.lower()
        if low in ("nan", "+nan", "-nan"):
            return math.nan
        return None


@dataclass
class LogTxtResult:
    """What :func:`parse_log_txt` found."""

    records: list[MetricRecord] = field(default_factory=list)
    total_iterations: int | None = None
    steps_per_iteration_known: bool = False
    warnings: list[str] = field(default_factory=list)
    bad_values: int = 0  # metric lines whose value is not a number, left out of their records


class _Parser:
    """Line-by-line state machine shared by the one-shot parser and the tail."""

    def __init__(self, path: str, steps_per_iteration: int | None):
        self.path = path
        self.spi = steps_per_iteration
        self.episode: int | None = None
        self.metrics: dict[str, float] = {}
        self.in_block = False
        self.total: int | None = None
        self.bad_values = 0
        self.first_bad: str | None = None
        self.orphans = 0

    def _record(self) -> MetricRecord | None:
        if self.episode is None or not self.metrics:
            return None
        n = self.episode
        steps = (n + 1) * self.spi if self.spi else n + 1
        rec = MetricRecord(n, steps, dict(self.metrics))
        self.metrics = {}
        return rec

    def feed(self, line: str) -> MetricRecord | None:
        """Consume one complete line; returns the previous episode's record when it closes."""
        line = line.rstrip("\r\n")
        m = _HEADER.match(line)
        if m is not None:
            msg = m.group(1).strip()
            ep = _EPISODE.match(msg)
            if ep is not None:
                done = self._record()
                self.episode = int(ep.group(1))
                self.total = int(ep.group(2))
                self.in_block = False
                return done
            # an empty message opens a block of metric lines; any other message closes it
            self.in_block = msg == ""
            return None
        if not self.in_block:
            return None
        if not line.strip():  # a blank line ends OpenRL's block
            self.in_block = False
            return None
        mm = _METRIC.match(line)
        if mm is None:
            return None  # junk line inside a block: ignore, keep the block open
        value = _to_float(mm.group(2))
        if value is None:
            self.bad_values += 1
            if self.first_bad is None:
                self.first_bad = line.strip()
            return None
        if self.episode is None:
            self.orphans += 1
            return None
        self.metrics[normalize_key(mm.group(1))] = value
        return None

    def finish(self) -> MetricRecord | None:
        return self._record()

    def warnings(self) -> list[str]:
        out = []
        if self.bad_values:
            out.append(
                f"{self.path}: ignored {self.bad_values} metric line(s) whose value is not a number"
                f" (first: {self.first_bad!r})"
            )
        if self.orphans:
            out.append(f"{self.path}: ignored {self.orphans} metric line(s) before the first 'Episode:' line")
        return out


def _read(path: Path) -> bytes:
    return read_input(path, what="log file", missing_hint="check the run directory holds OpenRL's log.txt",
                      directory_hint="pass the log.txt inside it")


def first_logged_iteration(path: Path, limit: int = 1 << 20) -> int | None:
    """The iteration of ``log.txt``'s first metric block, from its first ``limit`` bytes (None: no file, or no block
    there yet). OpenRL numbers a resumed run's iterations on from its checkpoint ("Episode: 10/80"); its TensorBoard
    steps are env steps only."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit)
    except OSError:
        return None
    parser = _Parser(str(path), None)
    for line in data.decode("utf-8", "replace").split("\n")[:-1]:
        rec = parser.feed(line)
        if rec is not None:
            return rec.iteration
    rec = parser.finish() if len(data) < limit else None  # the whole file was read: its last block is complete
    return rec.iteration if rec is not None else None


def openrl_steps_per_iteration(steps: Sequence[int], first_iteration: int | None) -> int:
    """One iteration's env steps from OpenRL's TensorBoard steps, each (iteration + 1) x that size; ``steps[0]`` is
    the first one logged, ``first_iteration`` its iteration when ``log.txt`` tells it. That step over its iteration
    + 1 when it divides every step; else the steps' greatest common divisor, the first step itself in a run from
    scratch (its first logged iteration is 0). Until session 18 it was always the smallest step, and a run resumed
    from a checkpoint read its iterations as 0, 0, 0, 1, 1, ... (too short to judge)."""
    size = math.gcd(*steps)
    if first_iteration is not None and steps[0] % (first_iteration + 1) == 0:
        told = steps[0] // (first_iteration + 1)
        if told and size % told == 0:
            return told
    return size


def parse_log_txt(path, *, steps_per_iteration: int | None = None) -> LogTxtResult:
    """Parse a whole ``log.txt`` into one :class:`MetricRecord` per logged episode.

    ``iteration`` is the episode index N; ``env_steps`` is ``(N + 1) * steps_per_iteration`` when
    given, else ``N + 1`` (and ``steps_per_iteration_known`` is False). A torn last line (no
    newline) is ignored with a warning. A file without metrics gives no records (no error).
    """
    p = Path(path)
    data = _read(p)
    parser = _Parser(str(p), steps_per_iteration)
    res = LogTxtResult(steps_per_iteration_known=bool(steps_per_iteration))
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    if tail.strip():
        res.warnings.append(torn_line_warning(p, tail))
    for line in lines:
        rec = parser.feed(line)
        if rec is not None:
            res.records.append(rec)
    rec = parser.finish()
    if rec is not None:
        res.records.append(rec)
    res.total_iterations, res.bad_values = parser.total, parser.bad_values
    res.warnings.extend(parser.warnings())
    return res


class LogTxtTail:
    """Incremental ``log.txt`` reader for a file OpenRL is still appending to.

    :meth:`poll` returns the records whose episode block is complete (the next ``Episode:`` line
    has appeared). ``poll(final=True)`` also returns the last open episode (the run has ended).
    The lines it ignored are said in ``warnings`` as :func:`parse_log_txt` says them, each time their count grows.
    """

    def __init__(self, path, *, steps_per_iteration: int | None = None):
        self.path = Path(path)
        self.offset = 0
        self.warnings: list[str] = []
        self._spi = steps_per_iteration
        self._parser = _Parser(str(self.path), steps_per_iteration)
        self._said: set[str] = set()  # the parser's warnings passed on
        self._torn_said = False

    @property
    def total_iterations(self) -> int | None:
        return self._parser.total

    @property
    def bad_values(self) -> int:
        """Metric lines read whose value is not a number, left out of their records (replay's ``lost_lines``: the NaN
        that was the run's end?). Until session 27 a watch said nothing of them, and its verdict was a plain one."""
        return self._parser.bad_values

    def poll(self, *, final: bool = False) -> list[MetricRecord]:
        out: list[MetricRecord] = []
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = None
        except OSError as exc:
            raise InputError(f"cannot stat log file ({exc})", path=str(self.path), hint="check its permissions") from None
        if size is not None and size < self.offset:
            self.warnings.append(
                f"{self.path}: log shrank from {self.offset} to {size} bytes (rewritten?) - reading it again from the start"
            )
            self.offset = 0
            self._parser = _Parser(str(self.path), self._spi)
            self._said = set()
        rest = b""  # the bytes after the last newline: a line still being written, or at the end a torn one
        if size is not None and size > self.offset:
            data = read_input_range(self.path, self.offset, size, what="log file")
            cut = data.rfind(b"\n")
            rest = data[cut + 1:]
            if cut >= 0:
                chunk = data[: cut + 1]
                self.offset += cut + 1
                for line in chunk.decode("utf-8", "replace").split("\n")[:-1]:
                    rec = self._parser.feed(line)
                    if rec is not None:
                        out.append(rec)
        if final:
            torn = rest.decode("utf-8", "replace")
            if torn.strip() and not self._torn_said:  # said as replay says it (until session 27 a watch did not)
                self._torn_said = True
                self.warnings.append(torn_line_warning(self.path, torn))
            rec = self._parser.finish()
            if rec is not None:
                out.append(rec)
        for text in self._parser.warnings():  # (a count that grew is a new text: said again, with the new count)
            if text not in self._said:
                self._said.add(text)
                self.warnings.append(text)
        return out
