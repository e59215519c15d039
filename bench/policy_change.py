"""How far each run's policy entropy falls, its KL per update and surrogate loss surge, against their own recent past.

    python -m bench.policy_change [--out bench/results/policy_change.json]

For every run under ``../shared/data`` and ``tests/data`` (read as replay reads it, all tags), after the
50-iteration warm-up, with the windows of ``entropy_collapse``, ``kl_surge`` and ``surrogate_surge`` (200
iterations ending 20 back, at least 10 points):

- entropy: the largest, over 3 points in a row, of min(drop below the window's 5 % quantile / its 5-95 %
  range, drop / 0.1 nat): the detector fires where both parts pass 2x and 0.2 nat, i.e. where this is >= 2;
  and the same upwards (a rise above the 95 % quantile: ``entropy_surge``);
- entropy pace (``entropy_surge``'s horizon rule, session 24): the largest, over 3 points in a row, of
  min(rise within 20 iterations / the most the entropy rose or fell within 20 iterations in the window,
  3 x rise / 0.2 nat): the rule fires where this is >= 3;
- KL: the largest, over 3 points in a row, of KL / the window's 95 % quantile (the detector: >= 20x);
- surrogate: the same on the surrogate (policy) loss's size (``surrogate_surge``: >= 20x).

A run counts as faulted when its folder says ``fault``, ``spike`` (an observation spike) or ``ramp`` (a learning-rate
ramp) or it diverged by
itself (``NATURAL``).

The windows here keep learning through a fall or a surge (the detectors freeze theirs), so these are the
rules' margins on healthy runs, not replays of the detectors.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from watchdog.replay import find_run_dirs, load_run
from watchdog.signals import APPROX_KL, ENTROPY, LOG_STD_MEAN, POLICY_ENTROPY, POLICY_LOSS

ROOT = Path(__file__).resolve().parents[1]
ROOTS = (ROOT.parent / "shared" / "data", ROOT / "tests" / "data")
# runs that diverged with no fault injected (their folders do not say "fault")
NATURAL = ("mujoco/skrl/hopper/", "mujoco/skrl/hopper_seed1/", "mujoco/skrl/walker2d_fixed_lr/", "mujoco/skrl/idp_fixed_lr/",
           "many_envs/skrl/push_lite_fixed_lr/",
           "many_envs/skrl/push_lite_fixed_lr3e-4/")
SPAN, LAG, WARMUP, MIN_POINTS, PERSIST, HORIZON = 200, 20, 50, 10, 3, 20


def _series(records, key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r.iteration, r.metrics[key]) for r in records if key in r.metrics and math.isfinite(r.metrics[key])]
    return np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts], dtype=float)


def largest(its: np.ndarray, values: np.ndarray, score) -> tuple[float, int | None]:
    """The largest 3-in-a-row minimum of ``score(value, window)`` and the iteration where it is."""
    scores = []
    for k in range(len(values)):
        window = values[(its <= its[k] - LAG) & (its >= its[k] - LAG - SPAN)]
        ok = its[k] - its[0] >= WARMUP and len(window) >= MIN_POINTS
        scores.append(score(values[k], window) if ok else 0.0)
    held = [min(scores[max(0, k - PERSIST + 1):k + 1]) for k in range(len(scores))]
    if not held:
        return 0.0, None
    k = int(np.argmax(held))
    return float(held[k]), int(its[k])


def entropy_score(value: float, window: np.ndarray) -> float:
    low, high = np.quantile(window, [0.05, 0.95])
    drop = low - value
    return min(drop / (high - low) if high > low else (math.inf if drop > 0 else 0.0), drop / 0.1)


def rise_score(value: float, window: np.ndarray) -> float:
    """The same as :func:`entropy_score`, upwards (``entropy_surge``)."""
    low, high = np.quantile(window, [0.05, 0.95])
    rise = value - high
    return min(rise / (high - low) if high > low else (math.inf if rise > 0 else 0.0), rise / 0.1)


def pace(its: np.ndarray, values: np.ndarray, *, ratio: float = 3.0, floor: float = 0.2) -> tuple[float, int | None]:
    """``entropy_surge``'s horizon rule: the largest 3-in-a-row minimum of min(rise / top, ratio x rise / floor), where
    rise is how far the entropy rose within HORIZON iterations (from its low there) and top the most it rose or fell
    within HORIZON over the window (SPAN iterations ending LAG back): the rule fires where this is >= ``ratio``."""
    n = len(values)
    rises, moves = np.zeros(n), np.zeros(n)
    for k in range(n):
        recent = values[(its >= its[k] - HORIZON) & (its <= its[k])]
        rises[k] = values[k] - recent.min()
        moves[k] = max(rises[k], recent.max() - values[k])
    scores = []
    for k in range(n):
        inside = (its <= its[k] - LAG) & (its >= its[k] - LAG - SPAN)
        ok = its[k] - its[0] >= WARMUP and int(inside.sum()) >= MIN_POINTS
        top = float(moves[inside].max()) if ok else 0.0
        rise = rises[k]
        scores.append(min(rise / top if top > 0 else (math.inf if rise > 0 else 0.0), ratio * rise / floor) if ok else 0.0)
    held = [min(scores[max(0, k - PERSIST + 1):k + 1]) for k in range(n)]
    if not held:
        return 0.0, None
    k = int(np.argmax(held))
    return float(held[k]), int(its[k])


def kl_score(value: float, window: np.ndarray) -> float:
    return value / max(float(np.quantile(window, 0.95)), 1e-12)


def size_score(value: float, window: np.ndarray) -> float:
    """:func:`kl_score` on a loss's size (``surrogate_surge``)."""
    return kl_score(abs(value), np.abs(window))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "policy_change.json")
    args = ap.parse_args(argv)
    rows = []
    for root in ROOTS:
        for run in find_run_dirs([root]) if root.is_dir() else []:
            records = load_run(run).records
            name = str(run.relative_to(root.parent))
            row = {"run": name, "faulted": any(w in name for w in ("fault", "spike", "ramp")) or any(n in name + "/" for n in NATURAL)}
            # the entropy rules' signal: the first of these the run logs (a Gaussian's mean log-std where no entropy is)
            key = next((k for r in records for k in (POLICY_ENTROPY, ENTROPY, LOG_STD_MEAN) if k in r.metrics), ENTROPY)
            for part, k, score in (("entropy", key, entropy_score), ("entropy_rise", key, rise_score),
                                   ("kl", APPROX_KL, kl_score), ("surrogate", POLICY_LOSS, size_score)):
                its, values = _series(records, k)
                row[part], row[f"{part}_at"] = largest(its, values, score) if len(values) >= 20 else (None, None)
            its, values = _series(records, key)
            row["entropy_pace"], row["entropy_pace_at"] = pace(its, values) if len(values) >= 20 else (None, None)
            rows.append(row)
            print(f"{row['run'][:70]:70s} entropy fall {row['entropy'] or 0:6.2f} rise {row['entropy_rise'] or 0:6.2f}"
                  f" pace {row['entropy_pace'] or 0:6.2f}"
                  f"  kl {row['kl'] or 0:10.1f}  surrogate {row['surrogate'] or 0:10.1f}", flush=True)
    for part in ("entropy", "entropy_rise", "entropy_pace", "kl", "surrogate"):
        healthy = [r[part] for r in rows if not r["faulted"] and r[part] is not None]
        faulted = sorted((r[part] for r in rows if r["faulted"] and r[part] is not None), reverse=True)
        print(f"{part}: largest on a run without a fault {max(healthy):.2f}; on the faulted runs "
              + ", ".join(f"{x:.3g}" for x in faulted))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
