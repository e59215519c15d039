"""`watchdog run`: a crashed training process is restarted from the last stable checkpoint with the safe config.

Real OpenRL runs (through ``tests/helpers/crashing_train.py``) for the three hard crashes; tiny
stand-ins for the rest of the contract (clean exit, bad input, the training's own watchdog stop, spent
budget, stall, Ctrl-C, command-line rewriting, checkpoint choice). The supervisor knows OpenRL's train.py by
its path, ``openrl_ws/train.py``: its stand-ins are put there (:func:`as_openrl_train`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from watchdog.checkpoints import CheckpointStore, read_openrl_module
from watchdog.eventlog import EVENTS_FILENAME, read_events
from watchdog.supervise import (
    RestartPoint,
    choose_restart_point,
    get_flag,
    is_openrl_command,
    restart_command,
    run_dir_of,
    safe_config_for,
    set_flag,
    with_run_dir,
)
from watchdog.errors import InputError

REPO = Path(__file__).resolve().parents[2]
HELPER = REPO / "tests" / "helpers" / "crashing_train.py"
SAFE = REPO / "cfgs" / "ppo_safe.yaml"
SMALL = ["--num_envs", "8", "--episode_length", "32", "--ppo_epoch", "2", "--hidden_size", "32"]
ITERS = 8


def supervise(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``watchdog run ARGS`` in a subprocess (its own signals, its own children)."""
    return subprocess.run([sys.executable, "-m", "watchdog.cli", "run", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def as_openrl_train(folder: Path, code: str | None = None, *, link: Path | None = None) -> Path:
    """``folder/openrl_ws/train.py``: a stand-in for OpenRL's train.py (``code``, or a link to the script ``link``),
    where the supervisor recognises it and rewrites its ``--checkpoint`` and ``--config``."""
    script = folder / "openrl_ws" / "train.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    if link is not None:
        script.symlink_to(link)
    else:
        script.write_text(code)
    return script


def events_of(run_dir: Path, kind: str | None = None) -> list[dict]:
    path = run_dir / EVENTS_FILENAME
    events = read_events(path).events if path.exists() else []
    return [e for e in events if kind is None or e["event"] == kind]


# --------------------------------------------------------------------------- real training, hard crashes


@pytest.mark.parametrize(("crash", "exit_code", "signal_name"), [
    # (os._exit(3), no finally and no `end` event: the integrations' [*-exit] restarts below and the tiny children's
    # tests; left out here in session 21, 12 s of a suite past 10 minutes)
    ("fpe", 1, None),              # FloatingPointError("NaN") with finite numbers: a bug, not divergence (exit 1,
                                   # no watchdog `stop`: an exception escaping train.py, as any RuntimeError would)
    ("segv", None, "SIGSEGV"),     # ctypes.string_at(0)
])
def test_hard_crash_restarts_from_last_stable_checkpoint_with_safe_config(tmp_path, crash, exit_code, signal_name):
    run_dir = tmp_path / "run"
    wd_cfg = tmp_path / "wd.yaml"
    wd_cfg.write_text("policy:\n  stable_every_iters: 2\n")
    # the run's own safe config (not cfgs/ppo_safe.yaml): the restart takes it (until session 19 it took the
    # supervisor's default, so the restarted run trained on other hyper-parameters than its rollbacks would)
    safe = tmp_path / "my_safe.yaml"
    safe.write_text("lr: 2.0e-4\ncritic_lr: 2.0e-4\nmax_grad_norm: 0.25\nuse_max_grad_norm: true\n")
    train = as_openrl_train(tmp_path, link=HELPER)
    proc = supervise("--max-restarts", "2", "--", sys.executable, str(train), "--crash", f"{crash}@5", *SMALL,
                     "--watchdog", "--watchdog_config", str(wd_cfg), "--run_dir", str(run_dir),
                     "--safe_config", str(safe), "--train_timesteps", str(8 * 32 * ITERS))

    assert proc.returncode == 0, proc.stderr[-3000:]
    events = events_of(run_dir)
    restart, = [e for e in events if e["event"] == "restart"]
    before = events[: events.index(restart)]
    last_stable = [e for e in before if e["event"] == "stable_checkpoint"][-1]
    assert last_stable["iteration"] == 4 and max(e["iteration"] for e in before if e["event"] == "metrics") == 5
    if crash == "fpe":  # an exception through train.py: its end event says so (session 18)
        assert before[-1]["event"] == "end" and before[-1]["ended"].startswith("crashed: ")
    assert restart["checkpoint"] == last_stable["checkpoint"] and restart["checkpoint_kind"] == "stable"
    assert (restart["exit_code"], restart["signal"], restart["attempt"]) == (exit_code, signal_name, 1)
    assert restart["iteration"] == 5 and restart["to_iteration"] == 4
    cmd = restart["command"]
    assert get_flag(cmd, "--checkpoint") == last_stable["checkpoint"]
    assert get_flag(cmd, "--config") == str(run_dir / "ppo_safe.restart.yaml")
    # the restarted attempt loaded that checkpoint and trained to the end with finite numbers
    after = events[events.index(restart) + 1:]
    assert [e["event"] for e in after][0] == "start" and after[-1]["event"] == "end" and not after[-1]["stopped"]
    # the restarted run continues after the checkpoint: iterations and env steps carry on
    assert [e["iteration"] for e in after if e["event"] == "metrics"] == list(range(restart["to_iteration"] + 1, ITERS))
    assert all(isinstance(v, float) for e in after if e["event"] == "metrics" for v in e["metrics"].values())
    assert f"resumed from watchdog checkpoint {last_stable['checkpoint']}" in proc.stdout
    # the restarted process's summary: its own iterations and time, then the run's (session 18)
    assert f"finished: iterations 5-{ITERS - 1}, {8 * 32 * (ITERS - 5):,} env steps in" in proc.stdout
    assert "watchdog run: restart 1/2: training" in proc.stderr
    assert "watchdog run: training finished (exit 0)" in proc.stderr
    # ...at the safe learning rate (the config wins over the checkpoint's optimizer state), and with
    # the crashed process's watchdog: its registry and budget continue (one restart = one recovery)
    final = read_openrl_module(run_dir / "checkpoints" / f"rl_model_{8 * 32 * ITERS}_steps" / "module.pt")
    assert {k: o["param_groups"][0]["lr"] for k, o in final.optimizers.items()} == {"policy": 2e-4, "critic": 2e-4}
    start = after[0]
    assert start["ppo"] == {"lr": 2e-4, "critic_lr": 2e-4, "max_grad_norm": 0.25}
    assert start["resumed_from"] == last_stable["checkpoint"]


CRASHING_INTEGRATION = REPO / "tests" / "helpers" / "crashing_integration.py"
INTEGRATION_ITERS = 30
# example -> (its flags, the safe learning rate, the learning-rate key its records carry, its own final files)
INTEGRATIONS = {
    "rsl_rl_ppo": (["--num_worlds", "8", "--steps_per_env", "16"], 3e-4, f"model_{INTEGRATION_ITERS - 1}.pt"),
    "sb3_ppo": (["--n_envs", "2", "--n_steps", "32"], 3e-4, None),
    "rl_games_ppo": (["--num_worlds", "8", "--horizon", "16"], 3e-4, None),
    "skrl_ppo": (["--num_worlds", "8", "--rollouts", "16"], 3e-4, None),
}


@pytest.mark.parametrize(("example", "crash"), [("rsl_rl_ppo", "kill"), ("sb3_ppo", "exit"), ("rl_games_ppo", "kill"),
                                                ("skrl_ppo", "exit")])
def test_a_crashed_integration_run_is_restarted_and_resumed_in_place_from_its_stable_checkpoint(tmp_path, example, crash):
    """An rsl_rl run under WatchedOnPolicyRunner (SB3: WatchdogCallback; rl_games: WatchdogObserver), launched as
    Isaac Lab launches one (a new log folder per launch), dies at iteration 17 (SIGKILL, or os._exit). `watchdog
    run` restarts the same command line; the restarted process's watchdog resumes in place from the newest stable checkpoint (15):
    weights, optimizer and the watchdog's own state, iteration 16 next, the safe learning rate, the restart
    counted in the budget."""
    flags, safe_lr, final_file = INTEGRATIONS[example]
    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    wd_cfg = tmp_path / "wd.yaml"
    wd_cfg.write_text("policy:\n  stable_every_iters: 5\n")
    cmd = [sys.executable, str(CRASHING_INTEGRATION), example, "--crash", f"{crash}@17", "--logs", str(logs),
           "--watchdog", "--watchdog_config", str(wd_cfg), "--iterations", str(INTEGRATION_ITERS), *flags]
    proc = supervise("--run-dir", str(run_dir), "--max-restarts", "2", "--", *cmd)

    assert proc.returncode == 0, proc.stderr[-3000:]
    events = events_of(run_dir)
    restart, = [e for e in events if e["event"] == "restart"]
    before, after = events[: events.index(restart)], events[events.index(restart) + 1:]
    stable = [e for e in before if e["event"] == "stable_checkpoint"]
    assert [e["iteration"] for e in stable][-1] == 15 and before[-1]["iteration"] == 17
    assert (restart["checkpoint"], restart["checkpoint_kind"], restart["to_iteration"]) == (
        stable[-1]["checkpoint"], "stable", 15)
    assert restart["command"] == cmd and restart["signal"] == ("SIGKILL" if crash == "kill" else None)
    start = after[0]
    assert (start["event"], start["resumed_from"]) == ("start", restart["checkpoint"])
    switch = next(e for e in after if e["event"] == "config_switch")
    # the safe lr, never above the run's own at the checkpoint (session 20: rsl_rl's adaptive schedule is below it)
    own = next(e["metrics"]["train/learning_rate"] for e in before if e["event"] == "metrics" and e["iteration"] == 15)
    safe_lr = min(safe_lr, own)
    assert switch["iteration"] == 15 and switch["changes"].get("learning_rate", {"new": own})["new"] == pytest.approx(safe_lr)
    metrics = [e for e in after if e["event"] == "metrics"]
    assert [e["iteration"] for e in metrics] == list(range(16, INTEGRATION_ITERS))
    assert metrics[0]["env_steps"] == stable[-1]["env_steps"] + (stable[-1]["env_steps"] // 16)
    assert all(e["metrics"]["train/learning_rate"] == pytest.approx(safe_lr) for e in metrics)
    assert after[-1]["event"] == "end" and not after[-1]["stopped"] and after[-1]["rollbacks"] == 1
    # every launch logged the framework's own files in its own folder; the watchdog kept one run dir for both
    assert not (logs / "attempt0" / "watchdog_events.jsonl").exists()
    if final_file:
        assert (logs / "attempt1" / final_file).is_file()
    assert "watchdog: resumed from stable checkpoint" in proc.stdout
    # the example's last line: no rollback in this process, the restart before it (it said '1 rollback(s)')
    assert "0 rollback(s) (1 recovery(ies) before this process: rollbacks and restarts)" in proc.stdout
    assert f"resumed in place with its {start['framework']} watchdog's safe config" in proc.stderr


def test_replay_of_a_restarted_run_says_what_the_restarted_process_did(tmp_path):
    """rsl_rl: a NaN at 12 is rolled back, the process is killed at 17 and restarted from its stable checkpoint of
    10, where a fault of the env comes again at 12 (`--restart-inject`: the example injects its own once). Live, the restarted
    process went on with the watchdog of the checkpoint and the restart counted: rollback #3 at x0.25. Replay fed the
    restarted process's records to the crashed one's detectors and called it #2 at x0.5 (until session 17); it now
    replays the restart as it happened, so every rollback agrees."""
    from watchdog.replay import replay_run

    run_dir, wd_cfg = tmp_path / "run", tmp_path / "wd.yaml"
    wd_cfg.write_text("policy:\n  stable_every_iters: 5\n")
    flags, _, _ = INTEGRATIONS["rsl_rl_ppo"]
    cmd = [sys.executable, str(CRASHING_INTEGRATION), "rsl_rl_ppo", "--crash", "kill@17", "--logs", str(tmp_path / "logs"),
           "--restart-inject", "nan@12", "--watchdog", "--watchdog_config", str(wd_cfg), "--iterations", "24",
           "--inject", "nan@12", *flags]
    proc = supervise("--run-dir", str(run_dir), "--max-restarts", "1", "--", *cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    live = [(e["iteration"], e["to_iteration"], e["number"], e["lr_scale"]) for e in events_of(run_dir, "rollback")]
    assert len(live) == 2 and live[1][2:] == (3, 0.25) and len(events_of(run_dir, "restart")) == 1
    report = replay_run(run_dir)
    replayed = [(e["iteration"], e["to_iteration"], e["number"], e["lr_scale"]) for e in report.events
                if e["event"] == "rollback"]
    assert replayed == live
    assert [e["event"] for e in report.to_dict()["events"]].count("restart") == 1


def test_a_loop_of_your_own_that_crashed_resumes_where_loop_watchdog_resume_says(tmp_path):
    """A CleanRL-style loop under LoopWatchdog dies at update 17 (os._exit); `watchdog run` restarts the same command;
    ``watch.resume()`` puts the stable checkpoint of 15 back through the loop's own restore, its switch applies the
    safe lr, and the loop goes on from update 16 at 15's env steps."""
    from tests.integrations.test_loop import ENVS, SAFE_LR, STEPS

    run_dir, cfg = tmp_path / "run", tmp_path / "wd.yaml"
    cfg.write_text("policy:\n  stable_every_iters: 5\n")
    cmd = [sys.executable, str(REPO / "tests" / "helpers" / "crashing_loop.py"), str(run_dir), "24", "17", str(cfg)]
    proc = supervise("--run-dir", str(run_dir), "--max-restarts", "1", "--", *cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = events_of(run_dir)
    restart, = [e for e in events if e["event"] == "restart"]
    before, after = events[: events.index(restart)], events[events.index(restart) + 1:]
    assert before[-1]["iteration"] == 17 and (restart["checkpoint_kind"], restart["to_iteration"]) == ("stable", 15)
    start = after[0]
    assert (start["event"], start["framework"], start["resumed_from"]) == ("start", "loop", restart["checkpoint"])
    switch = next(e for e in after if e["event"] == "config_switch")
    assert switch["iteration"] == 15 and switch["changes"]["learning_rate"]["new"] == pytest.approx(SAFE_LR)
    metrics = [e for e in after if e["event"] == "metrics"]
    assert [e["iteration"] for e in metrics] == list(range(16, 24))
    assert metrics[0]["env_steps"] == 17 * ENVS * STEPS  # 15's env steps, then one update's
    # annealed from the safe lr (CleanRL's anneal_lr, in the loop)
    assert all(e["metrics"]["train/learning_rate"] == pytest.approx(SAFE_LR * (1 - e["iteration"] / 24)) for e in metrics)
    assert after[-1]["event"] == "end" and not after[-1]["stopped"] and after[-1]["rollbacks"] == 1
    assert "resumed in place with its loop watchdog's safe config" in proc.stderr


def test_a_new_run_is_not_supervised_in_a_folder_holding_a_finished_one(tmp_path):
    """A review (session 27): a loop finished under `watchdog run` (its stable checkpoints up to 20), then a new run of
    it in the same --run-dir died at update 7 and was restarted from the old run's checkpoint of 20, its recoveries
    counted against the new run's budget. Such a run dir is now one line and exit 2 before anything runs; a run that
    died mid-way (a preempted one: no end event) is gone on with, and OpenRL's train.py resuming from a checkpoint
    of the finished run (its --checkpoint) is let through, as train.py's own rule for a run dir holding a run."""
    run_dir, cfg = tmp_path / "run", tmp_path / "wd.yaml"
    cfg.write_text("policy:\n  stable_every_iters: 5\n")
    loop = [sys.executable, str(REPO / "tests" / "helpers" / "crashing_loop.py"), str(run_dir), "24"]
    assert supervise("--run-dir", str(run_dir), "--max-restarts", "1", "--", *loop, "17", str(cfg)).returncode == 0
    events = events_of(run_dir)
    again = supervise("--run-dir", str(run_dir), "--max-restarts", "1", "--", *loop, "7", str(cfg))
    assert again.returncode == 2 and events_of(run_dir) == events  # nothing ran, nothing written
    assert again.stderr.strip().splitlines() == [
        f"watchdog: error: {run_dir}: holds a run that finished at it 23 (its watchdog_events.jsonl ends with its end "
        "event): a new run there would be restarted from that run's checkpoints and share its rollback budget (give "
        "the new run its own --run-dir, or, for OpenRL, go on from one of that run's checkpoints with train.py's "
        "--checkpoint)"]
    from watchdog.supervise import check_new_supervision

    check_new_supervision(["python", "openrl_ws/train.py", "--checkpoint", "x/module.pt"], run_dir)
    log = run_dir / EVENTS_FILENAME
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:-1]))  # died before its end
    check_new_supervision(loop, run_dir)


def test_a_restarted_loop_that_skips_resume_stops_with_one_line_and_is_not_restarted_again(tmp_path):
    run_dir, cfg = tmp_path / "run", tmp_path / "wd.yaml"
    cfg.write_text("policy:\n  stable_every_iters: 5\n")
    cmd = [sys.executable, str(REPO / "tests" / "helpers" / "crashing_loop.py"), str(run_dir), "24", "12", str(cfg),
           "--skip-resume"]
    proc = supervise("--run-dir", str(run_dir), "--max-restarts", "3", "--", *cmd)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(events_of(run_dir, "restart")) == 1 and "not restarting" in proc.stderr.splitlines()[-1]
    stop = events_of(run_dir, "stop")[-1]
    assert "did not call LoopWatchdog.resume()" in stop["reason"]
    assert "WatchdogError: watchdog run restarted this process to resume from" in proc.stderr


def test_a_restarted_process_that_cannot_resume_in_place_refuses_with_one_line(tmp_path, monkeypatch):
    """An integration session that does not say it resumes (the base class's default, for an integration yet to
    learn it), and a loop of your own that skipped ``resume()`` (it would start over at its own update 0 under a
    resumed watchdog): both refuse."""
    from watchdog.config import WatchdogConfig
    from watchdog.errors import WatchdogError
    from watchdog.integrations.loop import LoopWatchdog
    from watchdog.pipeline import Watchdog
    from watchdog.session import IntegrationSession
    from watchdog.supervise import RESUME_ENV

    class NewIntegration(IntegrationSession):
        pass

    monkeypatch.setenv(RESUME_ENV, str(tmp_path / "checkpoints" / "watchdog" / "stable_100_steps"))
    with pytest.raises(WatchdogError, match=r"this integration \(NewIntegration\) cannot resume a run in place yet") as err:
        NewIntegration(watchdog=Watchdog(WatchdogConfig()), safe=None, seed=0, run_dir=tmp_path, safe_name="s")
    assert "\n" not in str(err.value)
    watch = LoopWatchdog(tmp_path, capture=dict, restore=lambda state: None, switch=lambda scale: {})
    with pytest.raises(WatchdogError, match=r"did not call LoopWatchdog.resume\(\)") as err:
        watch.step(0, 10, {"losses/value_loss": 0.1})
    assert "\n" not in str(err.value)


# a loop of your own, tiny: RUN_DIR CONFIG UPDATES CRASH_AT NAN_AT [--chdir]. The first attempt dies with os._exit(3)
# after update CRASH_AT (its stable checkpoint on disk), or before its first update with CRASH_AT -1; a restarted one
# gets a NaN value loss at NAN_AT. Its lr is 1e-3, its switch sets 1e-4; --chdir: it changes directory before resume()
TINY_LOOP = """
import io, math, os, sys
import torch
from watchdog.console import WatchdogConsole
from watchdog.integrations.loop import LoopWatchdog

run_dir, cfg, (updates, crash_at, nan_at) = sys.argv[1], sys.argv[2], map(int, sys.argv[3:6])
restarted = bool(os.environ.get("WATCHDOG_RESTART"))
net = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(net.parameters(), lr=1e-3)

def switch(scale):
    old, opt.param_groups[0]["lr"] = opt.param_groups[0]["lr"], 1e-4 * scale
    return {"learning_rate": (old, 1e-4 * scale)}

watch = LoopWatchdog(run_dir, capture=lambda: {"net": net.state_dict()},
                     restore=lambda s: net.load_state_dict(s["net"]), switch=switch, config=cfg,
                     console=WatchdogConsole(io.StringIO()))
if "--chdir" in sys.argv:
    os.chdir("/")
start = watch.resume()
if crash_at < 0 and not restarted:
    os._exit(3)
for it in range(start.iteration, updates):
    loss = math.nan if it == nan_at and restarted else 0.1
    step = watch.step(it, (it + 1) * 10, {"losses/value_loss": loss, "rollout/episode_return": 1.0,
                                          "charts/learning_rate": opt.param_groups[0]["lr"]})
    if it == crash_at and not restarted:
        watch.watch.settle()
        os._exit(3)
    if step.stopped:
        break
watch.close()
sys.exit(1 if watch.result.stopped else 0)
"""


def test_a_loop_that_died_before_its_first_stable_checkpoint_restarts_on_the_safe_config_within_the_budget(tmp_path):
    """Found by a review (session 27): an integration's run that died before its first stable checkpoint was restarted
    from scratch with no WATCHDOG_RESUME, and its watchdog started afresh: the run's own lr, the restart not counted,
    so with a rollback budget of 1 a NaN after the restart was rolled back (OpenRL's train.py, restarted from scratch,
    counted it and took the safe config, as the supervisor said both did). Now the restarted process switches to the
    safe lr, and the NaN finds the budget spent: a stop, not rolled back."""
    run_dir, cfg, script = tmp_path / "run", tmp_path / "wd.yaml", tmp_path / "loop.py"
    cfg.write_text("policy:\n  stable_every_iters: 5\n  rollback_budget: 1\n")
    script.write_text(TINY_LOOP)
    proc = supervise("--run-dir", str(run_dir), "--max-restarts", "2", "--", sys.executable, str(script), str(run_dir),
                     str(cfg), "8", "-1", "3")
    assert proc.returncode == 1 and "stopped the run" in proc.stderr, proc.stderr[-3000:]
    events = events_of(run_dir)
    restart, = [e for e in events if e["event"] == "restart"]
    assert (restart["checkpoint_kind"], restart["config"]) == ("scratch", "its loop watchdog's safe config")
    after = events[events.index(restart) + 1:]
    switch = next(e for e in after if e["event"] == "config_switch")
    assert switch["changes"]["learning_rate"] == {"old": 1e-3, "new": 1e-4}
    metrics = [e for e in after if e["event"] == "metrics"]
    assert [e["iteration"] for e in metrics] == [0, 1, 2, 3]
    assert all(e["metrics"]["train/learning_rate"] == pytest.approx(1e-4) for e in metrics)
    assert not [e for e in after if e["event"] == "rollback"]
    assert "rollback budget (1) spent" in events_of(run_dir, "stop")[-1]["reason"]
    assert after[-1]["event"] == "end" and after[-1]["rollbacks"] == 1


def test_a_restarted_script_that_changes_directory_still_finds_its_checkpoint(tmp_path):
    """Found by a review (session 27): with a relative --run-dir, WATCHDOG_RESUME was a relative path, and a script
    that changed directory before resume() could not read it (a CheckpointError, exit 2, not restarted)."""
    cfg, script = tmp_path / "wd.yaml", tmp_path / "loop.py"
    cfg.write_text("policy:\n  stable_every_iters: 5\n")
    script.write_text(TINY_LOOP)
    proc = subprocess.run([sys.executable, "-m", "watchdog.cli", "run", "--run-dir", "run", "--max-restarts", "1", "--",
                           sys.executable, str(script), "run", str(cfg), "10", "7", "99", "--chdir"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = events_of(tmp_path / "run")
    restart, = [e for e in events if e["event"] == "restart"]
    stable = tmp_path / "run" / "checkpoints" / "watchdog" / "stable_60_steps"
    assert restart["checkpoint"] == str(stable)  # absolute, as the run dir it gives every attempt
    after = events[events.index(restart) + 1:]
    assert after[0]["resumed_from"] == str(stable)
    assert [e["iteration"] for e in after if e["event"] == "metrics"] == [6, 7, 8, 9]


# --------------------------------------------------------------------------- the contract, with tiny children


def child(code: str, run_dir: Path, *extra: str) -> list[str]:
    """An OpenRL train.py stand-in running ``code`` (beside ``run_dir``); it sees ``sys.argv[1:] == ['--run_dir',
    D, *extra]``."""
    return ["--", sys.executable, str(as_openrl_train(run_dir.parent, code)), "--run_dir", str(run_dir), *extra]


def test_clean_exit_is_not_restarted(tmp_path):
    proc = supervise(*child("print('trained')", tmp_path / "run"))
    assert proc.returncode == 0 and "trained" in proc.stdout
    assert events_of(tmp_path / "run", "restart") == []


def test_bad_input_from_the_training_is_not_restarted(tmp_path):
    proc = supervise(*child("import sys; sys.exit(2)", tmp_path / "run"))
    assert proc.returncode == 2 and "bad input" in proc.stderr
    assert events_of(tmp_path / "run", "restart") == []


def test_a_stop_by_the_trainings_own_watchdog_is_final(tmp_path):
    code = ("import sys, json, os; d = sys.argv[2]; os.makedirs(d, exist_ok=True); "
            f"open(os.path.join(d, {EVENTS_FILENAME!r}), 'a').write(json.dumps({{'event': 'stop', 'iteration': 3, "
            "'env_steps': 30, 'state': 'stopped', 'time': 0, 'reason': 'rollback budget spent'}) + '\\n'); sys.exit(1)")
    proc = supervise(*child(code, tmp_path / "run"))
    assert proc.returncode == 1 and "not restarting" in proc.stderr
    assert events_of(tmp_path / "run", "restart") == []


def test_spent_budget_exits_1_with_a_one_line_final_report(tmp_path):
    run_dir = tmp_path / "run"
    proc = supervise("--max-restarts", "2", *child("import os; os._exit(3)", run_dir))
    assert proc.returncode == 1
    restarts = events_of(run_dir, "restart")
    assert [r["attempt"] for r in restarts] == [1, 2]
    assert all(r["checkpoint"] is None and r["checkpoint_kind"] == "scratch" for r in restarts)
    assert all(get_flag(r["command"], "--config") == str(run_dir / "ppo_safe.restart.yaml") for r in restarts)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("watchdog run: gave up: training exited with code 3")
    assert "restart budget (2) spent after 2 restart(s)" in last and "scratch" in last
    assert events_of(run_dir, "stop")[-1]["by"] == "supervisor"


def test_a_stalled_training_is_killed_and_restarted(tmp_path):
    code = ("import sys, time, os; d = sys.argv[2]; os.makedirs(d, exist_ok=True); "
            "open(os.path.join(d, 'log.txt'), 'a').write('started\\n'); "
            "'--config' in sys.argv or time.sleep(120)")  # first attempt hangs, the restart finishes
    start = time.monotonic()
    proc = supervise("--stall-seconds", "1.5", "--max-restarts", "1", *child(code, tmp_path / "run"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    restart, = events_of(tmp_path / "run", "restart")
    assert restart["stalled"] is True and restart["signal"] == "SIGTERM"
    assert "no progress in" in proc.stderr
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_ctrl_c_or_a_hang_up_is_forwarded_to_the_child_group_and_ends_it(tmp_path, sig, code):
    """Ctrl-C ends the training with the supervisor, exit 130, never restarted. So does a SIGHUP (an ssh session
    dropped without tmux or nohup), exit 129: found by a review (session 27), it killed the supervisor alone, and the
    child, in its own process group, trained on unsupervised."""
    run_dir, ready, got = tmp_path / "run", tmp_path / "ready", tmp_path / "got_signal"
    script = ("import os, signal, sys, time; "
              f"signal.signal({int(sig)}, lambda *a: (open({str(got)!r}, 'w').write('x'), sys.exit(0))); "
              f"open({str(ready)!r}, 'w').write(f'{{os.getpid()}} {{os.getpgid(0)}}'); time.sleep(60)")
    sup = subprocess.Popen([sys.executable, "-m", "watchdog.cli", "run", *child(script, run_dir)], cwd=REPO,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid, pgid = map(int, ready.read_text().split())
        assert pgid == pid != os.getpgid(sup.pid)  # the child leads its own process group
        sup.send_signal(sig)
        assert sup.wait(timeout=30) == code
        assert got.exists() and not _running(pid)
        assert f"interrupted by {signal.Signals(sig).name}" in sup.stderr.read()
        assert events_of(run_dir, "restart") == []
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()


@pytest.mark.parametrize("how", ["stall", "ctrl-c"])
def test_a_stopped_training_leaves_nothing_of_its_group_running(tmp_path, how):
    """Found by a review (session 27): a training that exits 0 on SIGTERM (a stall) or SIGINT (Ctrl-C) left the
    workers of its process group that ignore them running: the group was SIGKILLed only after a non-zero exit."""
    pid_file, ready = tmp_path / "worker.pid", tmp_path / "ready"
    worker = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "signal.signal(signal.SIGINT, signal.SIG_IGN); "
              f"open({str(pid_file)!r} + '.tmp', 'w').write(str(os.getpid())); "
              f"os.replace({str(pid_file)!r} + '.tmp', {str(pid_file)!r}); time.sleep(120)")
    script = tmp_path / "parent.py"
    script.write_text(f"""import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # a graceful shutdown: exit 0
signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
subprocess.Popen([sys.executable, "-c", {worker!r}])
while not os.path.exists({str(pid_file)!r}):
    time.sleep(0.02)
open(os.path.join(sys.argv[1], "log.txt"), "w").write("started")  # progress, then none: a stall
open({str(ready)!r}, "w").write("x")
time.sleep(120)
""")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    args = ["--stall-seconds", "2", "--max-restarts", "0"] if how == "stall" else []
    sup = subprocess.Popen([sys.executable, "-m", "watchdog.cli", "run", "--run-dir", str(run_dir), *args, "--",
                            sys.executable, str(script), str(run_dir)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    pid = None
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        if how == "ctrl-c":
            sup.send_signal(signal.SIGINT)
        assert sup.wait(timeout=30) == (1 if how == "stall" else 130)
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid)
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        if pid is not None and _running(pid):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a reaped-late orphan has run its course)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize("config", [7, {"policy": 7}])
def test_a_start_event_with_a_malformed_config_is_read_as_naming_no_budget(tmp_path, config):
    """Found by a review (session 27): an integration's start event whose config was not a mapping (a hand-written or
    damaged log) was an AttributeError traceback at the first crash."""
    import json

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / EVENTS_FILENAME).write_text(json.dumps({"event": "start", "framework": "loop", "config": config}) + "\n")
    proc = supervise("--run-dir", str(run_dir), "--max-restarts", "1", "--", sys.executable, "-c",
                     "import os; os._exit(3)")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "restart budget (1) spent" in proc.stderr.strip().splitlines()[-1]


def test_an_integration_runs_budget_comes_from_its_start_event_and_spans_its_restarts(tmp_path):
    """A watched rsl_rl run (its start event names the framework and its config: rollback_budget 2) that already
    rolled back twice crashes again: the supervisor gives up instead of restarting it."""
    from watchdog.eventlog import EventLog, make_event

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with EventLog(run_dir / EVENTS_FILENAME) as log:
        log.write(make_event("start", iteration=0, env_steps=0, state="healthy", framework="rsl_rl",
                             config={"policy": {"rollback_budget": 2}}))
        for n in (1, 2):
            log.write(make_event("rollback", iteration=10 * n, env_steps=0, state="rolled_back", number=n))
    proc = supervise("--run-dir", str(run_dir), "--max-restarts", "5", "--", sys.executable, "-c",
                     "import os; os._exit(3)")
    assert proc.returncode == 1 and not events_of(run_dir, "restart")
    assert "rollback budget (2) spent by 2 rollbacks and restarts" in proc.stderr


def test_a_script_that_is_not_openrl_and_died_before_any_start_event_is_restarted_unchanged(tmp_path):
    """An integration's script (here a stand-in) that died before its watchdog wrote a start event: the supervisor
    cannot know its flags, so the restart is the same command line, from the script's own start."""
    run_dir, seen = tmp_path / "run", tmp_path / "argv"
    code = (f"import os, sys; open({str(seen)!r}, 'a').write(repr(sys.argv[1:]) + '\\n'); "
            "os.environ.get('WATCHDOG_RESTART') or os._exit(3)")
    proc = supervise("--run-dir", str(run_dir), "--max-restarts", "2", "--", sys.executable, "-c", code, "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert seen.read_text().splitlines() == ["['--seed', '1']"] * 2  # no --checkpoint, no --config
    restart, = events_of(run_dir, "restart")
    assert restart["checkpoint_kind"] == "scratch" and restart["config"] is None and restart["command"][-2:] == ["--seed", "1"]
    assert "restarting the same command unchanged" in proc.stderr


def test_a_scripts_own_watchdog_config_flag_is_not_read_as_ours(tmp_path):
    """Found by a review (session 27): any command with --watchdog had its --watchdog_config loaded as our config for
    the rollback budget; a script whose flag names a config of its own was refused before it started (exit 2)."""
    (tmp_path / "mine.yaml").write_text("model: {layers: 3}\n")
    proc = supervise("--run-dir", str(tmp_path / "run"), "--max-restarts", "1", "--", sys.executable, "-c",
                     "print('trained')", "--watchdog", "--watchdog_config", str(tmp_path / "mine.yaml"))
    assert proc.returncode == 0 and "trained" in proc.stdout, proc.stderr


@pytest.mark.parametrize("safe", [None, "rsl_rl_safe.yaml", "sb3_safe.yaml"])
def test_a_script_with_a_run_dir_flag_is_not_taken_for_openrls_train_py(tmp_path, safe):
    """Found by a review (session 27): any command with a --run_dir was taken for OpenRL's train.py. A script of one's
    own (argparse, --run_dir) that crashed was restarted with `--config RUN_DIR/ppo_safe.restart.yaml` appended,
    which it refused (exit 2, not restarted); an integration's --safe_config (cfgs/rsl_rl_safe.yaml) was read as
    OpenRL's and the run refused before it started. Both are restarted as they were now."""
    run_dir, seen = tmp_path / "run", tmp_path / "argv"
    code = ("import argparse, os, sys; p = argparse.ArgumentParser(); p.add_argument('--run_dir'); "
            "p.add_argument('--safe_config'); p.parse_args(); "
            f"open({str(seen)!r}, 'a').write(repr(sys.argv[1:]) + '\\n'); "
            "os.environ.get('WATCHDOG_RESTART') or os._exit(3)")
    extra = [] if safe is None else ["--safe_config", str(REPO / "cfgs" / safe)]
    proc = supervise("--max-restarts", "1", "--", sys.executable, "-c", code, "--run_dir", str(run_dir), *extra)
    assert proc.returncode == 0, proc.stderr
    assert seen.read_text().splitlines() == [repr(["--run_dir", str(run_dir), *extra])] * 2
    restart, = events_of(run_dir, "restart")
    assert restart["config"] is None and "restarting the same command unchanged" in proc.stderr


@pytest.mark.parametrize(("cmd", "openrl"), [
    (["python", "openrl_ws/train.py", "--watchdog"], True),
    (["python", "./openrl_ws/train.py", "--task", "go1push_mid"], True),  # a MAPush command line
    (["python", "-m", "openrl_ws.train"], True),
    # every example has a --run_dir too: not OpenRL's (until session 27 it was, and a restart added a --config
    # the script refused; an integration's --safe_config was refused as OpenRL's before the run started)
    (["python", "my_train.py", "--run_dir", "r"], False),
    (["python", "examples/rsl_rl_ppo.py", "--watchdog", "--run_dir", "r", "--safe_config", "cfgs/rsl_rl_safe.yaml"],
     False),
    (["python", "scripts/rsl_rl/train.py", "--task", "Isaac-Velocity-Flat-Anymal-D-v0", "--checkpoint", "m.pt"], False),
    (["python", "train_sb3.py"], False),
])
def test_only_openrl_commands_have_their_flags_rewritten(cmd, openrl):
    assert is_openrl_command(cmd) is openrl


def test_missing_run_dir_is_one_line_exit_2():
    proc = supervise("--", sys.executable, "-c", "pass")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--run-dir" in proc.stderr and "--run_dir" in proc.stderr


# --------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(("cmd", "expected"), [
    (["train.py", "--seed", "1"], ["train.py", "--seed", "1", "--checkpoint", "C"]),
    (["train.py", "--checkpoint", "old", "--seed", "1"], ["train.py", "--seed", "1", "--checkpoint", "C"]),
    (["train.py", "--checkpoint=old", "--seed", "1"], ["train.py", "--seed", "1", "--checkpoint", "C"]),
    (["train.py", "--checkpoint", "runs/None", "--checkpoint_dir", "x"],  # MAPush's "no checkpoint"
     ["train.py", "--checkpoint_dir", "x", "--checkpoint", "C"]),
])
def test_set_flag_rewrites_or_appends(cmd, expected):
    assert set_flag(cmd, "--checkpoint", "C") == expected


def test_restart_command_of_a_mapush_style_line_only_touches_checkpoint_and_config():
    cmd = ["python", "openrl_ws/train.py", "--num_envs", "500", "--train_timesteps", "100000000", "--algo", "ppo",
           "--config", "cfgs/ppo.yaml", "--exp_name", "cuboid", "--checkpoint", "results/None", "--headless"]
    out = restart_command(cmd, RestartPoint(Path("ck"), "openrl", None, 10), Path("safe.yaml"))
    assert out == ["python", "openrl_ws/train.py", "--num_envs", "500", "--train_timesteps", "100000000", "--algo",
                   "ppo", "--exp_name", "cuboid", "--headless", "--checkpoint", "ck", "--config", "safe.yaml"]
    scratch = restart_command(cmd, RestartPoint(None, "scratch"), Path("s.yaml"))
    assert get_flag(scratch, "--checkpoint") == "results/None" and scratch[-2:] == ["--config", "s.yaml"]


def test_run_dir_comes_from_the_option_or_the_command():
    assert run_dir_of(["t", "--run_dir", "a"], None) == Path("a")
    assert run_dir_of(["t", "--run_dir=a"], "./a") == Path("./a")
    assert run_dir_of(["t"], "b") == Path("b")
    with pytest.raises(InputError):
        run_dir_of(["t"], None)


def test_an_openrl_command_without_its_own_run_dir_gets_the_supervisors():
    """The review of session 22: `watchdog run --run-dir A -- python openrl_ws/train.py ...` trained into
    results/<date>_<exp> while the supervisor read A."""
    cmd = ["python", "openrl_ws/train.py", "--watchdog"]
    assert with_run_dir(cmd, Path("A")) == [*cmd, "--run_dir", "A"]
    assert with_run_dir([*cmd, "--run_dir=A"], Path("A")) == [*cmd, "--run_dir=A"]
    assert with_run_dir(["python", "train_sb3.py"], Path("A")) == ["python", "train_sb3.py"]  # (told by the environment)


def test_two_run_dirs_are_one_line_exit_2_before_the_command_runs(tmp_path):
    """`--run-dir A -- train.py --run_dir B` (a helper's audit, session 22): the supervisor looked for checkpoints in A
    while the training wrote B; the crashed run was restarted from scratch into B over its own checkpoints."""
    marker = tmp_path / "ran"
    proc = supervise("--run-dir", str(tmp_path / "a"), "--", sys.executable, "-c",
                     f"open({str(marker)!r}, 'w')", "--run_dir", str(tmp_path / "b"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "two run directories" in proc.stderr and str(tmp_path / "b") in proc.stderr
    assert not marker.exists() and not (tmp_path / "a").exists()


def test_safe_config_is_merged_over_the_commands_own_config_keeping_its_start_up_keys(tmp_path):
    from watchdog.config import load_ppo_config

    base = tmp_path / "ppo.yaml"
    base.write_text("lr: 5.0e-3\nepisode_length: 100\nlog_interval: 5\n")
    cfg = load_ppo_config(safe_config_for(["t", "--config", str(base)], SAFE, tmp_path / "run"))
    # the safe hyper-parameters; the run's own rollout length (ppo_safe.yaml says 200)
    assert (cfg.lr, cfg.critic_lr, cfg.episode_length, cfg.max_grad_norm) == (3e-4, 3e-4, 100, 0.5)
    # no config of its own: OpenRL's defaults stay for the start-up keys
    cfg = load_ppo_config(safe_config_for(["t"], SAFE, tmp_path / "run2"))
    assert (cfg.lr, cfg.max_grad_norm, cfg.episode_length, cfg.use_valuenorm) == (3e-4, 0.5, None, None)


def test_a_restart_never_trains_faster_than_the_run_did(tmp_path):
    """Found by an audit (session 21): a run at lr 1e-4 was restarted at the safe config's 3e-4, three times its own,
    in the middle of a recovery (an in-process rollback took min(safe, own) since session 20)."""
    from watchdog.config import load_ppo_config

    base = tmp_path / "low.yaml"
    base.write_text("lr: 1.0e-4\ncritic_lr: 2.0e-4\n")
    cfg = load_ppo_config(safe_config_for(["t", "--config", str(base)], SAFE, tmp_path / "run"))
    assert (cfg.lr, cfg.critic_lr, cfg.max_grad_norm) == (1e-4, 2e-4, 0.5)  # the rest of the safe config applies
    lowest = tmp_path / "safe_low.yaml"  # OpenRL's default lr (5e-4, no config given) against a safe config above it
    lowest.write_text("lr: 1.0e-3\ncritic_lr: 1.0e-4\n")
    cfg = load_ppo_config(safe_config_for(["t"], lowest, tmp_path / "run2"))
    assert (cfg.lr, cfg.critic_lr) == (5e-4, 1e-4)
    lowest.write_text("lr:\nmax_grad_norm: 0.5\n")  # left empty: the run's own, as a rollback's switch keeps it
    cfg = load_ppo_config(safe_config_for(["t", "--config", str(base)], lowest, tmp_path / "run3"))
    assert (cfg.lr, cfg.max_grad_norm) == (1e-4, 0.5)


def test_a_restart_takes_the_trainings_own_safe_config_and_two_different_ones_are_one_line(tmp_path, capsys):
    from watchdog.cli import main
    from watchdog.supervise import DEFAULT_SAFE_CONFIG, with_safe_config

    own = tmp_path / "own_safe.yaml"
    own.write_text("lr: 1.0e-4\n")
    train = ["python", "openrl_ws/train.py", "--watchdog"]
    assert with_safe_config([*train, "--safe_config", str(own)], None) == ([*train, "--safe_config", str(own)], own)
    assert with_safe_config([*train, f"--safe_config={own}"], str(own))[1] == own  # the same file twice: fine
    assert with_safe_config(train, None) == (train, DEFAULT_SAFE_CONFIG)
    # --safe-config alone goes to train.py too, so its own rollbacks switch to it (a review of session 19: they used
    # train.py's default while its restarts used the given one)
    assert with_safe_config(train, str(own)) == ([*train, "--safe_config", str(own)], own)
    loop = ["python", "my_loop.py", "--safe_config", str(own)]  # not ours: left as it is
    assert with_safe_config(loop, None) == (loop, DEFAULT_SAFE_CONFIG)
    assert main(["run", "--safe-config", str(SAFE), "--run-dir", str(tmp_path / "run"), "--", sys.executable,
                 "openrl_ws/train.py", "--safe_config", str(own)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "two safe configs" in err[0] and str(own) in err[0], err
    assert not (tmp_path / "run" / "watchdog_events.jsonl").exists()  # the training never started


def test_one_budget_spans_rollbacks_and_restarts(tmp_path):
    # the run already spent two rollbacks in-process; the budget is 3: one restart, then give up
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    wd_cfg = tmp_path / "wd.yaml"
    wd_cfg.write_text("policy:\n  rollback_budget: 3\n")
    (run_dir / EVENTS_FILENAME).write_text("".join(
        f'{{"event": "rollback", "iteration": {i}, "env_steps": 0, "state": "rolled_back", "time": 0}}\n' for i in (5, 9)))
    proc = supervise("--max-restarts", "5", *child("import os; os._exit(3)", run_dir, "--watchdog",
                                                   "--watchdog_config", str(wd_cfg)))
    assert proc.returncode == 1
    assert [r["attempt"] for r in events_of(run_dir, "restart")] == [1]
    assert "rollback budget (3) spent by 3 rollbacks and restarts" in proc.stderr.strip().splitlines()[-1]


class _FakeOpenRLModule:  # pickled by reference; read back as an inert stand-in
    def __init__(self, fill: float):
        lin = torch.nn.Linear(2, 2)
        with torch.no_grad():
            lin.weight.fill_(fill)
        self.models = {"policy": lin}
        self.optimizers = {}


def _save_module(run_dir: Path, steps: int, fill: float) -> Path:
    path = run_dir / "checkpoints" / f"rl_model_{steps}_steps"
    path.mkdir(parents=True)
    torch.save(_FakeOpenRLModule(fill), path / "module.pt")
    return path


def test_checkpoint_choice_prefers_verified_stable_then_finite_openrl_then_scratch(tmp_path):
    run = tmp_path / "run"
    assert choose_restart_point(run) == RestartPoint(None, "scratch")
    good = _save_module(run, 100, 1.0)
    _save_module(run, 200, float("nan"))  # newer but diverged: skipped
    assert choose_restart_point(run) == RestartPoint(good, "openrl", None, 100)
    store = CheckpointStore(run / "checkpoints" / "watchdog")
    older = store.save("stable_50_steps", {"w": torch.ones(2)}, {"iteration": 5, "env_steps": 50}).path
    newer = store.save("stable_60_steps", {"w": torch.ones(2)}, {"iteration": 6, "env_steps": 60}).path
    (newer / "state.pt").write_bytes(b"torn")  # fails its sha256: fall back to the older one
    assert choose_restart_point(run) == RestartPoint(older, "stable", 5, 50)


def test_flags_a_run_could_only_trip_over_hours_in_are_refused_at_start(tmp_path, capsys):
    """A safe config OpenRL's train.py could not read (it is read at the first restart), a NaN --stall-seconds (it
    turned the stall detector off) and a file given as the run directory: each a one-line error, exit 2, and the
    command never started."""
    from watchdog.cli import main

    flag = tmp_path / "started"
    cmd = ["--", sys.executable, "-c", f"open({str(flag)!r}, 'w')", "--run_dir", str(tmp_path / "run")]
    bad_safe = tmp_path / "safe.yaml"
    bad_safe.write_text("lr: [not, a, number]\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for args, said in ((["--safe-config", str(bad_safe), "--run-dir", str(tmp_path / "run"),
                         "--", sys.executable, "openrl_ws/train.py", "--run_dir", str(tmp_path / "run")], "lr"),
                       (["--stall-seconds", "nan", *cmd], "--stall-seconds must be a number > 0"),
                       (["--run-dir", str(a_file), *cmd[:-2]], f"is a file, not a run directory (pass the folder it is in: {tmp_path})"),
                       # a folder the system refuses even to root (said at the first restart until session 22)
                       (["--run-dir", "/proc/x", *cmd[:-2]], "--run-dir: cannot write in this folder")):
        assert main(["run", *args]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not flag.exists()


def test_a_run_dir_the_supervisor_cannot_write_in_is_said_before_the_command_runs(tmp_path, capsys):
    """Its restart events would go there: the first restart, maybe hours in, was a traceback (until session 17).
    (A folder where the event log would be stands in for a read-only mount, which root could write.)"""
    from watchdog.cli import main

    (tmp_path / "run" / "watchdog_events.jsonl").mkdir(parents=True)
    marker = tmp_path / "ran"
    assert main(["run", "--run-dir", str(tmp_path / "run"), "--", sys.executable, "-c",
                 f"open({str(marker)!r}, 'w')"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not marker.exists()
