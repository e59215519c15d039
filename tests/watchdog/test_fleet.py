"""`watchdog watch PARENT`: a fleet of runs in one results/ tree; Prometheus textfile; replay ordering."""

from __future__ import annotations

import math
import os
import re
import threading
import time
from pathlib import Path

import pytest


from watchdog.cli import main
from watchdog.eventlog import read_events
from watchdog.tfevents import ScalarWriter
from watchdog.watch import WATCH_EVENTS, RunFollower, _escape_label, _mtime

TAGS = ("value_loss", "critic_grad_norm", "average_step_reward")
N_ITERS, ONSET, SPI = 200, 160, 1000
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\\n])*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\\n])*")*\})? (\S+)$')


def curve(it: int, seed: int, diverging: bool) -> float:
    """Value loss: starts ~2, settles to ~0.006 by it 60; a diverging run climbs 1.15x/it from ONSET."""
    vl = 0.006 * (1 + 0.3 * math.sin(it + seed)) + 2.0 * math.exp(-it / 10)
    return vl * 1.15 ** (it - ONSET) if diverging and it >= ONSET else vl


def write_run(run: Path, seed: int, diverging: bool, iters=range(N_ITERS), *, pause: float = 0.0) -> None:
    """OpenRL's layout: logs/<tag>/<tag>/events.out.tfevents.*"""
    writers = {}
    for tag in TAGS:
        writers[tag] = ScalarWriter(run / "logs" / tag / tag)
    try:
        for it in iters:
            vl = curve(it, seed, diverging)
            values = {"value_loss": vl, "critic_grad_norm": 0.1 * math.sqrt(vl / 0.006), "average_step_reward": 0.02}
            for tag in TAGS:
                writers[tag].add_scalar(tag, values[tag], (it + 1) * SPI)
            if pause and it % 25 == 24:
                for w in writers.values():
                    w.flush()
                time.sleep(pause)
    finally:
        for w in writers.values():
            w.close()


def make_fleet(parent: Path, n: int = 20, diverging=(3, 11), names=None) -> list[Path]:
    runs = []
    for i in range(n):
        run = parent / (names[i] if names and i in names else f"seed_{i:02d}")
        write_run(run, i, i in diverging)
        runs.append(run)
    return runs


def _age(tree: Path, seconds: float = 30) -> None:
    """Backdate every folder's mtime (as if written a while ago) so the watcher trusts it."""
    t = time.time() - seconds
    for root, _dirs, _files in os.walk(tree):
        os.utime(root, (t, t))


def parse_prometheus(text: str) -> dict[tuple[str, str], float]:
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line.startswith("# HELP ") or line.startswith("# TYPE ") or not line, line
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples


def alarms_of(run: Path) -> list[dict]:
    path = run / WATCH_EVENTS
    return [e for e in read_events(path).events if e["event"] == "alarm"] if path.exists() else []


def test_fleet_watch_alerts_exactly_the_diverging_runs_and_writes_prometheus(tmp_path, capsys):
    parent = tmp_path / "results"
    names = {5: 'seed "5" \\ odd'}  # a label value that must be escaped
    runs = make_fleet(parent, names=names)
    (parent / "plots").mkdir()  # not a run: ignored
    prom = tmp_path / "textfile" / "watchdog.prom"
    prom.parent.mkdir()
    flag_dir = tmp_path / "flags"
    flag_dir.mkdir()
    t0 = time.monotonic()
    code = main(["watch", str(parent), "--interval", "0.05", "--idle-exit", "1", "--prometheus", str(prom),
                 "--summary-every", "5", "--on-alarm", f'touch "{flag_dir}/$(basename "$WATCHDOG_RUN_DIR")"'])
    assert time.monotonic() - t0 < 20
    assert code == 1
    alarmed = sorted(r.name for r in runs if alarms_of(r))
    assert alarmed == ["seed_03", "seed_11"]
    for name in alarmed:
        first = alarms_of(parent / name)[0]
        assert ONSET + 15 <= first["iteration"] <= ONSET + 35
    assert sorted(p.name for p in flag_dir.iterdir()) == alarmed  # --on-alarm ran with each run's dir
    assert not (parent / "plots" / WATCH_EVENTS).exists()

    text = prom.read_text()
    samples = parse_prometheus(text)
    assert samples[("watchdog_runs", '{state="diverged"}')] == 2
    assert samples[("watchdog_runs", '{state="healthy"}')] + samples[("watchdog_runs", '{state="warning"}')] == 18
    for name in ("seed_03", "seed_11"):
        assert samples[("watchdog_run_state", f'{{run="{name}"}}')] == 2
        assert samples[("watchdog_run_alarms_total", f'{{run="{name}"}}')] >= 1
        assert samples[("watchdog_run_value_loss", f'{{run="{name}"}}')] > 0.2
    odd = '{run="seed \\"5\\" \\\\ odd"}'
    assert samples[("watchdog_run_iteration", odd)] == N_ITERS - 1  # the last step is flushed at idle exit
    assert samples[("watchdog_run_alarms_total", odd)] == 0
    for fam in ("watchdog_run_state", "watchdog_run_iteration", "watchdog_run_value_loss",
                "watchdog_run_alarms_total", "watchdog_runs"):
        assert f"# HELP {fam} " in text and f"# TYPE {fam} " in text
    assert not [p for p in prom.parent.iterdir() if p != prom]  # no temp file left behind

    out = capsys.readouterr().out
    assert "ALARM seed_03:" in out and "ALARM seed_11:" in out
    table = out[out.index("watch summary (final)"):].splitlines()[2:22]
    assert [row.split()[0] for row in table[:2]] == ["seed_03", "seed_11"]  # diverged first
    assert all(row.split()[1] == "diverged" for row in table[:2])
    assert all(" diverged " not in row for row in table[2:]) and len(table) == 20


