"""push_lite as an rsl_rl ``VecEnv``: each of the two agents of every world is one rsl_rl env.

rsl_rl trains one policy over ``num_envs`` single-agent envs; push_lite's two agents share the
policy (as MAPush's OpenRL setup does), so ``num_worlds`` push_lite worlds are ``2 * num_worlds``
rsl_rl envs, agent ``a`` of world ``w`` at index ``2 * w + a``. Rewards are per agent per step,
so the watchdog's ``rollout/average_step_reward`` means what it means for OpenRL's push_lite.

Fault injection (``openrl_ws.inject``) is keyed on the iteration: the wrapper counts rollouts
itself (``steps_per_iteration`` steps each; a rollback's ``reset()`` ends an aborted one), so
iterations are the ones actually run, rolled-back ones included, as in ``openrl_ws/train.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict
from rsl_rl.env import VecEnv

from openrl_ws.envs.push_lite import ACTION_DIM, AGENT_NUM, PushLiteVecEnv
from openrl_ws.inject import FaultSchedule


class PushLiteRslEnv(VecEnv):
    """``num_worlds`` push_lite worlds in rsl_rl's ``VecEnv`` contract, with ``--inject`` faults."""

    def __init__(self, num_worlds: int, *, steps_per_iteration: int, device: str = "cpu", seed: int = 0,
                 faults: FaultSchedule | None = None, notes: Any = None):
        self.world = PushLiteVecEnv(num_worlds, device=device, seed=seed)
        self.num_envs = num_worlds * AGENT_NUM
        self.num_actions = ACTION_DIM
        self.max_episode_length = self.world.cfg.max_episode_steps
        self.device = self.world.device
        self.cfg = {"task": "push_lite", "num_worlds": num_worlds}
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.steps_per_iteration = steps_per_iteration
        self.faults = faults or FaultSchedule(())
        self.notes = notes  # callable(str) for the fault-injection messages, or None
        self.iteration = 0  # rollouts begun so far (the iteration faults are keyed on)
        self._rollout_steps = 0
        self._obs = self._observations(self.world.reset())

    @property
    def step_dt(self) -> float:
        """Seconds per env step, as Isaac Lab's env has it (rsl_rl's RND scales its weight by it)."""
        return self.world.cfg.dt_s

    @property
    def unwrapped(self) -> "PushLiteRslEnv":
        return self

    def get_observations(self) -> TensorDict:
        return self._obs

    def reset(self) -> tuple[TensorDict, dict]:
        """New episodes everywhere; an unfinished rollout (a rollback's) counts as run."""
        if self._rollout_steps:
            self.iteration += 1
            self._rollout_steps = 0
        self.world.nan_next_step = False
        self._obs = self._observations(self.world.reset())
        self.episode_length_buf = torch.zeros_like(self.episode_length_buf)
        return self._obs, {}

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        if self._rollout_steps == 0:
            self._begin_iteration()
        obs, rewards, dones, _ = self.world.step(actions.detach().reshape(-1, AGENT_NUM, ACTION_DIM).cpu().numpy())
        timeouts = self.world.last_episode_outcomes["timeout"].repeat_interleave(AGENT_NUM)
        self._rollout_steps += 1
        if self._rollout_steps == self.steps_per_iteration:
            self.iteration, self._rollout_steps = self.iteration + 1, 0
        self._obs = self._observations(obs)
        self.episode_length_buf = self.world.step_count.repeat_interleave(AGENT_NUM)
        rewards = torch.as_tensor(rewards, device=self.device).reshape(-1)
        dones = torch.as_tensor(dones, device=self.device).reshape(-1).long()
        return self._obs, rewards, dones, {"time_outs": timeouts}

    def _begin_iteration(self) -> None:
        for note in self.faults.begin_iteration(self.iteration, self.world, trainer=None):
            if self.notes is not None:
                self.notes(f"inject: {note}")

    def _observations(self, obs: Any) -> TensorDict:
        policy = torch.as_tensor(obs, device=self.device).reshape(self.num_envs, -1)
        return TensorDict({"policy": policy}, batch_size=[self.num_envs], device=self.device)
