"""The console: status footer / lines with an ETA, alerts that explain, words that fit the driver,
the closing summary, and a quiet start."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from watchdog.console import (
    ADVICE,
    STATUS_EVERY_ENV,
    RunSummary,
    WatchdogConsole,
    _Progress,
    describe_event,
    fmt_duration,
)
from watchdog.quiet import quiet_dependency_warnings
from watchdog.signals import VALUE_LOSS, MetricRecord

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STEPS_PER_IT = 6400


def record(iteration: int, value_loss: float = 0.05) -> MetricRecord:
    return MetricRecord.from_mapping(iteration, (iteration + 1) * STEPS_PER_IT, {VALUE_LOSS: value_loss})


def alarm(detector: str, **fields) -> dict:
    base = {"event": "alarm", "iteration": 30, "env_steps": 198_400, "state": "diverged", "detector": detector,
            "signal": VALUE_LOSS, "value": 0.5, "threshold": 0.2, "reason": f"{detector} fired",
            "onset_iteration": 25, "onset_low": 22, "onset_high": 27}
    return {**base, **fields}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- progress: rate, ETA ------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00:00"), (59.6, "0:01:00"), (3725, "1:02:05"),
                                               (None, "?"), (float("inf"), "?")])
def test_durations_read_as_h_mm_ss(seconds, text):
    assert fmt_duration(seconds) == text


def test_eta_is_remaining_iterations_at_the_recent_rate():
    clock = Clock()
    progress = _Progress(100, start_iteration=0, clock=clock)
    assert progress.eta is None  # no iteration done yet: no rate, no made-up ETA
    for it in range(10):
        clock.now += 2.0  # 2 s per iteration
        progress.update(record(it), "healthy", 0)
    assert progress.iterations_per_second == pytest.approx(0.5)
    assert progress.steps_per_second == pytest.approx(0.5 * STEPS_PER_IT)
    assert progress.eta == pytest.approx(90 * 2.0)  # iterations 10..99 left
    assert progress.elapsed == pytest.approx(20.0)


def test_a_resumed_run_counts_from_its_start_iteration():
    clock = Clock()
    progress = _Progress(100, start_iteration=90, clock=clock)
    clock.now += 3.0
    progress.update(record(90), "healthy", 0)
    assert progress.eta == pytest.approx(9 * 3.0)


# --- the footer on a terminal, status lines elsewhere ----------------------------------------------


def test_terminal_shows_a_footer_with_eta_and_panels_above_it():
    buf = io.StringIO()
    console = WatchdogConsole(buf, rich=True)
    console.begin(60)
    for it in range(3):
        console.status(record(it), "healthy", 0)
    console(alarm("nonfinite", value="nan", threshold=0.0, reason="non-finite train/value_loss = nan (also: none)"))
    console.status(record(3, value_loss=0.1234), "rolled_back", 1)
    console.close()
    text = ANSI.sub("", buf.getvalue())
    assert "4/60 it" in text and "25,600 env steps" in text and "steps/s" in text
    assert "ETA" in text and "elapsed" in text
    assert "state rolled_back  value loss 0.1234  rollbacks 1" in text
    assert "watchdog: alarm at it 30" in text
    assert "it 0 |" not in text  # no per-iteration lines under a footer


def test_plain_output_prints_a_status_line_every_n_iterations_with_eta():
    buf = io.StringIO()
    console = WatchdogConsole(buf, status_every=10)
    console.begin(60)
    for it in range(60):
        console.status(record(it), "healthy", 0)
    lines = buf.getvalue().splitlines()
    assert "\x1b[" not in buf.getvalue()
    assert [line.split(" |")[0] for line in lines] == ["it 0 (1/60)", "it 10 (11/60)", "it 20 (21/60)", "it 30 (31/60)",
                                                       "it 40 (41/60)", "it 50 (51/60)", "it 59 (60/60)"]  # the first,
    # every 10th, the last: iterations done of the total, as the footer counts them (it read 'it 59/60': session 20)
    assert all("steps/s" in line and "elapsed" in line and "ETA" in line and "healthy" in line for line in lines)


def test_status_every_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(STATUS_EVERY_ENV, "25")
    assert WatchdogConsole(io.StringIO()).status_every == 25
    assert WatchdogConsole(io.StringIO(), status_every=3).status_every == 3


# --- alerts that explain ---------------------------------------------------------------------------


@pytest.mark.parametrize("detector", sorted(ADVICE))
def test_every_alarm_gives_what_value_onset_cause_and_next_step(detector):
    ev = alarm(detector)
    for role in ("train", "watch", "replay"):
        line = describe_event(ev, role)
        value = "must be finite" if detector == "nonfinite" else "against"
        for part in (value, "onset ~ it 25 (range 22-27)", "; cause ", "; next "):
            assert part in line, (role, part, line)
        assert "none" not in line and ": ;" not in line


def test_an_events_own_cause_and_next_step_win_and_unknown_detectors_leave_them_out():
    line = describe_event(alarm("nonfinite", cause="a NaN reward", next_step="fix the reward"))
    assert "cause a NaN reward; next fix the reward" in line
    line = describe_event(alarm("a_new_detector"))
    assert "cause" not in line and "next" not in line and "onset ~ it 25" in line


def test_a_nonfinite_alarm_says_nothing_empty():
    ev = alarm("nonfinite", value="nan", threshold=0.0, reason="non-finite train/value_loss = nan (also: none)",
               onset_low=30, onset_high=30, onset_iteration=30)
    line = describe_event(ev)
    assert "(also: none)" not in line and "threshold 0" not in line
    assert "nan, must be finite" in line and "onset ~ it 30;" in line


def test_a_crashed_update_is_one_sentence_without_the_raw_error():
    buf = io.StringIO()
    WatchdogConsole(buf)({"event": "iteration_failed", "iteration": 30, "env_steps": 198_400, "state": "healthy",
                          "exception": "ValueError",
                          "error": "Traceback ...\nValueError: Expected parameter loc (Tensor of shape (128, 3))"})
    text = buf.getvalue()
    assert text.count("\n") == 1 and "crashed on non-finite numbers (ValueError)" in text
    assert "Expected parameter" not in text and "event log" in text


# --- words that fit the driver ---------------------------------------------------------------------


def test_a_watcher_says_what_it_would_do_and_shows_no_checkpoints():
    buf = io.StringIO()
    console = WatchdogConsole(buf, role="watch")
    console({"event": "stable_checkpoint", "iteration": 1600, "env_steps": 1, "state": "healthy",
             "checkpoint": "healthy_1600"})
    assert buf.getvalue() == ""
    line = describe_event({"event": "stable_checkpoint", "iteration": 1600, "checkpoint": "healthy_1600"}, "watch")
    assert "stable checkpoint healthy_1600" not in line and "would" in line
    assert "cannot roll back" in describe_event(alarm("value_loss_threshold"), "watch")


def test_replay_says_would_and_training_says_did():
    rollback = {"event": "rollback", "iteration": 30, "number": 1, "to_iteration": 10, "checkpoint": "stable_10",
                "onset_iteration": 25, "config": "ppo_safe.yaml", "lr_scale": 1.0}
    assert "would roll back #1 to it 10" in describe_event(rollback, "replay")
    assert "rolled back #1 to it 10" in describe_event(rollback, "train")
    stop = {"event": "stop", "iteration": 30, "reason": "rollback budget (3) spent"}
    assert "WOULD STOP" in describe_event(stop, "replay") and "STOPPED" in describe_event(stop)


def test_an_event_whose_steps_are_its_iterations_names_the_iteration_once():
    """rsl_rl's TensorBoard step is the iteration: "it 84 (84 steps)" said the same number twice."""
    counted = {"event": "stop", "iteration": 84, "reason": "rollback budget (3) spent"}
    assert describe_event({**counted, "env_steps": 84}, "replay").startswith("it 84: ")
    assert describe_event({**counted, "env_steps": 43_008}, "replay").startswith("it 84 (43,008 steps): ")


