"""Keep the watchdog's decisions identical on every rank of a data-parallel run.

Library side (no openrl import). Every helper is a no-op when ``torch.distributed`` is not
available or not initialised, so single-process code can call them unconditionally.

Why identical decisions follow: every rank feeds :func:`reduce_record`'s output (the same record
on all ranks) to the same deterministic detectors and policy, so every rank computes the same
actions; :func:`agree` checks that they did, and raises :class:`InternalError` (a bug) otherwise.

``reduce_record`` semantics (chosen, documented):

* the key set is the **union** of the ranks' keys (exchanged with ``all_gather_object``, sorted);
  a key is averaged over the ranks that have it (a key present on one rank only keeps that
  rank's value), so a rank whose iteration failed early (a record with only ``train/value_loss``)
  does not make keys disappear on the others;
* a key that is non-finite on ANY rank is non-finite on all ranks: NaN if any rank has NaN or
  ranks disagree on the sign of an infinity, else ``+inf``/``-inf``;
* finite values are averaged (sum over ranks / number of ranks that have the key), in float64;
* ``iteration`` and ``env_steps`` must be equal on every rank (they are per-rank counters that
  advance in lock-step); a mismatch raises :class:`InternalError`.

Failure semantics: the process group is created with a finite ``timeout`` (see
:func:`init_process_group`); a rank that raises leaves its peers blocked in a collective until
torchrun (which watches its workers) tears them down, or, without torchrun, until the collective
times out and raises on the peers. Either way the job ends non-zero instead of hanging.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from typing import Any

import torch

from watchdog.errors import InternalError
from watchdog.signals import MetricRecord

DEFAULT_TIMEOUT_S = 120.0


def _dist():
    import torch.distributed as dist

    return dist


def is_distributed() -> bool:
    """True when a process group with more than one rank is initialised."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return _dist().get_rank() if is_distributed() else 0


def world_size() -> int:
    return _dist().get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def init_process_group(backend: str | None = None, *, timeout_s: float | None = None) -> bool:
    """Initialise from torchrun's environment when ``WORLD_SIZE`` > 1; returns whether it did.

    ``backend`` defaults to ``nccl`` when CUDA is available, ``gloo`` otherwise. The timeout
    (``WATCHDOG_DIST_TIMEOUT`` seconds, default 120) bounds how long a rank waits in a collective
    for a peer that died or diverged in control flow.
    """
    dist = _dist()
    if env_world_size() <= 1 or not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    if timeout_s is None:
        timeout_s = float(os.environ.get("WATCHDOG_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return True


def destroy_process_group() -> None:
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _device() -> torch.device:
    """Where collective tensors live: CUDA for nccl, CPU otherwise."""
    dist = _dist()
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce (``sum``, ``max``, ``min``); the tensor is returned."""
    if not is_distributed():
        return tensor
    dist = _dist()
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    dist.all_reduce(tensor, op=ops[op])
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    _dist().all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=src)
    return box[0]


def reduce_record(record: MetricRecord) -> MetricRecord:
    """The same record on every rank: see the module docstring for the exact semantics."""
    if not is_distributed():
        return record
    gathered = all_gather_object((record.iteration, record.env_steps, sorted(record.metrics)))
    positions = {(it, steps) for it, steps, _ in gathered}
    if len(positions) != 1:
        raise InternalError(f"ranks are at different iterations/env steps: {sorted(positions)}")
    keys = sorted(set().union(*(set(k) for _, _, k in gathered)))
    # rows: finite sum, count present, NaN count, +inf count, -inf count
    table = torch.zeros(5, len(keys), dtype=torch.float64)
    for j, key in enumerate(keys):
        if key not in record.metrics:
            continue
        value = record.metrics[key]
        table[1, j] = 1.0
        if math.isnan(value):
            table[2, j] = 1.0
        elif value == math.inf:
            table[3, j] = 1.0
        elif value == -math.inf:
            table[4, j] = 1.0
        else:
            table[0, j] = value
    device = _device()
    table = all_reduce_(table.to(device), "sum").cpu()
    metrics: dict[str, float] = {}
    for j, key in enumerate(keys):
        total, present, nans, pos, neg = (float(x) for x in table[:, j])
        if nans > 0 or (pos > 0 and neg > 0):
            metrics[key] = math.nan
        elif pos > 0:
            metrics[key] = math.inf
        elif neg > 0:
            metrics[key] = -math.inf
        else:
            metrics[key] = total / present
    return MetricRecord(record.iteration, record.env_steps, metrics)


def agree(code: int, target: int = -1) -> int:
    """All-reduce MAX of an action ``code``; raise if ranks differ on the code or the rollback target.

    Ranks running the same detectors on the same record must decide the same thing; a
    disagreement is a bug (a rank cannot carry out a rollback whose target it never chose),
    so it raises :class:`InternalError` on every rank rather than letting parameters drift.
    ``target`` is the rollback target iteration (-1: none).
    """
    if not is_distributed():
        return code
    device = _device()
    hi = all_reduce_(torch.tensor([code, target], dtype=torch.int64, device=device), "max").cpu()
    lo = all_reduce_(torch.tensor([code, target], dtype=torch.int64, device=device), "min").cpu()
    if int(hi[0]) != int(lo[0]):
        raise InternalError(f"ranks disagree on the watchdog decision: action codes {int(lo[0])}..{int(hi[0])}")
    if int(hi[1]) != int(lo[1]):
        raise InternalError(f"ranks disagree on the rollback target: iterations {int(lo[1])}..{int(hi[1])}")
    return int(hi[0])


def agree_flag(value: int) -> int:
    """All-reduce MAX of a small status code (e.g. 0 ok, 1 non-finite, 2 error) from every rank."""
    if not is_distributed():
        return value
    return int(all_reduce_(torch.tensor([value], dtype=torch.int64, device=_device()), "max").item())


def action_code(actions: list) -> tuple[int, int]:
    """``(bitmask, rollback target iteration or -1)`` of one ``Watchdog.observe`` answer:
    bit 1 save-stable, bit 2 rollback, bit 4 stop."""
    from watchdog.policy import Rollback, SaveStable, Stop

    code, target = 0, -1
    for action in actions:
        if isinstance(action, SaveStable):
            code |= 1
        elif isinstance(action, Rollback):
            code |= 2
            target = action.target.iteration
        elif isinstance(action, Stop):
            code |= 4
    return code, target


def agree_actions(actions: list) -> None:
    """Check that every rank got the same actions from its watchdog (raises InternalError if not)."""
    code, target = action_code(actions)
    agree(code, target)
