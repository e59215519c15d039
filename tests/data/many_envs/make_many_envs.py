"""Write rsl_rl runs at Isaac Lab's scale of envs under tests/data/many_envs/ (real library, CPU).

    PYTHONPATH=. python tests/data/many_envs/make_many_envs.py [run ...]

Isaac Lab trains rsl_rl with thousands of envs, so its logged losses (means over tens of thousands of
transitions) are smooth, and its mean reward (over the last 100 episodes that ended, rsl_rl's
`rewbuffer`) is renewed every iteration, with far less noise than the 16-64-env runs elsewhere in
tests/data. The detectors are scale-free, judged against each run's own noise; these runs check they do
not take a smooth run's small wobbles for a departure. push_lite (our torch-vectorised MAPush
structure) with 512 envs x 2 agents = 1,024 rsl_rl envs, Isaac Lab's locomotion PPO settings (24 steps,
5 epochs x 4 minibatches, lr 1e-3 with the adaptive KL schedule at 0.01, entropy 0.005, clipped value loss,
128-128 ELU, init std 1). The fault: the learning rate x30 from a known update on (the fixed schedule,
as in ../mujoco). Each run's checkpoints are deleted afterwards (git-status folder too).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATE = "2026-11-30_18-00-00"
ENVS = 512
# run -> (iterations, (update, factor) of the learning-rate fault or None)
RUNS = {
    "rsl_rl/push_lite_healthy": (600, None),
    "rsl_rl/push_lite_lr_fault": (500, (300, 30.0)),
}


def run(name: str, iterations: int, lr_jump) -> None:
    from rsl_rl.runners import OnPolicyRunner

    from tests.data.frameworks.make_runs import _jump_learning_rate, _push_lite_vecenv

    steps = 24
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(0)
    env = _push_lite_vecenv(ENVS, None, steps)
    model = {"class_name": "MLPModel", "hidden_dims": [128, 128], "activation": "elu"}
    cfg = {
        "num_steps_per_env": steps, "save_interval": 1000, "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "algorithm": {"class_name": "PPO", "num_learning_epochs": 5, "num_mini_batches": 4, "learning_rate": 1e-3,
                      "schedule": "adaptive" if lr_jump is None else "fixed", "desired_kl": 0.01, "gamma": 0.99,
                      "lam": 0.95, "entropy_coef": 0.005, "clip_param": 0.2, "value_loss_coef": 1.0,
                      "use_clipped_value_loss": True, "max_grad_norm": 1.0},
        "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0}},
        "critic": dict(model), "logger": "tensorboard", "multi_gpu": None,
    }
    log_dir = out / "logs" / DATE
    runner = OnPolicyRunner(env, cfg, log_dir=str(log_dir), device="cpu")
    if lr_jump is not None:
        _jump_learning_rate(runner.alg, *lr_jump)
    runner.learn(iterations)
    for path in log_dir.glob("model_*.pt"):
        path.unlink()
    shutil.rmtree(log_dir / "git", ignore_errors=True)


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    for name in argv or list(RUNS):
        if name not in RUNS:
            print(f"unknown run {name!r}; runs: {', '.join(RUNS)}", file=sys.stderr)
            return 2
        start = time.perf_counter()
        run(name, *RUNS[name])
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
