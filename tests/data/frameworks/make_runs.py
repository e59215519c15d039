"""Write the small real training logs under tests/data/frameworks/ with the real libraries.

    PYTHONPATH=. python tests/data/frameworks/make_runs.py [sb3 cleanrl rsl_rl skrl rl_games]

Each framework gets a healthy run and one with an injected fault: from iteration FAULT_IT on, every
reward is multiplied by REWARD_SCALE (the value targets jump by ~1e6 in the value loss's units), so
the onset is known exactly; rl_games (normalize_value on, which absorbs scaled rewards) gets a
learning-rate spike to LR_SPIKE instead. Runs are short (about 100 PPO iterations) and single-threaded; the
event files are what the library itself wrote. Checkpoints are written where the library writes
them, then all but a few small ones are deleted to keep the repository small.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
HEALTHY_ITERATIONS = 100  # long enough for early-learning warnings (just after warm-up) to resolve
FAULT_IT = 70  # first iteration whose rollout sees the fault (after the detectors' 50-iteration warm-up)
FAULT_ITERATIONS = 82  # a faulted run stops 12 iterations after the fault: enough for the alarm and the onset fit
KEEP_CHECKPOINT_IT = 50  # a faulted run keeps its checkpoint nearest this iteration and its last one
REWARD_SCALE = 1000.0
LR_SPIKE = 1.0  # rl_games' fault: the learning rate from FAULT_IT on (1e-3 before)
torch.set_num_threads(1)


def _iterations(fault, iterations: int | None = None) -> int:
    """PPO iterations of a run: ``iterations`` where given (the long runs), else by its kind."""
    if iterations is not None:
        return iterations
    return FAULT_ITERATIONS if fault else HEALTHY_ITERATIONS


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------------------------------------ SB3


SB3_RUNS = (("cartpole_healthy", "CartPole-v1", False), ("cartpole_fault", "CartPole-v1", True),
            ("pendulum_healthy", "Pendulum-v1", False))


def sb3_runs(runs=SB3_RUNS, root: Path = HERE, iterations: int | None = None,
             lr_jump: tuple[int, float] | None = None) -> None:
    """SB3 PPO: CartPole healthy and faulted, Pendulum healthy (unnormalised value loss).

    ``runs`` holds (name, gymnasium id, faulted); they are written under ``root``/sb3/. ``lr_jump``
    (rollout, factor): the learning rate (SB3's default 3e-4) is multiplied by factor for the updates
    of that rollout (1-based count ``rollout + 1``) and every later one, through SB3's own schedule
    argument (a schedule that jumps); None (the default) keeps SB3's constant learning rate."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import CheckpointCallback
    from stable_baselines3.common.env_util import make_vec_env

    n_envs, n_steps = 2, 32
    per_it = n_envs * n_steps

    class ScaleReward(gym.Wrapper):
        """Rewards x REWARD_SCALE once the shared step counter reaches the fault iteration."""

        counter = [0]

        def step(self, action):
            obs, reward, term, trunc, info = self.env.step(action)
            ScaleReward.counter[0] += 1
            if ScaleReward.counter[0] > FAULT_IT * n_steps * n_envs:
                reward = reward * REWARD_SCALE
            return obs, reward, term, trunc, info

    for name, env_id, fault in runs:
        out = _fresh(root / "sb3" / name)
        ScaleReward.counter[0] = 0
        env = make_vec_env(env_id, n_envs=n_envs, seed=0, wrapper_class=ScaleReward if fault else None)
        extra = {}
        if lr_jump is not None:
            total, (jump, factor) = _iterations(fault, iterations), lr_jump

            def schedule(progress_remaining: float, total=total, jump=jump, factor=factor) -> float:
                # SB3 trains after rollout k (1-based) with progress_remaining = 1 - k / total
                return 3e-4 * (factor if round((1 - progress_remaining) * total) > jump else 1.0)

            extra["learning_rate"] = schedule
        model = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=64, n_epochs=2, seed=0, verbose=0,
                    tensorboard_log=str(out), policy_kwargs={"net_arch": [32, 32]}, **extra)
        ckpt = CheckpointCallback(save_freq=20 * n_steps, save_path=str(out / "PPO_1" / "checkpoints"),
                                  name_prefix="rl_model")
        model.learn(total_timesteps=_iterations(fault, iterations) * per_it, callback=ckpt)
        print("sb3", name, sorted(p.name for p in (out / "PPO_1").iterdir()))


