"""rl_games (1.6.5) healthy runs in configurations not in tests/data (at the time).
    PYTHONPATH=. nice -n 10 python tests/data/configs/make_rl_games.py NAME [seed]
Output: tests/data/configs/rl_games/NAME/runs/<name>_ppo/summaries/events... + params/agent.yaml"""
import random, shutil, sys
from pathlib import Path
import gymnasium as gym
import numpy as np
import torch, yaml
from rl_games.common import env_configurations, vecenv
from rl_games.common.ivecenv import IVecEnv
from rl_games.torch_runner import Runner

OUT = Path(__file__).resolve().parent / "rl_games"

def net(units, act="elu", separate=False, discrete=False):
    space = {"discrete": {}} if discrete else {"continuous": {
        "mu_activation": "None", "sigma_activation": "None", "mu_init": {"name": "default"},
        "sigma_init": {"name": "const_initializer", "val": 0}, "fixed_sigma": True}}
    return {"name": "actor_critic", "separate": separate, "space": space,
            "mlp": {"units": units, "activation": act, "initializer": {"name": "default"}}}

RUNS = {
    # rl_games' own configs/ppo_pendulum_torch.yaml (separate 32x32 elu nets, rewards x0.01, tau 0.9, lr 1e-3 adaptive at
    # kl 0.016, no value clipping, no input/value normalisation), 16 actors x 128
    "pendulum_example": dict(env="Pendulum-v1", actors=16, epochs=250, algo="a2c_continuous", model="continuous_a2c_logstd",
                             network=net([32, 32], separate=True), action_scale=1.0,
                             config=dict(reward_shaper={"scale_value": 0.01}, normalize_advantage=True, gamma=0.99, tau=0.9,
                                         learning_rate=1e-3, grad_norm=0.5, entropy_coef=0.0, truncate_grads=True, e_clip=0.2,
                                         clip_value=False, horizon_length=128, minibatch_size=1024, mini_epochs=4,
                                         critic_coef=1, lr_schedule="adaptive", kl_threshold=0.016, normalize_input=False,
                                         normalize_value=False, bounds_loss_coef=0)),
    # rl_games' own configs/ppo_cartpole.yaml (a2c_discrete, separate 32x32 relu, rewards x0.1, lr 2e-4, no schedule,
    # entropy 0.01, 16 actors x 32, minibatch 64, 4 mini-epochs)
    "cartpole_example_discrete": dict(env="CartPole-v1", actors=16, epochs=300, algo="a2c_discrete", model="discrete_a2c",
                                      network=net([32, 32], act="relu", separate=True, discrete=True), action_scale=None,
                                      config=dict(reward_shaper={"scale_value": 0.1}, normalize_advantage=True, gamma=0.99,
                                                  tau=0.9, learning_rate=2e-4, grad_norm=1.0, entropy_coef=0.01,
                                                  truncate_grads=True, e_clip=0.2, clip_value=True, horizon_length=32,
                                                  minibatch_size=64, mini_epochs=4, critic_coef=1, lr_schedule="None",
                                                  kl_threshold=0.008, normalize_input=False, normalize_value=False)),
    # the same discrete CartPole with Isaac Gym's normalisation (normalize_input + normalize_value, so the 0.2 rule is on),
    # the adaptive schedule at kl 0.008, rewards x1
    "cartpole_discrete_valuenorm_adaptive": dict(env="CartPole-v1", actors=16, epochs=300, algo="a2c_discrete",
                                                 model="discrete_a2c", network=net([64, 64], act="elu", discrete=True),
                                                 action_scale=None,
                                                 config=dict(reward_shaper={"scale_value": 1.0}, normalize_advantage=True,
                                                             gamma=0.99, tau=0.95, learning_rate=3e-4, grad_norm=1.0,
                                                             entropy_coef=0.0, truncate_grads=True, e_clip=0.2,
                                                             clip_value=True, horizon_length=32, minibatch_size=128,
                                                             mini_epochs=4, critic_coef=2, lr_schedule="adaptive",
                                                             kl_threshold=0.008, normalize_input=True,
                                                             normalize_value=True, value_bootstrap=True)),
    # Isaac Gym's Ant-style settings on Hopper but normalize_value False and rewards x1: a large value loss (critic_coef 2)
    "hopper_novaluenorm_adaptive": dict(env="Hopper-v4", actors=32, epochs=350, algo="a2c_continuous",
                                        model="continuous_a2c_logstd", network=net([256, 128, 64]), action_scale=1.0,
                                        config=dict(reward_shaper={"scale_value": 1.0}, normalize_advantage=True,
                                                    normalize_input=True, normalize_value=False, value_bootstrap=True,
                                                    gamma=0.99, tau=0.95, learning_rate=3e-4, lr_schedule="adaptive",
                                                    schedule_type="legacy", kl_threshold=0.008, grad_norm=1.0,
                                                    entropy_coef=0.0, truncate_grads=False, e_clip=0.2, horizon_length=16,
                                                    minibatch_size=32 * 16 // 4, mini_epochs=4, critic_coef=2.0,
                                                    clip_value=True, bounds_loss_coef=0.0001)),
    # session 21, a helper's false-alarm audit: InvertedPendulum (return 5 -> 1000) with Isaac Gym's Cartpole-style
    # settings: normalize_value on (the 0.2 rule on), adaptive lr 3e-4 at kl 0.008, 16 actors x 32, minibatch 256,
    # 8 mini-epochs, rewards x0.1. Its critic loss sits at 4e-4 between pendulum falls and at 0.1-1 in the epochs that
    # meet one
    "invpendulum_valuenorm_adaptive": dict(env="InvertedPendulum-v4", actors=16, epochs=250, algo="a2c_continuous",
                                           model="continuous_a2c_logstd", network=net([32, 32]), action_scale=1.0,
                                           config=dict(reward_shaper={"scale_value": 0.1}, normalize_advantage=True,
                                                       normalize_input=True, normalize_value=True, value_bootstrap=True,
                                                       gamma=0.99, tau=0.95, learning_rate=3e-4, lr_schedule="adaptive",
                                                       kl_threshold=0.008, grad_norm=1.0, entropy_coef=0.0,
                                                       truncate_grads=True, e_clip=0.2, horizon_length=32,
                                                       minibatch_size=256, mini_epochs=8, critic_coef=4.0,
                                                       clip_value=True, bounds_loss_coef=0.0001)),
}

