"""Everything rich renders: the live status footer, alert panels, the closing summary, replay reports.

On a terminal: a status footer (progress, env steps, steps/s, elapsed, ETA, watchdog state, value
loss, rollbacks) with alert panels scrolling above it. Otherwise (a log file, CI, SLURM, a pipe):
plain one-line messages that grep well, and a status line every ``status_every`` iterations with
the same fields. The library never prints; only this module and the CLI do.

The words follow the driver (``role``): training says what it did ("rolled back"), replay what a
live watchdog would have done, a watcher (which owns no checkpoints) what training would do.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from watchdog.config import PolicyStdConfig, TrendConfig
from watchdog.policy import POLICY_CHANGE_DETECTORS
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
          "stop": "bold red", "recovered": "green", "stable_checkpoint": "dim", "start": "bold", "end": "bold",
          "iteration_failed": "red", "task_change": "cyan", "distrust": "magenta"}
_STATE_STYLE = {"healthy": "green", "warning": "yellow", "diverged": "red", "rolled_back": "magenta", "stopped": "red"}
PANEL_EVENTS = ("warning", "alarm", "rollback", "config_switch", "restart", "stop")
ROLES = ("train", "watch", "replay")
STATUS_EVERY_ENV = "WATCHDOG_STATUS_EVERY"
DEFAULT_STATUS_EVERY = 10
RATE_WINDOW = 20  # iterations the steps/s and the ETA are measured over
BAR_WIDTH = 16

# Per detector: the likely cause, and what to change if it comes back; an event's own ``cause`` /
# ``next_step`` fields win. Unknown detectors get neither line (an absent line, never an empty one). Framework-neutral
# words (until session 20 they named OpenRL's keys and cfgs/ppo_safe.yaml under every framework's alarms, where a
# rollback line named the framework's own safe config).
ADVICE: dict[str, tuple[str, str]] = {
    "nonfinite": ("NaN/Inf reached the losses: a NaN observation or reward from the env, an exploding update, "
                  "or a policy std past float32 range",
                  "if it comes back after a rollback, look for NaN/Inf in the env's observations and rewards"),
    "value_loss_threshold": ("the critic is diverging: a learning rate too high for the reward scale, or too "
                             "little gradient clipping",
                             "lower the learning rates and clip gradients (max grad norm 0.5), as the safe config does"),
    "trend": ("a sustained climb against this run's own baseline, the usual first sign of a divergence",
              "lower the learning rates and clip gradients (max grad norm 0.5), as the safe config does"),
    "critic_grad_norm": ("large critic gradients: value targets jumping (reward scale, a rollback's fresh data)",
                         "clip gradients (max grad norm 0.5), or lower the critic's learning rate if the value loss "
                         "follows"),
    "reward_collapse": ("an abrupt drop in reward: a bad policy update or a change in the environment",
                        "compare with the value loss; a reward drop alone stays a warning. If the task or reward "
                        "changed here on purpose (a curriculum), log the change as Curriculum/<term> and the "
                        "detectors start over there"),
    "policy_std": ("the entropy bonus pushes the policy's std up faster than the reward pulls it down",
                   "lower the learning rate or the entropy coefficient (the safe config lowers the first)"),
    "entropy_collapse": ("the policy's entropy fell far below its recent range within a few updates: updates "
                         "too large for PPO's trust region (learning rate, epochs)",
                         "lower the learning rate if it was not meant (the safe config does)"),
    "entropy_surge": ("the policy's entropy rose far above its recent range, or far faster than it moved before, "
                      "within a few updates: its std is "
                      "running away (updates too large for PPO's trust region, or an entropy bonus the reward no "
                      "longer outweighs)",
                      "lower the learning rate, or the entropy coefficient, if it was not meant (the safe config lowers "
                      "the first)"),
    "kl_surge": ("the policy's KL per update jumped far above its recent range: updates too large for PPO's "
                 "trust region (learning rate, epochs)",
                 "lower the learning rate if it was not meant (the safe config does)"),
    "surrogate_surge": ("PPO's surrogate loss jumped far above its recent size: probability ratios far beyond the "
                        "clip, updates too large for PPO's trust region (learning rate, epochs)",
                        "lower the learning rate if it was not meant (the safe config does)"),
    "policy_collapse": ("the policy left PPO's trust region (its entropy collapsed or ran away, or its KL or "
                        "surrogate loss surged) and the reward fell with it: updates too large (learning rate, epochs)",
                        "lower the learning rate, or use fewer epochs per update (the safe config lowers the first)"),
    "corroboration": ("several detectors warn at once", "treat it as a divergence: lower the learning rates"),
    "memory": ("memory climbing towards its limit at a steady rate: a leak (tensors kept across iterations, a growing "
               "buffer or history) or a limit too tight for the run",
               "memory.action (alert, checkpoint, stop) says what the watchdog does; under `watchdog run` a stop is "
               "restarted from its checkpoint (docs/resources.md)"),
    "throughput": ("env steps per second far below this run's settled rate: another process on the machine, thermal "
                   "throttling, swapping, or a slower config",
                   "check the machine (nvidia-smi, top, free); the run's numbers are not judged by it"),
}
# A warning's next step, where it differs from the alarm's.
_POLICY_CHANGE_NEXT = "nothing yet: it becomes an alarm (policy_collapse) if the reward collapses too"
_WARNING_NEXT = {"trend": f"nothing yet: it becomes an alarm when the climb reaches trend.alarm_ratio (default "
                          f"{TrendConfig.model_fields['alarm_ratio'].default:g}x) its baseline",
                 "policy_std": "nothing yet: said once, the run stays healthy; it becomes an alarm when the overflow "
                               f"comes within policy_std.alarm_within_iters (default "
                               f"{PolicyStdConfig.model_fields['alarm_within_iters'].default:g}) iterations",
                 **dict.fromkeys(POLICY_CHANGE_DETECTORS, _POLICY_CHANGE_NEXT)}
# an advisory warning never alarms alone (a value loss in the returns' units climbs while a policy learns)
_ADVISORY_NEXT = ("nothing: it is said and the run stays healthy; with other evidence at the same time (a reward "
                  "collapse, or the policy leaving its trust region) it is divergence")
# What the threshold is, where it is not a plain upper limit.
_THRESHOLD_LABEL = {"trend": "its baseline", "policy_std": "overflow at", "reward_collapse": "floor",
                    "entropy_collapse": "floor", "entropy_surge": "ceiling"}

# --------------------------------------------------------------------------- formatting


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt_duration(seconds: float | None) -> str:
    """``1:02:03`` (h:mm:ss); ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _fmt_rate(per_second: float | None) -> str:
    if per_second is None:
        return "?"
    return f"{per_second:,.0f}" if per_second >= 100 else f"{per_second:.3g}"


