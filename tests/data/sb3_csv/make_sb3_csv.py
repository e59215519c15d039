"""Write real Stable-Baselines3 runs logged by SB3's CSV logger under tests/data/sb3_csv/.

    PYTHONPATH=. python tests/data/sb3_csv/make_sb3_csv.py

SB3 PPO on CartPole-v1 (2 envs x 32 steps an iteration, batch 64, 2 epochs, a 32x32 MLP, seed 0: the
settings of ../frameworks/make_runs.py), ITERATIONS iterations. One SB3 ``Logger`` writes every dump twice:
``<run>/csv/progress.csv`` (``CSVOutputFormat``: the run as a CSV-only user has it) and ``<run>/tensorboard/``
(``TensorBoardOutputFormat``, the same dumps), so a test can check that replay and watch read the CSV as they
read the TensorBoard file of the same run. Runs:

- ``cartpole_healthy``: as it is.
- ``cartpole_reward_fault``: every reward x REWARD_SCALE from env step FAULT_IT x 64 on (the env's own scale
  changes: the value loss blows up and the policy's updates with it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ITERATIONS = 150
FAULT_IT = 100
REWARD_SCALE = 1000.0
N_ENVS, N_STEPS = 2, 32


def train(name: str, fault: bool) -> None:
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat

    torch.set_num_threads(1)
    out = HERE / name
    if out.exists():
        shutil.rmtree(out)
    (out / "csv").mkdir(parents=True)
    steps = [0]

    def scaled(env):
        def reward(r):
            steps[0] += 1
            return r * REWARD_SCALE if steps[0] > FAULT_IT * N_STEPS * N_ENVS else r
        return gym.wrappers.TransformReward(env, reward)

    env = make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=0, wrapper_class=scaled if fault else None)
    model = PPO("MlpPolicy", env, n_steps=N_STEPS, batch_size=64, n_epochs=2, seed=0, verbose=0,
                policy_kwargs={"net_arch": [32, 32]})
    model.set_logger(Logger(None, [CSVOutputFormat(str(out / "csv" / "progress.csv")),
                                   TensorBoardOutputFormat(str(out / "tensorboard"))]))
    model.learn(total_timesteps=ITERATIONS * N_STEPS * N_ENVS)
    model.logger.close()
    print(name, sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()))


if __name__ == "__main__":
    train("cartpole_healthy", fault=False)
    train("cartpole_reward_fault", fault=True)
