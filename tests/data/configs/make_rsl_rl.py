"""rsl_rl (5.5.1) OnPolicyRunner healthy runs in configurations not in tests/data (at the time).
    PYTHONPATH=. nice -n 10 python tests/data/configs/make_rsl_rl.py NAME [seed]
Output: tests/data/configs/rsl_rl/NAME/logs/<date>/events..."""
import shutil, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from rsl_rl.runners import OnPolicyRunner
from tests.data.mujoco.make_mujoco_runs import gym_vecenv, rsl_rl_cfg

OUT = Path(__file__).resolve().parent / "rsl_rl"

RUNS = {
    # Pendulum-v1: fixed 200-step episodes (every env ends together), return -1200 -> -200, value loss in return
    # units; Isaac Lab's default PPO (adaptive KL schedule) + empirical (obs) normalization on; actions x2
    "pendulum_adaptive_obsnorm": dict(env="Pendulum-v1", n_envs=64, its=300, scale=2.0, obs_norm=True, hidden=[128, 128]),
    # InvertedPendulum-v4: the return leaps from ~5 to 1000 as it learns to balance; obs normalization on
    "invpendulum_adaptive_obsnorm": dict(env="InvertedPendulum-v4", n_envs=32, its=300, scale=1.0, obs_norm=True, hidden=[128, 128]),
    # Pusher-v4 (fixed 100-step episodes, a negative dense return), adaptive + obs norm, 400 its
    "pusher_adaptive_obsnorm": dict(env="Pusher-v4", n_envs=32, its=300, scale=1.0, obs_norm=True, hidden=[256, 128, 64]),
    # Hopper with obs normalization, 48 steps per env, entropy 0.0, larger lr adaptive
    "hopper_obsnorm_48steps": dict(env="Hopper-v4", n_envs=32, its=300, scale=1.0, obs_norm=True, hidden=[256, 128, 64], steps=48),
}

def main(name, seed=0):
    c = RUNS[name]
    n_envs, env_id, scale = c["n_envs"], c["env"], c["scale"]

    torch.manual_seed(seed)
    out = OUT / (name if seed == 0 else f"{name}_seed{seed}")
    shutil.rmtree(out, ignore_errors=True)
    log_dir = out / "logs" / "2026-12-01_00-00-00"
    cfg = rsl_rl_cfg(c["hidden"], save_interval=10 ** 6, fixed=False, obs_normalization=c["obs_norm"])
    if "steps" in c:
        cfg["num_steps_per_env"] = c["steps"]
    runner = OnPolicyRunner(gym_vecenv(env_id, n_envs, seed, scale), cfg, log_dir=str(log_dir), device="cpu")
    runner.learn(c["its"])
    for p in log_dir.glob("model_*.pt"):
        p.unlink()
    shutil.rmtree(log_dir / "git", ignore_errors=True)

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
