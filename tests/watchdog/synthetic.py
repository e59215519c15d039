"""Synthetic PPO metric curves for detector tests: a healthy baseline plus a chosen divergence."""

from __future__ import annotations

import math

import numpy as np

from watchdog.signals import MetricRecord

HEALTHY_VALUE_LOSS = 0.006


def healthy(n: int, seed: int = 0, *, start_high: bool = True) -> list[dict]:
    """Value loss that starts high (as real runs do), settles to ~0.006; noisy reward and grad norm."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        settle = 2.0 * math.exp(-i / 15) if start_high else 0.0
        vl = (HEALTHY_VALUE_LOSS + settle) * math.exp(rng.normal(0, 0.25))
        rows.append({
            "value_loss": vl,
            "critic_grad_norm": 0.1 * math.exp(rng.normal(0, 0.3)) + 0.5 * settle,
            "average_step_reward": 0.02 + 0.0005 * rng.normal() - 0.03 * math.exp(-i / 40),
            "policy_loss": 0.001 * rng.normal(),
        })
    return rows


def diverge(rows: list[dict], onset: int, shape: str, *, rate: float = 0.15, nan_at: int | None = None) -> list[dict]:
    """Splice a divergence into ``rows`` from iteration ``onset`` on."""
    out = [dict(r) for r in rows]
    for i in range(onset, len(out)):
        d = i - onset
        r = out[i]
        if shape == "exp":
            factor = math.exp(rate * d)
        elif shape == "ramp":
            factor = 1.0 + rate * 10 * d
        elif shape == "step":
            factor = 60.0
        elif shape == "spike":
            factor = 80.0 if d == 0 else 1.0
        elif shape == "reward":
            factor = 1.0
            r["average_step_reward"] = -0.02 + 0.0005 * math.sin(i)
        else:
            raise ValueError(shape)
        r["value_loss"] *= factor
        r["critic_grad_norm"] *= math.sqrt(factor)
        if nan_at is not None and i >= nan_at:
            r["value_loss"] = float("nan")
            r["policy_loss"] = float("nan")
    return out


def records(rows: list[dict], steps_per_iteration: int = 1000) -> list[MetricRecord]:
    return [MetricRecord.from_mapping(i, (i + 1) * steps_per_iteration, r) for i, r in enumerate(rows)]


def first_crossing(rows: list[dict], onset: int, threshold: float = 0.2) -> int | None:
    for i in range(onset, len(rows)):
        if not rows[i]["value_loss"] <= threshold:
            return i
    return None
