"""Detectors: each turns a stream of :class:`MetricRecord` into a verdict, nothing else.

The base class does the bookkeeping (warm-up, non-finite values, saveable state) and calls the
subclass's small ``_check``. Detectors never act: :mod:`watchdog.policy` decides what a verdict
means for the run.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from watchdog.config import (
    CriticGradNormConfig,
    NonFiniteConfig,
    PolicyStdConfig,
    RewardCollapseConfig,
    TrendConfig,
    ValueLossThresholdConfig,
    WarmupConfig,
    WatchdogConfig,
)
from watchdog.signals import CRITIC_GRAD_NORM, ENTROPY, LOG_STD_MAX, TRACKED_KEYS, VALUE_LOSS, MetricRecord

GAUSSIAN_ENTROPY_PER_DIM = 0.5 * math.log(2 * math.pi * math.e)
"""Entropy of a unit-variance normal; a diagonal Gaussian's is ``d * this + sum(log std)``."""

Level = Literal["warning", "alarm"]


@dataclass
class Verdict:
    """A detector's finding for one record: what, how bad, against which threshold."""

    detector: str
    level: Level
    signal: str
    value: float
    threshold: float
    reason: str
    iteration: int
    env_steps: int
    onset_hint: int | None = None  # iteration where this detector thinks the trouble began

    def to_dict(self) -> dict:
        """JSON-ready fields (NaN/Inf as strings)."""
        out = asdict(self)
        for key in ("value", "threshold"):
            if not math.isfinite(out[key]):
                out[key] = str(out[key])
        return out


def _median(values) -> float:
    return float(np.median(np.fromiter(values, dtype=float)))


def _robust_sigma(values, center: float) -> float:
    """1.4826 x median absolute deviation: a standard deviation that ignores spikes."""
    arr = np.fromiter(values, dtype=float)
    return float(1.4826 * np.median(np.abs(arr - center)))


class Detector:
    """Bookkeeping shared by all detectors; subclasses implement ``_check``.

    ``update`` skips records that lack the detector's signal or carry a non-finite value (the
    non-finite detector owns those), and holds verdicts back until warm-up has passed, while still
    letting the subclass learn its baseline.
    """

    name = "detector"
    signals: tuple[str, ...] = ()
    _state_fields: tuple[str, ...] = ()

    def __init__(self, warmup: WarmupConfig):
        self.warmup = warmup
        self.points = 0
        self.first_iteration: int | None = None  # warm-up counts from here: a resumed run warms up again

    def update(self, record: MetricRecord) -> Verdict | None:
        """Feed one record; return a verdict or None."""
        values = self._values(record)
        if values is None or any(v is None or not math.isfinite(v) for v in values.values()):
            return None
        self.points += 1
        if self.first_iteration is None:
            self.first_iteration = record.iteration
        judging = record.iteration - self.first_iteration >= self.warmup.min_iters
        return self._check(record, values, judging)

    def _values(self, record: MetricRecord) -> dict[str, float | None] | None:
        """The values this detector judges in ``record`` (None: nothing to judge)."""
        return {s: record.metrics.get(s) for s in self.signals}

    def _check(self, record: MetricRecord, values: dict[str, float], judging: bool) -> Verdict | None:
        raise NotImplementedError

    def _verdict(self, record: MetricRecord, level: Level, signal: str, value: float, threshold: float,
                 reason: str, onset_hint: int | None = None) -> Verdict:
        return Verdict(self.name, level, signal, float(value), float(threshold), reason,
                       record.iteration, record.env_steps, onset_hint)

    def state_dict(self) -> dict:
        """Everything needed to resume this detector exactly (plain Python values)."""
        state = {"points": self.points, "first_iteration": self.first_iteration}
        for name in self._state_fields:
            value = getattr(self, name)
            state[name] = list(value) if isinstance(value, deque) else copy.deepcopy(value)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.points = int(state["points"])
        self.first_iteration = state.get("first_iteration")
        for name in self._state_fields:
            current = getattr(self, name)
            value = state[name]
            setattr(self, name, deque(value, maxlen=current.maxlen) if isinstance(current, deque) else copy.deepcopy(value))