def test_fleet_picks_up_a_run_created_after_the_first_poll(tmp_path):
    parent = tmp_path / "results"
    make_fleet(parent, n=3, diverging=())
    prom = tmp_path / "w.prom"
    late = parent / "late_seed"

    def writer():
        deadline = time.monotonic() + 20
        while not prom.exists() and time.monotonic() < deadline:  # written after the first poll
            time.sleep(0.01)
        write_run(late, 99, True, pause=0.02)  # a live writer, in batches

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        code = main(["watch", str(parent), "--interval", "0.05", "--idle-exit", "1", "--prometheus", str(prom)])
    finally:
        thread.join(timeout=30)
    assert code == 1
    assert alarms_of(late) and not any(alarms_of(parent / f"seed_{i:02d}") for i in range(3))
    samples = parse_prometheus(prom.read_text())
    assert samples[("watchdog_run_state", '{run="late_seed"}')] == 2
    assert samples[("watchdog_runs", '{state="diverged"}')] == 1


def test_unchanged_runs_are_not_read_again(tmp_path, monkeypatch):
    parent = tmp_path / "results"
    runs = make_fleet(parent, n=10, diverging=())
    _age(parent)
    reads: dict[str, int] = {}
    followers: list[RunFollower] = []
    real_poll, real_init = RunFollower.poll, RunFollower.__init__

    def counting_poll(self, **kw):
        reads[self.run_dir.name] = reads.get(self.run_dir.name, 0) + 1
        return real_poll(self, **kw)

    def keeping_init(self, *a, **kw):
        real_init(self, *a, **kw)
        followers.append(self)

    sleeps = []
    real_sleep = time.sleep
    monkeypatch.setattr(RunFollower, "poll", counting_poll)
    monkeypatch.setattr(RunFollower, "__init__", keeping_init)
    monkeypatch.setattr("watchdog.watch.time.sleep", lambda s: (sleeps.append(s), real_sleep(s)))
    assert main(["watch", str(parent), "--interval", "0.05", "--idle-exit", "0.8", "--rescan-every", "1000"]) == 0
    assert len(sleeps) >= 10  # many polls...
    assert reads == {r.name: 2 for r in runs}  # ...but each run read once, plus the final flush at idle exit
    # and its tree listed about once (again while our just-created event log keeps its folder fresh)
    assert len(followers) == 10 and all(1 <= f.scans <= 4 for f in followers), [f.scans for f in followers]


def test_follower_signature_sees_growth_and_new_files_without_relisting(tmp_path):
    run = tmp_path / "run"
    write_run(run, 0, False, range(10))
    _age(run)
    f = RunFollower(run, rescan_every=1000)
    assert f.changed() and len(f.files) == 3 and f.scans == 1
    assert len(f.poll(refresh=False)) == 9
    assert not f.changed() and f.scans == 1  # nothing changed: a few stats, no listing
    with open(f.files[0], "ab") as fh:  # a file grows
        fh.write(b"\0")
    assert f.changed() and f.scans == 1
    w = ScalarWriter(run / "logs" / "policy_loss" / "policy_loss")  # a new tag folder appears
    w.add_scalar("policy_loss", 0.1, 11 * SPI)
    w.close()
    assert f.changed() and f.scans == 2 and len(f.files) == 4


