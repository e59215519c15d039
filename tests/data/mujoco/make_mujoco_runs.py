"""Write healthy locomotion runs under tests/data/mujoco/ with the real libraries (MuJoCo, CPU).

    PYTHONPATH=. python tests/data/mujoco/make_mujoco_runs.py [run ...]

The nearest this machine gets to the runs the watchdog meets in the field: gymnasium's MuJoCo
Hopper-v4 and HalfCheetah-v4 trained by
- Stable-Baselines3 PPO with the RL Baselines3 Zoo's published hyper-parameters for each task
  (`VecNormalize`; "raw" drops it, so the value loss is in the returns' own units), 100,000 steps;
- rsl_rl's OnPolicyRunner with Isaac Lab's locomotion PPO settings (24 steps x 32 envs, 5 epochs x 4
  minibatches, lr 1e-3 with the adaptive KL schedule, desired KL 0.01, entropy 0.005, clipped value
  loss, 256-128-64 ELU, init std 1), 500 iterations;
- rl_games' Runner with Isaac Gym's Ant PPO settings scaled to 32 envs (value and input normalisation,
  rewards x0.01, lr 3e-4 with the adaptive KL schedule, 16-step horizon), 500 epochs, on Hopper;
- skrl's PPO with Isaac Lab's locomotion skrl settings (KLAdaptiveLR, RunningStandardScaler on states and
  values), 500 updates (its Hopper run collapses by itself: a divergence nobody injected).
Four more runs are the same with a real fault inside the training: the learning rate x100 (SB3) or x30
(rsl_rl, on the "fixed" schedule) from a known update on. Each library's own TensorBoard logger writes
the events; nothing is edited; checkpoints and rsl_rl's git-status folder are deleted afterwards
(rl_games' params/agent.yaml is kept: replay reads its normalize_value).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RSL_RL_DATE = "2026-11-30_13-30-00"

# run -> (library, gymnasium id, VecNormalize (SB3) / envs (rsl_rl), steps (SB3) / iterations (rsl_rl))
RUNS = {
    "sb3/hopper_zoo": ("sb3", "Hopper-v4", True, 100_000),
    "sb3/hopper_zoo_raw": ("sb3", "Hopper-v4", False, 100_000),
    "sb3/halfcheetah_zoo": ("sb3", "HalfCheetah-v4", True, 100_000),
    "sb3/halfcheetah_zoo_raw": ("sb3", "HalfCheetah-v4", False, 100_000),
    "rsl_rl/hopper": ("rsl_rl", "Hopper-v4", 32, 500),
    "rsl_rl/halfcheetah": ("rsl_rl", "HalfCheetah-v4", 32, 500),
    # the same with seeds 1 and 2: more returns that change once in 42 iterations (reward_collapse's staircase)
    "rsl_rl/halfcheetah_seed1": ("rsl_rl", "HalfCheetah-v4", 32, 500, None, 1),
    "rsl_rl/halfcheetah_seed2": ("rsl_rl", "HalfCheetah-v4", 32, 500, None, 2),
    "rl_games/hopper": ("rl_games", "Hopper-v4", 32, 500),
    # made in session 7 (return 50 -> 1,206, changing once in 62 epochs); a HalfCheetah run made in session 6
    # fell from 506 to 83 over its last 125 epochs with its KL and entropy as before, and was not kept
    "rl_games/halfcheetah": ("rl_games", "HalfCheetah-v4", 32, 500),
    "skrl/hopper": ("skrl", "Hopper-v4", 32, 500),
    "skrl/hopper_seed1": ("skrl", "Hopper-v4", 32, 500, 1),  # collapses by itself too (session 7)
    "skrl/halfcheetah": ("skrl", "HalfCheetah-v4", 32, 500),
    # session 11: two tasks no run here had shown the detectors (Walker2d, Ant), replayed blind: made after
    # every detector setting was fixed, and read as they came out
    "rsl_rl/walker2d": ("rsl_rl", "Walker2d-v4", 32, 500),
    "rsl_rl/ant": ("rsl_rl", "Ant-v4", 32, 500),
    "skrl/walker2d": ("skrl", "Walker2d-v4", 32, 500),
    "skrl/ant": ("skrl", "Ant-v4", 32, 500),
    "rl_games/walker2d": ("rl_games", "Walker2d-v4", 32, 500),
    "rl_games/ant": ("rl_games", "Ant-v4", 32, 500),
    "sb3/walker2d_zoo": ("sb3", "Walker2d-v4", True, 100_000),
    # session 11: CleanRL's continuous PPO (our rewrite of ppo_continuous_action.py), one point per episode
    # (read as the mean of the last 100 episodes since session 11), made after that reading was chosen
    "cleanrl/hopper": ("cleanrl", "Hopper-v4", 4, 300),
    "cleanrl/walker2d": ("cleanrl", "Walker2d-v4", 4, 300),
    # session 13: three more tasks, blind as session 11's (made after every setting was fixed, read as they
    # came out): InvertedDoublePendulum (episodes end when it falls: the return leaps as the policy learns to
    # balance), Humanoid (17 joints, 376 observations; episodes end when it falls) and Reacher (fixed 50-step
    # episodes, a negative return); SB3 with the zoo's entries for each (Humanoid-v4's as published: the zoo's
    # MuJoCo defaults, i.e. SB3's own; the other two from their -v2 entries). Swimmer-v4 was meant instead of
    # Humanoid: its XML does not load in mujoco 4.0 (gymnasium 0.29)
    "sb3/idp_zoo": ("sb3", "InvertedDoublePendulum-v4", True, 100_000),
    "sb3/humanoid_zoo": ("sb3", "Humanoid-v4", True, 300_000),
    "sb3/reacher_zoo": ("sb3", "Reacher-v4", True, 100_000),
    "rsl_rl/idp": ("rsl_rl", "InvertedDoublePendulum-v4", 32, 500),
    "rsl_rl/humanoid": ("rsl_rl", "Humanoid-v4", 32, 500),
    "rsl_rl/reacher": ("rsl_rl", "Reacher-v4", 32, 500),
    "rl_games/idp": ("rl_games", "InvertedDoublePendulum-v4", 32, 500),
    "rl_games/humanoid": ("rl_games", "Humanoid-v4", 32, 500),
    "rl_games/reacher": ("rl_games", "Reacher-v4", 32, 500),
    "skrl/idp": ("skrl", "InvertedDoublePendulum-v4", 32, 500),
    "skrl/humanoid": ("skrl", "Humanoid-v4", 32, 500),
    "skrl/reacher": ("skrl", "Reacher-v4", 32, 500),
}
# faulted runs: the same, with the learning rate x factor from an update on (update, factor)
FAULTS = {
    "sb3/hopper_zoo_lr_fault": ("sb3", "Hopper-v4", True, 100_000, (120, 100.0)),
    "sb3/halfcheetah_zoo_lr_fault": ("sb3", "HalfCheetah-v4", True, 100_000, (120, 100.0)),
    # with the adaptive schedule rsl_rl would undo the jump within a few updates (KL > 2x desired: lr / 1.5)
    "rsl_rl/hopper_lr_fault": ("rsl_rl", "Hopper-v4", 32, 400, (250, 30.0)),
    "rsl_rl/halfcheetah_lr_fault": ("rsl_rl", "HalfCheetah-v4", 32, 400, (250, 30.0)),
    "rl_games/halfcheetah_lr_fault": ("rl_games", "HalfCheetah-v4", 32, 400, (250, 30.0)),
    # session 8: the same fault from the first update (a run misconfigured from its start), 200 iterations
    "rsl_rl/halfcheetah_lr_fault_early": ("rsl_rl", "HalfCheetah-v4", 32, 200, (0, 30.0)),
    "rsl_rl/hopper_lr_fault_early": ("rsl_rl", "Hopper-v4", 32, 200, (0, 30.0)),
    # session 9: no lr fault, but the observation x1e6 for the first env step of rollout 120 (0-based), before
    # VecNormalize (a simulator blowing up for a step, straight into the running observation normaliser)
    "sb3/hopper_zoo_obs_spike": ("sb3", "Hopper-v4", True, 100_000, None, (120, 1e6)),
    # session 11, blind as the healthy Walker2d and Ant runs above: the same lr faults on the new tasks
    "rsl_rl/ant_lr_fault": ("rsl_rl", "Ant-v4", 32, 400, (250, 30.0)),
    # skrl's lr fault (250, 30.0) on Walker2d went NaN at update 41, before its jump: the fault's fixed schedule
    # alone (lr 1e-3 without KLAdaptiveLR) breaks it. Kept as that: the jump (x1) never comes in its 100 updates
    "skrl/walker2d_fixed_lr": ("skrl", "Walker2d-v4", 32, 100, 0, (100, 1.0)),
    "rl_games/ant_lr_fault": ("rl_games", "Ant-v4", 32, 400, (250, 30.0)),
    "sb3/walker2d_zoo_lr_fault": ("sb3", "Walker2d-v4", True, 100_000, (120, 100.0)),
    # session 11: a slow fault, the learning rate x growth per update from an update on (update, 1.0, growth):
    # x19 50 updates later and x84 after 150 (rsl_rl, rl_games: 1.03), x100 60 rollouts later (SB3: 1.08)
    "rsl_rl/walker2d_lr_ramp": ("rsl_rl", "Walker2d-v4", 32, 450, (250, 1.0, 1.03)),
    "rl_games/walker2d_lr_ramp": ("rl_games", "Walker2d-v4", 32, 450, (250, 1.0, 1.03)),
    "sb3/walker2d_zoo_lr_ramp": ("sb3", "Walker2d-v4", True, 100_000, (120, 1.0, 1.08)),
    "cleanrl/hopper_lr_fault": ("cleanrl", "Hopper-v4", 4, 300, (200, 30.0)),
    # session 13, blind as its healthy runs above: the same lr faults on the new tasks
    "rsl_rl/idp_lr_fault": ("rsl_rl", "InvertedDoublePendulum-v4", 32, 400, (250, 30.0)),
    "rl_games/humanoid_lr_fault": ("rl_games", "Humanoid-v4", 32, 400, (250, 30.0)),
    # made as skrl's lr fault (x30 from 250); its fixed schedule alone (lr 1e-3 without KLAdaptiveLR) took it to
    # NaN at update 41, as it did Walker2d's, so it is named for that (the jump never mattered)
    "skrl/idp_fixed_lr": ("skrl", "InvertedDoublePendulum-v4", 32, 400, 0, (250, 30.0)),
    "sb3/reacher_zoo_lr_fault": ("sb3", "Reacher-v4", True, 100_000, (120, 100.0)),
    # session 13, a second blind batch: other kinds of fault on the new tasks. A one-step observation spike (x1e6,
    # a simulator blowing up for a step) into the running observation normaliser: rl_games' (8 of 32 envs, epoch
    # 300) and SB3's VecNormalize (rollout 400 of 781); and rsl_rl's entropy coefficient x100 from update 250
    # (0.005 -> 0.5, a config changed on resume), as ../many_envs made them on push_lite
    "rl_games/idp_obs_spike": ("rl_games", "InvertedDoublePendulum-v4", 32, 500, None, (300, 8, 1e6)),
    "sb3/idp_zoo_obs_spike": ("sb3", "InvertedDoublePendulum-v4", True, 100_000, None, (400, 1e6)),
    "rsl_rl/idp_entropy_fault": ("rsl_rl", "InvertedDoublePendulum-v4", 32, 500, None, 0, (250, 100.0)),
    "rsl_rl/humanoid_entropy_fault": ("rsl_rl", "Humanoid-v4", 32, 500, None, 0, (250, 100.0)),
}

ZOO_256_RELU = "256x256 ReLU, log-std init -2"  # the zoo's policy_kwargs for Hopper-v4 and HalfCheetah-v4
ZOO = {  # rl-baselines3-zoo hyperparams/ppo.yml (the MuJoCo v4 entries); "policy": None is SB3's default (64x64 tanh)
    "Hopper-v4": dict(batch_size=32, n_steps=512, gamma=0.999, learning_rate=9.80828e-05, ent_coef=0.00229519,
                      clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7, vf_coef=0.835671,
                      policy=ZOO_256_RELU),
    "HalfCheetah-v4": dict(batch_size=64, n_steps=512, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762,
                           clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096,
                           policy=ZOO_256_RELU),
    "Walker2d-v4": dict(batch_size=32, n_steps=512, gamma=0.99, learning_rate=5.05041e-05, ent_coef=0.000585045,
                        clip_range=0.1, n_epochs=20, gae_lambda=0.95, max_grad_norm=1.0, vf_coef=0.871923,
                        policy=None),
    # session 13: Humanoid-v4 as published (the zoo's MuJoCo defaults: SB3's own hyper-parameters); the other two
    # from the zoo's -v2 entries (no -v4 entry), n_envs 1 as published
    "Humanoid-v4": dict(policy=None),
    "InvertedDoublePendulum-v4": dict(batch_size=512, n_steps=128, gamma=0.98, learning_rate=0.000155454,
                                      ent_coef=1.05057e-06, clip_range=0.4, n_epochs=10, gae_lambda=0.8,
                                      max_grad_norm=0.5, vf_coef=0.695929, policy=None),
    "Reacher-v4": dict(batch_size=32, n_steps=512, gamma=0.9, learning_rate=0.000104019, ent_coef=7.52585e-08,
                       clip_range=0.3, n_epochs=5, gae_lambda=1.0, max_grad_norm=0.9, vf_coef=0.950368, policy=None),
}


def sb3(out: Path, env_id: str, normalize: bool, steps: int, lr_jump: tuple[int, float] | None = None,
        obs_spike: tuple[int, float] | None = None) -> None:
    """``lr_jump`` (rollout, factor[, growth]): the updates after that rollout (1-based count rollout + 1 on)
    run at the learning rate x factor (x growth more for each update after the first: a ramp), through SB3's
    own schedule argument. ``obs_spike`` (rollout, factor): the
    observation x factor for the first env step of that rollout (0-based), before ``VecNormalize``."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

    class ObsSpike(VecEnvWrapper):
        def __init__(self, venv, at: int, factor: float):
            super().__init__(venv)
            self.at, self.factor, self.steps = at, factor, 0

        def reset(self):
            return self.venv.reset()

        def step_wait(self):
            obs, rewards, dones, infos = self.venv.step_wait()
            self.steps += 1
            return (obs * self.factor if self.steps == self.at else obs), rewards, dones, infos

    kw = dict(ZOO[env_id])
    zoo_policy = kw.pop("policy")
    n_envs = kw.pop("n_envs", 1)
    if lr_jump is not None:
        base, total, (jump, factor, *ramp) = kw["learning_rate"], steps // (kw["n_steps"] * n_envs), lr_jump
        growth = ramp[0] if ramp else 1.0

        def learning_rate(progress: float) -> float:
            k = round((1 - progress) * total)  # SB3 trains after rollout k (1-based) with progress 1 - k / total
            return base * (factor * growth ** (k - jump - 1) if k > jump else 1.0)

        kw["learning_rate"] = learning_rate
    env = make_vec_env(env_id, n_envs=n_envs, seed=0)
    if obs_spike is not None:
        env = ObsSpike(env, obs_spike[0] * kw["n_steps"] + 1, obs_spike[1])
    if normalize:
        env = VecNormalize(env, gamma=kw.get("gamma", 0.99))  # 0.99: PPO's default and VecNormalize's
    policy = {} if zoo_policy is None else dict(log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU,
                                                 net_arch=dict(pi=[256, 256], vf=[256, 256]))
    PPO("MlpPolicy", env, seed=0, verbose=0, device="cpu", tensorboard_log=str(out), policy_kwargs=policy,
        **kw).learn(steps, tb_log_name="PPO")