def test_table_cells_are_text_not_markup():
    buf = io.StringIO()
    WatchdogConsole(buf, rich=True).table("timeline", ["event", "what happened"], [["warning", "[trend] climbing"]])
    assert "[trend] climbing" in ANSI.sub("", buf.getvalue())


def test_a_fleet_alert_names_its_run():
    plain, fancy = io.StringIO(), io.StringIO()
    WatchdogConsole(plain, role="watch").run_event("seed_03", alarm("value_loss_threshold"))
    WatchdogConsole(fancy, rich=True, role="watch").run_event("seed_03", alarm("value_loss_threshold"))
    assert plain.getvalue().startswith("[watchdog] ALARM seed_03: it 30 (198,400 steps):")
    assert "watchdog: alarm - seed_03, it 30" in ANSI.sub("", fancy.getvalue())
    WatchdogConsole(plain, role="watch").run_event("seed_03", {"event": "metrics", "iteration": 31})
    assert plain.getvalue().count("\n") == 1  # metrics are not alerts


@pytest.mark.parametrize("run", ["sweep/exp[lr=3e-4]", "sweep/lr[/]", "seed[red]"])
def test_a_fleet_alert_names_a_run_whose_folder_holds_brackets_as_it_is(run):
    """A review of session 29: the panel's title was rich markup, so "exp[lr=3e-4]" lost its brackets (the alarm
    named another run) and "[/]" raised inside the listener (a traceback instead of the panel)."""
    for event in (alarm("value_loss_threshold"), {"event": "stop", "iteration": 40, "env_steps": 1000, "reason": "x"}):
        fancy = io.StringIO()
        WatchdogConsole(fancy, rich=True, role="watch").run_event(run, event)
        assert f" - {run}" in ANSI.sub("", fancy.getvalue())


