"""Other frameworks' logs: layouts, tag maps, step axes, the value-loss rule, checkpoints, replay and watch.

The event files under tests/data/frameworks/ were written by the real libraries (see its README and
make_runs.py); every faulted run's fault starts at iteration 70.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from watchdog.cli import main
from watchdog.config import TagsConfig, WatchdogConfig
from watchdog.console import WatchdogConsole
from watchdog.errors import ConfigError
from watchdog.frameworks import RecordAssembler, config_for_run, detect
from watchdog.replay import UNRECOGNISED, find_run_dirs, load_run, replay_run
from watchdog.signals import EPISODE_RETURN, LOG_STD_MEAN, POLICY_ENTROPY, VALUE_LOSS
from watchdog.tfevents import ScalarWriter
from watchdog.watch import Watcher

DATA = Path(__file__).resolve().parents[1] / "data" / "frameworks"
SB3_ZOO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "more_runs" / "sb3"
FAULT_IT = 70

# run folder (below DATA), framework label, step unit, signals absent, value-loss rule
RUNS = [
    ("sb3/cartpole_healthy/PPO_1", "sb3", "env steps", ["critic grad norm", "policy std"], False),
    ("sb3/pendulum_healthy/PPO_1", "sb3", "env steps", ["critic grad norm"], False),
    ("cleanrl/cartpole_healthy/runs/CartPole-v1__ppo__1__1700000000", "cleanrl", "env steps",
     ["critic grad norm", "policy std"], False),
    ("rsl_rl/push_lite_healthy/logs/2026-11-30_06-00-00", "rsl_rl v5+", "iterations", ["critic grad norm"], False),
    ("skrl/pendulum_healthy/runs/26-11-30_06-00-00-000000_PPO", "skrl", "timesteps", ["critic grad norm"], False),
    ("rl_games/pendulum_healthy/runs/pendulum_ppo", "rl_games", "env steps", ["critic grad norm", "policy std"], True),
]
FAULTED = [
    # run folder, recommended checkpoint (file name) or None, a string its resume command holds
    ("sb3/cartpole_fault/PPO_1", "rl_model_2560_steps.zip", "PPO.load("),
    ("cleanrl/cartpole_fault/runs/CartPole-v1__ppo__1__1700000000", None, None),
    ("rsl_rl/push_lite_fault/logs/2026-11-30_06-00-00", "model_50.pt",
     "rsl_rl/train.py --task <TASK> --resume --load_run 2026-11-30_06-00-00 --checkpoint model_50.pt"),
    ("skrl/pendulum_fault/runs/26-11-30_06-00-00-000000_PPO", "agent_1600.pt", "skrl/train.py --task <TASK> --checkpoint"),
    ("rl_games/pendulum_fault/runs/pendulum_ppo", "last_pendulum_ep_50_rew_-1172.7554.pth",
     "rl_games/train.py --task <TASK> --checkpoint"),
]


# --------------------------------------------------------------------------------------------- detection


@pytest.mark.parametrize(("tags", "framework", "version"), [
    (["Loss/value_function", "Loss/surrogate", "Policy/mean_noise_std", "Train/mean_reward"], "rsl_rl", "v1-v3"),
    (["Loss/value", "Loss/surrogate", "Policy/mean_noise_std", "Train/mean_reward"], "rsl_rl", "v4"),
    (["Loss/value", "Loss/surrogate", "Policy/mean_std", "Train/mean_reward"], "rsl_rl", "v5+"),
    (["train/value_loss", "train/policy_gradient_loss", "train/entropy_loss", "rollout/ep_rew_mean"], "sb3", None),
    (["rollout/ep_rew_mean", "time/fps"], "sb3", None),  # SB3's first dump, before any update
    (["losses/value_loss", "losses/policy_loss", "charts/episodic_return"], "cleanrl", None),
    (["losses/c_loss", "losses/a_loss", "rewards/step", "rewards/iter"], "rl_games", None),
    (["Loss / Value loss", "Loss / Policy loss", "Reward / Total reward (mean)"], "skrl", None),
    (["Loss / Value loss (agent_0)", "Loss / Value loss (agent_1)", "Policy / Standard deviation (agent_0)"],
     "skrl", None),
    (["value_loss", "critic_grad_norm", "average_step_reward"], "openrl", None),  # OpenRL's bare names
    (["train/value_loss", "train/critic_grad_norm", "rollout/average_step_reward"], "openrl", None),  # ours
    (["foo/bar", "Perf/total_fps"], "unknown", None),
])
def test_the_framework_is_named_from_its_tags(tags, framework, version):
    det = detect(tags)
    assert (det.framework, det.version) == (framework, version)


def test_skrl_agents_map_to_one_key_and_are_averaged():
    det = detect(["Loss / Value loss (agent_0)", "Loss / Value loss (agent_1)"])
    asm = RecordAssembler(det)
    asm.feed("Loss / Value loss (agent_0)", [32, 64], [1.0, 3.0])
    asm.feed("Loss / Value loss (agent_1)", [32, 64], [3.0, 5.0])
    assert [(r.iteration, r.metrics[VALUE_LOSS]) for r in asm.records(final=True)] == [(0, 2.0), (1, 4.0)]


def test_values_are_put_in_our_keys_conventions():
    """SB3's entropy_loss is -entropy; a std becomes the log-std the policy_std detector reads."""
    det = detect(["train/value_loss", "train/entropy_loss", "train/std"])
    asm = RecordAssembler(det)
    for tag, value in (("train/value_loss", 1.0), ("train/entropy_loss", -1.4), ("train/std", 1.0)):
        asm.feed(tag, [64], [value])
    (rec,) = asm.records(final=True)
    assert rec.metrics == {VALUE_LOSS: 1.0, POLICY_ENTROPY: 1.4, LOG_STD_MEAN: 0.0}


