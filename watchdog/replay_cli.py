"""`watchdog replay RUN_DIR...`: argument parsing, rendering and exit codes for replay."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

_VERDICT_STYLE = {"healthy": "green", "warning": "yellow", "diverged": "bold red", "unreadable": "red",
                 "unrecognised": "red"}
MAX_TIMELINE = 25


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay finished runs through the watchdog: verdict, onset, checkpoint")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories, or folders holding runs")
    p.add_argument("--config", default=None, help="watchdog config YAML (default: the built-in defaults, as watch)")
    p.add_argument("--json", action="store_true", help="print one JSON object {\"runs\": [...]} instead")
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="write a PNG of the curves of the first run with records")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from watchdog.config import load_watchdog_config
    from watchdog.replay import UNREADABLE, UNRECOGNISED, find_run_dirs, verdict_bounded

    # the built-in defaults unless --config (until session 18 a cfgs/watchdog.yaml in the current folder was read
    # silently: the same run replayed HEALTHY in one folder and DIVERGED in another, and watch disagreed)
    cfg = load_watchdog_config(args.config)
    if args.plot is not None:
        check_plot_path(args.plot)
    closed: list = []
    runs = find_run_dirs(args.runs, closed)
    for folder, why in closed:  # not known to be a run (another user's run, a file system's lost+found): said, left out
        print(f"watchdog: {folder}: cannot look into it ({why}); left out", file=sys.stderr)
    start = time.monotonic()
    if args.json:
        reports = _replay_each(runs, cfg, runs)
        print(json.dumps({"runs": [r.to_dict() for r in reports]}, allow_nan=False))
    else:
        from watchdog.console import WatchdogConsole

        out = WatchdogConsole(role="replay")
        reports = _replay_each(runs, cfg, out.track(runs, "replaying runs"))
        _render(out, reports, time.monotonic() - start)
    if args.plot:  # the first run with records (until session 27 the first run: a blank plot when it was unreadable)
        plotted = next((r for r in reports if r.records), None)
        if plotted is None:
            print(f"watchdog: --plot: no run has records to plot; {args.plot} not written", file=sys.stderr)
        else:
            if plotted is not reports[0]:
                print(f"watchdog: --plot: {reports[0].run} has no records; plotted {plotted.run}", file=sys.stderr)
            plot_report(plotted, cfg, args.plot)
    if any(r.verdict in (UNRECOGNISED, UNREADABLE) for r in reports):
        return 2  # a run we could not judge is bad input, never "healthy"
    if any(verdict_bounded(r.run_info) and r.verdict != "diverged" for r in reports):
        return 2  # judged up to a corrupt record, or without lost lines: "healthy" for the whole run is more than the data says
    return 1 if any(r.verdict == "diverged" for r in reports) else 0


def _replay_each(runs: list[Path], cfg, tracked) -> list:
    """Every run's report. One run's unreadable files end a replay of that run alone (its one-line error, as
    before); among several, that run is ``unreadable`` and the others are still replayed."""
    from watchdog.errors import InputError
    from watchdog.replay import replay_run, unreadable_report

    reports = []
    for run in tracked:
        try:
            reports.append(replay_run(run, cfg))
        except InputError as exc:
            if len(runs) == 1:
                raise
            reports.append(unreadable_report(str(run), exc))
    return reports


PLOT_FORMATS = (".png", ".pdf", ".svg")


def check_plot_path(path: str) -> None:
    """A one-line error now, before the replay, for a --plot file that cannot be written."""
    from watchdog.errors import InputError, check_output_file

    if path == "":  # an unset variable: no plot and exit 0, unsaid, until session 22
        raise InputError("--plot is empty (an unset variable?)", hint="give a file name ending in .png, or leave --plot out")
    suffix = Path(path).suffix
    if suffix.lower() not in PLOT_FORMATS:
        raise InputError(f"--plot: cannot write a {suffix or 'suffix-less'} file", path=path,
                         hint=f"end the name in {', '.join(PLOT_FORMATS)}")
    check_output_file("--plot", path)


def _render(out, reports, seconds: float) -> None:
    for report in reports:
        _render_one(out, report)
    if len(reports) > 1:
        names = _short_names([r.run for r in reports])
        rows = [[names[r.run], r.source, verdict_text(r).lower(),
                 _it(r.first_alarm), _it(r.onset), len(r.would_roll_back),
                 (r.recommended_checkpoint or {}).get("step", "-")] for r in _by_verdict(reports)]
        out.table("replay summary", ["run", "source", "verdict", "first alarm", "onset", "rollbacks",
                                     "recommended step"], rows)
    out.message(closing_line(reports, seconds), style="bold")


def closing_line(reports, seconds: float) -> str:
    """The closing summary: runs, records, wall time, verdicts, what a live watchdog would have done."""
    from watchdog.console import fmt_duration

    counts = {v: sum(r.verdict == v for r in reports) for v in _VERDICT_ORDER}
    verdicts = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    rollbacks = sum(len(r.would_roll_back) for r in reports)
    return (f"replayed {len(reports)} run(s), {sum(r.iterations for r in reports):,} records in {fmt_duration(seconds)}: "
            f"{verdicts}; a live watchdog would have rolled back {rollbacks} time(s)")


_VERDICT_ORDER = {"unreadable": 0, "unrecognised": 0, "diverged": 0, "warning": 1, "healthy": 2}


def _short_names(runs: list[str]) -> dict[str, str]:
    """The run folder's name; where names repeat (SB3's PPO_1), its path below the runs' common folder."""
    names = {r: Path(r).name for r in runs}
    if len(set(names.values())) == len(names):
        return names
    common = Path(os.path.commonpath([str(Path(r).resolve()) for r in runs]))
    return {r: str(Path(r).resolve().relative_to(common)) or names[r] for r in runs}


