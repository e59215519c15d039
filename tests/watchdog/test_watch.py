"""`watchdog watch` follows a run another process is writing, alerts, runs --on-alarm."""

from __future__ import annotations

import functools
import hashlib
import shutil
import math
import subprocess
import sys
import time
from pathlib import Path

from watchdog.cli import main
from watchdog.eventlog import EVENTS_FILENAME, EventLog, make_event, read_events
from watchdog.watch import WATCH_EVENTS, RunFollower

TEST_DATA = Path(__file__).resolve().parents[1] / "data"

WRITER = Path(__file__).resolve().parents[1] / "helpers" / "slow_writer.py"


def _digest(run: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("events.out.tfevents.*")}


def test_watch_follows_a_live_writer_alerts_and_runs_the_alarm_command(tmp_path, capsys):
    run = tmp_path / "run with spaces é"
    run.mkdir()
    writer = subprocess.Popen([sys.executable, str(WRITER), str(run)])
    flag = tmp_path / "alarm.txt"
    deadline = time.monotonic() + 60
    while not list(run.rglob("events.out.tfevents.*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the writer has started: from here on --idle-exit measures its silence
    try:
        code = main(["watch", str(run), "--interval", "0.1", "--idle-exit", "2",
                     "--on-alarm", f'echo "$WATCHDOG_DETECTOR $WATCHDOG_ITERATION" > "{flag}"'])
    finally:
        writer.wait(timeout=60)
    assert code == 1
    events = read_events(run / WATCH_EVENTS).events
    alarm = next(e for e in events if e["event"] == "alarm")
    assert 100 <= alarm["iteration"] <= 135 and abs(alarm["onset_iteration"] - 100) <= 5
    detector, iteration = flag.read_text().split()
    assert detector == alarm["detector"] and int(iteration) == alarm["iteration"]
    assert not [e for e in events if e["event"] == "rollback"]  # watch only alerts
    assert "ALARM" in capsys.readouterr().out


def test_watch_never_modifies_the_training_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    subprocess.run([sys.executable, str(WRITER), str(run)], check=True, timeout=60)
    before = _digest(run)
    assert main(["watch", str(run), "--interval", "0.05", "--idle-exit", "0.2"]) == 1
    assert _digest(run) == before


def test_an_openrl_run_whose_event_files_come_after_its_log_txt_is_judged_once(tmp_path, mapush_runs):
    """Found by an audit (session 21): OpenRL writes log.txt's blocks at once and TensorBoard's files when it flushes
    (every 120 s); watch judged the run from log.txt, then the whole run again from the event files, from iteration 0
    on the same watchdog (a warning said twice, and an alarm's --on-alarm would run twice). The event files now go on
    from where log.txt stood."""
    src, run = mapush_runs / "11-06-17_cuboid", tmp_path / "run"
    run.mkdir()
    shutil.copy(src / "log.txt", run / "log.txt")
    follower = RunFollower(run)
    from_log = follower.poll()
    assert from_log and from_log[-1].iteration == 1295  # the whole of log.txt
    shutil.copytree(src / "logs", run / "logs")
    assert follower.poll() == [] and follower.poll(final=True) == []  # nothing after where log.txt stood
    # ...and once past it every record counts: a run restarted in place from 20 after 24 (a review: its iterations
    # 21-23 were dropped for good); its first process's log.txt (log_interval 1) came before the event files
    src = Path(__file__).resolve().parents[1] / "data" / "openrl_restarted" / "push_lite_crash_restart"
    run = tmp_path / "restarted"
    run.mkdir()
    lines, last = [], {}
    for rec in RunFollower(src).poll(final=True)[:25]:  # the first process: 0-24 (rewards every 5th: carried on)
        last.update(rec.metrics)
        lines.append(f"2026-12-01 10:00:00,000 [INFO] Episode: {rec.iteration}/40")
        for prefix in ("rollout/", "train/"):
            lines += ["2026-12-01 10:00:00,100 [INFO] "] + [f"\t{k[len(prefix):]}: {v}" for k, v in last.items()
                                                           if k.startswith(prefix)] + [""]
    (run / "log.txt").write_text("\n".join(lines) + "\n")
    follower = RunFollower(run)
    assert [r.iteration for r in follower.poll()] == list(range(24))  # (24's block waits for a later one)
    shutil.copytree(src / "logs", run / "logs")
    assert [r.iteration for r in follower.poll(final=True)] == [24, 21, 22, 23, *range(24, 40)]  # replay's, from 24


def test_follower_waits_for_a_step_to_complete_and_sees_new_files(tmp_path):
    from watchdog.tfevents import ScalarWriter

    run = tmp_path / "run"
    (run / "logs" / "value_loss" / "value_loss").mkdir(parents=True)
    follower = RunFollower(run)
    w = ScalarWriter(run / "logs" / "value_loss" / "value_loss")
    w.add_scalar("value_loss", 0.5, 1000)
    w.flush()
    assert follower.poll() == []  # step 1000 may still get more tags
    (run / "logs" / "critic_grad_norm" / "critic_grad_norm").mkdir(parents=True)
    w2 = ScalarWriter(run / "logs" / "critic_grad_norm" / "critic_grad_norm")
    w2.add_scalar("critic_grad_norm", 0.25, 1000)
    w2.flush()
    w.add_scalar("value_loss", 0.4, 2000)
    w.flush()
    # step 1000 is complete, but one step alone cannot tell the iteration size of a run without its log.txt (a
    # resumed run's first step is not one iteration's): the next complete step tells (session 18)
    assert follower.poll() == []
    w2.add_scalar("critic_grad_norm", 0.2, 2000)
    w.add_scalar("value_loss", 0.3, 3000)
    w2.flush(), w.flush()
    first, second = follower.poll()
    assert first.iteration == 0 and first.metrics == {"train/value_loss": 0.5, "train/critic_grad_norm": 0.25}
    assert second.iteration == 1 and second.env_steps == 2000
    assert [r.env_steps for r in follower.poll(final=True)] == [3000]


def test_a_step_written_while_the_follower_reads_is_one_record(tmp_path, monkeypatch):
    """OpenRL writes one file per tag, every tag of an iteration before the next one's. The follower
    reads the files in name order, so the writer can add reward 2000 and value loss 3000 after the
    reward file was read and before the value-loss file is: step 2000 must still come out once, with
    its reward (it came out without it, and its reward later as a second record of iteration 1, which
    replays as a restart)."""
    from watchdog import watch as watch_module
    from watchdog.tfevents import ScalarWriter

    run = tmp_path / "run"
    writers = {}
    for tag in ("average_step_reward", "value_loss"):  # read in this (name) order
        (run / "logs" / tag / tag).mkdir(parents=True)
        writers[tag] = ScalarWriter(run / "logs" / tag / tag)

    def write(step: int, tags=("value_loss", "average_step_reward")) -> None:
        for tag in tags:
            writers[tag].add_scalar(tag, step / 4000, step)  # exact in float32
            writers[tag].flush()

    write(1000)
    write(2000, tags=("value_loss",))  # the writer is inside iteration 2000
    plain = watch_module.EventFileTail

    class Racing(plain):
        """The value-loss file's first read: the writer finishes 2000 and starts 3000 just before it."""

        raced = False

        def poll(self, **kw):
            if "value_loss" in str(self.path) and not Racing.raced:
                Racing.raced = True
                write(2000, tags=("average_step_reward",))
                write(3000, tags=("value_loss",))
            return super().poll(**kw)

    monkeypatch.setattr(watch_module, "EventFileTail", Racing)
    follower = RunFollower(run)
    records = follower.poll()
    write(3000, tags=("average_step_reward",))
    records += follower.poll(final=True)
    assert Racing.raced
    assert [(r.iteration, r.metrics) for r in records] == [
        (0, {"train/value_loss": 0.25, "rollout/average_step_reward": 0.25}),
        (1, {"train/value_loss": 0.5, "rollout/average_step_reward": 0.5}),
        (2, {"train/value_loss": 0.75, "rollout/average_step_reward": 0.75}),
    ]


def test_watch_missing_dir_is_waited_for_and_exit_2_if_nothing_came(tmp_path, capsys):
    """A watch started before its training (a missing folder was an error until session 17): it waits for the
    folder; at --idle-exit with nothing there, no verdict, exit 2."""
    assert main(["watch", str(tmp_path / "nope"), "--idle-exit", "0"]) == 2
    out = capsys.readouterr().out
    assert "not there yet; waiting" in out and "run directory not found in 0 s (no run appeared there)" in out


def test_a_folder_empty_at_start_becomes_one_run_or_a_fleet_by_what_appears(tmp_path, capsys):
    """An empty folder watched without --fleet was taken for one run: the first run appearing in a subfolder was
    followed, every later one ignored without a word, exit 0 though one diverged (found by a helper's audit,
    session 17). Runs appearing in it make it a fleet; files of one run appearing in it, a run."""
    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher

    from tests.watchdog.test_fleet import write_run

    fleet, single = tmp_path / "fleet", tmp_path / "single"
    fleet.mkdir()
    w = Watcher(fleet, console=WatchdogConsole())
    w.poll()
    write_run(fleet / "a", 0, diverging=False, iters=range(5))
    write_run(fleet / "b", 1, diverging=False, iters=range(5))
    w.poll()
    assert w.fleet and sorted(r.name for r in w.runs) == ["a", "b"]
    w = Watcher(single, console=WatchdogConsole())  # (not there yet)
    w.poll()
    write_run(single, 0, diverging=False, iters=range(5))
    w.poll()
    assert not w.fleet and [r.run_dir for r in w.runs] == [single]


def test_a_folder_holding_no_run_yet_waits_whatever_else_it_holds(tmp_path, capsys):
    """A review (session 27): a job script makes results/seed0/ and seed1/ (and writes a sweep.yaml) before the
    trainings start; a folder holding anything was taken for one run, and the two runs that then appeared were
    judged on one watchdog as one timeline (seed1's first records "RECOVERED" seed0's divergence). It is a folder of
    runs, as replay reads it."""
    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher

    from tests.watchdog.test_fleet import write_run

    results = tmp_path / "results"
    (results / "seed0").mkdir(parents=True)
    (results / "seed1").mkdir()
    (results / "sweep.yaml").write_text("seeds: [0, 1]\n")
    w = Watcher(results, console=WatchdogConsole())
    w.poll()
    assert w.undecided and not w.runs and "no run in it yet; waiting" in capsys.readouterr().out
    write_run(results / "seed0", 0, diverging=False, iters=range(5))
    write_run(results / "seed1", 1, diverging=False, iters=range(5))
    w.poll()
    assert w.fleet and sorted(r.name for r in w.runs) == ["seed0", "seed1"]
    w.close()


def test_a_bad_record_in_a_file_that_stops_growing_is_said_without_idle_exit(tmp_path, capsys, monkeypatch):
    """Zero-filled bytes at the end of a run's file (a crash): the watch, running on (no --idle-exit), looks at the
    bad record again at its next poll although the file did not change, and says it (it waited forever before)."""
    from watchdog import watch as watch_module
    from watchdog.console import WatchdogConsole
    from watchdog.tfevents import EventFileTail

    src = next((TEST_DATA / "frameworks" / "sb3" / "cartpole_healthy").rglob("events.out.tfevents.*"))
    run = tmp_path / "run"
    run.mkdir()
    (run / src.name).write_bytes(src.read_bytes() + bytes(64))
    monkeypatch.setattr(EventFileTail, "SUSPECT_S", 0.05)
    w = watch_module.Watcher(run, console=WatchdogConsole(role="watch"))
    w.poll()
    assert w.runs[0].follower.suspect and not w.runs[0].follower.damaged
    time.sleep(0.1)
    w.poll()  # the file did not change
    assert w.runs[0].follower.damaged == [run / src.name]
    assert f"zero-filled bytes at byte {src.stat().st_size}" in capsys.readouterr().out
    w.close()


def test_a_file_given_for_the_run_directory_is_said_with_the_folder_to_pass(tmp_path, capsys):
    """Replay and watch, given a run's event file rather than its folder (was: watch 'run directory not found' for
    a file that is there, replay 'not a run directory and holds no runs')."""
    src = next((TEST_DATA / "frameworks" / "sb3" / "cartpole_healthy").rglob("events.out.tfevents.*"))
    for command in (["replay", str(src)], ["watch", str(src), "--idle-exit", "0"]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"watchdog: error: {src}: is a file, not a run directory (pass the folder it is in: {src.parent})"
    assert main(["watch", "/dev/null", "--idle-exit", "0"]) == 2
    assert "/dev/null: is not a folder" in capsys.readouterr().err


def test_a_watch_that_read_no_metrics_ends_without_a_verdict_exit_2(tmp_path, capsys):
    """An empty run folder, or one holding only a live watchdog's event log (an integration's run dir): at
    --idle-exit nothing was judged, so no "no divergence seen" (exit 0) either: one line saying why, exit 2."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["watch", str(empty), "--idle-exit", "0"]) == 2
    assert f"{empty}: no metrics in 0 s" in capsys.readouterr().out
    # a run itself, watched with --fleet: no run below it, and the way out (an audit, session 21: "no progress.csv")
    run = tmp_path / "csv_run"
    run.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "sb3_csv" / "cartpole_healthy" / "csv" / "progress.csv",
                run / "progress.csv")
    assert main(["watch", str(run), "--fleet", "--idle-exit", "0"]) == 2
    assert f"{run}: no run below it in 0 s, so no verdict; it is a run itself: watch it without --fleet" in \
        capsys.readouterr().out
    live = tmp_path / "live"
    with EventLog(live / EVENTS_FILENAME) as log:
        log.write(make_event("start", iteration=0, env_steps=0, state="healthy", framework="rsl_rl"))
    assert main(["watch", str(live), "--idle-exit", "0"]) == 2
    assert "is a live watchdog's event log" in capsys.readouterr().out


def test_a_damaged_event_file_is_said_and_bounds_the_watch_as_it_does_replay(tmp_path, capsys):
    """A record that fails its checks mid-file (a real SB3 run's file, bytes flipped): watch says where, as
    replay's input line does, and ends as replay does: judged up to the record before it, exit 2, the damaged
    file in the end event. Corrupt before its first point: no metrics, and the message names the file."""
    import shutil

    src = next((TEST_DATA / "frameworks" / "sb3" / "cartpole_healthy").rglob("events.out.tfevents.*"))
    run = tmp_path / "damaged"
    run.mkdir()
    data = bytearray(src.read_bytes())
    half = len(data) // 2
    data[half:half + 40] = bytes(b ^ 0x5A for b in data[half:half + 40])
    (run / src.name).write_bytes(bytes(data))
    assert main(["replay", str(run)]) == 2
    said = capsys.readouterr().out
    replay_input = next(line.strip() for line in said.splitlines() if line.strip().startswith("input:"))
    judged = said.split("judged up to it ")[1].split(":")[0]
    assert main(["watch", str(run), "--idle-exit", "0"]) == 2
    out = capsys.readouterr().out
    assert f"damaged: {replay_input}" in out  # the run's name, then replay's line
    assert f"judged up to it {judged}: the rest of a damaged file is lost" in out
    end = [e for e in read_events(run / WATCH_EVENTS).events if e["event"] == "end"][-1]
    assert end["damaged_files"] == [str(run / src.name)] and end["iteration"] == int(judged)
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    shutil.copytree(run, fleet / "damaged", ignore=shutil.ignore_patterns(WATCH_EVENTS))
    assert main(["watch", str(fleet), "--idle-exit", "0"]) == 2  # the fleet's summary says it too
    assert f"healthy (judged up to it {judged}: the rest of a damaged file is lost)" in capsys.readouterr().out
    # beside a run that diverged: still 2, as replay (a verdict for the damaged run is more than its data says)
    shutil.copytree(TEST_DATA / "sb3_csv" / "cartpole_reward_fault" / "tensorboard", fleet / "diverged")
    assert main(["replay", str(fleet)]) == 2
    capsys.readouterr()
    assert main(["watch", str(fleet), "--idle-exit", "0"]) == 2
    capsys.readouterr()

    dead = tmp_path / "dead"
    dead.mkdir()
    shutil.copy(src, dead / src.name)
    data = bytearray((dead / src.name).read_bytes())
    data[:20] = bytes(b ^ 0x5A for b in data[:20])
    (dead / src.name).write_bytes(bytes(data))
    assert main(["watch", str(dead), "--idle-exit", "0"]) == 2
    out = capsys.readouterr().out
    assert "corrupt record length header at byte 0" in out
    assert f"no metrics in 0 s: {dead / src.name} corrupt before its first tracked point" in out


def _watched_as_replayed(run: Path, capsys) -> tuple[str, str]:
    """Replay's headline of the finished run (exit 2: its verdict bounded), then the watch's output (exit 2 too)."""
    assert main(["replay", str(run)]) == 2
    headline = capsys.readouterr().out.splitlines()[0]
    assert main(["watch", str(run), "--idle-exit", "0"]) == 2
    return headline, capsys.readouterr().out


def test_values_lost_from_a_log_txt_or_a_progress_csv_bound_the_watch_as_they_do_replay(tmp_path, capsys):
    """A review (session 27): a value that is not a number in OpenRL's log.txt (`value_loss: tensor(0.65)`) or text in
    a train/value_loss cell of SB3's progress.csv: replay said "HEALTHY (without a damaged line of its ...)", exit 2;
    watch ended a plain "healthy", exit 0, and said nothing of the log.txt line. It says it as replay does, and its
    end says the same bound, with replay's exit code."""
    run = tmp_path / "openrl"
    run.mkdir()
    text = (TEST_DATA / "openrl_resumed" / "push_lite_resumed" / "log.txt").read_text()
    (run / "log.txt").write_text(text.replace("value_loss: 0.6529490232467652", "value_loss: tensor(0.65)", 1))
    headline, out = _watched_as_replayed(run, capsys)
    bound = "without a damaged line of its log.txt, whose values are lost"
    assert f"HEALTHY ({bound})" in headline
    assert f"input: {run / 'log.txt'}: ignored 1 metric line(s) whose value is not a number" in out
    assert f"watch ended, healthy: no new data for 0 s; {bound}" in out
    end = [e for e in read_events(run / WATCH_EVENTS).events if e["event"] == "end"][-1]
    assert (end["lost_lines"], end["lost_lines_in"]) == (1, "log.txt")

    run = tmp_path / "sb3"
    run.mkdir()
    lines = (TEST_DATA / "sb3_csv" / "cartpole_healthy" / "csv" / "progress.csv").read_text().splitlines(keepends=True)
    cells = lines[60].split(",")
    cells[lines[0].split(",").index("train/value_loss")] = "oops"
    lines[60] = ",".join(cells)
    (run / "progress.csv").write_text("".join(lines))
    headline, out = _watched_as_replayed(run, capsys)
    bound = "without a damaged line of its progress.csv, whose records are lost"
    assert f"HEALTHY ({bound})" in headline and f"watch ended, healthy: no new data for 0 s; {bound}" in out
    fleet = tmp_path / "fleet"  # a fleet's summary table says it too (until session 28 a damaged file alone)
    fleet.mkdir()
    shutil.copytree(run, fleet / "sb3", ignore=shutil.ignore_patterns(WATCH_EVENTS))
    assert main(["watch", str(fleet), "--idle-exit", "0"]) == 2
    assert f"healthy ({bound})" in " ".join(capsys.readouterr().out.split())


def test_a_value_loss_that_stops_early_bounds_the_watch_as_it_does_replay(tmp_path, mapush_runs, capsys):
    """A review (session 27): a real MAPush run whose value-loss event file was cut at 40 % (the other tags whole):
    replay said "HEALTHY (its value loss read up to it 510 of 1295)", exit 2; watch a plain "healthy", exit 0. The
    rule is replay's (:class:`~watchdog.replay.ValueLossSpan`), from the records the watch judged."""
    run = tmp_path / "run"
    shutil.copytree(mapush_runs / "11-07-17_cuboid" / "logs", run / "logs")
    events, = (run / "logs" / "value_loss").rglob("events.out.tfevents.*")
    events.write_bytes(events.read_bytes()[:events.stat().st_size * 4 // 10])
    headline, out = _watched_as_replayed(run, capsys)
    until = headline.split("its value loss read up to it ")[1].split(" ")[0]
    assert "HEALTHY (its value loss read up to it " in headline and 400 < int(until) < 600
    assert f"watch ended, healthy: no new data for 0 s; its value loss read up to it {until} of 1295" in out
    end = [e for e in read_events(run / WATCH_EVENTS).events if e["event"] == "end"][-1]
    assert end["value_loss_until"] == int(until)


def _write_log_interval_run(run: Path, jump_at: int = 60, every: int = 5, spi: int = 6400) -> None:
    """push_lite at log_interval 5: value loss settles near 0.12, jumps 300x at ``jump_at`` (rewards x50
    for five iterations) and decays; the reward falls from 0.12 to 0.02 for good."""
    from watchdog.tfevents import ScalarWriter

    writers = {}
    for tag in ("value_loss", "average_step_reward"):
        (run / "logs" / tag / tag).mkdir(parents=True, exist_ok=True)
        writers[tag] = ScalarWriter(run / "logs" / tag / tag)
    for it in range(0, 200, every):
        vl = 0.12 * (1 + 0.1 * math.sin(it)) + 1.5 * math.exp(-it / 10)
        if it >= jump_at:
            vl = 35.5 * math.exp(-(it - jump_at) / 40) + 0.5
        reward = 0.12 if it < jump_at else 0.02
        for tag, value in (("value_loss", vl), ("average_step_reward", reward)):
            writers[tag].add_scalar(tag, value, (it + 1) * spi)
    for w in writers.values():
        w.close()


def test_watch_at_log_interval_alarms_on_a_300x_jump_and_runs_the_alarm_command(tmp_path):
    run = tmp_path / "push_lite"
    run.mkdir()
    _write_log_interval_run(run)
    flag = tmp_path / "alarm.txt"
    code = main(["watch", str(run), "--interval", "0.05", "--idle-exit", "0.3",
                 "--on-alarm", f'echo "$WATCHDOG_DETECTOR $WATCHDOG_ITERATION $WATCHDOG_ONSET" > "{flag}"'])
    assert code == 1
    events = read_events(run / WATCH_EVENTS).events
    alarm = next(e for e in events if e["event"] == "alarm")
    assert 60 <= alarm["iteration"] <= 70 and abs(alarm["onset_iteration"] - 60) <= 5
    detector, iteration, onset = flag.read_text().split()
    assert detector == alarm["detector"] and int(iteration) == alarm["iteration"] and int(onset) == alarm["onset_iteration"]


class _GrowingCopy:
    """A copy of a finished run whose event files grow again, every file to each fraction of its bytes in turn (a
    poll after each sees prefixes of the frameworks' writes, cut at any byte); its other files as they are. A run
    restarted into its folder grows one process after the other (the second writes once the first is gone)."""

    def __init__(self, run: Path, dst: Path):
        import shutil

        from watchdog.tfevents import file_time, find_event_files, session_of, session_starts

        self.run, self.dst = run, dst
        self.files = {f: f.read_bytes() for f in find_event_files(run)}
        starts = session_starts(dict.fromkeys(self.files))
        self.session = {f: session_of(starts, file_time(f) or 0.0) for f in self.files}
        self.sessions = len(starts) or 1
        for path in run.rglob("*"):  # params/agent.yaml and the like
            if path.is_file() and path not in self.files:
                (dst / path.relative_to(run)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dst / path.relative_to(run))
        for f in self.files:
            (dst / f.relative_to(run)).parent.mkdir(parents=True, exist_ok=True)
            (dst / f.relative_to(run)).write_bytes(b"")
        self.done = dict.fromkeys(self.files, 0)

    def grow(self, fraction: float) -> None:
        for f, data in self.files.items():
            mine = min(1.0, max(0.0, fraction * self.sessions - self.session[f]))
            with open(self.dst / f.relative_to(self.run), "ab") as handle:
                handle.write(data[self.done[f]:int(len(data) * mine)])
            self.done[f] = int(len(data) * mine)


CUTS = [i / 2000 for i in range(1, 41)] + [0.1, 0.3, 0.6, 0.9, 1.0]  # 40 pieces in the first 2 %, then 5


@functools.cache
def _tensorboard_runs() -> tuple:
    """(run, its replay) for every TensorBoard run in tests/data and ../shared/data (replayed once for the tests
    that follow them: the reports are read, never changed)."""
    from bench.real_runs import DATA
    from watchdog.replay import iter_run_dirs, replay_run

    roots = [Path(__file__).resolve().parents[1] / "data", *([DATA] if DATA.is_dir() else [])]
    reports = ((run, replay_run(run)) for root in roots for run in iter_run_dirs(root))
    return tuple((run, report) for run, report in reports if report.source == "tensorboard")


def test_watch_reads_every_real_runs_records_as_replay_does_whatever_the_bytes_it_finds(tmp_path):
    """Every TensorBoard run in tests/data and ../shared/data (SB3, rsl_rl, rl_games, skrl, CleanRL, OpenRL/MAPush),
    followed while its files grow in many small pieces at first (a poll can land inside a framework's write: a
    prefix of its tags, the first step alone) and a few large ones: the same records as replay, iteration for
    iteration, value for value. Found in session 14: a follower that met SB3's first two tags named the run
    OpenRL's, and one whose first poll held a single step (SB3's, two updates' steps; rl_games' frame 0) took it
    for the iteration size (SB3: iterations 0, 0, 1, 1, ...)."""
    differ, followed = [], 0
    for run, report in _tensorboard_runs():
        followed += 1
        copy, watched = _GrowingCopy(run, tmp_path / f"run{followed}"), []
        follower = RunFollower(copy.dst)
        for cut in CUTS:
            copy.grow(cut)
            watched += follower.poll()
        watched += follower.poll(final=True)
        mine = [(r.iteration, r.env_steps, sorted(r.metrics.items())) for r in watched]
        theirs = [(r.iteration, r.env_steps, sorted(r.metrics.items())) for r in report.records]
        if repr(mine) != repr(theirs):  # repr: NaN equals NaN
            differ.append(f"{run}: {len(mine)} vs {len(theirs)} records, first "
                          f"{next((a[:2], b[:2]) for a, b in zip(mine, theirs) if repr(a) != repr(b))}"
                          if len(mine) == len(theirs) else f"{run}: {len(mine)} vs {len(theirs)} records")
    assert followed >= 60 and not differ, "\n".join(differ)


def test_watch_raises_every_real_runs_alerts_as_replay_does(tmp_path, monkeypatch):
    """The same runs followed by ``watchdog watch`` (alert mode) as their files grow: the first alarm and every
    warning before it as replay has them (replay then rolls back, watch cannot), and the last record judged at
    the end of the watch is replay's last. Found in session 14: watch set
    a run's config from the keys it had seen at its first record, before the return's first point (SB3's, rsl_rl's:
    the first finished episode), so its reward detector read a key the run never logs: 12 of these runs lost
    their `policy_collapse` alarm or reward warnings, or gained `trend` warnings the return explains."""
    import io

    import watchdog.watch as watch_module
    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher

    monkeypatch.setattr(watch_module, "SETTLE_NS", 0)  # the copies' folders are new, not being written
    differ, followed, alarms = [], 0, 0
    for run, report in _tensorboard_runs():
        followed += 1
        copy = _GrowingCopy(run, tmp_path / f"run{followed}")
        watcher = Watcher(copy.dst, console=WatchdogConsole(io.StringIO()), rescan_every=1)
        for cut in CUTS:
            copy.grow(cut)
            watcher.poll()
        watcher.flush()
        watcher.close()
        events = read_events(copy.dst / WATCH_EVENTS).events
        first = next(((e["iteration"], e["detector"]) for e in events if e["event"] == "alarm"), None)
        replayed = report.first_alarm and (report.first_alarm["iteration"], report.first_alarm["detector"])
        until = first[0] if first else math.inf
        said = sorted({(e["iteration"], e["detector"]) for e in events if e["event"] == "warning" and e["iteration"] < until})
        told = sorted({(e["iteration"], e["detector"]) for e in report.events if e["event"] == "warning" and e["iteration"] < until})
        alarms += first is not None
        last = watcher.runs[0].last
        if first != (replayed or None) or said != told or last.iteration != report.records[-1].iteration:
            differ.append(f"{run}: alarm {first} vs {replayed}; warnings {said[:3]} vs {told[:3]}; last judged "
                          f"{last.iteration} vs {report.records[-1].iteration}")
    assert followed >= 60 and alarms >= 20 and not differ, "\n".join(differ)


RESTARTED = Path(__file__).resolve().parents[1] / "data" / "openrl_restarted" / "push_lite_crash_restart"


def _record_ends(data: bytes) -> list[tuple[int, float]]:
    """(end byte, wall time) of each record of an event file (Event.wall_time is field 1, first: 0x09 + 8 bytes)."""
    import struct

    ends, pos = [], 0
    while pos + 12 <= len(data):
        size = struct.unpack_from("<Q", data, pos)[0]
        wall = struct.unpack_from("<d", data, pos + 13)[0]
        pos += 12 + size + 4
        ends.append((pos, wall))
    return ends


class _FlushedCopy:
    """A copy of a finished OpenRL run whose files grow again as their writers flushed them: at each moment a file
    holds its records written up to ``lag`` seconds before (each file its own lag, as TensorBoard's writers flush
    each file on their own), and half of the next record's bytes on odd polls (a write in progress)."""

    def __init__(self, run: Path, dst: Path, lags: list[float]):
        from watchdog.tfevents import find_event_files

        self.run, self.dst = run, dst
        self.files = {f: f.read_bytes() for f in find_event_files(run)}
        self.ends = {f: _record_ends(data) for f, data in self.files.items()}
        self.lag = {f: lags[i % len(lags)] for i, f in enumerate(sorted(self.files))}
        for f in self.files:
            (dst / f.relative_to(run)).parent.mkdir(parents=True, exist_ok=True)
        self.done = dict.fromkeys(self.files, 0)
        self.span = (min(e[0][1] for e in self.ends.values()), max(e[-1][1] for e in self.ends.values()) + max(lags))

    def at(self, now: float, torn: bool) -> None:
        for f, data in self.files.items():
            whole = [end for end, wall in self.ends[f] if wall <= now - self.lag[f]]
            if not whole and now < self.ends[f][0][1]:
                continue  # not created yet
            upto = whole[-1] if whole else 0
            if torn and len(whole) < len(self.ends[f]):
                upto += (self.ends[f][len(whole)][0] - upto) // 2
            with open(self.dst / f.relative_to(self.run), "ab") as handle:
                handle.write(data[self.done[f]:max(upto, self.done[f])])
            self.done[f] = max(upto, self.done[f])


def test_watch_reads_an_openrl_run_whose_tag_files_are_flushed_at_their_own_times_as_replay_does(tmp_path):
    """A real `train.py --watchdog` run restarted in place by `watchdog run` (tests/data/openrl_restarted: the
    losses every iteration, the rewards every 5; the second process logs iterations 21-39 into the first's
    folders), its 32 files growing as their writers flushed them, 0-7 s apart: the same records as replay, and all
    but the newest judged while the files grow. Found in session 14, fixed in 15: a step was taken as complete once
    any file showed a later one, so a file flushed later gave its points as an extra, out-of-order record of an
    iteration already judged (90 records for replay's 60 here); and a tag's segment was its own, so the new
    process's rewards (at steps above the old one's last) made records of the old process, in replay too."""
    from watchdog.replay import replay_run

    report = replay_run(RESTARTED)
    assert report.source == "tensorboard"
    theirs = [(r.iteration, r.env_steps, sorted(r.metrics.items())) for r in report.records]
    assert [r.iteration for r in report.records] == [*range(25), *range(21, 40)]  # the restart is a segment
    assert all("rollout/average_step_reward" in r.metrics for r in report.records if r.iteration % 5 == 0)
    for n, lags in enumerate([[0.0], [0.0, 3.0, 1.0, 7.0, 2.0], [5.0, 0.0]]):
        copy = _FlushedCopy(RESTARTED, tmp_path / f"copy{n}", lags)
        follower, watched, now, polls = RunFollower(copy.dst), [], copy.span[0], 0
        while now <= copy.span[1] + 0.4:  # the last poll sees every file whole
            copy.at(now, torn=polls % 2 == 1)
            watched += follower.poll()
            now, polls = now + 0.4, polls + 1
        copy.at(math.inf, torn=False)
        judged_while_growing = len(watched)
        watched += follower.poll(final=True)
        mine = [(r.iteration, r.env_steps, sorted(r.metrics.items())) for r in watched]
        assert repr(mine) == repr(theirs), lags
        assert judged_while_growing >= len(theirs) - 1, lags


def test_a_tag_that_stops_being_logged_holds_the_records_back_only_until_its_file_is_stale(tmp_path):
    """An OpenRL tag file that stopped growing (its tag no longer logged, its writer gone) while the others go on:
    records wait for it (its cadence says a point is due) only until its file has not changed for ``STALE_NS``."""
    import os

    from watchdog.watch import STALE_NS

    copy = _GrowingCopy(RESTARTED, tmp_path / "run")
    copy.grow(1.0)
    reward = next(f for f in copy.files if "average_step_reward" in str(f) and copy.session[f] == 1)
    stopped = copy.dst / reward.relative_to(RESTARTED)
    data = copy.files[reward]
    stopped.write_bytes(data[:_record_ends(data)[1][0]])  # the new process's rewards stop after their first point
    follower = RunFollower(copy.dst)
    held = follower.poll()
    now = time.time()
    os.utime(stopped, (now - 2 * STALE_NS / 1e9, now - 2 * STALE_NS / 1e9))
    released = follower.poll()
    assert held and released and held[-1].iteration < 35 and released[-1].iteration == 38
    assert [r.iteration for r in held + released] == [*range(25), *range(21, 39)]


def test_a_followed_run_with_no_record_judged_yet_is_waiting_not_healthy(tmp_path):
    """Before its first record is judged (here: SB3's first dump alone, whose step no later one completes yet) a
    run has no verdict: the fleet table and the Prometheus file say "waiting" (-1), not "healthy" (0)."""
    import io

    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher, prometheus_text

    run = Path(__file__).resolve().parents[1] / "data" / "frameworks" / "sb3" / "cartpole_healthy" / "PPO_1"
    copy = _GrowingCopy(run, tmp_path / "fleet" / "sb3")
    copy.grow(0.002)
    watcher = Watcher(tmp_path / "fleet", console=WatchdogConsole(io.StringIO()), rescan_every=1)
    watcher.poll()
    (followed,) = watcher.runs
    assert followed.last is None and followed.state == "waiting"
    text = prometheus_text(watcher.runs, now=0.0)
    assert 'watchdog_run_state{run="sb3"} -1' in text and 'watchdog_runs{state="waiting"} 1' in text
    copy.grow(1.0)
    watcher.poll()
    watcher.flush()
    assert followed.last is not None and followed.state == "healthy"
    watcher.close()


def test_the_end_of_a_watch_judges_every_frameworks_last_step_the_nan_a_run_dies_on_included(tmp_path, monkeypatch):
    """An SB3 run whose last logged update is NaN (then the process died): the newest step waits for a later one
    while the run is followed, and the end of the watch judges it: the `nonfinite` alarm replay raises there.
    (Until session 14 only OpenRL's last step was judged at the end.)"""
    import io

    import watchdog.watch as watch_module
    from watchdog.console import WatchdogConsole
    from watchdog.replay import replay_run
    from watchdog.tfevents import ScalarWriter
    from watchdog.watch import Watcher

    monkeypatch.setattr(watch_module, "SETTLE_NS", 0)
    run = Path(__file__).resolve().parents[1] / "data" / "frameworks" / "sb3" / "cartpole_healthy" / "PPO_1"
    copy = _GrowingCopy(run, tmp_path / "run")
    healthy = replay_run(run).records
    step = healthy[-1].env_steps + (healthy[-1].env_steps - healthy[-2].env_steps)
    watcher = Watcher(copy.dst, console=WatchdogConsole(io.StringIO()), rescan_every=1)
    copy.grow(1.0)
    writer = ScalarWriter(copy.dst)  # the update that went NaN, in a file of its own
    writer.add_scalar("train/value_loss", math.nan, step)
    writer.close()
    watcher.poll()
    watcher.flush()
    watcher.close()
    report = replay_run(copy.dst)
    alarm = next(e for e in read_events(copy.dst / WATCH_EVENTS).events if e["event"] == "alarm")
    assert (alarm["iteration"], alarm["detector"]) == (report.first_alarm["iteration"], "nonfinite")
    assert alarm["iteration"] == healthy[-1].iteration + 1 == watcher.runs[0].last.iteration


def test_flags_watch_cannot_use_are_one_line_errors_before_the_first_poll(tmp_path, capsys):
    """A negative or NaN --interval (a traceback from time.sleep), a negative --idle-exit (one poll, then exit 0),
    a --prometheus file in a missing folder (a traceback after the first poll), an --events-out path through a
    file: exit 2 and one line each, before anything is read."""
    run = Path(__file__).resolve().parents[1] / "data" / "frameworks" / "sb3" / "cartpole_healthy" / "PPO_1"
    (tmp_path / "a_file").write_text("")
    for args, said in ((["--interval", "-1"], "--interval must be"), (["--interval", "nan"], "--interval must be"),
                       (["--interval", "1e308"], "--interval must be at most"),  # (an OverflowError until session 19)
                       (["--on-alarm", " "], "--on-alarm is empty"),  # an unset $CMD ran nothing, unsaid (session 19)
                       (["--idle-exit", "-1"], "--idle-exit must be"),
                       (["--rescan-every", "0"], "--rescan-every must be"),  # (clamped to 1, silently, until session 17)
                       (["--summary-every", "-1"], "--summary-every must be"),
                       (["--prometheus", str(tmp_path / "no" / "x.prom")], "folder not found"),
                       # a folder the system refuses even to root: said at the first poll until session 22
                       (["--prometheus", "/proc/x.prom"], "--prometheus: cannot write in this folder"),
                       (["--events-out", str(tmp_path / "a_file" / "e.jsonl")], "a file stands where a folder")):
        assert main(["watch", str(run), *args]) == 2
        out, err = capsys.readouterr()
        assert said in err and len(err.strip().splitlines()) == 1 and not out, err
    assert not (run / WATCH_EVENTS).exists()
    # an empty run folder (an unset variable) watched this folder until session 22
    assert main(["watch", "--idle-exit", "0", ""]) == 2
    out, err = capsys.readouterr()
    assert "an empty path (an unset variable?)" in err and len(err.strip().splitlines()) == 1 and not out, err


def test_a_prometheus_file_that_cannot_be_written_mid_watch_is_said_once_and_the_watch_goes_on(tmp_path):
    """A review (session 27): the --prometheus folder removed while watching ended the whole watch ("watchdog:
    error: .../.w.prom.<pid>.tmp: No such file or directory", exit 2: the runs unfollowed, --on-alarm dead). The
    failure is said once, the runs are still followed, and the file is written again once it can be."""
    import io

    from watchdog.console import WatchdogConsole
    from watchdog.replay import replay_run
    from watchdog.watch import Watcher

    run = Path(__file__).resolve().parents[1] / "data" / "frameworks" / "sb3" / "cartpole_healthy" / "PPO_1"
    copy, prom = _GrowingCopy(run, tmp_path / "run"), tmp_path / "textfile" / "w.prom"
    prom.parent.mkdir()
    out = io.StringIO()
    watcher = Watcher(copy.dst, console=WatchdogConsole(out), prometheus=prom, rescan_every=1)
    copy.grow(0.5)
    watcher.poll()
    watcher.write_metrics()
    assert prom.is_file()
    shutil.rmtree(prom.parent)
    for _ in range(3):
        copy.grow(1.0)
        watcher.poll()
        watcher.write_metrics()
    assert out.getvalue().count(f"cannot write {prom}") == 1 and "still watching" in out.getvalue()
    prom.parent.mkdir()
    watcher.write_metrics()
    watcher.flush()
    assert "watchdog_run_iteration" in prom.read_text() and f"{prom} written again" in out.getvalue()
    assert watcher.runs[0].last.iteration == replay_run(run).records[-1].iteration  # followed to its end
    watcher.close()


def test_a_nan_in_the_newest_step_is_judged_without_waiting_for_a_later_one(tmp_path):
    """The newest step waits for a later one (a tag may still be on its way); a run that dies on its NaN logs none,
    so its alarm never came and --on-alarm never ran until Ctrl-C (found by a helper's audit, session 17). A step
    holding a NaN/Inf is judged at once: rsl_rl's tags (one writer) and OpenRL's (a file per tag)."""
    from torch.utils.tensorboard import SummaryWriter

    from watchdog.tfevents import ScalarWriter

    rsl = tmp_path / "rsl"
    writer = SummaryWriter(str(rsl))
    for it in range(61):
        for tag, value in (("Loss/value", math.nan if it == 60 else 0.1 + 0.001 * (it % 7)), ("Loss/surrogate", -0.01),
                           ("Loss/entropy", 1.0), ("Policy/mean_std", 1.0), ("Train/mean_reward", 1.0)):
            writer.add_scalar(tag, value, it)
    writer.flush()  # (not closed: the writer died)
    records = RunFollower(rsl).poll()
    assert records[-1].iteration == 60 and math.isnan(records[-1].metrics["train/value_loss"])
    # a NaN in another key, the value loss finite (found by a review, session 27: judged only at the watch's end)
    other = tmp_path / "rsl_entropy"
    writer = SummaryWriter(str(other))
    for it in range(61):
        for tag, value in (("Loss/value", 0.1 + 0.001 * (it % 7)), ("Loss/surrogate", -0.01),
                           ("Loss/entropy", math.nan if it == 60 else 1.0), ("Train/mean_reward", 1.0)):
            writer.add_scalar(tag, value, it)
    writer.flush()
    records = RunFollower(other).poll()
    assert records[-1].iteration == 60 and math.isnan(records[-1].metrics["train/entropy"])

    openrl = tmp_path / "openrl"
    writers = {tag: ScalarWriter(openrl / "logs" / tag / tag) for tag in ("value_loss", "average_step_reward")}
    for it in range(61):
        writers["value_loss"].add_scalar("value_loss", math.nan if it == 60 else 0.01, (it + 1) * 1000)
        writers["average_step_reward"].add_scalar("average_step_reward", 0.02, (it + 1) * 1000)
    for w in writers.values():
        w.flush()
    records = RunFollower(openrl).poll()
    assert records[-1].iteration == 60 and math.isnan(records[-1].metrics["train/value_loss"])


def test_a_run_trained_with_a_live_watchdog_is_watched_with_its_alarms(tmp_path, capsys):
    """train.py --watchdog rolled a NaN back: its TensorBoard files leave out the rolled-back iteration, and watch,
    judging them, ended "healthy" and exit 0 while replay (reading the run's event log) said diverged (found by a
    helper's audit, session 17). The live watchdog's alarms now count for the run, said as its own."""
    from openrl_ws.train import main as train

    run = tmp_path / "run"
    assert train(["--num_envs", "8", "--episode_length", "32", "--ppo_epoch", "2", "--hidden_size", "32", "--watchdog",
                  "--run_dir", str(run), "--train_timesteps", str(8 * 32 * 40), "--inject", "nan@30"]) == 0
    capsys.readouterr()
    assert main(["watch", str(run), "--idle-exit", "0"]) == 1
    out = capsys.readouterr().out
    assert "the training's own watchdog raised an alarm at it 30 [nonfinite]" in out
    end, = [line for line in out.splitlines() if "watch ended" in line]  # its verdict said (session 18)
    assert "watch ended, diverged: no new data for 0 s" in end


def test_a_run_logging_to_its_event_log_alone_whose_watchdog_alarmed_is_a_divergence_seen(tmp_path, capsys):
    """A review of session 29: a LoopWatchdog run without TensorBoard (its default) writes its event log alone; watch
    said the run's own alarm, then "no metrics ... so no verdict" and exit 2, where replay of the same run exits 1;
    and the alarm's line spoke of "the TensorBoard files judged here". Exit 1, and the line says whose verdict it is."""
    import io

    import torch

    from watchdog.console import WatchdogConsole
    from watchdog.integrations.loop import LoopWatchdog

    net = torch.nn.Linear(4, 2)
    run = tmp_path / "run"
    loop = LoopWatchdog(run, capture=lambda: {"net": net.state_dict()}, restore=lambda s: net.load_state_dict(s["net"]),
                        console=WatchdogConsole(io.StringIO(), rich=False))
    for it in range(120):
        loss = math.nan if it == 80 else 1.0 / (1 + it * 0.05)
        if loop.step(it, (it + 1) * 1000, {"losses/value_loss": loss, "rollout/episode_return": 10 + it * 0.1}).stopped:
            break
    loop.close()
    assert not list(run.rglob("events.out.tfevents.*"))
    capsys.readouterr()
    assert main(["watch", str(run), "--idle-exit", "0", "--interval", "0.05"]) == 1
    out = capsys.readouterr().out
    assert "own watchdog raised an alarm at it 80 [nonfinite]" in out and "the verdict is that watchdog's" in out
    assert "TensorBoard" not in out and "no verdict" not in out
    assert main(["replay", str(run)]) == 1


RESUMED = Path(__file__).resolve().parents[1] / "data" / "openrl_resumed" / "push_lite_resumed"


def test_an_openrl_run_resumed_from_a_checkpoint_is_numbered_from_it_by_replay_and_watch(tmp_path):
    """A real OpenRL run resumed from iteration 9's checkpoint into a new folder (tests/data/openrl_resumed): its
    first TensorBoard step is 8,800, iteration 10 of 800 env steps. Replay took the smallest step for one iteration and
    watch the first one (until session 18): iterations 0, 0, 0, 1, 1, ... 5, 'too short to judge' for 70 iterations."""
    import shutil

    from watchdog.replay import replay_run

    report = replay_run(RESUMED)
    assert [r.iteration for r in report.records] == list(range(10, 80, 5)) and report.verdict == "healthy"
    assert [(r.iteration, r.env_steps) for r in report.records][:2] == [(10, 8_800), (15, 12_800)]
    follower = RunFollower(RESUMED)
    assert [r.iteration for r in follower.poll() + follower.poll(final=True)] == list(range(10, 80, 5))
    # its TensorBoard files alone (no log.txt): replay and watch number it by its steps' greatest common divisor
    # (watch took its first step alone until a review of session 18's first cut)
    shutil.copytree(RESUMED / "logs", tmp_path / "run" / "logs")
    assert [r.iteration for r in replay_run(tmp_path / "run").records] == list(range(10, 80, 5))
    follower = RunFollower(tmp_path / "run")
    assert [r.iteration for r in follower.poll() + follower.poll(final=True)] == list(range(10, 80, 5))


def test_watch_prints_a_status_line_every_n_iterations_not_every_record(tmp_path, monkeypatch, capsys):
    """watch printed a status line for every record (tens of thousands for a long run); it takes the same
    WATCHDOG_STATUS_EVERY (default 10) as training does (session 18)."""
    monkeypatch.delenv("WATCHDOG_STATUS_EVERY", raising=False)
    assert main(["watch", str(RESUMED), "--interval", "0.05", "--idle-exit", "0.2",
                 "--events-out", str(tmp_path / "events.jsonl")]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("it ")]
    assert [int(line.split()[1]) for line in lines] == [10, 20, 30, 40, 50, 60, 70]
    assert "watch ended, healthy: no new data for 0.2 s" in out


def test_watch_stays_diverged_while_the_value_loss_holds_above_the_level_that_raised_the_alarm(tmp_path):
    """A real SB3 run (tests/data/sb3_csv) whose value loss blew up a million-fold at 101 and held there to its end.
    Watch takes no rollback, so its detectors took the diverged level in as the run's own and went quiet: it said
    "back to healthy" at 115 and showed `healthy | vloss 5.2e+07` (found by an audit, session 20). Alert mode now
    recovers only back on the healthy side of the level that raised the alarm."""
    import io
    import shutil

    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher

    run = tmp_path / "csv"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "sb3_csv" / "cartpole_reward_fault" / "csv", run)
    watcher = Watcher(run, console=WatchdogConsole(io.StringIO()), fleet=False)
    watcher.poll()
    watcher.flush()
    state = watcher.runs[0].state
    watcher.close()
    events = read_events(run / WATCH_EVENTS).events
    alarm = next(e for e in events if e["event"] == "alarm")
    assert alarm["iteration"] == 101 and not [e for e in events if e["event"] == "recovered" and e["iteration"] > 101]
    assert state == "diverged"
