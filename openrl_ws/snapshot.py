"""Capture and restore the live OpenRL training state in place.

A rollback must change the numbers inside the objects the running trainer already holds:
``trainer.algo_module`` is the ``PPOModule`` built at start, and ``agent.load()`` would build a
new one that the trainer never sees. So ``restore`` only ever calls ``load_state_dict`` on the
live models and optimizers (and ``copy_`` on tensor attributes, see below) and sets attributes
on the live trainer.

What a snapshot holds: every model's state (value normaliser included), every optimizer's
state dict (Adam moments and step counts), the trainer's hot PPO hyper-parameters, the learning
rates, the module's base learning rates (``module.lr``/``critic_lr``, used by linear lr decay)
and the RNG states.

Snapshots are cloned to CPU: a stable snapshot is held for many iterations and is also what
the checkpoint store writes, and GPU memory belongs to the simulator (Isaac Gym); for the
networks PPO uses here the device-to-host copy is well under a millisecond.

ValueNorm caveat: OpenRL's ``ValueNorm`` builds its statistics as ``nn.Parameter(...).to(device)``.
On CPU that returns the Parameter itself (registered, so in ``state_dict()``); on CUDA it returns a
plain tensor attribute that ``state_dict()`` does not contain. A model's "full state" here is
therefore ``state_dict()`` plus every plain tensor attribute of its submodules, under the same
dotted names, so GPU runs roll back the value normaliser too.

This module duck-types the trainer and never imports openrl.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from watchdog.checkpoints import (
    clone_tree,
    META_FILE,
    STATE_FILE,
    OpenRLModuleCheckpoint,
    fsync_dir,
    load_checkpoint,
    read_openrl_module,
)
from watchdog.errors import CheckpointError, InternalError

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "openrl_ws.snapshot"
SNAPSHOT_VERSION = 1

# Trainer attributes PPOAlgorithm reads at use time (BaseAlgorithm.__init__ sets them from cfg).
HOT_PARAMS = (
    "clip_param",
    "max_grad_norm",
    "_use_max_grad_norm",
    "_use_adv_normalize",
    "entropy_coef",
    "value_loss_coef",
    "ppo_epoch",
    "num_mini_batch",
)
# Module attributes lr_decay() reads as the base of the linear schedule.
MODULE_PARAMS = ("lr", "critic_lr")
# Config keys that change parameter shapes; named in mismatch messages.
ARCH_KEYS = (
    "hidden_size",
    "layer_N",
    "use_feature_normalization",
    "use_recurrent_policy",
    "use_naive_recurrent_policy",
    "recurrent_N",
    "rnn_type",
    "use_valuenorm",
    "use_popart",
    "use_share_model",
    "use_influence_policy",
)


@dataclass
class TrainingSnapshot:
    """A CPU copy of everything a rollback restores; see the module docstring."""

    models: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, dict[str, Any]]
    hot_params: dict[str, Any]
    module_params: dict[str, Any]
    learning_rates: dict[str, list[float]]
    rng: dict[str, Any] | None
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)


# --------------------------------------------------------------------------- capture / restore


def capture(trainer: Any, *, extra: dict | None = None, rng: bool = True) -> TrainingSnapshot:
    """Copy the live trainer's weights, optimizer state, hot params and RNG states to CPU."""
    module = _module_of(trainer)
    return TrainingSnapshot(
        models={k: clone_tree(full_state(m), "cpu") for k, m in module.models.items()},
        optimizers={k: clone_tree(o.state_dict(), "cpu") for k, o in module.optimizers.items()},
        hot_params={k: getattr(trainer, k) for k in HOT_PARAMS if hasattr(trainer, k)},
        module_params={k: getattr(module, k) for k in MODULE_PARAMS if hasattr(module, k)},
        learning_rates={k: [g["lr"] for g in o.param_groups] for k, o in module.optimizers.items()},
        rng=rng_state() if rng else None,
        config=arch_config(module),
        extra=dict(extra or {}),
    )