def _by_verdict(reports) -> list:
    """Diverged first, then warning, then healthy; by run name within a verdict."""
    return sorted(reports, key=lambda r: (_VERDICT_ORDER.get(r.verdict, 1), Path(r.run).name, r.run))


def _alarm_before(events: list[dict], iteration: int) -> str | None:
    """Why a rollback happened: the newest alarm at or before its iteration, as detector and reason."""
    alarms = [e for e in events if e["event"] == "alarm" and e["iteration"] <= iteration]
    if not alarms:
        return None
    return f"[{alarms[-1].get('detector')}] {str(alarms[-1].get('reason', '')).replace(' (also: none)', '')}"


def _it(obj) -> str:
    return "-" if not obj else f"it {obj['iteration']}"


def reward_label(key: str) -> str:
    """A reward key as a person reads it (a key set in ``reward_collapse.signal`` as it is)."""
    from watchdog.signals import EPISODE_RETURN, STEP_REWARD

    return {STEP_REWARD: "average step reward", EPISODE_RETURN: "episode return"}.get(key, key)


def verdict_text(report) -> str:
    """The verdict as the headline says it, with what bounds it: a run within the warm-up is healthy so far (only
    non-finite values and blow-ups were judged), one with a corrupt file is judged up to the corrupt record."""
    from watchdog.replay import healthy_limits, verdict_bounds

    info, bounds = report.run_info, []
    short = report.verdict == "healthy" and (info.get("within_warmup") or info.get("too_few_records"))
    if report.verdict == "healthy":
        bounds += healthy_limits(bool(short), info.get("signals_absent") or ())
    bounds += verdict_bounds(info, report.records[-1].iteration if report.records else None)
    return report.verdict.upper() + (" SO FAR" if short else "") + (f" ({'; '.join(bounds)})" if bounds else "")


