"""Data-parallel PPO for OpenRL 0.2.0 under torchrun, with one watchdog decision on every rank.

``torchrun --nproc_per_node N openrl_ws/train.py --watchdog ...`` starts N copies of train.py;
:func:`setup` (called by train.py when ``WORLD_SIZE`` > 1) turns them into one data-parallel run:

* ``init_process_group`` (gloo on CPU, nccl on CUDA; finite timeout, see ``watchdog.distributed``);
* each rank steps its own slice of environments (``--num_envs`` per rank, seeded ``seed + rank``)
  and samples with its own torch seed; ``--train_timesteps`` counts per rank, so the run sees
  ``N x`` the samples of a single process;
* rank 0's weights (ValueNorm statistics included) are broadcast once, after ``PPONet`` is built
  (and a ``--checkpoint`` loaded);
* every trainable parameter gets a ``post_accumulate_grad`` hook that all-reduces its gradient
  and divides by N, so OpenRL's own ``clip_grad_norm_`` and ``optimizer.step()`` see the averaged
  gradient and the ranks' weights and Adam states stay bit-identical;
* after each ``learner_update`` the critic's ``ValueNorm`` statistics (``running_mean``,
  ``running_mean_sq``, ``debiasing_term``, updated inside the update from each rank's returns)
  are averaged, so the critics stay identical too;
* after each rollout, ranks exchange whether their rollout failed or holds non-finite numbers
  (:meth:`DistContext.rollout`): if any did, every rank skips the update and reports a non-finite
  iteration, so the collectives of the update never run on some ranks only.

OpenRL's own ``rank``/``world_size`` arguments and its ``DistributedDataParallel`` branches are
not used: the agent is built with ``world_size=1`` on every rank.

Only rank 0 writes files (event log, console, TensorBoard, ``log.txt``, checkpoints); the other
ranks keep in-memory snapshots, identical to rank 0's. Each rank writes ``rank<k>_summary.json``
(its watchdog decisions and a hash of its final weights) into the run directory at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from watchdog import distributed as wd_dist
from watchdog.errors import ConfigError

log = logging.getLogger(__name__)

VALUENORM_ATTRS = ("running_mean", "running_mean_sq", "debiasing_term")
DECISION_EVENTS = ("alarm", "rollback", "config_switch", "stop", "stable_checkpoint")
ROLLOUT_OK, ROLLOUT_NONFINITE, ROLLOUT_ERROR = 0, 1, 2


class NonFiniteRollout(RuntimeError):
    """Some rank's rollout went non-finite; every rank treats the iteration as non-finite."""


class PeerRankFailed(RuntimeError):
    """Another rank's rollout raised an ordinary error; this rank stops too."""


