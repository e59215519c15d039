"""rsl_rl PPO on push_lite (CPU, well under a minute), optionally under the watchdog.

    python examples/rsl_rl_ppo.py --watchdog --inject nan@20 --iterations 40 --run_dir /tmp/rsl_run

The watched version differs from a plain rsl_rl script by one line: ``WatchedOnPolicyRunner``
instead of ``OnPolicyRunner`` (plus where its configs come from). ``--run_dir`` gets rsl_rl's
TensorBoard events and ``model_<it>.pt``, and with ``--watchdog`` also ``watchdog_events.jsonl``
and ``checkpoints/watchdog/``.

Exit codes (as ``openrl_ws/train.py``): 0 finished, 1 stopped by the watchdog, 2 bad input (one
line on stderr), 3 training died on non-finite numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "examples"):  # `python examples/rsl_rl_ppo.py` from anywhere
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from example_cli import EXIT_OK, EXIT_STOPPED, checked_inputs, run_example  # noqa: E402  (on the path now)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=60, help="PPO iterations (default 60)")
    p.add_argument("--num_worlds", type=int, default=32, help="push_lite worlds; 2 agents = 2 rsl_rl envs each")
    p.add_argument("--steps_per_env", type=int, default=24, help="rollout length per env (rsl_rl num_steps_per_env)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--watchdog", action="store_true", help="watch the run: detect divergence, roll back, switch config")
    p.add_argument("--watchdog_config", default=None,
                   help="watchdog YAML (default: the library's defaults with the value-loss 0.2 rule off)")
    p.add_argument("--safe_config", default=str(ROOT / "cfgs" / "rsl_rl_safe.yaml"))
    p.add_argument("--run_dir", default=None, help="run directory (default results/<date>_rsl_rl)")
    p.add_argument("--inject", action="append", default=[], metavar="KIND@START[-END][:VALUE]",
                   help="deterministic fault, repeatable: nan@20, reward_scale@20-24:50, obs_noise@10-15:5, crash@7")
    p.add_argument("--torch_threads", type=int, default=1)
    return p


def train_cfg(seed: int, steps_per_env: int) -> dict:
    """An Isaac Lab-style rsl_rl 5.x config, sized for push_lite on a CPU."""
    return {
        "seed": seed,
        "num_steps_per_env": steps_per_env,
        "save_interval": 1000,
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "logger": "tensorboard",
        "actor": {"class_name": "MLPModel", "hidden_dims": [64, 64], "activation": "elu", "obs_normalization": True,
                  "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0, "std_type": "scalar"}},
        "critic": {"class_name": "MLPModel", "hidden_dims": [64, 64], "activation": "elu", "obs_normalization": True},
        "algorithm": {"class_name": "PPO", "learning_rate": 1e-3, "schedule": "adaptive", "desired_kl": 0.01,
                      "num_learning_epochs": 4, "num_mini_batches": 4, "clip_param": 0.2, "gamma": 0.99, "lam": 0.95,
                      "value_loss_coef": 1.0, "entropy_coef": 0.005, "max_grad_norm": 1.0,
                      "use_clipped_value_loss": True, "rnd_cfg": None, "symmetry_cfg": None},
    }


def build_runner(args, run_dir: Path, faults, console, *, quiet: bool = False):
    """The env and the (watched or plain) runner; quiet silences rsl_rl's per-iteration print-out."""
    import contextlib
    import io

    import torch
    from push_lite_vecenv import PushLiteRslEnv

    torch.manual_seed(args.seed)
    env = PushLiteRslEnv(args.num_worlds, steps_per_iteration=args.steps_per_env, seed=args.seed, faults=faults,
                         notes=lambda text: console.message(text, style="bold yellow"))
    cfg = train_cfg(args.seed, args.steps_per_env)
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        if args.watchdog:
            from watchdog.integrations.rsl_rl import WatchedOnPolicyRunner

            runner = WatchedOnPolicyRunner(env, cfg, str(run_dir), device="cpu", watchdog_config=args.watchdog_config,
                                           safe_config=args.safe_config, console=console)
        else:
            from rsl_rl.runners import OnPolicyRunner

            runner = OnPolicyRunner(env, cfg, str(run_dir), device="cpu")
    return env, runner


def main(argv: list[str] | None = None) -> int:
    return run_example("rsl_rl_ppo.py", build_parser().parse_args(argv), _run)


def _run(args) -> int:
    from watchdog.config import load_rsl_rl_safe_config
    from watchdog.console import WatchdogConsole
    from watchdog.errors import NonFiniteTraining

    faults, run_dir = checked_inputs(args, load_safe_config=load_rsl_rl_safe_config, framework="rsl_rl",
                                     sizes_ok=min(args.iterations, args.num_worlds, args.steps_per_env) >= 1,
                                     sizes_rule="--iterations, --num_worlds and --steps_per_env must be >= 1")
    console = WatchdogConsole()
    env, runner = build_runner(args, run_dir, faults, console)
    console.message(f"rsl_rl PPO on push_lite: {env.num_envs} envs x {args.steps_per_env} steps/iteration, "
                    f"{args.iterations} iterations, run dir {run_dir}" + (", watched" if args.watchdog else ""))
    start = time.time()
    try:
        runner.learn(num_learning_iterations=args.iterations)
    except ValueError as exc:  # unwatched: rsl_rl's own NaN check; finite numbers are a bug (re-raised)
        from watchdog.integrations.rsl_rl import nonfinite_where

        where = nonfinite_where(runner, exc)
        if where is None:
            raise
        raise NonFiniteTraining(f"non-finite numbers in the {where}") from exc
    result = getattr(runner, "watch_result", None)
    if result is not None and result.stopped:
        console.message(f"STOPPED by the watchdog: {result.stop_reason}; run dir {run_dir}", style="bold red")
        return EXIT_STOPPED
    rollbacks = f", {result.recoveries_said()}" if result is not None else ""
    console.message(f"finished: {args.iterations} iterations in {time.time() - start:.0f} s{rollbacks}; "
                    f"run dir {run_dir}", style="bold green")
    return EXIT_OK


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
