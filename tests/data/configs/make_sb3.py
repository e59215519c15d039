"""SB3 PPO healthy runs in configurations not in tests/data (at the time).
    PYTHONPATH=. nice -n 10 python tests/data/configs/make_sb3.py NAME
Output: tests/data/configs/sb3/NAME/PPO_1/events..."""
import shutil, sys
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(1)
if not hasattr(np, "float_"):
    np.float_ = np.float64  # gymnasium 0.29.1's Acrobot on numpy 2
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

OUT = Path(__file__).resolve().parent / "sb3"

def lin(v):
    return lambda p: p * v

RUNS = {
    # rl-zoo CartPole-v1 entry: 8 envs, n_steps 32, batch 256, gae 0.8, gamma 0.98, 20 epochs, ent 0, lr lin 1e-3, clip lin 0.2
    "cartpole_zoo": dict(env="CartPole-v1", n_envs=8, steps=100_000, norm=None,
                         kw=dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                                 learning_rate=lin(1e-3), clip_range=lin(0.2))),
    # SB3 defaults (n_steps 2048, batch 64, 10 epochs) on CartPole, 4 envs, log_interval 1
    "cartpole_defaults_big_nsteps": dict(env="CartPole-v1", n_envs=4, steps=250_000, norm=None, kw=dict()),
    # Pendulum with gSDE, no advantage normalisation, VecNormalize(norm_reward=False): value loss in return units
    "pendulum_sde_noadvnorm": dict(env="Pendulum-v1", n_envs=4, steps=150_000, norm=dict(norm_obs=True, norm_reward=False),
                                   kw=dict(n_steps=256, batch_size=64, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
                                           learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4,
                                           normalize_advantage=False)),
    "pendulum_sde_noadvnorm_long": dict(env="Pendulum-v1", n_envs=4, steps=260_000, norm=dict(norm_obs=True, norm_reward=False),
                                   kw=dict(n_steps=256, batch_size=64, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
                                           learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4,
                                           normalize_advantage=False)),
    # the same, 3x longer: after the plateau at 1000 a rare dropped pole meets a critic at 1e-6
    "invpendulum_default_long": dict(env="InvertedPendulum-v4", n_envs=4, steps=300_000, norm=None,
                                     kw=dict(n_steps=256, batch_size=64, n_epochs=10)),
    # zoo CartPole settings but a constant lr 3e-4 and 200k steps: a long plateau at 500 (critic at ~1e-6)
    "cartpole_zoo_constlr_long": dict(env="CartPole-v1", n_envs=8, steps=200_000, norm=None,
                                      kw=dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                                              ent_coef=0.0, learning_rate=3e-4, clip_range=0.2)),
    # attribution: the same long gSDE run with SB3's default advantage normalisation
    "pendulum_sde_advnorm_long": dict(env="Pendulum-v1", n_envs=4, steps=260_000, norm=dict(norm_obs=True, norm_reward=False),
                                      kw=dict(n_steps=256, batch_size=64, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
                                              learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4)),
    # gSDE on a MuJoCo task: SB3 defaults + use_sde, VecNormalize (obs + reward), 150k steps
    "hopper_sde_vecnorm": dict(env="Hopper-v4", n_envs=1, steps=150_000, norm=dict(norm_obs=True, norm_reward=True),
                               kw=dict(n_steps=512, batch_size=64, n_epochs=10, learning_rate=3e-4, use_sde=True,
                                       sde_sample_freq=4)),
    # HalfCheetah, VecNormalize(norm_reward=False): large returns, value loss in return units, SB3 default 64x64 policy
    "halfcheetah_normobs_only": dict(env="HalfCheetah-v4", n_envs=1, steps=150_000, norm=dict(norm_obs=True, norm_reward=False),
                                     kw=dict(n_steps=512, batch_size=64, gamma=0.99, n_epochs=10, learning_rate=3e-4)),
    # CartPole with log_interval=4 (one record every 4 updates), target_kl 0.02
    "cartpole_loginterval4_targetkl": dict(env="CartPole-v1", n_envs=8, steps=150_000, norm=None, log_interval=4,
                                           kw=dict(n_steps=64, batch_size=128, n_epochs=10, target_kl=0.02, ent_coef=0.01)),
    # session 22's audit: Acrobot (a sparse task: -500 until the first successes), the Zoo's PPO settings but n_steps 16
    # and VecNormalize on the observations only (the value loss in return units), 80k steps; return -500 -> about -440
    "acrobot_obsnorm_sparse": dict(env="Acrobot-v1", n_envs=16, steps=80_000, norm=dict(norm_obs=True, norm_reward=False),
                                   kw=dict(n_steps=16, batch_size=64, gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0)),
    # MountainCar discrete? (sparse, usually does not learn) -> InvertedPendulum: return leaps to 1000
    "invpendulum_default": dict(env="InvertedPendulum-v4", n_envs=4, steps=120_000, norm=None,
                                kw=dict(n_steps=256, batch_size=64, n_epochs=10)),
}

def main(name, seed=0):
    c = RUNS[name]
    out = OUT / (name if seed == 0 else f"{name}_seed{seed}")
    shutil.rmtree(out, ignore_errors=True)
    env = make_vec_env(c["env"], n_envs=c["n_envs"], seed=seed)
    if c["norm"] is not None:
        env = VecNormalize(env, gamma=c["kw"].get("gamma", 0.99), **c["norm"])
    model = PPO("MlpPolicy", env, seed=seed, verbose=0, device="cpu", tensorboard_log=str(out), **c["kw"])
    model.learn(c["steps"], tb_log_name="PPO", log_interval=c.get("log_interval", 1))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
