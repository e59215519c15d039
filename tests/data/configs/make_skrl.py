"""skrl (2.1.1) PPO healthy runs in configurations not in tests/data (at the time).
    PYTHONPATH=. nice -n 10 python tests/data/configs/make_skrl.py NAME [seed]
Output: tests/data/configs/skrl/NAME/runs/<exp>/events... + params/agent.yaml (as Isaac Lab writes it)."""
import shutil, sys
from pathlib import Path
import gymnasium as gym
import torch, yaml
torch.set_num_threads(1)
from torch import nn
from skrl.agents.torch.ppo import PPO, PPO_CFG
from skrl.envs.wrappers.torch import wrap_env
from skrl.memories.torch import RandomMemory
from skrl.resources.preprocessors.torch import RunningStandardScaler
from skrl.resources.schedulers.torch import KLAdaptiveLR
from skrl.trainers.torch import SequentialTrainer
from skrl.utils import set_seed
from skrl.models.torch import CategoricalMixin, DeterministicMixin, Model
from tests.data.frameworks.make_runs import skrl_models

OUT = Path(__file__).resolve().parent / "skrl"

RUNS = {
    # skrl's own Pendulum example (docs torch_gymnasium_pendulum_ppo): KLAdaptiveLR 0.008, RunningStandardScaler on
    # states and values, gamma 0.9, 10 epochs, value_loss_scale 0.5, grad clip 0.5; rollouts 256 (example: 1024)
    "pendulum_example_klada_rss": dict(env="Pendulum-v1", n_envs=4, rollouts=256, updates=300, epochs=10, mb=8,
                                       gamma=0.9, lr=1e-3, sched="KLAdaptiveLR", rss=True, shaper=None,
                                       vscale=0.5, ent=0.0, grad=0.5, hidden=64),
    # same task, no preprocessors at all (value loss in the returns' units), fixed lr 3e-4, rewards_shaper x0.1
    "pendulum_noscaler_shaper": dict(env="Pendulum-v1", n_envs=8, rollouts=128, updates=300, epochs=10, mb=8,
                                     gamma=0.95, lr=3e-4, sched=None, rss=False, shaper=0.1,
                                     vscale=1.0, ent=0.0, grad=0.5, hidden=64),
    # a Categorical policy (discrete CartPole), KLAdaptiveLR, RSS on states and values, entropy bonus
    "cartpole_categorical_klada_rss": dict(env="CartPole-v1", n_envs=8, rollouts=64, updates=300, epochs=8, mb=4,
                                           gamma=0.99, lr=1e-3, sched="KLAdaptiveLR", rss=True, shaper=None,
                                           vscale=0.5, ent=0.01, grad=0.5, hidden=64, discrete=True),
    # Isaac Lab's skrl defaults on Pendulum (KLAdaptiveLR, RSS, rewards x0.1) logged as Isaac Lab's write_interval "auto"
    # does (timesteps / 100: one point every 5 updates here); params/agent.yaml gives rollouts
    "pendulum_isaaclab_writeauto": dict(env="Pendulum-v1", n_envs=8, rollouts=32, updates=500, epochs=5, mb=4,
                                        gamma=0.99, lr=1e-3, sched="KLAdaptiveLR", rss=True, shaper=0.1,
                                        vscale=2.0, ent=0.0, grad=1.0, hidden=128, write="auto"),
    # InvertedPendulum-v4 (return leaps to 1000), Isaac-Lab-like: KLAdaptiveLR 0.01, RSS, value x2, rewards x1
    "invpendulum_klada_rss": dict(env="InvertedPendulum-v4", n_envs=16, rollouts=32, updates=300, epochs=5, mb=4,
                                  gamma=0.99, lr=3e-4, sched="KLAdaptiveLR", rss=True, shaper=None,
                                  vscale=2.0, ent=0.0, grad=1.0, hidden=128),
    # session 21, a helper's false-alarm audit (made to be healthy; written to tests/data/mujoco/skrl):
    # Hopper-v4: no KLAdaptiveLR but torch LinearLR (lr 3e-4 -> 3e-5 over the run), mixed_precision False explicitly,
    # RSS on observations/states/values, 16 envs x 64 rollouts, 10 epochs x 8 minibatches, value clip, grad 0.5
    "hopper_linearlr_rss": dict(env="Hopper-v4", n_envs=16, rollouts=64, updates=200, epochs=10, mb=8,
                                gamma=0.99, lr=3e-4, sched="LinearLR", rss=True, shaper=None,
                                vscale=1.0, ent=0.0, grad=0.5, hidden=[256, 128, 64], out="mujoco"),
    # InvertedDoublePendulum-v4: fixed lr 3e-4 (no scheduler), RSS on observations only (value loss in return units,
    # the returns leaping as it learns to balance), rewards x0.1, 16 envs x 32 rollouts, 5 epochs x 4 minibatches
    "idp_fixedlr_novaluescaler": dict(env="InvertedDoublePendulum-v4", n_envs=16, rollouts=32, updates=300, epochs=5,
                                      mb=4, gamma=0.99, lr=3e-4, sched=None, rss="obs", shaper=0.1,
                                      vscale=1.0, ent=0.0, grad=1.0, hidden=[256, 128, 64], out="mujoco"),
}

