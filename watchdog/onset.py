"""Where did the divergence *begin*? A change-point fit shared by live training and replay.

The signal ("badness", e.g. log value loss) is fitted, for every candidate onset ``k``, by three
models, each for a reason real curves give:

- **bend** ``a + c*t + b*max(0, t - t_k)``, ``b >= 0``: the run was on its own course (a value loss
  still drifting down, or slowly up) and a climb started at ``t_k``. A flat baseline instead puts
  the onset of a slow climb late, where the flat line meets it.
- **jump** the bend plus a step ``s*[t >= t_k]``, ``s >= 0``, used only when the step explains much
  more than the bend (``JUMP_EVIDENCE``): a sudden jump began exactly at ``t_k``, but with a step
  allowed a slow climb's first, small part reads as noise.
- **swing** the level before ``t_k`` and a line after it, each with its own noise, used only when
  the change in noise explains much more than the best change in level (``SWING_EVIDENCE``): a
  divergence that starts as growing oscillations moves the spread long before the mean.

The best candidate of the chosen model is the estimate; the candidates whose fit is not
significantly worse (profile likelihood, 95 %) give the range. A running median of width 3
removes isolated spikes first. The fit counts only if it explains a real rise (``min_rise``) with
enough evidence over a flat line; otherwise the caller's fallback stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_CHI2_95_1DOF = 3.84
JUMP_EVIDENCE = 20.0  # -2 log likelihood ratio a step must win by over a bend
SWING_EVIDENCE = 40.0  # ... and a change in noise over the best change in level
MIN_BEFORE = 5  # points before a candidate onset (a level and a slope need some)
MIN_AFTER_SWING = 3  # points after it for the swing (a line and its noise need some)


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


def _batched_fits(designs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of ``y`` on each design (K x n x p) at once: (coefficients K x p, fitted K x n)."""
    xtx = np.einsum("kni,knj->kij", designs, designs)
    xty = np.einsum("kni,n->ki", designs, y)
    try:
        coef = np.linalg.solve(xtx, xty[..., None])[..., 0]
    except np.linalg.LinAlgError:  # a degenerate window (repeated iterations): one at a time
        coef = np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(xtx, xty)])
    return coef, np.einsum("kni,ki->kn", designs, coef)


def _prefix(v: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(v)])