def test_points_between_iterations_join_the_next_one():
    """CleanRL logs each finished episode at its own global_step; the losses once per iteration. Each
    episode's point is the mean return so far (10, 15, 20, 27.5); an iteration averages its points."""
    det = detect(["losses/value_loss", "charts/episodic_return"])
    asm = RecordAssembler(det)
    asm.feed("charts/episodic_return", [40, 100, 130, 250], [10.0, 20.0, 30.0, 50.0])
    asm.feed("losses/value_loss", [128, 256], [1.0, 2.0])
    records = asm.records(final=True)
    assert [(r.iteration, r.env_steps, r.metrics[EPISODE_RETURN]) for r in records] == [(0, 128, 12.5), (1, 256, 23.75)]


def test_a_return_logged_per_episode_is_read_as_the_mean_of_the_last_100_episodes():
    """CleanRL's charts/episodic_return is one episode's return; SB3, rsl_rl and rl_games log the mean of the
    last 100. Fed in pieces (watch) or at once (replay), each point is that mean; a NaN episode makes the
    100 means whose window holds it NaN (as the frameworks' own mean would be), and the ones after are finite."""
    returns = [float(i) for i in range(1, 251)]
    returns[120] = float("nan")
    steps = list(range(1, 251))
    expected = [sum(returns[max(0, i - 99):i + 1]) / min(i + 1, 100) for i in range(250)]

    def read(pieces):
        asm = RecordAssembler(detect(["losses/value_loss", "charts/episodic_return"]))
        for a, b in pieces:
            asm.feed("charts/episodic_return", steps[a:b], returns[a:b])
        asm.feed("losses/value_loss", steps, [1.0] * 250)
        return [r.metrics[EPISODE_RETURN] for r in asm.records(final=True)]

    for got in (read([(0, 250)]), read([(0, 7), (7, 130), (130, 250)])):
        assert got[:120] == pytest.approx(expected[:120])
        assert all(v != v for v in got[120:220]) and got[220:] == pytest.approx(expected[220:])
        assert got[249] == pytest.approx(sum(range(151, 251)) / 100)


def test_rl_games_followed_from_its_first_epoch_at_frame_0_numbers_iterations_as_replay_does():
    """rl_games logs its first epoch at frame 0. A follower's first poll can hold that point alone (no step size
    yet); the next epochs still count from it: 0, 1, 2 (it was 0, 0, 1 until session 14)."""
    tags = ["losses/c_loss", "rewards/step"]

    def iterations(pieces):
        asm = RecordAssembler(detect(tags))
        out = []
        for steps in pieces:
            asm.feed("losses/c_loss", steps, [1.0] * len(steps))
            out += [(r.iteration, r.env_steps) for r in asm.records(final=False)]
        return out + [(r.iteration, r.env_steps) for r in asm.records(final=True)]

    whole = iterations([[0, 256, 512]])
    assert whole == [(0, 0), (1, 256), (2, 512)]
    assert iterations([[0], [256], [512]]) == iterations([[0, 256], [512]]) == whole


