"""The real MAPush tasks (``go1push_mid``, ``go1push_upper``) through MQE on Isaac Gym.

Isaac Gym and MQE are imported lazily, inside ``make_mqe_vec_env``: without them this module still
imports, and asking for an MQE task raises a one-line ``InputError`` that points to ``push_lite``.
The wrapper is written from the contract of MAPush's OpenRL wrapper (numpy in and out, rewards
``(N, agents, 1)``, dones ``(N, agents)``, ``batch_rewards`` from MQE's ``reward_buffer``) and carries
the same fault-injection knobs as ``PushLiteVecEnv``. It needs a CUDA machine with Isaac Gym, so it
is not exercised by the CPU test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

import numpy as np
import torch

from watchdog.errors import InputError

MQE_TASKS: tuple[str, ...] = ("go1push_mid", "go1push_upper")

MISSING_MESSAGE = (
    "task {task!r} needs Isaac Gym (NVIDIA's Preview 4 download from "
    "https://developer.nvidia.com/isaac-gym, Python 3.8, CUDA GPU; `pip install -e isaacgym/python`) "
    "and MQE (`pip install -e .` in a MAPush checkout, e.g. github.com/gravesreid/MAPush), "
    "missing here: {missing}; `--task push_lite` runs the same pipeline without them"
)


def _missing_modules() -> list[str]:
    """Which of isaacgym / mqe cannot be found (without importing them)."""
    return [name for name in ("isaacgym", "mqe") if importlib.util.find_spec(name) is None]


def _default_args(task: str, num_envs: int, device: str, seed: int) -> argparse.Namespace:
    """The Isaac Gym / MQE fields ``make_mqe_env`` reads, as MAPush's ``get_args`` would set them."""
    from isaacgym import gymapi  # noqa: PLC0415  (lazy: only with Isaac Gym installed)

    dev = torch.device(device)
    use_gpu = dev.type == "cuda"
    return argparse.Namespace(
        task=task,
        num_envs=num_envs,
        seed=seed,
        headless=True,
        record_video=False,
        physics_engine=gymapi.SIM_PHYSX,
        sim_device=str(dev) if dev.index is not None or not use_gpu else "cuda:0",
        sim_device_type=dev.type,
        sim_device_id=dev.index or 0,
        compute_device_id=dev.index or 0,
        rl_device=str(dev),
        use_gpu=use_gpu,
        use_gpu_pipeline=use_gpu,
        pipeline="gpu" if use_gpu else "cpu",
        graphics_device_id=0,
        num_threads=0,
        subscenes=0,
        slices=0,
        flex=False,
        physx=True,
        max_iterations=None,
        resume=False,
        experiment_name=None,
        run_name=None,
        load_run=None,
        checkpoint=None,
    )


def make_mqe_vec_env(
    task: str,
    num_envs: int,
    *,
    device: str = "cuda:0",
    seed: int = 0,
    args: argparse.Namespace | None = None,
) -> "MQEVecEnv":
    """Build MQE's ``task`` with ``num_envs`` envs and wrap it in the OpenRL contract.

    ``args`` (MAPush-style command-line namespace) overrides the defaults field by field.
    """
    missing = _missing_modules()
    if missing:
        raise InputError(MISSING_MESSAGE.format(task=task, missing=", ".join(missing)))
    import isaacgym  # noqa: F401, PLC0415  (must precede torch-using MQE modules)
    from mqe.envs.utils import make_mqe_env  # noqa: PLC0415

    full_args = _default_args(task, num_envs, device, seed)
    if args is not None:
        for key, value in vars(args).items():
            if value is not None:
                setattr(full_args, key, value)
    full_args.num_envs = num_envs

    def custom_cfg(cfg):
        """Apply the env count and video flag, as MAPush's ``custom_cfg`` does."""
        cfg.env.num_envs = num_envs
        cfg.env.record_video = bool(getattr(full_args, "record_video", False))
        return cfg

    env, _env_cfg = make_mqe_env(task, full_args, custom_cfg=custom_cfg)
    return MQEVecEnv(env, task)


class MQEVecEnv:
    """An MQE task in the OpenRL contract that MAPush's ``mqe_openrl_wrapper`` defines."""

    use_monitor = False
    action_scale = 0.5
    """MAPush's wrapper halves the policy's actions before clipping to [-1, 1]; kept for parity."""

    def __init__(self, env: Any, task: str):
        self.env = env
        self.env_name = task
        self.agent_num = int(env.num_agents)
        self.num_envs = self.parallel_env_num = int(env.num_envs)
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.reward_scale: float = 1.0
        self.obs_noise_std: float = 0.0
        self.nan_next_step: bool = False

    def reset(self, seed: int | None = None, **kwargs: Any) -> np.ndarray:
        """Reset all envs (Isaac Gym seeds at creation; ``seed`` is accepted for OpenRL)."""
        return self._obs_out(self.env.reset())

    def step(self, actions, extra_data: dict[str, Any] | None = None, **kwargs: Any):
        """Step all envs; numpy ``(obs, rewards (N, agents, 1), dones (N, agents), infos)``."""
        act = torch.as_tensor(np.asarray(actions), dtype=torch.float32, device=self.env.device)
        obs, reward, termination, _info = self.env.step((self.action_scale * act).clip(-1, 1))
        reward = reward * self.reward_scale
        if self.nan_next_step:
            reward = torch.full_like(reward, float("nan"))
        obs_np = self._obs_out(obs)
        self.nan_next_step = False
        dones = termination[:, None].expand(-1, self.agent_num).cpu().numpy().astype(bool)
        infos = [{} for _ in range(self.num_envs)]
        return obs_np, reward.unsqueeze(-1).cpu().numpy(), dones, infos

    def batch_rewards(self, buffer=None) -> dict[str, float]:
        """MQE's per-component reward sums averaged per env step since the last call, then reset."""
        rb = self.env.reward_buffer
        steps = max(int(rb.get("step_count", 0)), 1)
        out = {"average_step_reward": 0.0}
        for key in list(rb):
            if key == "step_count":
                continue
            out[key] = float(rb[key]) * self.reward_scale / (self.num_envs * steps)
            if "reward" in key or "punishment" in key:
                out["average_step_reward"] += out[key]
            rb[key] = 0
        rb["step_count"] = 0
        return out

    def close(self, **kwargs: Any) -> None:
        """Close the Isaac Gym simulation."""
        self.env.close()

    def _obs_out(self, obs: torch.Tensor) -> np.ndarray:
        """Apply the noise / NaN knobs and move observations to numpy float32."""
        if self.obs_noise_std > 0:
            obs = obs + self.obs_noise_std * torch.randn_like(obs)
        if self.nan_next_step:
            obs = torch.full_like(obs, float("nan"))
        return obs.to(torch.float32).cpu().numpy()
