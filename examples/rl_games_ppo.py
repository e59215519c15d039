"""rl_games PPO on push_lite (CPU, well under a minute), optionally under the watchdog.

    python examples/rl_games_ppo.py --watchdog --inject nan@20 --iterations 40 --run_dir /tmp/rl_games_run

The watched version differs from a plain rl_games script by the observer it builds its ``Runner`` with:
``Runner(WatchdogObserver(...))`` instead of ``Runner()`` (in Isaac Lab, ``WatchdogObserver(wrap=
IsaacAlgoObserver())`` instead of ``IsaacAlgoObserver()``). ``--run_dir`` is rl_games' experiment folder: its
``summaries/`` (TensorBoard) and ``nn/`` (checkpoints), and with ``--watchdog`` also ``watchdog_events.jsonl``
and ``checkpoints/watchdog/``. The agent config is an Isaac Lab-style one (``a2c_continuous``, normalised
input and value, the adaptive KL schedule), sized for push_lite on a CPU.

Exit codes (as ``openrl_ws/train.py``): 0 finished, 1 stopped by the watchdog, 2 bad input (one line on
stderr), 3 training died on non-finite numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "examples"):  # `python examples/rl_games_ppo.py` from anywhere
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from example_cli import EXIT_OK, EXIT_STOPPED, checked_inputs, run_example  # noqa: E402  (on the path now)
ENV_NAME = "push_lite_watchdog"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=60, help="PPO epochs (rl_games max_epochs; default 60)")
    p.add_argument("--num_worlds", type=int, default=32, help="push_lite worlds; 2 agents = 2 rl_games actors each")
    p.add_argument("--horizon", type=int, default=16, help="rollout length per actor (rl_games horizon_length)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--watchdog", action="store_true", help="watch the run: detect divergence, roll back, switch config")
    p.add_argument("--watchdog_config", default=None,
                   help="watchdog YAML (default: the library's, judged as replay judges rl_games)")
    p.add_argument("--safe_config", default=str(ROOT / "cfgs" / "rl_games_safe.yaml"))
    p.add_argument("--run_dir", default=None, help="run directory (default results/<date>_rl_games)")
    p.add_argument("--inject", action="append", default=[], metavar="KIND@START[-END][:VALUE]",
                   help="deterministic fault, repeatable: nan@20, reward_scale@20-24:50, obs_noise@10-15:5, crash@7")
    p.add_argument("--torch_threads", type=int, default=1)
    return p


def agent_params(seed: int, *, iterations: int, num_actors: int, horizon: int, run_dir: Path) -> dict:
    """An Isaac Lab-style rl_games agent config for push_lite on a CPU (``params`` of ``Runner.load``)."""
    return {"params": {
        "seed": seed, "torch_threads": 1, "algo": {"name": "a2c_continuous"}, "model": {"name": "continuous_a2c_logstd"},
        "network": {"name": "actor_critic", "separate": False,
                    "space": {"continuous": {"mu_activation": "None", "sigma_activation": "None",
                                             "mu_init": {"name": "default"},
                                             "sigma_init": {"name": "const_initializer", "val": 0}, "fixed_sigma": True}},
                    "mlp": {"units": [64, 64], "activation": "elu", "initializer": {"name": "default"}}},
        "config": {
            "name": "push_lite", "env_name": ENV_NAME, "env_config": {}, "device": "cpu", "ppo": True,
            "train_dir": str(run_dir.parent), "full_experiment_name": run_dir.name,
            "normalize_input": True, "normalize_value": True, "normalize_advantage": True, "value_bootstrap": True,
            "reward_shaper": {"scale_value": 1.0}, "gamma": 0.99, "tau": 0.95,
            "learning_rate": 1e-3, "lr_schedule": "adaptive", "kl_threshold": 0.008,
            "max_epochs": iterations, "print_stats": False, "save_frequency": 0, "save_best_after": 10 ** 9, "score_to_win": 1e9,
            "grad_norm": 1.0, "truncate_grads": True, "entropy_coef": 0.0, "e_clip": 0.2, "clip_value": True,
            "critic_coef": 2.0, "bounds_loss_coef": 1e-4, "horizon_length": horizon, "num_actors": num_actors,
            "minibatch_size": num_actors * horizon // 4, "mini_epochs": 4, "seq_length": 4, "torch_compile": False,
        }}}


def make_env_class():
    """push_lite as an rl_games ``IVecEnv`` (each (world, agent) pair one actor), with ``--inject`` faults keyed
    on the epoch: the env counts rollouts itself (``horizon`` steps each; a rollback's ``reset()`` ends an
    aborted one), so epochs are the ones actually run, rolled-back ones included, as in ``openrl_ws/train.py``."""
    import numpy as np
    from rl_games.common.ivecenv import IVecEnv

    from openrl_ws.envs.push_lite import ACTION_DIM, AGENT_NUM, PushLiteVecEnv

    class PushLiteRlGamesEnv(IVecEnv):
        def __init__(self, num_worlds: int, *, horizon: int, seed: int = 0, faults: Any = None, notes: Any = None):
            from openrl_ws.inject import FaultSchedule

            self.world = PushLiteVecEnv(num_worlds, device="cpu", seed=seed)
            self.actors = num_worlds * AGENT_NUM
            self.horizon, self.seed = horizon, seed
            self.faults = faults or FaultSchedule(())
            self.notes = notes
            self.iteration = 0  # rollouts begun so far (the epoch faults are keyed on)
            self._rollout_steps = 0

        def step(self, actions):
            if self._rollout_steps == 0:
                for note in self.faults.begin_iteration(self.iteration, self.world, trainer=None):
                    if self.notes is not None:
                        self.notes(f"inject: {note}")
            obs, rewards, dones, _ = self.world.step(np.asarray(actions).reshape(-1, AGENT_NUM, ACTION_DIM))
            self._rollout_steps += 1
            if self._rollout_steps == self.horizon:
                self.iteration, self._rollout_steps = self.iteration + 1, 0
            return (np.asarray(obs, dtype=np.float32).reshape(self.actors, -1),
                    np.asarray(rewards, dtype=np.float32).reshape(self.actors),
                    np.asarray(dones).reshape(self.actors).astype(np.uint8), {})

        def reset(self):
            """New episodes everywhere; an unfinished rollout (a rollback's) counts as run."""
            if self._rollout_steps:
                self.iteration, self._rollout_steps = self.iteration + 1, 0
            self.world.nan_next_step = False
            return np.asarray(self.world.reset(seed=self.seed), dtype=np.float32).reshape(self.actors, -1)

        def get_number_of_agents(self):
            return 1

        def get_env_info(self):
            from rl_games.common.gym_compat import (
                gym,  # the gym rl_games checks spaces against
            )

            space = self.world.action_space
            obs_dim = np.asarray(self.world.reset(seed=self.seed)).shape[-1]
            return {"action_space": gym.spaces.Box(space.low, space.high, space.shape, np.float32),
                    "observation_space": gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
                    "agents": 1, "value_size": 1}

    return PushLiteRlGamesEnv


def register_env(num_worlds: int, horizon: int, seed: int, faults: Any, notes: Any) -> None:
    """Register push_lite under ``ENV_NAME`` in rl_games' registries (rl_games builds it in ``Runner.run``)."""
    from rl_games.common import env_configurations, vecenv

    env_class = make_env_class()
    vecenv.register("WATCHDOG_PUSH_LITE", lambda config_name, num_actors, **kwargs: env_class(
        num_worlds, horizon=horizon, seed=seed, faults=faults, notes=notes))
    env_configurations.register(ENV_NAME, {"vecenv_type": "WATCHDOG_PUSH_LITE", "env_creator": lambda **kw: None})


def build_runner(args, run_dir: Path, faults, console):
    """The rl_games ``Runner`` (loaded) and its observer (the watchdog's, or rl_games' own unwatched)."""
    import torch
    from rl_games.torch_runner import Runner

    torch.manual_seed(args.seed)  # rl_games 1.6 seeds nothing for seed 0
    register_env(args.num_worlds, args.horizon, args.seed, faults,
                 notes=lambda text: console.message(text, style="bold yellow"))
    if args.watchdog:
        from watchdog.integrations.rl_games import WatchdogObserver

        observer = WatchdogObserver(run_dir, config=args.watchdog_config, safe_config=args.safe_config, console=console)
    else:  # rl_games' own observer, which keeps the agent (``.algo``) for the NaN check at the end
        from rl_games.common.algo_observer import DefaultAlgoObserver

        observer = DefaultAlgoObserver()
    runner = Runner(observer)
    runner.load(agent_params(args.seed, iterations=args.iterations, num_actors=args.num_worlds * 2,
                             horizon=args.horizon, run_dir=run_dir))
    return runner, observer


def main(argv: list[str] | None = None) -> int:
    return run_example("rl_games_ppo.py", build_parser().parse_args(argv), _run)


def _run(args) -> int:
    from watchdog.config import load_rl_games_safe_config
    from watchdog.console import WatchdogConsole

    faults, run_dir = checked_inputs(args, load_safe_config=load_rl_games_safe_config, framework="rl_games",
                                     sizes_ok=args.iterations >= 1 and args.num_worlds >= 2 and args.horizon >= 4,
                                     sizes_rule="--iterations must be >= 1, --num_worlds >= 2 and --horizon >= 4")
    console = WatchdogConsole()
    runner, observer = build_runner(args, run_dir, faults, console)
    console.message(f"rl_games PPO on push_lite: {args.num_worlds * 2} actors x {args.horizon} steps/epoch, "
                    f"{args.iterations} epochs, run dir {run_dir}" + (", watched" if args.watchdog else ""))
    start = time.time()
    try:
        runner.run({"train": True, "play": False})
    except Exception as exc:  # unwatched: rl_games' sampling raises on a NaN std; finite numbers are a bug
        if args.watchdog:
            raise
        from watchdog.errors import NonFiniteTraining
        from watchdog.integrations.rl_games import nonfinite_where

        where = nonfinite_where(observer.algo)
        if where is None:
            raise
        raise NonFiniteTraining(f"non-finite numbers in the {where}") from exc
    if not args.watchdog:
        observer = None
    result = observer.result if observer is not None else None
    if result is not None and result.stopped:
        console.message(f"STOPPED by the watchdog: {result.stop_reason}; run dir {run_dir}", style="bold red")
        return EXIT_STOPPED
    rollbacks = f", {result.recoveries_said()}" if result is not None else ""
    console.message(f"finished: {args.iterations} epochs in {time.time() - start:.0f} s{rollbacks}; "
                    f"run dir {run_dir}", style="bold green")
    return EXIT_OK


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