# ------------------------------------------------------------------------------------------ CleanRL


CLEANRL_RUNS = (("cartpole_healthy", False), ("cartpole_fault", True))


def cleanrl_runs(runs=CLEANRL_RUNS, root: Path = HERE, iterations: int | None = None,
                 lr_jump: tuple[int, float] | None = None) -> None:
    """CleanRL's ppo.py, reduced to CartPole on CPU: its update, its tags, its step axis (global_step).

    CleanRL is a single-file implementation meant to be copied, not a library; this is our own short
    rewrite of its loop (same algorithm and the same ``writer.add_scalar`` calls and step axis), run
    with SummaryWriter at ``runs/<env>__<exp>__<seed>__<time>/`` as CleanRL's file does. ``lr_jump``
    (u, factor): update u (0-based; CleanRL's ``update`` is u + 1, logged at global_step
    (u + 1) * batch) and every later one run with the learning rate (2.5e-4) x factor,
    set on the optimizer's param group at the top of the update, where CleanRL's ``--anneal-lr`` sets
    it (``charts/learning_rate`` shows it); None (the default): none.
    """
    import gymnasium as gym
    from torch import nn
    from torch.distributions.categorical import Categorical
    from torch.utils.tensorboard import SummaryWriter

    num_envs, num_steps, epochs, minibatches, clip = 4, 32, 2, 2, 0.2
    for name, fault in runs:
        out = _fresh(root / "cleanrl" / name / "runs")
        torch.manual_seed(1)
        np.random.seed(1)
        envs = gym.vector.SyncVectorEnv([lambda: gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1"))
                                         for _ in range(num_envs)])
        critic = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
        actor = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        params = [*critic.parameters(), *actor.parameters()]
        opt = torch.optim.Adam(params, lr=2.5e-4, eps=1e-5)
        writer = SummaryWriter(str(out / "CartPole-v1__ppo__1__1700000000"))
        obs_buf = torch.zeros(num_steps, num_envs, 4)
        act_buf, logp_buf, rew_buf, done_buf, val_buf = (torch.zeros(num_steps, num_envs) for _ in range(5))
        next_obs = torch.tensor(envs.reset(seed=1)[0], dtype=torch.float32)
        next_done = torch.zeros(num_envs)
        global_step = 0
        for update in range(1, _iterations(fault, iterations) + 1):
            if lr_jump is not None:
                opt.param_groups[0]["lr"] = 2.5e-4 * (lr_jump[1] if update - 1 >= lr_jump[0] else 1.0)
            for t in range(num_steps):
                global_step += num_envs
                obs_buf[t], done_buf[t] = next_obs, next_done
                with torch.no_grad():
                    dist = Categorical(logits=actor(next_obs))
                    action = dist.sample()
                    val_buf[t] = critic(next_obs).flatten()
                act_buf[t], logp_buf[t] = action, dist.log_prob(action)
                o, r, term, trunc, info = envs.step(action.numpy())
                if fault and update > FAULT_IT:
                    r = r * REWARD_SCALE
                rew_buf[t] = torch.tensor(r, dtype=torch.float32)
                next_obs, next_done = torch.tensor(o, dtype=torch.float32), torch.tensor(term | trunc, dtype=torch.float32)
                for final in info.get("final_info", ()):  # gymnasium 0.29: finished sub-envs' infos
                    if final and "episode" in final:
                        writer.add_scalar("charts/episodic_return", final["episode"]["r"], global_step)
                        writer.add_scalar("charts/episodic_length", final["episode"]["l"], global_step)
            with torch.no_grad():
                adv, ret = cleanrl_gae(rew_buf, val_buf, done_buf, critic(next_obs).flatten(), next_done)
            b_obs, b_act, b_logp = obs_buf.reshape(-1, 4), act_buf.reshape(-1), logp_buf.reshape(-1)
            b_adv, b_ret, b_val = adv.reshape(-1), ret.reshape(-1), val_buf.reshape(-1)

            def policy(o, a):
                dist = Categorical(logits=actor(o))
                return dist.log_prob(a), dist.entropy().mean()

            cleanrl_update(writer, global_step, opt, params, policy, critic, (b_obs, b_act, b_logp, b_adv, b_ret, b_val),
                           epochs=epochs, minibatches=minibatches, clip=clip, ent_coef=0.01)
        writer.close()
        envs.close()
        print("cleanrl", name, global_step)


