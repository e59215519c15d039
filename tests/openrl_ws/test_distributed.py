"""Data-parallel PPO under torchrun: one watchdog decision on every rank.

2 gloo ranks on CPU everywhere; the NCCL tests at the end run on a CUDA machine (two ranks need two GPUs).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from openrl_ws.train import main
from watchdog.distributed import agree, is_distributed, reduce_record, world_size
from watchdog.eventlog import read_events
from watchdog.signals import MetricRecord

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "helpers"))
import dist_workers  # noqa: E402  (spawned children import it by name)

SMALL = ["--num_envs", "8", "--episode_length", "32", "--ppo_epoch", "2", "--hidden_size", "32"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(fn, *args, world: int = 2, timeout: float = 60) -> list[int | None]:
    """Start ``world`` spawned processes ``fn(rank, world, *args)``; their exit codes."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=fn, args=(r, world, *args)) for r in range(world)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    return codes


def torchrun(tmp_path: Path, *extra: str, iterations: int = 12, timeout: float = 180, ranks: int = 2):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port", str(free_port()),
           "openrl_ws/train.py", *SMALL, "--watchdog", "--run_dir", str(run_dir),
           "--train_timesteps", str(8 * 32 * iterations), *extra]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "WATCHDOG_DIST_TIMEOUT": "30"}
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, run_dir, time.monotonic() - start


# --- library helpers ---------------------------------------------------------------------------------


def test_helpers_are_noops_without_a_process_group():
    rec = MetricRecord(3, 96, {"train/value_loss": math.nan, "train/critic_grad_norm": 0.5})
    assert not is_distributed() and world_size() == 1
    assert reduce_record(rec) is rec
    assert agree(2, 7) == 2


def test_reduce_record_and_agree_on_two_gloo_ranks(tmp_path):
    assert run_ranks(dist_workers.reduce_worker, free_port(), str(tmp_path)) == [0, 0]
    r0, r1 = (json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1))
    assert r0 == r1  # every rank sees the same record and the same answers
    assert r0["distributed"] and (r0["iteration"], r0["env_steps"]) == (4, 1024)
    m = r0["metrics"]
    assert m["train/value_loss"] == "nan"  # NaN on rank 1 only -> NaN on both
    assert m["train/critic_grad_norm"] == pytest.approx(2.0)  # finite: the mean over ranks
    assert m["rollout/average_step_reward"] == "inf"  # +inf on one rank stays +inf
    assert m["train/policy_loss"] == "nan"  # +inf and -inf -> NaN
    assert m["extra/only_on_rank1"] == 7.0  # union of keys; mean over the ranks that have it
    assert r0["agree_same"] == 2
    assert "rollback target" in r0["agree_differs"] and "different iterations" in r0["position_mismatch"]


@pytest.mark.parametrize("mode", ["exit", "hang"])
def test_a_dead_or_stalled_peer_fails_the_collective_within_the_timeout(tmp_path, mode):
    codes = run_ranks(dist_workers.dying_peer_worker, free_port(), str(tmp_path), mode, timeout=40)
    assert codes[0] == 0 and codes[1] == (3 if mode == "exit" else 0)
    seen = json.loads((tmp_path / "rank0.json").read_text())
    assert seen["outcome"].startswith("RuntimeError")  # no hang: gloo raises on rank 0
    assert seen["seconds"] < (2.0 if mode == "exit" else 3.0 + 2.0)  # dead: at once; stalled: the 3 s timeout


def test_a_rank_filter_beyond_the_world_size_is_bad_input(tmp_path, capsys):
    assert main([*SMALL, "--watchdog", "--run_dir", str(tmp_path / "r"), "--inject", "nan@5/rank=1"]) == 2
    assert "rank 1" in capsys.readouterr().err


# --- torchrun end to end -----------------------------------------------------------------------------


def test_torchrun_two_ranks_roll_back_together_and_stay_identical(tmp_path):
    proc, run_dir, _ = torchrun(tmp_path, "--inject", "nan@5/rank=1", "--rl_device", "cpu")
    check_two_ranks_rolled_back_together(proc, run_dir)


