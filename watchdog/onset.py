"""Where did the divergence *begin*? A change-point fit shared by live training and replay.

Model: the signal ("badness", e.g. log value loss) is flat before the onset and rises linearly
after it (a hinge). Each candidate onset is fitted by least squares; the best one is the
estimate, and the candidates whose fit is not significantly worse (profile likelihood, 95 %)
give the uncertainty range. Before fitting, a running median of width 3 removes isolated
spikes, which real value-loss curves have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_CHI2_95_1DOF = 3.84


@dataclass
class Onset:
    """Estimated start of a divergence: best iteration and a plausible [low, high] range."""

    iteration: int
    low: int
    high: int
    method: str

    def to_dict(self) -> dict:
        return {"iteration": self.iteration, "low": self.low, "high": self.high, "method": self.method}


def median3(y: np.ndarray) -> np.ndarray:
    """Running median of width 3 (ends kept): drops single-point spikes, keeps steps and ramps."""
    if len(y) < 3:
        return y.copy()
    out = y.copy()
    out[1:-1] = np.median(np.stack([y[:-2], y[1:-1], y[2:]]), axis=0)
    return out


def _fit_change(t: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Least-squares ``a + s*[t>=t_k] + b*max(0, t-t_k)`` with s, b >= 0; returns the fitted curve."""
    n = len(t)
    step = (t >= t[k]).astype(float)
    ramp = np.maximum(0.0, t - t[k])
    for cols in ((step, ramp), (step,), (ramp,)):
        design = np.stack([np.ones(n), *cols], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        if (coef[1:] >= 0).all():
            return design @ coef
    return np.full(n, y.mean())


def hinge_fit(t: np.ndarray, y: np.ndarray, min_before: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """SSE of the best change fit for every candidate onset index k, and the rise it explains.

    The change model ``a + s*[t>=t_k] + b*max(0, t-t_k)`` is fitted twice: to ``y`` (log space:
    steps and exponential climbs) and to ``exp(y)`` (raw space: linear ramps, which are concave
    in log space). Both are scored by their squared error in log space; the better one counts.
    """
    n = len(t)
    sse = np.full(n, np.inf)
    rise = np.zeros(n)
    raw = np.exp(y - y.max())
    floor = raw[raw > 0].min() if (raw > 0).any() else 1e-300
    for k in range(min_before, n - 1):
        fits = (_fit_change(t, y, k), np.log(np.maximum(_fit_change(t, raw, k), floor)) + y.max())
        errors = [float(((y - f) ** 2).sum()) for f in fits]
        best = int(np.argmin(errors))
        sse[k] = errors[best]
        rise[k] = fits[best][-1] - fits[best][0]
    return sse, rise


def estimate_onset(iterations, badness, *, fallback: int, min_points: int = 6,
                   min_rise: float = math.log(2.0), min_evidence: float = 10.0) -> Onset:
    """Fit the change model to ``badness`` (higher = worse) over ``iterations``.

    The fit counts only if it explains a real rise: at least ``min_rise`` (default a 2x rise in
    log space) and a log-likelihood ratio over a flat line of ``min_evidence``. Otherwise the
    caller's ``fallback`` iteration (e.g. the detector's own onset hint) is returned.
    """
    t = np.asarray(iterations, dtype=float)
    y = np.asarray(badness, dtype=float)
    keep = np.isfinite(y)
    t, y = t[keep], y[keep]
    if len(t) < min_points:
        return Onset(int(fallback), int(fallback), int(fallback), "fallback")
    y = median3(y)
    sse, rise = hinge_fit(t, y)
    candidates = np.where(rise > 0, sse, np.inf)
    k = int(np.argmin(candidates))
    if not math.isfinite(candidates[k]):
        return Onset(int(fallback), int(fallback), int(fallback), "fallback")
    n = len(t)
    floor = max(candidates[k], 1e-12 * n)
    flat = float(((y - y.mean()) ** 2).sum())
    if rise[k] < min_rise or n * math.log(max(flat, 1e-300) / floor) < min_evidence:
        return Onset(int(fallback), int(fallback), int(fallback), "fallback")
    ok = np.where(n * np.log(np.maximum(candidates, 1e-300) / floor) <= _CHI2_95_1DOF)[0]
    low, high = (int(t[ok.min()]), int(t[ok.max()])) if len(ok) else (int(t[k]), int(t[k]))
    return Onset(int(t[k]), low, high, "hinge")


def log_badness(values) -> np.ndarray:
    """log of a positive metric (value loss, grad norm); non-positive values become NaN."""
    arr = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(arr > 0, np.log(arr), np.nan)