def _render_one(out, report) -> None:
    from watchdog.console import at_iteration, describe_event

    advisory = sum(1 for w in report.warnings if w.get("advisory"))
    said = f", {advisory} advisory warning{'s' * (advisory != 1)} below" if advisory and report.verdict == "healthy" else ""
    read = "" if report.verdict == "unreadable" else f" ({report.iterations} records from {report.source}{said})"
    out.message(f"{report.run}: {verdict_text(report)}{read}",
                style=_VERDICT_STYLE.get(report.verdict, ""))
    unit = report.run_info.get("step_unit") or "env steps"
    if report.records:
        last = report.records[-1]
        path = report.reward_path
        out.message(f"  up to it {last.iteration}" + ("" if unit == "iterations" else f" ({last.env_steps:,} {unit})")
                    + ("" if path is None else
                       f"; {reward_label(path['signal'])} "
                       f"{path['first']:.4g} over its first tenth, {path['last']:.4g} over its last "
                       f"(best {path['best']:.4g} at it {path['best_iteration']})"))
    for warning in report.input_warnings:
        out.message(f"  input: {warning}", style="yellow")
    _render_origin(out, report)
    from watchdog.replay import TIMELINE_EVENTS

    timeline = [e for e in report.events if e["event"] in TIMELINE_EVENTS]
    if timeline:
        rows = [[e["event"], describe_event(e, "replay", brief=e["event"] != "alarm")] for e in timeline[:MAX_TIMELINE]]
        if len(timeline) > MAX_TIMELINE:
            rows.append(["...", f"{len(timeline) - MAX_TIMELINE} more events"])
        out.table("timeline", ["event", "what happened"], rows)
    for label, item in (("first non-finite", report.first_nonfinite), ("first value loss above threshold",
                                                                        report.first_crossing)):
        if item:
            out.message(f"  {label}: {at_iteration(item['iteration'], item['step'])}")
    if report.onset:
        o = report.onset
        out.message(f"  onset (offline fit): {at_iteration(o['iteration'], o['step'])}, range {o['low']}-{o['high']}")
    for rb in report.would_roll_back:
        why = _alarm_before(report.events, rb["iteration"])
        out.message(f"  would roll back at it {rb['iteration']} -> {at_iteration(rb['to_iteration'], rb['to_step'])}, "
                    f"onset it {rb['onset_iteration']}" + (f": {why}" if why else ""), style="magenta")
    if report.verdict != "diverged":
        return
    live = report.live_recovered
    if live and live.get("resumed_from"):
        out.message(f"  resumed after the stop at it {live['from_iteration']} (from {live['resumed_from']}) and trained "
                    f"on to its end (it {live['end_iteration']}): its final weights are the ones to use, nothing to "
                    "resume", style="green")
    elif live:
        out.message(f"  recovered live: the run's watchdog rolled back {live['rollbacks']} time(s), the last at it "
                    f"{live['from_iteration']} -> it {live['to_iteration']}, and training went on to its end (it "
                    f"{live['end_iteration']}): its final weights are the ones to use, nothing to resume", style="green")
    elif report.recommended_checkpoint:
        ck = report.recommended_checkpoint  # in the run's unit (rsl_rl's iterations: '290 steps' until session 20)
        out.message(f"  recommended checkpoint: {ck['path']} ({ck['step']:,} {unit})", style="green")
        out.message(f"  resume: {report.resume_command}", style="bold")
    else:
        out.message("  no usable checkpoint before the onset", style="red")
    for rej in report.rejected_checkpoints:
        out.message(f"  rejected {rej['path']}: {rej['reason']}", style="dim")