def rsl_rl_cfg(hidden: list[int], *, save_interval: int, fixed: bool, obs_normalization: bool = False) -> dict:
    """rsl_rl's runner config with Isaac Lab's locomotion PPO settings (24 steps, 5 epochs x 4 minibatches,
    lr 1e-3 with the adaptive KL schedule at 0.01, or the fixed one for a learning-rate fault, entropy 0.005,
    clipped value loss, ELU, init std 1); ``obs_normalization``: the models' running observation normaliser
    (Isaac Lab's ``empirical_normalization``/``actor_obs_normalization``)."""
    model = {"class_name": "MLPModel", "hidden_dims": hidden, "activation": "elu", "obs_normalization": obs_normalization}
    return {"num_steps_per_env": 24, "save_interval": save_interval,
            "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
            "algorithm": {"class_name": "PPO", "num_learning_epochs": 5, "num_mini_batches": 4, "learning_rate": 1e-3,
                          "schedule": "fixed" if fixed else "adaptive", "desired_kl": 0.01, "gamma": 0.99, "lam": 0.95,
                          "entropy_coef": 0.005, "clip_param": 0.2, "value_loss_coef": 1.0,
                          "use_clipped_value_loss": True, "max_grad_norm": 1.0},
            "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0}},
            "critic": dict(model), "logger": "tensorboard", "multi_gpu": None}


