"""Write healthy rsl_rl runs whose task gets harder as they learn, under tests/data/curriculum/ (CPU).

    PYTHONPATH=. python tests/data/curriculum/make_curriculum_runs.py [run ...]

Isaac Lab's tasks change while the policy learns: locomotion raises each robot's terrain level, and
manipulation (Lift, Reach) switches reward weights after a number of steps (``modify_reward_weight``:
the action-rate penalty x1000 at 10,000 steps). Where the reward changes, the logged return and the
critic's loss jump while the policy has not changed: a healthy run a watchdog must not roll back. Isaac
Lab logs each curriculum term as ``Curriculum/<term>`` (rsl_rl's ``extras["log"]``). push_lite with 512
envs x 2 agents (1,024 rsl_rl envs), rsl_rl with ``../mujoco``'s settings (Isaac Lab's locomotion PPO,
the adaptive KL schedule), seed 0. Two curricula:

- ``levels`` (terrain-style): each env has its own level L (0-3), one up after a success and one down
  after a timeout or an exception; at level L the agents move at (1 - 0.15 L) of their speed and the box
  must come within 0.3 (1 - 0.15 L) m of the target. The mean level is logged as ``Curriculum/levels``.
- ``reward_weight`` (Lift-style): from iteration ``STAGE_AT`` on, every step costs each agent
  ``PENALTY`` x its squared action (an action-magnitude penalty switched on, as ``modify_reward_weight``
  switches one): the weight is logged as ``Curriculum/action_penalty``, 0 -> -``PENALTY``, as Isaac
  Lab's term logs the weight it set.

(First attempts, not kept: the ``levels`` curriculum with 0.2 % x L of the steps also ending in the
exception penalty, and a ``stage`` of every env to level 3 at 250 on top of that. At that difficulty the
policy's std ran away in both runs, log-std -0.3 -> 2.0; the stage run's replay rolled back three times,
the first a ``blowup`` alarm at 253 on the critic's loss meeting the new task, 0.03 -> 10. A gentler
stage, every env to level 2 at 250 without the falls, moved the return by less than its noise.)

Checkpoints and rsl_rl's git-status folder are deleted afterwards.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DATE = "2026-11-30_22-00-00"
ENVS = 512
STEPS = 24  # rsl_rl's num_steps_per_env in ../mujoco's settings
MAX_LEVEL = 3
STAGE_AT, PENALTY = 250, 0.1
# run -> (library, curriculum, iterations)
RUNS = {
    "rsl_rl/push_lite_levels": ("rsl_rl", "levels", 600),
    "rsl_rl/push_lite_reward_weight": ("rsl_rl", "reward_weight", 600),
    # session 10, later: the same penalty in rl_games (Isaac Gym's PPO settings, value normalisation on, so the
    # 0.2 rule too), the term logged by Isaac Lab's IsaacAlgoObserver as Episode/Curriculum/action_penalty
    "rl_games/push_lite_reward_weight": ("rl_games", "reward_weight", 600),
}


def curriculum_env(mode: str, seed: int = 0, steps_per_iteration: int = STEPS):
    """push_lite with a curriculum (module docstring); ``curriculum()``: the term's value to log."""
    from openrl_ws.envs.push_lite import PushLiteVecEnv

    class CurriculumPushLite(PushLiteVecEnv):
        def __init__(self):
            self.levels = None  # the base class resets every env once before this exists
            self.env_steps = 0
            super().__init__(ENVS, seed=seed)
            self.levels = torch.zeros(self.num_envs, dtype=torch.long)

        def penalty(self) -> float:
            return PENALTY if mode == "reward_weight" and self.env_steps > STAGE_AT * steps_per_iteration else 0.0

        def curriculum(self) -> dict:
            if mode == "levels":
                return {"Curriculum/levels": self.levels.float().mean()}
            return {"Curriculum/action_penalty": -self.penalty()}

        def step(self, actions, extra_data=None, **kwargs):
            self.env_steps += 1
            obs, rewards, dones, infos = super().step(actions, extra_data, **kwargs)
            weight = self.penalty()
            if weight:
                act = np.clip(np.asarray(actions, dtype=np.float32).reshape(rewards.shape[0], 2, -1), -1.0, 1.0)
                rewards = rewards - weight * (act**2).sum(-1, keepdims=True)
            return obs, rewards, dones, infos

        def _reset_idx(self, mask: torch.Tensor) -> None:
            if mode == "levels" and self.levels is not None and self.env_steps:  # after a step, not the first reset
                outcomes = self.last_episode_outcomes
                up = mask & outcomes["success"]
                down = mask & (outcomes["timeout"] | outcomes["exception"])
                self.levels = (self.levels + up.long() - down.long()).clamp(0, MAX_LEVEL)
            super()._reset_idx(mask)

        def _move_agents(self, act: torch.Tensor) -> torch.Tensor:
            if self.levels is None:
                return super()._move_agents(act)
            return super()._move_agents(act * (1.0 - 0.15 * self.levels.float())[:, None, None])

        def _terminations(self):
            success, exception, timeout = super()._terminations()
            if self.levels is None:
                return success, exception, timeout
            radius = self.cfg.success_radius_m * (1.0 - 0.15 * self.levels.float())
            reached = ((self.target_pos - self.box_pos).norm(dim=-1) < radius) & ~exception
            timeout = (self.step_count >= self.cfg.max_episode_steps) & ~exception & ~reached
            return reached, exception, timeout

    return CurriculumPushLite()


