"""`watchdog run`: supervise a training process and restart it when it dies.

The in-process watchdog (``openrl_ws/train.py --watchdog``) handles divergence while Python is
alive; a segfault, ``os._exit``, an exception nobody catches, an OOM kill or a hang ends the
process. The supervisor runs the training command as a child (its own process group), lets its
output through, and when it dies abnormally restarts it from the last stable checkpoint with the
safe config, up to a restart budget::

    watchdog run --run-dir results/push --max-restarts 3 -- python openrl_ws/train.py --watchdog \\
        --run_dir results/push

It only edits ``--checkpoint`` and ``--config`` in the command line, so it works with a MAPush
``train.sh`` line too. Abnormal: a non-zero exit other than 1 with a watchdog ``stop`` event
("stopped by the watchdog") and 2 ("bad input"); death by a signal; no growth of the run dir's
``log.txt`` / event log / TensorBoard files for ``--stall-seconds``. A clean exit (0) ends the
supervisor with 0; Ctrl-C is forwarded to the child's process group and ends it with 130.

A *resource* stop (exit 1 with a ``stop`` event that says ``restartable: true``: the training's
watchdog forecast an out-of-memory death, saved a checkpoint and stopped) is restarted from the
newest stable checkpoint with the attempt's own config (the training was not diverging, so no
safe config), as a ``restart`` event with ``cause: "resource"``, which does not spend the rollback
budget. So is an attempt that crashed (or was killed) after its watchdog raised a resource alarm and went on
(``memory.action: checkpoint`` or ``alert``): the out-of-memory death it forecast (until session 18 a crash, on
the safe config, spending the budget). Every restarted attempt has ``WATCHDOG_RESTART=<attempt>`` in its
environment.

Exit codes: 0 finished; 1 gave up (restart budget spent) or the training's own watchdog stopped
it; 2 bad input (ours or the child's); 130/143/129 interrupted (SIGINT/SIGTERM/SIGHUP).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence, TextIO

import yaml

from watchdog.errors import InputError, check_number, check_output_file, check_run_dir
from watchdog.eventlog import RESOURCE_CAUSE, EVENTS_FILENAME, EventLog, EventTail, is_recovery, make_event

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAFE_CONFIG = ROOT / "cfgs" / "ppo_safe.yaml"
EXIT_OK, EXIT_GAVE_UP, EXIT_BAD_INPUT = 0, 1, 2
CHILD_STOPPED, CHILD_BAD_INPUT = 1, 2  # our train.py: stopped by the watchdog / bad input
RESTART_ENV = "WATCHDOG_RESTART"  # in a restarted attempt's environment: the attempt number
# in every attempt's environment: the supervised run dir, where an integration keeps its event log and stable
# checkpoints (whatever directory the script would have picked), so the next attempt finds them
RUN_DIR_ENV = "WATCHDOG_SUPERVISED_RUN_DIR"  # (not `watch --on-alarm`'s WATCHDOG_RUN_DIR: the run that alarmed)
# in a restarted attempt of an integration's run: the stable checkpoint it resumes from, in place
RESUME_ENV = "WATCHDOG_RESUME"
OWN_CONFIG = "of its own (no --config: OpenRL's defaults)"
MERGED_CONFIG_NAME = "ppo_safe.restart.yaml"
GRACE_SECONDS = 10.0  # how long an interrupted or stalled child gets before SIGKILL


# --------------------------------------------------------------------------- command lines


def get_flag(cmd: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` (``--flag V`` or ``--flag=V``; the last one wins), else None."""
    value = None
    for i, arg in enumerate(cmd):
        if arg == flag and i + 1 < len(cmd):
            value = cmd[i + 1]
        elif arg.startswith(flag + "="):
            value = arg[len(flag) + 1 :]
    return value


def drop_flag(cmd: Sequence[str], flag: str) -> list[str]:
    """``cmd`` without any ``flag`` occurrence (``--flag V`` or ``--flag=V``)."""
    out, skip = [], False
    for i, arg in enumerate(cmd):
        if skip:
            skip = False
        elif arg == flag:
            skip = i + 1 < len(cmd)
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def set_flag(cmd: Sequence[str], flag: str, value: str) -> list[str]:
    """``cmd`` with every ``flag`` occurrence removed and ``flag value`` appended once."""
    return [*drop_flag(cmd, flag), flag, value]


