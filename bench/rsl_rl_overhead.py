"""In-loop watchdog cost per PPO iteration for rsl_rl, as watched / unwatched.

Real rsl_rl PPO (``OnPolicyRunner`` vs ``WatchedOnPolicyRunner``) on push_lite as an rsl_rl
``VecEnv`` (``examples/push_lite_vecenv.py``, the example's network and PPO settings), the same
seed and sizes, one process, runs interleaved in ABBA order (unwatched, watched, watched,
unwatched, ...) so machine load hits both alike. Each run's seconds per iteration are timed
between the starts of its second and last update (set-up and the first iteration outside); the
figure is the ratio of the medians, of wall time (what a user waits) and of this process's CPU
time (``time.process_time``: far less sensitive to other processes' load on a shared machine, but
blind to I/O waits such as the checkpoints' fsyncs). Both runs write rsl_rl's TensorBoard events and print-out (to
a null stream); the watched one adds the whole watchdog: metric record, detectors, policy, event
log, status line (to a null console), ``watchdog/*`` scalars, stable checkpoints to memory and disk
every 10 iterations. ``hook_ms`` is the time inside the watchdog's per-iteration judgement alone,
a load-independent view of the same cost.

    python -m bench.rsl_rl_overhead [--sizes 32x24 512x24] [--iterations 20] [--repeats 2]

Sizes are ``WORLDSxSTEPS``: push_lite worlds (2 rsl_rl envs each) x rollout steps per env.
Writes bench/results/rsl_rl_overhead.json.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

from bench.abba import overhead_main, per_update, stamped, timed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def rsl_rl_run(worlds: int, steps: int, iterations: int, watched: bool, hook_seconds: list[float]) -> tuple[float, float]:
    """Wall and CPU seconds per PPO iteration of one rsl_rl run (the first iteration excluded)."""
    import torch
    from rsl_rl.runners import OnPolicyRunner

    sys.path.insert(0, str(ROOT / "examples"))
    from push_lite_vecenv import PushLiteRslEnv
    from rsl_rl_ppo import train_cfg

    from watchdog.console import WatchdogConsole
    from watchdog.integrations.rsl_rl import WatchedOnPolicyRunner

    torch.set_num_threads(1)
    torch.manual_seed(0)
    stamps: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, contextlib.redirect_stdout(io.StringIO()):
        env = PushLiteRslEnv(worlds, steps_per_iteration=steps, seed=0)
        if watched:
            runner = WatchedOnPolicyRunner(env, train_cfg(0, steps), tmp, console=WatchdogConsole(io.StringIO()))
            runner._judge = timed(runner._judge, hook_seconds)
        else:
            runner = OnPolicyRunner(env, train_cfg(0, steps), tmp)
        runner.logger.git_status_repos.clear()  # not timed anyway; keeps rsl_rl's git diff out of tmp
        runner.alg.update = stamped(runner.alg.update, stamps)
        runner.learn(iterations)
        runner.logger.writer.close()  # rsl_rl leaves its SummaryWriter open (a thread still writing into tmp)
    return per_update(stamps)


def main(argv: list[str] | None = None) -> None:
    overhead_main(argv, doc=__doc__, framework="rsl_rl", dist="rsl-rl-lib", run=rsl_rl_run,
                  task="push_lite (examples/push_lite_vecenv.py)", default_sizes=["32x24", "512x24"],
                  sizes_help="WORLDSxSTEPS per size (32x24: the example's rollout; 512x24: 1024 envs, Isaac Lab's 24 steps)",
                  results=RESULTS)


if __name__ == "__main__":
    main()
