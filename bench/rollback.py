"""Rollback cost: from the alarm to the first PPO update after the rollback, in memory and from disk.

    python -m bench.rollback [--num_envs 64] [--episode_length 100] [--repeats 5] [--sizes 64x1 256x2]

Builds a real OpenRL PPO trainer on ``push_lite`` (``PPOAgent.train`` with a driver that stops before
its loop, as ``tests/openrl_ws/test_snapshot.py`` does), trains two iterations so Adam has moments and
``ValueNorm`` has statistics, then times, best and median of ``--repeats``:

- ``capture``: ``openrl_ws.snapshot.capture`` (weights, optimizer state, hot params, RNG -> CPU copy)
- ``save_to_store``: ``to_state`` + ``CheckpointStore.save`` (atomic write, fsync, SHA-256)
- ``restore_memory``: ``restore`` from the in-memory snapshot (what a rollback does normally)
- ``restore_disk``: ``CheckpointStore.load`` (SHA-256 check, ``weights_only`` load) + ``from_state``
  + ``restore`` (the fallback after a resume)
- ``restore_memory_plus_update`` / ``restore_disk_plus_update``: restore, then one PPO update
  (``learner_update`` on the rollout already in the buffer): the watchdog's cost up to the first update
- ``alarm_to_first_update_memory``: what the live hook does after an alarm, up to the end of the first
  update: restore + reseed + reset the rollout (``openrl_ws.hook.reset_rollout``) + a full rollout
  + the update; next to it ``plain_iteration`` (rollout + update, no rollback) for comparison

for hidden_size 64 / layer_N 1 (MAPush's checkpoints) and 256 x 2 (the Run8 flags). It also times
``Watchdog.observe`` per record (pure watchdog cost: detectors + policy, fake checkpoint saves) on
the real MAPush logs when present (else a synthetic healthy stream), and one alarm record (the
onset fit) on Run8's curve with a spliced 6 %/iteration climb. ``torch.set_num_threads(1)``.
Writes ``bench/results/rollback.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "rollback.json"
DATA = ROOT.parent / "shared" / "data" / "mapush_runs"
RUNS = {
    "10-15-23_cuboid": 100_000,
    "11-03-16_cuboid": 10_000,
    "11-06-17_cuboid": 100_000,
    "11-07-17_cuboid": 100_000,
    "baseline_mappo_upper": 100_000,
}


# --------------------------------------------------------------------------- trainer


def build_driver(num_envs: int, episode_length: int, hidden: int, layers: int, seed: int, workdir: Path):
    """A real PPOAgent.train() set-up on push_lite whose driver stops before its loop."""
    # OpenRL 0.2.0 has an import cycle through openrl.utils.callbacks: import the net/agent first.
    from openrl.modules.common import PPONet  # isort: skip
    from openrl.runners.common import PPOAgent  # isort: skip
    from openrl.configs.config import create_config_parser
    from openrl.drivers.onpolicy_driver import OnPolicyDriver

    from openrl_ws.envs import make_env

    captured = {}

    class CaptureDriver(OnPolicyDriver):
        def run(self):
            self.episodes, self.episode = 10**6, 0
            self.reset_and_buffer_init()
            captured["driver"] = self

    argv = ["--seed", str(seed), "--episode_length", str(episode_length), "--hidden_size", str(hidden),
            "--layer_N", str(layers), "--ppo_epoch", "5", "--num_mini_batch", "2", "--log_interval", "1000000"]
    workdir.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        env = make_env("push_lite", num_envs, seed=seed)
        net = PPONet(env, cfg=create_config_parser().parse_args(argv))
        with contextlib.redirect_stdout(io.StringIO()):
            PPOAgent(net).train(total_time_steps=num_envs * episode_length * 10**6, driver_class=CaptureDriver)
    finally:
        os.chdir(cwd)
    return captured["driver"], env


def iterate(driver) -> None:
    """One PPO iteration, as OnPolicyDriver._inner_loop runs it."""
    driver.actor_rollout()
    driver.learner_update()
    driver.buffer.after_update()


def n_params(trainer) -> int:
    return sum(p.numel() for m in trainer.algo_module.models.values() for p in m.parameters())


def timed(fn, repeats: int) -> dict:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return {"best_ms": 1e3 * min(out), "median_ms": 1e3 * statistics.median(out), "repeats": repeats}


def bench_size(hidden: int, layers: int, args, workdir: Path) -> dict:
    from openrl_ws import snapshot as S
    from watchdog.session import reseed
    from openrl_ws.hook import reset_rollout
    from watchdog.checkpoints import CheckpointStore

    driver, env = build_driver(args.num_envs, args.episode_length, hidden, layers, args.seed, workdir / f"h{hidden}")
    logging.getLogger("watchdog").setLevel(logging.WARNING)  # retention notes from the save loop
    trainer = driver.trainer
    try:
        iterate(driver)
        iterate(driver)  # Adam moments, ValueNorm statistics
        driver.actor_rollout()  # a filled buffer for the update-only timings
        store = CheckpointStore(workdir / f"store_h{hidden}", keep_last=3)
        snap = S.capture(trainer, extra={"iteration": 2, "env_steps": 2})
        info = store.save("stable_2_steps", S.to_state(snap), {"iteration": 2, "env_steps": 2})
        store.protect(info.tag)  # retention must not delete the one restore_disk reads
        size = sum(p.stat().st_size for p in info.path.iterdir())
        counter = iter(range(10**6))

        def save():
            k = next(counter) + 3
            store.save(f"stable_{k}_steps", S.to_state(S.capture(trainer)), {"iteration": k, "env_steps": k})

        def restore_disk():
            state, _ = store.load(info.path)
            S.restore(trainer, S.from_state(state))

        def update():
            trainer.prep_training()
            trainer.train(driver.buffer.data)

        r = args.repeats
        res = {
            "hidden_size": hidden, "layer_N": layers, "parameters": n_params(trainer), "checkpoint_bytes": size,
            "capture": timed(lambda: S.capture(trainer), r),
            "save_to_store": timed(save, r),
            "restore_memory": timed(lambda: S.restore(trainer, snap), r),
            "restore_disk": timed(restore_disk, r),
            "update_only": timed(update, r),
            "restore_memory_plus_update": timed(lambda: (S.restore(trainer, snap), update()), r),
            "restore_disk_plus_update": timed(lambda: (restore_disk(), update()), r),
        }
        steps = iter(range(10**6))

        def after_alarm():
            S.restore(trainer, snap)
            reseed(args.seed + 7919 + next(steps))
            reset_rollout(driver)
            iterate(driver)

        res["plain_iteration"] = timed(lambda: iterate(driver), max(2, r // 2))
        res["alarm_to_first_update_memory"] = timed(after_alarm, max(2, r // 2))
        return res
    finally:
        env.close()


# --------------------------------------------------------------------------- observe


def observe_cost(data: Path) -> dict:
    """Microseconds per ``Watchdog.observe`` call (detectors + policy), replaying real logs."""
    from watchdog.config import WatchdogConfig
    from watchdog.logtxt import parse_log_txt
    from watchdog.pipeline import Watchdog
    from watchdog.driver import VirtualDriver, carry_out
    from watchdog.policy import Rollback
    from watchdog.signals import MetricRecord

    if (data / "11-07-17_cuboid" / "log.txt").is_file():
        streams = {run: parse_log_txt(data / run / "log.txt", steps_per_iteration=spi).records
                   for run, spi in RUNS.items()}
        source = str(data)
    else:
        rng = np.random.default_rng(0)
        streams = {"synthetic": [MetricRecord(i, (i + 1) * 1000, {
            "train/value_loss": float(0.006 * math.exp(rng.normal(0, 0.25)) + 2 * math.exp(-i / 15)),
            "train/critic_grad_norm": float(0.1 * math.exp(rng.normal(0, 0.3))),
            "rollout/average_step_reward": float(0.02 + 0.0005 * rng.normal())}) for i in range(2000)]}
        source = "synthetic"

    def replay(records, per_call: list[float], alarm_calls: list[float]):
        wd = Watchdog(WatchdogConfig())
        for rec in records:
            t = time.perf_counter()
            actions = wd.observe(rec)
            dt = time.perf_counter() - t
            (alarm_calls if any(isinstance(a, Rollback) for a in actions) else per_call).append(dt)
            if any(isinstance(a, Rollback) for a in actions):
                return
            carry_out(wd, actions, VirtualDriver(), config_name="ppo_safe.yaml")

    calls: list[float] = []
    alarms: list[float] = []
    for _ in range(3):
        for records in streams.values():
            replay(records, calls, alarms)
    out = {"source": source, "records": len(calls),
           "median_us": 1e6 * statistics.median(calls), "mean_us": 1e6 * statistics.fmean(calls),
           "p99_us": 1e6 * float(np.percentile(calls, 99)), "false_alarm_calls": len(alarms)}
    if source != "synthetic":  # one alarm record: the onset fit runs on it
        alarm_times = []
        for _ in range(5):
            recs = parse_log_txt(data / "11-07-17_cuboid" / "log.txt", steps_per_iteration=100_000).records
            for rec in recs:
                if rec.iteration >= 870:
                    rec.metrics["train/value_loss"] *= 1.06 ** (rec.iteration - 870)
            replay(recs, [], alarm_times)
        if alarm_times:
            out["alarm_call_ms"] = 1e3 * statistics.median(alarm_times)
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num_envs", type=int, default=64)
    ap.add_argument("--episode_length", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", nargs="+", default=["64x1", "256x2"], help="hidden_size x layer_N")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.WARNING)
    torch.set_num_threads(1)
    started = time.perf_counter()

    sizes = {}
    with tempfile.TemporaryDirectory(prefix="bench_rollback_") as tmp:
        for spec in args.sizes:
            hidden, layers = (int(x) for x in spec.lower().split("x"))
            print(f"hidden_size {hidden} x layer_N {layers}: building a push_lite trainer "
                  f"({args.num_envs} envs x {args.episode_length} steps) ...", flush=True)
            sizes[spec] = bench_size(hidden, layers, args, Path(tmp))
    print("timing Watchdog.observe ...", flush=True)
    obs = observe_cost(args.data)

    print()
    cols = ["capture", "save_to_store", "restore_memory", "restore_disk", "update_only",
            "restore_memory_plus_update", "restore_disk_plus_update", "plain_iteration",
            "alarm_to_first_update_memory"]
    print("| step (ms, best / median of repeats) | " + " | ".join(
        f"{s} ({sizes[s]['parameters']:,} params, {sizes[s]['checkpoint_bytes'] / 1e3:.0f} kB on disk)" for s in sizes) + " |")
    print("| --- | " + " | ".join("---:" for _ in sizes) + " |")
    for c in cols:
        print(f"| {c} | " + " | ".join(f"{sizes[s][c]['best_ms']:.2f} / {sizes[s][c]['median_ms']:.2f}"
                                        for s in sizes) + " |")
    print(f"\nWatchdog.observe: median {obs['median_us']:.0f} us, mean {obs['mean_us']:.0f} us, "
          f"p99 {obs['p99_us']:.0f} us per record over {obs['records']:,} healthy records ({obs['source']})"
          + (f"; an alarm record (onset fit): {obs['alarm_call_ms']:.1f} ms" if "alarm_call_ms" in obs else ""))
    elapsed = time.perf_counter() - started
    print(f"elapsed {elapsed:.1f} s")
    out = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(), "device": "cpu", "num_envs": args.num_envs, "episode_length": args.episode_length,
        "sizes": sizes, "observe": obs, "elapsed_s": elapsed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