def cleanrl_gae(rewards, values, dones, next_value, next_done, gamma: float = 0.99, lam: float = 0.95):
    """CleanRL's generalised advantage estimate over a rollout (steps x envs): (advantages, returns)."""
    steps = len(rewards)
    adv, last = torch.zeros_like(rewards), 0
    for t in reversed(range(steps)):
        nonterm = 1.0 - (next_done if t == steps - 1 else dones[t + 1])
        nextv = next_value if t == steps - 1 else values[t + 1]
        delta = rewards[t] + gamma * nextv * nonterm - values[t]
        adv[t] = last = delta + gamma * lam * nonterm * last
    return adv, adv + values


def cleanrl_losses(logratio, adv, v, old_v, ret, clip: float, clipfracs: list):
    """One CleanRL PPO minibatch: the clipped surrogate on normalised advantages and the clipped value loss,
    with its two KL estimates (no grad); appends the clip fraction. (pg_loss, v_loss, old_approx_kl, approx_kl)"""
    ratio = logratio.exp()
    with torch.no_grad():
        old_approx_kl = (-logratio).mean()
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfracs.append(((ratio - 1.0).abs() > clip).float().mean().item())
    a = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip)).mean()
    v_clipped = old_v + (v - old_v).clamp(-clip, clip)
    v_loss = 0.5 * torch.max((v - ret) ** 2, (v_clipped - ret) ** 2).mean()
    return pg_loss, v_loss, old_approx_kl, approx_kl


def cleanrl_update(writer, step: int, opt, params, policy, critic, rollout, *, epochs: int, minibatches: int,
                   clip: float, ent_coef: float) -> None:
    """CleanRL's PPO update over a flattened rollout (obs, actions, log-probs, advantages, returns, values):
    ``epochs`` passes of shuffled minibatches, loss ``pg - ent_coef x entropy + 0.5 x value``, grad norm 0.5;
    then its scalars. ``policy(obs, actions)`` -> (log-probs, mean entropy)."""
    b_obs, b_act, b_logp, b_adv, b_ret, b_val = rollout
    batch, clipfracs = len(b_obs), []
    for _ in range(epochs):
        for mb in torch.randperm(batch).split(batch // minibatches):
            logp, entropy = policy(b_obs[mb], b_act[mb])
            pg_loss, v_loss, old_approx_kl, approx_kl = cleanrl_losses(
                logp - b_logp[mb], b_adv[mb], critic(b_obs[mb]).flatten(), b_val[mb], b_ret[mb], clip, clipfracs)
            opt.zero_grad()
            (pg_loss - ent_coef * entropy + 0.5 * v_loss).backward()
            torch.nn.utils.clip_grad_norm_(params, 0.5)
            opt.step()
    cleanrl_log_update(writer, step, opt.param_groups[0]["lr"], v_loss, pg_loss, entropy, old_approx_kl, approx_kl,
                       clipfracs, b_ret, b_val)


def cleanrl_log_update(writer, step: int, lr: float, v_loss, pg_loss, entropy, old_approx_kl, approx_kl,
                       clipfracs: list, returns, values) -> None:
    """CleanRL's per-update scalars, in its order, against global_step."""
    var_y = np.var(returns.numpy())
    explained_var = np.nan if var_y == 0 else 1 - np.var((returns - values).numpy()) / var_y
    writer.add_scalar("charts/learning_rate", lr, step)
    writer.add_scalar("losses/value_loss", v_loss.item(), step)
    writer.add_scalar("losses/policy_loss", pg_loss.item(), step)
    writer.add_scalar("losses/entropy", entropy.item(), step)
    writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), step)
    writer.add_scalar("losses/approx_kl", approx_kl.item(), step)
    writer.add_scalar("losses/clipfrac", np.mean(clipfracs), step)
    writer.add_scalar("losses/explained_variance", explained_var, step)
    writer.add_scalar("charts/SPS", 1000, step)


# ------------------------------------------------------------------------------------------ rsl_rl


def push_lite_rl_games_info(inner, seed: int = 0) -> dict:
    """rl_games' ``get_env_info`` for push_lite's (env, agent) pairs as actors: its spaces as gym Boxes, one agent
    per actor, one value."""
    import gym

    space, obs = inner.action_space, inner.reset(seed=seed)
    return {"action_space": gym.spaces.Box(space.low, space.high, space.shape, np.float32),
            "observation_space": gym.spaces.Box(-np.inf, np.inf, obs.shape[-1:], np.float32),
            "agents": 1, "value_size": 1}


