"""Every real run in ``../shared/data`` as metric records, for the detection scorecard and cost bench.

- ``mapush_runs/*`` and ``more_runs/mapush/*``: OpenRL's ``log.txt`` (one record per log_interval = 5
  iterations; the one source every run has). Steps per iteration from ``runs.json`` where it exists,
  else from the smallest step in the run's event files, else 1.
- ``more_runs/sb3/*``: one TensorBoard file per run (Stable-Baselines3 PPO). ``train/value_loss`` is
  already our key; ``rollout/ep_rew_mean`` is taken as the reward signal (``rollout/average_step_reward``),
  minus ``train/entropy_loss`` as the policy's entropy and ``train/approx_kl`` as its KL;
  the iteration is ``step / steps_per_rollout - 1``. SB3's value targets are not normalised, so these
  runs are judged as replay judges SB3 (:func:`config_for`): no 0.2 rule, the trend warns only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from watchdog.config import WatchdogConfig
from watchdog.frameworks import config_for_run
from watchdog.logtxt import parse_log_txt
from watchdog.signals import APPROX_KL, POLICY_ENTROPY, STEP_REWARD, VALUE_LOSS, MetricRecord
from watchdog.tfevents import read_run_scalars

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SB3_TAGS = {"train/value_loss": VALUE_LOSS, "rollout/ep_rew_mean": STEP_REWARD,
            "train/entropy_loss": POLICY_ENTROPY, "train/approx_kl": APPROX_KL}
SB3_NEGATED = {"train/entropy_loss"}  # SB3 logs -entropy


@dataclass
class RealRun:
    """One real run: where it lies, which framework wrote it, its records at the logged resolution."""

    name: str
    group: str  # "mapush_runs" | "more_runs/mapush" | "more_runs/sb3"
    path: Path
    records: list[MetricRecord]

    @property
    def framework(self) -> str:
        return "sb3" if self.group.endswith("sb3") else "openrl"


def config_for(run: RealRun, base: WatchdogConfig | None = None) -> WatchdogConfig:
    """The config replay and the integrations give a run of that framework (``frameworks.config_for_run``):
    for SB3 (value targets not normalised) no absolute 0.2 rule and a trend that warns only."""
    cfg = base or WatchdogConfig()
    if run.framework != "openrl":
        cfg = config_for_run(cfg, {"framework": "sb3", "value_targets_normalized": False})
    return cfg.model_copy(deep=True)


def _openrl_spi(run_dir: Path, facts: dict) -> int:
    if run_dir.name in facts:
        return int(facts[run_dir.name]["steps_per_iteration"])
    try:
        res = read_run_scalars(run_dir, tags=["value_loss", "train/value_loss"])
    except Exception:  # no event files (log.txt only): env steps are just a label here
        return 1
    steps = [int(s) for ser in res.scalars.values() for s in ser.steps.tolist() if s > 0]
    return min(steps) if steps else 1


def load_openrl(run_dir: Path, group: str, facts: dict) -> RealRun:
    spi = _openrl_spi(run_dir, facts)
    records = parse_log_txt(run_dir / "log.txt", steps_per_iteration=spi).records
    return RealRun(run_dir.name, group, run_dir, records)


def load_sb3(run_dir: Path, group: str) -> RealRun:
    res = read_run_scalars(run_dir, tags=list(SB3_TAGS))
    scalars = {SB3_TAGS[k]: v for k, v in res.scalars.items() if k in SB3_TAGS}
    steps = sorted({int(s) for ser in scalars.values() for s in ser.steps.tolist()})
    spi = min(b - a for a, b in zip(steps, steps[1:]))  # one rollout; SB3 logs train/* one rollout late
    points: dict[int, dict[str, float]] = {}
    negated = {SB3_TAGS[t] for t in SB3_NEGATED}
    for key, ser in scalars.items():
        sign = -1.0 if key in negated else 1.0
        for step, value in zip(ser.steps.tolist(), ser.values.tolist()):
            points.setdefault(int(step), {})[key] = sign * float(value)
    records = [MetricRecord(step // spi - 1, step, m) for step, m in sorted(points.items())]
    return RealRun(run_dir.name, group, run_dir, records)


def load_real_runs(data: Path = DATA) -> list[RealRun]:
    """All real runs under ``data``, in a fixed order."""
    runs: list[RealRun] = []
    for group in ("mapush_runs", "more_runs/mapush"):
        base = data / group
        facts_file = base / "runs.json"
        facts = json.loads(facts_file.read_text()) if facts_file.is_file() else {}
        for d in sorted(p for p in base.iterdir() if (p / "log.txt").is_file()):
            runs.append(load_openrl(d, group, facts))
    sb3 = data / "more_runs" / "sb3"
    if sb3.is_dir():
        for d in sorted(p for p in sb3.iterdir() if p.is_dir()):
            runs.append(load_sb3(d, "more_runs/sb3"))
    return runs