class ValueLossThreshold(Detector):
    """The user's rule: value loss *rises above* ``value_loss_max`` once it has settled below it.

    Real runs start far above the threshold, so the rule arms only once value loss has *settled*:
    over the last ``arm_window_iters`` iterations its median sits below ``arm_fraction *
    value_loss_max`` and no point is above the threshold. Then ``patience_points`` consecutive
    points above the threshold raise the alarm; the counter resets when the loss comes back down.
    """

    name = "value_loss_threshold"
    signals = (VALUE_LOSS,)
    _state_fields = ("recent", "armed", "armed_at", "above", "first_above")

    def __init__(self, cfg: ValueLossThresholdConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.recent: deque[tuple[int, float]] = deque()
        self.armed = False
        self.armed_at: int | None = None
        self.above = 0
        self.first_above: int | None = None

    def _check(self, record, values, judging):
        value = values[VALUE_LOSS]
        limit = self.cfg.value_loss_max
        if not self.armed:
            self.recent.append((record.iteration, value))
            while self.recent and self.recent[0][0] <= record.iteration - self.cfg.arm_window_iters:
                self.recent.popleft()
            window = [v for _, v in self.recent]
            settled = (record.iteration + 1 >= self.cfg.arm_window_iters and len(window) >= 3
                       and max(window) <= limit and _median(window) < self.cfg.arm_fraction * limit)
            if judging and settled:
                self.armed, self.armed_at = True, record.iteration
                self.recent.clear()
            return None
        if value <= limit:
            self.above, self.first_above = 0, None
            return None
        self.above += 1
        if self.first_above is None:
            self.first_above = record.iteration
        if self.above < self.cfg.patience_points:
            return None
        return self._verdict(
            record, "alarm", VALUE_LOSS, value, limit,
            f"value loss {value:.4g} above {limit:g} for {self.above} points (armed since iteration {self.armed_at})",
            onset_hint=self.first_above,
        )


class TrendCusum(Detector):
    """Early warning: one-sided CUSUM of capped, standardised log-values against a robust baseline.

    The baseline is the median and MAD of log-values over ``baseline_points``, taken ``lag_points``
    behind the newest point, so a climb is judged against where the run was *before* it started
    rather than absorbed into its own baseline; a level shift that persists without reaching the
    threshold is accepted after about ``lag_points``. When the median of the last 3 points is
    ``alarm_ratio`` times the baseline or more, the warning becomes an alarm. Capping each point's z-score at ``z_cap``
    means one spike cannot raise a warning: it takes a sustained rise.
    """

    name = "trend"
    _state_fields = ("window", "recent", "cusum", "last_zero_iteration")

    def __init__(self, cfg: TrendConfig, warmup: WarmupConfig, signal: str):
        super().__init__(warmup)
        self.cfg = cfg
        self.signal = signal
        self.signals = (signal,)
        self.window: deque[float] = deque(maxlen=cfg.baseline_points + cfg.lag_points)
        self.recent: deque[float] = deque(maxlen=3)
        self.cusum = 0.0
        self.last_zero_iteration: int | None = None

    def _check(self, record, values, judging):
        x = math.log(max(values[self.signal], 1e-12))
        baseline = list(self.window)[: max(0, len(self.window) - self.cfg.lag_points)]
        self.window.append(x)
        if not judging or len(baseline) < self.warmup.baseline_points:
            self.last_zero_iteration = record.iteration
            return None
        center = _median(baseline)
        sigma = max(_robust_sigma(baseline, center), self.cfg.min_sigma)
        z = max(-self.cfg.z_cap, min(self.cfg.z_cap, (x - center) / sigma))
        # Capped, so that once a rise is over the detector quiets down in bounded time.
        self.cusum = min(max(0.0, self.cusum + z - self.cfg.drift_k), 1.5 * self.cfg.warn_h)
        self.recent.append(x)
        if self.cusum == 0.0:
            self.last_zero_iteration = record.iteration
            return None
        if self.cusum < self.cfg.warn_h:
            return None
        ratio = math.exp(_median(self.recent) - center)
        alarm = self.cfg.alarm_ratio is not None and ratio >= self.cfg.alarm_ratio
        return self._verdict(
            record, "alarm" if alarm else "warning", self.signal, values[self.signal], math.exp(center),
            f"{self.signal} trending up: {ratio:.1f}x its baseline {math.exp(center):.3g} "
            f"(CUSUM {self.cusum:.1f} >= {self.cfg.warn_h:g})",
            onset_hint=self.last_zero_iteration,
        )


class CriticGradNorm(Detector):
    """Critic gradient norm (before clipping): above an absolute ceiling, or a jump over its median."""

    name = "critic_grad_norm"
    signals = (CRITIC_GRAD_NORM,)
    _state_fields = ("baseline", "over", "first_over")

    def __init__(self, cfg: CriticGradNormConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.baseline: deque[float] = deque(maxlen=cfg.baseline_points)
        self.over = 0
        self.first_over: int | None = None

    def _check(self, record, values, judging):
        value = values[CRITIC_GRAD_NORM]
        if not judging or len(self.baseline) < self.warmup.baseline_points:
            self.baseline.append(value)
            return None
        jump_limit = self.cfg.jump_factor * _median(self.baseline)
        limit = min(self.cfg.ceiling, jump_limit)
        if value <= limit:
            self.baseline.append(value)
            self.over, self.first_over = 0, None
            return None
        self.over += 1
        self.first_over = record.iteration if self.first_over is None else self.first_over
        if self.over < self.cfg.patience_points:
            return None
        why = "ceiling" if limit == self.cfg.ceiling else f"{self.cfg.jump_factor:g}x its median"
        return self._verdict(
            record, "warning", CRITIC_GRAD_NORM, value, limit,
            f"critic grad norm {value:.3g} above {limit:.3g} ({why}) for {self.over} points",
            onset_hint=self.first_over,
        )


class RewardCollapse(Detector):
    """A reward drop abnormal for *this* run: many robust sigmas of its own changes, and a large
    fraction of its recent range. Scale-free, since step rewards differ by orders of magnitude."""

    name = "reward_collapse"
    _state_fields = ("history",)

    def __init__(self, cfg: RewardCollapseConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.signals = (cfg.signal,)
        self.history: deque[tuple[int, float]] = deque(maxlen=cfg.baseline_points + cfg.horizon_points)

    def _check(self, record, values, judging):
        value = values[self.cfg.signal]
        h = self.cfg.horizon_points
        self.history.append((record.iteration, value))
        if not judging or len(self.history) < max(self.warmup.baseline_points, 2 * h + 2):
            return None
        past = [v for _, v in self.history]
        base = np.asarray(past[:-h])
        drop = float(np.max(base[-h:]) - value)
        changes = base[h:] - base[:-h]
        scale = _robust_sigma(changes, _median(changes)) if len(changes) >= 3 else 0.0
        spread = float(np.max(base) - np.min(base))
        limit = max(self.cfg.drop_sigmas * scale, self.cfg.min_rel_drop * spread)
        if drop <= 0 or drop <= limit or limit <= 0:
            return None
        start = self.history[-h - 1][0]
        return self._verdict(
            record, "warning", self.cfg.signal, value, float(np.max(base[-h:]) - limit),
            f"reward fell by {drop:.3g} within {h} points ({drop / max(scale, 1e-300):.0f} robust sigmas of this run's changes)",
            onset_hint=start,
        )


class PolicyStd(Detector):
    """The policy's log-std climbing towards float32 overflow: how many iterations until NaN.

    Reads ``train/log_std_max`` when the run reports it (live training does), else the mean log-std
    per action dimension from ``train/dist_entropy`` (what OpenRL logs; a lower bound on the largest).
    The climb rate is a least-squares slope over the last ``rate_points`` points, per iteration.
    """

    name = "policy_std"
    _state_fields = ("history", "warn_since", "saturated_since")

    def __init__(self, cfg: PolicyStdConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.history: deque[tuple[int, float]] = deque(maxlen=cfg.rate_points)
        self.warn_since: int | None = None  # first iteration of the current stretch inside the warning horizon
        self.saturated_since: int | None = None  # ... of the current stretch above saturated_log_std

    def _values(self, record: MetricRecord) -> dict[str, float] | None:
        """``{signal: log-std}``: the exact maximum, else the mean per dimension from the entropy."""
        exact = record.metrics.get(LOG_STD_MAX)
        if exact is not None:
            return {LOG_STD_MAX: exact}
        entropy = record.metrics.get(ENTROPY)
        if entropy is None:
            return None
        dims = self.cfg.action_dims
        return {ENTROPY: (entropy - dims * GAUSSIAN_ENTROPY_PER_DIM) / dims}

    def _check(self, record, values, judging):
        (signal, log_std), = values.items()
        self.history.append((record.iteration, log_std))
        if log_std <= self.cfg.saturated_log_std:
            self.saturated_since = None
        elif self.saturated_since is None:
            self.saturated_since = record.iteration
        if len(self.history) < self.cfg.rate_points:
            return None
        its = np.array([it for it, _ in self.history], dtype=float)
        ys = np.array([v for _, v in self.history])
        if its[-1] <= its[0]:
            return None
        rate = float(np.polyfit(its, ys, 1)[0])  # log-std per iteration
        headroom = self.cfg.overflow_log_std - log_std
        eta = 0.0 if headroom <= 0 else headroom / rate if rate > 0 else math.inf  # iterations to overflow
        # hysteresis: a standing warning ends only well outside the horizon, not on every wobble of the rate
        limit = self.cfg.warn_within_iters * (1.0 if self.warn_since is None else 1.5)
        if eta > limit:
            self.warn_since = None
            return None
        if self.warn_since is None:
            self.warn_since = record.iteration
        if not judging:
            return None
        level: Level = "alarm" if eta <= self.cfg.alarm_within_iters else "warning"
        what = "largest log-std" if signal == LOG_STD_MAX else f"mean log-std over {self.cfg.action_dims} action dims"
        return self._verdict(
            record, level, signal, log_std, self.cfg.overflow_log_std,
            f"policy {what} {log_std:.1f} (std {math.exp(min(log_std, 700)):.2g}) climbing {rate:+.3f}/iteration: "
            f"float32 log-probs overflow at {self.cfg.overflow_log_std:g}, NaN in about {eta:.0f} iterations "
            "(the entropy bonus outweighs the reward's pull on the std; lower lr or entropy_coef)",
            onset_hint=self.saturated_since if self.saturated_since is not None else self.warn_since,
        )


class NonFinite(Detector):
    """Any NaN/Inf in a tracked metric is immediate divergence, warm-up or not."""

    name = "nonfinite"

    def __init__(self, cfg: NonFiniteConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg

    def update(self, record: MetricRecord) -> Verdict | None:
        bad = record.nonfinite_keys(TRACKED_KEYS)
        if not bad:
            return None
        key = bad[0]
        return self._verdict(
            record, "alarm", key, record.metrics[key], 0.0,
            f"non-finite {key} = {record.metrics[key]} (also: {', '.join(bad[1:]) or 'none'})",
            onset_hint=record.iteration,
        )


def build_detectors(cfg: WatchdogConfig) -> list[Detector]:
    """The enabled detectors, in a fixed order (their names are stable keys in saved state)."""
    found: list[Detector] = []
    if cfg.nonfinite.enabled:
        found.append(NonFinite(cfg.nonfinite, cfg.warmup))
    if cfg.value_loss.enabled:
        found.append(ValueLossThreshold(cfg.value_loss, cfg.warmup))
    if cfg.trend.enabled:
        found.extend(TrendCusum(cfg.trend, cfg.warmup, s) for s in cfg.trend.signals)
    if cfg.critic_grad_norm.enabled:
        found.append(CriticGradNorm(cfg.critic_grad_norm, cfg.warmup))
    if cfg.reward_collapse.enabled:
        found.append(RewardCollapse(cfg.reward_collapse, cfg.warmup))
    if cfg.policy_std.enabled:
        found.append(PolicyStd(cfg.policy_std, cfg.warmup))
    return found


def detector_key(det: Detector) -> str:
    """A unique, stable name for a detector instance (trend detectors carry their signal)."""
    return f"{det.name}:{det.signal}" if isinstance(det, TrendCusum) else det.name
