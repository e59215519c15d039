"""Every recovery path lands on the right checkpoint with the safe config really applied (real OpenRL).

Resume, restart state, alert mode, shared actor-critic models, crash classification, and replay
of a live run: each one a defect that once was, each asserted on what the run itself wrote.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path

import pytest

from openrl_ws.train import main
from watchdog.checkpoints import read_openrl_module
from watchdog.cli import main as cli_main
from watchdog.config import load_watchdog_config
from watchdog.eventlog import read_events
from watchdog.replay import replay_run
from watchdog.supervise import choose_restart_point, get_flag, set_flag

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--num_envs", "8", "--episode_length", "32", "--ppo_epoch", "2", "--hidden_size", "32"]
STEPS = 8 * 32


def run(tmp_path: Path, name: str, *extra: str, iterations: int, watchdog: bool = True) -> tuple[int, Path, list[dict]]:
    run_dir = tmp_path / name
    code = main([*SMALL, *(["--watchdog"] if watchdog else []), "--run_dir", str(run_dir),
                 "--train_timesteps", str(STEPS * iterations), *extra])
    log = run_dir / "watchdog_events.jsonl"
    return code, run_dir, read_events(log).events if log.exists() else []


def kinds(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["event"] == kind]


def final_lrs(run_dir: Path, iterations: int) -> dict[str, float]:
    module = read_openrl_module(run_dir / "checkpoints" / f"rl_model_{STEPS * iterations}_steps" / "module.pt")
    return {name: opt["param_groups"][0]["lr"] for name, opt in module.optimizers.items()}


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "wd.yaml"
    path.write_text(text)
    return str(path)


def test_resume_trains_at_the_command_lines_learning_rate_not_the_checkpoints(tmp_path):
    code, first, _ = run(tmp_path, "first", "--config", str(ROOT / "cfgs/ppo.yaml"), iterations=4, watchdog=False)
    assert code == 0 and final_lrs(first, 4) == {"policy": 5e-3, "critic": 5e-3}
    module = first / "checkpoints" / f"rl_model_{STEPS * 4}_steps" / "module.pt"
    code, second, events = run(tmp_path, "second", "--config", str(ROOT / "cfgs/ppo_safe.yaml"),
                               "--checkpoint", str(module), iterations=6)
    assert code == 0
    assert final_lrs(second, 6) == {"policy": 3e-4, "critic": 3e-4}  # the optimizer state the run saved
    start, = kinds(events, "start")
    assert start["ppo"] == {"lr": 3e-4, "critic_lr": 3e-4, "max_grad_norm": 0.5}
    assert [e["iteration"] for e in kinds(events, "metrics")] == [4, 5]  # continues after the checkpoint


def test_the_full_safe_config_starts_a_new_run_with_all_of_the_field_reports_keys(tmp_path):
    run_dir = tmp_path / "safe"
    code = main(["--num_envs", "4", "--hidden_size", "32", "--ppo_epoch", "1", "--watchdog", "--run_dir", str(run_dir),
                 "--config", str(ROOT / "cfgs/ppo_safe.yaml"), "--train_timesteps", str(4 * 200 * 2)])
    events = read_events(run_dir / "watchdog_events.jsonl").events
    assert code == 0 and kinds(events, "start")[0]["ppo"] == {"lr": 3e-4, "critic_lr": 3e-4, "max_grad_norm": 0.5}
    assert kinds(events, "metrics")[0]["env_steps"] == 4 * 200  # episode_length 200 from the file


@pytest.mark.parametrize("lr", ["5e-3", "1e-4"])
def test_start_safe_beats_the_same_keys_given_as_openrl_flags_but_keeps_a_lower_learning_rate(tmp_path, lr):
    """Two reviews of session 30: OpenRL's flags came after --config and won over it, so `--start_safe --lr 5e-3
    --max_grad_norm 10` (and `watchdog run`'s restart, which swaps --config alone) trained at the rates that diverged.
    The safe config's keys win; a learning rate below the safe one stays the run's own, as a rollback keeps it."""
    run_dir = tmp_path / "run"
    code = main(["--num_envs", "4", "--episode_length", "32", "--hidden_size", "32", "--ppo_epoch", "1", "--watchdog",
                 "--run_dir", str(run_dir), "--start_safe", "--lr", lr, "--critic_lr", lr, "--max_grad_norm", "10",
                 "--train_timesteps", str(4 * 32)])
    start, = kinds(read_events(run_dir / "watchdog_events.jsonl").events, "start")
    rate = min(float(lr), 3e-4)
    assert code == 0 and start["ppo"] == {"lr": pytest.approx(rate), "critic_lr": pytest.approx(rate), "max_grad_norm": 0.5}


def test_a_shared_actor_critic_rolls_back_and_trains_on(tmp_path):
    code, run_dir, events = run(tmp_path, "shared", "--use_share_model", "true", "--inject", "nan@5", iterations=9)
    assert code == 0
    rollback, = kinds(events, "rollback")
    switch, = kinds(events, "config_switch")
    assert switch["changes"]["lr"]["new"] == pytest.approx(3e-4) and "critic_lr" not in switch["changes"]
    assert "one optimizer" in switch["kept"]["critic_lr"]
    assert final_lrs(run_dir, 9) == {"model": 3e-4}
    assert kinds(events, "metrics")[-1]["iteration"] == 8


def test_alert_mode_reports_a_nan_crash_and_exits_3_instead_of_swallowing_it(tmp_path, capsys):
    code, _, events = run(tmp_path, "alert", "--watchdog_config", config(tmp_path, "action: alert\n"),
                          "--inject", "nan@5", iterations=9)
    assert code == 3
    assert kinds(events, "alarm")[0]["iteration"] == 5 and kinds(events, "rollback") == []
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("train.py: training diverged: ")


def test_an_error_that_mentions_nan_but_has_finite_numbers_is_a_bug_not_a_divergence(tmp_path, monkeypatch):
    from openrl.drivers.onpolicy_driver import OnPolicyDriver

    real, calls = OnPolicyDriver.learner_update, {"n": 0}

    def failing(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("Inference tensors cannot be saved for backward (see infos)")
        return real(self)

    monkeypatch.setattr(OnPolicyDriver, "learner_update", failing)
    with pytest.raises(RuntimeError, match="Inference tensors"):
        run(tmp_path, "bug", iterations=6)
    events = read_events(tmp_path / "bug" / "watchdog_events.jsonl").events
    assert kinds(events, "alarm") == [] and kinds(events, "rollback") == []


def test_a_resumed_run_continues_its_watchdog_and_replay_agrees_with_the_live_run(tmp_path, monkeypatch):
    wd_cfg = config(tmp_path, "policy:\n  stable_every_iters: 2\n  rollback_budget: 3\n")
    code, run_dir, events = run(tmp_path, "run", "--watchdog_config", wd_cfg, "--inject", "nan@5", iterations=10)
    assert code == 0
    live_alarm, = kinds(events, "alarm")
    live_rollback, = kinds(events, "rollback")
    assert (live_alarm["onset_iteration"], live_rollback["to_iteration"]) == (5, 4)  # exact onset: just before

    # replay of the live run's own log makes the same decisions (one dispatch loop, one registry)
    report = replay_run(run_dir, load_watchdog_config(wd_cfg))
    assert report.first_alarm["iteration"] == live_alarm["iteration"]
    assert report.online_onset["iteration"] == live_alarm["onset_iteration"]
    assert [(r["iteration"], r["to_iteration"]) for r in report.would_roll_back] == \
        [(live_rollback["from_iteration"], live_rollback["to_iteration"])]
    # the run recovered live and trained on to its end: nothing to resume (replay told it to resume from before the
    # onset, and rejected the final weights trained after the rollback as 'after onset', until session 18)
    assert report.live_recovered == {"rollbacks": 1, "from_iteration": 5, "to_iteration": 4, "end_iteration": 9}
    assert report.recommended_checkpoint is None and report.resume_command is None
    # killed right after its last iteration (no end event): replay recommends what the live rollback chose
    log = run_dir / "watchdog_events.jsonl"
    full = log.read_text()
    log.write_text("".join(full.splitlines(keepends=True)[:-1]))
    report = replay_run(run_dir, load_watchdog_config(wd_cfg))
    # a copy replayed by a relative path from another folder resumes in the copy, both paths absolute (until session
    # 22: in the start event's --run_dir, the original's folder, from a checkpoint relative to where replay ran)
    shutil.copytree(run_dir, tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    moved = shlex.split(replay_run(Path("moved"), load_watchdog_config(wd_cfg)).resume_command)
    assert get_flag(moved, "--run_dir") == str(tmp_path / "moved")
    assert get_flag(moved, "--checkpoint") == live_rollback["checkpoint"].replace(str(run_dir), str(tmp_path / "moved"))
    log.write_text(full)
    assert report.recommended_checkpoint["path"] == live_rollback["checkpoint"]  # the same rule on disk
    # ...and its resume command is the run's own, watched, with its sizes, from that checkpoint, starting on the safe
    # config's hyper-parameters over its own config, its injected fault left out (until session 18: the task and env
    # count alone, unwatched, with --config cfgs/ppo_safe.yaml, whose start-up keys replaced the run's)
    cmd = shlex.split(report.resume_command)
    assert cmd[:2] == ["python", "openrl_ws/train.py"] and "--watchdog" in cmd and "--inject" not in cmd
    assert get_flag(cmd, "--checkpoint") == live_rollback["checkpoint"] and "--start_safe" in cmd
    assert (get_flag(cmd, "--config"), get_flag(cmd, "--hidden_size"), get_flag(cmd, "--run_dir")) == \
        (None, "32", str(run_dir))

    # a restart never picks a checkpoint of the stretch the rollback abandoned
    point = choose_restart_point(run_dir)
    assert point.kind == "stable" and str(point.path) not in live_rollback["abandoned"]

    # resumed in the same run dir: the budget and escalation continue (rollback 2 at lr x0.5) and the
    # detectors are not warming up again (the NaN at 12 is judged like any other)
    # (with replay's resume command, a fault of its own, and more iterations)
    resume = set_flag(set_flag(cmd[2:], "--checkpoint", str(point.path)), "--train_timesteps", str(STEPS * 16))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    code = main([*resume, "--inject", "nan@12"])
    assert code == 0
    after = read_events(run_dir / "watchdog_events.jsonl").events[len(events):]
    start = kinds(after, "start")[0]
    assert start["resumed_from"] == str(point.path)
    # the merged config it started on is kept in the run dir, where its start event names it, and no copy is left
    # behind in the temporary directory (one per resume until session 20)
    assert start["config_file"] == str(run_dir / "start_safe_config.yaml")
    assert "max_grad_norm: 0.5" in (run_dir / "start_safe_config.yaml").read_text() and list(temp.iterdir()) == []
    assert start["ppo"]["lr"] == pytest.approx(3e-4) and start["ppo"]["max_grad_norm"] == 0.5  # --start_safe
    assert (start["episode_length"], start["num_envs"]) == (32, 8)  # the run's own, kept
    rollback, = kinds(after, "rollback")
    assert (rollback["number"], rollback["lr_scale"], rollback["to_iteration"]) == (2, 0.5, 10)
    switch, = kinds(after, "config_switch")
    assert switch["changes"]["lr"]["new"] == pytest.approx(1.5e-4)


def test_alert_mode_without_a_crash_does_not_call_non_finite_training_finished(tmp_path, capsys):
    # torch's distribution checks off (rsl_rl turns them off process-wide): Normal(loc=nan) no longer
    # raises, NaN flows into the weights and training goes on; the run still ends as diverged (exit 3)
    import torch.distributions

    torch.distributions.Distribution.set_default_validate_args(False)  # restored by tests/conftest.py
    code, _, events = run(tmp_path, "alert", "--watchdog_config", config(tmp_path, "action: alert\n"),
                          "--inject", "nan@5", iterations=8)
    assert code == 3 and kinds(events, "rollback") == [] and kinds(events, "alarm")
    assert "non-finite" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("tensorboard", [False, True], ids=["log.txt", "tensorboard"])
def test_an_unwatched_run_that_crashed_on_nan_replays_as_diverged_not_healthy(tmp_path, tensorboard):
    """Found by an audit (session 20): the update that crashed was never logged, so replay (and watch) of the run saw
    its last good iteration and said HEALTHY, exit 0, for the field report's own ending. Its value loss is NaN now."""
    code, run_dir, _ = run(tmp_path, "plain", "--inject", "nan@6", *(["--use_tensorboard"] if tensorboard else []),
                           iterations=10, watchdog=False)
    assert code == 3
    report = replay_run(run_dir)
    assert report.source == ("tensorboard" if tensorboard else "log.txt")
    assert report.verdict == "diverged" and report.first_nonfinite["iteration"] == 6
    assert cli_main(["replay", str(run_dir)]) == 1


def test_a_resume_from_an_older_checkpoint_abandons_the_newer_ones_for_a_crash_restart(tmp_path):
    """Found by an audit (session 21): resumed by hand from iteration 4 of a run that had reached 11, a crash restarted
    the run from the newest stable checkpoint on disk, iteration 10, of the trajectory the resume abandoned: past
    where the resumed run stood. Now the resume marks them unstable (kept, with the reason) and says so."""
    from watchdog.checkpoints import CheckpointStore

    wd_cfg = config(tmp_path, "policy:\n  stable_every_iters: 2\n")
    code, run_dir, _ = run(tmp_path, "run", "--watchdog_config", wd_cfg, iterations=12)
    store = run_dir / "checkpoints" / "watchdog"
    four = next(c for c in CheckpointStore(store).list() if c.iteration == 4)
    assert code == 0 and choose_restart_point(run_dir).iteration == 10
    code = main([*SMALL, "--watchdog", "--watchdog_config", wd_cfg, "--run_dir", str(run_dir), "--checkpoint",
                 str(four.path), "--train_timesteps", str(STEPS * 8)])  # on from 5 to 7
    assert code == 0
    metas = {c.iteration: c.meta for c in CheckpointStore(store).list()}
    assert [it for it, m in sorted(metas.items()) if m["stable"]] == [0, 2, 4, 6]  # 6: the resumed run's own
    assert all(metas[it]["unstable_reason"] == "abandoned by a resume from iteration 4" for it in (8, 10))
    assert choose_restart_point(run_dir).iteration == 6