def gym_vecenv(env_id: str, n_envs: int, seed: int, scale: float = 1.0):
    """A gymnasium vector env as an rsl_rl VecEnv, its actions clipped to [-1, 1] and multiplied by ``scale``
    (tests/data/configs' script uses it too)."""
    import gymnasium as gym
    import torch
    from rsl_rl.env import VecEnv
    from tensordict import TensorDict

    class GymVecEnv(VecEnv):
        """A gymnasium vector env as an rsl_rl VecEnv."""

        def __init__(self):
            self.inner = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n_envs)])
            self.num_envs, self.device, self.cfg = n_envs, "cpu", {"task": env_id}
            self.num_actions = self.inner.single_action_space.shape[0]
            self.max_episode_length = 1000
            self.episode_length_buf = torch.zeros(n_envs, dtype=torch.long)
            self._obs = self._wrap(self.inner.reset(seed=seed)[0])

        def _wrap(self, obs) -> TensorDict:
            return TensorDict({"policy": torch.as_tensor(obs, dtype=torch.float32)}, batch_size=[self.num_envs])

        def get_observations(self) -> TensorDict:
            return self._obs

        def step(self, actions):
            obs, rew, term, trunc, _ = self.inner.step((actions.clamp(-1, 1) * scale).numpy())
            done = torch.as_tensor(term | trunc)
            self.episode_length_buf = torch.where(done, 0, self.episode_length_buf + 1)
            self._obs = self._wrap(obs)
            return (self._obs, torch.as_tensor(rew, dtype=torch.float32), done.float(),
                    {"time_outs": torch.as_tensor(trunc, dtype=torch.float32)})

    return GymVecEnv()


