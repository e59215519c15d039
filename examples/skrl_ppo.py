"""skrl PPO on push_lite (CPU, well under a minute), optionally under the watchdog.

    python examples/skrl_ppo.py --watchdog --inject nan@20 --iterations 40 --run_dir /tmp/skrl_run

The watched version differs from a plain skrl script by one ``with`` block around training:
``with SkrlWatchdog(agent, ...): trainer.train()`` (in Isaac Lab, around ``runner.run()`` with
``runner.agent``). ``--run_dir`` is skrl's experiment folder: its TensorBoard events and ``checkpoints/``, and
with ``--watchdog`` also ``watchdog_events.jsonl`` and ``checkpoints/watchdog/``. The agent is Isaac Lab-style
(a Gaussian policy with a free log-std and a value model, 2x64 ELU, running standard scalers on observations
and values, ``KLAdaptiveLR`` at lr 1e-3), sized for push_lite on a CPU.

Exit codes (as ``openrl_ws/train.py``): 0 finished, 1 stopped by the watchdog, 2 bad input (one line on
stderr), 3 training ended with non-finite numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "examples"):  # `python examples/skrl_ppo.py` from anywhere
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from example_cli import EXIT_OK, EXIT_STOPPED, checked_inputs, run_example  # noqa: E402  (on the path now)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=60, help="PPO updates (default 60)")
    p.add_argument("--num_worlds", type=int, default=32, help="push_lite worlds; 2 agents = 2 skrl envs each")
    p.add_argument("--rollouts", type=int, default=16, help="steps per env between updates (skrl rollouts)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--watchdog", action="store_true", help="watch the run: detect divergence, roll back, switch config")
    p.add_argument("--watchdog_config", default=None,
                   help="watchdog YAML (default: the library's, judged as replay judges skrl)")
    p.add_argument("--safe_config", default=str(ROOT / "cfgs" / "skrl_safe.yaml"))
    p.add_argument("--run_dir", default=None, help="run directory (default results/<date>_skrl)")
    p.add_argument("--inject", action="append", default=[], metavar="KIND@START[-END][:VALUE]",
                   help="deterministic fault, repeatable: nan@20, reward_scale@20-24:50, obs_noise@10-15:5, crash@7")
    p.add_argument("--torch_threads", type=int, default=1)
    return p


def make_env(num_worlds: int, *, rollouts: int, seed: int = 0, faults: Any = None, notes: Any = None):
    """push_lite as a gymnasium vector env (each (world, agent) pair one env; finished envs reset themselves),
    wrapped by skrl, with ``--inject`` faults keyed on the rollouts run (``rollouts`` steps each)."""
    import gymnasium
    import numpy as np
    from skrl.envs.wrappers.torch import wrap_env

    from openrl_ws.envs.push_lite import ACTION_DIM, AGENT_NUM, PushLiteVecEnv
    from openrl_ws.inject import FaultSchedule

    class PushLiteVector(gymnasium.vector.VectorEnv):
        def __init__(self):
            self.world = PushLiteVecEnv(num_worlds, device="cpu", seed=seed)
            first = np.asarray(self.world.reset(seed=seed))
            space = self.world.action_space
            super().__init__(num_worlds * AGENT_NUM, gymnasium.spaces.Box(-np.inf, np.inf, first.shape[-1:], np.float32),
                             gymnasium.spaces.Box(space.low, space.high, space.shape, np.float32))
            self.faults = faults or FaultSchedule(())
            self.steps = 0

        def reset(self, *, seed=None, options=None):
            return np.asarray(self.world.reset(seed=seed), dtype=np.float32).reshape(self.num_envs, -1), {}

        def step(self, actions):
            if self.steps % rollouts == 0:
                for note in self.faults.begin_iteration(self.steps // rollouts, self.world, trainer=None):
                    if notes is not None:
                        notes(f"inject: {note}")
            self.steps += 1
            obs, rewards, dones, _ = self.world.step(np.asarray(actions).reshape(-1, AGENT_NUM, ACTION_DIM))
            n = self.num_envs
            return (np.asarray(obs, dtype=np.float32).reshape(n, -1), np.asarray(rewards, dtype=np.float32).reshape(n),
                    np.asarray(dones).reshape(n), np.zeros(n, dtype=bool), {})

    return wrap_env(PushLiteVector(), wrapper="gymnasium")


def ppo_cfg(env, *, rollouts: int, run_dir: Path):
    """Isaac Lab's skrl PPO settings (KL-adaptive lr, running-mean observation and value preprocessors)."""
    from skrl.agents.torch.ppo import PPO_CFG
    from skrl.resources.preprocessors.torch import RunningStandardScaler
    from skrl.resources.schedulers.torch import KLAdaptiveLR

    cfg = PPO_CFG(rollouts=rollouts, learning_epochs=4, mini_batches=4, discount_factor=0.99, gae_lambda=0.95,
                  learning_rate=1e-3, learning_rate_scheduler=KLAdaptiveLR,
                  learning_rate_scheduler_kwargs={"kl_threshold": 0.008}, grad_norm_clip=1.0, ratio_clip=0.2,
                  value_clip=0.2, entropy_loss_scale=0.0, value_loss_scale=2.0,
                  observation_preprocessor=RunningStandardScaler,
                  observation_preprocessor_kwargs={"size": env.observation_space, "device": env.device},
                  value_preprocessor=RunningStandardScaler, value_preprocessor_kwargs={"size": 1, "device": env.device})
    cfg.experiment.directory, cfg.experiment.experiment_name = str(run_dir.parent), run_dir.name
    cfg.experiment.write_interval, cfg.experiment.checkpoint_interval = rollouts, rollouts * 10
    return cfg