def test_prometheus_label_escaping():
    assert _escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert _escape_label(os.fsdecode(b"bad\xffname")) == "bad\\\\xffname"  # the byte, as text a label can hold


def test_prometheus_is_written_through_a_link_and_never_over_a_device_or_a_pipe(tmp_path, capsys):
    """A helper's audit (session 22): `--prometheus` renamed its new file over whatever the path named, a device
    (/dev/full became a regular file), a pipe or a symbolic link; and a run folder whose name is not UTF-8 ended the
    watch with a UnicodeEncodeError."""
    parent = tmp_path / "results"
    make_fleet(parent, n=2, diverging=(), names={1: os.fsdecode(b"bad\xffname")})
    fifo = tmp_path / "fifo.prom"
    os.mkfifo(fifo)
    assert main(["watch", "--idle-exit", "0", "--prometheus", str(fifo), str(parent)]) == 2
    err = capsys.readouterr().err
    assert "--prometheus names a device, a pipe or a socket" in err and str(fifo) in err and len(err.strip().splitlines()) == 1
    assert fifo.is_fifo()
    real, link = tmp_path / "collector" / "watch.prom", tmp_path / "watch.prom"
    real.parent.mkdir()
    real.write_text("")
    link.symlink_to(real)
    assert main(["watch", "--idle-exit", "0", "--prometheus", str(link), str(parent)]) == 0
    assert link.is_symlink() and 'watchdog_run_state{run="bad\\\\xffname"} 0' in real.read_text()
    dangling = tmp_path / "dangling.prom"  # a link into a folder that is not there: said before the first poll
    dangling.symlink_to(tmp_path / "gone" / "watch.prom")
    assert main(["watch", "--idle-exit", "0", "--prometheus", str(dangling), str(parent)]) == 2
    assert "folder not found" in capsys.readouterr().err


def test_replay_summary_sorted_by_verdict_then_name(tmp_path, capsys):
    parent = tmp_path / "results"
    make_fleet(parent, n=5, diverging=(1, 4))
    assert main(["replay", str(parent)]) == 1
    out = capsys.readouterr().out
    rows = out[out.index("replay summary"):].splitlines()[2:7]
    assert [r.split()[0] for r in rows] == ["seed_01", "seed_04", "seed_00", "seed_02", "seed_03"]
    assert [r.split()[2] for r in rows][:2] == ["diverged", "diverged"]


def test_watch_single_run_dir_still_works_and_rejects_events_out_for_a_fleet(tmp_path, capsys):
    parent = tmp_path / "results"
    runs = make_fleet(parent, n=2, diverging=(0,))
    out = tmp_path / "single.jsonl"
    assert main(["watch", str(runs[0]), "--interval", "0.05", "--idle-exit", "0.3", "--events-out", str(out)]) == 1
    assert [e for e in read_events(out).events if e["event"] == "alarm"]
    assert f"it {N_ITERS - 1}" in capsys.readouterr().out  # status lines as before
    assert main(["watch", str(parent), "--idle-exit", "0", "--events-out", str(out)]) == 2


def test_a_run_reached_through_links_is_one_run_in_replay_and_in_watch(tmp_path, capsys):
    """``latest -> run_a`` beside it and a loop back up the tree counted the same run two and seven times
    (rolled back as often, a watcher each, ``--on-alarm`` as often)."""
    from watchdog.replay import find_run_dirs
    from watchdog.watch import _RunFinder

    write_run(tmp_path / "fleet" / "run_a", 0, diverging=False, iters=range(5))
    (tmp_path / "fleet" / "latest").symlink_to("run_a")
    (tmp_path / "fleet" / "run_a_again").symlink_to(tmp_path / "fleet")  # a loop
    assert find_run_dirs([tmp_path / "fleet"]) == [tmp_path / "fleet" / "run_a"]  # named by its own folder
    assert find_run_dirs([tmp_path / "fleet", tmp_path / "fleet" / "latest"]) == [tmp_path / "fleet" / "run_a"]
    assert _RunFinder(tmp_path / "fleet", rescan_every=1).new_runs() == [tmp_path / "fleet" / "run_a"]