def _fmt_count(n: int) -> str:
    """Env steps, short enough for the footer: 5,120 / 12.35M."""
    return f"{n:,}" if n < 10_000_000 else f"{n / 1e6:,.2f}M"


def at_iteration(iteration, steps) -> str:
    """"it N (S steps)"; "it N" where the step is unknown or is the iteration (rsl_rl counts iterations)."""
    return f"it {iteration} ({steps:,} steps)" if isinstance(steps, int) and steps != iteration else f"it {iteration}"


def _head(ev: dict) -> str:
    return at_iteration(ev.get("iteration"), ev.get("env_steps"))


def _switch(ev: dict) -> str:
    """A config switch's changes, and the keys fixed at start-up that kept the run's values."""
    changes = ", ".join(f"{k} {_fmt(v['old'])} -> {_fmt(v['new'])}" for k, v in (ev.get("changes") or {}).items())
    kept = ", ".join(f"{k} ({why})" if isinstance(why, str) and why else k for k, why in (ev.get("kept") or {}).items())
    return (changes or "no changes") + (f"; kept as started: {kept}" if kept else "")


def _what(ev: dict) -> str:
    """The detector's reason, without fields that say nothing."""
    # (" (also: none)": in the reasons of logs before session 20)
    reason = str(ev.get("reason") or f"{ev.get('signal', '?')} out of range").replace(" (also: none)", "")
    return f"[{ev.get('detector')}] {reason}"