def resume_argv(argv: Sequence[str], checkpoint: str | None, *, start_safe: bool) -> list[str]:
    """train.py's command line ``argv`` resuming from ``checkpoint`` (None: left as it is): its ``--inject`` faults
    left out (an injected fault is an incident, not part of the run), ``--start_safe`` added when asked (the safe
    config's hyper-parameters over the run's own). Replay's, Ctrl-C's and a resource stop's resume commands."""
    out = drop_flag(argv, "--inject")
    if checkpoint is not None:
        out = set_flag(out, "--checkpoint", checkpoint)
    return [*out, "--start_safe"] if start_safe and "--start_safe" not in out else out


def with_run_dir(cmd: Sequence[str], run_dir: Path) -> list[str]:
    """An OpenRL command without ``--run_dir`` gets the supervisor's, so train.py writes where the supervisor reads
    (until session 22 it wrote ``results/<date>_<exp>`` while the supervisor watched ``--run-dir``, and restarted it
    from scratch). Another framework's script learns it from the environment (``RUN_DIR_ENV``)."""
    if is_openrl_command(cmd) and get_flag(cmd, "--run_dir") is None:
        return set_flag(cmd, "--run_dir", str(run_dir))
    return list(cmd)


def run_dir_of(cmd: Sequence[str], given: str | None) -> Path:
    """``--run-dir``, else ``--run_dir`` in the child command, else a one-line InputError; both, naming two
    folders, are one too (until session 22 the supervisor looked for checkpoints in one while the training wrote
    the other, and restarted from scratch over the crashed process's checkpoints)."""
    own = get_flag(cmd, "--run_dir")
    if given and own and Path(given).resolve() != Path(own).resolve():
        raise InputError(f"two run directories: --run-dir {given} and the training command's --run_dir {own}",
                         hint="give one (the supervisor reads the checkpoints and progress of the folder the training "
                              "writes): drop --run-dir, or make the two the same")
    raw = given or own
    if not raw:
        raise InputError(
            "no run directory: the supervisor needs it to find checkpoints and to see progress",
            hint="pass `watchdog run --run-dir DIR -- ...` or put `--run_dir DIR` in the training command",
        )
    return Path(raw)


# --------------------------------------------------------------------------- where to restart from


@dataclass(frozen=True)
class RestartPoint:
    """The checkpoint a restart loads (``path`` None: from the command's own start)."""

    path: Path | None
    kind: str  # "stable" | "openrl" | "scratch"
    iteration: int | None = None
    env_steps: int | None = None

    def describe(self) -> str:
        if self.kind == "stable":
            return f"stable checkpoint {self.path} (it {self.iteration}, {self.env_steps:,} steps)"
        if self.kind == "openrl":
            return f"OpenRL checkpoint {self.path} ({self.env_steps:,} steps)"
        return "scratch (no usable checkpoint in the run dir)"


def choose_restart_point(run_dir: Path) -> RestartPoint:
    """Newest verified stable checkpoint, else newest finite OpenRL module.pt, else scratch."""
    from watchdog.checkpoints import CheckpointStore

    root = run_dir / "checkpoints" / "watchdog"
    if root.is_dir():  # the store's constructor creates the dir and clears leftovers: only when it exists
        found = CheckpointStore(root).load_latest_stable()
        if found is not None:
            info = found[0]
            return RestartPoint(info.path, "stable", info.iteration, info.env_steps)
    module = newest_finite_openrl_module(run_dir)
    if module is not None:
        return module
    return RestartPoint(None, "scratch")


def newest_finite_openrl_module(run_dir: Path) -> RestartPoint | None:
    """The ``rl_model_<steps>_steps/module.pt`` with the most steps that reads and is finite."""
    from watchdog.checkpoints import openrl_checkpoint_steps, read_openrl_module
    from watchdog.errors import CheckpointError

    found = []
    for path in run_dir.rglob("rl_model_*_steps/module.pt") if run_dir.is_dir() else []:
        steps = openrl_checkpoint_steps(path)
        if steps is not None:
            found.append((steps, path))
    for steps, path in sorted(found, reverse=True):
        try:
            if read_openrl_module(path).all_finite():
                return RestartPoint(path.parent, "openrl", None, steps)
        except CheckpointError:
            continue
    return None