def restore(trainer: Any, snap: TrainingSnapshot, *, restore_rng: bool = False) -> None:
    """Load ``snap`` into the live models/optimizers/trainer; never replaces ``algo_module``."""
    module = _module_of(trainer)
    check_compatible(module, snap.models, snap.config, source="the in-memory snapshot")
    if set(snap.optimizers) != set(module.optimizers):
        raise InternalError(
            f"snapshot optimizers {sorted(snap.optimizers)} != live {sorted(module.optimizers)}"
        )
    for key, model in module.models.items():
        load_full_state(model, snap.models[key])
    for key, opt in module.optimizers.items():
        # load_state_dict keeps the given tensors when dtype/device already match, so hand it a
        # copy: the snapshot must stay untouched for the next rollback.
        opt.load_state_dict(clone_tree(snap.optimizers[key], "cpu"))
        for group, lr in zip(opt.param_groups, snap.learning_rates.get(key, [])):
            group["lr"] = lr
    for key, value in snap.hot_params.items():
        setattr(trainer, key, value)
    for key, value in snap.module_params.items():
        setattr(module, key, value)
    if restore_rng and snap.rng is not None:
        set_rng_state(snap.rng)


def rng_state() -> dict[str, Any]:
    """The global RNG states of torch (CPU, CUDA when initialised), numpy and random."""
    state: dict[str, Any] = {
        "torch_cpu": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of ``rng_state``."""
    torch.set_rng_state(state["torch_cpu"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


# --------------------------------------------------------------------------- full model state


def full_state(model: torch.nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """``state_dict()`` plus plain tensor attributes of submodules (ValueNorm on CUDA)."""
    state = model.state_dict()
    for name, tensor in _tensor_attrs(model).items():
        state.setdefault(name, tensor.detach())
    return state


def load_full_state(model: torch.nn.Module, saved: Mapping[str, torch.Tensor]) -> None:
    """Copy ``saved`` into the live model: load_state_dict for registered keys, copy_ for attrs."""
    registered = model.state_dict().keys()
    model.load_state_dict({k: v for k, v in saved.items() if k in registered}, strict=True)
    attrs = _tensor_attrs(model)
    with torch.no_grad():
        for key, value in saved.items():
            if key not in registered:
                attrs[key].copy_(value)


def full_state_shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a model's full state, without copying anything."""
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name, tensor in _tensor_attrs(model).items():
        shapes.setdefault(name, tuple(tensor.shape))
    return shapes


def _tensor_attrs(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Public plain-tensor attributes of every submodule (not parameters, not buffers)."""
    found = {}
    for mod_name, mod in model.named_modules():
        for attr, value in vars(mod).items():
            if not attr.startswith("_") and isinstance(value, torch.Tensor):
                found[f"{mod_name}.{attr}" if mod_name else attr] = value
    return found


def arch_config(module: Any) -> dict[str, Any]:
    """The shape-relevant config values of a live module (for mismatch messages)."""
    cfg = getattr(module, "cfg", None)
    return {k: getattr(cfg, k) for k in ARCH_KEYS if cfg is not None and hasattr(cfg, k)}


def check_compatible(
    module: Any, state_dicts: Mapping[str, Mapping[str, torch.Tensor]], config: Mapping[str, Any], *, source: str
) -> None:
    """Raise CheckpointError (one line, with the flag to pass) unless every key and shape fits."""
    live_cfg = arch_config(module)
    problem = _first_mismatch(module, state_dicts)
    if problem is None:
        return
    for key in ARCH_KEYS:
        if key in config and key in live_cfg and config[key] != live_cfg[key]:
            raise CheckpointError(
                f"checkpoint {source} was trained with {key} {config[key]} but this run uses {live_cfg[key]}",
                hint=f"pass --{key} {config[key]}",
            )
    raise CheckpointError(
        f"checkpoint {source} does not fit this run's networks: {problem}",
        hint="load a checkpoint written for the same env and network flags",
    )


def _first_mismatch(module: Any, state_dicts: Mapping[str, Mapping[str, torch.Tensor]]) -> str | None:
    """Describe the first model/key/shape difference, or ``None`` when all fit."""
    if set(state_dicts) != set(module.models):
        return f"models {sorted(state_dicts)} in the checkpoint, {sorted(module.models)} here"
    for name, model in module.models.items():
        live = full_state_shapes(model)
        saved = {k: tuple(v.shape) for k, v in state_dicts[name].items()}
        for key in live:
            if key not in saved:
                return f"{name}.{key} is missing from the checkpoint"
        for key in saved:
            if key not in live:
                return f"{name}.{key} is in the checkpoint but not in this run's model"
            if saved[key] != live[key]:
                return f"{name}.{key} has shape {list(saved[key])} in the checkpoint but {list(live[key])} here"
    return None


# --------------------------------------------------------------------------- on-disk forms


def to_state(snap: TrainingSnapshot) -> dict[str, Any]:
    """Tensors and plain values only, so ``torch.load(weights_only=True)`` reads it back."""
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "models": snap.models,
        "optimizers": snap.optimizers,
        "hot_params": _plain(snap.hot_params),
        "module_params": _plain(snap.module_params),
        "learning_rates": _plain(snap.learning_rates),
        "rng": None if snap.rng is None else _rng_to_state(snap.rng),
        "config": _plain(snap.config),
        "extra": snap.extra,
        "created": snap.created,
    }


def from_state(state: Mapping[str, Any]) -> TrainingSnapshot:
    """Inverse of ``to_state``."""
    if state.get("format") != SNAPSHOT_FORMAT or state.get("version", 0) > SNAPSHOT_VERSION:
        raise CheckpointError(
            f"state.pt holds format {state.get('format')!r} v{state.get('version')}, "
            f"not {SNAPSHOT_FORMAT} v<={SNAPSHOT_VERSION}",
            hint="it was written by another tool or a newer ppo-watchdog",
        )
    return TrainingSnapshot(
        models={k: OrderedDict(v) for k, v in state["models"].items()},
        optimizers=dict(state["optimizers"]),
        hot_params=dict(state["hot_params"]),
        module_params=dict(state.get("module_params", {})),
        learning_rates={k: list(v) for k, v in state["learning_rates"].items()},
        rng=None if state.get("rng") is None else _rng_from_state(state["rng"]),
        config=dict(state.get("config", {})),
        extra=dict(state.get("extra", {})),
        created=float(state.get("created", 0.0)),
    )


def _rng_to_state(rng: Mapping[str, Any]) -> dict[str, Any]:
    """Replace numpy arrays and long tuples in RNG states by tensors/lists."""
    name, keys, pos, has_gauss, cached = rng["numpy"]
    version, internal, gauss_next = rng["python"]
    out = {
        "torch_cpu": rng["torch_cpu"],
        "numpy": {"name": name, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if "torch_cuda" in rng:
        out["torch_cuda"] = list(rng["torch_cuda"])
    return out


def _rng_from_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of ``_rng_to_state``."""
    npy, py = state["numpy"], state["python"]
    out = {
        "torch_cpu": state["torch_cpu"],
        "numpy": (npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                  npy["cached_gaussian"]),
        "python": (py["version"], tuple(py["internal"]), py["gauss_next"]),
    }
    if "torch_cuda" in state:
        out["torch_cuda"] = list(state["torch_cuda"])
    return out


def save_openrl_module(module: Any, path: Path | str) -> Path:
    """Write ``module.pt`` exactly as OpenRL's ``agent.save()`` does (``torch.save(module)``), atomically.

    ``path`` is an ``rl_model_<steps>_steps`` directory (see ``openrl_checkpoint_dir``) or a
    ``.pt`` file; returns the file written.
    """
    target = Path(path)
    if target.suffix != ".pt":
        target = target / "module.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(module, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def openrl_checkpoint_dir(root: Path | str, env_steps: int) -> Path:
    """The directory name OpenRL's CheckpointCallback uses: ``rl_model_<steps>_steps``."""
    return Path(root) / f"rl_model_{int(env_steps)}_steps"


def load_checkpoint_into(
    target: Any, path: Path | str, *, load_optimizers: bool = True, restore_rng: bool = False
) -> dict[str, Any]:
    """Load our checkpoint dir or an OpenRL ``module.pt`` into a live trainer or module, in place.

    Keys and shapes are checked before anything is changed. Our checkpoints loaded into a trainer
    also restore its hot params and learning rates (as ``restore`` does): re-apply a safe config
    afterwards. OpenRL ``module.pt`` optimizer state carries the learning rates it was saved with.
    Returns what was loaded:
    ``{"kind": "watchdog" | "openrl", "path", "models", "optimizers", "meta"}``.
    """
    module = _module_of(target)
    trainer = target if hasattr(target, "algo_module") else None
    device = _device_of(module)
    path = Path(path)
    if _is_watchdog_checkpoint(path):
        state, meta = load_checkpoint(path, map_location=device)
        snap = from_state(state)
        if trainer is not None and load_optimizers:
            restore(trainer, snap, restore_rng=restore_rng)
        else:
            _load_weights(module, snap.models, snap.config, snap.optimizers if load_optimizers else {}, str(path))
        loaded_opts = sorted(snap.optimizers) if load_optimizers else []
        return {"kind": "watchdog", "path": path, "models": sorted(snap.models), "optimizers": loaded_opts,
                "meta": meta}
    ckpt = read_openrl_module(path, map_location=device)
    _check_finite(ckpt)
    opts = ckpt.optimizers if load_optimizers and set(ckpt.optimizers) == set(module.optimizers) else {}
    if load_optimizers and not opts:
        log.warning("%s: optimizer state not recoverable; loading weights only", ckpt.path)
    _load_weights(module, ckpt.state_dicts, ckpt.config, opts, str(ckpt.path))
    return {"kind": "openrl", "path": ckpt.path, "models": sorted(ckpt.state_dicts), "optimizers": sorted(opts),
            "meta": {"config": ckpt.config}}


def _load_weights(
    module: Any, models: Mapping[str, Mapping[str, torch.Tensor]], config: Mapping[str, Any],
    optimizers: Mapping[str, Any], source: str,
) -> None:
    """Check, then load models (and optimizers when given) into the live module."""
    check_compatible(module, models, config, source=source)
    for key, model in module.models.items():
        load_full_state(model, models[key])
    for key, state in optimizers.items():
        try:
            module.optimizers[key].load_state_dict(clone_tree(state, "cpu"))
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(
                f"optimizer {key!r} state does not fit ({' '.join(str(err).split())})",
                path=source, hint="load with load_optimizers=False to take the weights only",
            ) from None


def _check_finite(ckpt: OpenRLModuleCheckpoint) -> None:
    """Refuse an OpenRL checkpoint whose weights already hold NaN/Inf."""
    bad = ckpt.nonfinite_keys()
    if bad:
        raise CheckpointError(
            f"{len(bad)} tensor(s) hold NaN/Inf, first {bad[0]}", path=str(ckpt.path),
            hint="the run had already diverged when this was saved; use an earlier rl_model_*_steps",
        )


def _is_watchdog_checkpoint(path: Path) -> bool:
    """Our checkpoints are a dir with meta.json and state.pt (or one of those two files)."""
    if path.name in (STATE_FILE, META_FILE):
        return True
    return path.is_dir() and (path / META_FILE).exists()


# --------------------------------------------------------------------------- helpers


def _module_of(target: Any) -> Any:
    """The live PPOModule of a trainer (``algo_module``), or the module itself."""
    module = getattr(target, "algo_module", target)
    if not hasattr(module, "models") or not hasattr(module, "optimizers"):
        raise InternalError(f"{type(target).__name__} has neither .algo_module nor .models/.optimizers")
    return module


def _device_of(module: Any) -> torch.device:
    """Where the live module's parameters are."""
    for model in module.models.values():
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def _plain(tree: Any) -> Any:
    """numpy scalars -> python scalars, recursively (what weights_only loading accepts)."""
    if isinstance(tree, dict):
        return {k: _plain(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_plain(v) for v in tree)
    if isinstance(tree, np.generic):
        return tree.item()
    return tree
