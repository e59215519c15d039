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
