"""The error families: what the user can fix, what is our bug, and a run that died diverging."""

from __future__ import annotations

import math
import os
from pathlib import Path


class WatchdogError(Exception):
    """A problem the user can fix (bad config, missing file, malformed input).

    ``str(err)`` is one line naming the file, the value and the fix; the CLI prints it and exits 2.
    """

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None):
        self.path = path
        self.hint = hint
        text = message if path is None else f"{path}: {message}"
        if hint:
            text = f"{text} ({hint})"
        super().__init__(" ".join(text.split()))


class ConfigError(WatchdogError):
    """A config file or value is invalid."""


class InputError(WatchdogError):
    """A run directory, event file, log or checkpoint cannot be used."""


class CheckpointError(InputError):
    """A checkpoint is missing, corrupt, or holds non-finite weights."""


def read_input(path, *, what: str, missing_hint: str, directory_hint: str) -> bytes:
    """Read a user-named input file whole; OS problems become one-line :class:`InputError`s."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found", path=str(path), hint=missing_hint) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, not a {what}", path=str(path), hint=directory_hint) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} ({exc.strerror or exc})", path=str(path),
                         hint="check its permissions") from None


def read_input_range(path, start: int, end: int, *, what: str) -> bytes:
    """Bytes ``[start, end)`` of a file being followed (a growing log); OS problems -> InputError."""
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)
    except OSError as exc:
        raise InputError(f"cannot read {what} ({exc.strerror or exc})", path=str(path),
                         hint="check its permissions") from None


def check_number(flag: str, value: float, *, zero_ok: bool = False, hint: str | None = None,
                 unit: str = "seconds", at_most: float | None = None) -> None:
    """A command-line number (of ``unit``) that must be finite and > 0 (>= 0 with ``zero_ok``), and at most
    ``at_most`` when given: one-line InputError."""
    if not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
        raise InputError(f"{flag} must be a number {'>=' if zero_ok else '>'} 0 ({unit}), got {value:g}", hint=hint)
    if at_most is not None and value > at_most:
        raise InputError(f"{flag} must be at most {at_most:g} ({unit}), got {value:g}", hint=hint)


def check_output_file(flag: str, path, *, creates_folders: bool = False, hint: str = "create it first",
                      replaced: bool = False) -> None:
    """A file a command will write (``flag``'s value), checked before the work rather than met as a traceback after
    it: a folder given as the file, a file where a folder of its path should be, or (unless the command creates
    missing folders) a missing folder (``hint`` says what to do then). A file the command ``replaced`` whole (a
    temporary file renamed over it) must be a file where it exists: a device or a pipe would be swapped for one
    (until session 22 ``--prometheus /dev/full`` replaced the device with a regular file); through a symbolic link,
    the file it names is the one checked, as the one written."""
    target = Path(os.path.realpath(path)) if replaced else Path(path)
    if target.is_dir():
        raise InputError(f"{flag} names a folder", path=str(target), hint="give a file name in it")
    if replaced and target.exists() and not target.is_file():
        raise InputError(f"{flag} names a device, a pipe or a socket, not a file", path=str(target),
                         hint="give a regular file's path: the command writes a new file over it each time")
    folder = next((p for p in [target.parent, *target.parent.parents] if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise InputError(f"{flag}: a file stands where a folder of the path should be", path=str(folder),
                         hint="give a path whose folders are folders")
    if not creates_folders and not target.parent.is_dir():
        raise InputError(f"{flag}: folder not found", path=str(target.parent), hint=hint)
    if folder is not None and not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{flag}: cannot write in this folder (permission denied)", path=str(folder),
                         hint="give a path in a folder you can write to")
    if folder is not None:  # what the system refuses whatever the permissions say (/proc, a read-only mount, even
        # to root): a file made and removed now (until session 22 said at the first poll or restart, maybe hours in)
        import tempfile

        try:
            fd, probe = tempfile.mkstemp(prefix=".watchdog-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise InputError(f"{flag}: cannot write in this folder ({exc.strerror})", path=str(folder),
                             hint="give a path in a folder you can write to") from None


def check_run_dir(path, *, may_be_missing: bool = False) -> Path:
    """A run directory named on the command line: it exists (unless ``may_be_missing``: a run that will create
    it) and is a folder. A file named instead (an event file, the event log) is said so, with the folder to pass."""
    if str(path) == "":
        raise InputError("an empty path (an unset variable?) would be this folder", path='""',
                         hint="name the run directory, '.' for this folder")
    path = Path(path)
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise InputError("cannot read this folder (permission denied)", path=str(path),
                         hint="run as a user who can read it, or copy the run somewhere readable")
    if path.is_file():
        raise InputError("is a file, not a run directory", path=str(path),
                         hint=f"pass the folder it is in: {path.parent}")
    if path.exists() and not path.is_dir():
        raise InputError("is not a folder (a device or a pipe?)", path=str(path), hint="pass the run's folder")
    if not path.exists() and not may_be_missing:
        raise InputError("run directory not found", path=str(path), hint="check the path")
    return path


class InternalError(RuntimeError):
    """A bug in the watchdog itself: report it, do not fix your config."""


class NonFiniteTraining(RuntimeError):
    """Training died on non-finite numbers (weights or rollout hold NaN/Inf) and nothing rolled it
    back: the crash the watchdog exists to prevent. Entry points exit 3 with one line."""


class ReaderMayLeave:
    """stdout whose reader may go away (``watchdog replay runs/ | head -1``, ``train.py | tee`` whose tee died): once
    it has, the rest of the output is dropped and the command goes on to its own exit code (a verdict does not change
    because nobody reads it; a BrokenPipeError made it a traceback and exit 1, "diverged"), and a training run goes on
    (rich's console ended it with exit 1 and a clean-looking end event until session 18): the event log and
    TensorBoard hold everything."""

    def __init__(self, stream):
        self._stream, self._gone = stream, False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._leave()
            except UnicodeEncodeError:  # a folder name that is not UTF-8 (surrogates), or a terminal's narrow encoding:
                # written with escapes, as stderr does (until session 22 a traceback, exit 1)
                encoding = getattr(self._stream, "encoding", None) or "utf-8"
                return self.write(text.encode(encoding, "backslashreplace").decode(encoding))
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._leave()

    def _leave(self) -> None:
        self._gone = True
        try:  # the interpreter flushes stdout at exit too: point its descriptor at nothing
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