def _push_lite_vecenv(num_envs: int, fault_from_it: int | None, steps_per_env: int, seed: int = 0, obs_spike=None):
    """push_lite (pure torch) as an rsl_rl VecEnv: each (env, agent) pair is one rsl_rl env; ``seed``: the envs';
    ``obs_spike`` (iteration, envs, factor): the observations of that many rsl_rl envs x factor for the first
    env step of that iteration (0-based), the env itself untouched."""
    from rsl_rl.env import VecEnv
    from tensordict import TensorDict

    from openrl_ws.envs.push_lite import PushLiteVecEnv

    class PushLiteRsl(VecEnv):
        def __init__(self):
            self.inner = PushLiteVecEnv(num_envs, seed=seed)
            self.agents = self.inner.agent_num
            self.num_envs = num_envs * self.agents
            self.num_actions = self.inner.action_space.shape[0]
            self.max_episode_length = self.inner.cfg.episode_length if hasattr(self.inner.cfg, "episode_length") else 200
            self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long)
            self.device = "cpu"
            self.cfg = {"task": "push_lite"}
            self.steps = 0
            self._obs = self._wrap(self.inner.reset(seed=seed))

        def _wrap(self, obs) -> TensorDict:
            flat = torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(self.num_envs, -1)
            return TensorDict({"policy": flat}, batch_size=[self.num_envs])

        def get_observations(self) -> TensorDict:
            return self._obs

        def step(self, actions):
            obs, rew, dones, _ = self.inner.step(actions.reshape(-1, self.agents, self.num_actions).numpy())
            self.steps += 1
            if obs_spike is not None and self.steps == obs_spike[0] * steps_per_env + 1:
                obs = np.asarray(obs).reshape(self.num_envs, -1).copy()
                obs[: obs_spike[1]] *= obs_spike[2]
            rewards = torch.as_tensor(rew, dtype=torch.float32).reshape(self.num_envs)
            if fault_from_it is not None and self.steps > fault_from_it * steps_per_env:
                rewards = rewards * REWARD_SCALE
            done = torch.as_tensor(dones).reshape(self.num_envs)
            self.episode_length_buf = torch.where(done, 0, self.episode_length_buf + 1)
            self._obs = self._wrap(obs)
            return self._obs, rewards, done.float(), {"time_outs": torch.zeros(self.num_envs)}

    return PushLiteRsl()


def _jump_learning_rate(alg, jump: int, factor: float, growth: float = 1.0) -> None:
    """From update number ``jump`` (0-based) on, rsl_rl's PPO updates with its learning rate x factor, and x
    ``growth`` more for each update after it (a ramp; 1: a jump), set on its optimizer and on
    ``alg.learning_rate``, which the runner logs as Loss/learning_rate."""
    update, base, calls = alg.update, alg.learning_rate, [0]

    def jumped() -> dict:
        if calls[0] >= jump:
            alg.learning_rate = base * factor * growth ** (calls[0] - jump)
            for group in alg.optimizer.param_groups:
                group["lr"] = alg.learning_rate
        calls[0] += 1
        return update()

    alg.update = jumped


RSL_RL_RUNS = (("push_lite_healthy", None), ("push_lite_fault", FAULT_IT))


def rsl_rl_runs(runs=RSL_RL_RUNS, root: Path = HERE, iterations: int | None = None,
                lr_jump: tuple[int, float] | None = None) -> None:
    """rsl_rl's OnPolicyRunner on push_lite; the runner writes logs/<run>/events... and model_<it>.pt.

    ``runs`` holds (name, fault iteration or None). ``lr_jump`` (iteration, factor): the update of that
    iteration (0-based, as rsl_rl counts) and every later one run with the learning rate (1e-3, fixed
    schedule) multiplied by factor, set on the optimizer before each update; None (the default): none."""
    from rsl_rl.runners import OnPolicyRunner

    steps = 24
    for name, fault in runs:
        out = _fresh(root / "rsl_rl" / name / "logs")
        torch.manual_seed(0)
        env = _push_lite_vecenv(16, fault, steps)
        model = {"class_name": "MLPModel", "hidden_dims": [32, 32], "activation": "elu"}
        cfg = {
            "num_steps_per_env": steps, "save_interval": 10, "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
            "algorithm": {"class_name": "PPO", "num_learning_epochs": 2, "num_mini_batches": 2,
                          "learning_rate": 1e-3, "schedule": "fixed"},
            "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0}},
            "critic": dict(model), "logger": "tensorboard", "multi_gpu": None,
        }
        runner = OnPolicyRunner(env, cfg, log_dir=str(out / "2026-11-30_06-00-00"), device="cpu")
        if lr_jump is not None:
            _jump_learning_rate(runner.alg, *lr_jump)
        runner.learn(_iterations(fault, iterations))
        print("rsl_rl", name, sorted(p.name for p in (out / "2026-11-30_06-00-00").iterdir()))