def rsl_rl(out: Path, env_id: str, n_envs: int, iterations: int, lr_jump: tuple[int, float] | None = None,
           seed: int = 0, entropy_jump: tuple[int, float] | None = None) -> None:
    """``lr_jump`` (update, factor[, growth]): that update (0-based) and every later one at the learning rate x
    factor (x growth more per update after it: a ramp), with the "fixed" schedule (make_runs' ``_jump_learning_rate``). ``seed``: torch's and the envs'."""
    import torch

    torch.manual_seed(seed)
    rsl_rl_train(gym_vecenv(env_id, n_envs, seed), [256, 128, 64], out / "logs" / RSL_RL_DATE, iterations, lr_jump,
                 save_interval=100, entropy_jump=entropy_jump)


def rsl_rl_train(env, hidden: list[int], log_dir: Path, iterations: int, lr_jump: tuple[int, float] | None, *,
                 save_interval: int, obs_normalization: bool = False,
                 entropy_jump: tuple[int, float] | None = None) -> None:
    """rsl_rl's OnPolicyRunner on ``env`` with :func:`rsl_rl_cfg` for ``iterations``, the learning-rate fault
    (make_runs' ``_jump_learning_rate``) where ``lr_jump`` is given, and the entropy coefficient x factor
    from update ``entropy_jump[0]`` (0-based) on where that is given; its checkpoints and git-status folder
    are deleted afterwards."""
    from rsl_rl.runners import OnPolicyRunner

    from tests.data.frameworks.make_runs import _jump_learning_rate

    cfg = rsl_rl_cfg(hidden, save_interval=save_interval, fixed=lr_jump is not None, obs_normalization=obs_normalization)
    runner = OnPolicyRunner(env, cfg, log_dir=str(log_dir), device="cpu")
    if lr_jump is not None:
        _jump_learning_rate(runner.alg, *lr_jump)
    if entropy_jump is not None:
        _jump_entropy_coef(runner.alg, *entropy_jump)
    runner.learn(iterations)
    for path in log_dir.glob("model_*.pt"):
        path.unlink()
    shutil.rmtree(log_dir / "git", ignore_errors=True)