def test_role_is_checked():
    with pytest.raises(ValueError, match="role must be one of"):
        WatchdogConsole(io.StringIO(), role="trainer")


# --- the closing summary ---------------------------------------------------------------------------


def test_closing_summary_names_rollbacks_with_their_cause_switches_reward_and_files():
    buf = io.StringIO()
    console = WatchdogConsole(buf)
    console(alarm("nonfinite", value="nan", reason="non-finite train/value_loss = nan (also: none)"))
    console({"event": "rollback", "iteration": 30, "env_steps": 198_400, "state": "rolled_back", "number": 1,
             "from_iteration": 30, "to_iteration": 10, "checkpoint": "run/checkpoints/watchdog/stable_70400_steps",
             "onset_iteration": 30, "config": "ppo_safe.yaml", "lr_scale": 1.0})
    console({"event": "config_switch", "iteration": 30, "env_steps": 198_400, "state": "rolled_back",
             "config": "ppo_safe.yaml", "changes": {"lr": {"old": 5e-4, "new": 3e-4}},
             "kept": {"episode_length": "the run keeps 100 (the safe config says 200; fixed at start-up)"}})
    buf.truncate(0), buf.seek(0)
    console.finish(RunSummary("finished", True, iterations=60, env_steps=384_000, seconds=46.2, final_reward=0.2116,
                              files=[("run dir", "results/run"), ("event log", "results/run/watchdog_events.jsonl")]))
    text = buf.getvalue()
    assert text.startswith("finished: 60 iterations, 384,000 env steps in 0:00:46, 1 rollback(s)")
    assert "rollback #1: it 30 -> it 10 (run/checkpoints/watchdog/stable_70400_steps): [nonfinite]" in text
    assert ("config switch: it 30: ppo_safe.yaml: lr 0.0005 -> 0.0003; kept as started: episode_length (the run keeps "
            "100 (the safe config says 200; fixed at start-up))") in text
    assert "final reward: 0.2116" in text and "event log: results/run/watchdog_events.jsonl" in text
    assert "wall time: 0:00:46 (8,312 env steps/s)" in text


class _Terminal(io.StringIO):
    """A terminal's stream, as far as the console can tell (the true boundary here)."""

    def isatty(self) -> bool:
        return True


