"""Fixtures for tests that need a real OpenRL trainer."""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

OPENRL_ARGS = ["--episode_length", "16", "--hidden_size", "64", "--layer_N", "1", "--seed", "0",
               "--ppo_epoch", "2", "--num_mini_batch", "2"]


@contextmanager
def captured_driver(workdir, args=OPENRL_ARGS):
    """A real ``PPOAgent.train()`` set-up on CartPole whose driver stops before its loop, so tests
    can step it by hand. Yields ``(driver, env)``; one torch thread (tiny nets only contend)."""
    from openrl.runners.common import PPOAgent  # before the driver: openrl 0.2.0 has an import cycle
    from openrl.configs.config import create_config_parser
    from openrl.drivers.onpolicy_driver import OnPolicyDriver
    from openrl.envs.common import make
    from openrl.modules.common import PPONet

    captured = {}

    class CaptureDriver(OnPolicyDriver):
        def run(self):
            self.episodes, self.episode = 100, 0
            self.reset_and_buffer_init()
            captured["driver"] = self

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        env = make("CartPole-v1", env_num=2)
        net = PPONet(env, cfg=create_config_parser().parse_args(args))
        PPOAgent(net).train(total_time_steps=3200, driver_class=CaptureDriver)
    finally:
        os.chdir(cwd)
    try:
        yield captured["driver"], env
    finally:
        env.close()
        torch.set_num_threads(threads)


def iterate(driver):
    """One PPO iteration, as ``OnPolicyDriver._inner_loop`` runs it; returns the train infos."""
    driver.actor_rollout()
    info = driver.learner_update()
    driver.buffer.after_update()
    return info
