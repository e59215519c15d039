"""Stable-Baselines3 PPO on Pendulum-v1 (CPU, well under a minute), optionally under the watchdog.

    python examples/sb3_ppo.py --watchdog --inject nan@20 --iterations 40 --run_dir results/sb3_nan

The watchdog part is the three lines a user adds to their own script (see ``train``)::

    from watchdog.integrations.sb3 import WatchdogCallback
    callback = WatchdogCallback(run_dir, safe_config="cfgs/sb3_safe.yaml")
    model.learn(total_timesteps, callback=callback)

Writes ``watchdog_events.jsonl``, the stable checkpoints (``checkpoints/watchdog/``) and SB3's
TensorBoard events (its ``train/*`` and ``rollout/*`` scalars plus ``watchdog/*``) into ``--run_dir``.
Exit codes as ``openrl_ws/train.py``: 0 finished, 1 stopped by the watchdog (rollback budget spent),
2 bad input (one line on stderr), 3 training died on non-finite numbers.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python examples/sb3_ppo.py` from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watchdog.quiet import quiet_dependency_warnings  # noqa: E402  (on the path now)

quiet_dependency_warnings()  # before SB3 imports gym, whose "unmaintained since 2022" notice it silences (session 20)

import numpy as np  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.vec_env import VecEnvWrapper  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXIT_OK, EXIT_STOPPED, EXIT_BAD_INPUT, EXIT_DIVERGED = 0, 1, 2, 3
INJECT_KINDS = ("nan", "reward_scale", "obs_noise")  # what an env wrapper can do; lr_spike/crash: openrl_ws only


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--watchdog", action="store_true", help="watch the run: detect divergence, roll back, switch config")
    p.add_argument("--watchdog_config", default=str(ROOT / "cfgs" / "sb3_watchdog.yaml"),
                   help="watchdog YAML (default cfgs/sb3_watchdog.yaml: the SB3 defaults, a warm-up for short runs)")
    p.add_argument("--safe_config", default=str(ROOT / "cfgs" / "sb3_safe.yaml"))
    p.add_argument("--inject", action="append", default=[], metavar="KIND@START[-END][:VALUE]",
                   help="deterministic fault, repeatable, iterations counted as run: nan@20, reward_scale@20-24:50, "
                        "obs_noise@10-15:2")
    p.add_argument("--iterations", type=int, default=40, help="PPO iterations (rollout + update)")
    p.add_argument("--run_dir", default=None, help="run directory (default results/<date>_sb3_pendulum)")
    p.add_argument("--n_envs", type=int, default=4)
    p.add_argument("--n_steps", type=int, default=64, help="rollout length per env")
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch_threads", type=int, default=1)
    return p


def _fail(message: str) -> int:
    print(f"sb3_ppo.py: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from openrl_ws.inject import FaultSchedule  # the grammar shared with train.py; imports no openrl
    from watchdog.config import load_watchdog_config
    from watchdog.errors import NonFiniteTraining, WatchdogError

    try:
        faults = FaultSchedule.from_specs(args.inject)
        unsupported = [f.spec for f in faults.faults if f.kind not in INJECT_KINDS]
        if unsupported:
            return _fail(f"--inject {unsupported[0]}: this example injects {', '.join(INJECT_KINDS)} only")
        if faults.max_rank() > 0:
            return _fail(f"--inject names rank {faults.max_rank()}: this example is one process (rank 0)")
        faults, not_repeated = faults.this_attempt()
        if not_repeated:
            print(not_repeated, flush=True)
        for name in ("iterations", "n_envs", "n_steps"):
            if getattr(args, name) < 1:
                return _fail(f"--{name} must be >= 1, got {getattr(args, name)}")
        wd_cfg = load_watchdog_config(args.watchdog_config) if args.watchdog and args.watchdog_config else None
        if args.watchdog:
            from watchdog.integrations.sb3 import load_safe_config

            load_safe_config(args.safe_config)  # a bad file is exit 2 before anything is built
        run_dir = Path(args.run_dir or ROOT / "results" / f"{time.strftime('%m-%d-%H-%M-%S')}_sb3_pendulum")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _fail(f"{run_dir}: cannot create the run directory ({exc.strerror or exc})")
        return train(args, faults, wd_cfg, run_dir)
    except WatchdogError as err:
        return _fail(str(err))
    except NonFiniteTraining as exc:
        print(f"sb3_ppo.py: training diverged: {exc}", file=sys.stderr)
        return EXIT_DIVERGED


def train(args, faults, wd_cfg, run_dir: Path) -> int:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    from watchdog.errors import NonFiniteTraining

    torch.set_num_threads(args.torch_threads)
    logging.getLogger("openrl_ws.inject").setLevel(logging.ERROR)  # printed below, once
    env = FaultInjection(make_vec_env("Pendulum-v1", n_envs=args.n_envs, seed=args.seed))
    model = PPO("MlpPolicy", env, n_steps=args.n_steps, batch_size=64, n_epochs=4, gamma=0.9, gae_lambda=0.95,
                learning_rate=args.learning_rate, seed=args.seed, device="cpu")
    model.set_logger(configure(str(run_dir), ["tensorboard"]))  # SB3's events file lands in run_dir
    callbacks = [InjectFaults(faults, env)] if faults else []
    watchdog = None
    if args.watchdog:
        from watchdog.integrations.sb3 import WatchdogCallback

        watchdog = WatchdogCallback(run_dir, config=wd_cfg, safe_config=args.safe_config, seed=args.seed)
        callbacks.append(watchdog)
    total = args.iterations * args.n_envs * args.n_steps
    print(f"training PPO on Pendulum-v1: {args.n_envs} envs x {args.n_steps} steps/iteration, {args.iterations} "
          f"iterations, lr {args.learning_rate}, watchdog {'on' if watchdog else 'off'}, run dir {run_dir}", flush=True)
    start = time.time()
    try:
        model.learn(total, callback=CallbackList(callbacks))
    except Exception as exc:
        from watchdog.integrations.sb3 import nonfinite_where

        where = None if isinstance(exc, NonFiniteTraining) else nonfinite_where(model)
        if where is None and not isinstance(exc, NonFiniteTraining):
            raise
        message = str(exc) if where is None else f"non-finite numbers in the {where} ({' '.join(str(exc).split())[:160]})"
        advice = "" if watchdog else "; rerun with --watchdog to roll back instead"
        print(f"sb3_ppo.py: training diverged: {message}{advice}", file=sys.stderr)
        return EXIT_DIVERGED
    finally:
        if watchdog is not None:
            watchdog.detach()
        env.close()
    result = watchdog.result if watchdog else None
    stopped = bool(result and result.stopped)
    reward = (result.final_record.metrics.get("rollout/average_step_reward")
              if result and result.final_record else None)
    verdict = f"STOPPED by the watchdog: {result.stop_reason}" if stopped else "finished"
    print(f"{verdict}: {model.num_timesteps:,} env steps in {time.time() - start:.1f} s"
          + (f", {result.recoveries_said()}, "
             f"last step reward {reward:.4g}" if result and reward is not None
             and math.isfinite(reward) else "") + f"; run dir {run_dir}", flush=True)
    return EXIT_STOPPED if stopped else EXIT_OK


class FaultInjection(VecEnvWrapper):
    """A VecEnv wrapper with the knobs ``openrl_ws.inject.FaultSchedule`` sets: ``reward_scale``,
    ``obs_noise_std`` and ``nan_next_step`` (one step of NaN observations and rewards)."""

    reward_scale, obs_noise_std, nan_next_step = 1.0, 0.0, False

    def reset(self):
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        rewards = rewards * self.reward_scale
        if self.obs_noise_std:
            obs = obs + np.random.default_rng().normal(0.0, self.obs_noise_std, obs.shape).astype(obs.dtype)
        if self.nan_next_step:
            self.nan_next_step = False
            obs, rewards = np.full_like(obs, np.nan), np.full_like(rewards, np.nan)
        return obs, rewards, dones, infos


class InjectFaults(BaseCallback):
    """Sets the env's fault knobs at the start of each PPO iteration (counted as run, so a
    transient fault does not recur after a rollback)."""

    def __init__(self, faults, env: FaultInjection):
        super().__init__()
        self.faults, self.env, self.iteration = faults, env, 0

    def _on_rollout_start(self) -> None:
        for note in self.faults.begin_iteration(self.iteration, self.env, None):
            print(f"inject: {note}", flush=True)
        self.iteration += 1

    def _on_step(self) -> bool:
        return True


if __name__ == "__main__":
    sys.exit(main())