def check_two_ranks_rolled_back_together(proc, run_dir: Path) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    s0, s1 = (json.loads((run_dir / f"rank{k}_summary.json").read_text()) for k in (0, 1))
    # the same decisions in the same iterations, to the same checkpoint
    assert s0["decisions"] == s1["decisions"]
    rollback, = [d for d in s0["decisions"] if d["event"] == "rollback"]
    alarm, = [d for d in s0["decisions"] if d["event"] == "alarm"]
    assert alarm["iteration"] == rollback["iteration"] == 5 and alarm["detector"] == "nonfinite"
    assert rollback["to_iteration"] == 0 and Path(rollback["checkpoint"]).is_dir()
    # identical weights, ValueNorm statistics and Adam states at the end
    assert s0["params_sha256"] == s1["params_sha256"]
    assert s0["optimizer_sha256"] == s1["optimizer_sha256"]
    assert s0["iterations"] == s1["iterations"] == 12 and s0["rollbacks"] == s1["rollbacks"] == 1
    # exactly one event log (rank 0's) with one rollback; one console
    assert sorted(p.name for p in run_dir.glob("*.jsonl")) == ["watchdog_events.jsonl"]
    events = read_events(run_dir / "watchdog_events.jsonl").events
    assert [e["iteration"] for e in events if e["event"] == "rollback"] == [5]
    assert len([e for e in events if e["event"] == "metrics"]) == 12
    assert proc.stdout.count("[watchdog] ROLLBACK") == 1 and proc.stdout.count("finished:") == 1
    assert (run_dir / "checkpoints" / f"rl_model_{8 * 32 * 12}_steps" / "module.pt").is_file()


def test_torchrun_a_rank_that_raises_ends_the_run_nonzero_without_hanging(tmp_path):
    proc, run_dir, seconds = torchrun(tmp_path, "--inject", "crash@3/rank=1", "--rl_device", "cpu", timeout=120)
    assert proc.returncode != 0
    assert "injected crash at iteration 3" in proc.stderr
    assert seconds < 90
    assert not list(run_dir.glob("rank*_summary.json"))  # nobody finished


# --- NCCL on CUDA (skipped without a GPU) ---------------------------------------------------------------

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
needs_gpu = pytest.mark.skipif(GPUS < 1, reason="needs a CUDA device")
needs_two_gpus = pytest.mark.skipif(GPUS < 2, reason="two NCCL ranks need two GPUs (NCCL refuses two ranks on one)")


def test_nccl_wanted_with_more_ranks_than_gpus_is_one_line_bad_input(tmp_path, capsys, monkeypatch):
    """On a CPU machine (0 GPUs) a rank asked to run on CUDA under torchrun fails before any collective."""
    if GPUS:
        pytest.skip("the CUDA machine's version is the torchrun test below")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert main([*SMALL, "--watchdog", "--run_dir", str(tmp_path / "r"), "--rl_device", "cuda:0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "local rank 0" in err and "0 CUDA device(s)" in err
    assert "add --rl_device cpu" in err and "--nproc_per_node" not in err and not (tmp_path / "r").exists()


@needs_gpu
def test_torchrun_with_more_ranks_than_gpus_exits_nonzero_with_the_fix(tmp_path):
    proc, run_dir, seconds = torchrun(tmp_path, "--rl_device", "cuda", ranks=GPUS + 1, timeout=120)
    assert proc.returncode != 0 and seconds < 90
    assert f"local rank {GPUS} but this node has {GPUS} CUDA device(s)" in proc.stderr
    assert f"--nproc_per_node {GPUS} or less" in proc.stderr


@needs_gpu
def test_nccl_collectives_run_on_the_gpu_and_keep_non_finite_values(tmp_path):
    assert run_ranks(dist_workers.nccl_one_rank_worker, free_port(), str(tmp_path), world=1) == [0]
    seen = json.loads((tmp_path / "rank0.json").read_text())
    assert seen["backend"] == "nccl" and seen["device"] == "cuda:0" and seen["iteration"] == 7
    assert seen["metrics"] == {"train/value_loss": "nan", "train/critic_grad_norm": 2.5,
                               "rollout/average_step_reward": "-inf"}
    assert (seen["agree"], seen["flag"]) == (3, 1)


@needs_two_gpus
def test_reduce_record_and_agree_on_two_nccl_ranks(tmp_path):
    assert run_ranks(dist_workers.reduce_worker, free_port(), str(tmp_path), "nccl") == [0, 0]
    r0, r1 = (json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1))
    assert r0 == r1 and r0["metrics"]["train/value_loss"] == "nan"
    assert r0["metrics"]["train/critic_grad_norm"] == pytest.approx(2.0)


@needs_two_gpus
def test_torchrun_two_nccl_ranks_roll_back_together_and_stay_identical(tmp_path):
    proc, run_dir, _ = torchrun(tmp_path, "--inject", "nan@5/rank=1", "--rl_device", "cuda")
    check_two_ranks_rolled_back_together(proc, run_dir)