def test_a_resumed_process_summary_gives_its_own_share_and_rate_then_the_runs(monkeypatch):
    """A process resumed at iteration 40 of a 50-iteration run: the run's 80,000 env steps were put over this
    process's 5 s, '16,000 env steps/s' for about 3,200 (until session 18)."""
    buf = io.StringIO()
    WatchdogConsole(buf).finish(RunSummary("finished", True, iterations=50, env_steps=80_000, seconds=5.0,
                                           first_iteration=40, env_steps_before=64_000))
    head, wall = buf.getvalue().splitlines()[:2]
    assert head == ("finished: iterations 40-49, 16,000 env steps in 0:00:05 (the run: 50 iterations, 80,000 env "
                    "steps), 0 rollback(s)")
    assert wall == "  wall time: 0:00:05 (3,200 env steps/s)"
    # resumed at a finished run's last checkpoint: nothing trained here, no negative share (found by a review)
    buf = io.StringIO()
    WatchdogConsole(buf).finish(RunSummary("finished", True, iterations=0, env_steps=0, seconds=0.5,
                                           first_iteration=30, env_steps_before=4_800))
    head, wall = buf.getvalue().splitlines()[:2]
    assert head == "finished: 0 iterations, 0 env steps in 0:00:00, 0 rollback(s)" and wall == "  wall time: 0:00:00"


def test_on_a_narrow_terminal_the_summary_and_commands_are_whole_lines(monkeypatch):
    """At 60 columns the summary's headline (a panel title) lost its counts and a resume command or path held hard
    newlines where rich broke it (until session 18): lines are soft-wrapped, the terminal folds them."""
    monkeypatch.setenv("COLUMNS", "60")
    buf = _Terminal()
    console = WatchdogConsole(buf, rich=True)
    path = "/a/long/run/directory/" + "x" * 80 + "/checkpoints/watchdog/stable_134400_steps"
    console.message(f"resume with: python openrl_ws/train.py --checkpoint {path} --config cfgs/ppo_safe.yaml")
    console.finish(RunSummary("STOPPED by the watchdog: memory: resident memory 983 MiB of a 1800 MiB limit", False,
                              iterations=60, env_steps=384_000, seconds=46.2, files=[("run dir", path)]))
    lines = ANSI.sub("", buf.getvalue()).splitlines()
    assert any(f"--checkpoint {path} --config" in line for line in lines)
    assert any(line.startswith("STOPPED by the watchdog: memory") and line.endswith("0 rollback(s)") for line in lines)
    assert f"  run dir: {path}" in lines


def test_a_dumb_terminal_gets_plain_lines_and_no_color_is_honoured(monkeypatch):
    """TERM=dumb showed no progress at all (rich's footer draws nothing there), and NO_COLOR was overridden on a
    terminal (until session 18)."""
    monkeypatch.setenv("TERM", "dumb")
    assert WatchdogConsole(_Terminal()).rich is False
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    buf = _Terminal()
    console = WatchdogConsole(buf)
    assert console.rich is True
    console(alarm("value_loss_threshold"))
    assert "\x1b[1m" in buf.getvalue() and not re.search(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]", buf.getvalue())