def safe_config_for(cmd: Sequence[str], safe: Path, run_dir: Path) -> Path:
    """The config a restart trains with: the command's own ``--config`` with the safe config's
    hyper-parameters on top, written to ``RUN_DIR/ppo_safe.restart.yaml``.

    Keys fixed at start-up (episode_length, log_interval, network shape, ...) keep the command's
    values (OpenRL's defaults when it gave no config): a restart continues the same run, with the
    same iteration size, so its iterations, env steps and checkpoints stay monotonic.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    return write_safe_config(get_flag(cmd, "--config"), safe, run_dir / MERGED_CONFIG_NAME, by="`watchdog run`")


def write_safe_config(base_raw: str | None, safe: Path, dest: Path, *, by: str) -> Path:
    """``base_raw`` (a run's own config; None: OpenRL's defaults) with ``safe``'s hyper-parameters on top, start-up
    keys left the run's and learning rates never above the run's own (``config.safe_lr``, as a rollback's switch),
    written to ``dest`` (``safe`` itself when either file is not a mapping): the config a restart trains with, and
    train.py's ``--start_safe``. A run at lr 1e-4 was restarted at the safe config's 3e-4 until session 21."""
    from watchdog.config import OPENRL_DEFAULT_LRS, STARTUP_PPO_KEYS, read_yaml, safe_lr

    base = read_yaml(base_raw) if base_raw else {}
    overrides = read_yaml(safe)
    if not isinstance(base, dict) or not isinstance(overrides, dict):
        return safe
    header = (f"# written by {by}: {base_raw or 'OpenRL defaults'} with the hyper-parameters of {safe} "
              "on top (start-up keys stay the run's, learning rates at most the run's)\n")
    # (a key the safe config leaves empty keeps the run's value, as a rollback's switch does: it wrote `lr: null`,
    # OpenRL's default, until session 21)
    live = {k: v for k, v in overrides.items() if k not in STARTUP_PPO_KEYS and v is not None}
    for key, default in OPENRL_DEFAULT_LRS.items():
        try:  # YAML reads 3e-4 as a string; the configs' own validation says what is wrong with a bad value
            if key in live:
                live[key] = safe_lr(float(live[key]), float(base.get(key, default)))
        except (TypeError, ValueError):
            continue
    dest.write_text(header + yaml.safe_dump({**base, **live}, sort_keys=False), encoding="utf-8")
    return dest


def run_events(run_dir: Path) -> list[dict]:
    """The run's event log, parsed ([] when the run dir has none)."""
    from watchdog.eventlog import read_events

    path = run_dir / EVENTS_FILENAME
    return read_events(path).events if path.is_file() else []


def finished_run(run_dir: Path) -> dict | None:
    """The ``end`` or ``stop`` event the run dir's event log ends with (a run that finished, or was stopped), else
    None (no event log, or a run that died mid-way: a preempted run, which ``watchdog run`` goes on with). Read from
    the log's last line, not through a long run's log."""
    from watchdog.eventlog import parse_event_line

    path = run_dir / EVENTS_FILENAME
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - (1 << 16)))
            lines = [line for line in fh.read().split(b"\n") if line.strip()]
    except OSError:
        return None
    last = parse_event_line(lines[-1]) if lines else None
    return last if last is not None and last["event"] in ("end", "stop") else None


def check_new_supervision(cmd: Sequence[str], run_dir: Path) -> None:
    """A run dir holding a finished (or stopped) run takes no new supervised run: on a crash it was restarted from that
    run's newest stable checkpoint (another run's weights, iterations ahead of its own) and the old run's recoveries
    counted against its budget (until session 28). train.py's own rule for a run dir holding a run: a resume from one
    of its checkpoints (``--checkpoint``) goes on there; anything else needs its own folder."""
    last = finished_run(run_dir)
    if last is None or (is_openrl_command(cmd) and get_flag(cmd, "--checkpoint")):
        return
    how = "was stopped" if last["event"] == "stop" else "finished"
    raise InputError(f"holds a run that {how} at it {last.get('iteration')} (its {EVENTS_FILENAME} ends with its "
                     f"{last['event']} event): a new run there would be restarted from that run's checkpoints and "
                     "share its rollback budget", path=str(run_dir),
                     hint="give the new run its own --run-dir, or, for OpenRL, go on from one of that run's "
                          "checkpoints with train.py's --checkpoint")


def _first_start(run_dir: Path) -> dict:
    """The run's first start event ({} when there is none): read up to it, not through a long run's log."""
    from watchdog.eventlog import iter_lines, parse_event_line

    path = run_dir / EVENTS_FILENAME
    if path.is_file():
        for _, raw in iter_lines(path):
            event = parse_event_line(raw)
            if event is not None and event["event"] == "start":
                return event
    return {}


def _integration(start: dict) -> str | None:
    """The framework an integration's start event names (``frameworks.LIVE_FRAMEWORKS``), else None: such a run is
    restarted with its own command line and resumes in place from WATCHDOG_RESUME."""
    from watchdog.frameworks import LIVE_FRAMEWORKS

    framework = start.get("framework")
    return framework if isinstance(framework, str) and framework in LIVE_FRAMEWORKS else None


def integration_of(run_dir: Path) -> str | None:
    """The framework of the integration whose event log the run dir holds (its first start event's), else None
    (OpenRL's train.py, a MAPush command line, or no event log yet)."""
    return _integration(_first_start(run_dir))


