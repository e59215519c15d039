"""Apply PPO hyper-parameters to a running OpenRL 0.2.0 trainer.

Every key in ``LIVE_KEYS`` was checked in openrl 0.2.0's source to be read at use time, so a
change made between two iterations takes effect in the next ``trainer.train()``:

* ``lr`` / ``critic_lr``: ``optimizer.param_groups[*]["lr"]``, read by ``Adam.step()`` on every
  step. ``RLDriver.learner_update`` calls ``module.lr_decay`` when ``use_linear_lr_decay`` is on,
  which rewrites the lr from ``module.lr``/``module.critic_lr`` each iteration
  (``update_linear_schedule``), so those two attributes are set as well.
* ``max_grad_norm``: ``PPOAlgorithm.ppo_update`` passes ``self.max_grad_norm`` to
  ``nn.utils.clip_grad_norm_`` on every minibatch.
* ``use_max_grad_norm``: ``self._use_max_grad_norm`` chooses clipping vs ``get_grad_norm`` in
  ``ppo_update`` on every minibatch.
* ``use_adv_normalize``: ``self._use_adv_normalize`` is read in ``train_ppo`` each call, but
  ``train_ppo`` then normalises advantages with masked nanmean/nanstd whatever the flag says, so
  in 0.2.0 turning it on only adds a second, nearly identical normalisation.
* ``clip_param``: ``self.clip_param`` in ``prepare_loss`` (ratio clamp) and ``cal_value_loss``
  (value clipping) on every minibatch.
* ``entropy_coef`` / ``value_loss_coef``: ``construct_loss_list`` on every minibatch.
* ``ppo_epoch`` / ``num_mini_batch``: ``train_ppo`` loops ``range(self.ppo_epoch)`` and passes
  ``self.num_mini_batch`` to the buffer's generator each call (the generator asserts
  ``batch_size >= num_mini_batch``) and divides the logged averages by their product.

Not live: ``use_valuenorm`` (the critic's ``ValueNorm`` exists only if it was on at construction,
and the buffer copies the flag in its own ``__init__``; flipping it mid-run would silently
change what the critic's outputs mean), network shape keys, ``episode_length``, ``gamma`` /
``gae_lambda`` (copied into the buffer at construction).

This module duck-types the trainer and never imports openrl.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from watchdog.errors import ConfigError

log = logging.getLogger(__name__)

LIVE_KEYS: tuple[str, ...] = (
    "lr",  # optimizers["policy"].param_groups lr, read by Adam.step(); + module.lr (lr_decay base)
    "critic_lr",  # optimizers["critic"].param_groups lr; + module.critic_lr (lr_decay base)
    "max_grad_norm",  # ppo_update: clip_grad_norm_(..., self.max_grad_norm), every minibatch
    "use_max_grad_norm",  # ppo_update: `if self._use_max_grad_norm`, every minibatch
    "use_adv_normalize",  # train_ppo: `if self._use_adv_normalize`, each call; redundant in 0.2.0 (see above)
    "clip_param",  # prepare_loss ratio clamp + cal_value_loss value clip, every minibatch
    "entropy_coef",  # construct_loss_list, every minibatch
    "value_loss_coef",  # construct_loss_list, every minibatch
    "ppo_epoch",  # train_ppo: range(self.ppo_epoch), each call
    "num_mini_batch",  # train_ppo: passed to the buffer generator, each call
)

# YAML key -> trainer attribute (learning rates live in the optimizers instead).
_TRAINER_ATTRS = {
    "max_grad_norm": "max_grad_norm",
    "use_max_grad_norm": "_use_max_grad_norm",
    "use_adv_normalize": "_use_adv_normalize",
    "clip_param": "clip_param",
    "entropy_coef": "entropy_coef",
    "value_loss_coef": "value_loss_coef",
    "ppo_epoch": "ppo_epoch",
    "num_mini_batch": "num_mini_batch",
}
_POSITIVE_FLOATS = {"lr", "critic_lr", "max_grad_norm", "clip_param"}
_NONNEGATIVE_FLOATS = {"entropy_coef", "value_loss_coef"}
_POSITIVE_INTS = {"ppo_epoch", "num_mini_batch"}
_BOOLS = {"use_max_grad_norm", "use_adv_normalize"}
_NOT_LIVE_HINTS = {
    "use_valuenorm": "the critic's ValueNorm and the buffer are built from it at start",
    "use_popart": "the critic's output layer is built from it at start",
    "hidden_size": "it fixes the network shapes at start",
    "layer_N": "it fixes the network shapes at start",
    "episode_length": "the rollout buffer is allocated from it at start",
    "gamma": "the buffer copies it at start",
    "gae_lambda": "the buffer copies it at start",
}


def apply_ppo_overrides(trainer: Any, values: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set live PPO values on the trainer; return ``{key: (old, new)}`` for keys that changed.

    A ``max_grad_norm`` also turns clipping on, unless ``use_max_grad_norm`` is given explicitly.
    All values are validated before anything changes.
    """
    values = dict(values)
    for key, value in values.items():
        _validate(key, value)
    if "max_grad_norm" in values and "use_max_grad_norm" not in values:
        values["use_max_grad_norm"] = True
    before = current_values(trainer)
    for key, value in values.items():
        if key in ("lr", "critic_lr"):
            _set_lr(trainer.algo_module, key, float(value))
        else:
            setattr(trainer, _TRAINER_ATTRS[key], _coerce(key, value))
    after = current_values(trainer)
    changed = {k: (before[k], after[k]) for k in values if before.get(k) != after.get(k)}
    if changed:
        log.info("live PPO config changed: %s", ", ".join(f"{k} {o} -> {n}" for k, (o, n) in changed.items()))
    return changed


