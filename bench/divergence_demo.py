"""Unwatched vs watched on the same induced divergence: final reward, value loss, a plot.

Both runs train PPO on push_lite with the same seed and the same fault (default: rewards x50 for
iterations 100-104, ``reward_scale@100-104:50``, after the watchdog has armed). The "unwatched" run
has the watchdog in ``action: alert`` mode, so it is trained exactly as without the watchdog but
its per-iteration metrics are logged; the watched run rolls back and switches to the safe config.
Writes bench/results/divergence_demo.{json,png}.

    python -m bench.divergence_demo [--inject reward_scale@100-104:50] [--iterations 150]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tempfile
import time
from pathlib import Path

from openrl_ws.train import main as train_main
from watchdog.events import read_events

RESULTS = Path(__file__).resolve().parent / "results"


def train(run_dir: Path, inject: list[str], iterations: int, watched: bool, envs: int, episode_length: int) -> dict:
    cfg = run_dir.parent / f"{run_dir.name}.yaml"
    cfg.write_text("action: rollback\n" if watched else "action: alert\n")
    argv = ["--num_envs", str(envs), "--episode_length", str(episode_length), "--seed", "0", "--watchdog",
            "--watchdog_config", str(cfg), "--run_dir", str(run_dir),
            "--train_timesteps", str(envs * episode_length * iterations)]
    for spec in inject:
        argv += ["--inject", spec]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = train_main(argv)
    events = read_events(run_dir / "watchdog_events.jsonl").events
    metrics = [e for e in events if e["event"] == "metrics"]

    def series(key: str) -> list[float]:
        return [float(m["metrics"].get(key, math.nan)) for m in metrics]

    return {
        "exit_code": code, "seconds": time.perf_counter() - start,
        "iterations": [m["iteration"] for m in metrics],
        "reward": series("rollout/average_step_reward"), "value_loss": series("train/value_loss"),
        "events": [{k: e.get(k) for k in ("event", "iteration", "detector", "to_iteration", "onset_iteration")}
                   for e in events if e["event"] in ("alarm", "rollback", "config_switch", "stop")],
    }


def final(values: list[float], n: int = 10) -> float:
    tail = [v for v in values[-n:] if math.isfinite(v)]
    return sum(tail) / len(tail) if tail else math.nan


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_r, ax_v) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for name, style in (("unwatched", "tab:red"), ("watched", "tab:blue")):
        run = result[name]
        ax_r.plot(run["iterations"], run["reward"], color=style, label=name)
        ax_v.semilogy(run["iterations"], run["value_loss"], color=style, label=name)
    for ev in result["watched"]["events"]:
        if ev["event"] == "rollback":
            ax_r.axvline(ev["iteration"], color="tab:blue", ls="--", lw=0.8)
            ax_v.axvline(ev["iteration"], color="tab:blue", ls="--", lw=0.8)
    ax_v.axhline(0.2, color="grey", ls=":", lw=0.8)
    # the injected reward spike dwarfs everything: scale the reward axis to the healthy range
    healthy = [v for name in ("unwatched", "watched") for v in result[name]["reward"] if math.isfinite(v)]
    healthy.sort()
    top = healthy[int(0.9 * (len(healthy) - 1))]
    ax_r.set_ylim(min(healthy[0], 0.0) - 0.05, 1.5 * top + 0.05)
    ax_r.text(0.01, 0.95, "(the x50 reward spike is off the scale)", transform=ax_r.transAxes, va="top", fontsize=8)
    ax_r.set_ylabel("average step reward")
    ax_v.set_ylabel("value loss")
    ax_v.set_xlabel("PPO iteration (dashed: watchdog rollback)")
    ax_r.set_title(f"push_lite, --inject {' '.join(result['inject'])}: unwatched vs watched")
    ax_r.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inject", action="append", default=None)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--episode_length", type=int, default=100)
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG from the saved JSON")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads((RESULTS / "divergence_demo.json").read_text()), RESULTS / "divergence_demo.png")
        return
    inject = args.inject or ["reward_scale@100-104:50"]
    result: dict = {"inject": inject, "date": time.strftime("%Y-%m-%d"), "iterations": args.iterations}
    with tempfile.TemporaryDirectory() as tmp:
        for name, watched in (("unwatched", False), ("watched", True)):
            result[name] = train(Path(tmp) / name, inject, args.iterations, watched, args.envs, args.episode_length)
            run = result[name]
            print(f"{name:9s}: exit {run['exit_code']}, final reward (last 10) {final(run['reward']):.4g}, "
                  f"final value loss {final(run['value_loss']):.4g}, {run['seconds']:.0f} s, "
                  f"events {[(e['event'], e['iteration']) for e in run['events']]}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "divergence_demo.json").write_text(json.dumps(result, indent=1, default=str))
    plot(result, RESULTS / "divergence_demo.png")


if __name__ == "__main__":
    main()