def _jump_entropy_coef(alg, jump: int, factor: float) -> None:
    """From update number ``jump`` (0-based) on, rsl_rl's PPO updates with its entropy coefficient x factor."""
    update, base, calls = alg.update, alg.entropy_coef, [0]

    def jumped() -> dict:
        if calls[0] >= jump:
            alg.entropy_coef = base * factor
        calls[0] += 1
        return update()

    alg.update = jumped


def rl_games(out: Path, env_id: str, n_envs: int, epochs: int, lr_jump: tuple[int, float] | None = None,
             obs_spike: tuple[int, int, float] | None = None) -> None:
    """rl_games' Runner with Isaac Gym's Ant PPO settings, scaled to 32 envs (a2c_continuous,
    normalize_input and normalize_value, rewards x0.01, lr 3e-4 with the adaptive KL schedule at
    0.008, 16-step horizon, 4 minibatches x 4 mini-epochs, 256-128-64 ELU); Isaac Lab's
    params/agent.yaml is written beside the run, as its train script does. ``lr_jump`` (epoch, factor[,
    growth]): that epoch (0-based) and every later one at the learning rate x factor (x growth more per epoch
    after it: a ramp), set as ``algo.last_lr`` before each update, with the "fixed" schedule (the adaptive one
    would undo it). ``obs_spike`` (epoch, actors, factor): the first ``actors`` envs' observations x factor for
    the first env step of that epoch (0-based), into rl_games' running input normaliser (a simulator blowing up
    for a step), as ../many_envs does on push_lite."""
    import gymnasium as gym
    import numpy as np
    from rl_games.common.ivecenv import IVecEnv

    class GymVec(IVecEnv):
        def __init__(self):
            self.envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n_envs)])
            self.steps = 0

        def step(self, actions):
            obs, rew, term, trunc, _ = self.envs.step(np.clip(np.asarray(actions, dtype=np.float32), -1, 1))
            if obs_spike is not None and self.steps == obs_spike[0] * 16:  # 16 steps an epoch (horizon_length)
                obs[: obs_spike[1]] *= obs_spike[2]
            self.steps += 1
            return obs.astype(np.float32), rew.astype(np.float32), (term | trunc).astype(np.uint8), {}

        def reset(self):
            return self.envs.reset(seed=0)[0].astype(np.float32)

        def set_train_info(self, env_frames, algo=None, *args, **kwargs):
            """rl_games calls this before every epoch's update."""
            if lr_jump is not None and algo is not None and env_frames >= lr_jump[0] * 16 * n_envs:
                jump, factor, *ramp = lr_jump
                algo.last_lr = algo.config["learning_rate"] * factor * (ramp[0] if ramp else 1.0) ** (
                    env_frames // (16 * n_envs) - jump)

        def get_env_info(self):
            return {"action_space": self.envs.single_action_space,
                    "observation_space": self.envs.single_observation_space, "agents": 1, "value_size": 1}

    rl_games_train(out / "runs", env_id.split("-")[0].lower(), GymVec, n_envs, epochs, reward_scale=0.01,
                   fixed=lr_jump is not None)


def rl_games_train(runs: Path, name: str, make_env, actors: int, epochs: int, *, reward_scale: float,
                   fixed: bool, observer=None) -> None:
    """rl_games' Runner on ``make_env()`` (an rl_games IVecEnv of ``actors`` actors) with Isaac Gym's Ant PPO
    settings (a2c_continuous, normalize_input and normalize_value, rewards x ``reward_scale``, lr 3e-4 with
    the adaptive KL schedule at 0.008, or the fixed one for a learning-rate fault, 16-step horizon, 4
    minibatches x 4 mini-epochs, 256-128-64 ELU) for ``epochs``; writes ``runs/<name>_ppo`` and Isaac Lab's
    params/agent.yaml beside it, deletes its checkpoints. ``observer``: rl_games' algo observer (its default
    when None; Isaac Lab trains with ``IsaacAlgoObserver``, which logs the env's episode extras)."""
    import yaml
    from rl_games.common import env_configurations, vecenv
    from rl_games.torch_runner import Runner

    vecenv.register("WATCHDOG_ENV", lambda config_name, num_actors, **kw: make_env())
    env_configurations.register(f"{name}_watchdog", {"vecenv_type": "WATCHDOG_ENV", "env_creator": lambda **kw: None})
    config = {
        "name": name, "env_name": f"{name}_watchdog", "reward_shaper": {"scale_value": reward_scale},
        "normalize_advantage": True, "normalize_input": True, "normalize_value": True, "value_bootstrap": True,
        "gamma": 0.99, "tau": 0.95, "learning_rate": 3e-4, "lr_schedule": "fixed" if fixed else "adaptive",
        "schedule_type": "legacy", "kl_threshold": 0.008, "score_to_win": 1e9, "max_epochs": epochs,
        "save_best_after": 10 ** 9, "save_frequency": 10 ** 9, "grad_norm": 1.0, "entropy_coef": 0.0,
        "truncate_grads": False, "e_clip": 0.2, "horizon_length": 16, "minibatch_size": actors * 16 // 4,
        "mini_epochs": 4, "critic_coef": 2.0, "clip_value": True, "num_actors": actors, "bounds_loss_coef": 0.0001,
        "ppo": True, "seq_length": 4, "device": "cpu", "torch_compile": False, "train_dir": str(runs),
        "full_experiment_name": f"{name}_ppo",
    }
    params = {"params": {
        "seed": 0, "torch_threads": 1, "algo": {"name": "a2c_continuous"}, "model": {"name": "continuous_a2c_logstd"},
        "network": {"name": "actor_critic", "separate": False,
                    "space": {"continuous": {"mu_activation": "None", "sigma_activation": "None",
                                             "mu_init": {"name": "default"},
                                             "sigma_init": {"name": "const_initializer", "val": 0},
                                             "fixed_sigma": True}},
                    "mlp": {"units": [256, 128, 64], "activation": "elu", "initializer": {"name": "default"}}},
        "config": config}}
    runner = Runner(algo_observer=observer) if observer is not None else Runner()
    runner.load(params)
    runner.run({"train": True, "play": False})
    run = runs / f"{name}_ppo"
    shutil.rmtree(run / "nn", ignore_errors=True)
    (run / "params").mkdir(exist_ok=True)
    (run / "params" / "agent.yaml").write_text(yaml.safe_dump(
        {k: v for k, v in params["params"].items() if k != "config"}
        | {"config": {k: v for k, v in config.items() if k != "train_dir"}}))


def skrl(out: Path, env_id: str, n_envs: int, updates: int, seed: int = 0,
         lr_jump: tuple[int, float] | None = None) -> None:
    """skrl's PPO with Isaac Lab's locomotion skrl settings (:func:`skrl_train`, rewards x0.1) on ``n_envs``
    gymnasium envs through skrl's own wrapper; ``lr_jump`` as :func:`skrl_train`'s."""
    import gymnasium as gym
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.utils import set_seed

    set_seed(seed)
    env = wrap_env(gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n_envs)]))
    skrl_train(out, env, updates, experiment="26-11-30_13-30-00-000000_PPO", seed=seed, reward_scale=0.1,
               lr_jump=lr_jump)


