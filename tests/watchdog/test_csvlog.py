"""SB3's progress.csv (its CSV logger) in replay and watch: read as SB3's TensorBoard file of the same run is."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from watchdog.cli import main
from watchdog.csvlog import read_progress_csv
from watchdog.errors import InputError
from watchdog.replay import find_run_dirs, replay_run
from watchdog.watch import RunFollower

DATA = Path(__file__).resolve().parents[1] / "data" / "sb3_csv"
RUNS = ("cartpole_healthy", "cartpole_reward_fault")


def _rows(records):
    return [(r.iteration, r.env_steps, sorted(r.metrics)) for r in records]


@pytest.mark.parametrize("run", RUNS)
def test_replay_reads_a_progress_csv_as_the_tensorboard_file_of_the_same_run(run):
    """One SB3 Logger wrote both (tests/data/sb3_csv/make_sb3_csv.py): the same records (TensorBoard keeps
    float32, the CSV the float64 SB3 had) and the same verdict, alarm and onset."""
    csv, tb = replay_run(DATA / run / "csv"), replay_run(DATA / run / "tensorboard")
    assert csv.source == "csv" and tb.source == "tensorboard"
    assert len(csv.records) == len(tb.records) == 149
    assert _rows(csv.records) == _rows(tb.records)
    for a, b in zip(csv.records, tb.records):
        assert all(math.isclose(a.metrics[k], b.metrics[k], rel_tol=1e-6) for k in a.metrics)
    assert (csv.verdict, csv.run_info["framework"]) == (tb.verdict, "sb3")
    assert csv.verdict == ("diverged" if "fault" in run else "healthy")
    assert (csv.first_alarm or {}).get("iteration") == (tb.first_alarm or {}).get("iteration")
    assert csv.onset == tb.onset


def test_a_folder_holding_progress_csv_is_a_run():
    assert sorted(p.relative_to(DATA).as_posix() for p in find_run_dirs([DATA])) == [
        f"{run}/{part}" for run in RUNS for part in ("csv", "tensorboard")]


def test_watch_follows_a_live_sb3_csv_logger_as_replay_reads_its_file(tmp_path):
    """A real SB3 run whose only log is its CSV, followed between its dumps (a callback polls at each rollout's
    end, before that iteration's dump): SB3 rewrites the file when its second dump brings the train/* keys, and
    the follower, counting rows rather than bytes, gives replay's records of the finished file."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    run = tmp_path / "run"
    follower, records = RunFollower(run), []

    class Follow(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            records.extend(follower.poll())

    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_steps=32, batch_size=64, n_epochs=1,
                seed=0, policy_kwargs={"net_arch": [16]})
    model.set_logger(configure(str(run), ["csv"]))
    model.learn(total_timesteps=40 * 64, callback=Follow())
    model.logger.close()
    assert len(records) >= 36  # judged while the run wrote: all but the newest dumps' iterations
    records += follower.poll(final=True)
    assert follower.detected.framework == "sb3" and follower.input_warnings == []
    replayed = replay_run(run)
    assert replayed.source == "csv" and len(replayed.records) == 39
    assert [(r.iteration, r.env_steps, r.metrics) for r in records] == \
           [(r.iteration, r.env_steps, r.metrics) for r in replayed.records]


def test_a_row_being_written_waits_and_bad_rows_are_said(tmp_path):
    """The last line without its newline is a dump still being written; a row without a step is said and
    skipped; a text cell gives no point; a CSV that is not SB3's is one line naming the column it lacks."""
    path = tmp_path / "progress.csv"
    path.write_text("time/total_timesteps,train/value_loss,note\n64,0.5,\"a, b\"\n,0.4,x\n128,nan,y\n192,0.3")
    res = read_progress_csv(path)
    assert res.rows == 3 and res.scalars["train/value_loss"].steps.tolist() == [64, 128]
    assert math.isnan(res.scalars["train/value_loss"].values[1]) and "note" not in res.scalars
    assert res.warnings == [f"{path}: line 3 has no time/total_timesteps; skipped"]
    with open(path, "a") as f:
        f.write("\n")
    assert read_progress_csv(path, first_row=3).scalars["train/value_loss"].steps.tolist() == [192]
    other = tmp_path / "other.csv"
    other.write_text("step,loss\n1,2\n")
    with pytest.raises(InputError, match="no time/total_timesteps column"):
        read_progress_csv(other)


def test_watch_and_replay_name_a_progress_csv_run_and_its_alarm(tmp_path, capsys):
    run = tmp_path / "csv"
    shutil.copytree(DATA / "cartpole_reward_fault" / "csv", run)
    assert main(["replay", str(run)]) == 1
    assert "DIVERGED (149 records from csv)" in capsys.readouterr().out
    assert main(["watch", str(run), "--idle-exit", "0"]) == 1
    out = capsys.readouterr().out
    assert "sb3 logs, steps are env steps" in out and "ALARM it 101" in out


@pytest.mark.parametrize("eval_freq", [350, 20])
def test_an_eval_callbacks_dumps_between_rollouts_join_the_rollouts_end(tmp_path, eval_freq):
    """SB3's EvalCallback dumps mid-rollout, with the last update's train/* values (here every 700 steps of 64-step
    rollouts, or every 40: then every update's losses go out mid-rollout, the first among them): those points go to
    the rollout's end, where SB3's own dump would have put them. Until session 16 the off-grid steps entered the
    step size's gcd and replay numbered the iterations 0, 8, 16, ... (watch, which fixed the size from the first two
    steps, 0, 1, 2). The same from the CSV and the TensorBoard file, in replay and watch."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    run = tmp_path / "run"
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_steps=32, batch_size=64, n_epochs=1,
                seed=0, policy_kwargs={"net_arch": [16]})
    model.set_logger(configure(str(run), ["csv", "tensorboard"]))
    model.learn(total_timesteps=40 * 64, callback=EvalCallback(make_vec_env("CartPole-v1", n_envs=1, seed=1),
                                                               eval_freq=eval_freq, n_eval_episodes=1))
    model.logger.close()
    (tmp_path / "csv").mkdir()
    (run / "progress.csv").rename(tmp_path / "csv" / "progress.csv")
    off_grid = [s for s in read_progress_csv(tmp_path / "csv" / "progress.csv").scalars["train/value_loss"].steps
                if s % 64]
    assert len(off_grid) >= 3  # the evaluations' dumps carried update losses
    for folder in (run, tmp_path / "csv"):
        replayed = replay_run(folder)
        assert [(r.iteration, r.env_steps) for r in replayed.records] == [(i, 128 + 64 * i) for i in range(39)]
        follower = RunFollower(folder)
        watched = follower.poll() + follower.poll(final=True)
        assert [(r.iteration, r.env_steps, r.metrics) for r in watched] == \
               [(r.iteration, r.env_steps, r.metrics) for r in replayed.records]


def test_csv_oddities_are_read_or_said(tmp_path):
    """A byte-order mark and a quoted header, a cell too long for Python's csv module (a stray quote swallowing the
    rest), NUL bytes (a crash), a torn last line at the end: read, or said, never a traceback."""
    bom = tmp_path / "bom" / "progress.csv"
    bom.parent.mkdir()
    bom.write_bytes(b'\xef\xbb\xbf"time/total_timesteps","train/value_loss"\r\n64,0.5\r\n128,0.4\r\n')
    assert read_progress_csv(bom).scalars["train/value_loss"].steps.tolist() == [64, 128]
    assert find_run_dirs([bom.parent]) == [bom.parent]

    long = tmp_path / "long.csv"
    long.write_text('time/total_timesteps,train/value_loss,note\n64,0.5,x\n128,0.4,"' + "x" * 200_000 + '"\n')
    res = read_progress_csv(long)
    assert res.rows == 1 and "line 3 cannot be read as CSV" in res.damage

    nul = tmp_path / "nul" / "progress.csv"
    nul.parent.mkdir()
    nul.write_bytes(b"time/total_timesteps,train/value_loss\n64,0.5\n128,0.4\n19" + b"\x00" * 50 + b"2,0.3\n")
    res = read_progress_csv(nul)
    assert res.rows == 2 and res.damage == (f"{nul}: NUL bytes at line 4 (its length ran ahead of its data: a crash?) "
                                            "- read the lines before them; the rest is ignored")
    assert replay_run(nul.parent).run_info["damaged_files"] == [str(nul)]

    torn = tmp_path / "torn" / "progress.csv"
    torn.parent.mkdir()
    torn.write_text("time/total_timesteps,train/value_loss\n" + "".join(f"{64 * i},0.5\n" for i in range(1, 9))
                    + "576,0.")
    assert any("ignored a torn last line" in w for w in replay_run(torn.parent).input_warnings)
    follower = RunFollower(torn.parent)
    follower.poll()
    assert follower.input_warnings == []  # a dump being written: wait
    follower.poll(final=True)
    assert any("ignored a torn last line" in w for w in follower.input_warnings)  # the end: say it

    # text among a column's numbers, a negative step: said (left out in silence, and read as a step, until session
    # 19); a column of text alone is a string key SB3 logged: no point, nothing said
    odd = tmp_path / "odd.csv"
    odd.write_text("time/total_timesteps,train/value_loss,note\n64,0.5,a\n128,abc,b\n-5,0.4,c\n192,0.3,d\n"
                   "99999999999999999999999,0.2,e\n")  # a step past int64: a traceback until session 30
    res = read_progress_csv(odd)
    assert res.scalars["train/value_loss"].steps.tolist() == [64, 192] and "note" not in res.scalars
    assert res.warnings == [f"{odd}: line 4 has a negative (-5) time/total_timesteps; skipped",
                            f"{odd}: line 6 has an out-of-range (99999999999999999999999) time/total_timesteps; skipped",
                            f"{odd}: column train/value_loss holds text among its numbers (line 3: 'abc'); those "
                            "cells were left out"]
    # an empty progress.csv is named as such, not "holds no runs" (found by an audit, session 19)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "progress.csv").write_text("")
    with pytest.raises(InputError, match="progress.csv is not SB3's: no time/total_timesteps column"):
        find_run_dirs([tmp_path / "empty"])


def test_a_row_with_more_cells_than_its_header_is_skipped_and_bounds_the_verdict(tmp_path, capsys):
    """Read as they were, a row with two extra cells put its values in the wrong columns: 9577 iterations (9,600 env
    steps) and the reward's best at iteration 0, HEALTHY and exit 0 (found by a helper's sweep, session 17)."""
    run = tmp_path / "run"
    shutil.copytree(DATA / "cartpole_healthy" / "csv", run)
    lines = (run / "progress.csv").read_text().splitlines(keepends=True)
    lines[5] = "nan,abc," + lines[5]
    (run / "progress.csv").write_text("".join(lines))
    res = read_progress_csv(run / "progress.csv")
    assert res.bad_rows == 1 and any("line 6 has" in w and "skipped" in w for w in res.warnings)
    report = replay_run(run)
    clean = replay_run(DATA / "cartpole_healthy" / "csv")
    assert len(report.records) == len(clean.records) - 1
    assert report.records[-1].iteration == clean.records[-1].iteration  # the axis as SB3 logged it
    assert main(["replay", str(run)]) == 2
    assert "without a damaged line of its progress.csv" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["cut short", "no step", "text among numbers", "last cells lost"])
def test_a_row_without_its_step_or_with_text_among_numbers_bounds_the_verdict(tmp_path, capsys, damage):
    """A helper's audit (session 22): a row cut short before its time/total_timesteps cell, or with text in it, lost
    its record, and text in a column of numbers lost its cell, with a plain HEALTHY and exit 0."""
    run = tmp_path / "run"
    shutil.copytree(DATA / "cartpole_healthy" / "csv", run)
    lines = (run / "progress.csv").read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[5].rstrip("\n").split(",")
    at = header.index("time/total_timesteps")
    if damage == "cut short":
        cells = cells[:at]
    elif damage == "last cells lost":  # a review (session 28): read as it was, with nothing said, until then
        cells = cells[:max(at, header.index("train/value_loss")) + 1]
        assert len(cells) < len(header)
    else:
        cells[at if damage == "no step" else header.index("train/value_loss")] = "abc"
    lines[5] = ",".join(cells) + "\n"
    (run / "progress.csv").write_text("".join(lines))
    assert read_progress_csv(run / "progress.csv").bad_rows == 1
    assert main(["replay", str(run)]) == 2
    assert "without a damaged line of its progress.csv" in capsys.readouterr().out


def test_a_log_whose_steps_go_back_is_not_too_short_for_the_iterations_it_spans(tmp_path):
    """A review (session 28): progress.csv's rows out of order (its steps going back) read "all within the first 50
    iterations", too short to judge: the span was the last record's iteration less the first's, not their range."""
    run = tmp_path / "run"
    shutil.copytree(DATA / "cartpole_healthy" / "csv", run)
    lines = (run / "progress.csv").read_text().splitlines(keepends=True)
    (run / "progress.csv").write_text(lines[0] + "".join(reversed(lines[1:])))
    report = replay_run(run)
    assert len(report.records) > 100 and report.run_info["within_warmup"] is False