def integration_budget(run_dir: Path) -> int | None:
    """An integration's ``policy.rollback_budget``, from the config its start event carries (None: not one)."""
    start = _first_start(run_dir)
    if _integration(start) is None:
        return None
    # a start event written by hand or damaged ("config": 7) names no budget: none read, as for a run without one
    # (an AttributeError traceback at the first crash until session 27)
    config = start.get("config")
    policy = config.get("policy") if isinstance(config, dict) else None
    budget = policy.get("rollback_budget") if isinstance(policy, dict) else None
    return budget if isinstance(budget, int) and not isinstance(budget, bool) else None


def count_recoveries(events: list[dict]) -> int:
    """Rollbacks (in any process) and restarts among a run's events: one budget spans them."""
    return sum(is_recovery(e) for e in events)


def recoveries_so_far(run_dir: Path) -> int:
    """The recoveries the run's event log records (:func:`count_recoveries`)."""
    return count_recoveries(run_events(run_dir))


def on_safe_config(events: list[dict]) -> bool:
    """Has the run switched to its safe config (a rollback, a crash restart, a config switch)? A restart after a
    resource stop then stays on it: a checkpoint holds weights, not the settings switched live. (Until session 16 it
    went back to the run's own config, the one that had diverged.)"""
    return any(is_recovery(e) or e.get("event") == "config_switch" for e in events)


def resumes_on_own_config(events: list[dict]) -> bool:
    """A process the supervisor restarted keeps the run's own config: after a resource stop (its last restart's
    cause) of a run that never recovered, and after a restart of the command unchanged (its restart event names no
    config: the script had written no start event, so the supervisor restarted it from its own start with its own
    config, and said so); every other restart switches to the safe config."""
    restart = last_restart(events)
    if restart is None:
        return False
    if restart.get("config") is None and restart.get("checkpoint_kind") == "scratch":
        return True
    return restart.get("cause") == RESOURCE_CAUSE and not on_safe_config(events)


def last_restart(events: list[dict]) -> dict | None:
    """The supervisor's last restart event of the run (its ``cause``: "crash" or "resource"), else None."""
    return next((e for e in reversed(events) if e.get("event") == "restart"), None)


def forecast_resource_death(events: list[dict]) -> bool:
    """Do an attempt's events (since its start) end in a resource alarm, the newest alarm of all? Its watchdog then
    forecast the death that followed (``memory.action: checkpoint`` saved a resume point and trained on); a
    divergence alarm after it would be the likelier cause."""
    alarm = next((e for e in reversed(events) if e.get("event") == "alarm"), None)
    return alarm is not None and alarm.get("resource") is True


def rollback_budget_of(cmd: Sequence[str]) -> int | None:
    """The watched OpenRL training's ``policy.rollback_budget`` (None: the command is not OpenRL's train.py with
    ``--watchdog``; an integration names its budget in its start event, :func:`integration_budget`). Another
    script's ``--watchdog_config`` is its own: until session 27 it was read as ours, and one that was not refused the
    run before it started."""
    from watchdog.config import load_watchdog_config

    if "--watchdog" not in cmd or not is_openrl_command(cmd):
        return None
    config = get_flag(cmd, "--watchdog_config") or ROOT / "cfgs" / "watchdog.yaml"
    return load_watchdog_config(config).policy.rollback_budget


def is_openrl_command(cmd: Sequence[str]) -> bool:
    """Whether ``cmd`` runs OpenRL's ``train.py`` (ours or MAPush's: the script ``openrl_ws/train.py``, or the
    module ``openrl_ws.train``), whose ``--checkpoint`` and ``--config`` a restart may rewrite. Another script's
    flags are its own (Isaac Lab's ``train.py`` has a ``--checkpoint`` that means something else). Its ``--run_dir``
    flag says nothing: every example here has one too (until session 27 it made any script OpenRL's: a restart
    added ``--config`` its argparse refused, and an integration's ``--safe_config`` was read as OpenRL's and
    refused before the run started)."""
    return any(Path(os.path.abspath(arg)).as_posix().endswith("/openrl_ws/train.py") or arg == "openrl_ws.train"
               for arg in cmd)


def restart_command(cmd: Sequence[str], point: RestartPoint, config: Path) -> list[str]:
    """The original command with ``--checkpoint`` (unless from scratch) and ``--config`` set."""
    out = list(cmd)
    if point.path is not None:
        out = set_flag(out, "--checkpoint", str(point.path))
    return set_flag(out, "--config", str(config))


# --------------------------------------------------------------------------- one attempt