def _value_vs_threshold(ev: dict) -> str | None:
    value, threshold, det = ev.get("value"), ev.get("threshold"), ev.get("detector")
    if value is None:
        return None
    if det == "nonfinite" or not _finite(value):
        return f"{_fmt(value)}, must be finite"
    if threshold is None:
        return _fmt(value)
    return f"{_fmt(value)} against {_THRESHOLD_LABEL.get(det, 'threshold')} {_fmt(threshold)}"


def _onset(ev: dict) -> str | None:
    onset = ev.get("onset_iteration")
    if onset is None:
        return None
    low, high = ev.get("onset_low"), ev.get("onset_high")
    return f"~ it {onset}" + (f" (range {low}-{high})" if low is not None and (low, high) != (onset, onset) else "")


def _next_step(ev: dict, role: str) -> str | None:
    """What happens now (by the driver's role), then what a person may change."""
    advice = ADVICE.get(str(ev.get("detector")))
    tip = ev.get("next_step") or (advice[1] if advice else None)
    if ev.get("event") == "warning" and not ev.get("next_step"):
        detector = str(ev.get("detector"))
        if ev.get("advisory") and detector not in (*POLICY_CHANGE_DETECTORS, "policy_std"):
            return _ADVISORY_NEXT
        return _WARNING_NEXT.get(detector, tip)
    onset = ev.get("onset_iteration")
    before = f" before it {onset}" if onset is not None else ""
    if role == "watch":
        act = (f"a watcher cannot roll back a run it does not own; a training watchdog would roll back to its last "
               f"stable checkpoint{before}: stop this run and resume it from a checkpoint{before} under the safe "
               "config (`watchdog replay RUN_DIR` names the checkpoint and the framework's resume command)")
    elif role == "replay":
        act = f"a live watchdog would roll back to its last stable checkpoint{before} and switch to the safe config"
    else:
        act = None  # the rollback / stop panel that follows says what was done
    return "; ".join(p for p in (act, tip) if p) or None


def alert_fields(ev: dict, role: str = "train") -> list[tuple[str, str]]:
    """A warning or alarm as labelled fields: what, value, onset, cause, next step (absent ones left out)."""
    advice = ADVICE.get(str(ev.get("detector")))
    fields = [("what", _what(ev)), ("value", _value_vs_threshold(ev)), ("onset", _onset(ev)),
              ("cause", ev.get("cause") or (advice[0] if advice else None)), ("next", _next_step(ev, role))]
    return [(k, v) for k, v in fields if v]