def scale_learning_rates(trainer: Any, factor: float) -> dict[str, tuple[float, float]]:
    """Multiply every optimizer's learning rate (and the lr-decay base) by ``factor``."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        raise ConfigError(f"learning-rate scale factor must be a finite number > 0, got {factor!r}")
    module, changed = trainer.algo_module, {}
    for key in _lr_keys(module):
        old = _get_lr(module, key)
        _set_lr(module, key, old * float(factor))
        changed[key] = (old, _get_lr(module, key))
    return changed


def set_learning_rates(module: Any, values: Mapping[str, float | None]) -> dict[str, tuple[float, float]]:
    """Set the optimizers' learning rates of a PPO module (no trainer yet) from a run's config:
    after loading a checkpoint, whose optimizer state carries the rates it was saved with, the
    command line's config must win. ``lr`` drives a shared model's single optimizer too."""
    changed = {}
    for key in _lr_keys(module):
        new = values.get(key)
        if new is None:
            continue
        old = _get_lr(module, key)
        _set_lr(module, key, float(new))
        if old != float(new):
            changed[key] = (old, float(new))
    return changed


def learning_rates(module: Any) -> dict[str, float]:
    """``lr`` (policy, or a shared model's one optimizer) and ``critic_lr`` as the optimizers hold them."""
    return {key: _get_lr(module, key) for key in _lr_keys(module)}


def current_values(trainer: Any) -> dict[str, Any]:
    """The live value of every LIVE_KEY the trainer has (critic_lr absent with a shared model)."""
    out: dict[str, Any] = learning_rates(trainer.algo_module)
    for key, attr in _TRAINER_ATTRS.items():
        if hasattr(trainer, attr):
            out[key] = getattr(trainer, attr)
    return out


# --------------------------------------------------------------------------- helpers


def _optimizer_for(module: Any, key: str) -> Any:
    """The optimizer an lr key drives: policy (or shared "model") for lr, critic for critic_lr."""
    optimizers = module.optimizers
    name = "policy" if key == "lr" else "critic"
    if name not in optimizers and key == "lr" and "model" in optimizers:
        name = "model"
    if name not in optimizers:
        raise ConfigError(
            f"{key} is not live for this trainer: it has optimizers {sorted(optimizers)}, no {name!r}",
            hint="a shared policy/value model has one lr; set lr only",
        )
    return optimizers[name]


def _lr_keys(module: Any) -> list[str]:
    """The lr keys this PPO module has optimizers for."""
    optimizers = module.optimizers
    keys = ["lr"] if ("policy" in optimizers or "model" in optimizers) else []
    return keys + (["critic_lr"] if "critic" in optimizers else [])


def _get_lr(module: Any, key: str) -> float:
    """The lr of the first param group (all groups are set together here)."""
    return float(_optimizer_for(module, key).param_groups[0]["lr"])


def _set_lr(module: Any, key: str, lr: float) -> None:
    """Set every param group's lr and the module's lr-decay base."""
    for group in _optimizer_for(module, key).param_groups:
        group["lr"] = lr
    if hasattr(module, key):
        setattr(module, key, lr)


def _validate(key: str, value: Any) -> None:
    """One-line ConfigError for an unknown, not-live or ill-typed value (the caller validated earlier)."""
    if key not in LIVE_KEYS:
        why = _NOT_LIVE_HINTS.get(key, "OpenRL does not read it at use time")
        raise ConfigError(
            f"PPO key {key!r} cannot change during training ({why})",
            hint=f"live keys are {', '.join(LIVE_KEYS)}",
        )
    if key in _BOOLS:
        ok = isinstance(value, bool)
        want = "true or false"
    elif key in _POSITIVE_INTS:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        want = "an integer >= 1"
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > 0 if key in _POSITIVE_FLOATS else value >= 0)
        want = "a finite number > 0" if key in _POSITIVE_FLOATS else "a finite number >= 0"
    if not ok:
        raise ConfigError(f"PPO key {key!r} must be {want}, got {value!r}")


def _coerce(key: str, value: Any) -> Any:
    """Floats stay floats (YAML may give ints); ints and bools are already checked."""
    if key in _POSITIVE_FLOATS or key in _NONNEGATIVE_FLOATS:
        return float(value)
    return value