# ------------------------------------------------------------------------------------------ skrl


SKRL_RUNS = (("pendulum_healthy", None), ("pendulum_fault", FAULT_IT))


def skrl_models(net, **gaussian) -> tuple[type, type]:
    """skrl's Gaussian policy (a free log-std, 0 at the start, actions clipped) and deterministic value
    model, each network built by ``net(inputs, outputs)``; ``gaussian``: more GaussianMixin keywords."""
    from skrl.models.torch import DeterministicMixin, GaussianMixin, Model
    from torch import nn

    class Policy(GaussianMixin, Model):
        def __init__(self, obs, act, device):
            Model.__init__(self, observation_space=obs, action_space=act, device=device)
            GaussianMixin.__init__(self, clip_actions=True, **gaussian)
            self.net = net(self.num_observations, self.num_actions)
            self.log_std = nn.Parameter(torch.zeros(self.num_actions))

        def compute(self, inputs, role):
            return self.net(inputs["observations"] if "observations" in inputs else inputs["states"]), {"log_std": self.log_std}

    class Value(DeterministicMixin, Model):
        def __init__(self, obs, act, device):
            Model.__init__(self, observation_space=obs, action_space=act, device=device)
            DeterministicMixin.__init__(self)
            self.net = net(self.num_observations, 1)

        def compute(self, inputs, role):
            return self.net(inputs["observations"] if "observations" in inputs else inputs["states"]), {}

    return Policy, Value


def skrl_runs(runs=SKRL_RUNS, root: Path = HERE, iterations: int | None = None,
              lr_jump: tuple[int, float] | None = None) -> None:
    """skrl's PPO on Pendulum (its gymnasium wrapper, SequentialTrainer); runs/<time>_PPO/ with
    checkpoints/agent_<timestep>.pt. ``runs`` holds (name, fault iteration or None). ``lr_jump``
    (update, factor): the update of that number (0-based, logged at timestep (update + 1) * rollouts)
    and every later one run with the learning rate (1e-3) x factor, through skrl's own
    ``learning_rate_scheduler`` (a torch ``LambdaLR`` that jumps; skrl steps it once per learning
    epoch and then logs ``Learning / Learning rate``, the rate of the *next* update, so that tag shows
    the jump one update early); None (the default): no scheduler, as before."""
    import gymnasium as gym
    from skrl.agents.torch.ppo import PPO, PPO_CFG
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.memories.torch import RandomMemory
    from skrl.trainers.torch import SequentialTrainer
    from skrl.utils import set_seed
    from torch import nn

    Policy, Value = skrl_models(lambda inputs, outputs: nn.Sequential(nn.Linear(inputs, 32), nn.ELU(),
                                                                      nn.Linear(32, outputs)))

    class ScaleReward(gym.Wrapper):
        def __init__(self, env, start):
            super().__init__(env)
            self.n, self.start = 0, start

        def step(self, action):
            obs, reward, term, trunc, info = self.env.step(action)
            self.n += 1
            return obs, (reward * REWARD_SCALE if self.start is not None and self.n > self.start else reward), term, trunc, info

    rollouts, num_envs = 32, 4
    for name, fault_it in runs:
        fault = None if fault_it is None else fault_it * rollouts
        out = _fresh(root / "skrl" / name / "runs")
        set_seed(0)
        env = wrap_env(gym.vector.SyncVectorEnv([lambda: ScaleReward(gym.make("Pendulum-v1"), fault)
                                                 for _ in range(num_envs)]))
        models = {"policy": Policy(env.observation_space, env.action_space, env.device),
                  "value": Value(env.observation_space, env.action_space, env.device)}
        cfg = PPO_CFG(rollouts=rollouts, learning_epochs=2, mini_batches=2, learning_rate=1e-3,
                      entropy_loss_scale=0.01)
        if lr_jump is not None:
            epochs, (jump, factor) = cfg.learning_epochs, lr_jump
            # LambdaLR counts the learning epochs stepped so far: update u runs epochs u * epochs ...
            cfg.learning_rate_scheduler = torch.optim.lr_scheduler.LambdaLR
            cfg.learning_rate_scheduler_kwargs = {"lr_lambda": lambda n: factor if n // epochs >= jump else 1.0}
        cfg.experiment.directory, cfg.experiment.experiment_name = str(out), "26-11-30_06-00-00-000000_PPO"
        cfg.experiment.write_interval, cfg.experiment.checkpoint_interval = rollouts, 10 * rollouts
        memory = RandomMemory(memory_size=rollouts, num_envs=env.num_envs, device=env.device)
        agent = PPO(models=models, memory=memory, cfg=cfg, observation_space=env.observation_space,
                    action_space=env.action_space, device=env.device)
        trainer = SequentialTrainer(cfg={"timesteps": _iterations(fault, iterations) * rollouts, "headless": True,
                                         "disable_progressbar": True}, env=env, agents=agent)
        trainer.train()
        print("skrl", name, sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())[:5])


