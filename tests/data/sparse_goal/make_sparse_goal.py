"""Write healthy SB3 runs on a sparse-goal task under tests/data/sparse_goal/ with the real library.

    PYTHONPATH=. python tests/data/sparse_goal/make_sparse_goal.py [run ...]

MountainCarContinuous-v0 pays -0.1 a^2 a step and +100 once the car reaches the flag. Until the first
episodes reach it the critic fits returns of about -1 to -3 almost exactly (value loss 1e-6 to 5e-4);
the first successes bring returns it has never seen, and SB3's value loss (unnormalised targets) blows
up by 10^3-10^4x in one update while the run is learning. These runs use the RL Baselines3 Zoo
hyper-parameters for this task (batch 256, 8 x 64 steps, gamma 0.9999, lr 7.77e-5, gSDE, log-std
init -3.29, VecNormalize) as published with the zoo; "raw" runs drop VecNormalize. One env, CPU,
one torch thread, 60,000 steps (117 PPO updates) each. SB3's own TensorBoard logger writes the events;
nothing is edited afterwards and no checkpoint is kept.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = 60_000

# run folder -> (VecNormalize, seed, initial log-std)
RUNS = {
    "zoo_norm_seed0": (True, 0, -3.29),
    "zoo_norm_seed1": (True, 1, -3.29),
    "zoo_norm_seed2": (True, 2, -3.29),
    "zoo_raw_seed0": (False, 0, -3.29),
    "zoo_raw_seed2_std1": (False, 2, 0.0),
}


def build(name: str, tensorboard_log: str | None = None):
    """Run ``name``'s SB3 PPO model and environment, untrained (also what the live test trains)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    normalize, seed, log_std_init = RUNS[name]
    env = make_vec_env("MountainCarContinuous-v0", n_envs=1, seed=seed)
    if normalize:
        env = VecNormalize(env, gamma=0.9999)
    return PPO("MlpPolicy", env, batch_size=256, n_steps=8 * 64, gamma=0.9999, learning_rate=7.77e-05,
               ent_coef=0.00429, clip_range=0.1, n_epochs=10, gae_lambda=0.9, max_grad_norm=5, vf_coef=0.19,
               use_sde=True, policy_kwargs=dict(log_std_init=log_std_init, ortho_init=False),
               tensorboard_log=tensorboard_log, seed=seed, verbose=0, device="cpu")


def train(name: str) -> float:
    """Train one run into HERE/<name>/PPO_1/; wall seconds."""
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    model = build(name, str(out))
    start = time.perf_counter()
    model.learn(STEPS, tb_log_name="PPO")
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    for name in argv or list(RUNS):
        if name not in RUNS:
            print(f"unknown run {name!r}; runs: {', '.join(RUNS)}", file=sys.stderr)
            return 2
        print(f"{name}: {train(name):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
