"""push_lite: the OpenRL wrapper contract, determinism, auto-reset, rewards, fault knobs, task errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from openrl_ws.envs import REWARD_COMPONENTS, TASKS, PushLiteVecEnv, make_env
from openrl_ws.envs.push_lite import ACTION_DIM, AGENT_NUM, OBS_DIM
from watchdog.errors import InputError

REAL_LOG_KEYS = {
    "average_step_reward",
    "distance_to_target_reward",
    "approach_to_box_reward",
    "push_reward",
    "ocb_reward",
    "collision_punishment",
    "reach_target_reward",
    "exception_punishment",
}


def random_actions(num_envs: int, steps: int, seed: int = 0) -> np.ndarray:
    """A fixed sequence of random actions, slightly beyond [-1, 1] as a Gaussian policy emits."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.8, (steps, num_envs, AGENT_NUM, ACTION_DIM)).astype(np.float32)


def rollout(env: PushLiteVecEnv, actions: np.ndarray):
    """Step through ``actions``; returns stacked obs, rewards, dones."""
    out = [env.step(a) for a in actions]
    return tuple(np.stack([o[i] for o in out]) for i in range(3))


def test_reset_and_step_shapes_and_dtypes():
    env = make_env("push_lite", 8, seed=0)
    obs = env.reset(seed=0)
    assert obs.shape == (8, AGENT_NUM, OBS_DIM) and obs.dtype == np.float32
    obs, rewards, dones, infos = env.step(random_actions(8, 1)[0])
    assert obs.shape == (8, AGENT_NUM, OBS_DIM) and obs.dtype == np.float32
    assert rewards.shape == (8, AGENT_NUM, 1) and rewards.dtype == np.float32
    assert dones.shape == (8, AGENT_NUM) and dones.dtype == np.bool_
    assert isinstance(infos, list) and len(infos) == 8 and all(info == {} for info in infos)
    assert env.agent_num == AGENT_NUM and env.parallel_env_num == 8 and env.use_monitor is False
    assert env.observation_space.shape == (OBS_DIM,) and env.action_space.shape == (ACTION_DIM,)
    assert env.env_name == "push_lite"


def test_same_seed_same_trajectory_other_seed_differs():
    actions = random_actions(16, 60)
    first, second, other = (make_env("push_lite", 16, seed=s) for s in (3, 3, 4))
    runs = [(env.reset(seed=s), *rollout(env, actions)) for env, s in ((first, 3), (second, 3), (other, 4))]
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_timeout_ends_the_episode_and_resets_inside_step():
    env = make_env("push_lite", 32, seed=1)
    first_obs = env.reset()
    still = np.zeros((32, AGENT_NUM, ACTION_DIM), np.float32)  # nobody moves: only the timeout ends it
    limit = env.cfg.max_episode_steps
    for step in range(1, limit):
        _, _, dones, _ = env.step(still)
        assert not dones.any(), f"done at step {step} before the {limit}-step timeout"
    obs, _, dones, _ = env.step(still)
    assert dones.all()
    assert env.last_episode_outcomes["timeout"].all()
    assert (env.step_count == 0).all(), "finished envs must start a new episode inside step"
    assert not np.allclose(obs, first_obs), "the returned obs must be the new episode's first obs"


def test_reset_masks_only_finished_envs():
    env = make_env("push_lite", 8, seed=2)
    env.reset()
    env.box_pos[3] = torch.tensor([env.cfg.arena_half_m + 1.0, 0.0])  # box leaves the arena in env 3
    box_before = env.box_pos.clone()
    _, rewards, dones, _ = env.step(np.zeros((8, AGENT_NUM, ACTION_DIM), np.float32))
    assert dones[:, 0].tolist() == [i == 3 for i in range(8)]
    assert rewards[3, :, 0].max() <= env.cfg.exception_scale + 0.5
    assert torch.equal(env.box_pos[3], torch.zeros(2)), "env 3 restarts with the box at the origin"
    keep = [i for i in range(8) if i != 3]
    assert torch.equal(env.box_pos[keep], box_before[keep]), "untouched envs keep their state"


