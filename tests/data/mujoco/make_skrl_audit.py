"""skrl (2.1.1) PPO runs of session 21's false-alarm audit (a helper's copy of tests/data/configs/make_skrl.py, with
a list of hidden layers and torch's LinearLR). Made to be healthy; `hopper_linearlr_rss` collapsed by itself.
    PYTHONPATH=. nice -n 10 python tests/data/mujoco/make_skrl_audit.py NAME [seed]
Output: tests/data/mujoco/skrl/NAME/runs/<exp>/events... + params/agent.yaml (as Isaac Lab writes it)."""
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
from skrl.trainers.torch import SequentialTrainer
from skrl.utils import set_seed
from tests.data.frameworks.make_runs import skrl_models

OUT = Path(__file__).resolve().parent / "skrl"

RUNS = {
    # Hopper-v4: no KLAdaptiveLR but torch LinearLR (lr 3e-4 -> 3e-5 over the run), mixed_precision False explicitly,
    # RSS on observations/states/values, 16 envs x 64 rollouts, 10 epochs x 8 minibatches, value clip, grad 0.5
    "hopper_linearlr_rss": dict(env="Hopper-v4", n_envs=16, rollouts=64, updates=200, epochs=10, mb=8,
                                gamma=0.99, lr=3e-4, sched="LinearLR", rss=True, shaper=None,
                                vscale=1.0, ent=0.0, grad=0.5, hidden=[256, 128, 64]),
    # InvertedDoublePendulum-v4: fixed lr 3e-4 (no scheduler), RSS on observations only (value loss in return units,
    # the returns leaping as it learns to balance), rewards x0.1, 16 envs x 32 rollouts, 5 epochs x 4 minibatches
    "idp_fixedlr_novaluescaler": dict(env="InvertedDoublePendulum-v4", n_envs=16, rollouts=32, updates=300, epochs=5,
                                      mb=4, gamma=0.99, lr=3e-4, sched=None, rss="obs", shaper=0.1,
                                      vscale=1.0, ent=0.0, grad=1.0, hidden=[256, 128, 64]),
}

def main(name, seed=0):
    c = RUNS[name]
    set_seed(seed)
    env = wrap_env(gym.vector.SyncVectorEnv([lambda: gym.make(c["env"]) for _ in range(c["n_envs"])]))
    h = c["hidden"]

    def mlp(i, o):
        layers, d = [], i
        for u in h:
            layers += [nn.Linear(d, u), nn.ELU()]
            d = u
        return nn.Sequential(*layers, nn.Linear(d, o))

    Policy, Value = skrl_models(mlp, clip_log_std=True, min_log_std=-20.0, max_log_std=2.0)
    models = {"policy": Policy(env.observation_space, env.action_space, env.device),
              "value": Value(env.observation_space, env.action_space, env.device)}
    kw = {}
    if c["shaper"] is not None:
        s = c["shaper"]
        kw["rewards_shaper"] = lambda rewards, *a, **k: rewards * s
    if c["sched"] == "LinearLR":
        kw.update(learning_rate_scheduler=torch.optim.lr_scheduler.LinearLR,
                  learning_rate_scheduler_kwargs={"start_factor": 1.0, "end_factor": 0.1,
                                                  "total_iters": c["updates"] * c["epochs"]})
    cfg = PPO_CFG(rollouts=c["rollouts"], learning_epochs=c["epochs"], mini_batches=c["mb"], discount_factor=c["gamma"],
                  gae_lambda=0.95, learning_rate=c["lr"], grad_norm_clip=c["grad"], ratio_clip=0.2, value_clip=0.2,
                  entropy_loss_scale=c["ent"], value_loss_scale=c["vscale"], mixed_precision=False, **kw)
    kinds = (("observation", env.observation_space), ("state", env.observation_space), ("value", 1))
    if c["rss"] == "obs":
        kinds = kinds[:2]
    if c["rss"]:
        for kind, size in kinds:
            setattr(cfg, f"{kind}_preprocessor", RunningStandardScaler)
            setattr(cfg, f"{kind}_preprocessor_kwargs", {"size": size, "device": env.device})
    out = OUT / (name if seed == 0 else f"{name}_seed{seed}")
    shutil.rmtree(out, ignore_errors=True)
    exp = "26-12-01_00-00-00-000000_PPO"
    cfg.experiment.directory, cfg.experiment.experiment_name = str(out / "runs"), exp
    cfg.experiment.write_interval = c["rollouts"]
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
                  "value_loss_scale": c["vscale"], "entropy_loss_scale": c["ent"], "mixed_precision": False}
    if c["shaper"] is not None:
        agent_yaml["rewards_shaper_scale"] = c["shaper"]
    (run / "params" / "agent.yaml").write_text(yaml.safe_dump({"seed": seed, "agent": agent_yaml}))

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
