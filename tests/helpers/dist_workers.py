"""Worker functions for ``torch.multiprocessing.spawn`` in tests/openrl_ws/test_distributed.py.

They live in a plain module (not the test module) so spawned children can import them by name.
Each worker joins a 2-rank gloo group over TCP and writes what it saw to ``out_dir/rank<k>.json``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _init(rank: int, world: int, port: int, timeout_s: float = 30.0, backend: str = "gloo") -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if backend == "nccl":
        torch.cuda.set_device(rank)  # one GPU per rank
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s))


def _dump(out_dir: str, rank: int, data: dict) -> None:
    def plain(v):
        return v if not isinstance(v, float) or math.isfinite(v) else str(v)

    Path(out_dir, f"rank{rank}.json").write_text(json.dumps({k: plain(v) if not isinstance(v, dict) else
                                                             {kk: plain(vv) for kk, vv in v.items()}
                                                             for k, v in data.items()}))


def reduce_worker(rank: int, world: int, port: int, out_dir: str, backend: str = "gloo") -> None:
    """Each rank reduces its own record; NaN on rank 1 for value_loss, +inf on rank 0 for reward."""
    import torch.distributed as dist

    from watchdog.distributed import agree, is_distributed, reduce_record
    from watchdog.errors import InternalError
    from watchdog.signals import MetricRecord

    _init(rank, world, port, backend=backend)
    try:
        metrics = {
            "train/value_loss": [0.5, math.nan][rank],
            "train/critic_grad_norm": [1.0, 3.0][rank],
            "rollout/average_step_reward": [math.inf, 2.0][rank],
            "train/policy_loss": [-math.inf, math.inf][rank],
        }
        if rank == 1:
            metrics["extra/only_on_rank1"] = 7.0
        out = reduce_record(MetricRecord(4, 1024, metrics))
        result = {"distributed": is_distributed(), "iteration": out.iteration, "env_steps": out.env_steps,
                  "metrics": out.metrics, "agree_same": agree(2, 10)}
        try:
            agree(2, 10 + rank)
            result["agree_differs"] = "no error"
        except InternalError as err:
            result["agree_differs"] = str(err)
        try:
            reduce_record(MetricRecord(4 + rank, 1024, {}))
            result["position_mismatch"] = "no error"
        except InternalError as err:
            result["position_mismatch"] = str(err)
        _dump(out_dir, rank, result)
    finally:
        dist.destroy_process_group()


def dying_peer_worker(rank: int, world: int, port: int, out_dir: str, mode: str) -> None:
    """Rank 1 dies (``exit``) or stalls (``hang``) instead of joining a collective; rank 0 reports
    how long its all-reduce took to fail. The group timeout is 3 s."""
    import torch

    from watchdog.distributed import all_reduce_

    _init(rank, world, port, timeout_s=3.0)
    if rank == 1:
        if mode == "exit":
            os._exit(3)  # no destroy_process_group: a crashed rank
        time.sleep(6)  # alive but never joins the collective
        os._exit(0)
    start = time.monotonic()
    try:
        all_reduce_(torch.ones(3))
        outcome = "no error"
    except Exception as err:  # what gloo raises on a dead/stalled peer
        outcome = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    _dump(out_dir, rank, {"seconds": time.monotonic() - start, "outcome": outcome})
    os._exit(0)


def nccl_one_rank_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """A one-rank NCCL group on one GPU: the collectives' CUDA path (tensors moved to the device and
    back), the non-finite values kept, the action code and the status flag returned."""
    import torch.distributed as dist

    from watchdog.distributed import _device, agree, agree_flag, reduce_record
    from watchdog.signals import MetricRecord

    _init(rank, world, port, backend="nccl")
    try:
        out = reduce_record(MetricRecord(7, 512, {"train/value_loss": math.nan, "train/critic_grad_norm": 2.5,
                                                  "rollout/average_step_reward": -math.inf}))
        _dump(out_dir, rank, {"backend": dist.get_backend(), "device": str(_device()), "iteration": out.iteration,
                              "metrics": out.metrics, "agree": agree(3, 40), "flag": agree_flag(1)})
    finally:
        dist.destroy_process_group()
