"""Environments for the OpenRL side: ``make_env(task, num_envs)`` returns an OpenRL-ready vector env.

``push_lite`` is our own torch-vectorised stand-in for MAPush's ``go1push_mid`` (CPU or CUDA, no
simulator); ``go1push_mid`` / ``go1push_upper`` are the real tasks through MQE on Isaac Gym.
"""

from __future__ import annotations

from typing import Any

from watchdog.errors import InputError

from .mqe import MQE_TASKS, make_mqe_vec_env
from .push_lite import REWARD_COMPONENTS, PushLiteConfig, PushLiteVecEnv

TASKS: tuple[str, ...] = ("push_lite", *MQE_TASKS)
"""Every task name ``make_env`` accepts."""

__all__ = ["REWARD_COMPONENTS", "TASKS", "PushLiteConfig", "PushLiteVecEnv", "make_env"]


def make_env(
    task: str,
    num_envs: int,
    *,
    device: str = "cpu",
    seed: int = 0,
    centralized_critic: bool = False,
    mqe_args: Any = None,
):
    """Build ``task`` with ``num_envs`` parallel envs in the MAPush OpenRL wrapper contract.

    ``centralized_critic`` (push_lite only) gives the critic both agents' observations through a
    ``{"policy", "critic"}`` observation space: OpenRL 0.2.0's MAPPO-style shared critic.
    ``mqe_args`` is a MAPush-style argument namespace passed on to MQE.
    """
    if task == "push_lite":
        return PushLiteVecEnv(num_envs, device=device, seed=seed, centralized_critic=centralized_critic)
    if task in MQE_TASKS:
        return make_mqe_vec_env(task, num_envs, device=device, seed=seed, args=mqe_args)
    raise InputError(f"unknown task {task!r}; legal tasks are {{{', '.join(TASKS)}}}")