def test_rl_games_c_loss_zeros_beside_a_central_value_net_read_its_cval_loss_as_they_arrive():
    """``use_experimental_cv: False``: c_loss is 0 every epoch; the k-th trained epoch's 0 becomes the k-th
    cval_loss (written first, in the same epoch). A NaN c_loss (an epoch that failed before its critic trained)
    has no cval; a c_loss that is not 0 is the actor-critic's own value loss and stays."""
    from watchdog.frameworks import CriticLoss

    whole = CriticLoss()
    whole.note_cval([0.5, 0.6, 0.7])
    assert whole.c_loss([0.0, float("nan"), 0.0, 0.3]).tolist()[2:] == [0.6, 0.3]
    assert whole.swapped == 2
    live = CriticLoss()
    got = []
    for cval, c_loss in (([0.5], [0.0]), ([0.6], [float("nan"), 0.0]), ([], [0.0])):  # the 3rd's cval not yet read
        live.note_cval(cval)
        got += live.c_loss(c_loss).tolist()
    assert got[0] == 0.5 and got[2] == 0.6 and got[3] == 0.0 and live.swapped == 2


def test_a_user_tag_map_reads_any_other_framework():
    det = detect(["my/critic_mse", "my/return"], user_map={"my/critic_mse": VALUE_LOSS, "my/return": EPISODE_RETURN})
    assert det.framework == "custom" and det.target("my/critic_mse") == (VALUE_LOSS, None)


def test_a_tag_map_to_an_unknown_key_is_a_one_line_config_error(tmp_path):
    bad = tmp_path / "watchdog.yaml"
    bad.write_text("tags:\n  map: {'losses/vf': train/valu_loss}\n")
    with pytest.raises(ConfigError, match="not a metric key we read"):
        from watchdog.config import load_watchdog_config

        load_watchdog_config(bad)
    assert main(["check", str(bad)]) == 2


# --------------------------------------------------------------------------------------------- layouts


def test_every_layout_is_found_below_a_parent_folder():
    runs = {str(p.relative_to(DATA)) for p in find_run_dirs([DATA])}
    assert runs == {r for r, *_ in RUNS} | {r for r, *_ in FAULTED}


def test_a_run_moved_under_a_logs_folder_is_still_read_and_not_called_healthy(tmp_path):
    """The issue's case: an rsl_rl run under ``X/logs/<run>/`` used to replay as HEALTHY (no tag known)."""
    src = DATA / "rsl_rl" / "push_lite_fault" / "logs" / "2026-11-30_06-00-00"
    shutil.copytree(src, tmp_path / "X" / "logs" / "run1")
    (run,) = find_run_dirs([tmp_path / "X"])
    assert run == tmp_path / "X" / "logs" / "run1"
    assert replay_run(run).verdict == "diverged"


def test_a_folder_of_runs_with_a_log_txt_of_its_own_is_its_runs_not_one_merged_run(tmp_path):
    """A sweep's folder with its console output in ``log.txt`` (until session 20: one run, the TensorBoard files of
    every run below it merged into one timeline: a healthy and a faulted SB3 run replayed as one DIVERGED run)."""
    sweep = tmp_path / "sweep"
    for name in ("cartpole_healthy", "cartpole_fault"):
        shutil.copytree(DATA / "sb3" / name, sweep / name)
    (sweep / "log.txt").write_text("sweep of 2 seeds started\n")
    runs = {p.parent.name: p for p in find_run_dirs([sweep])}  # (each SB3 run is its PPO_1/)
    assert sorted(runs) == ["cartpole_fault", "cartpole_healthy"]
    assert {name: replay_run(p).verdict for name, p in runs.items()} == \
        {"cartpole_fault": "diverged", "cartpole_healthy": "healthy"}
    watcher = Watcher(sweep, console=WatchdogConsole(rich=False))  # watch sees the folder of runs alike
    watcher.poll()
    watcher.flush()
    assert watcher.fleet and sorted(r.name for r in watcher.runs) == ["cartpole_fault/PPO_1", "cartpole_healthy/PPO_1"]
    watcher.close()
    # OpenRL's own log.txt, with no TensorBoard and nothing but checkpoints below it, is still a run
    (tmp_path / "openrl" / "checkpoints" / "rl_model_64_steps").mkdir(parents=True)
    (tmp_path / "openrl" / "log.txt").write_text("")
    assert find_run_dirs([tmp_path / "openrl"]) == [tmp_path / "openrl"]