def test_the_footer_leaves_a_stderr_that_is_not_the_terminal_alone(monkeypatch):
    """`train.py 2>err.log` on a terminal: the live footer took stderr into stdout, and err.log kept nothing of the
    libraries' warnings (until session 18)."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    buf = _Terminal()
    console = WatchdogConsole(buf, rich=True)
    console.begin(10)
    print("a library's warning", file=sys.stderr)
    console.close()
    assert "a library's warning" in err.getvalue() and "a library's warning" not in buf.getvalue()


def test_a_resource_alarms_checkpoint_and_advice_are_said_in_words():
    """A memory alarm had no next step and its resume checkpoint read 'resume_checkpoint' (until session 18)."""
    line = describe_event({"event": "resume_checkpoint", "iteration": 39, "env_steps": 64_000, "state": "diverged",
                           "checkpoint": "run/checkpoints/watchdog/stable_64000_steps", "checkpoint_iteration": 39,
                           "stable": True, "reason": "memory"})
    assert "saved a checkpoint to resume from after a resource alarm: run/checkpoints/watchdog/stable_64000_steps" in line
    assert set(ADVICE) >= {"memory", "throughput"}


def test_a_status_line_gives_one_rate():
    """'6,683 steps/s | ... | mem 489 MiB, 4.7k steps/s': the window's rate and the iteration's side by side."""
    from watchdog.console import status_line
    from watchdog.signals import SYS_RSS_MB, SYS_STEPS_PER_S

    clock = Clock()
    progress = _Progress(60, clock=clock)
    rec = MetricRecord.from_mapping(3, 4 * STEPS_PER_IT, {VALUE_LOSS: 0.1, SYS_RSS_MB: 489.0, SYS_STEPS_PER_S: 4700.0})
    clock.now += 4.0
    progress.update(rec, "healthy", 0)
    line = status_line(rec, "healthy", 0, progress)
    assert line.count("steps/s") == 1 and "mem 489 MiB" in line
    assert "4.7k steps/s" in status_line(rec, "healthy", 0)  # without a window (watch): the iteration's own


# --- quiet start -------------------------------------------------------------------------------------


def test_known_dependency_warnings_are_silenced_and_others_still_show():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_dependency_warnings()
        warnings.warn_explicit("`torch.utils._pytree._register_pytree_node` is deprecated. Please use ...",
                               FutureWarning, "treevalue/tree/integration/torch.py", 23,
                               module="treevalue.tree.integration.torch")
        warnings.warn_explicit("\x1b[33mWARN: env.num_agents to get variables from other wrappers is deprecated",
                               UserWarning, "gymnasium/core.py", 311, module="gymnasium.core")
        warnings.warn("your own FutureWarning", FutureWarning)
        warnings.warn_explicit("`torch.utils._pytree._register_pytree_node` is deprecated",
                               FutureWarning, "mine.py", 1, module="mine")  # the same text from elsewhere
    assert [str(w.message) for w in seen] == ["your own FutureWarning",
                                              "`torch.utils._pytree._register_pytree_node` is deprecated"]


def test_gyms_unmaintained_notice_is_not_printed():
    pytest.importorskip("gym")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    loud = subprocess.run([sys.executable, "-c", "import gym"], capture_output=True, text=True, timeout=120, env=env)
    if "unmaintained" not in loud.stderr:
        pytest.skip("this gym prints no notice")
    code = "from watchdog.quiet import quiet_dependency_warnings as q; q(); import gym"
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""
    # nor by the examples, whose libraries import gym at the top (SB3's printed it until session 20)
    for example in ("sb3_ppo", "rsl_rl_ppo", "skrl_ppo", "rl_games_ppo"):
        out = subprocess.run([sys.executable, str(REPO / "examples" / f"{example}.py"), "--help"], capture_output=True,
                             text=True, timeout=120, env=env)
        assert out.returncode == 0 and "unmaintained" not in out.stdout + out.stderr, example


def test_an_advisory_warning_is_shown_in_full_once_then_in_one_line():
    """rsl_rl HalfCheetah's value loss (in the returns' units) spikes at every episode boundary: 8 advisory trend
    warnings in 500 iterations. The first is a whole alert; the same detector and signal again is one line
    (the event log keeps every one whole); another detector, or another run in a fleet, is whole again."""
    def advisory(iteration: int, detector: str = "trend") -> dict:
        return {"event": "warning", "iteration": iteration, "env_steps": iteration, "detector": detector,
                "signal": VALUE_LOSS, "value": 171.0, "threshold": 94.8, "reason": f"{detector} climbing",
                "advisory": True}

    for rich in (False, True):
        buf = io.StringIO()
        con = WatchdogConsole(buf, rich=rich)
        for ev in (advisory(168), advisory(209), advisory(251, "blowup")):
            con.event(ev)
        text = ANSI.sub("", buf.getvalue())
        first, again = text.index("it 168"), text.index("it 209")
        assert "next" in text[first:again] and "next" not in text[again:text.index("it 251")]
        assert text.count("advisory, again") == 1 and "advisory, again" not in text[text.index("it 251"):]
        assert "the run stays healthy; with other evidence" in text[first:again]  # an advisory never alarms alone
    fleet = io.StringIO()
    con = WatchdogConsole(fleet, role="watch")
    for run in ("seed_01", "seed_02"):
        con.run_event(run, advisory(168))
    assert "advisory, again" not in fleet.getvalue()