def test_a_tail_counts_the_rows_it_lost_as_replay_does_when_each_row_is_read_alone(tmp_path):
    """A review (session 27): a watch said the rows it lost from progress.csv, and ended a plain "healthy", exit 0
    (replay: exit 2). The tail counts them (replay's ``lost_lines``), the text in a column of numbers included when
    its row is read alone (the column's numbers came in earlier polls)."""
    from watchdog.csvlog import ProgressCsvTail

    lines = (DATA / "cartpole_healthy" / "csv" / "progress.csv").read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    for row, column in ((5, "time/total_timesteps"), (60, "train/value_loss")):
        cells = lines[row].rstrip("\n").split(",")
        cells[header.index(column)] = "oops"
        lines[row] = ",".join(cells) + "\n"
    path = tmp_path / "progress.csv"
    path.write_text(lines[0])
    tail = ProgressCsvTail(path)
    for line in lines[1:]:  # a poll after each dump
        with open(path, "a") as f:
            f.write(line)
        tail.poll()
    assert tail.bad_rows == read_progress_csv(path).bad_rows == 2
    assert any("column train/value_loss holds text among its numbers (line 61: 'oops')" in w for w in tail.warnings)


def test_a_rewrite_caught_half_way_is_not_a_new_run(tmp_path):
    """SB3 rewrites progress.csv in 8 KB pieces when a dump brings a new key: a poll in between sees the new
    header and fewer rows. That waits for the next poll; a file that shrank (a new run) is read from the start."""
    path = tmp_path / "progress.csv"
    rows = "".join(f"{64 * i},0.5\n" for i in range(1, 60))
    old = "time/total_timesteps,train/value_loss\n" + rows
    path.write_text(old)
    follower = RunFollower(tmp_path)
    assert len(follower.poll()) == 58  # the newest waits for a later one
    whole = "time/total_timesteps,train/value_loss,eval/mean_reward\n" + rows.replace("\n", ",\n") + "3840,0.4,9\n"
    half = whole[:len(whole) // 2] + old[len(whole) // 2:]  # the new start over the old end
    assert len(half) > len(old) // 2 and half.count("\n") < old.count("\n")
    path.write_text(half)
    assert follower.poll() == [] and follower.input_warnings == []
    path.write_text(whole)
    assert [r.iteration for r in follower.poll(final=True)] == [58, 59]
    path.write_text("time/total_timesteps,train/value_loss\n64,0.5\n")  # a new run over it
    follower.poll(final=True)
    assert "written over by a new run?" in follower.input_warnings[-1]
    # a new run that wrote past the old file's size between two polls (the same file, truncated and grown): its first
    # row is not the old one's, which a rewrite keeps (a review, session 27: read as the old run going on, at 60 on)
    path.write_text("time/total_timesteps,train/value_loss\n" + "".join(f"{64 * i},0.5\n" for i in range(1, 4)))
    follower = RunFollower(tmp_path)
    assert [r.iteration for r in follower.poll(final=True)] == [0, 1, 2]
    path.write_text("time/total_timesteps,train/value_loss\n" + "".join(f"{64 * i},0.3\n" for i in range(1, 9)))
    records = follower.poll(final=True)
    assert [(r.iteration, r.metrics["train/value_loss"]) for r in records] == [(i, 0.3) for i in range(8)]
    assert f"{path}: has another first row (written over by a new run?)" in follower.input_warnings[-1]


def test_watch_reads_a_csv_whose_columns_are_openrls_names_and_falls_back_to_it_as_replay_does(tmp_path, capsys):
    """A custom loop's SB3 Logger whose columns detect as OpenRL's (watch crashed on it), and a folder whose event
    file holds no tracked signal beside a progress.csv that does (replay read the CSV, watch said no metrics)."""
    from watchdog.tfevents import ScalarWriter

    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "progress.csv").write_text("rollout/ep_rew_mean,time/total_timesteps,train/value_loss\n" + "".join(
        f"{10 + i},{2048 * i},{1 / i}\n" for i in range(1, 80)))
    replayed = replay_run(custom)
    follower = RunFollower(custom)
    assert [r.env_steps for r in follower.poll() + follower.poll(final=True)] == \
           [r.env_steps for r in replayed.records] and len(replayed.records) == 79

    both = tmp_path / "both"
    shutil.copytree(DATA / "cartpole_reward_fault" / "csv", both)
    with ScalarWriter(both) as w:
        for i in range(1, 50):
            w.add_scalar("perf/fps", 1000.0, 64 * i)
    assert main(["replay", str(both)]) == 1
    assert "DIVERGED (149 records from csv)" in capsys.readouterr().out
    assert main(["watch", str(both), "--idle-exit", "0"]) == 1
    assert "ALARM it 101" in capsys.readouterr().out


