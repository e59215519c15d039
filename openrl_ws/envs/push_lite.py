"""push_lite: a torch-vectorised two-agent box-pushing task shaped like MAPush's ``go1push_mid``.

Two disc-shaped agents issue body-frame velocity commands ``(vx, vy, vyaw)`` in [-1, 1] and push a
cuboid box (1.0 x 0.6 m) to a target 1.5-3.0 m away. The physics is 2-D and quasi-static: an agent
that penetrates the box shares the penetration with it (the box takes ``box_share`` of it, along the
contact normal), and off-centre contacts rotate the box. Everything is batched over environments;
there is no Python loop over envs. Finished environments are reset inside ``step`` (masked), as
Isaac Gym tasks do, so the returned observation of a finished env is its new episode's first one.

The class implements the contract of MAPush's OpenRL wrapper (``agent_num``, ``parallel_env_num``,
``reset()``, ``step(actions, extra_data)``, ``batch_rewards(buffer)``, ``use_monitor``) so that
``PPONet(env, cfg)`` and ``PPOAgent(net).train(...)`` of OpenRL 0.2.0 run on it unchanged. It also
carries the fault-injection knobs the watchdog's training hook sets between iterations.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import gym
import gymnasium
import numpy as np
import torch

logger = logging.getLogger(__name__)

REWARD_COMPONENTS: tuple[str, ...] = (
    "distance_to_target_reward",
    "approach_to_box_reward",
    "push_reward",
    "ocb_reward",
    "collision_punishment",
    "reach_target_reward",
    "exception_punishment",
)
"""Reward component names, as MAPush's ``go1push_mid`` logs them."""

AGENT_NUM = 2
ACTION_DIM = 3
OBS_DIM = 21


@dataclass(frozen=True)
class PushLiteConfig:
    """Physical and reward constants of push_lite (SI units; rewards are per agent per step)."""

    dt_s: float = 0.1
    """Control period: one ``step`` advances the world by this many seconds."""
    max_episode_steps: int = 150
    """Timeout: an episode ends after this many steps (15 s at ``dt_s`` 0.1)."""
    max_lin_speed_mps: float = 1.0
    """Speed of an agent at action 1.0 along x or y (body frame)."""
    max_yaw_rate_rps: float = 2.0
    """Yaw rate of an agent at action 1.0."""
    agent_radius_m: float = 0.25
    """Agents are discs of this radius (a Go1 body is about 0.6 x 0.3 m)."""
    box_half_extents_m: tuple[float, float] = (0.5, 0.3)
    """Half length and half width of the cuboid box (MAPush's ``cuboid``: 1.0 x 0.6 m)."""
    box_share: float = 0.6
    """Fraction of an agent-box penetration resolved by moving the box; the agent takes the rest."""
    box_rot_gain: float = 0.5
    """Damping of the box's rotation from off-centre pushes (1.0: full rigid-body lever arm)."""
    arena_half_m: float = 5.0
    """An agent or the box beyond this |x| or |y| is an exception (episode ends, punished)."""
    target_dist_range_m: tuple[float, float] = (1.5, 3.0)
    """The target is placed this far from the box's start, at a uniform random angle."""
    agent_dist_range_m: tuple[float, float] = (1.0, 2.0)
    """Agents start this far from the box centre, at least 60 degrees apart around it."""
    success_radius_m: float = 0.3
    """The box centre within this distance of the target is a success."""
    distance_to_target_scale: float = 2.0
    """Reward per metre the box gets closer to the target."""
    approach_to_box_scale: float = 1.0
    """Reward per metre an agent gets closer to the box surface."""
    push_scale: float = 0.1
    """Reward per m/s of box speed towards the target, for each agent touching the box."""
    ocb_scale: float = 0.02
    """Optimal-contact bonus: cos(target direction, agent->box direction), weighted by proximity."""
    collision_scale: float = -0.1
    """Per step in which the two agents overlap."""
    reach_target_scale: float = 10.0
    """Once, on success."""
    exception_scale: float = -5.0
    """Once, when an agent or the box leaves the arena."""


def _resolve_device(device: str | torch.device) -> torch.device:
    """CUDA when asked for and present; otherwise CPU (with a warning if CUDA was asked for)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        logger.warning("push_lite: CUDA requested (%s) but not available; using CPU", device)
        return torch.device("cpu")
    return dev


def _rotate(vec: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate 2-D vectors ``(..., 2)`` by ``angle`` (broadcast over the leading dims)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    x, y = vec[..., 0], vec[..., 1]
    return torch.stack((cos * x - sin * y, sin * x + cos * y), dim=-1)


def _unit(vec: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalise 2-D vectors; zero vectors stay (almost) zero instead of becoming NaN."""
    return vec / vec.norm(dim=-1, keepdim=True).clamp_min(eps)