def describe_event(ev: dict, role: str = "train", *, brief: bool = False) -> str:
    """One line that says what happened, the value, the threshold, the onset and what was (or would be) done.

    ``brief``: an alert without its cause and next step (a timeline's rows).
    """
    kind = ev.get("event", "?")
    head = _head(ev)
    would = role != "train"
    if kind in ("warning", "alarm"):
        fields = [(k, v) for k, v in alert_fields(ev, role) if not brief or k not in ("cause", "next")]
        return f"{head}: " + "; ".join(f"{v}" if k == "what" else f"{k} {v}" for k, v in fields)
    if kind == "rollback":
        verb = "would roll back" if would else "rolled back"
        lr = f", learning rates x{_fmt(ev.get('lr_scale'))}" if ev.get("lr_scale") not in (None, 1, 1.0) else ""
        passed = (f"; past it {ev['passed_over']}'s checkpoint, restored last time, whose run went non-finite "
                  "again before it recovered" if ev.get("passed_over") is not None else "")
        if ev.get("unreadable"):
            passed += f"; past {len(ev['unreadable'])} newer checkpoint(s) it could not read ({'; '.join(ev['unreadable'])})"
        return (f"{head}: {verb} #{ev.get('number')} to it {ev.get('to_iteration')} "
                f"({ev.get('checkpoint')}), before the onset at it {ev.get('onset_iteration')}{passed}; "
                f"{'would train' if would else 'training'} on with {ev.get('config')}{lr}")
    if kind == "config_switch":
        return f"{head}: {'would switch' if would else 'switched'} to {ev.get('config')}: {_switch(ev)}"
    if kind == "distrust":
        return (f"{head}: {len(ev.get('checkpoints') or ())} stable checkpoint(s) after it {ev.get('after_iteration')} "
                f"{'would be' if would else 'are'} stable no more: inside the divergence of the {ev.get('detector')} "
                f"alarm at it {ev.get('alarm_iteration')} (" + ("stopped: not rolled back; a resume or restart starts "
                "from before it)" if ev.get("state") == "stopped" else "alert mode: not rolled back; a restart resumes "
                "from before it)"))
    if kind == "restart":
        why = ev.get("signal") or (f"exit code {ev.get('exit_code')}" if ev.get("exit_code") is not None else "a stall")
        return (f"{head}: training process died ({why}); restart {ev.get('attempt')}/{ev.get('max_restarts')} "
                f"from {ev.get('checkpoint') or 'scratch'} with {ev.get('config')}")
    if kind == "stop":
        return f"{head}: {'WOULD STOP' if would else 'STOPPED'}: {ev.get('reason')}"
    if kind == "stable_checkpoint":
        if role == "watch":
            return f"{head}: healthy here; a training watchdog would keep a stable checkpoint"
        return f"{head}: {'would keep' if would else 'kept'} stable checkpoint {ev.get('checkpoint')}"
    if kind == "recovered":
        return f"{head}: back to healthy (was {ev.get('previous')})"
    if kind == "resume_checkpoint":  # (fell through to "resume_checkpoint" until session 18)
        return (f"{head}: saved a checkpoint to resume from after a resource alarm: {ev.get('checkpoint')} "
                f"(it {ev.get('checkpoint_iteration')}" + (", stable)" if ev.get("stable") else ")"))
    if kind == "task_change":
        return (f"{head}: the task changed (curriculum: {ev.get('change')}); "
                f"{', '.join(ev.get('restarted') or ()) or 'no detector'} start over, warm-up included: "
                "a new task has its own reward and value loss")
    if kind == "iteration_failed":
        where = f" in the {ev['where']}" if ev.get("where") else ""
        return (f"{head}: the update crashed on non-finite numbers{where} ({ev.get('exception', 'an exception')}); "
                "counted as a non-finite iteration (full error in the event log)")
    if kind == "start":
        if role == "watch" or ev.get("mode") == "watch":
            return f"watching {ev.get('run_dir', '')}: alerts only (a watcher cannot roll back a run it does not own)"
        if isinstance(ev.get("config"), dict) and ev["config"].get("action") == "alert":
            return "watchdog on, alert only: it reports divergence and does not act"
        return ("watchdog on: on divergence it rolls back to the last stable checkpoint before the onset "
                "and switches to the safe config")
    if kind == "end":
        what = "watch ended" if role == "watch" else "training ended"
        reason = ev.get("reason")
        ended = ev.get("ended") if ev.get("ended") not in (None, "finished", "stopped") else None
        what += f" ({ended})" if ended else ""
        what += f", {ev['verdict']}" if role == "watch" and ev.get("verdict") else ""
        return f"{head}: {what}" + (f": {reason}" if reason else "") + (
            f"; {ev['rollbacks']} rollback(s)" if role == "train" and ev.get("rollbacks") else "")
    return f"{head}: {kind}"


def recoveries_said(rollbacks_here: int, before: int) -> str:
    """A process's rollbacks, and what the run spent before it when it was resumed (restarts are not rollbacks:
    an example's '2 rollback(s)' after two restarts and none, until session 18)."""
    return f"{rollbacks_here} rollback(s)" + (
        f" ({before} recovery(ies) before this process: rollbacks and restarts)" if before > 0 else "")