# ------------------------------------------------------------------------------------------ rl_games


RL_GAMES_RUNS = (("pendulum_healthy", None), ("pendulum_fault", FAULT_IT))


def rl_games_runs(runs=RL_GAMES_RUNS, root: Path = HERE, iterations: int | None = None,
                  torch_threads: int | None = None, lr_jump: tuple[int, float] | None = None) -> None:
    """rl_games' Runner (a2c_continuous, normalize_value on as in Isaac Lab's configs) on Pendulum,
    through a registered vecenv; writes runs/<name>/summaries/events... and nn/*.pth. Isaac Lab's
    params/agent.yaml is written beside it, as Isaac Lab's train script does. ``runs`` holds (name,
    fault epoch or None). ``torch_threads`` is rl_games' own ``params.torch_threads`` (it calls
    torch.set_num_threads itself; unset, its "auto" is min(4, CPU cores), overriding ours). ``lr_jump``
    (epoch, factor): the epoch of that number (0-based, logged at frame epoch * horizon * actors) and
    every later one run with the learning rate (1e-3) x factor, set as ``algo.last_lr`` before the
    epoch's update (rl_games puts it on the optimizer in every minibatch, keeps it under the "fixed"
    schedule and logs it as ``info/last_lr``); None (the default): none."""
    import gymnasium as gym
    import yaml
    from rl_games.common import env_configurations, vecenv
    from rl_games.common.ivecenv import IVecEnv
    from rl_games.torch_runner import Runner

    horizon, num_envs = 32, 4

    class PendulumVec(IVecEnv):
        def __init__(self, fault_from: int | None):
            self.envs = gym.vector.SyncVectorEnv([lambda: gym.make("Pendulum-v1") for _ in range(num_envs)])
            self.fault_from = fault_from

        def step(self, actions):
            obs, rew, term, trunc, _ = self.envs.step(np.asarray(actions, dtype=np.float32))
            return obs.astype(np.float32), rew.astype(np.float32), (term | trunc).astype(np.uint8), {}

        def reset(self):
            return self.envs.reset(seed=0)[0].astype(np.float32)

        def set_train_info(self, env_frames, algo=None, *args, **kwargs):
            """rl_games calls this before every epoch's update: the fault is a learning-rate spike
            (the value normaliser would absorb scaled rewards), kept by the fixed schedule."""
            if self.fault_from is not None and env_frames >= self.fault_from and algo is not None:
                algo.last_lr = LR_SPIKE
            if lr_jump is not None and env_frames >= lr_jump[0] * horizon * num_envs and algo is not None:
                algo.last_lr = algo.config["learning_rate"] * lr_jump[1]

        def get_env_info(self):
            return {"action_space": self.envs.single_action_space, "observation_space": self.envs.single_observation_space,
                    "agents": 1, "value_size": 1}

    for name, fault_it in runs:
        fault = None if fault_it is None else fault_it * horizon * num_envs
        out = _fresh(root / "rl_games" / name / "runs")
        vecenv.register("WATCHDOG_PENDULUM", lambda config_name, num_actors, **kw: PendulumVec(kw["fault"]))
        env_configurations.register("pendulum_watchdog", {"vecenv_type": "WATCHDOG_PENDULUM",
                                                          "env_creator": lambda **kw: None})
        config = {
            "name": "pendulum", "env_name": "pendulum_watchdog", "env_config": {"fault": fault},
            "reward_shaper": {"scale_value": 1.0}, "normalize_advantage": True, "normalize_input": True,
            "normalize_value": True, "value_bootstrap": True, "gamma": 0.99, "tau": 0.95, "learning_rate": 1e-3,
            "lr_schedule": "fixed", "score_to_win": 1e9, "max_epochs": _iterations(fault, iterations), "save_best_after": 10 ** 9,
            "save_frequency": 10, "grad_norm": 1.0, "entropy_coef": 0.0, "truncate_grads": True, "e_clip": 0.2,
            "horizon_length": horizon, "minibatch_size": 64, "mini_epochs": 2, "critic_coef": 2.0, "clip_value": True,
            "num_actors": num_envs, "bounds_loss_coef": 0.0001, "ppo": True, "kl_threshold": 0.008,
            "seq_length": 4, "device": "cpu", "torch_compile": False, "train_dir": str(out), "full_experiment_name": "pendulum_ppo",
        }
        params = {"params": {
            "seed": 0, "algo": {"name": "a2c_continuous"}, "model": {"name": "continuous_a2c_logstd"},
            "network": {"name": "actor_critic", "separate": False,
                        "space": {"continuous": {"mu_activation": "None", "sigma_activation": "None",
                                                 "mu_init": {"name": "default"},
                                                 "sigma_init": {"name": "const_initializer", "val": 0},
                                                 "fixed_sigma": True}},
                        "mlp": {"units": [32, 32], "activation": "elu", "initializer": {"name": "default"}}},
            "config": config}}
        if torch_threads is not None:
            params["params"]["torch_threads"] = torch_threads
        runner = Runner()
        runner.load(params)
        runner.run({"train": True, "play": False})
        run = out / "pendulum_ppo"
        (run / "params").mkdir(exist_ok=True)
        (run / "params" / "agent.yaml").write_text(yaml.safe_dump(
            {k: v for k, v in params["params"].items() if k != "config"}
            | {"config": {k: v for k, v in config.items() if k != "train_dir"}}))
        print("rl_games", name, sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()))