def test_a_resumed_run_merges_its_event_files_and_keeps_the_restart_as_a_segment(tmp_path):
    run = tmp_path / "PPO_1"
    for suffix, its, t0 in ((".0", range(1, 11), 1000.0), (".1", range(6, 16), 2000.0)):  # resumed at step 320
        with ScalarWriter(run, filename_suffix=suffix) as w:
            for it in its:
                for tag in ("train/value_loss", "train/policy_gradient_loss"):
                    w.add_scalar(tag, 1.0, it * 64, wall_time=t0 + it)
    data = load_run(run)
    assert data.info["framework"] == "sb3" and len(data.records) == 20
    steps = [r.env_steps for r in data.records]
    assert steps[:10] == sorted(steps[:10]) and steps[10] == 6 * 64  # the second segment restarts


# --------------------------------------------------------------------------------------------- replay


@pytest.mark.parametrize(("run", "framework", "unit", "absent", "rule"), RUNS)
def test_healthy_runs_of_every_framework_replay_healthy(run, framework, unit, absent, rule):
    report = replay_run(DATA / run)
    assert report.verdict == "healthy", report.events
    info = report.to_dict()
    assert (info["framework"], info["step_unit"], info["signals_absent"], info["value_loss_rule"]) == \
        (framework, unit, absent, rule)
    assert "value loss" in info["signals_found"] and "reward" in info["signals_found"]


@pytest.mark.parametrize(("run", "checkpoint", "resume"), FAULTED)
def test_faulted_runs_diverge_with_the_onset_within_two_points(run, checkpoint, resume):
    report = replay_run(DATA / run)
    assert report.verdict == "diverged"
    assert abs(report.onset["iteration"] - FAULT_IT) <= 2, report.onset
    if checkpoint is None:
        assert report.recommended_checkpoint is None
        return
    assert Path(report.recommended_checkpoint["path"]).name == checkpoint
    assert resume in report.resume_command
    assert all(r["step"] > report.recommended_checkpoint["step"] for r in report.rejected_checkpoints)


def test_a_resume_command_runs_from_anywhere_whatever_the_run_folder_is_called(tmp_path, monkeypatch):
    """Found by a review (session 27): the resume commands replay prints held their paths unquoted and relative to
    where replay ran (a space split them; run elsewhere they named another folder); a quote in the path made SB3's
    `-c` code a SyntaxError; an rsl_rl run replayed as `.` or through a link gave `--load_run` nothing or the
    link's name. They are shell commands now: split, they give the absolute paths, and SB3's code compiles."""
    import os
    import shlex

    odd = tmp_path / "bob's runs" / "a b"
    for run in ("sb3/cartpole_fault", "rsl_rl/push_lite_fault", "rl_games/pendulum_fault"):
        shutil.copytree(DATA / run, odd / run)
    monkeypatch.chdir(odd)
    sb3 = shlex.split(replay_run(Path("sb3/cartpole_fault/PPO_1")).resume_command.split("  #")[0])
    code = sb3[sb3.index("-c") + 1]
    compile(code, "resume", "exec")
    assert str(odd / "sb3/cartpole_fault/PPO_1/checkpoints/rl_model_2560_steps.zip") in code
    games = shlex.split(replay_run(Path("rl_games/pendulum_fault/runs/pendulum_ppo")).resume_command)
    assert Path(games[games.index("--checkpoint") + 1]).is_absolute()
    assert Path(games[games.index("--checkpoint") + 1]).is_file()
    run = odd / "rsl_rl/push_lite_fault/logs/2026-11-30_06-00-00"
    (tmp_path / "latest").symlink_to(run)
    for name in (".", str(tmp_path / "latest")):
        os.chdir(run)
        rsl = shlex.split(replay_run(Path(name)).resume_command)
        assert rsl[rsl.index("--load_run") + 1] == "2026-11-30_06-00-00", rsl


def test_onsets_are_on_the_frameworks_own_step_axis():
    """rsl_rl counts iterations (the onset's step is the iteration); SB3 counts env steps (64 an iteration)."""
    rsl = replay_run(DATA / FAULTED[2][0]).onset
    sb3 = replay_run(DATA / FAULTED[0][0]).onset
    assert rsl["step"] == rsl["iteration"]
    assert sb3["step"] == (sb3["iteration"] + 2) * 64  # SB3's first update is logged at its second dump