def test_a_run_folder_the_watch_cannot_write_in(tmp_path, capsys):
    """A run on a read-only mount (here: its watch log's name taken by a folder, which root cannot write either):
    one run is a one-line error naming --events-out before the first poll; in a fleet the run is still judged and
    said, its events shown on the console only (a crash of the whole watch until session 17)."""
    write_run(tmp_path / "fleet" / "run_a", 0, diverging=False, iters=range(5))
    (tmp_path / "fleet" / "run_a" / WATCH_EVENTS).mkdir()
    assert main(["watch", str(tmp_path / "fleet" / "run_a"), "--idle-exit", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write the watch's event log" in err[0] and "--events-out" in err[0]
    assert main(["watch", str(tmp_path / "fleet"), "--idle-exit", "0"]) == 0
    out = capsys.readouterr().out
    assert "run_a: cannot write" in out and "shown here only" in out


def test_a_run_that_blew_up_stays_diverged_in_the_table_and_the_state_gauge(tmp_path, capsys):
    """A blow-up for fifteen iterations, then the run's own level again: the alarm at the blow-up, and the run stays
    "diverged" (replay's verdict). A watcher rolls nothing back; its state went back to healthy a few quiet points
    later, so the table sorted it among the healthy runs and an alert on watchdog_run_state == 2 never fired
    (found by a helper's audit, session 17)."""
    from watchdog.tfevents import ScalarWriter

    parent = tmp_path / "fleet"
    write_run(parent / "calm", 1, diverging=False)
    writers = {tag: ScalarWriter(parent / "spike" / "logs" / tag / tag) for tag in TAGS}
    for it in range(N_ITERS):
        vl = curve(it, 2, diverging=False) * (1000.0 if 120 <= it < 135 else 1.0)
        for tag, value in (("value_loss", vl), ("critic_grad_norm", 0.1), ("average_step_reward", 0.02)):
            writers[tag].add_scalar(tag, value, (it + 1) * SPI)
    for w in writers.values():
        w.close()
    prom = tmp_path / "watchdog.prom"
    assert main(["watch", str(parent), "--fleet", "--interval", "0.05", "--idle-exit", "0", "--prometheus", str(prom)]) == 1
    assert 120 <= alarms_of(parent / "spike")[0]["iteration"] <= 135
    samples = parse_prometheus(prom.read_text())
    assert samples[("watchdog_run_state", '{run="spike"}')] == 2 and samples[("watchdog_run_state", '{run="calm"}')] == 0
    table = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:1] in (["spike"], ["calm"])]
    assert [row[:2] for row in table[-2:]] == [["spike", "diverged"], ["calm", "healthy"]]  # the last table, diverged first


def test_a_run_made_inside_a_folder_already_listed_is_found_at_the_next_poll(tmp_path):
    """Found by a review (session 27): a job script's results/seed1/ listed empty, then its run made inside it
    (SB3's seed1/PPO_1): the parent's time does not move, and the run was found at the periodic listing only
    (--rescan-every polls, 100 s by default), which a shorter --idle-exit never reached."""
    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher

    parent = tmp_path / "results"
    write_run(parent / "seed0", 0, diverging=False)
    (parent / "seed1").mkdir()
    past = time.time() - 100
    os.utime(parent, (past, past))  # settled: a folder still changing is listed at every poll
    w = Watcher(parent, console=WatchdogConsole(), rescan_every=1000)
    w.poll()
    assert [r.run_dir.name for r in w.runs] == ["seed0"]
    write_run(parent / "seed1" / "PPO_1", 1, diverging=False)
    assert _mtime(parent) < time.time_ns() - 50 * 10**9  # the parent's time did not move
    w.poll()
    assert sorted(r.run_dir.relative_to(parent).as_posix() for r in w.runs) == ["seed0", "seed1/PPO_1"]