class DistContext:
    """The per-process distributed state a watched run needs (duck-typed by ``openrl_ws.hook``)."""

    def __init__(self):
        self.rank = wd_dist.rank()
        self.world_size = wd_dist.world_size()
        self._hooks: list[Any] = []
        self._module = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --- set-up ---------------------------------------------------------------------------------

    def attach(self, module: Any) -> None:
        """Broadcast rank 0's models and hook gradient averaging into every trainable parameter."""
        self._module = module
        with torch.no_grad():
            for key in sorted(module.models):
                for name, tensor in _model_tensors(module.models[key]):
                    wd_dist._dist().broadcast(tensor.data, src=0)
        for key in sorted(module.models):
            for param in module.models[key].parameters():
                if param.requires_grad:
                    self._hooks.append(param.register_post_accumulate_grad_hook(self._average_grad))

    def _average_grad(self, param: torch.Tensor) -> None:
        if param.grad is not None:
            wd_dist.all_reduce_(param.grad, "sum")
            param.grad.div_(self.world_size)

    def detach(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    # --- per iteration --------------------------------------------------------------------------

    def rollout(self, driver: Any) -> tuple[dict, bool]:
        """``driver.actor_rollout()`` plus one collective: did any rank fail or go non-finite?"""
        from openrl_ws.hook import nonfinite_where

        error: BaseException | None = None
        infos, keep_going = {}, True
        try:
            infos, keep_going = driver.actor_rollout()
        except Exception as exc:  # decided together below
            error = exc
        if error is not None:  # from the numbers, not the error's text
            status = ROLLOUT_NONFINITE if nonfinite_where(driver) is not None else ROLLOUT_ERROR
        else:
            status = ROLLOUT_OK if nonfinite_where(driver) is None else ROLLOUT_NONFINITE
        agreed = wd_dist.agree_flag(status)
        if error is not None:
            raise error
        if agreed == ROLLOUT_ERROR:
            raise PeerRankFailed("another rank's rollout failed; stopping this rank too")
        if agreed == ROLLOUT_NONFINITE:
            raise NonFiniteRollout("non-finite rollout on another rank (nan/inf in its buffer)")
        return infos, keep_going

    def after_update(self, trainer: Any) -> None:
        """Average every ValueNorm's statistics over ranks (they moved with each rank's returns)."""
        module = trainer.algo_module
        with torch.no_grad():
            for key in sorted(module.models):
                for sub in module.models[key].modules():
                    if all(isinstance(getattr(sub, a, None), torch.Tensor) for a in VALUENORM_ATTRS):
                        for attr in VALUENORM_ATTRS:
                            tensor = getattr(sub, attr)
                            wd_dist.all_reduce_(tensor.data, "sum")
                            tensor.data.div_(self.world_size)

    def reduce_record(self, record):
        return wd_dist.reduce_record(record)

    def agree_actions(self, actions: list) -> None:
        wd_dist.agree_actions(actions)

    # --- end of run -----------------------------------------------------------------------------

    def write_summary(self, run_dir: Path, result: Any, module: Any) -> Path:
        """``rank<k>_summary.json``: this rank's watchdog decisions and a hash of its final weights."""
        decisions = [
            {k: e.get(k) for k in ("event", "iteration", "to_iteration", "checkpoint", "checkpoint_iteration",
                                   "detector", "number") if k in e}
            for e in result.events if e.get("event") in DECISION_EVENTS
        ]
        summary = {
            "rank": self.rank,
            "world_size": self.world_size,
            "iterations": result.iterations,
            "env_steps": result.env_steps,
            "rollbacks": result.rollbacks,
            "stopped": result.stopped,
            "decisions": decisions,
            "params_sha256": params_hash(module),
            "optimizer_sha256": optimizer_hash(module),
        }
        path = Path(run_dir) / f"rank{self.rank}_summary.json"
        path.write_text(json.dumps(summary, indent=2, sort_keys=True))
        return path


def setup(device: str) -> DistContext | None:
    """Initialise the process group when launched by torchrun with ``WORLD_SIZE`` > 1."""
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if backend == "nccl" and wd_dist.env_world_size() > 1:
        # one GPU per rank, chosen before the group forms (NCCL refuses two ranks on one device)
        local_rank, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        if local_rank >= gpus:
            raise ConfigError(f"torchrun started local rank {local_rank} but this node has {gpus} CUDA "
                              f"device(s); NCCL needs one GPU per rank",
                              hint=(f"launch with --nproc_per_node {gpus} or less, or " if gpus else "")
                              + "add --rl_device cpu (gloo)")
        torch.cuda.set_device(local_rank)
    if not wd_dist.init_process_group(backend):
        return None
    return DistContext()


def _model_tensors(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters, buffers and plain tensor attributes (ValueNorm on CUDA), by sorted name."""
    from openrl_ws.snapshot import full_state

    state = full_state(model)
    return sorted(((k, v) for k, v in state.items()), key=lambda kv: kv[0])


def params_hash(module: Any) -> str:
    """SHA-256 over every model's full state (weights and ValueNorm statistics), by sorted name."""
    digest = hashlib.sha256()
    for key in sorted(module.models):
        for name, tensor in _model_tensors(module.models[key]):
            digest.update(f"{key}.{name}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def optimizer_hash(module: Any) -> str:
    """SHA-256 over every optimizer's tensor state (Adam moments and steps)."""
    digest = hashlib.sha256()
    for key in sorted(module.optimizers):
        state = module.optimizers[key].state_dict()["state"]
        for index in sorted(state):
            for name in sorted(state[index]):
                value = state[index][name]
                if isinstance(value, torch.Tensor):
                    digest.update(f"{key}.{index}.{name}".encode())
                    digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class NullLogger:
    """What non-zero ranks hand to OpenRL instead of a ``RunLogger``: writes nothing."""

    use_wandb = False
    use_tensorboard = False
    writer = None

    def info(self, msg: str) -> None:
        pass

    def log_info(self, infos: dict, step: int) -> None:
        pass

    def log_learner_info(self, learner_id: int, infos: dict, step: int) -> None:
        pass

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

