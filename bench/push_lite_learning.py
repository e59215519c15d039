"""Learning evidence for push_lite: OpenRL PPO improves the average step reward in a few CPU minutes.

Run ``python -m bench.push_lite_learning``. Measures env-only throughput with random actions at
64/512/4096 envs, trains 80 PPO iterations (64 envs x 100 steps each; about 2 CPU minutes on an idle
2-core machine), prints the average step reward of every iteration (from the env's
``batch_rewards``) and writes ``bench/results/push_lite_learning.{json,png}``. Numbers are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

# OpenRL 0.2.0 has an import cycle through openrl.utils.callbacks: import the net/agent first.
from openrl.modules.common import PPONet  # isort: skip
from openrl.runners.common import PPOAgent  # isort: skip
from openrl.configs.config import create_config_parser
from openrl.drivers.onpolicy_driver import OnPolicyDriver

from openrl_ws.envs import REWARD_COMPONENTS, make_env

RESULTS = Path(__file__).parent / "results"


def ppo_cfg(episode_length: int, seed: int, extra: list[str] | None = None):
    """OpenRL's own parser with the settings this benchmark trains with."""
    argv = [
        "--seed", str(seed),
        "--episode_length", str(episode_length),
        "--lr", "5e-4",
        "--critic_lr", "5e-4",
        "--hidden_size", "64",
        "--ppo_epoch", "5",
        "--num_mini_batch", "2",
        "--log_interval", "1000000",
    ]
    return create_config_parser().parse_args(argv + (extra or []))


def recording_driver(records: list[dict], env, started: float, deadline_s: float):
    """An OnPolicyDriver class that records each iteration's reward summary and stops at a deadline."""

    class RecordingDriver(OnPolicyDriver):
        """Keeps ``batch_rewards`` plus success rate and wall time per iteration."""

        def actor_rollout(self):
            """Roll out as usual (unless time is up), then record what the env reported."""
            if time.perf_counter() - started > deadline_s:
                return {}, False
            infos, keep_going = super().actor_rollout()
            row = dict(infos, **env.episode_stats(), wall_s=time.perf_counter() - started)
            row["iteration"] = len(records)
            records.append(row)
            print(
                f"iter {row['iteration']:4d}  avg step reward {row['average_step_reward']:+.4f}  "
                f"success {row['success_rate']:.2f}  ({row['wall_s']:.0f} s)",
                flush=True,
            )
            return infos, keep_going

    return RecordingDriver


def train(num_envs: int, episode_length: int, iterations: int, minutes: float, seed: int, algo: str,
          device: str = "cpu") -> dict:
    """Train PPO (or MAPPO with a centralized critic) for ``iterations``, or until ``minutes`` pass."""
    env = make_env("push_lite", num_envs, device=device, seed=seed, centralized_critic=algo == "mappo")
    net = PPONet(env, cfg=ppo_cfg(episode_length, seed), device=device)
    agent = PPOAgent(net)
    records: list[dict] = []
    steps_per_iter = num_envs * episode_length
    started = time.perf_counter()
    driver = recording_driver(records, env, started, deadline_s=minutes * 60)
    agent.train(total_time_steps=iterations * steps_per_iter, driver_class=driver)
    wall = time.perf_counter() - started
    return {
        "algo": algo,
        "device": device,
        "num_envs": num_envs,
        "episode_length": episode_length,
        "agents": env.agent_num,
        "seed": seed,
        "iterations": [r["iteration"] for r in records],
        "average_step_reward": [r["average_step_reward"] for r in records],
        "success_rate": [r["success_rate"] for r in records],
        "components": {k: [r[k] for r in records] for k in REWARD_COMPONENTS},
        "env_steps": [(r["iteration"] + 1) * steps_per_iter for r in records],
        "wall_s": [r["wall_s"] for r in records],
        "total_wall_s": wall,
    }


def env_throughput(num_envs: int, steps: int = 100, repeats: int = 3, seed: int = 0, device: str = "cpu") -> float:
    """Env-only steps per second (one step = one env advancing once), random actions from the host
    (as a policy's actions reach the env in training).

    Best of ``repeats`` timings: the machine is shared, and the best run is the least disturbed.
    """
    env = make_env("push_lite", num_envs, device=device, seed=seed)
    env.reset()
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, num_envs, 2, 3)).astype(np.float32)
    env.step(actions[0])
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for a in actions:
            env.step(a)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = max(best, steps * num_envs / (time.perf_counter() - start))
    return best


def plot(result: dict, path: Path) -> None:
    """Average step reward and success rate per iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.array(result["env_steps"]) / 1e6
    ax.plot(steps, result["average_step_reward"], label="average step reward")
    ax.set_xlabel("env steps (M)")
    ax.set_ylabel("average step reward (per agent)")
    ax2 = ax.twinx()
    ax2.plot(steps, result["success_rate"], color="tab:green", alpha=0.6, label="success rate")
    ax2.set_ylabel("success rate")
    ax2.set_ylim(0, 1)
    ax.set_title(
        f"push_lite, OpenRL {result['algo'].upper()}: {result['num_envs']} envs, "
        f"{result['total_wall_s'] / 60:.1f} min wall, {result.get('device_name', '2 CPU cores')}"
    )
    fig.legend(loc="center right", bbox_to_anchor=(0.85, 0.35))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Train, measure throughput, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_envs", type=int, default=64)
    parser.add_argument("--episode_length", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=80, help="PPO iterations (rollout + update)")
    parser.add_argument("--minutes", type=float, default=6.0, help="stop earlier if this much wall time passed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--algo", choices=("ppo", "mappo"), default="ppo")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--device", default=None, help="cpu | cuda:0 (default: cuda when available, as train.py)")
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.WARNING)
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    throughput = {str(n): env_throughput(n, device=device) for n in (64, 512, 4096)}
    result = train(args.num_envs, args.episode_length, args.iterations, args.minutes, args.seed, args.algo, device)
    if device.startswith("cuda"):
        result["device_name"] = torch.cuda.get_device_name(torch.device(device))
    rewards = result["average_step_reward"]
    k = max(len(rewards) // 10, 1)
    result["first_iters_mean"] = float(np.mean(rewards[:k]))
    result["last_iters_mean"] = float(np.mean(rewards[-k:]))
    result["env_steps_per_s"] = throughput
    result["torch_threads"] = torch.get_num_threads()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "push_lite_learning.json").write_text(json.dumps(result, indent=1))
    plot(result, args.out / "push_lite_learning.png")
    print(
        f"average step reward: first {k} iters {result['first_iters_mean']:+.4f} -> "
        f"last {k} iters {result['last_iters_mean']:+.4f} over {len(rewards)} iterations, "
        f"{result['env_steps'][-1]:,} env steps, {result['total_wall_s'] / 60:.1f} min"
    )
    for n, sps in result["env_steps_per_s"].items():
        print(f"env-only throughput on {device}, {n:>4} envs: {sps:,.0f} env steps/s")


if __name__ == "__main__":
    main()