def status_line(record: MetricRecord, state: str, rollbacks: int, progress: "_Progress | None" = None) -> str:
    """The compact status line: iteration (/ total), steps, rate, elapsed, ETA, key metrics, state."""
    def metric(key: str, label: str) -> str:
        value = record.metrics.get(key)
        return f"{label} {_fmt(value)}" if value is not None else ""

    it = f"it {record.iteration}"
    timing: list[str] = []
    if progress is not None and progress.total_iterations:
        # iterations done of the total, as the terminal's footer counts them: the last is "it 59 (60/60)" (it read
        # "it 59/60" at the end of a 60-iteration run until session 20, as if one were missing)
        it += f" ({record.iteration + 1}/{progress.total_iterations})"
        timing = [f"{_fmt_rate(progress.steps_per_second)} steps/s", f"elapsed {fmt_duration(progress.elapsed)}",
                  f"ETA {fmt_duration(progress.eta)}"]
    parts = [it, f"{record.env_steps:,} steps", *timing, state, metric(VALUE_LOSS, "vloss"),
             metric(CRITIC_GRAD_NORM, "cgrad"), metric(STEP_REWARD, "reward"), _resources(record, rate=not timing)]
    if rollbacks:
        parts.append(f"rollbacks {rollbacks}")
    return " | ".join(p for p in parts if p)


def _resources(record: MetricRecord, *, rate: bool = True) -> str:
    """``mem 812 MiB, 2.3k steps/s`` when the record has resource keys (CUDA memory before host); the iteration's own
    rate only where the line has no rate of its own (two different steps/s side by side until session 18)."""
    mem = record.metrics.get(SYS_CUDA_RESERVED_MB, record.metrics.get(SYS_RSS_MB))
    rate = record.metrics.get(SYS_STEPS_PER_S) if rate else None
    parts = ([f"{'cuda ' if SYS_CUDA_RESERVED_MB in record.metrics else ''}mem {mem:.0f} MiB"] if mem is not None else [])
    parts += [f"{rate / 1000:.1f}k steps/s" if rate >= 1000 else f"{rate:.0f} steps/s"] if rate is not None else []
    return ", ".join(parts)


# --------------------------------------------------------------------------- progress and summary


class _Progress:
    """Where a run stands: iteration of total, rate over the last iterations, elapsed, ETA."""

    def __init__(self, total_iterations: int | None, start_iteration: int = 0, clock: Callable[[], float] = time.monotonic):
        self.total_iterations = total_iterations
        self.clock = clock
        self.t0 = clock()
        self.start_iteration = start_iteration
        self.window: deque[tuple[float, int]] = deque([(self.t0, start_iteration - 1)], maxlen=RATE_WINDOW + 1)
        self.record: MetricRecord | None = None
        self.state = "starting"
        self.rollbacks = 0
        self.last_stable: int | None = None
        self.value_loss: float | None = None

    def update(self, record: MetricRecord, state: str, rollbacks: int) -> None:
        self.record, self.state, self.rollbacks = record, state, rollbacks
        self.window.append((self.clock(), record.iteration))
        value = record.metrics.get(VALUE_LOSS)
        if value is not None:
            self.value_loss = value

    @property
    def elapsed(self) -> float:
        return self.clock() - self.t0

    @property
    def iterations_per_second(self) -> float | None:
        (t_a, it_a), (t_b, it_b) = self.window[0], self.window[-1]
        return (it_b - it_a) / (t_b - t_a) if it_b > it_a and t_b > t_a else None

    @property
    def steps_per_second(self) -> float | None:
        rate, rec = self.iterations_per_second, self.record
        return None if rate is None or rec is None else rate * rec.env_steps / (rec.iteration + 1)

    @property
    def eta(self) -> float | None:
        rate, rec = self.iterations_per_second, self.record
        if rate is None or rec is None or not self.total_iterations:
            return None
        return max(0, self.total_iterations - 1 - rec.iteration) / rate

    def __rich__(self) -> Group:
        """The footer, two lines for 80 columns: progress, speed and ETA; the watchdog's view and the time spent."""
        rec, total = self.record, self.total_iterations
        done = 0 if rec is None else rec.iteration + 1
        bar = Table.grid(padding=(0, 1))
        bar.add_column(width=BAR_WIDTH)
        bar.add_column()
        count = f"{done:,}/{total:,} it" if total else f"{done:,} it"
        bar.add_row(ProgressBar(total=max(total or 1, 1), completed=min(done, total or 0), width=BAR_WIDTH),
                    Text(f"{count}  {_fmt_count(rec.env_steps if rec else 0)} env steps  "
                         f"{_fmt_rate(self.steps_per_second)} steps/s  ETA {fmt_duration(self.eta)}"))
        view = Text("state ")
        view.append(self.state, style=_STATE_STYLE.get(self.state, "bold"))
        if self.value_loss is not None:
            view.append(f"  value loss {_fmt(self.value_loss)}")
        view.append(f"  rollbacks {self.rollbacks}")
        if self.last_stable is not None:
            view.append(f"  stable it {self.last_stable}")
        view.append(f"  elapsed {fmt_duration(self.elapsed)}")
        return Group(bar, view)