def main(name, seed=0):
    c = RUNS[name]
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)
    env_id, actors, scale = c["env"], c["actors"], c["action_scale"]

    class GymVec(IVecEnv):
        def __init__(self):
            self.envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(actors)])

        def step(self, actions):
            a = np.asarray(actions)
            a = np.clip(a.astype(np.float32), -1, 1) * self.envs.single_action_space.high if scale is not None else a.astype(np.int64)
            obs, rew, term, trunc, _ = self.envs.step(a)
            return obs.astype(np.float32), rew.astype(np.float32), (term | trunc).astype(np.uint8), {}

        def reset(self):
            return self.envs.reset(seed=seed)[0].astype(np.float32)

        def get_env_info(self):
            return {"action_space": self.envs.single_action_space, "observation_space": self.envs.single_observation_space,
                    "agents": 1, "value_size": 1}

    out = OUT / (name if seed == 0 else f"{name}_seed{seed}")
    shutil.rmtree(out, ignore_errors=True)
    runs = out / "runs"
    rname = env_id.split("-")[0].lower()
    vecenv.register("AUDIT_ENV", lambda config_name, num_actors, **kw: GymVec())
    env_configurations.register(f"{rname}_audit", {"vecenv_type": "AUDIT_ENV", "env_creator": lambda **kw: None})
    config = dict(c["config"], name=rname, env_name=f"{rname}_audit", score_to_win=1e9, max_epochs=c["epochs"],
                  save_best_after=10 ** 9, save_frequency=10 ** 9, num_actors=actors, ppo=True, seq_length=4,
                  device="cpu", torch_compile=False, full_experiment_name=f"{rname}_ppo")
    params = {"params": {"seed": seed or 1, "torch_threads": 1, "algo": {"name": c["algo"]}, "model": {"name": c["model"]},
                         "network": c["network"], "config": dict(config, train_dir=str(runs))}}
    runner = Runner()
    runner.load(params)
    runner.run({"train": True, "play": False})
    run = runs / f"{rname}_ppo"
    shutil.rmtree(run / "nn", ignore_errors=True)
    (run / "params").mkdir(exist_ok=True)
    p = {k: v for k, v in params["params"].items() if k != "config"} | {"config": config}
    (run / "params" / "agent.yaml").write_text(yaml.safe_dump(p))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