@pytest.mark.parametrize(("override", "expected"), [
    ({}, False),  # SB3: value targets not normalised -> only the scale-free detectors decide
    ({"tags": {"value_targets_normalized": True}}, True),  # the user says they are
])
def test_the_absolute_value_loss_rule_follows_value_normalisation(override, expected):
    data = load_run(DATA / RUNS[1][0])
    cfg = WatchdogConfig.model_validate(override)
    assert config_for_run(cfg, data.info).value_loss.enabled is expected
    assert cfg.value_loss.enabled  # the caller's config is never changed


def test_value_loss_enabled_false_is_always_off_even_where_values_are_normalised():
    data = load_run(DATA / RUNS[5][0])  # rl_games, normalize_value: True
    assert config_for_run(WatchdogConfig(), data.info).value_loss.enabled
    off = WatchdogConfig.model_validate({"value_loss": {"enabled": False}})
    assert not config_for_run(off, data.info).value_loss.enabled


def test_a_run_with_no_tracked_signal_is_unrecognised_with_its_tags_and_exit_2(tmp_path, capsys):
    with ScalarWriter(tmp_path / "run1") as w:
        for step in range(1, 100):
            w.add_scalar("Perf/total_fps", 1000.0, step)
    assert replay_run(tmp_path / "run1").verdict == UNRECOGNISED
    assert main(["replay", str(tmp_path / "run1"), "--json"]) == 2
    (out,) = json.loads(capsys.readouterr().out)["runs"]
    assert out["verdict"] == UNRECOGNISED and out["tags_seen"] == ["Perf/total_fps"]


def test_a_user_tag_map_in_the_config_makes_such_a_run_readable(tmp_path):
    with ScalarWriter(tmp_path / "run1") as w:
        for step in range(1, 100):
            w.add_scalar("my/critic_mse", 0.5, step * 10)
    cfg = WatchdogConfig(tags=TagsConfig(map={"my/critic_mse": VALUE_LOSS}))
    report = replay_run(tmp_path / "run1", cfg)
    assert report.verdict == "healthy" and report.iterations == 99


def test_replay_cli_names_framework_unit_and_absent_signals(capsys):
    assert main(["replay", str(DATA / RUNS[0][0])]) == 0
    out = capsys.readouterr().out
    assert "framework: sb3; steps are env steps" in out
    assert "absent, their detectors see nothing: critic grad norm, policy std" in out
    assert "absolute value-loss rule off (sb3: value targets not normalised)" in out


# --------------------------------------------------------------------------------------------- real SB3 zoo runs


@pytest.mark.skipif(not SB3_ZOO.is_dir(), reason="../shared/data/more_runs/sb3 not checked out")
@pytest.mark.parametrize("run", ["Acrobot-v1_1", "Acrobot-v1_2", "Acrobot-v1_3",
                                 "Pendulum-v0_1", "Pendulum-v0_2", "Pendulum-v0_3"])
def test_real_sb3_zoo_runs_replay_healthy_with_the_absolute_rule_off(run):
    report = replay_run(SB3_ZOO / run)
    assert report.verdict == "healthy" and report.run_info["value_loss_rule"] is False


# --------------------------------------------------------------------------------------------- watch