def main(name, seed=0):
    c = RUNS[name]
    set_seed(seed)
    env = wrap_env(gym.vector.SyncVectorEnv([lambda: gym.make(c["env"]) for _ in range(c["n_envs"])]))
    units = c["hidden"] if isinstance(c["hidden"], list) else [c["hidden"]] * 2

    def mlp(i, o):
        layers, d = [], i
        for u in units:
            layers += [nn.Linear(d, u), nn.ELU()]
            d = u
        return nn.Sequential(*layers, nn.Linear(d, o))
    Policy, Value = skrl_models(mlp, clip_log_std=True, min_log_std=-20.0, max_log_std=2.0)
    if c.get("discrete"):
        class Policy(CategoricalMixin, Model):
            def __init__(self, obs, act, device):
                Model.__init__(self, observation_space=obs, action_space=act, device=device)
                CategoricalMixin.__init__(self, unnormalized_log_prob=True)
                self.net = mlp(self.num_observations, self.num_actions)

            def compute(self, inputs, role):
                return self.net(inputs["observations"] if "observations" in inputs else inputs["states"]), {}
    models = {"policy": Policy(env.observation_space, env.action_space, env.device),
              "value": Value(env.observation_space, env.action_space, env.device)}
    kw = {}
    if c["shaper"] is not None:
        s = c["shaper"]
        kw["rewards_shaper"] = lambda rewards, *a, **k: rewards * s
    if c["sched"] == "KLAdaptiveLR":
        kw.update(learning_rate_scheduler=KLAdaptiveLR, learning_rate_scheduler_kwargs={"kl_threshold": 0.008})
    if c["sched"] == "LinearLR":
        kw.update(learning_rate_scheduler=torch.optim.lr_scheduler.LinearLR,
                  learning_rate_scheduler_kwargs={"start_factor": 1.0, "end_factor": 0.1,
                                                  "total_iters": c["updates"] * c["epochs"]})
    if "out" in c:  # the session-21 audit's runs (tests/data/mujoco): mixed precision off, said
        kw["mixed_precision"] = False
    cfg = PPO_CFG(rollouts=c["rollouts"], learning_epochs=c["epochs"], mini_batches=c["mb"], discount_factor=c["gamma"],
                  gae_lambda=0.95, learning_rate=c["lr"], grad_norm_clip=c["grad"], ratio_clip=0.2, value_clip=0.2,
                  entropy_loss_scale=c["ent"], value_loss_scale=c["vscale"], **kw)
    kinds = (("observation", env.observation_space), ("state", env.observation_space), ("value", 1))
    if c["rss"]:
        for kind, size in kinds[:2] if c["rss"] == "obs" else kinds:
            setattr(cfg, f"{kind}_preprocessor", RunningStandardScaler)
            setattr(cfg, f"{kind}_preprocessor_kwargs", {"size": size, "device": env.device})
    out = (OUT.parent.parent / c["out"] / "skrl" if "out" in c else OUT) / (name if seed == 0 else f"{name}_seed{seed}")
    shutil.rmtree(out, ignore_errors=True)
    exp = "26-12-01_00-00-00-000000_PPO"
    cfg.experiment.directory, cfg.experiment.experiment_name = str(out / "runs"), exp
    cfg.experiment.write_interval = c["rollouts"] if c.get("write") is None else c["updates"] * c["rollouts"] // 100
    cfg.experiment.checkpoint_interval = 10 ** 9
    memory = RandomMemory(memory_size=c["rollouts"], num_envs=env.num_envs, device=env.device)
    agent = PPO(models=models, memory=memory, cfg=cfg, observation_space=env.observation_space,
                action_space=env.action_space, device=env.device)
    SequentialTrainer(cfg={"timesteps": c["updates"] * c["rollouts"], "headless": True, "disable_progressbar": True},
                      env=env, agents=agent).train()
    run = out / "runs" / exp
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    (run / "params").mkdir(exist_ok=True)
    agent_yaml = {"class": "PPO", "rollouts": c["rollouts"], "learning_epochs": c["epochs"], "mini_batches": c["mb"],
                  "learning_rate": c["lr"], "learning_rate_scheduler": c["sched"],
                  "state_preprocessor": "RunningStandardScaler" if c["rss"] else None,
                  "value_preprocessor": "RunningStandardScaler" if c["rss"] is True else None,
                  "value_loss_scale": c["vscale"], "entropy_loss_scale": c["ent"],
                  **({"mixed_precision": False} if "out" in c else {})}
    if c["shaper"] is not None:
        agent_yaml["rewards_shaper_scale"] = c["shaper"]
    (run / "params" / "agent.yaml").write_text(yaml.safe_dump({"seed": seed, "agent": agent_yaml}))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