def rsl_rl(name: str, mode: str, iterations: int, seed: int = 0) -> None:
    from tests.data.frameworks.make_runs import _push_lite_vecenv
    from tests.data.mujoco.make_mujoco_runs import rsl_rl_train

    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)
    env = _push_lite_vecenv(ENVS, None, STEPS, seed)
    env.inner = inner = curriculum_env(mode, seed)
    env._obs = env._wrap(inner.reset(seed=seed))
    plain_step = env.step

    def step(actions):
        obs, rewards, dones, extras = plain_step(actions)
        extras["log"] = inner.curriculum()
        return obs, rewards, dones, extras

    env.step = step
    rsl_rl_train(env, [128, 128], out / "logs" / DATE, iterations, None, save_interval=1000)


def rl_games(name: str, mode: str, epochs: int, seed: int = 0) -> None:
    """rl_games' Runner with Isaac Gym's PPO settings (../mujoco's ``rl_games_train``, rewards as they are) on the
    1,024 actors, with Isaac Lab's ``IsaacAlgoObserver``, which logs the env's ``infos["episode"]`` (the
    curriculum term) as ``Episode/<key>`` against the epoch."""
    from rl_games.common.algo_observer import IsaacAlgoObserver
    from rl_games.common.ivecenv import IVecEnv

    from tests.data.frameworks.make_runs import push_lite_rl_games_info
    from tests.data.mujoco.make_mujoco_runs import rl_games_train

    horizon, actors = 16, ENVS * 2

    class Actors(IVecEnv):
        """The curriculum env's (env, agent) pairs as rl_games actors."""

        def __init__(self):
            self.inner = curriculum_env(mode, seed, horizon)

        def step(self, actions):
            obs, rew, dones, _ = self.inner.step(np.asarray(actions).reshape(ENVS, 2, -1))
            episode = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in self.inner.curriculum().items()}
            return (obs.reshape(actors, -1), rew.reshape(actors).astype(np.float32),
                    dones.reshape(actors).astype(np.uint8), {"episode": episode})

        def reset(self):
            return self.inner.reset(seed=seed).reshape(actors, -1)

        def get_env_info(self):
            return push_lite_rl_games_info(self.inner, seed)

    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)  # rl_games 1.6.5 seeds nothing for seed 0 (../long_runs/README.md)
    rl_games_train(out / "runs", "push_lite", Actors, actors, epochs, reward_scale=1.0, fixed=False,
                   observer=IsaacAlgoObserver())


def main(argv: list[str]) -> int:
    from tests.data.make_each import make_each

    def make(name: str) -> None:
        library, *args = RUNS[name]
        {"rsl_rl": rsl_rl, "rl_games": rl_games}[library](name, *args)

    return make_each(RUNS, make, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