def test_reaching_the_target_is_a_rewarded_success():
    env = make_env("push_lite", 4, seed=0)
    env.reset()
    env.box_pos[:] = env.target_pos - torch.tensor([0.1, 0.0])
    _, rewards, dones, _ = env.step(np.zeros((4, AGENT_NUM, ACTION_DIM), np.float32))
    assert dones.all() and env.last_episode_outcomes["success"].all()
    assert (rewards >= env.cfg.reach_target_scale - 1.0).all()
    assert env.episode_stats() == {"episodes": 4, "success_rate": 1.0}


def test_pushing_moves_the_box_along_the_push():
    env = make_env("push_lite", 1, seed=0)
    env.reset()
    env.box_yaw[:] = 0.0
    env.agent_pos[0] = torch.tensor([[-0.8, 0.0], [0.0, 3.0]])  # agent 0 behind the -x face
    env.agent_yaw[:] = 0.0
    forward = np.zeros((1, AGENT_NUM, ACTION_DIM), np.float32)
    forward[0, 0, 0] = 1.0
    for _ in range(10):
        env.step(forward)
    assert env.box_pos[0, 0] > 0.2 and abs(float(env.box_pos[0, 1])) < 0.05
    assert abs(float(env.box_yaw[0])) < 0.05, "a centred push does not turn the box"


def test_reward_components_sum_to_the_step_reward():
    env = make_env("push_lite", 64, seed=5)
    env.reset()
    for actions in random_actions(64, 40, seed=5):
        _, rewards, _, _ = env.step(actions)
        total = torch.stack(list(env.last_reward_components.values())).sum(0)
        np.testing.assert_allclose(rewards[..., 0], total.numpy(), rtol=1e-5, atol=1e-6)
    assert set(env.last_reward_components) == set(REWARD_COMPONENTS)


def test_batch_rewards_averages_since_last_call_then_resets():
    env = make_env("push_lite", 32, seed=6)
    env.reset()
    _, rewards, _ = rollout(env, random_actions(32, 25, seed=6))
    summary = env.batch_rewards(None)
    assert set(summary) == REAL_LOG_KEYS
    assert summary["average_step_reward"] == pytest.approx(float(rewards.mean()), rel=1e-4, abs=1e-7)
    parts = sum(v for k, v in summary.items() if k != "average_step_reward")
    assert summary["average_step_reward"] == pytest.approx(parts)
    assert all(v == 0.0 for v in env.batch_rewards(None).values())


def test_reward_scale_multiplies_rewards_and_summary():
    actions = random_actions(16, 20, seed=7)
    plain, scaled = make_env("push_lite", 16, seed=7), make_env("push_lite", 16, seed=7)
    scaled.reward_scale = 100.0
    _, r_plain, _ = rollout(plain, actions)
    _, r_scaled, _ = rollout(scaled, actions)
    np.testing.assert_allclose(r_scaled, 100.0 * r_plain, rtol=1e-4, atol=1e-6)
    assert scaled.batch_rewards()["average_step_reward"] == pytest.approx(
        100.0 * plain.batch_rewards()["average_step_reward"], rel=1e-4
    )


def test_nan_next_step_poisons_one_step_then_clears():
    env = make_env("push_lite", 8, seed=8)
    env.reset()
    actions = random_actions(8, 3, seed=8)
    env.nan_next_step = True
    obs, rewards, _, _ = env.step(actions[0])
    assert np.isnan(obs).all() and np.isnan(rewards).all()
    assert env.nan_next_step is False
    assert np.isnan(env.batch_rewards()["average_step_reward"]), "the summary sees what was returned"
    obs, rewards, _, _ = env.step(actions[1])
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()