@dataclass(frozen=True)
class Outcome:
    """How one attempt of the training command ended."""

    exit_code: int | None  # None when a signal ended it
    signal: int | None = None
    stalled: bool = False
    watchdog_stop: bool = False  # exit 1 with a `stop` event: our train.py's watchdog gave up
    restartable_stop: bool = False  # exit 1 with a `stop` event saying `restartable: true` (a resource stop)
    resource_crash: bool = False  # died abnormally after its watchdog's resource alarm: the death it forecast
    last_iteration: int | None = None
    last_env_steps: int | None = None

    @property
    def abnormal(self) -> bool:
        """Whether this attempt deserves a restart."""
        if self.stalled or self.signal is not None:
            return True
        return self.exit_code not in (0, CHILD_BAD_INPUT) and not self.watchdog_stop

    @property
    def resource_end(self) -> bool:
        """A resource stop or the death a resource alarm forecast: restarted on the run's own config (unless it had
        recovered), as a restart with cause "resource" that spends no rollback budget (the training was not
        diverging)."""
        return self.restartable_stop or self.resource_crash

    def describe(self) -> str:
        if self.stalled:
            what = "stalled (no progress in the run dir) and was killed"
        elif self.restartable_stop:
            what = "was stopped by its watchdog for a restart (a resource alarm; exit 1)"
        elif self.signal is not None:
            what = f"was killed by {signal_name(self.signal)}"
        else:
            what = f"exited with code {self.exit_code}"
        if self.resource_crash:
            what += " after its watchdog's resource alarm (the out-of-memory death it forecast)"
        return what + (f" after it {self.last_iteration}" if self.last_iteration is not None else "")


