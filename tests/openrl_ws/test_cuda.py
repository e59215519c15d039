"""push_lite trained on a GPU under the watchdog: the CUDA path end to end (skipped without a GPU).

The CPU suite covers the same code with ``device=cpu``; what only a GPU shows is whether the rollback
restores CUDA tensors (weights, Adam moments, OpenRL's ValueNorm statistics, which are plain tensor
attributes on CUDA), whether the safe config reaches the optimizer there, and whether the resource
sampler reads torch's allocator and NVML for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from openrl_ws.train import main
from watchdog.checkpoints import load_checkpoint, read_openrl_module
from watchdog.eventlog import read_events

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SMALL = ["--num_envs", "64", "--episode_length", "32", "--ppo_epoch", "2", "--hidden_size", "32"]


def test_push_lite_on_cuda_rolls_back_to_a_stable_checkpoint_and_trains_on(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main([*SMALL, "--watchdog", "--rl_device", "cuda:0", "--run_dir", str(run_dir),
                 "--train_timesteps", str(64 * 32 * 16), "--inject", "nan@8"])
    out = capsys.readouterr().out
    assert code == 0 and "device cuda:0" in out
    events = read_events(run_dir / "watchdog_events.jsonl").events
    alarm, = [e for e in events if e["event"] == "alarm"]
    rollback, = [e for e in events if e["event"] == "rollback"]
    switch, = [e for e in events if e["event"] == "config_switch"]
    assert alarm["iteration"] == 8 and alarm["detector"] == "nonfinite"
    assert rollback["to_iteration"] < alarm["onset_iteration"]
    # the stable checkpoint was written from CUDA tensors and loads on the CPU, weights-only
    state, meta = load_checkpoint(rollback["checkpoint"])
    assert meta["stable"] is True and meta["iteration"] == rollback["to_iteration"]
    # trained on to the end with finite numbers, at the safe learning rate
    metrics = [e for e in events if e["event"] == "metrics"]
    assert metrics[-1]["iteration"] == 15
    assert all(isinstance(v, float) for m in metrics[9:] for v in m["metrics"].values())
    final = read_openrl_module(run_dir / "checkpoints" / f"rl_model_{64 * 32 * 16}_steps" / "module.pt")
    assert final.all_finite()
    assert final.optimizers["policy"]["param_groups"][0]["lr"] == pytest.approx(switch["changes"]["lr"]["new"])
    # the resource sampler read torch's allocator on this GPU (NVML too, when nvidia-ml-py is installed)
    last = metrics[-1]["metrics"]
    assert 0 < last["sys/cuda_reserved_mb"] <= last["sys/cuda_total_mb"]
    assert last["sys/cuda_allocated_mb"] <= last["sys/cuda_peak_mb"]
    try:
        import pynvml  # noqa: F401
    except ImportError:
        return
    assert 0 <= last["sys/gpu_util"] <= 100 and 0 < last["sys/gpu_temp_c"] < 120