def test_obs_noise_changes_observations_only():
    actions = random_actions(8, 5, seed=9)
    plain, noisy = make_env("push_lite", 8, seed=9), make_env("push_lite", 8, seed=9)
    noisy.obs_noise_std = 0.5
    o_plain, r_plain, _ = rollout(plain, actions)
    o_noisy, r_noisy, _ = rollout(noisy, actions)
    assert 0.3 < float(np.std(o_noisy - o_plain)) < 0.7
    np.testing.assert_array_equal(r_plain, r_noisy)


def test_steps_all_envs_as_one_batch():
    """4096 envs in one tensor batch: no per-env Python loop, every env advances each step."""
    env = make_env("push_lite", 4096, seed=10)
    before = env.agent_pos.clone()
    ones = np.ones((4096, AGENT_NUM, ACTION_DIM), np.float32)
    obs, rewards, dones, infos = env.step(ones)
    assert obs.shape == (4096, AGENT_NUM, OBS_DIM) and len(infos) == 4096
    moved = (env.agent_pos - before).norm(dim=-1) > 0
    assert bool(moved.all())
    assert env.agent_pos.shape == (4096, AGENT_NUM, 2)


def test_centralized_critic_gives_policy_and_critic_observations():
    env = make_env("push_lite", 4, seed=0, centralized_critic=True)
    obs = env.reset()
    assert obs["policy"].shape == (4, AGENT_NUM, OBS_DIM)
    assert obs["critic"].shape == (4, AGENT_NUM, AGENT_NUM * OBS_DIM)
    np.testing.assert_array_equal(obs["critic"][:, 0, OBS_DIM:], obs["policy"][:, 1])
    assert env.observation_space["critic"].shape == (AGENT_NUM * OBS_DIM,)


@pytest.mark.skipif(importlib.util.find_spec("isaacgym") is not None, reason="Isaac Gym is installed")
@pytest.mark.parametrize("task", ["go1push_mid", "go1push_upper"])
def test_mqe_task_without_isaac_gym_points_to_push_lite(task):
    with pytest.raises(InputError) as err:
        make_env(task, 4)
    message = str(err.value)
    assert "\n" not in message
    assert "Isaac Gym" in message and "MQE" in message and "push_lite" in message


def test_unknown_task_lists_the_legal_tasks():
    with pytest.raises(InputError) as err:
        make_env("go1push_high", 4)
    assert all(task in str(err.value) for task in TASKS)
    assert TASKS == ("push_lite", "go1push_mid", "go1push_upper")


@pytest.mark.parametrize("algo", ["ppo", "mappo"])
def test_openrl_ppo_trains_a_few_iterations(algo, tmp_path):
    """CleanRL-style smoke test: OpenRL 0.2.0's own PPONet/PPOAgent run on push_lite."""
    from openrl.modules.common import PPONet  # noqa: PLC0415  (before callbacks: import cycle)
    from openrl.runners.common import PPOAgent  # noqa: PLC0415
    from openrl.configs.config import create_config_parser  # noqa: PLC0415

    env = make_env("push_lite", 8, seed=0, centralized_critic=algo == "mappo")
    cfg = create_config_parser().parse_args(
        ["--episode_length", "16", "--hidden_size", "32", "--ppo_epoch", "2", "--seed", "0",
         "--log_interval", "1000", "--run_dir", str(tmp_path)]
    )
    net = PPONet(env, cfg=cfg)
    critic_in = net.module.models["critic"].base.mlp.fc1[0].in_features
    policy_in = net.module.models["policy"].base.mlp.fc1[0].in_features
    assert critic_in == (AGENT_NUM * OBS_DIM if algo == "mappo" else OBS_DIM)
    assert policy_in == OBS_DIM
    agent = PPOAgent(net)
    agent.train(total_time_steps=3 * 8 * 16)
    assert agent.num_time_steps == 3 * 8 * 16
    params = torch.cat([p.detach().flatten() for p in net.module.models["policy"].parameters()])
    assert torch.isfinite(params).all()