def _fed_dump_by_dump(folder: Path):
    """A finished run's points fed to one assembler step by step, as a follower polling between dumps sees them."""
    from watchdog.frameworks import RecordAssembler, detect
    from watchdog.tfevents import read_run_scalars

    scalars = read_run_scalars(folder).scalars
    asm, records = RecordAssembler(detect(scalars)), []
    for step in sorted({int(s) for series in scalars.values() for s in series.steps}):
        for tag, series in scalars.items():
            at = series.steps == step
            if at.any():
                asm.feed(tag, series.steps[at], series.values[at])
        records += asm.records(final=False)
    return records + asm.records(final=True), scalars


@pytest.mark.parametrize("case", ["log_interval_3_resumed", "late_return_eval_every_40"])
def test_sb3_steps_stay_as_logged_and_a_follower_gets_replays_records(tmp_path, case):
    """Found by a review of the EvalCallback change: a run dumping every 3 rollouts whose second learn() goes on
    (reset_num_timesteps=False: a new phase of the 3-rollout grid) kept its logged steps; and with MountainCar (no
    return before step 448) and an evaluation every 40 steps, a follower fed dump by dump takes the step size only
    from points up to SB3's newest own dump (its time/fps), not from an evaluation's."""
    import numpy as np
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    env_id = "CartPole-v1" if case.startswith("log") else "MountainCar-v0"
    model = PPO("MlpPolicy", make_vec_env(env_id, n_envs=2, seed=0), n_steps=32, batch_size=64, n_epochs=1, seed=0,
                policy_kwargs={"net_arch": [16]})
    model.set_logger(configure(str(tmp_path), ["tensorboard"]))
    if case.startswith("log"):
        model.learn(10 * 64, log_interval=3)
        model.learn(20 * 64, log_interval=3, reset_num_timesteps=False)
    else:
        model.learn(30 * 64, callback=EvalCallback(make_vec_env(env_id, n_envs=1, seed=1), eval_freq=20,
                                                   n_eval_episodes=1))
    model.logger.close()
    followed, scalars = _fed_dump_by_dump(tmp_path)
    replayed = replay_run(tmp_path).records
    assert [(r.env_steps, r.metrics) for r in followed] == [(r.env_steps, r.metrics) for r in replayed]
    if case.startswith("log"):  # every record at a step SB3 logged it
        assert [r.env_steps for r in replayed] == scalars["train/value_loss"].steps.tolist()
        # (the follower numbers them by the 3-rollout grid of its first two; replay, which also sees the second
        # learn()'s new phase, by rollouts: 0, 3, 6, ... A follower cannot renumber what it judged.)
        assert [r.iteration for r in replayed] == [s // 64 - 3 for s in scalars["train/value_loss"].steps.tolist()]
    else:  # one record per rollout, each update's losses at its rollout's end
        assert [(r.iteration, r.env_steps) for r in followed] == [(r.iteration, r.env_steps) for r in replayed]
        assert [r.env_steps for r in replayed] == [128 + 64 * i for i in range(len(replayed))]
        assert len(replayed) == len(scalars["train/value_loss"]) and not np.all(
            scalars["train/value_loss"].steps % 64 == 0)


def _csv_rows(first: int, last: int, extra: bool = False) -> str:
    return "".join(f"{64 * i},{0.5 + i / 1000},{20 + i / 10}" + ("," if extra else "") + "\n" for i in range(first, last))


def test_a_follower_behind_a_rewrite_waits_for_it_whole_and_nul_bytes_get_a_grace(tmp_path, monkeypatch):
    """Found by a second review. A follower rows behind when SB3 rewrites the file (a new key): the half-written
    file (new header and rows, then the old bytes) can hold as many rows as were read, one old line lost where the
    two meet; its rows are ragged, so it waits and reads the whole file at the next poll (was: one step skipped,
    one read twice). NUL bytes get the event files' grace (a network file system's write not there yet)."""
    from watchdog.tfevents import FileTail

    path = tmp_path / "progress.csv"
    header = "time/total_timesteps,train/value_loss,rollout/ep_rew_mean"
    path.write_text(header + "\n" + _csv_rows(1, 100))
    follower = RunFollower(tmp_path)
    assert len(follower.poll()) == 98
    old = header + "\n" + _csv_rows(1, 140)  # SB3 went on meanwhile
    whole = header + ",eval/mean_reward\n" + _csv_rows(1, 140, extra=True) + f"{64 * 140},0.64,34.0,500\n"
    path.write_text(whole[:2048] + old[2048:])  # its first piece written, the rest still the old bytes
    assert follower.poll() == []
    path.write_text(whole)
    assert [r.env_steps for r in follower.poll(final=True)] == [64 * i for i in range(99, 141)]

    nul = tmp_path / "nul"
    nul.mkdir()
    good = header + "\n" + _csv_rows(1, 40)
    cut = len(good) // 2
    (nul / "progress.csv").write_bytes(good[:cut].encode() + bytes(len(good) - cut))
    monkeypatch.setattr(FileTail, "SUSPECT_S", 60.0)
    follower = RunFollower(nul)
    first = follower.poll()
    assert follower.suspect and follower.damaged == [] and follower.input_warnings == []
    (nul / "progress.csv").write_text(good)  # the bytes arrive
    records = first + follower.poll(final=True)
    assert [r.env_steps for r in records] == [64 * i for i in range(1, 40)] and follower.damaged == []


def test_a_watch_that_falls_back_to_the_csv_ends_and_judges_as_replay(tmp_path, capsys):
    """Found by a second review: an event file with only an untracked tag and a zero-filled tail beside a CSV
    kept the watch from ever ending (the bad record, never read again, counted as news each poll); an event file
    zero-filled from byte 0 beside a healthy CSV made the watch exit 2 ("damaged") where replay said HEALTHY, 0."""
    from watchdog.tfevents import ScalarWriter

    hang = tmp_path / "hang"
    shutil.copytree(DATA / "cartpole_reward_fault" / "csv", hang)
    with ScalarWriter(hang) as w:
        for i in range(1, 50):
            w.add_scalar("perf/fps", 1000.0, 64 * i)
    event = next(hang.glob("events.out.tfevents.*"))
    event.write_bytes(event.read_bytes() + bytes(64))
    assert main(["watch", str(hang), "--idle-exit", "1.5", "--interval", "0.2"]) == 1
    capsys.readouterr()

    zero = tmp_path / "zero"
    shutil.copytree(DATA / "cartpole_healthy" / "csv", zero)
    (zero / "events.out.tfevents.1700000000.host").write_bytes(bytes(200))
    assert main(["replay", str(zero)]) == 0
    assert "HEALTHY (149 records from csv)" in capsys.readouterr().out
    assert main(["watch", str(zero), "--idle-exit", "0"]) == 0


@pytest.mark.parametrize(("algo", "n_steps", "log_interval", "rollouts", "first"), [
    ("PPO", 32, 3, 31, 1),     # dumps at rollouts 3, 6, ...: the losses of updates 2, 5, ...: iterations 1, 4, ...
    ("A2C", 5, 10, 200, 8),    # A2C's own default log_interval is 100
])
def test_sb3_dumping_every_few_rollouts_is_numbered_by_its_rollouts(tmp_path, algo, n_steps, log_interval, rollouts,
                                                                    first):
    """A real SB3 run logging to progress.csv every log_interval rollouts: the steps' gcd is log_interval rollouts,
    and each dump was numbered as one iteration (until session 18). SB3's time/iterations (CSV only: SB3 leaves it
    out of TensorBoard) gives one rollout's env steps."""
    import stable_baselines3
    from stable_baselines3.common.logger import configure

    cls = getattr(stable_baselines3, algo)
    extra = {"batch_size": n_steps, "n_epochs": 1} if algo == "PPO" else {}
    model = cls("MlpPolicy", "CartPole-v1", n_steps=n_steps, seed=0, device="cpu", **extra)
    model.set_logger(configure(str(tmp_path / "run"), ["csv"]))
    model.learn(n_steps * rollouts, log_interval=log_interval)
    report = replay_run(tmp_path / "run")
    assert report.source == "csv"
    assert [r.iteration for r in report.records][:3] == [first, first + log_interval, first + 2 * log_interval]
    assert report.records[0].env_steps == log_interval * n_steps
    follower = RunFollower(tmp_path / "run")
    assert [r.iteration for r in follower.poll() + follower.poll(final=True)] == [r.iteration for r in report.records]


def test_a_fifo_named_progress_csv_does_not_hang_replay(tmp_path):
    """A FIFO named progress.csv beside a run's log.txt: its header read blocked in open() for ever, so replay printed
    nothing until killed (found by an audit, session 19). It is not SB3's file: the log.txt run is replayed."""
    import os
    import threading

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "openrl_resumed" / "push_lite_resumed" / "log.txt", run)
    os.mkfifo(run / "progress.csv")
    out = []
    worker = threading.Thread(target=lambda: out.append(replay_run(find_run_dirs([run])[0])), daemon=True)
    worker.start()
    worker.join(30)
    assert out and out[0].source == "log.txt" and out[0].verdict == "healthy"