def build_agent(env, *, iterations: int, rollouts: int, run_dir: Path):
    """An Isaac Lab-style skrl PPO agent and its ``SequentialTrainer`` (which ``init``s the agent)."""
    import torch
    from skrl.agents.torch.ppo import PPO
    from skrl.memories.torch import RandomMemory
    from skrl.models.torch import DeterministicMixin, GaussianMixin, Model
    from skrl.trainers.torch import SequentialTrainer
    from torch import nn

    def mlp(inputs: int, outputs: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(inputs, 64), nn.ELU(), nn.Linear(64, 64), nn.ELU(), nn.Linear(64, outputs))

    class Policy(GaussianMixin, Model):
        def __init__(self, obs, act, device):
            Model.__init__(self, observation_space=obs, action_space=act, device=device)
            GaussianMixin.__init__(self, clip_actions=True, clip_log_std=True, min_log_std=-20.0, max_log_std=2.0)
            self.net = mlp(self.num_observations, self.num_actions)
            self.log_std = nn.Parameter(torch.zeros(self.num_actions))

        def compute(self, inputs, role):
            return self.net(inputs["observations"]), {"log_std": self.log_std}

    class Value(DeterministicMixin, Model):
        def __init__(self, obs, act, device):
            Model.__init__(self, observation_space=obs, action_space=act, device=device)
            DeterministicMixin.__init__(self)
            self.net = mlp(self.num_observations, 1)

        def compute(self, inputs, role):
            return self.net(inputs["observations"]), {}

    cfg = ppo_cfg(env, rollouts=rollouts, run_dir=run_dir)
    models = {"policy": Policy(env.observation_space, env.action_space, env.device),
              "value": Value(env.observation_space, env.action_space, env.device)}
    memory = RandomMemory(memory_size=rollouts, num_envs=env.num_envs, device=env.device)
    agent = PPO(models=models, memory=memory, cfg=cfg, observation_space=env.observation_space,
                action_space=env.action_space, device=env.device)
    trainer = SequentialTrainer(cfg={"timesteps": iterations * rollouts, "headless": True, "disable_progressbar": True},
                                env=env, agents=agent)
    return agent, trainer


def main(argv: list[str] | None = None) -> int:
    return run_example("skrl_ppo.py", build_parser().parse_args(argv), _run)


def _run(args) -> int:
    import torch

    from watchdog.config import load_skrl_safe_config
    from watchdog.console import WatchdogConsole
    from watchdog.errors import NonFiniteTraining

    faults, run_dir = checked_inputs(args, load_safe_config=load_skrl_safe_config, framework="skrl",
                                     sizes_ok=args.iterations >= 1 and args.num_worlds >= 2 and args.rollouts >= 4,
                                     sizes_rule="--iterations must be >= 1, --num_worlds >= 2 and --rollouts >= 4")
    torch.manual_seed(args.seed)
    console = WatchdogConsole()
    env = make_env(args.num_worlds, rollouts=args.rollouts, seed=args.seed, faults=faults,
                   notes=lambda text: console.message(text, style="bold yellow"))
    agent, trainer = build_agent(env, iterations=args.iterations, rollouts=args.rollouts, run_dir=run_dir)
    console.message(f"skrl PPO on push_lite: {env.num_envs} envs x {args.rollouts} steps/update, "
                    f"{args.iterations} updates, run dir {run_dir}" + (", watched" if args.watchdog else ""))
    start = time.time()
    if args.watchdog:
        from watchdog.integrations.skrl import SkrlWatchdog

        with SkrlWatchdog(agent, run_dir, config=args.watchdog_config, safe_config=args.safe_config,
                          console=console, seed=args.seed) as watch:
            trainer.train()
        if watch.result.stopped:
            console.message(f"STOPPED by the watchdog: {watch.result.stop_reason}; run dir {run_dir}", style="bold red")
            return EXIT_STOPPED
    else:
        trainer.train()
    # skrl trains on through NaN (its Gaussian models check no arguments): unwatched, or watched with
    # `action: alert`, a run can end with NaN weights; say so
    if any(not bool(torch.isfinite(p).all()) for p in agent.policy.parameters()):
        raise NonFiniteTraining("the run ended with non-finite policy weights")
    result = watch.result if args.watchdog else None
    rollbacks = f", {result.recoveries_said()}" if result is not None else ""
    console.message(f"finished: {args.iterations} updates in {time.time() - start:.0f} s{rollbacks}; "
                    f"run dir {run_dir}", style="bold green")
    return EXIT_OK


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