def test_a_run_folder_deleted_and_made_again_is_a_new_run(tmp_path, capsys):
    """Found by a review (session 27): once a deleted folder was said, a new run made in a folder of its name was
    judged on the old run's watchdog (a healthy new run ended "diverged"), its events into the deleted log."""
    import shutil

    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher

    run = tmp_path / "run"
    write_run(run, 0, diverging=True)  # an alarm
    w = Watcher(run, console=WatchdogConsole())
    w.poll()
    shutil.rmtree(run)
    w.poll()
    assert w.runs[0].gone_said
    time.sleep(1.1)  # other file names, as a new process's
    write_run(run, 1, diverging=False)
    w.poll()
    w.flush()
    new, = w.runs
    assert new.alarms == 0 and new.state == "healthy" and w.replaced_alarms == 1  # (the old run's alarm counts)
    assert "its files were replaced (a new run in its folder)" in capsys.readouterr().out
    assert (run / WATCH_EVENTS).exists()


def test_a_file_written_anew_with_the_bytes_read_and_more_is_read_on_not_taken_for_a_new_run(tmp_path, capsys):
    """Found by a review (session 27): rsync (and sync clients) write each update to a temporary file and rename it
    over the old one, a new inode holding the old bytes and more. It was taken for a new run in the folder, judged
    from its start: its alarm said again and --on-alarm run again."""
    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher

    run = tmp_path / "run"
    write_run(run, 0, diverging=True)  # an alarm
    files = {f: f.read_bytes() for f in run.rglob("events.out.tfevents*")}
    for f, data in files.items():  # the first sync: most of the run, its alarm included
        f.write_bytes(data[: len(data) * 19 // 20])
    w = Watcher(run, console=WatchdogConsole())
    w.poll()
    followed, = w.runs
    assert followed.alarms == 1
    for f, data in files.items():  # the next sync: the whole file, renamed into place
        copy = f.with_name(f".{f.name}.tmp")
        copy.write_bytes(data)
        os.replace(copy, f)
    w.poll()
    w.flush()
    assert w.runs == [followed] and followed.alarms == 1 and followed.last.iteration == N_ITERS - 1
    assert "its files were replaced" not in capsys.readouterr().out


def test_a_run_folder_replaced_or_deleted_while_watched(tmp_path, capsys):
    """A run's folder emptied for a new run: the new one was judged against the old one's history (its blow-up not
    "above any level it held before": no alarm, no --on-alarm), iterations going back, into a deleted event log.
    A folder deleted: nothing said, exit 0 (found by a helper's audit, session 17)."""
    import shutil

    from watchdog.console import WatchdogConsole
    from watchdog.watch import Watcher

    run = tmp_path / "run"
    write_run(run, 0, diverging=True)  # an alarm
    w = Watcher(run, console=WatchdogConsole())
    w.poll()
    w.flush()
    assert w.runs[0].alarms == 1
    shutil.rmtree(run)
    time.sleep(1.1)  # other file names, as a new process's (a name taken again is told by its inode, which may be reused)
    write_run(run, 1, diverging=True)  # the same again, a new run
    w.poll()
    w.flush()
    new, = w.runs
    assert new.alarms == 1 and new.last.iteration == N_ITERS - 1 and w.diverged
    assert "its files were replaced (a new run in its folder)" in capsys.readouterr().out
    assert alarms_of(run)  # its own watch event log, in the new folder

    gone = tmp_path / "gone"
    write_run(gone, 0, diverging=False)
    assert main(["watch", str(gone), "--interval", "0.05", "--idle-exit", "0"]) == 0
    w = Watcher(gone, console=WatchdogConsole())
    w.poll()
    shutil.rmtree(gone)
    w.poll()
    assert w.runs[0].gone_said and "its folder is gone (deleted while watched)" in capsys.readouterr().out


def test_the_table_and_the_metrics_show_the_newest_value_loss_when_the_last_record_has_none(tmp_path, capsys):
    """A helper's audit (session 22): a run whose last record held no value loss (a reward-only step) showed NaN in
    the fleet table and in `watchdog_run_value_loss`."""
    parent = tmp_path / "results"
    run, = make_fleet(parent, n=1, diverging=())
    w = ScalarWriter(run / "logs" / "average_step_reward" / "average_step_reward")
    w.add_scalar("average_step_reward", 0.02, (N_ITERS + 1) * SPI)  # a step that holds the reward alone
    w.close()
    prom = tmp_path / "watch.prom"
    assert main(["watch", "--idle-exit", "0", "--prometheus", str(prom), str(parent)]) == 0
    value = next(line.split()[-1] for line in prom.read_text().splitlines() if line.startswith("watchdog_run_value_loss{"))
    assert float(value) == pytest.approx(curve(N_ITERS - 1, 0, False), rel=1e-6)
    assert "nan" not in capsys.readouterr().out.lower()