def _render_origin(out, report) -> None:
    """Framework, step axis, the signals found / absent, and whether the absolute value-loss rule ran."""
    info = report.run_info
    if not info:
        return
    if report.verdict == "unrecognised":
        tags = info.get("tags_seen") or []
        shown = ", ".join(tags[:20]) + (f", ... ({len(tags)} tags)" if len(tags) > 20 else "")
        out.message(f"  no tracked signal recognised ({', '.join(info.get('signals_absent') or [])}); "
                    f"tags seen: {shown or 'none'}", style="red")
        out.message("  name the framework or map its tags in watchdog.yaml's tags: section (docs/frameworks.md)")
        return
    unit = info.get("step_unit") + (f" ({info['step_size_from']})" if info.get("step_size_from") else "")
    out.message(f"  framework: {info.get('framework')}; steps are {unit}; signals: "
                f"{', '.join(info.get('signals_found') or []) or 'none tracked'}"
                + (f" (absent, their detectors see nothing: {', '.join(info['signals_absent'])})"
                   if info.get("signals_absent") else ""))
    if info.get("curriculum_terms"):
        out.message(f"  curriculum terms: {', '.join(info['curriculum_terms'])} (a step of one is a task change: the "
                    "reward and value-loss detectors start over)", style="dim")
    if info.get("within_warmup"):
        out.message(f"  too short to judge: {report.iterations} records, all within the first {info.get('warmup_iters')} "
                    "iterations (the detectors' warm-up), so only non-finite values and blow-ups were judged",
                    style="yellow")
    elif info.get("too_few_records"):
        out.message(f"  too short to judge: {report.iterations} records, fewer than the {info.get('baseline_points')} a "
                    "detector needs to learn the run's level, so no more than non-finite values and blow-ups were judged",
                    style="yellow")
    if "value loss" in (info.get("signals_absent") or ()):
        out.message("  absolute value-loss rule: no value loss to apply it to", style="dim")
        return
    rule = "on" if info.get("value_loss_rule") else "off"
    out.message(f"  absolute value-loss rule {rule} ({info.get('value_normalization')})", style="dim")


def plot_report(report, cfg, path: str) -> None:
    """PNG: value loss (log) with its threshold, critic grad norm, reward; markers for events."""
    import matplotlib

    from watchdog.errors import InputError

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from watchdog.signals import CRITIC_GRAD_NORM, VALUE_LOSS

    its = [r.iteration for r in report.records]
    reward = report.reward_key  # the reward the markers' reward_collapse judged, as the report's reward line
    panels = ((VALUE_LOSS, "value loss", True), (CRITIC_GRAD_NORM, "critic grad norm", True),
              (reward, reward_label(reward), False))
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    for ax, (key, label, log_scale) in zip(axes, panels):
        ax.plot(its, [r.metrics.get(key, float("nan")) for r in report.records], lw=0.8)
        ax.set_ylabel(label)
        if log_scale:
            ax.set_yscale("log")
        for ev in report.events:
            colour = {"warning": "orange", "alarm": "red", "rollback": "magenta"}.get(ev["event"])
            if colour:
                ax.axvline(ev["iteration"], color=colour, lw=0.8, alpha=0.7)
        if report.onset:
            ax.axvspan(report.onset["low"], report.onset["high"], color="red", alpha=0.1)
            ax.axvline(report.onset["iteration"], color="red", ls="--", lw=1)
    if report.run_info.get("value_loss_rule", cfg.value_loss.enabled):  # off for raw value targets (SB3, ...)
        axes[0].axhline(cfg.value_loss.value_loss_max, color="black", ls=":", lw=1, label="threshold")
        axes[0].legend(loc="upper right")
    if report.recommended_checkpoint:
        step = report.recommended_checkpoint["step"]
        it = min(report.records, key=lambda r: abs(r.env_steps - step)).iteration
        for ax in axes:
            ax.axvline(it, color="green", lw=1.2)
    axes[-1].set_xlabel("PPO iteration")
    fig.suptitle(f"{report.run}: {report.verdict}")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:  # a full disk: a bare "No space left on device" and a 0-byte PNG until session 19
        Path(path).unlink(missing_ok=True)
        raise InputError(f"cannot write the plot ({exc.strerror or exc})", path=str(path),
                         hint="free space on its disk, or give --plot a path on another") from None
    finally:
        plt.close(fig)