class PushLiteVecEnv:
    """``num_envs`` parallel push_lite worlds with 2 agents each, in the MAPush OpenRL contract."""

    env_name = "push_lite"
    agent_num = AGENT_NUM
    use_monitor = False
    """OpenRL reads the rollout summary from ``batch_rewards`` instead of a VecMonitor."""

    def __init__(
        self,
        num_envs: int,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        centralized_critic: bool = False,
        config: PushLiteConfig | None = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.cfg = config or PushLiteConfig()
        self.num_envs = self.parallel_env_num = int(num_envs)
        self.device = _resolve_device(device)
        self.centralized_critic = centralized_critic
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.observation_space = self._make_observation_space()

        # Fault-injection knobs (set between iterations by the training hook; defaults are no-ops).
        self.reward_scale: float = 1.0
        self.obs_noise_std: float = 0.0
        self.nan_next_step: bool = False

        self._box_half = torch.tensor(self.cfg.box_half_extents_m, device=self.device)
        half_x, half_y = self.cfg.box_half_extents_m
        self._gyration_sq = (half_x**2 + half_y**2) / 3.0  # box's (radius of gyration)^2
        self._generator = torch.Generator(device=self.device)
        self._allocate_state()
        self.seed(seed)
        self._reset_reward_buffer()
        self._reset_idx(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))

    # ------------------------------------------------------------------ OpenRL contract

    def seed(self, seed: int) -> None:
        """Reseed the env's own generator: same seed, same actions -> same trajectories."""
        self._generator.manual_seed(int(seed))

    def reset(self, seed: int | None = None, **kwargs: Any):
        """Reset every environment and return the first observations ``(num_envs, 2, obs_dim)``."""
        if seed is not None:
            self.seed(seed)
        self._reset_idx(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return self._to_output(self._observations())

    def step(self, actions, extra_data: dict[str, Any] | None = None, **kwargs: Any):
        """Advance all envs one control step; returns ``(obs, rewards, dones, infos)`` as numpy.

        ``rewards`` is ``(N, 2, 1)`` float32, ``dones`` ``(N, 2)`` bool, ``infos`` a list of N dicts.
        """
        act = torch.as_tensor(np.asarray(actions), dtype=torch.float32, device=self.device)
        act = act.reshape(self.num_envs, AGENT_NUM, ACTION_DIM).clamp(-1.0, 1.0)
        prev_box_pos = self.box_pos.clone()
        colliding = self._move_agents(act)
        touching = self._push_box()
        self.box_vel = (self.box_pos - prev_box_pos) / self.cfg.dt_s
        self.step_count += 1

        success, exception, timeout = self._terminations()
        components = self._reward_components(colliding, touching, success, exception)
        reward = self._finish_rewards(components)
        done = success | exception | timeout
        self.last_episode_outcomes = {"success": success, "exception": exception, "timeout": timeout}
        self._count_episodes(done, success)
        if done.any():
            self._reset_idx(done)

        obs = self._inject_obs_faults(self._observations())
        nan_step = self.nan_next_step
        if nan_step:
            reward = torch.full_like(reward, float("nan"))
            self.nan_next_step = False
        self._accumulate(components if not nan_step else {k: reward for k in components})
        dones = done[:, None].expand(-1, AGENT_NUM)
        infos = [{} for _ in range(self.num_envs)]
        return (
            self._to_output(obs),
            reward.unsqueeze(-1).cpu().numpy(),
            dones.cpu().numpy().astype(bool),
            infos,
        )

    def batch_rewards(self, buffer=None) -> dict[str, float]:
        """Per-agent step reward of each component averaged since the last call, then reset.

        Mirrors MAPush's wrapper: ``average_step_reward`` is the sum of the components.
        """
        steps = max(self._reward_steps, 1)
        out = {"average_step_reward": 0.0}
        for name in REWARD_COMPONENTS:
            out[name] = float(self._reward_sums[name]) / (self.num_envs * steps)
            out["average_step_reward"] += out[name]
        self._reset_reward_buffer()
        return out

    def episode_stats(self) -> dict[str, float]:
        """Episodes finished and their success rate since the last call, then reset."""
        episodes = int(self._episodes_done)
        successes = int(self._episodes_success)
        self._episodes_done.zero_()
        self._episodes_success.zero_()
        return {"episodes": episodes, "success_rate": successes / episodes if episodes else 0.0}

    def close(self, **kwargs: Any) -> None:
        """Nothing to release: the state is plain tensors."""

    # ------------------------------------------------------------------ state and reset

    def _make_observation_space(self):
        """A Box per agent; with a centralized critic, gymnasium Dict(policy, critic) as OpenRL reads it."""
        policy = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        if not self.centralized_critic:
            return policy
        # OpenRL's buffer only recognises gymnasium's Dict (isinstance check), not gym's; its Box
        # checks go by class name, so gymnasium Boxes inside it are read like gym's.
        box = gymnasium.spaces.Box
        return gymnasium.spaces.Dict(
            {
                "policy": box(-np.inf, np.inf, (OBS_DIM,), np.float32),
                "critic": box(-np.inf, np.inf, (OBS_DIM * AGENT_NUM,), np.float32),
            }
        )

    def _allocate_state(self) -> None:
        """Create the state tensors once; resets write into them."""
        n, dev = self.num_envs, self.device
        self.agent_pos = torch.zeros(n, AGENT_NUM, 2, device=dev)
        self.agent_yaw = torch.zeros(n, AGENT_NUM, device=dev)
        self.agent_cmd = torch.zeros(n, AGENT_NUM, ACTION_DIM, device=dev)
        self.box_pos = torch.zeros(n, 2, device=dev)
        self.box_yaw = torch.zeros(n, device=dev)
        self.box_vel = torch.zeros(n, 2, device=dev)
        self.target_pos = torch.zeros(n, 2, device=dev)
        self.step_count = torch.zeros(n, dtype=torch.long, device=dev)
        self.prev_box_target_dist = torch.zeros(n, device=dev)
        self.prev_agent_box_dist = torch.zeros(n, AGENT_NUM, device=dev)
        self._episodes_done = torch.zeros((), dtype=torch.long, device=dev)
        self._episodes_success = torch.zeros((), dtype=torch.long, device=dev)
        self.last_episode_outcomes: dict[str, torch.Tensor] = {}

    def _uniform(self, low: float, high: float, *shape: int) -> torch.Tensor:
        """Uniform samples from the env's own generator."""
        u = torch.rand(*shape, generator=self._generator, device=self.device)
        return low + (high - low) * u

    def _reset_idx(self, mask: torch.Tensor) -> None:
        """Start new episodes where ``mask`` is True (fresh samples for all envs, kept where masked)."""
        n, cfg = self.num_envs, self.cfg
        box_yaw = self._uniform(0.0, 2 * math.pi, n)
        target_angle = self._uniform(0.0, 2 * math.pi, n)
        target_dist = self._uniform(*cfg.target_dist_range_m, n)
        target = torch.stack((torch.cos(target_angle), torch.sin(target_angle)), -1) * target_dist[:, None]
        first = self._uniform(0.0, 2 * math.pi, n)
        second = first + self._uniform(math.pi / 3, 5 * math.pi / 3, n)
        angles = torch.stack((first, second), dim=1)
        radius = self._uniform(*cfg.agent_dist_range_m, n, AGENT_NUM)
        agent_pos = torch.stack((torch.cos(angles), torch.sin(angles)), -1) * radius[..., None]
        agent_yaw = self._uniform(-math.pi, math.pi, n, AGENT_NUM)

        m1, m2 = mask[:, None], mask[:, None, None]
        self.box_pos = torch.where(m1, torch.zeros_like(self.box_pos), self.box_pos)
        self.box_yaw = torch.where(mask, box_yaw, self.box_yaw)
        self.box_vel = torch.where(m1, torch.zeros_like(self.box_vel), self.box_vel)
        self.target_pos = torch.where(m1, target, self.target_pos)
        self.agent_pos = torch.where(m2, agent_pos, self.agent_pos)
        self.agent_yaw = torch.where(m1, agent_yaw, self.agent_yaw)
        self.agent_cmd = torch.where(m2, torch.zeros_like(self.agent_cmd), self.agent_cmd)
        self.step_count = torch.where(mask, torch.zeros_like(self.step_count), self.step_count)
        self.prev_box_target_dist = torch.where(
            mask, (self.target_pos - self.box_pos).norm(dim=-1), self.prev_box_target_dist
        )
        surface, *_ = self._box_contact()
        self.prev_agent_box_dist = torch.where(m1, surface, self.prev_agent_box_dist)

    # ------------------------------------------------------------------ physics

    def _move_agents(self, act: torch.Tensor) -> torch.Tensor:
        """Integrate the body-frame velocity commands; separate overlapping agents.

        Returns ``(N,)`` bool: the two agents overlapped this step (before separation).
        """
        cfg = self.cfg
        self.agent_cmd = act
        lin_body = act[..., :2] * cfg.max_lin_speed_mps
        self.agent_pos = self.agent_pos + _rotate(lin_body, self.agent_yaw) * cfg.dt_s
        self.agent_yaw = self.agent_yaw + act[..., 2] * cfg.max_yaw_rate_rps * cfg.dt_s
        self.agent_yaw = torch.remainder(self.agent_yaw + math.pi, 2 * math.pi) - math.pi

        delta = self.agent_pos[:, 1] - self.agent_pos[:, 0]
        dist = delta.norm(dim=-1)
        overlap = (2 * cfg.agent_radius_m - dist).clamp_min(0.0)
        push = _unit(delta) * (overlap / 2)[:, None]
        self.agent_pos = self.agent_pos + torch.stack((-push, push), dim=1)
        return overlap > 0

    def _box_contact(self):
        """Agent-box geometry in the box frame.

        Returns ``(surface_dist (N,2), penetration (N,2), normal_world (N,2,2), contact_world (N,2,2))``;
        the normal points from the box towards the agent.
        """
        half = self._box_half
        local = _rotate(self.agent_pos - self.box_pos[:, None], -self.box_yaw[:, None])
        closest = torch.maximum(torch.minimum(local, half), -half)
        diff = local - closest
        out_dist = diff.norm(dim=-1)
        inside = out_dist < 1e-6
        # Inside the box (possible after a large step): leave through the nearest face.
        depth = half - local.abs()
        axis_x = depth[..., 0] < depth[..., 1]
        sign = torch.where(local >= 0, 1.0, -1.0)
        in_normal = torch.stack(
            (torch.where(axis_x, sign[..., 0], 0.0), torch.where(axis_x, 0.0, sign[..., 1])), -1
        )
        in_depth = torch.where(axis_x, depth[..., 0], depth[..., 1])
        normal_local = torch.where(inside[..., None], in_normal, _unit(diff))
        signed_dist = torch.where(inside, -in_depth, out_dist)
        surface = (signed_dist - self.cfg.agent_radius_m).clamp_min(0.0)
        penetration = (self.cfg.agent_radius_m - signed_dist).clamp_min(0.0)
        contact_local = torch.where(inside[..., None], local, closest)
        normal_world = _rotate(normal_local, self.box_yaw[:, None])
        contact_world = _rotate(contact_local, self.box_yaw[:, None])
        return surface, penetration, normal_world, contact_world

    def _push_box(self) -> torch.Tensor:
        """Resolve agent-box penetration (the box takes ``box_share`` and turns); returns touching (N, 2)."""
        cfg = self.cfg
        _, pen, normal, arm = self._box_contact()
        touching = pen > 0
        force = -normal * pen[..., None]  # into the box
        self.agent_pos = self.agent_pos - force * (1 - cfg.box_share)
        self.box_pos = self.box_pos + (force * cfg.box_share).sum(dim=1)
        torque = arm[..., 0] * force[..., 1] - arm[..., 1] * force[..., 0]
        turn = cfg.box_rot_gain * cfg.box_share * torque.sum(dim=1) / self._gyration_sq
        self.box_yaw = self.box_yaw + turn
        return touching

    def _terminations(self):
        """``(success, exception, timeout)``, each ``(N,)`` bool; exception wins over success."""
        cfg = self.cfg
        box_target = (self.target_pos - self.box_pos).norm(dim=-1)
        out_of_arena = (self.agent_pos.abs() > cfg.arena_half_m).flatten(1).any(dim=1) | (
            self.box_pos.abs() > cfg.arena_half_m
        ).any(dim=1)
        not_finite = ~torch.isfinite(self.agent_pos).flatten(1).all(dim=1) | ~torch.isfinite(box_target)
        exception = out_of_arena | not_finite
        success = (box_target < cfg.success_radius_m) & ~exception
        timeout = (self.step_count >= cfg.max_episode_steps) & ~exception & ~success
        return success, exception, timeout

    # ------------------------------------------------------------------ rewards

    def _reward_components(self, colliding, touching, success, exception) -> dict[str, torch.Tensor]:
        """Each named reward component per agent, ``(N, 2)``, before ``reward_scale``."""
        cfg = self.cfg
        to_target = self.target_pos - self.box_pos
        box_target = to_target.norm(dim=-1)
        direction = _unit(to_target)
        surface, *_ = self._box_contact()
        progress = torch.nan_to_num(self.prev_box_target_dist - box_target)
        approach = torch.nan_to_num(self.prev_agent_box_dist - surface)
        self.prev_box_target_dist, self.prev_agent_box_dist = box_target, surface

        behind = (_unit(self.box_pos[:, None] - self.agent_pos) * direction[:, None]).sum(-1)
        speed_to_target = (self.box_vel * direction).sum(-1).clamp_min(0.0)
        ones = torch.ones_like(surface)
        return {
            "distance_to_target_reward": cfg.distance_to_target_scale * progress[:, None] * ones,
            "approach_to_box_reward": cfg.approach_to_box_scale * approach,
            "push_reward": cfg.push_scale * touching * speed_to_target[:, None],
            "ocb_reward": cfg.ocb_scale * behind * torch.exp(-surface),
            "collision_punishment": cfg.collision_scale * colliding[:, None] * ones,
            "reach_target_reward": cfg.reach_target_scale * success[:, None] * ones,
            "exception_punishment": cfg.exception_scale * exception[:, None] * ones,
        }

    def _finish_rewards(self, components: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply ``reward_scale`` to every component (so they still sum to the reward) and sum them."""
        for name in components:
            components[name] = components[name] * self.reward_scale
        self.last_reward_components = components
        return torch.stack(list(components.values())).sum(dim=0)

    def _reset_reward_buffer(self) -> None:
        """Zero the per-component sums that ``batch_rewards`` averages."""
        self._reward_sums = {name: torch.zeros((), device=self.device) for name in REWARD_COMPONENTS}
        self._reward_steps = 0

    def _accumulate(self, components: dict[str, torch.Tensor]) -> None:
        """Add this step's per-env (agent-averaged) component values to the buffer."""
        for name, value in components.items():
            self._reward_sums[name] += value.mean(dim=1).sum()
        self._reward_steps += 1

    def _count_episodes(self, done: torch.Tensor, success: torch.Tensor) -> None:
        """Count finished episodes and successes for ``episode_stats``."""
        self._episodes_done += done.sum()
        self._episodes_success += success.sum()

    # ------------------------------------------------------------------ observations

    def _observations(self) -> torch.Tensor:
        """Per-agent observation ``(N, 2, OBS_DIM)``: the world relative to the box and to the agent."""
        yaw, box_yaw = self.agent_yaw, self.box_yaw[:, None]
        pos, other = self.agent_pos, self.agent_pos.flip(1)
        box, target = self.box_pos[:, None], self.target_pos[:, None]
        box_rel_yaw = box_yaw - yaw
        max_speed = self.cfg.max_lin_speed_mps
        parts = (
            _rotate(pos - box, -box_yaw),  # agent in box frame
            torch.stack((torch.cos(-box_rel_yaw), torch.sin(-box_rel_yaw)), -1),  # heading in box frame
            _rotate(target - box, -box_yaw).expand(-1, AGENT_NUM, -1),  # target in box frame
            _rotate(box - pos, -yaw),  # box in agent frame
            _rotate(target - pos, -yaw),  # target in agent frame
            torch.stack((torch.cos(box_yaw), torch.sin(box_yaw)), -1).expand(-1, AGENT_NUM, -1),
            _rotate(other - pos, -yaw),  # other agent in agent frame
            _rotate(other - box, -box_yaw),  # other agent in box frame
            self.agent_cmd,  # own velocity command (body frame, normalised)
            _rotate(self.box_vel[:, None], -yaw) / max_speed,  # box velocity in agent frame
        )
        return torch.cat(parts, dim=-1)

    def _inject_obs_faults(self, obs: torch.Tensor) -> torch.Tensor:
        """Apply the ``obs_noise_std`` and ``nan_next_step`` knobs to the returned observations."""
        if self.obs_noise_std > 0:
            noise = torch.randn(obs.shape, generator=self._generator, device=self.device)
            obs = obs + self.obs_noise_std * noise
        if self.nan_next_step:
            obs = torch.full_like(obs, float("nan"))
        return obs

    def _to_output(self, obs: torch.Tensor):
        """numpy float32 ``(N, 2, OBS_DIM)``, or ``{"policy", "critic"}`` with a centralized critic."""
        policy = obs.to(torch.float32).cpu().numpy()
        if not self.centralized_critic:
            return policy
        # Agent-centric global state: own observation first, then the other agent's.
        critic = torch.cat((obs, obs.flip(1)), dim=-1).to(torch.float32).cpu().numpy()
        return {"policy": policy, "critic": critic}