# ------------------------------------------------------------------------------------------ size

_NUMBER = re.compile(r"(?:model|agent|_ep|rl_model)_(\d+)")


def prune_checkpoints(fw_dir: Path, per_iteration: int, keep_last: bool, healthy_keeps_last: bool = False,
                      keep_it: int = KEEP_CHECKPOINT_IT) -> None:
    """Keep the repository small: no checkpoints in healthy runs (with ``healthy_keeps_last``, only
    their last one); a faulted run keeps the one nearest ``keep_it`` (KEEP_CHECKPOINT_IT: a usable
    resume point) and, with ``keep_last``, its last one (after the onset: replay must reject it)."""
    for run in fw_dir.iterdir():
        files = sorted((int(m.group(1)), p) for p in run.rglob("*") if p.suffix in (".pt", ".pth", ".zip")
                       and (m := _NUMBER.search(p.name)))
        keep = set()
        if "fault" in run.name and files:
            keep = {min(files, key=lambda t: abs(t[0] / per_iteration - keep_it))[1]}
            keep |= {files[-1][1]} if keep_last else set()
        elif files and healthy_keeps_last:
            keep = {files[-1][1]}
        for p in run.rglob("*"):
            if p.is_file() and p.suffix in (".pt", ".pth", ".zip") and p not in keep:
                p.unlink()
        for git in run.rglob("git"):  # rsl_rl's copy of the code's git status: not a log
            shutil.rmtree(git)


PER_ITERATION = {"sb3": 64, "rsl_rl": 1, "skrl": 32, "rl_games": 1, "cleanrl": 128}  # checkpoint number units


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["sb3", "cleanrl", "rsl_rl", "skrl", "rl_games"]
    for fw in chosen:
        globals()[f"{fw}_runs"]()
        prune_checkpoints(HERE / fw, PER_ITERATION[fw], keep_last=fw in ("skrl", "rl_games"))  # the small ones