def _grow(src: Path, dst: Path, parts: int):
    """Copy ``src``'s event file into ``dst`` in ``parts`` chunks of bytes (cut anywhere), one per yield."""
    (event,) = [p for p in src.iterdir() if p.name.startswith("events.out.tfevents.")]
    data = event.read_bytes()
    dst.mkdir(parents=True)
    target = dst / event.name
    for i in range(1, parts + 1):
        target.write_bytes(data[: len(data) * i // parts])
        yield


@pytest.mark.parametrize(("run", "parts"), [(FAULTED[0][0], 7), (FAULTED[2][0], 5), (FAULTED[3][0], 9)])
def test_watch_follows_a_growing_run_of_another_framework_and_alarms_after_the_fault(tmp_path, run, parts):
    dst = tmp_path / "run"
    watcher = None
    for _ in _grow(DATA / run, dst, parts):
        watcher = watcher or Watcher(dst, console=WatchdogConsole(rich=False), fleet=False)
        watcher.poll()
    watcher.flush()
    (watched,) = watcher.runs
    assert not watched.wd.cfg.value_loss.enabled  # the run's config was adopted
    events = [json.loads(line) for line in (dst / "watchdog_watch_events.jsonl").read_text().splitlines()]
    alarms = [e for e in events if e["event"] == "alarm"]
    assert alarms and FAULT_IT <= alarms[0]["iteration"] <= FAULT_IT + 5
    watcher.close()


@pytest.mark.parametrize(("run", "safe"), [("rsl_rl/push_lite_fault", "cfgs/rsl_rl_safe.yaml"),
                                          ("sb3/cartpole_fault", "cfgs/sb3_safe.yaml"),
                                          ("skrl/pendulum_fault", "cfgs/skrl_safe.yaml")])
def test_replay_says_each_framework_would_switch_to_its_own_safe_config(run, safe):
    report = replay_run(DATA / run)
    assert report.verdict == "diverged" and {e["config"] for e in report.events if e["event"] == "rollback"} == {safe}


def test_watch_follows_a_fleet_of_nested_runs_of_every_framework(tmp_path):
    shutil.copytree(DATA, tmp_path / "fleet", ignore=shutil.ignore_patterns("*.py", "*.md"))
    watcher = Watcher(tmp_path / "fleet", console=WatchdogConsole(rich=False))
    watcher.poll()
    watcher.flush()
    states = {r.name: r.state for r in watcher.runs}
    assert len(states) == len(RUNS) + len(FAULTED)
    assert {n for n, s in states.items() if s != "healthy"} == {r for r, *_ in FAULTED}
    watcher.close()


def test_watch_calls_a_run_without_a_tracked_signal_unrecognised_not_healthy(tmp_path):
    with ScalarWriter(tmp_path / "run1") as w:
        for step in range(1, 20):
            w.add_scalar("Perf/total_fps", 1000.0, step)
    watcher = Watcher(tmp_path / "run1", console=WatchdogConsole(rich=False), fleet=False)
    watcher.poll()
    watcher.flush()
    assert watcher.runs[0].state == UNRECOGNISED
    watcher.close()


@pytest.mark.parametrize("nan_at", [None, 60])
def test_a_known_frameworks_run_without_a_tracked_signal_gets_one_verdict_in_replay_and_watch(tmp_path, capsys, nan_at):
    """SB3's tags with none the detectors read for a verdict: no verdict (exit 2) from either command, "unrecognised"
    in watch's table too (it said "healthy", exit 0, until session 30); a NaN in its policy loss is a divergence in
    both (replay said "unrecognised" over it, exit 2, while watch raised the alarm)."""
    run = tmp_path / "run"
    with ScalarWriter(run / "PPO_1") as w:
        for i in range(1, 80):
            w.add_scalar("train/policy_gradient_loss", math.nan if nan_at and i >= nan_at else 0.01, i * 2048)
            w.add_scalar("train/learning_rate", 3e-4, i * 2048)
            w.add_scalar("time/fps", 1000.0, i * 2048)
    expected = 2 if nan_at is None else 1
    assert main(["replay", str(run), "--json"]) == expected
    (out,) = json.loads(capsys.readouterr().out)["runs"]
    assert out["verdict"] == (UNRECOGNISED if nan_at is None else "diverged")
    assert main(["watch", str(run), "--idle-exit", "0"]) == expected
    said = capsys.readouterr().out
    assert ("no tracked signal among its tags" in said) == (nan_at is None)
    end = json.loads((run / "PPO_1" / "watchdog_watch_events.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["verdict"] == (UNRECOGNISED if nan_at is None else "diverged")


def test_rl_games_best_checkpoint_is_placed_by_the_epoch_it_holds(tmp_path):
    """``nn/<name>.pth`` (saved on a new best reward) has no step in its name; its own ``epoch`` places it."""
    run = tmp_path / "pendulum_ppo"
    shutil.copytree(DATA / FAULTED[4][0], run)
    (named,) = run.glob("nn/last_pendulum_ep_50_*.pth")
    named.rename(run / "nn" / "pendulum.pth")
    report = replay_run(run)
    assert Path(report.recommended_checkpoint["path"]).name == "pendulum.pth"
    assert report.recommended_checkpoint["step"] == 49 * 128  # epoch 50 is logged at its start, frame 6272


@pytest.mark.parametrize(("params", "rule"), [
    ("agent:\n  value_preprocessor: RunningStandardScaler\n", True),  # Isaac Lab's skrl configs
    ("agent:\n  value_preprocessor: null\n", False),
])
def test_skrl_value_rule_follows_the_runs_value_preprocessor(tmp_path, params, rule):
    run = tmp_path / "run"
    shutil.copytree(DATA / RUNS[4][0], run)
    (run / "params").mkdir()
    (run / "params" / "agent.yaml").write_text(params)
    assert replay_run(run).run_info["value_loss_rule"] is rule


def test_a_skrl_run_written_every_few_updates_is_numbered_by_its_rollouts_in_replay_and_watch(tmp_path,
                                                                                        skrl_quiet_at_exit):
    """Isaac Lab's skrl runs write TensorBoard every `write_interval` timesteps (its `auto`: a hundred times a run);
    the logged steps' common divisor is that interval, and a 3,000-update run read as 100 iterations, every detector
    window 30x too long: a 50x value-loss blow-up replayed HEALTHY (until session 18). One iteration is the agent's
    `rollouts` (params/agent.yaml): a real skrl PPO run, 50 updates of 16 timesteps, written every 5 updates."""
    import gymnasium as gym
    import yaml
    from skrl.agents.torch.ppo import PPO, PPO_CFG
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.memories.torch import RandomMemory
    from skrl.trainers.torch import SequentialTrainer
    from skrl.utils import set_seed
    from torch import nn

    from tests.data.frameworks.make_runs import skrl_models
    from watchdog.watch import RunFollower

    set_seed(0)
    Policy, Value = skrl_models(lambda i, o: nn.Sequential(nn.Linear(i, 16), nn.ELU(), nn.Linear(16, o)))
    env = wrap_env(gym.vector.SyncVectorEnv([lambda: gym.make("Pendulum-v1") for _ in range(2)]))
    cfg = PPO_CFG(rollouts=16, learning_epochs=1, mini_batches=1)
    cfg.experiment.directory, cfg.experiment.experiment_name = str(tmp_path), "run"
    cfg.experiment.write_interval, cfg.experiment.checkpoint_interval = 80, 0
    agent = PPO(models={"policy": Policy(env.observation_space, env.action_space, env.device),
                        "value": Value(env.observation_space, env.action_space, env.device)},
                memory=RandomMemory(memory_size=16, num_envs=env.num_envs, device=env.device), cfg=cfg,
                observation_space=env.observation_space, action_space=env.action_space, device=env.device)
    SequentialTrainer(cfg={"timesteps": 800, "headless": True, "disable_progressbar": True}, env=env,
                      agents=agent).train()
    env.close()
    # what the process's exit does: skrl's writer queues up to 10 events for up to 120 s and writes them from a
    # thread. A fresh-clone CI run read 9 records of 10 here once (session 26); not reproduced in 7 tries, loaded or
    # not, so the cause is not confirmed: the flush makes the file whole before it is read either way
    agent.writer.flush()
    run = tmp_path / "run"
    assert [r.iteration for r in replay_run(run).records] == list(range(10))  # its log alone: one point, one iteration
    (run / "params").mkdir()
    (run / "params" / "agent.yaml").write_text(yaml.safe_dump({"agent": {"class": "PPO", "rollouts": 16}}))
    report = replay_run(run)
    assert [(r.iteration, r.env_steps) for r in report.records][:2] == [(4, 80), (9, 160)]
    assert [r.iteration for r in report.records] == list(range(4, 50, 5))
    follower = RunFollower(run)
    assert [r.iteration for r in follower.poll() + follower.poll(final=True)] == list(range(4, 50, 5))


def test_an_add_hparams_session_in_a_subfolder_is_not_part_of_the_series(tmp_path):
    """torch's SummaryWriter.add_hparams writes the final metrics it is given at step 0 into <run>/<time.time()>/:
    merged into the run they were a record at iteration 0, and a 200-iteration CleanRL run read 'up to it 0' (until
    session 18). A real writer's files; replay and watch leave the session out."""
    from torch.utils.tensorboard import SummaryWriter

    from watchdog.watch import RunFollower

    run = tmp_path / "runs" / "CartPole-v1__ppo__1__1700000000"
    writer = SummaryWriter(str(run))
    for i in range(200):
        step = (i + 1) * 512
        writer.add_scalar("losses/value_loss", 0.5, step)
        writer.add_scalar("losses/entropy", 0.6, step)
        writer.add_scalar("charts/episodic_return", 100.0 + i, step - 7)
    writer.add_hparams({"learning_rate": 2.5e-4}, {"losses/value_loss": 0.5, "charts/episodic_return": 299.0})
    writer.close()
    assert len(list(run.rglob("events.out.tfevents.*"))) == 2  # the run's and the session's
    report = replay_run(run)
    assert [r.iteration for r in report.records] == list(range(200)) and report.records[0].env_steps == 512
    follower = RunFollower(run)
    assert [r.iteration for r in follower.poll() + follower.poll(final=True)] == list(range(200))


def test_an_hparams_session_in_the_runs_own_file_keeps_the_run(tmp_path):
    """SB3's HParam (its docs' HParamCallback) and Lightning write the session into the run's own event file: that
    file is the run (found by a review of session 18's first cut, which left such a run with no readable metrics)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import HParam

    class HParamCallback(BaseCallback):
        def _on_training_start(self):
            self.logger.record("hparams", HParam({"lr": 3e-4}, {"train/value_loss": 0.0}),
                               exclude=("stdout", "log", "json", "csv"))

        def _on_step(self):
            return True

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu",
                tensorboard_log=str(tmp_path))
    model.learn(total_timesteps=64 * 12, callback=HParamCallback())
    report = replay_run(tmp_path / "PPO_1")
    assert report.source == "tensorboard" and len(report.records) == 11


def test_a_replayed_alarm_advises_in_every_frameworks_words(capsys):
    """Found by an audit (session 20): the advice after each alarm named OpenRL's keys and cfgs/ppo_safe.yaml under every
    framework's alarms (here rsl_rl's policy_collapse), beside a rollback line naming the framework's own safe config."""
    run = DATA.parent / "long_faults" / "rsl_rl" / "push_lite_lr_fault"
    assert main(["replay", str(run)]) == 1
    out = capsys.readouterr().out
    assert "policy_collapse" in out and "rsl_rl_safe.yaml" in out
    assert "cfgs/ppo_safe.yaml" not in out and "critic_lr" not in out
    assert "model_290.pt (290 iterations)" in out  # rsl_rl's checkpoints count iterations ('290 steps' until session 20)


def test_watch_started_on_a_sweeps_console_log_before_its_runs_watches_them_as_a_fleet(tmp_path):
    """From a review (session 20): `python sweep.py > sweep/log.txt`, watched before the runs appear, was one run whose
    runs' TensorBoard files merged into one timeline (a healthy and a faulted SB3 run: one 'diverged'). A log.txt with
    no OpenRL record yet leaves the folder undecided until records (one run) or runs (a fleet) appear."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "log.txt").write_text("sweep of 2 seeds started\n")
    watcher = Watcher(sweep, console=WatchdogConsole(rich=False))
    for name in ("cartpole_healthy", "cartpole_fault"):
        shutil.copytree(DATA / "sb3" / name, sweep / name)
    watcher.poll()
    watcher.flush()
    assert watcher.fleet and {r.name: r.state for r in watcher.runs} == {"cartpole_fault/PPO_1": "diverged",
                                                                         "cartpole_healthy/PPO_1": "healthy"}
    watcher.close()
    run = tmp_path / "openrl"  # an unwatched OpenRL run (log.txt only) is one run once its first block is written
    run.mkdir()
    (run / "log.txt").write_text("2024-10-15 23:06:26,228 [INFO] Episode: 0/1000\n")
    watcher = Watcher(run, console=WatchdogConsole(rich=False))
    assert not watcher.undecided and not watcher.fleet and [r.name for r in watcher.runs] == ["openrl"]
    watcher.close()
    # ...and one watched from its start, its log.txt empty (or a banner of more than 64 KiB) at the first polls, is
    # followed as one run once its records come (a review: the first version made it a folder of no runs)
    logged = (DATA.parent / "openrl_resumed" / "push_lite_resumed" / "log.txt").read_text()
    for name, first in (("empty", ""), ("banner", "Isaac Gym banner line\n" * 5000)):
        run = tmp_path / name
        run.mkdir()
        (run / "log.txt").write_text(first)
        watcher = Watcher(run, console=WatchdogConsole(rich=False))
        watcher.poll()
        (run / "log.txt").write_text(first + logged)
        for _ in range(3):
            watcher.poll()
        watcher.flush()
        assert not watcher.fleet and [(r.name, r.state) for r in watcher.runs] == [(name, "healthy")], name
        assert watcher.runs[0].last is not None and watcher.runs[0].last.iteration > 10
        watcher.close()
