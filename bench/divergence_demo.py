"""Unwatched vs watched on the same divergence: final reward, value loss / policy log-std, a plot.

Scenario ``inject`` (default): both runs train PPO on push_lite with the same seed and the same fault
(rewards x50 for iterations 100-104, ``reward_scale@100-104:50``, after the watchdog has armed). The
"unwatched" run has the watchdog in ``action: alert`` mode, so it is trained exactly as without the
watchdog but its per-iteration metrics are logged; the watched run rolls back and switches to the
safe config. Writes bench/results/divergence_demo.{json,png}.

Scenario ``std_runaway``: no fault. ``cfgs/ppo.yaml`` with an entropy bonus of 0.1 (10x OpenRL's
default) and 4 minibatches, so the policy's log-std climbs ~0.075 per iteration to the float32
overflow: the real runs' runaway (see README), in minutes instead of days. The unwatched run is trained without ``--watchdog`` at all and dies on NaN (its metrics
come from its ``log.txt``); the watched run is warned, rolled back before the NaN and finishes.
Writes bench/results/std_runaway_demo.{json,png}.

    python -m bench.divergence_demo [--inject reward_scale@100-104:50] [--iterations 150]
    python -m bench.divergence_demo --scenario std_runaway
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
from watchdog.eventlog import read_events
from watchdog.logtxt import parse_log_txt
from watchdog.signals import LOG_STD_MAX, STEP_REWARD, VALUE_LOSS, MetricRecord

RESULTS = Path(__file__).resolve().parent / "results"
PPO_YAML = Path(__file__).resolve().parents[1] / "cfgs" / "ppo.yaml"
SCENARIOS = {
    "inject": {"name": "divergence_demo", "iterations": 150, "envs": 64, "episode_length": 100, "extra": []},
    "std_runaway": {"name": "std_runaway_demo", "iterations": 800, "envs": 8, "episode_length": 32,
                    "extra": ["--config", str(PPO_YAML), "--entropy_coef", "0.1", "--num_mini_batch", "4"]},
}


def train(run_dir: Path, inject: list[str], iterations: int, mode: str, envs: int, episode_length: int,
          extra: list[str] = ()) -> dict:
    """``mode``: ``watched`` (rollback), ``alert`` (watched, never acts) or ``none`` (no --watchdog)."""
    argv = ["--num_envs", str(envs), "--episode_length", str(episode_length), "--seed", "0", "--run_dir",
            str(run_dir), "--train_timesteps", str(envs * episode_length * iterations), "--use_tensorboard", *extra]
    if mode != "none":
        cfg = run_dir.parent / f"{run_dir.name}.yaml"
        cfg.write_text("action: rollback\n" if mode == "watched" else "action: alert\n")
        argv += ["--watchdog", "--watchdog_config", str(cfg)]
    for spec in inject:
        argv += ["--inject", spec]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = train_main(argv)
    seconds = time.perf_counter() - start
    if mode == "none":  # what OpenRL itself logged (every log_interval iterations) up to the crash
        records = parse_log_txt(run_dir / "log.txt", steps_per_iteration=envs * episode_length).records
        events = []
    else:
        events = read_events(run_dir / "watchdog_events.jsonl").events
        records = [MetricRecord.from_mapping(e["iteration"], e["env_steps"], e["metrics"])
                   for e in events if e["event"] == "metrics"]

    def series(key: str) -> list[float]:
        return [float(r.metrics.get(key, math.nan)) for r in records]

    return {
        "exit_code": code, "seconds": seconds, "iterations": [r.iteration for r in records],
        "reward": series(STEP_REWARD), "value_loss": series(VALUE_LOSS), "log_std_max": series(LOG_STD_MAX),
        "events": [{k: e.get(k) for k in ("event", "iteration", "detector", "to_iteration", "onset_iteration")}
                   for e in events if e["event"] in ("warning", "alarm", "rollback", "config_switch", "stop")],
    }


def final(values: list[float], n: int = 10) -> float:
    tail = [v for v in values[-n:] if math.isfinite(v)]
    return sum(tail) / len(tail) if tail else math.nan


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    std = result.get("scenario") == "std_runaway"
    fig, (ax_r, ax_v) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for name, style in (("unwatched", "tab:red"), ("watched", "tab:blue")):
        run = result[name]
        ax_r.plot(run["iterations"], run["reward"], color=style, label=name)
        if std:
            ax_v.plot(run["iterations"], run["log_std_max"], color=style, label=name)
        else:
            ax_v.semilogy(run["iterations"], run["value_loss"], color=style, label=name)
    for ev in result["watched"]["events"]:
        if ev["event"] == "rollback":
            ax_r.axvline(ev["iteration"], color="tab:blue", ls="--", lw=0.8)
            ax_v.axvline(ev["iteration"], color="tab:blue", ls="--", lw=0.8)
    if std:
        ax_v.axhline(43, color="grey", ls=":", lw=0.8)
        ax_v.set_ylabel("policy log-std (max over dims)")
        crash = result["unwatched"]["iterations"][-1] if result["unwatched"]["iterations"] else 0
        ax_r.set_title(f"push_lite, ppo.yaml {' '.join(result['extra_args'][2:])}\n"
                       f"unwatched dies on NaN after iteration {crash}; watched rolls back before it", fontsize=10)
    else:
        ax_v.axhline(0.2, color="grey", ls=":", lw=0.8)
        ax_v.set_ylabel("value loss")
        # the injected reward spike dwarfs everything: scale the reward axis to the healthy range
        healthy = sorted(v for name in ("unwatched", "watched") for v in result[name]["reward"] if math.isfinite(v))
        top = healthy[int(0.9 * (len(healthy) - 1))]
        ax_r.set_ylim(min(healthy[0], 0.0) - 0.05, 1.5 * top + 0.05)
        ax_r.text(0.01, 0.95, "(the x50 reward spike is off the scale)", transform=ax_r.transAxes, va="top", fontsize=8)
        ax_r.set_title(f"push_lite, --inject {' '.join(result['inject'])}: unwatched vs watched")
    ax_r.set_ylabel("average step reward")
    ax_v.set_xlabel("PPO iteration (dashed: watchdog rollback)")
    ax_r.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="inject")
    parser.add_argument("--inject", action="append", default=None)
    parser.add_argument("--iterations", type=int, default=None, help="default: 150 (inject), 800 (std_runaway)")
    parser.add_argument("--envs", type=int, default=None, help="default: 64 (inject), 8 (std_runaway)")
    parser.add_argument("--episode_length", type=int, default=None, help="default: 100 (inject), 32 (std_runaway)")
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG from the saved JSON")
    args = parser.parse_args()
    scenario = SCENARIOS[args.scenario]
    out = RESULTS / scenario["name"]
    if args.replot:
        plot(json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".png"))
        return
    iterations = args.iterations or scenario["iterations"]
    envs, length = args.envs or scenario["envs"], args.episode_length or scenario["episode_length"]
    inject = args.inject or (["reward_scale@100-104:50"] if args.scenario == "inject" else [])
    unwatched_mode = "alert" if args.scenario == "inject" else "none"
    result: dict = {"scenario": args.scenario, "inject": inject, "extra_args": scenario["extra"],
                    "date": time.strftime("%Y-%m-%d"), "iterations": iterations, "envs": envs, "episode_length": length}
    with tempfile.TemporaryDirectory() as tmp:
        for name, mode in (("unwatched", unwatched_mode), ("watched", "watched")):
            result[name] = train(Path(tmp) / name, inject, iterations, mode, envs, length, scenario["extra"])
            run = result[name]
            print(f"{name:9s}: exit {run['exit_code']}, {len(run['iterations'])} logged iterations up to "
                  f"{run['iterations'][-1] if run['iterations'] else '-'}, final reward (last 10 logged) "
                  f"{final(run['reward']):.4g}, final value loss {final(run['value_loss']):.4g}, final log-std "
                  f"{final(run['log_std_max']):.3g}, {run['seconds']:.0f} s, "
                  f"events {[(e['event'], e['iteration'], e['detector']) for e in run['events']]}")
    RESULTS.mkdir(exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