def skrl_train(out: Path, env, updates: int, *, experiment: str, seed: int, reward_scale: float | None,
               lr_jump: tuple[int, float] | None = None) -> None:
    """skrl's PPO on ``env`` (wrapped by skrl) with Isaac Lab's locomotion skrl settings (24 rollouts, 5
    learning epochs x 4 minibatches, lr 1e-3 with KLAdaptiveLR at 0.008, RunningStandardScaler on
    observations, states and values, value clipping, value loss x2, rewards x ``reward_scale`` (None: as
    they are), 256-128-64 ELU) for ``updates``; Isaac Lab's params/agent.yaml is written beside the events,
    as its train script does, and the checkpoints are deleted. ``lr_jump`` (update, factor): that update
    (0-based) and every later one at the learning rate x factor, through skrl's ``learning_rate_scheduler``
    (a torch LambdaLR, as ../frameworks' lr faults) in place of KLAdaptiveLR."""
    import torch
    import yaml
    from skrl.agents.torch.ppo import PPO, PPO_CFG
    from skrl.memories.torch import RandomMemory
    from skrl.resources.preprocessors.torch import RunningStandardScaler
    from skrl.resources.schedulers.torch import KLAdaptiveLR
    from skrl.trainers.torch import SequentialTrainer
    from torch import nn

    from tests.data.frameworks.make_runs import skrl_models

    def mlp(inputs: int, outputs: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(inputs, 256), nn.ELU(), nn.Linear(256, 128), nn.ELU(), nn.Linear(128, 64),
                             nn.ELU(), nn.Linear(64, outputs))

    Policy, Value = skrl_models(mlp, clip_log_std=True, min_log_std=-20.0, max_log_std=2.0)
    models = {"policy": Policy(env.observation_space, env.action_space, env.device),
              "value": Value(env.observation_space, env.action_space, env.device)}
    rollouts, epochs = 24, 5
    shaper = {} if reward_scale is None else {"rewards_shaper": lambda rewards, *args, **kwargs: rewards * reward_scale}
    cfg = PPO_CFG(rollouts=rollouts, learning_epochs=epochs, mini_batches=4, discount_factor=0.99, gae_lambda=0.95,
                  learning_rate=1e-3, learning_rate_scheduler=KLAdaptiveLR,
                  learning_rate_scheduler_kwargs={"kl_threshold": 0.008}, grad_norm_clip=1.0, ratio_clip=0.2,
                  value_clip=0.2, entropy_loss_scale=0.0, value_loss_scale=2.0, **shaper)
    if lr_jump is not None:
        jump, factor = lr_jump
        # LambdaLR counts the learning epochs stepped so far: update u runs epochs u * epochs ...
        cfg.learning_rate_scheduler = torch.optim.lr_scheduler.LambdaLR
        cfg.learning_rate_scheduler_kwargs = {"lr_lambda": lambda n: factor if n // epochs >= jump else 1.0}
    for kind, size in (("observation", env.observation_space), ("state", env.observation_space), ("value", 1)):
        setattr(cfg, f"{kind}_preprocessor", RunningStandardScaler)
        setattr(cfg, f"{kind}_preprocessor_kwargs", {"size": size, "device": env.device})
    cfg.experiment.directory, cfg.experiment.experiment_name = str(out / "runs"), experiment
    cfg.experiment.write_interval, cfg.experiment.checkpoint_interval = rollouts, 10 ** 9
    memory = RandomMemory(memory_size=rollouts, num_envs=env.num_envs, device=env.device)
    agent = PPO(models=models, memory=memory, cfg=cfg, observation_space=env.observation_space,
                action_space=env.action_space, device=env.device)
    SequentialTrainer(cfg={"timesteps": updates * rollouts, "headless": True, "disable_progressbar": True},
                      env=env, agents=agent).train()
    run = out / "runs" / experiment
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    (run / "params").mkdir(exist_ok=True)
    agent_yaml = {"class": "PPO", "rollouts": rollouts, "learning_epochs": epochs, "mini_batches": 4,
                  "learning_rate": 1e-3, "learning_rate_scheduler": "KLAdaptiveLR" if lr_jump is None else "LambdaLR",
                  "state_preprocessor": "RunningStandardScaler", "value_preprocessor": "RunningStandardScaler",
                  "value_loss_scale": 2.0, "entropy_loss_scale": 0.0}
    if reward_scale is not None:
        agent_yaml["rewards_shaper_scale"] = reward_scale
    (run / "params" / "agent.yaml").write_text(yaml.safe_dump({"seed": seed, "agent": agent_yaml}))


def cleanrl(out: Path, env_id: str, n_envs: int, updates: int, lr_jump: tuple[int, float] | None = None) -> None:
    """CleanRL's ppo_continuous_action.py, our own short rewrite (CleanRL is a single file meant to be copied,
    not a library; as ../frameworks' CartPole rewrite): its wrappers (RecordEpisodeStatistics, ClipAction,
    NormalizeObservation and NormalizeReward, both clipped at 10), its agent (64-64 tanh, a state-independent
    log-std from 0), its update (lr 3e-4 annealed to 0 over the run, 10 epochs x 32 minibatches, GAE 0.99 /
    0.95, clip 0.2, clipped value loss, no entropy bonus, grad norm 0.5) and its tags against global_step,
    with ``n_envs`` envs x 256 steps per update (CleanRL's default is 1 x 2048). Each finished episode's raw
    return is one ``charts/episodic_return`` point. ``lr_jump`` (update, factor): that update (0-based) and
    every later one at the annealed learning rate x factor, set where CleanRL anneals it."""
    import gymnasium as gym
    import numpy as np
    import torch
    from torch import nn
    from torch.distributions.normal import Normal
    from torch.utils.tensorboard import SummaryWriter

    from tests.data.frameworks.make_runs import cleanrl_gae, cleanrl_update

    steps, epochs, minibatches, clip, lr = 256, 10, 32, 0.2, 3e-4

    def make():
        env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id))
        env = gym.wrappers.ClipAction(env)
        env = gym.wrappers.TransformObservation(gym.wrappers.NormalizeObservation(env), lambda o: np.clip(o, -10, 10))
        return gym.wrappers.TransformReward(gym.wrappers.NormalizeReward(env, gamma=0.99), lambda r: float(np.clip(r, -10, 10)))

    def layer(i: int, o: int, std: float = 2 ** 0.5) -> nn.Linear:
        lin = nn.Linear(i, o)
        nn.init.orthogonal_(lin.weight, std)
        nn.init.constant_(lin.bias, 0.0)
        return lin

    torch.manual_seed(1)
    envs = gym.vector.SyncVectorEnv([make for _ in range(n_envs)])
    n_obs, n_act = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    critic = nn.Sequential(layer(n_obs, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, 1, 1.0))
    actor = nn.Sequential(layer(n_obs, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, n_act, 0.01))
    log_std = nn.Parameter(torch.zeros(1, n_act))
    params = [*critic.parameters(), *actor.parameters(), log_std]
    opt = torch.optim.Adam(params, lr=lr, eps=1e-5)
    writer = SummaryWriter(str(out / "runs" / f"{env_id}__ppo_continuous_action__1__1700000000"))
    obs_buf, act_buf = torch.zeros(steps, n_envs, n_obs), torch.zeros(steps, n_envs, n_act)
    logp_buf, rew_buf, done_buf, val_buf = (torch.zeros(steps, n_envs) for _ in range(4))
    next_obs = torch.tensor(envs.reset(seed=1)[0], dtype=torch.float32)
    next_done = torch.zeros(n_envs)
    global_step = 0

    def dist(o: torch.Tensor) -> Normal:
        return Normal(actor(o), log_std.expand(len(o), -1).exp())

    def policy(o: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = dist(o)
        return d.log_prob(a).sum(1), d.entropy().sum(1).mean()

    for update in range(updates):
        now = lr * (1.0 - update / updates)  # CleanRL's --anneal-lr
        opt.param_groups[0]["lr"] = now * (lr_jump[1] if lr_jump is not None and update >= lr_jump[0] else 1.0)
        for t in range(steps):
            global_step += n_envs
            obs_buf[t], done_buf[t] = next_obs, next_done
            with torch.no_grad():
                d = dist(next_obs)
                action = d.sample()
                val_buf[t] = critic(next_obs).flatten()
            act_buf[t], logp_buf[t] = action, d.log_prob(action).sum(1)
            o, r, term, trunc, info = envs.step(action.numpy())
            rew_buf[t] = torch.tensor(r, dtype=torch.float32)
            next_obs, next_done = torch.tensor(o, dtype=torch.float32), torch.tensor(term | trunc, dtype=torch.float32)
            for final in info.get("final_info", ()):  # gymnasium 0.29: finished sub-envs' infos
                if final and "episode" in final:
                    writer.add_scalar("charts/episodic_return", float(np.ravel(final["episode"]["r"])[0]), global_step)
                    writer.add_scalar("charts/episodic_length", float(np.ravel(final["episode"]["l"])[0]), global_step)
        with torch.no_grad():
            adv, ret = cleanrl_gae(rew_buf, val_buf, done_buf, critic(next_obs).flatten(), next_done)
        b_obs, b_act, b_logp = obs_buf.reshape(-1, n_obs), act_buf.reshape(-1, n_act), logp_buf.reshape(-1)
        b_adv, b_ret, b_val = adv.reshape(-1), ret.reshape(-1), val_buf.reshape(-1)
        cleanrl_update(writer, global_step, opt, params, policy, critic, (b_obs, b_act, b_logp, b_adv, b_ret, b_val),
                       epochs=epochs, minibatches=minibatches, clip=clip, ent_coef=0.0)
    writer.close()
    envs.close()


def main(argv: list[str]) -> int:
    from tests.data.make_each import make_each

    every = {**RUNS, **FAULTS}

    def make(name: str) -> None:
        library, *args = every[name]
        out = HERE / name
        shutil.rmtree(out, ignore_errors=True)
        {"sb3": sb3, "rsl_rl": rsl_rl, "rl_games": rl_games, "skrl": skrl, "cleanrl": cleanrl}[library](out, *args)

    return make_each(every, make, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