@dataclass
class RunSummary:
    """The closing summary's facts that only the driver knows; rollbacks and switches come from events."""

    verdict: str  # "finished", "STOPPED by the watchdog: <reason>"
    ok: bool
    iterations: int
    env_steps: int
    seconds: float
    final_reward: float | None = None
    metrics_finite: bool = True
    files: list[tuple[str, str]] = field(default_factory=list)  # (what, where)
    first_iteration: int = 0  # a resumed process: the iteration it started at ...
    env_steps_before: int = 0  # ... and the run's env steps before it (its time and rate are this process's)
    recoveries_before: int = 0  # ... and the recoveries (rollbacks and restarts) the run spent before it

    @property
    def env_steps_here(self) -> int:
        return max(self.env_steps - self.env_steps_before, 0)


# --------------------------------------------------------------------------- the console


class WatchdogConsole:
    """Renders events, the status footer or lines, and summaries; usable as an event listener (``console(event)``)."""

    def __init__(self, file: IO[str] | None = None, *, rich: bool | None = None, status_every: int | None = None,
                 role: str = "train"):
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        file = file or sys.stdout
        # a dumb terminal cannot draw the footer (rich draws nothing until it stops): plain lines, as in a log
        self.rich = (_isatty(file) and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")) if rich is None \
            else rich
        self.console = Console(file=file, force_terminal=self.rich, no_color=None if self.rich else True,
                               highlight=False, soft_wrap=not self.rich)  # (no_color=False overrode NO_COLOR)
        self.status_every = max(1, status_every if status_every is not None else _env_status_every())
        self.role = role
        self.progress: _Progress | None = None
        self._live: Live | None = None
        self._last_alarm: dict | None = None
        self.rollbacks: list[dict] = []  # rollback events, each with the alarm that caused it ("why")
        self.config_switches: list[dict] = []
        self._advisories: set[tuple] = set()  # (run, detector, signal) of advisory warnings shown in full

    # --- events -------------------------------------------------------------------------------

    def __call__(self, ev: dict) -> None:
        self.event(ev)

    def event(self, ev: dict) -> None:
        kind = ev.get("event", "?")
        self._remember(ev)
        if kind == "metrics" or kind == "stable_checkpoint" or (kind == "end" and self.role == "train"):
            return  # the footer / status line and the closing summary carry these
        if kind in ("warning", "alarm"):
            self._alert(ev)
            return
        line = describe_event(ev, self.role)
        if not self.rich:
            self.console.print(f"[watchdog] {kind.upper()} {line}", markup=False)
            return
        style = _STYLE.get(kind, "")
        if kind in PANEL_EVENTS:
            self.console.print(Panel(Text(line), title=f"watchdog: {kind.replace('_', ' ')}", border_style=style,
                                     expand=False))
        else:
            self.console.print(Text(line if line.startswith("watch") else f"watchdog: {line}", style=style))

    def _alert(self, ev: dict, run: str | None = None) -> None:
        kind = ev["event"]
        name = f"{run}: " if run else ""
        if kind == "warning" and ev.get("advisory"):
            key = (run, ev.get("detector"), ev.get("signal"))
            if key in self._advisories:  # said in full once: again, one line (the event log keeps it whole)
                line = f"{name}{describe_event(ev, self.role, brief=True)} (advisory, again: the run stays healthy)"
                if self.rich:
                    self.console.print(Text(f"watchdog: warning {line}", style="yellow dim"))
                else:
                    self.console.print(f"[watchdog] WARNING {line}", markup=False)
                return
            self._advisories.add(key)
        if not self.rich:
            self.console.print(f"[watchdog] {kind.upper()} {name}{describe_event(ev, self.role)}", markup=False)
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for label, text in alert_fields(ev, self.role):
            grid.add_row(label, Text(text))
        # (a Text, not markup: a run folder named "exp[lr=3e-4]" lost its brackets, one with "[/]" lost the panel)
        title = Text(f"watchdog: {kind} - {run}, {_head(ev)}" if run else f"watchdog: {kind} at {_head(ev)}")
        self.console.print(Panel(grid, title=title, title_align="left",
                                 border_style=_STYLE[kind], expand=False))

    def run_event(self, run: str, ev: dict) -> None:
        """One run's event in a fleet: only alerts, recoveries and actions, each naming the run."""
        kind = ev.get("event", "?")
        if kind not in PANEL_EVENTS and kind != "recovered":
            return
        if kind in ("warning", "alarm"):
            self._alert(ev, run)
            return
        line = describe_event(ev, self.role)
        if not self.rich:
            self.console.print(f"[watchdog] {kind.upper()} {run}: {line}", markup=False)
        elif kind in PANEL_EVENTS:
            self.console.print(Panel(Text(line), title=Text(f"watchdog: {kind.replace('_', ' ')} - {run}"),
                                     border_style=_STYLE.get(kind, ""), expand=False))
        else:
            self.console.print(Text(f"watchdog: {run}: {line}", style=_STYLE.get(kind, "")))

    def _remember(self, ev: dict) -> None:
        """Keep what the footer and the closing summary need."""
        kind = ev.get("event")
        if kind == "alarm":
            self._last_alarm = ev
        elif kind == "rollback":
            self.rollbacks.append({**ev, "why": self._last_alarm})
        elif kind == "config_switch":
            self.config_switches.append(ev)
        elif kind == "stable_checkpoint" and self.progress is not None:
            self.progress.last_stable = ev.get("checkpoint_iteration", ev.get("iteration"))

    # --- progress -----------------------------------------------------------------------------

    def begin(self, total_iterations: int | None, *, start_iteration: int = 0) -> None:
        """Training starts: on a terminal, show the live footer until :meth:`finish` / :meth:`close`."""
        self.progress = _Progress(total_iterations, start_iteration)
        if self.rich and self._live is None:
            # stderr joins the footer only when it is the terminal too (`2>err.log` kept nothing until session 18)
            self._live = Live(self.progress, console=self.console, refresh_per_second=2, transient=False,
                              redirect_stdout=True, redirect_stderr=_isatty(sys.stderr))
            self._live.start()

    def status(self, record: MetricRecord, state: str, rollbacks: int = 0) -> None:
        """One iteration done: update the footer, or print a status line every ``status_every`` iterations."""
        if self.progress is not None:
            self.progress.update(record, state, rollbacks)
            if self._live is not None:
                return
        first = self.progress is not None and record.iteration == self.progress.start_iteration
        last = (self.progress is not None and self.progress.total_iterations is not None
                and record.iteration >= self.progress.total_iterations - 1)
        if record.iteration % self.status_every and not first and not last:
            return
        line = status_line(record, state, rollbacks, self.progress)
        if self.rich:
            self.console.print(Text(line, style=_STATE_STYLE.get(state, "")))
        else:
            self.console.print(line, markup=False)

    def close(self) -> None:
        """Stop the live footer (leaving its last frame); safe to call twice."""
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def finish(self, summary: RunSummary) -> None:
        """Stop the footer and print the closing summary."""
        self.close()
        rows = self.summary_rows(summary)
        # a resumed process that trained: its share, then the run's (until session 18 the run's steps were put over
        # this process's time: a rate 5x too high)
        if 0 < summary.first_iteration < summary.iterations:
            done = (f"iterations {summary.first_iteration}-{summary.iterations - 1}, {summary.env_steps_here:,} env "
                    f"steps in {fmt_duration(summary.seconds)} (the run: {summary.iterations:,} iterations, "
                    f"{summary.env_steps:,} env steps)")
        else:
            done = f"{summary.iterations:,} iterations, {summary.env_steps:,} env steps in {fmt_duration(summary.seconds)}"
        head = f"{summary.verdict}: {done}, {recoveries_said(len(self.rollbacks), summary.recoveries_before)}"
        if not self.rich:
            self.console.print(head, markup=False)
            for label, text in rows:
                self.console.print(f"  {label}: {text}", markup=False)
            return
        # lines, not a panel: a panel's title was cut at the terminal's width (the counts lost at 60 columns) and its
        # cells folded paths inside the borders; soft-wrapped lines copy whole (until session 18)
        self.console.print(Text(head, style="bold green" if summary.ok else "bold red"), soft_wrap=True)
        for label, text in rows:
            self.console.print(Text.assemble(("  " + label, "bold"), f": {text}"), soft_wrap=True)

    def summary_rows(self, summary: RunSummary) -> list[tuple[str, str]]:
        """The closing summary as labelled lines."""
        rate = summary.env_steps_here / summary.seconds if summary.seconds > 0 and summary.env_steps_here else None
        rows = [("wall time", f"{fmt_duration(summary.seconds)}" + (f" ({_fmt_rate(rate)} env steps/s)" if rate else ""))]
        for rb in self.rollbacks:
            why = rb.get("why")
            reason = f": {_what(why)}" if why else ""
            rows.append((f"rollback #{rb.get('number')}",
                         f"it {rb.get('from_iteration', rb.get('iteration'))} -> it {rb.get('to_iteration')} "
                         f"({rb.get('checkpoint')}){reason}"))
        for sw in self.config_switches:
            rows.append(("config switch", f"it {sw.get('iteration')}: {sw.get('config')}: {_switch(sw)}"))
        if summary.final_reward is not None:
            rows.append(("final reward", f"{_fmt(summary.final_reward)} (average step reward, last iteration)"))
        rows.append(("final metrics", "finite" if summary.metrics_finite else "NON-FINITE"))
        rows.extend(summary.files)
        return rows

    def track(self, items: list, label: str) -> Iterator:
        """Yield ``items``; with several, show progress: a transient bar on a terminal, else a line
        every ``status_every`` items (and the last), with elapsed time and ETA."""
        if len(items) < 2:
            yield from items
            return
        if self.rich:
            columns = (TextColumn(f"{label}"), BarColumn(bar_width=BAR_WIDTH), MofNCompleteColumn(),
                       TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
            with Progress(*columns, console=self.console, transient=True) as bar:
                yield from bar.track(items, total=len(items))
            return
        t0, n = time.monotonic(), len(items)
        for i, item in enumerate(items, 1):
            yield item
            if i % self.status_every == 0 or i == n:
                elapsed = time.monotonic() - t0
                self.console.print(f"{label} {i}/{n}, elapsed {fmt_duration(elapsed)}, "
                                   f"ETA {fmt_duration(elapsed / i * (n - i))}", markup=False)

    # --- plain output ---------------------------------------------------------------------------

    def message(self, text: str, *, style: str | None = "") -> None:
        # soft-wrapped: the terminal folds a long line, rich does not break it (a resume command or a path copied from
        # a narrow terminal held hard newlines until session 18)
        self.console.print(Text(text, style=style or "") if self.rich else text, markup=False, soft_wrap=True)

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        if not self.rich:
            self.console.print(title, markup=False)
            self.console.print("\t".join(columns), markup=False)
            for row in rows:
                self.console.print("\t".join(_fmt(c) for c in row), markup=False)
            return
        table = Table(title=Text(title))
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*(Text(_fmt(c)) for c in row))  # cells are text: "[trend]" is not markup
        self.console.print(table)


def _isatty(file: IO[str]) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False


def _env_status_every() -> int:
    raw = os.environ.get(STATUS_EVERY_ENV)
    try:
        return int(raw) if raw else DEFAULT_STATUS_EVERY
    except ValueError:
        return DEFAULT_STATUS_EVERY