def signal_name(signum: int) -> str:
    """``SIGSEGV`` for 11; the number for a signal Python has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Supervisor:
    """Runs one training command, restarting it from checkpoints on abnormal ends."""

    def __init__(self, cmd: Sequence[str], run_dir: Path, *, max_restarts: int = 3,
                 stall_seconds: float | None = None, safe_config: Path = DEFAULT_SAFE_CONFIG,
                 poll_seconds: float = 0.2, grace_seconds: float = GRACE_SECONDS, out: TextIO | None = None):
        self.cmd = list(cmd)
        self.run_dir = Path(run_dir)
        self.max_restarts = max_restarts
        self.stall_seconds = stall_seconds
        self.safe_config = Path(safe_config)
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.out = out or sys.stderr
        self._interrupt: int | None = None
        self._resume: Path | None = None  # the stable checkpoint an integration's restarted attempt resumes from

    def say(self, text: str) -> None:
        print(f"watchdog run: {text}", file=self.out, flush=True)

    def run(self) -> int:
        """Run until a clean exit, a non-restartable end, Ctrl-C or a spent budget; the exit code."""
        with _forwarded_signals(self._on_signal):
            return self._loop()

    def _loop(self) -> int:
        cmd, restarts = self.cmd, 0
        budget = rollback_budget_of(self.cmd)
        while True:
            outcome = self._attempt(cmd, restarts)
            if self._interrupt is not None:
                return self._interrupted()
            if not outcome.abnormal:
                return self._finish(outcome)
            if restarts >= self.max_restarts:
                return self._give_up(outcome, restarts, f"restart budget ({self.max_restarts}) spent")
            if budget is None:  # an integration's watchdog names its budget in its start event
                budget = integration_budget(self.run_dir)
            spent = None if budget is None or outcome.resource_end else recoveries_so_far(self.run_dir)
            if spent is not None and spent >= budget:
                return self._give_up(outcome, restarts, f"rollback budget ({budget}) spent by {spent} rollbacks and restarts")
            restarts += 1
            cmd = self._restart(outcome, restarts, cmd)
            if self._interrupt is not None:  # Ctrl-C while choosing the checkpoint: do not start another
                return self._interrupted()

    def _interrupted(self) -> int:
        self.say(f"interrupted by {signal_name(self._interrupt)}; training stopped, not restarted")
        return 128 + self._interrupt

    def _finish(self, outcome: Outcome) -> int:
        if outcome.exit_code == 0:
            self.say("training finished (exit 0)")
            return EXIT_OK
        if outcome.watchdog_stop:
            self.say("the training's watchdog stopped the run (exit 1, see its final report); not restarting")
            return EXIT_GAVE_UP
        self.say("the training command reported bad input (exit 2, see its error above); not restarting")
        return EXIT_BAD_INPUT

    def _restart(self, outcome: Outcome, attempt: int, current: list[str]) -> list[str]:
        self._resume = None
        integration = integration_of(self.run_dir)
        if integration is None and not is_openrl_command(self.cmd):
            return self._restart_unchanged(outcome, attempt)  # no checkpoint it could be given: none chosen
        point = choose_restart_point(self.run_dir)
        # a resource end of a run that never recovered: not diverging, so on its own config (else the safe one)
        own = outcome.resource_end and not on_safe_config(run_events(self.run_dir))
        if integration is not None:
            return self._restart_integration(outcome, attempt, point, integration, own)
        if own:  # only the checkpoint moves
            cmd = current if point.path is None else set_flag(current, "--checkpoint", str(point.path))
            config = get_flag(cmd, "--config")
        else:
            config = safe_config_for(self.cmd, self.safe_config, self.run_dir)
            cmd = restart_command(self.cmd, point, config)
        self.say(f"restart {attempt}/{self.max_restarts}: training {outcome.describe()}; "
                 f"restarting from {point.describe()} with config {config or OWN_CONFIG}")
        self._write_restart_event(outcome, attempt, point, cmd, config=None if config is None else str(config),
                                  cause=RESOURCE_CAUSE if outcome.resource_end else "crash")
        return cmd

    def _restart_integration(self, outcome: Outcome, attempt: int, point: RestartPoint, framework: str,
                             own: bool) -> list[str]:
        """An integration's run (rsl_rl, ...): the same command line again; its watchdog reads the stable checkpoint
        from ``WATCHDOG_RESUME``, puts it in place and switches to its own safe config (the script's
        ``safe_config``; not where ``own``: a resource stop of a run that never recovered). Only our stable
        checkpoints count: the framework's own are not verified or dated. Without one (from scratch) there is no
        ``WATCHDOG_RESUME``: the process starts over, and its watchdog counts the restart and switches to the safe
        config all the same (``TrainingSession.resume_from_env``)."""
        if point.kind != "stable":
            point = RestartPoint(None, "scratch")
        else:  # absolute, as the run dir: a script may change directory before it resumes (with a relative
            point = replace(point, path=Path(os.path.abspath(point.path)))  # --run-dir it could not, until session 27)
        self._resume = point.path
        config = f"its {framework} watchdog's " + ("config as it was" if own else "safe config")
        self.say(f"restart {attempt}/{self.max_restarts}: training {outcome.describe()}; restarting the same command "
                 f"from {point.describe()}, resumed in place with {config}")
        self._write_restart_event(outcome, attempt, point, self.cmd, config=config,
                                  cause=RESOURCE_CAUSE if outcome.resource_end else "crash")
        return list(self.cmd)

    def _restart_unchanged(self, outcome: Outcome, attempt: int) -> list[str]:
        """Neither OpenRL's train.py nor an integration that said so in a start event (one that died before
        writing it, a script with no watchdog): the same command again, as it was. No checkpoint or safe config
        can be put in place through flags the supervisor does not know."""
        self.say(f"restart {attempt}/{self.max_restarts}: training {outcome.describe()}; restarting the same "
                 "command unchanged (not OpenRL's train.py, and no watchdog start event in the run dir to resume "
                 "from: its own start, its own config; a script that wraps openrl_ws/train.py, such as a train.sh, "
                 "resumes from checkpoints only when train.py itself is the command)")
        self._write_restart_event(outcome, attempt, RestartPoint(None, "scratch"), self.cmd, config=None, cause="crash")
        return list(self.cmd)

    def _write_event(self, event: dict) -> None:
        """One event of the supervisor's in the run's event log; a disk that refuses it is said, and the supervisor
        goes on (a full disk ended it with a bare 'No space left on device' until session 19)."""
        path = self.run_dir / EVENTS_FILENAME
        try:
            with EventLog(path, hold=False) as log:
                log.write(event)
        except OSError as exc:
            self.say(f"could not write its {event['event']} event to {path} ({exc.strerror or exc}); replay of the run "
                     "will not see it - free space on its disk")

    def _write_restart_event(self, outcome: Outcome, attempt: int, point: RestartPoint, cmd: list[str], *,
                             config: str | None, cause: str) -> None:
        self._write_event(make_event(
            "restart", iteration=outcome.last_iteration if outcome.last_iteration is not None else -1,
            env_steps=outcome.last_env_steps or 0, state="restarting",
            exit_code=outcome.exit_code, signal=signal_name(outcome.signal) if outcome.signal else None,
            stalled=outcome.stalled, checkpoint=str(point.path) if point.path else None,
            checkpoint_kind=point.kind, to_iteration=point.iteration, to_env_steps=point.env_steps,
            config=config, attempt=attempt, max_restarts=self.max_restarts, command=cmd, cause=cause,
        ))

    def _give_up(self, outcome: Outcome, restarts: int, why: str) -> int:
        self.say(f"gave up: training {outcome.describe()} and the {why} "
                 f"after {restarts} restart(s); last good checkpoint: {choose_restart_point(self.run_dir).describe()}; "
                 f"run dir {self.run_dir}")
        self._write_event(make_event("stop", iteration=outcome.last_iteration if outcome.last_iteration is not None else -1,
                                     env_steps=outcome.last_env_steps or 0, state="stopped", by="supervisor",
                                     reason=why, exit_code=outcome.exit_code,
                                     signal=signal_name(outcome.signal) if outcome.signal else None))
        return EXIT_GAVE_UP

    # -- the child

    def _attempt(self, cmd: list[str], restarts: int = 0) -> Outcome:
        """Start ``cmd`` in its own process group and wait for it to end, stall or be interrupted."""
        events_path = self.run_dir / EVENTS_FILENAME
        tail = EventTail(events_path)
        tail.offset = events_path.stat().st_size if events_path.exists() else 0
        env = {**os.environ, RUN_DIR_ENV: str(self.run_dir.resolve())}
        env.pop(RESUME_ENV, None)
        if restarts:
            env[RESTART_ENV] = str(restarts)
            if self._resume is not None:
                env[RESUME_ENV] = str(self._resume)
        try:
            proc = subprocess.Popen(cmd, process_group=0, env=env)
        except OSError as err:
            raise InputError(f"cannot start the training command {cmd[0]!r} ({err.strerror})",
                             hint="check the command after `--`") from None
        stalled = self._wait(proc)
        try:
            events = tail.poll()
        except (OSError, RecursionError):  # unreadable log / a deeply nested junk line: judge by the exit alone
            events = []
        rc = proc.returncode
        if rc != 0:  # a crashed child may leave workers behind (env processes holding GPU memory)
            _kill_group(proc, signal.SIGKILL)
        metrics = [e for e in events if e.get("event") == "metrics"]
        stop = any(e.get("event") == "stop" or (e.get("event") == "end" and e.get("stopped")) for e in events)
        stops = [e for e in events if e.get("event") == "stop"]
        restartable = rc == CHILD_STOPPED and bool(stops) and all(e.get("restartable") is True for e in stops)
        watchdog_stop = rc == CHILD_STOPPED and stop and not restartable
        return Outcome(
            exit_code=rc if rc >= 0 else None, signal=-rc if rc < 0 else None, stalled=stalled,
            watchdog_stop=watchdog_stop, restartable_stop=restartable,
            resource_crash=(rc not in (0, CHILD_BAD_INPUT) and not stalled and not watchdog_stop and not restartable
                            and forecast_resource_death(events)),
            last_iteration=metrics[-1].get("iteration") if metrics else None,
            last_env_steps=metrics[-1].get("env_steps") if metrics else None,
        )

    def _wait(self, proc: subprocess.Popen) -> bool:
        """Wait for ``proc``; forward an interrupt; kill it on a stall. True when it stalled."""
        progress, last_change = self._progress(), time.monotonic()
        while True:
            try:
                proc.wait(timeout=self.poll_seconds)
                return False
            except subprocess.TimeoutExpired:
                pass
            if self._interrupt is not None:
                self._stop(proc, self._interrupt)
                return False
            if self.stall_seconds:
                now, current = time.monotonic(), self._progress()
                if current != progress:
                    progress, last_change = current, now
                elif now - last_change > self.stall_seconds:
                    self.say(f"no progress in {self.run_dir} (log.txt, event log, TensorBoard files) for "
                             f"{self.stall_seconds:g} s; killing the training process group")
                    self._stop(proc, signal.SIGTERM)
                    return True

    def _stop(self, proc: subprocess.Popen, sig: int) -> None:
        """Send ``sig`` to the child's group, wait up to ``grace_seconds`` for the child, then SIGKILL the group: the
        child if it is still there, and whatever of its group ignored ``sig`` (a worker left running after the child
        exited 0 on it until session 27: the group was killed only after a non-zero exit)."""
        _kill_group(proc, sig)
        try:
            proc.wait(timeout=self.grace_seconds)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(proc, signal.SIGKILL)
        proc.wait()

    def _progress(self) -> tuple:
        """Sizes and mtimes of the files a training run keeps growing."""
        from watchdog.tfevents import find_event_files

        files = [self.run_dir / "log.txt", self.run_dir / EVENTS_FILENAME]
        if self.run_dir.is_dir():
            files += find_event_files(self.run_dir)
        sig = []
        for path in files:
            try:
                st = path.stat()
            except OSError:
                continue
            sig.append((str(path), st.st_size, st.st_mtime_ns))
        return tuple(sig)

    def _on_signal(self, signum: int, _frame) -> None:
        self._interrupt = signum


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _forwarded_signals:
    """Route SIGINT/SIGTERM/SIGHUP to ``handler`` for the duration (main thread only), then restore. A hang-up (an
    ssh session dropped without tmux or nohup) ends the training as it would have ended one run in that terminal:
    until session 27 it killed the supervisor alone, and the child, in its own process group, trained on
    unsupervised."""

    def __init__(self, handler: Callable):
        self.handler = handler
        self.saved: dict[int, object] = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                self.saved[sig] = signal.signal(sig, self.handler)
            except ValueError:  # not the main thread: no forwarding
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self.saved.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------- CLI


def with_safe_config(cmd: Sequence[str], given: str | None) -> tuple[list[str], Path]:
    """(the command to supervise, the safe config its restarts train with): one run, one safe config. train.py's own
    ``--safe_config`` (what its in-process rollbacks switch to), else ``--safe-config`` (``given``), which is then
    added to train.py's command so that its rollbacks use it too, else ``cfgs/ppo_safe.yaml``. Two different ones are
    an error. Until session 19 the supervisor's default won, so a restarted run came back on other hyper-parameters
    than its own rollbacks used."""
    cmd = list(cmd)
    if not is_openrl_command(cmd):
        return cmd, Path(given or DEFAULT_SAFE_CONFIG)
    own = get_flag(cmd, "--safe_config")
    if own is not None and given is not None and Path(own).resolve() != Path(given).resolve():
        raise InputError(f"two safe configs: --safe-config {given} and the training command's --safe_config {own}",
                         hint="give one: a restart uses the training's own --safe_config, which its rollbacks use")
    if own is None and given is not None:
        cmd = set_flag(cmd, "--safe_config", given)
    return cmd, Path(own or given or DEFAULT_SAFE_CONFIG)


def _cmd_run(args: argparse.Namespace) -> int:
    cmd = list(args.train_command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise InputError("no training command", hint="give it after `--`: watchdog run -- python openrl_ws/train.py ...")
    run_dir = run_dir_of(cmd, args.run_dir)
    check_run_dir(run_dir, may_be_missing=True)
    # the restart events go there, maybe hours in: a folder we cannot write is said now (a traceback at the
    # first restart until session 17)
    check_output_file("--run-dir", Path(run_dir) / EVENTS_FILENAME, creates_folders=True)
    check_new_supervision(cmd, Path(run_dir))
    cmd = with_run_dir(cmd, run_dir)
    cmd, safe = with_safe_config(cmd, args.safe_config)
    if not safe.is_file():
        raise InputError("safe config not found", path=str(safe), hint="pass --safe-config cfgs/ppo_safe.yaml")
    if is_openrl_command(cmd):  # read at the first restart, maybe hours in: a bad one is said now, not then
        from watchdog.config import load_ppo_config

        load_ppo_config(safe)
    if args.max_restarts < 0:
        raise InputError(f"--max-restarts must be >= 0, got {args.max_restarts}")
    if args.stall_seconds is not None:
        check_number("--stall-seconds", args.stall_seconds, hint="leave it out to turn the stall detector off")
    return Supervisor(cmd, run_dir, max_restarts=args.max_restarts, stall_seconds=args.stall_seconds,
                      safe_config=safe).run()


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``watchdog run`` to the CLI."""
    p = sub.add_parser(
        "run", help="run a training command; restart it from the last stable checkpoint when it crashes",
        description=__doc__.splitlines()[0],
        epilog="Example: watchdog run --max-restarts 3 -- python openrl_ws/train.py --watchdog --run_dir results/push",
    )
    p.add_argument("--run-dir", default=None, help="the run directory (default: --run_dir in the training command)")
    p.add_argument("--max-restarts", type=int, default=3, help="restarts before giving up with exit 1 (default 3)")
    p.add_argument("--stall-seconds", type=float, default=None,
                   help="restart when log.txt, the event log and TensorBoard files have not grown for this long "
                        "(default: off; set it well above start-up time plus the longest gap between log lines)")
    p.add_argument("--safe-config", default=None,
                   help="config a restart trains with, over the command's own --config (default: train.py's own "
                        "--safe_config, else cfgs/ppo_safe.yaml)")
    p.add_argument("train_command", nargs=argparse.REMAINDER, help="-- then the training command")
    p.set_defaults(func=_cmd_run)


if __name__ == "__main__":  # `python -m watchdog.supervise ...` == `watchdog run ...`
    from watchdog.cli import main

    sys.exit(main(["run", *sys.argv[1:]]))