def change_fits(t: np.ndarray, y: np.ndarray, floor: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per candidate onset index k and model: its error (the bend's and jump's squared error, the
    swing's -2 log likelihood up to a constant; inf where the fit has no rise after k), and the
    rise it fits from just before k to the end. All candidates are fitted at once."""
    n = len(t)
    out = {name: np.full(n, np.inf) for name in ("bend", "jump", "swing")}
    rise = {name: np.zeros(n) for name in out}
    ks = np.arange(MIN_BEFORE, n - 1)
    if len(ks) == 0:
        return out, rise
    x = (t - t[0]) / max(t[-1] - t[0], 1.0)
    ramp = np.maximum(0.0, x[None, :] - x[ks][:, None])  # K x n
    step = (x[None, :] >= x[ks][:, None]).astype(float)
    base = np.broadcast_to(np.stack([np.ones(n), x], 1), (len(ks), n, 2))
    cb, fb = _batched_fits(np.concatenate([base, ramp[..., None]], 2), y)  # bend
    cj, fj = _batched_fits(np.concatenate([base, step[..., None], ramp[..., None]], 2), y)  # jump
    cs, fs = _batched_fits(np.concatenate([base, step[..., None]], 2), y)  # jump without its ramp
    bend_ok = cb[:, 2] >= 0
    # the jump drops its step when the step is negative (that is the bend), else its negative ramp
    jump_fit = np.where((cj[:, 2] >= 0)[:, None], np.where((cj[:, 3] >= 0)[:, None], fj, fs), fb)
    jump_ok = np.where(cj[:, 2] >= 0, (cj[:, 3] >= 0) | (cs[:, 2] >= 0), bend_ok)
    for name, fit, ok in (("bend", fb, bend_ok), ("jump", jump_fit, jump_ok)):
        gain = fit[:, -1] - fit[np.arange(len(ks)), ks - 1]
        ok = ok & (gain > 0)
        out[name][ks[ok]] = ((y[None, :] - fit) ** 2).sum(1)[ok]
        rise[name][ks[ok]] = gain[ok]
    # swing: the level (and noise) before k, a line (and its own noise) from k on; suffix sums
    kw = np.arange(MIN_BEFORE, n - MIN_AFTER_SWING + 1)
    if len(kw):
        s1, s2, st, stt, sty = (_prefix(v) for v in (y, y * y, x, x * x, x * y))
        m = kw.astype(float)
        mean = s1[kw] / m
        var_before = np.maximum(s2[kw] / m - mean ** 2, 0.0)
        na = n - m
        ay, ayy, at, att, aty = (v[-1] - v[kw] for v in (s1, s2, st, stt, sty))
        sxx = att - at * at / na
        slope = np.where(sxx > 0, (aty - at * ay / na) / np.where(sxx > 0, sxx, 1.0), 0.0)
        sse_after = np.maximum(ayy - ay * ay / na - slope * (aty - at * ay / na), 0.0)
        end = ay / na + slope * (x[-1] - at / na)
        ok = end > mean
        cost = m * np.log(np.maximum(var_before, floor)) + na * np.log(np.maximum(sse_after / na, floor))
        out["swing"][kw[ok]] = cost[ok]
        rise["swing"][kw[ok]] = (end - mean)[ok]
    return out, rise


def estimate_onset(iterations, badness, *, fallback: int, min_points: int = 10,
                   min_rise: float = math.log(2.0), min_evidence: float = 10.0,
                   jump_evidence: float = JUMP_EVIDENCE, swing_evidence: float = SWING_EVIDENCE) -> Onset:
    """Fit the change models to ``badness`` (higher = worse) over ``iterations``.

    The fit counts only if it explains a real rise: at least ``min_rise`` (default a 2x rise in
    log space) from the onset to the end, and a log-likelihood ratio over a flat line of
    ``min_evidence``. Otherwise the caller's ``fallback`` iteration (e.g. the detector's own onset
    hint) is returned.
    """
    t = np.asarray(iterations, dtype=float)
    y = np.asarray(badness, dtype=float)
    keep = np.isfinite(y)
    t, y = t[keep], y[keep]
    fail = Onset(int(fallback), int(fallback), int(fallback), "fallback")
    n = len(t)
    if n < min_points:
        return fail
    y = median3(y)
    # (values near the float range, a reward of 1e300: squares overflow; the costs go inf or NaN and the fit falls
    # back below, without numpy's warnings on a replay's console)
    with np.errstate(over="ignore", invalid="ignore"):
        variance = float(np.var(y))
        floor = max(variance * 1e-4, 1e-300)  # no fit is better than exact: a floor on its noise
        fits, rises = change_fits(t, y, floor)
        costs = {name: n * np.log(np.maximum(fits[name] / n, floor)) for name in ("bend", "jump")}  # -2 log L
        costs["swing"] = fits["swing"]
        best = {name: float(c.min()) for name, c in costs.items()}  # inf: the model fits no rise anywhere
    model = "jump" if best["bend"] - best["jump"] > jump_evidence else "bend"
    if not math.isfinite(best[model]):
        model = "jump" if math.isfinite(best["jump"]) else "bend"
    if best[model] - best["swing"] > swing_evidence:  # inf - inf is nan: never
        model = "swing"
    cost = costs[model]
    if not math.isfinite(best[model]):
        return fail
    k = int(np.argmin(cost))
    flat = n * math.log(max(variance, floor))
    rise = max(rises[model][k], float(np.median(y[-3:]) - np.median(y[:k])))  # swings: where it ended up
    if rise < min_rise or flat - cost[k] < min_evidence:
        return fail
    ok = np.where(cost - cost[k] <= _CHI2_95_1DOF)[0]
    return Onset(int(t[k]), int(t[ok.min()]), int(t[ok.max()]), "hinge")


def log_badness(values) -> np.ndarray:
    """log of a positive metric (value loss, grad norm); non-positive values become NaN."""
    arr = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(arr > 0, np.log(arr), np.nan)
