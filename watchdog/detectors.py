"""Detectors: each turns a stream of :class:`MetricRecord` into a verdict, nothing else.

The base class does the bookkeeping (warm-up, non-finite values, saveable state) and calls the
subclass's small ``_check``. Detectors never act: :mod:`watchdog.policy` decides what a verdict
means for the run.

Every statistic is incremental (:class:`SortedWindow`: a window kept sorted with ``bisect``), so a
record costs a few microseconds per detector whatever the window sizes. Rules are scale-free
(ratios of a signal to its own settled level, in units of its own noise) except the user's absolute
0.2 rule, which also demands a departure from the run's own settled level.
"""

from __future__ import annotations

import copy
import math
import statistics
from bisect import bisect_left, insort
from collections import deque
from dataclasses import asdict, dataclass
from operator import itemgetter
from typing import Literal

from watchdog.config import (
    BlowUpConfig,
    CriticGradNormConfig,
    EntropyCollapseConfig,
    EntropySurgeConfig,
    KlSurgeConfig,
    NonFiniteConfig,
    PolicyStdConfig,
    RewardCollapseConfig,
    SurrogateSurgeConfig,
    TrendConfig,
    ValueLossThresholdConfig,
    WarmupConfig,
    WatchdogConfig,
)
from watchdog.signals import (
    APPROX_KL,
    CRITIC_GRAD_NORM,
    ENTROPY,
    LOG_STD_MAX,
    LOG_STD_MEAN,
    POLICY_ENTROPY,
    POLICY_LOSS,
    TRACKED_KEYS,
    VALUE_LOSS,
    MetricRecord,
)

GAUSSIAN_ENTROPY_PER_DIM = 0.5 * math.log(2 * math.pi * math.e)
"""Entropy of a unit-variance normal; a diagonal Gaussian's is ``d * this + sum(log std)``."""

IQR_TO_SIGMA = 1.0 / 1.349  # a normal's interquartile range is 1.349 sigma
NOISE_POINTS = 100  # point-to-point changes that estimate a signal's noise
SPARSE_UPDATES = 10  # a reward that changed fewer times in its change window has no noise scale to read
NO_LEVEL = -1e9  # "no level held yet" in log space: finite, so saved state stays strict JSON
TINY = 1e-12
POLICY_STD_KEYS = (LOG_STD_MAX, LOG_STD_MEAN)  # a Gaussian policy's std; a policy without one may log NaN for it

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
    advisory: bool = False  # a warning said once that leaves the run healthy (and its stable checkpoints going):
    # one that can never become an alarm on its own, or a forecast whose detector alarms by itself when it comes true

    def to_dict(self) -> dict:
        """JSON-ready fields (NaN/Inf as strings)."""
        out = asdict(self)
        for key in ("value", "threshold"):
            if not math.isfinite(out[key]):
                out[key] = str(out[key])
        return out


def quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile ``q`` in [0, 1] of a sorted, non-empty list."""
    n = len(ordered)
    pos = q * (n - 1)
    i = int(pos)
    return ordered[i] if i + 1 >= n else ordered[i] + (pos - i) * (ordered[i + 1] - ordered[i])


class SortedWindow:
    """The last ``size`` values in arrival order and sorted: median and quantiles in O(log n) per push."""

    def __init__(self, size: int):
        self.size = size
        self.fifo: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self.fifo)

    def push(self, x: float) -> None:
        """Add ``x``; the oldest value leaves once the window is full."""
        self.fifo.append(x)
        insort(self.sorted, x)
        if len(self.fifo) > self.size:
            del self.sorted[bisect_left(self.sorted, self.fifo.popleft())]

    def quantile(self, q: float) -> float:
        """Linear-interpolated quantile ``q`` in [0, 1] (the window must not be empty)."""
        return quantile(self.sorted, q)

    def median(self) -> float:
        return quantile(self.sorted, 0.5)

    def sigma(self) -> float:
        """Robust standard deviation: interquartile range / 1.349 (spikes do not move it)."""
        ordered = self.sorted
        return (quantile(ordered, 0.75) - quantile(ordered, 0.25)) * IQR_TO_SIGMA

    def state(self) -> list[float]:
        return list(self.fifo)

    def load(self, values: list[float]) -> None:
        self.fifo = deque(values)
        self.sorted = sorted(values)


class LaggedWindow:
    """A sorted window over ``span_iters`` iterations that a value joins ``lag_iters`` iterations after it arrived.

    A baseline that lags the newest point judges a climb against where the run was before it
    started, instead of absorbing the climb into its own baseline. Spans are in iterations, not
    points, so a run logged every 5 iterations and one logged every iteration are judged alike.
    """

    def __init__(self, span_iters: int, lag_iters: int):
        self.span = span_iters
        self.lag = lag_iters
        self.window = SortedWindow(1 << 62)  # evicted by age, not by count
        self.times: deque[int] = deque()  # iterations of the window's values, oldest first
        self.pending: deque[tuple[int, float]] = deque()

    def ready(self, points: int) -> bool:
        """Enough to judge by: ``points`` values, or all its span can hold at the run's logging rate (at least
        ``SPARSE_POINTS``, spread over the whole span at their own spacing): a run logged every 30 updates (skrl's
        ``write_interval: auto``) holds 8 in a 250-iteration window, and until session 19 never reached 10, so the
        trend and the policy's rules never judged it. A densely logged window emptied by a stretch it did not learn
        (a surge, a collapse) refills to ``points`` first: its few newest points span a few iterations only."""
        n = len(self.window.fifo)
        if n >= points:
            return True
        times = self.times
        return n >= SPARSE_POINTS and (times[-1] - times[0]) * n >= 0.9 * self.span * (n - 1)

    def push(self, iteration: int, x: float) -> None:
        """Queue ``x``; values old enough join the window, values too old leave it."""
        pending, times, window = self.pending, self.times, self.window
        pending.append((iteration, x))
        joined = iteration - self.lag  # values up to this iteration join
        fifo, ordered = window.fifo, window.sorted
        while pending and pending[0][0] <= joined:
            it, value = pending.popleft()
            fifo.append(value)  # window.push(value) without its count check: this window never fills
            insort(ordered, value)
            times.append(it)
        oldest = joined - self.span  # values before this iteration leave
        while times and times[0] < oldest:
            times.popleft()
            del ordered[bisect_left(ordered, fifo.popleft())]

    def state(self) -> dict:
        return {"window": self.window.state(), "times": list(self.times), "pending": list(self.pending)}  # tuples: immutable

    def load(self, state: dict) -> None:
        self.window.load(state["window"])
        self.times = deque(state["times"])
        self.pending = deque((int(it), float(v)) for it, v in state["pending"])


class LaggedMax:
    """The largest value of a :class:`LaggedWindow` (the same joining and leaving), without the window:
    the values that can still be the largest, in a deque decreasing from oldest to newest."""

    def __init__(self, span_iters: int, lag_iters: int):
        self.span = span_iters
        self.lag = lag_iters
        self.pending: deque[tuple[int, float]] = deque()
        self.joined: deque[tuple[int, float]] = deque()

    def push(self, iteration: int, x: float) -> None:
        pending, joined = self.pending, self.joined
        pending.append((iteration, x))
        newest = iteration - self.lag
        while pending and pending[0][0] <= newest:
            point = pending.popleft()
            while joined and joined[-1][1] <= point[1]:
                joined.pop()  # never the largest again: a larger value joined after it
            joined.append(point)
        oldest = newest - self.span
        while joined and joined[0][0] < oldest:
            joined.popleft()

    def max(self) -> float | None:
        return self.joined[0][1] if self.joined else None

    def state(self) -> dict:
        return {"pending": list(self.pending), "joined": list(self.joined)}

    def load(self, state: dict) -> None:
        self.pending = deque((int(it), float(v)) for it, v in state["pending"])
        self.joined = deque((int(it), float(v)) for it, v in state["joined"])


def median3(a: float, b: float, c: float) -> float:
    """Median of three numbers (the level of the newest three points: one spike cannot move it)."""
    return max(min(a, b), min(max(a, b), c))


def _note_return(returns: deque, record: MetricRecord, key: str) -> bool:
    """Append the record's finite return under ``key`` to ``returns`` as (iteration, return); True if it did."""
    ret = record.metrics.get(key)
    if ret is None or not math.isfinite(ret):
        return False
    returns.append((record.iteration, ret))
    return True


def _returns_since(returns: deque, until: int) -> tuple[list[float], float] | None:
    """(the returns held up to iteration ``until``, the newest return) when the newest came after it, else
    None: what a value loss in the returns' squared units is judged by when it climbs as the critic meets
    returns it has not seen (``blowup`` and ``trend`` with ``explained_by``)."""
    if not returns or returns[-1][0] <= until:
        return None
    return [r for it, r in returns if it <= until], returns[-1][1]


# a critic's RMS error this small against the returns' size (or 1) is numerical zero: it fitted a constant exactly
FITTED_CONSTANT = 1e-3
# ...and meeting its first returns, it errs by no more than this many times their size (a loss's root 7.5e6 over a
# return of 0.001 is a blow-up, whatever the return did: a review of session 19 found it silenced)
FITTED_REACH = 100.0
# ...and a return that held one value exactly (a sparse task's failures, the lowest it ever was) counts as never moved
# while within this fraction of it: the first successes in a many-episode mean, not a return the run has since learned
PLATEAU_REACH = 0.1
# the fewest points a lagged window judges by when its span holds no more at the run's logging rate
SPARSE_POINTS = 4


def _times(ratio: float) -> str:
    """A ratio in an alert's words: whole numbers (``35``), and beyond a million in powers of ten (``3.5e+299``, not
    300 digits)."""
    return f"{ratio:.0f}" if not math.isfinite(ratio) or abs(ratio) < 1e6 else f"{ratio:.2g}"


def _log(value: float) -> float:
    return math.log(max(value, TINY))


class Detector:
    """Bookkeeping shared by all detectors; subclasses implement ``_check``.

    ``update`` skips records that lack the detector's signal or carry a non-finite value (the
    non-finite detector owns those), and holds verdicts back until warm-up has passed, while still
    letting the subclass learn its baseline. Warm-up counts iterations since *this detector* saw its
    first point, so a resumed run (or one that starts logging late) warms up again.
    """

    name = "detector"
    signals: tuple[str, ...] = ()
    # judges the level of the reward or of the value loss (their scale is the task's): starts over, as
    # built, when the task takes a staged step (``watchdog.pipeline.TaskChanges``)
    task_scaled = False
    # learns this process's own memory or speed: starts over, as built, in a new process (a replayed restart)
    process_scaled = False
    # learns the config's own speed: starts over, as built, when the config switches (a rollback's safe config; until
    # session 18 the old rate stayed, and a run slowed by its own safe config was warned about forever)
    config_scaled = False
    # judges its signal's logarithm (a loss, a gradient norm): a value <= 0 is no level and is skipped, as a missing one
    # (a 0 logged before the first update, or a loss exactly fitted; until session 19 it was a level of 1e-12, and the
    # first real loss after it "4.9e+10x its floor": three rollbacks and a stop)
    log_scale = False
    _state_fields: tuple[str, ...] = ()
    _window_fields: tuple[str, ...] = ()  # SortedWindow / LaggedWindow attributes
    _ATOMIC = frozenset({int, float, bool, str, type(None)})  # immutable: copy.deepcopy returns them as they are

    _reads_signals = True  # _values is this class's: the values are the signals as recorded

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._reads_signals = cls._values is Detector._values  # decided once per class, not per record

    def __init__(self, warmup: WarmupConfig):
        self.warmup = warmup
        self.points = 0
        self.first_iteration: int | None = None  # warm-up counts from here: a resumed run warms up again

    def update(self, record: MetricRecord) -> Verdict | None:
        """Feed one record; return a verdict or None."""
        signals = self.signals
        if self._reads_signals and len(signals) == 1:
            # one signal read as it is (most detectors): no dict built for a missing or non-finite value
            signal = signals[0]
            value = record.metrics.get(signal)
            if value is None or not math.isfinite(value) or (value <= 0 and self.log_scale):
                return None
            values = {signal: value}
        else:
            values = self._values(record)
            if values is None:
                return None
            for v in values.values():
                if v is None or not math.isfinite(v):
                    return None
        self.points += 1
        first = self.first_iteration
        if first is None:
            first = self.first_iteration = record.iteration
        return self._check(record, values, record.iteration - first >= self.warmup.min_iters)

    def reads(self) -> tuple[str, ...]:
        """Every metric key this detector may read. Records that carry none of them leave it as it was
        built: no point counted, no state changed, no verdict."""
        return self.signals

    def _values(self, record: MetricRecord) -> dict[str, float | None] | None:
        """The values this detector judges in ``record`` (None: nothing to judge)."""
        metrics = record.metrics
        return {s: metrics.get(s) for s in self.signals}

    def _check(self, record: MetricRecord, values: dict[str, float], judging: bool) -> Verdict | None:
        raise NotImplementedError

    def _verdict(self, record: MetricRecord, level: Level, signal: str, value: float, threshold: float,
                 reason: str, onset_hint: int | None = None) -> Verdict:
        return Verdict(self.name, level, signal, float(value), float(threshold), reason,
                       record.iteration, record.env_steps, onset_hint)

    def _held(self, record: MetricRecord, beyond: bool) -> bool:
        """Count this point in the streak of points beyond the limit (``self.down``, since
        ``self.first_down``); True once the streak has held ``cfg.persist_points``."""
        if not beyond:
            self.down, self.first_down = 0, None
            return False
        self.down += 1
        if self.first_down is None:
            self.first_down = record.iteration
        return self.down >= self.cfg.persist_points

    def state_dict(self) -> dict:
        """Everything needed to resume this detector exactly (plain Python values)."""
        state = {"points": self.points, "first_iteration": self.first_iteration}
        atomic = self._ATOMIC
        for name in self._state_fields:
            value = getattr(self, name)
            kind = type(value)
            if kind in atomic or kind is tuple and all(type(v) in atomic for v in value):
                state[name] = value  # what deepcopy returns as it is (a stable checkpoint takes this snapshot)
            else:
                state[name] = list(value) if isinstance(value, deque) else copy.deepcopy(value)
        for name in self._window_fields:
            state[name] = getattr(self, name).state()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.points = int(state["points"])
        self.first_iteration = state.get("first_iteration")
        for name in self._state_fields:
            if name not in state:  # saved by an older version without it: the default stands
                continue
            current = getattr(self, name)
            value = state[name]
            setattr(self, name, deque(value, maxlen=current.maxlen) if isinstance(current, deque) else copy.deepcopy(value))
        for name in self._window_fields:
            if name in state:  # (an older version's state may lack a window added since)
                getattr(self, name).load(copy.deepcopy(state[name]))


class ValueLossThreshold(Detector):
    """The user's rule: value loss *rises above* ``value_loss_max``, away from the run's settled level.

    Real runs start far above the threshold, so the rule arms only once value loss has settled: of
    the last ``arm_points`` points (and at least ``arm_iters`` iterations of them), all but the top ``1 - arm_quantile`` lie below the threshold and
    their median below ``arm_fraction`` of it. Once armed, a point *departs* when it is above the
    settled level (the median of the log-values over ``baseline_iters`` iterations, ending
    ``lag_iters`` behind the newest, so a slow climb is not absorbed into it) by ``departure_ratio``
    and by ``departure_sigmas`` of the run's own robust sigma there: a loss still drifting down
    through 0.1-0.3, or a noisy run's ordinary spike, is not a divergence. The alarm needs a point
    above the threshold ending a streak of ``patience_points`` departing points that spans
    ``patience_iters`` iterations: one spike is not enough, but a climb that departed just before
    crossing is caught on its first point above. Windows are in iterations, so logged and
    per-iteration data are judged alike. A departure the run came back from (its streak ended at the settled
    level, and held it as long as a departure must last) is part of its normal range for ``baseline_iters``
    iterations: the alarm's 3-point level must be ``excursion_factor`` x the highest 3-point level of such a
    departure (the trend's excursion test).
    A normalised critic loss of a task whose failures are rare terminal events (rl_games InvertedPendulum) sits
    at 4e-4 between them and at 0.1-1 in the updates that meet one, again and again while the return climbs.
    """

    name = "value_loss_threshold"
    task_scaled = True
    log_scale = True
    signals = (VALUE_LOSS,)
    _state_fields = ("recent", "armed", "armed_at", "arm_level", "above", "first_above", "last_x", "last_at_level",
                     "last3", "streak_level", "returning", "came_back")
    _window_fields = ("steps",)

    def __init__(self, cfg: ValueLossThresholdConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.recent: deque[tuple[int, float]] = deque()  # the arming window: arm_points and arm_iters at least
        self.settled: LaggedWindow | None = None  # log-values; built when the rule arms
        self.armed = False
        self.armed_at: int | None = None
        self.arm_level: tuple[float, float] | None = None  # (log median, log sigma) of the arming window
        self.above = 0
        self.first_above: int | None = None
        self.steps = SortedWindow(NOISE_POINTS)  # point-to-point changes of the log-value: the run's own noise
        self.last_x: float | None = None
        self.last_at_level: int | None = None  # the newest point at or below the settled level
        self.last3: deque[float] = deque(maxlen=3)  # the newest log-values: their median is the level
        self.streak_level = NO_LEVEL  # the highest 3-point level of the departure in progress
        # a departure that ended, until the run has held its settled level as long as a departure must last
        # (patience_points over patience_iters): (iteration it ended, its level, points back at the level), or None
        self.returning: tuple[int, float, int] | None = None
        self.came_back: deque[tuple[int, float]] = deque()  # departures it came back from: (iteration it ended, level)

    def _check(self, record, values, judging):
        value = values[VALUE_LOSS]
        x = _log(value)
        if self.last_x is not None and self.above == 0:
            self.steps.push(x - self.last_x)
        self.last_x = x
        if not self.armed:
            self._try_arm(record, value, judging)
            return None
        center = self._center()
        if x <= center:
            self.last_at_level = record.iteration
        last3 = self.last3
        last3.append(x)
        rise, floor = x - center, math.log(self.cfg.departure_ratio)
        # rise < max(floor, ...) whenever rise < floor: the noise is estimated only when the ratio does not settle it
        if rise < floor or rise < max(floor, self.cfg.departure_sigmas * self._noise()):
            self._back_at_level(record.iteration)
            self.above, self.first_above = 0, None  # at the settled level: the streak ends
            self.settled.push(record.iteration, x)
            return None
        if self.above == 0 and self.returning is not None:  # out again before the return held: the same departure
            self.streak_level, self.returning = self.returning[1], None
        self.above += 1  # a departure; it may start below the threshold (a climb in progress)
        if self.first_above is None:
            self.first_above = record.iteration
        held_now = median3(*last3) if len(last3) == 3 else x
        self.streak_level = max(self.streak_level, held_now)
        lasted = record.iteration - self.first_above
        limit = self.cfg.value_loss_max
        if value <= limit or self.above < self.cfg.patience_points or lasted < self.cfg.patience_iters:
            return None
        if self._within_excursions(record.iteration, held_now):
            return None
        level = math.exp(center)
        return self._verdict(
            record, "alarm", VALUE_LOSS, value, limit,
            f"value loss {value:.4g} above {limit:g} and {_times(value / level)}x its settled level {level:.3g} "
            f"after {self.above} departing points (armed since iteration {self.armed_at})",
            # the last point at the settled level: a slow climb departs long after it began
            onset_hint=max(self.last_at_level or self.first_above, self.first_above - self.cfg.lag_iters),
        )

    def _back_at_level(self, iteration: int) -> None:
        """A point at the settled level: a departure that just ended is credited to the run's range once the run has
        held the level as long as a departure must last (a divergence that dips for a point is not one it came back
        from: its own swings raised the bar until a review of session 21). An alarmed departure is credited too: in
        alert mode and watch (rollbacks restore the detector from before it) a healthy loss that visits 0.2-1 again
        and again is said once, not at every visit; the price, measured by the review: a second divergence at the
        level of the first is said later (at 1.5x that level, or once it is baseline_iters old)."""
        cfg = self.cfg
        if self.above:
            self.returning, self.streak_level = (iteration, self.streak_level, 1), NO_LEVEL
            return
        if self.returning is None:
            return
        since, level, held = self.returning
        if held + 1 < cfg.patience_points or iteration - since < cfg.patience_iters:
            self.returning = (since, level, held + 1)
            return
        self.returning = None
        came_back = self.came_back
        came_back.append((since, level))
        # (a gap in the log longer than the memory: the departure just credited may be too old already)
        while came_back and came_back[0][0] < iteration - cfg.baseline_iters:
            came_back.popleft()

    def _within_excursions(self, iteration: int, level: float) -> bool:
        """Is ``level`` (log, 3-point) below ``excursion_factor`` x a departure the run came back from recently?
        (Tried in session 21 and not kept: only departures that lasted as long as this one. The healthy rl_games
        runs' streaks vary in length, and the longest yet was an alarm again.)"""
        if self.cfg.excursion_factor is None:
            return False
        since = iteration - self.cfg.baseline_iters  # (older ones are dropped as new ones come: _back_at_level)
        held = max((h for it, h in self.came_back if it >= since), default=None)
        return held is not None and level - held < math.log(self.cfg.excursion_factor)

    def _center(self) -> float:
        """The settled level: the median of the settled log-values (the arming window's median until
        the settled window has 3 points)."""
        window = self.settled.window
        return window.median() if len(window) >= 3 else self.arm_level[0]

    def _noise(self) -> float:
        """The run's noise per point in log space: the robust sigma of point-to-point changes / sqrt 2
        (a trend in the window, the early descent, does not inflate it)."""
        return self.steps.sigma() / math.sqrt(2.0) if len(self.steps) >= 3 else 0.0

    def _try_arm(self, record: MetricRecord, value: float, judging: bool) -> None:
        """Arm once the last ``arm_points`` points sit well below the threshold (isolated spikes allowed)."""
        recent = self.recent
        recent.append((record.iteration, value))
        while len(recent) > self.cfg.arm_points and record.iteration - recent[1][0] >= self.cfg.arm_iters:
            recent.popleft()
        if not judging or len(recent) < self.cfg.arm_points or record.iteration - recent[0][0] < self.cfg.arm_iters:
            return
        ordered = sorted(v for _, v in self.recent)
        high = ordered[min(len(ordered) - 1, int(self.cfg.arm_quantile * len(ordered)))]
        median = ordered[len(ordered) // 2]
        limit = self.cfg.value_loss_max
        if high > limit or median >= self.cfg.arm_fraction * limit:
            return
        self.settled = LaggedWindow(self.cfg.baseline_iters, self.cfg.lag_iters)
        arm = SortedWindow(len(recent))
        for it, v in list(recent)[-self.cfg.arm_points:]:  # the newest, most settled part seeds the level
            arm.push(_log(v))
            self.settled.push(it, _log(v))
        self.armed, self.armed_at, self.arm_level = True, record.iteration, (arm.median(), arm.sigma())
        self.last3.extend(_log(v) for _, v in list(recent)[-3:])  # a spike just after arming is a 3-point level too
        self.recent.clear()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["settled"] = None if self.settled is None else self.settled.state()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.recent = deque(tuple(p) for p in state["recent"])
        self.came_back = deque((int(p[0]), float(p[1])) for p in state.get("came_back", ()))
        returning = state.get("returning")
        self.returning = None if returning is None else (int(returning[0]), float(returning[1]), int(returning[2]))
        self.arm_level = None if state["arm_level"] is None else tuple(state["arm_level"])
        saved = state.get("settled")
        self.settled = None
        if saved is not None:
            self.settled = LaggedWindow(self.cfg.baseline_iters, self.cfg.lag_iters)
            self.settled.load(copy.deepcopy(saved))


class TrendCusum(Detector):
    """A climb: one-sided CUSUM of capped, standardised log-values against a lagged robust baseline.

    The baseline is the log-values of ``baseline_iters`` iterations ending ``lag_iters`` behind the
    newest, so a climb is judged against where the run was before it started. Its median and robust
    sigma standardise each point (z capped at ``z_cap``: one spike cannot trigger); the *reference*
    is its ``ref_quantile`` quantile: the top of the run's own recent range, excursions it came back
    from included (CartPole's value loss visits 1000x its median whenever episodes hit their limit).
    A verdict needs the CUSUM at ``warn_h`` and the 3-point median ``warn_ratio`` x the reference for
    ``persist_points`` points in a row; ``alarm_ratio`` x the reference makes it an alarm.

    Where the value targets are not normalised (``explained_by``: the return's key; the value-loss signal
    only), the loss is in the returns' squared units and climbs as the critic meets returns it has not
    seen: a warning is not said while the return stands above the highest it held before the climb by at
    least the loss's root (rsl_rl HalfCheetah's loss spikes 4-8x at every episode boundary, where every
    env's episode ends together and the return steps up).
    """

    name = "trend"
    task_scaled = True
    log_scale = True
    _state_fields = ("recent", "recent_its", "cusum", "last_zero_iteration", "persist", "streak_from", "jumped",
                     "returns")
    _window_fields = ("baseline", "levels")

    def __init__(self, cfg: TrendConfig, warmup: WarmupConfig, signal: str):
        super().__init__(warmup)
        self.cfg = cfg
        self.signal = signal
        self.signals = (signal,)
        # the return's key where a value loss in its squared units may climb with it (not normalised)
        self.explained_by = cfg.explained_by if signal == VALUE_LOSS else None
        self.returns: deque[tuple[int, float]] = deque()  # (iteration, return) over the baseline span and its lag
        self.baseline = LaggedWindow(cfg.baseline_iters, cfg.lag_iters)
        self.levels = LaggedMax(cfg.baseline_iters, cfg.lag_iters)  # the largest 3-point median, over the same span
        self.recent: deque[float] = deque(maxlen=3)
        self.recent_its: deque[int] = deque(maxlen=3)  # their iterations
        self.cusum = 0.0
        self.persist = 0
        self.streak_from: int | None = None  # the oldest of the 3 points of the streak's first high level
        self.jumped = 0  # points in a row the level held alarm_ratio x above the newest normal stretch
        self.last_zero_iteration: int | None = None

    def reads(self) -> tuple[str, ...]:
        return self.signals if self.explained_by is None else (*self.signals, self.explained_by)

    def _check(self, record, values, judging):
        cfg = self.cfg
        x = _log(values[self.signal])
        self.recent.append(x)
        self.recent_its.append(record.iteration)
        if self.explained_by is not None and _note_return(self.returns, record, self.explained_by):
            returns = self.returns
            while returns[0][0] < record.iteration - cfg.baseline_iters - cfg.lag_iters:
                returns.popleft()
        window = self.baseline.window
        ready = judging and self.baseline.ready(self.warmup.baseline_points)
        if ready:  # judged against the baseline as it was before this point joins it
            center = window.median()
            if self.cusum > 0.0 or x > center:  # else z <= 0 and the CUSUM stays at 0: no sigma needed
                sigma = max(window.sigma(), cfg.min_sigma)
                z = max(-cfg.z_cap, min(cfg.z_cap, (x - center) / sigma))
                # Capped, so that once a rise is over the detector quiets down in bounded time.
                self.cusum = min(max(0.0, self.cusum + z - cfg.drift_k), 1.5 * cfg.warn_h)
            if not self.cusum < cfg.warn_h:  # the top of its range is needed past the early return below only
                top = window.quantile(cfg.ref_quantile)
        self.baseline.push(record.iteration, x)
        if len(self.recent) == 3:
            self.levels.push(record.iteration, median3(*self.recent))
        if not ready:
            self.last_zero_iteration = record.iteration
            return None
        if self.cusum == 0.0:
            self.last_zero_iteration = record.iteration
        if self.cusum < cfg.warn_h:
            self.persist = self.jumped = 0
            return None
        level = median3(*self.recent) if len(self.recent) == 3 else x
        jump = self._jump(level) if self.cfg.alarm_ratio is not None else None
        what = "the top of its recent range"
        if jump is not None and jump < top:  # held alarm_ratio x above the newer, lower stretch: a jump
            top, what = jump, "the top of the stretch just before this climb"
        elif level - top < math.log(self.cfg.warn_ratio):
            self.persist = 0
            return None
        ratio = math.exp(level - top)
        self.persist += 1
        if self.persist == 1:
            self.streak_from = self.recent_its[0]
        # where targets are not normalised (alarm_ratio null), a climb is said, not acted on, below blowup_ratio x
        blown = (self.cfg.alarm_ratio is None and self.cfg.blowup_ratio is not None
                 and ratio >= self.cfg.blowup_ratio and not self._learned_since_baseline(record.iteration, level))
        alarm = (self.cfg.alarm_ratio is not None and ratio >= self.cfg.alarm_ratio) or blown
        held = self.levels.max()
        below_excursion = (alarm and self.cfg.excursion_factor is not None and held is not None
                           and level - held < math.log(self.cfg.excursion_factor))
        alarm = alarm and not below_excursion
        # the climb's evidence spans alarm_span_iters iterations (at log_interval its first high level already does;
        # per iteration, a burst of 3 updates does not): shorter, it is a warning
        short = (alarm and self.streak_from is not None
                 and record.iteration - self.streak_from < self.cfg.alarm_span_iters)
        alarm = alarm and not short
        if not alarm and self.persist < self.cfg.persist_points and jump is None:
            return None  # a warning needs its level held: two spikes within 3 points make one 3-point median
        if not alarm and self.explained_by is not None and self._returns_explain(level):
            return None  # the critic meeting returns it has not seen: nothing to say
        verdict = self._verdict(
            record, "alarm" if alarm else "warning", self.signal, values[self.signal], math.exp(top),
            f"{self.signal} trending up: {ratio:.1f}x {what} {math.exp(top):.3g} "
            f"(median {math.exp(center):.3g}) for {self.persist} points (CUSUM {self.cusum:.1f})",
            # the CUSUM's last quiet point, but no earlier than the lagged baseline can speak for
            onset_hint=max(self.last_zero_iteration, record.iteration - self.cfg.lag_iters),
        )
        if short:
            verdict.reason += (f"; a warning, not an alarm: the climb spans {record.iteration - self.streak_from} "
                               f"iterations, an alarm's {self.cfg.alarm_span_iters}")
        if below_excursion:
            verdict.reason += (f"; a warning, not an alarm: below {self.cfg.excursion_factor:g}x the 3-point level "
                               f"{math.exp(held):.3g} the run came back from in its baseline window")
        # warn-only (value targets not normalised): the climb may be a policy learning, so it leaves
        # the run healthy and its stable checkpoints going; with a reward collapse it is divergence
        if blown and alarm:
            verdict.reason += (f"; an alarm though the value targets are not normalised: {self.cfg.blowup_ratio:g}x the "
                               "top of its range, and the return has not risen by the loss's root since then")
        elif self.cfg.alarm_ratio is None:
            verdict.advisory = True
            verdict.reason += ("; advisory: a value loss in the returns' units also climbs while a policy learns, "
                               "so the run stays healthy (divergence with a reward collapse)")
        return verdict

    def _learned_since_baseline(self, iteration: int, level: float) -> bool:
        """Has the return risen since the baseline's time (the median of the returns over the lagged baseline's
        span) by at least the loss's root? A policy learning for hundreds of updates (SB3 HalfCheetah without
        VecNormalize: its loss 185x the top of its range while the return climbs) has; a loss blowing up over a
        return standing still has not. No return read: not known, so not learned (the loss alone speaks)."""
        if self.explained_by is None:
            return False
        then = sorted(r for it, r in self.returns if it <= iteration - self.cfg.lag_iters)
        return bool(then) and self.returns[-1][1] - then[len(then) // 2] >= math.exp(level / 2)

    def _returns_explain(self, level: float) -> bool:
        """Does the newest return stand above the highest it held before the climb by at least the root of
        the loss's level (the critic's RMS error, in the returns' units: returns it has not seen explain an
        error no larger than their own rise)? "Before the climb": up to the CUSUM's last quiet point, over
        the baseline span and its lag."""
        since = _returns_since(self.returns, self.last_zero_iteration)
        return since is not None and bool(since[0]) and since[1] - max(since[0]) >= math.exp(level / 2)

    def _jump(self, level: float) -> float | None:
        """The top of the newest normal stretch when the level has held ``alarm_ratio`` x above it for
        ``jump_points`` points in a row, else None.

        The stretch is the points not yet in the lagged baseline up to the CUSUM's last quiet point
        (``baseline_points`` of them at least): where the run was just before this climb. A run still
        falling when it jumps has a lagged top from its higher past, against which a 10x jump from a
        level 4x lower reads as 2.5x. Judged against the newer stretch it is an alarm, but only once
        it has lasted (noise that briefly tops a short stretch is no jump); never a warning.
        """
        before = sorted(x for it, x in self.baseline.pending if it <= self.last_zero_iteration)
        if len(before) < self.warmup.baseline_points:
            self.jumped = 0
            return None
        top = quantile(before, self.cfg.ref_quantile)
        self.jumped = self.jumped + 1 if level - top >= math.log(self.cfg.alarm_ratio) else 0
        return top if self.jumped >= self.cfg.jump_points else None


class BlowUp(Detector):
    """A sustained blow-up is divergence at any time, warm-up included.

    Fires when the 3-point median of the signal is ``ratio`` times its floor (the lowest 3-point
    median of the previous ``floor_points`` points) and ``envelope_factor`` times every level the
    run held before that floor (before the floor window, and in it before its lowest point), for
    ``patience_points`` points in a row. One spike cannot move a 3-point median; a run that starts
    high and settles never rises over its own floor; a run that repeatedly visits a high level and
    comes back (CartPole's value loss at the 500-step limit) has that level in its envelope; a
    signal whose noise spans 100x (a critic that fits the returns almost exactly: 1e-6 to 5e-4)
    returns to levels it held a few points before its dip, which is no blow-up.

    Where the value targets are not normalised (``explained_by``: the return's key), the loss is in
    the returns' squared units, and a critic meeting returns it has never seen (the first episodes to
    reach a sparse goal) blows up by 10^4x in one update while the run learns. A blow-up while the
    return has *jumped* (above the highest it held over the floor window up to the floor's low, by
    more than its range there: a rise faster than it had been moving; and by at least the critic's RMS
    error, the root of the loss: new returns explain no larger error than their own jump) is an
    advisory warning: with a reward collapse it is divergence (``policy.reward_corroborates``). A
    blow-up whose return did not jump so stays an alarm, and so does one *still climbing*:
    ``envelope_factor`` x above its own first level (a critic's loss on new returns peaks as it meets
    them and falls as it fits them).
    """

    name = "blowup"
    task_scaled = True
    log_scale = True
    _state_fields = ("recent", "floor", "envelope", "streak", "returns", "first_level", "flat_start", "peaks",
                     "plateau", "lowest")

    def __init__(self, cfg: BlowUpConfig, warmup: WarmupConfig, signal: str):
        super().__init__(warmup)
        self.cfg = cfg
        self.signal = signal
        self.signals = (signal,)
        self.recent: deque[float] = deque(maxlen=3)
        # (iteration, level, value) of the floor window: the 3-point median and the point's own (log) value
        self.floor: deque[tuple[int, float, float]] = deque()
        self.envelope = NO_LEVEL  # the highest level held before the floor window, or its second-highest single value
        self.peaks = [NO_LEVEL, NO_LEVEL]  # the two highest single values before the floor window
        self.streak = 0
        # (iteration, return) of the records the floor window spans, and the two before it
        self.returns: deque[tuple[int, float]] = deque(maxlen=cfg.floor_points + 3)
        self.first_level = NO_LEVEL  # the level of the streak's first point
        self.flat_start: float | None = None  # the return at the streak's first verdict, when it rose from one never moved
        # a sparse task's failures: the first return held exactly for floor_points points in a row; ``lowest``: the
        # lowest return so far (below the plateau, before or since, it was no floor of the task: a dense task's
        # staircase)
        self.plateau: float | None = None
        self.lowest: float | None = None

    def reads(self) -> tuple[str, ...]:
        return self.signals if self.cfg.explained_by is None else (*self.signals, self.cfg.explained_by)

    def _check(self, record, values, judging):
        if self.cfg.explained_by is not None:  # (the returns of the points judged: those the floor window spans)
            if _note_return(self.returns, record, self.cfg.explained_by):
                self._note_plateau(self.returns[-1][1])
        x = _log(values[self.signal])
        self.recent.append(x)
        if len(self.recent) < 3:
            return None
        level = median3(*self.recent)
        verdict = None
        if len(self.floor) >= 3:
            # above every level held before the floor window, then ratio x the floor, and above every level
            # held in the window before its low: the first test (two comparisons, no side effects, any
            # order) settles most points without the floor's minimum
            margin = math.log(self.cfg.envelope_factor) - 1e-9
            over = level - self.envelope >= margin
            if over:
                low_it, low, _ = min(self.floor, key=itemgetter(1))
                over = level - low >= math.log(self.cfg.ratio) - 1e-9 and all(
                    level - max(held, value) >= margin for it, held, value in self.floor if it < low_it)
            self.streak = self.streak + 1 if over else 0
            if self.streak <= 1:  # no streak, or a new one: its flat start is not known yet
                self.flat_start = None
            if self.streak == 1:
                self.first_level = level
            if over and self.streak >= self.cfg.patience_points:
                explainable = self.cfg.explained_by is not None
                jump = self._return_jump(low_it, low, level) if explainable else None
                if self.streak == self.cfg.patience_points:  # the streak's first verdict: from a constant the critic fitted?
                    self.flat_start = jump[1] if jump is not None and jump[3] else None
                newest = self.returns[-1][1] if self.returns else None
                if (self.flat_start is not None and newest is not None and newest >= self.flat_start
                        and math.exp(level / 2) <= FITTED_REACH * abs(newest)):
                    # a return that had never moved (a sparse task's zeros), rising since its first rewards: the
                    # critic meets more new returns each update as they come more often, and its loss climbs with
                    # them while the run learns; divergence there shows as the return falling (until session 19 the
                    # climb was an alarm: rollbacks to before the first successes and a stop)
                    jump = (self.flat_start, newest, 0.0, True)
                climbing = explainable and level - self.first_level >= margin and (jump is None or not jump[3])
                jump = None if climbing else jump
                verdict = self._verdict(
                    record, "alarm" if jump is None else "warning", self.signal, values[self.signal],
                    math.exp(low + math.log(self.cfg.ratio)),
                    f"{self.signal} blew up: {_times(math.exp(level - low))}x its floor {math.exp(low):.3g} within "
                    f"{len(self.floor)} points" + (f" and above any level it held before ({math.exp(self.envelope):.3g})"
                                                   if self.envelope > NO_LEVEL else ""),
                    onset_hint=low_it,
                )
                if climbing:
                    verdict.reason += f", and still climbing ({_times(math.exp(level - self.first_level))}x since its first point)"
                elif jump is not None:
                    verdict.advisory = True
                    verdict.reason += (
                        f" while the return jumped {jump[0]:.3g} -> {jump[1]:.3g} (its range before: {jump[2]:.3g}; the "
                        f"loss's root {math.exp(level / 2):.3g}, within the jump); "
                        "advisory: a critic meeting returns it has not seen (the value targets are not normalised), "
                        "so the run stays healthy (divergence with a reward collapse)")
        self.floor.append((record.iteration, level, x))
        if len(self.floor) > self.cfg.floor_points:
            # a single value counts in the window (10 points) and, once it recurs, for ever: one outlier does not
            # raise the bar for every later blow-up (a review of session 20's change)
            _, held, value = self.floor.popleft()
            self.peaks = sorted([*self.peaks, value])[-2:]
            self.envelope = max(self.envelope, held, self.peaks[0])
        return verdict

    def _note_plateau(self, ret: float) -> None:
        """Follow the return's runs of one exact value: the first held ``floor_points`` points is the plateau (a sparse
        task's failures: every episode at the time limit), and the lowest return (one below the plateau, before it or
        since, says it was no floor). The run of ``ret`` is counted in ``returns``, which holds floor_points + 3."""
        if self.plateau is None:
            held = 0
            for _, earlier in reversed(self.returns):
                if earlier != ret:
                    break
                held += 1
            if held >= self.cfg.floor_points:
                self.plateau = ret
        self.lowest = ret if self.lowest is None else min(self.lowest, ret)

    def _return_jump(self, low_it: int, low: float, level: float) -> tuple[float, float, float, bool] | None:
        """(highest return up to the floor's low, the newest return, the range up to the low, whether the critic had
        fitted a constant) when the newest return, after the low, is above that highest by more than that range (the
        returns of the floor window up to the low) and by at least the root of the loss's level (the critic's RMS
        error, in the returns' units: new returns explain an error no larger than their own jump; a rollout's rewards
        x50 blow the loss up 400,000x for a 0.3 move of the return); else None. Needs three returns up to the low: no
        range, no jump.

        A critic that had fitted a constant return (a sparse task's zeros: the return never moved, and the loss's
        root at the floor a thousandth of its size or less, numerical zero) has a loss whose root says nothing of the
        returns' scale: any rise is new to it (the first successes moved a 100-episode mean 0.009, under the root
        0.08 of a loss 650,000x its 1e-8 floor: rollbacks to before them and a stop, until session 19). A return that
        stood still because no episode ended (a staircase) has a critic still erring by far more than that.

        The return need not be still in the floor window itself when it held one value exactly before (``plateau``:
        ``floor_points`` points of every episode failing alike) and never fell below it since: a return averaged over
        100 episodes moves a little with each of its first successes (SB3's Acrobot: -500 held, then -497.9 -> -495.7
        in the window and -492.2 at the blow-up, a critic fitted to 0.02 meeting returns 10,000x its loss; rollbacks
        to before the learning began until session 22); its newest return must then be above all of the window's."""
        since = _returns_since(self.returns, low_it)
        if since is None or len(since[0]) < 3:
            return None
        before, newest = since
        high, spread = max(before), max(before) - min(before)
        rise = newest - high
        root = math.exp(level / 2)
        still = spread == 0 or (self.plateau is not None and self.lowest >= self.plateau
                                and abs(newest - self.plateau) <= PLATEAU_REACH * max(1.0, abs(self.plateau)))
        fitted = (still and math.exp(low / 2) <= FITTED_CONSTANT * max(1.0, abs(high))
                  and root <= FITTED_REACH * max(abs(newest), abs(high)))
        return (high, newest, spread, fitted) if rise > (0.0 if fitted else spread) and (fitted or rise >= root) else None

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["floor"] = [list(p) for p in self.floor]
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        # (a state saved before session 20 holds no single values: the level stands for both)
        self.floor = deque((int(p[0]), float(p[1]), float(p[-1])) for p in state["floor"])


class CriticGradNorm(Detector):
    """Critic gradient norm (before clipping): a jump over its rolling median, or above an absolute
    ceiling while also well above that median, for ``patience_points`` points."""

    name = "critic_grad_norm"
    task_scaled = True
    signals = (CRITIC_GRAD_NORM,)
    _state_fields = ("over", "first_over")
    _window_fields = ("baseline",)

    def __init__(self, cfg: CriticGradNormConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.baseline = SortedWindow(cfg.baseline_points)
        self.over = 0
        self.first_over: int | None = None

    def _check(self, record, values, judging):
        value = values[CRITIC_GRAD_NORM]
        if value <= 0.0:
            # no update (a critic not trained yet, a logger's 0 before the first one): no scale, and a baseline of
            # zeros made every later norm "over" a limit of 0, a standing warning for good (a review, session 29)
            return None
        if not judging or len(self.baseline) < self.warmup.baseline_points:
            self.baseline.push(value)
            return None
        median = self.baseline.median()
        limit = min(max(self.cfg.ceiling, self.cfg.ceiling_ratio * median), self.cfg.jump_factor * median)
        if value <= limit:
            self.baseline.push(value)
            self.over, self.first_over = 0, None
            return None
        self.over += 1
        self.first_over = record.iteration if self.first_over is None else self.first_over
        if self.over < self.cfg.patience_points:
            return None
        return self._verdict(
            record, "warning", CRITIC_GRAD_NORM, value, limit,
            f"critic grad norm {value:.3g} above {limit:.3g} ({_times(value / max(median, TINY))}x its median "
            f"{median:.3g}) for {self.over} points",
            onset_hint=self.first_over,
        )


class RewardCollapse(Detector):
    """A reward drop abnormal for *this* run, held for ``persist_points``: below the lagged median of
    its recent values (``baseline_iters`` ending ``horizon_iters`` back) by many robust sigmas of its own
    ``horizon_points``-step changes and by a large
    fraction of its recent 5-95 % range. Scale-free, since step rewards differ by orders of magnitude.
    A run that climbed through the whole window is judged from where it stood just before the lag (the
    window's median is half-way up the climb) when the fall also loses ``min_rel_drop`` of what it
    gained since judging began.

    A reward that changed fewer than ``SPARSE_UPDATES`` times in its last ``baseline_points`` points is a
    staircase: a mean over episodes logged only when they end, every env's fixed-length episode ending
    in the same iteration (rsl_rl's HalfCheetah: once in 42 iterations). Its changes are the run's
    learning steps, not noise, so no sigma is read from them: a fall from the last level it rose to
    by ``min_rel_drop`` of its 5-95 % range and of what it gained since judging began, and by more than
    any fall among its last ``SPARSE_UPDATES`` changes that it came back from (a noisy staircase's own
    steps down), is the collapse.

    A standing warning only where the run had something to lose: its lagged median above the first
    judged window's by ``min_gain`` times that window's range, or the reward below that first window
    by as much (a run that climbed through that window began at its first quarter, and wanders by its
    quarters' ranges, not by the climb: :func:`_origin`). In a run that never learned, the running mean of a
    random policy's episodes wanders below half its range as often as any stationary series reaches its 5 %
    quantile; a dip that stays within reach of where the run began is advisory there (said, the run stays
    healthy), and still evidence for ``policy_collapse`` and ``reward_corroborates``."""

    name = "reward_collapse"
    task_scaled = True
    _state_fields = ("tail", "down", "first_down", "start", "origin", "top", "top_at", "updates")
    _window_fields = ("values", "changes")

    def __init__(self, cfg: RewardCollapseConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.signals = (cfg.signal,)
        self.values = LaggedWindow(cfg.baseline_iters, cfg.horizon_iters)
        self.changes = SortedWindow(cfg.baseline_points)
        self.tail: deque[float] = deque(maxlen=cfg.horizon_points + 1)
        self.down = 0
        self.first_down: int | None = None
        self.start: tuple[float, float] | None = None  # (median, 5-95 % range) of the first window judged
        # (level, wander) where the run began when it climbed through its first judged window (else the start's)
        self.origin: tuple[float, float] | None = None
        self.top: float | None = None  # the last level it rose to, and the point it did
        self.top_at = 0
        self.updates: deque[tuple[int, float]] = deque(maxlen=SPARSE_UPDATES)  # its last changes: (point, change)

    def _check(self, record, values, judging):
        value = values[self.cfg.signal]
        last = self.tail[-1] if self.tail else None  # the value before this one
        self.tail.append(value)
        if value != last:
            if last is not None:
                self.updates.append((self.points, value - last))
            if last is None or value > last:
                self.top, self.top_at = value, self.points  # a fall is measured from the last level it rose to
        window = self.values.window
        verdict = None
        if judging and len(window) >= max(self.warmup.baseline_points, 2 * self.cfg.horizon_points + 2):
            verdict = self._judge(record, value, window)
        if verdict is None and self.down == 0:  # a collapse does not teach the baseline what normal is
            self.values.push(record.iteration, value)
            # a change of exactly 0 is a logged value that was not updated (a mean over past episodes
            # when none ended: rl_games, SB3), not a steady reward: it would shrink the noise scale
            if len(self.tail) > self.cfg.horizon_points and value != self.tail[0]:
                self.changes.push(value - self.tail[0])
        return verdict

    def _judge(self, record: MetricRecord, value: float, window: SortedWindow) -> Verdict | None:
        center = window.median()
        scale = self.changes.sigma() if len(self.changes) >= 3 else 0.0
        spread = window.quantile(0.95) - window.quantile(0.05)
        if self.start is None:
            self.start = (center, spread)
            self.origin = _origin(list(window.fifo))
        limit = max(self.cfg.drop_sigmas * scale, self.cfg.min_rel_drop * spread)
        updates = self.updates
        staircase = self.top > center and (len(updates) < SPARSE_UPDATES  # changed too rarely for a scale
                                           or self.points - updates[0][0] > self.cfg.baseline_points)
        if staircase:
            # its changes are the run's learning steps, not noise, so there is no scale to read: a fall from
            # the last level it rose to, by half its range and half of what it had gained, and by more than
            # any fall it came back from (a noisy staircase's own steps down), is a collapse
            top_at = self.top_at
            came_back = max((-c for at, c in updates if c < 0 and at < top_at), default=0.0)
            center = self.top
            limit = max(self.cfg.min_rel_drop * max(spread, center - self.start[0]), came_back)
        elif value < window.sorted[-1] - limit:  # else no level in the window is far enough above it: skipped
            # a run that climbed through the window has its median half-way up the climb: a fall from its top
            # to nothing reads as only half the window's range below the median. Where it stood just before
            # the lag is its level then, for a fall that also loses half of what it gained since judging began
            recent = self._recent_level()
            if recent > center and recent - value >= self.cfg.min_rel_drop * (recent - self.start[0]):
                center = recent
        drop = center - value
        if not self._held(record, limit > 0 and drop > limit):
            return None
        climbed = self.origin is not None
        origin, wander = self.origin if climbed else self.start
        # what there was to lose: a level gained since the run began, or where it began itself
        standing = center - origin > self.cfg.min_gain * wander or value < origin - self.cfg.min_gain * wander
        verdict = self._verdict(
            record, "warning", self.cfg.signal, value, center - limit,
            f"reward {value:.3g} fell {drop:.3g} below "
            + (f"{center:.3g}, the last level it rose to, for {self.down} points (it changed "
               f"{sum(self.points - at < self.cfg.baseline_points for at, _ in self.updates)} times in its last "
               f"{self.cfg.baseline_points} points, too rarely for a noise scale; the limit, {limit:.3g}, is "
               f"{self.cfg.min_rel_drop:g} of its range or of its gain, or a fall it came back from)" if staircase else
               f"its recent median {center:.3g} for {self.down} points ("
               + (f"{_times(drop / scale)} robust sigmas of this run's changes)" if scale > 0 else
                  f"too few changes for a noise scale; the limit, {limit:.3g}, is {self.cfg.min_rel_drop:g} of its range)"))
            + ("" if standing else f"; nothing learned to lose, as far as the judged stretch shows: its level never "
                                   f"rose above where it began (median {origin:.3g}, "
                                   + ("the first quarter of its first judged window, which it climbed through) by "
                                      "the larger 5-95 % range of that window's first and last quarters" if climbed else
                                      "its first judged window) by that window's 5-95 % range")
                                   + f" ({wander:.3g}), nor fell below it by as much"),
            onset_hint=self.first_down,
        )
        verdict.advisory = not standing
        return verdict

    def _recent_level(self) -> float:
        """The median of the window's values from its newest ``horizon_iters`` iterations (at least three)."""
        times, fifo = self.values.times, self.values.window.fifo
        since, n, size = times[-1] - self.cfg.horizon_iters, 0, len(times)
        while n < size and (n < 3 or times[-1 - n] >= since):
            n += 1
        newest = sorted([fifo[-1 - i] for i in range(n)])
        return newest[n // 2] if n % 2 else (newest[n // 2 - 1] + newest[n // 2]) / 2


def _origin(values: list[float]) -> tuple[float, float] | None:
    """(level, wander) where a run began when it climbed through its first judged window (``values``, oldest
    first), else None (the window's median and 5-95 % range say it): a climb is the window's last quarter's
    5-95 % range wholly above its first quarter's (a stationary wander's quarters overlap; learning before
    judging began does not). The run began at the first quarter's median, and wanders by the larger of the
    two quarters' ranges, not by the climb. Quarters of fewer than 5 values settle nothing."""
    k = len(values) // 4
    if k < 5:
        return None
    first, last = sorted(values[:k]), sorted(values[-k:])
    if quantile(last, 0.05) <= quantile(first, 0.95):
        return None
    wander = max(quantile(first, 0.95) - quantile(first, 0.05), quantile(last, 0.95) - quantile(last, 0.05))
    return quantile(first, 0.5), wander


class EntropyCollapse(Detector):
    """The policy's entropy collapsing: below the 5 % quantile of its values over ``baseline_iters``
    (ending ``lag_iters`` back) by ``range_ratio`` times that window's 5-95 % width and by at least
    ``min_drop_nats``, for ``persist_points``. A steady decline (a policy getting surer as it learns)
    sits below the lagged window by a fraction of its width; a policy made near-deterministic by a few
    oversized updates falls by many widths. Entropy is in nats in every framework, so the floor is one
    number. Reads the framework's policy entropy, else OpenRL's ``dist_entropy``, else the policy's mean log-std
    (:meth:`_values`).

    Advisory: an entropy can fall for good reasons, so the run stays healthy and its stable
    checkpoints go on; the policy calls it divergence (``policy_collapse``) when the reward collapses
    too. The window stops learning while the entropy is down, so a collapse that stays is still one
    when the reward follows it down later.
    """

    name = "entropy_collapse"
    signals = (POLICY_ENTROPY, ENTROPY, LOG_STD_MEAN)  # the first one the run logs (``_values``)
    direction = -1  # falls; EntropySurge: rises
    _what = "fell {beyond:.3g} nats below its recent low {edge:.3g} (5 % quantile"
    _moved = "fell {moved:.3g} nats within {horizon} iterations"
    _meaning = "the policy is turning deterministic"
    _state_fields = ("signal", "down", "first_down", "fall_start", "move_start")
    _window_fields = ("values", "moves", "lows", "highs")

    def __init__(self, cfg: EntropyCollapseConfig | EntropySurgeConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.values = LaggedWindow(cfg.baseline_iters, cfg.lag_iters)
        self.down = 0
        self.first_down: int | None = None
        self.fall_start: int | None = None  # first point of the current stretch outside the window's range
        # the horizon rule (``horizon_iters``): the largest and (negated) smallest of value x direction over the last
        # horizon_iters iterations, and the largest move of each point over its horizon, in a window that joins and
        # leaves as ``values``
        horizon = cfg.horizon_iters or 0
        self.highs = LaggedMax(horizon, 0)
        self.lows = LaggedMax(horizon, 0)  # of -(value x direction): its joined points, the candidate lows
        self.moves = LaggedMax(cfg.baseline_iters, cfg.lag_iters)
        self.move_start: int | None = None  # where the streak's move began (the extreme it left)
        self.signal: str | None = None  # the one of ``signals`` this run logs (the first it logged)

    def _values(self, record: MetricRecord) -> dict[str, float] | None:
        """The run's policy entropy, else its mean log-std (a Gaussian policy's entropy per action dimension, up to
        a constant: skrl logs no entropy where its entropy loss scale is 0, Isaac Lab's locomotion setting). The
        first of them the run logged is the one judged for the rest of it: a window never mixes the two (skrl starts
        logging the entropy when its scale turns non-zero)."""
        metrics = record.metrics
        if self.signal is not None:
            value = metrics.get(self.signal)
            return None if value is None else {self.signal: value}
        for signal in self.signals:
            value = metrics.get(signal)
            if value is not None:
                self.signal = signal
                return {signal: value}
        return None

    def _check(self, record, values, judging):
        (signal, value), = values.items()
        window = self.values.window
        move = None if self.cfg.horizon_iters is None else self._move(record.iteration, value)
        verdict = None
        if judging and self.values.ready(self.warmup.baseline_points):
            verdict = self._judge(record, signal, value, window, move)
        if self.down == 0:  # a collapse does not teach the window what normal is
            self.values.push(record.iteration, value)
            if move is not None:
                self.moves.push(record.iteration, move[1])
        return verdict

    def _move(self, iteration: int, value: float) -> tuple[float, float]:
        """(how far the entropy moved this way from its extreme of the last ``horizon_iters`` iterations, in nats;
        the larger of that and its move the other way: how fast it moves)."""
        y = value * self.direction
        self.lows.push(iteration, -y)
        self.highs.push(iteration, y)
        move = y + self.lows.max()
        return move, max(move, self.highs.max() - y)

    def _rise_start(self, move: float) -> int:
        """Where a move of ``move`` began: the newest point of the horizon still within a tenth of the move of its
        extreme (on a flat, noisy stretch the extreme itself may lie anywhere in it)."""
        lows = self.lows.joined  # (iteration, -y), the lowest first, each later one higher
        low = -lows[0][1]
        return next(it for it, neg in reversed(lows) if -neg - low <= 0.1 * move)

    def _judge(self, record: MetricRecord, signal: str, value: float, window: SortedWindow,
               move: tuple[float, float] | None) -> Verdict | None:
        low, high = window.quantile(0.05), window.quantile(0.95)
        width = high - low
        edge = low if self.direction < 0 else high  # the side of the recent range it leaves by
        beyond = (value - edge) * self.direction  # how far outside it, in nats (exact: a sign flip)
        limit = max(self.cfg.range_ratio * width, self.cfg.min_drop_nats)
        if beyond <= 0:
            self.fall_start = None
        elif self.fall_start is None:
            self.fall_start = record.iteration
        outside = limit > 0 and beyond > limit
        # the horizon rule: a move this way within horizon_iters, several times the most the run moved either way
        # within as long over its window (PPO's trust region bounds the pace of a healthy policy's entropy)
        top = self.moves.max() if move is not None else None
        sudden = (top is not None and move[0] > max(self.cfg.horizon_ratio * top, self.cfg.min_drop_nats)
                  and not outside)
        if not self._held(record, outside or sudden):
            if self.down == 0:
                self.move_start = None
            return None
        if self.move_start is None or self.down == 1:
            self.move_start = self._rise_start(move[0]) if sudden else None
        if not sudden:
            # the change began where the entropy last left its recent range, on its way out; a drift that
            # has sat outside the lagged window all along dates it no earlier than the window's lag
            onset = max(self.fall_start, self.first_down - self.cfg.lag_iters)
            what = (self._what.format(beyond=beyond, edge=edge) + f" of {self.cfg.baseline_iters} iterations; "
                    f"{_times(beyond / width if width > 0 else math.inf)}x their 5-95 % range)")
            threshold = edge + self.direction * limit
        else:
            onset = self.move_start
            hlimit = max(self.cfg.horizon_ratio * top, self.cfg.min_drop_nats)
            what = self._moved.format(moved=move[0], horizon=self.cfg.horizon_iters) + (
                f" ({_times(move[0] / top) if top > 0 else 'far more than'}x the most it rose or fell within as long "
                f"in its recent {self.cfg.baseline_iters} iterations, {top:.3g})")
            threshold = value - self.direction * (move[0] - hlimit)
        verdict = self._verdict(
            record, "warning", signal, value, threshold,
            f"{'policy log-std' if signal == LOG_STD_MEAN else 'policy entropy'} {value:.3g} {what} for {self.down} "
            f"points: {self._meaning}",
            onset_hint=onset,
        )
        verdict.advisory = True
        return verdict


class EntropySurge(EntropyCollapse):
    """The policy's entropy *rising* abruptly far above its recent range, by the same measure
    (``entropy_surge``; the same config fields): a Gaussian policy's std running away within a few
    updates (updates far outside PPO's trust region). A steady climb (MAPush's entropy bonus at work)
    sits above the lagged window by a fraction of its width, as a steady decline sits below it: the
    healthy runs here reach 0.88 of the rule, the learning-rate faults 2.5 to 17. Advisory; with a
    reward collapse, ``policy_collapse``."""

    name = "entropy_surge"
    direction = 1
    _what = "rose {beyond:.3g} nats above its recent high {edge:.3g} (95 % quantile"
    _moved = "rose {moved:.3g} nats within {horizon} iterations"
    _meaning = "the policy's noise is running away"


class KlSurge(Detector):
    """The policy's KL per update (``train/approx_kl``) at least ``ratio`` times the 95 % quantile of its
    values over ``baseline_iters`` (ending ``lag_iters`` back) and at least ``min_kl``, for
    ``persist_points``: updates far outside the trust region PPO keeps (a learning rate or an epoch
    count too large). Healthy runs here move their KL by up to 7.5x that quantile; the learning-rate
    faults by 200x and more.

    Advisory, as ``entropy_collapse`` is, and for the same reason: such updates can still help, so the
    policy calls it divergence (``policy_collapse``) only when the reward collapses too. A surge is one
    stretch: it ends when the KL has stayed below the limit for ``lag_iters``, and the window learns
    nothing from it.

    A KL at least ``alarm_kl`` nats for ``alarm_points`` updates in a row is an *alarm* on its own: the
    optimizer replaces the policy every update (PPO's usual targets are 0.01-0.05 nats). The healthy
    runs here hold it for at most one update (a single spike of 3 nats); the real learning-rate faults
    for 40-75 (SB3 Hopper and HalfCheetah), and for 2-4 where this rule misses them (SB3 MountainCar,
    CleanRL CartPole).
    """

    name = "kl_surge"
    signals = (APPROX_KL,)
    what = "policy KL per update"
    _state_fields = ("up", "first_up", "last_up", "confirmed", "runaway", "runaway_since")
    _window_fields = ("values",)

    def __init__(self, cfg: KlSurgeConfig, warmup: WarmupConfig):
        self._start(cfg, warmup, floor=cfg.min_kl, alarm_at=cfg.alarm_kl)

    def _start(self, cfg, warmup: WarmupConfig, *, floor: float, alarm_at: float | None) -> None:
        """``floor``: the least value a surge needs; ``alarm_at``: the value that is an alarm when held for
        ``cfg.alarm_points`` (None: no alarm)."""
        Detector.__init__(self, warmup)
        self.cfg = cfg
        self.floor, self.alarm_at = floor, alarm_at
        self.values = LaggedWindow(cfg.baseline_iters, cfg.lag_iters)
        self.up = 0  # points in a row above the limit
        self.first_up: int | None = None  # first point above it in the current stretch
        self.last_up: int | None = None  # ... and the last one
        self.confirmed = False  # the stretch held persist_points in a row
        self.runaway = 0  # points in a row at alarm_kl or more, after warm-up
        self.runaway_since: int | None = None

    def _size(self, value: float) -> float:
        return value

    def _check(self, record, values, judging):
        signal = self.signals[0]
        value = self._size(values[signal])
        window = self.values.window
        it = record.iteration
        # back in range for a lag: the stretch is over (judged below at a point in range: a run logged less often than
        # the lag, skrl's write_interval "auto", had every stretch ended at its next point, never 3 long, until session 19)
        judged = judging and self.values.ready(self.warmup.baseline_points)
        stale = self.last_up is not None and it - self.last_up > self.cfg.lag_iters
        if stale and (self.up == 0 or not judged):
            # (the points since were back in range: over, as on a densely logged run; a stretch whose previous point
            # was still above the limit goes on across the lag: a sparsely logged one's)
            self.up, self.first_up, self.last_up, self.confirmed = 0, None, None, False
            stale = False
        alarm_kl = self.alarm_at
        if (judging and alarm_kl is not None and value >= alarm_kl
                and (not judged or value >= self.cfg.alarm_range_ratio * window.quantile(0.95))):
            # beyond any trust region, and (once the run's own range is known) outside it: SB3's gSDE, whose std of
            # 0.02 makes its approx_kl 0.2-26 nats for hundreds of healthy updates, held 0.5 for 5 while its return
            # rose: three rollbacks and a stop until session 20
            self.runaway += 1
            self.runaway_since = it if self.runaway_since is None else self.runaway_since
        else:
            self.runaway, self.runaway_since = 0, None
        if alarm_kl is not None and self.runaway >= self.cfg.alarm_points:
            # part of the surge's stretch (whose values the window does not learn), which it keeps going
            self.first_up = self.runaway_since if self.first_up is None else self.first_up
            self.last_up = it
            onset = min(self.runaway_since, self.first_up)
            return self._verdict(
                record, "alarm", signal, value, alarm_kl,
                f"policy KL per update {value:.3g}, at least {alarm_kl:g} nats for {self.runaway} updates in a row "
                f"(since iteration {self.runaway_since}): the optimizer replaces the policy every update, far "
                "outside PPO's trust region (0.01-0.05)",
                onset_hint=onset,
            )
        verdict = None
        below = True  # (before the window is ready: nothing is a surge)
        if judged:
            top = window.quantile(0.95)
            limit = max(self.cfg.ratio * top, self.floor)
            below = value < limit or limit <= 0  # (a window of exact zeros, an actor not trained: no surge over it;
            # a surrogate loss of 0 counted as one until session 19, and with a reward dip made a policy_collapse)
            if below and stale:
                self.up, self.first_up, self.last_up, self.confirmed = 0, None, None, False
            elif below:
                self.up = 0
            else:
                self.up += 1
                self.last_up = it
                self.first_up = it if self.first_up is None else self.first_up
                self.confirmed = self.confirmed or self.up >= self.cfg.persist_points
            if self.confirmed:  # said through the stretch's dips: the surge is one event
                of_top = f"the top of its last {self.cfg.baseline_iters} iterations ({top:.3g})"
                if below:  # a dip inside the stretch: what the stretch did, not "0.02, 0x the top" (until session 26)
                    said = (f"{self.what} above {self.cfg.ratio:g}x {of_top} from iteration {self.first_up} to "
                            f"{self.last_up} ({value:.3g} now)")
                else:
                    said = (f"{self.what} {value:.3g}, {_times(value / top if top > 0 else math.inf)}x {of_top}; "
                            f"above {self.cfg.ratio:g}x of it since iteration {self.first_up}")
                verdict = self._verdict(record, "warning", signal, value, limit,
                                        f"{said}: updates far outside PPO's trust region", onset_hint=self.first_up)
                verdict.advisory = True
        if self.first_up is None or below:  # a surge's points do not teach the window what normal is; the points
            # between them do (until session 20 nothing in an open stretch did, and a run whose KL moved up to a new
            # regime with a spike every 20 updates kept the window of 100 iterations before: its range 0.12, its
            # ordinary 0.5-1.5 a runaway)
            self.values.push(it, value)
        return verdict


class SurrogateSurge(KlSurge):
    """PPO's surrogate (policy) loss, by its size, at least ``ratio`` times the 95 % quantile of its size
    over ``baseline_iters`` (ending ``lag_iters`` back) for ``persist_points``: ``kl_surge``'s surge on
    the trust-region signal that rsl_rl, skrl and OpenRL log (they log no KL). With normalised advantages
    the clipped surrogate stays small; ratios far beyond the clip on negative advantages blow it up. The
    healthy runs here never held 20x for two points in a row; 9 of the faulted runs for 3-31 from the
    fault (rsl_rl, rl_games, SB3 and skrl; a skrl run that went NaN for 2 before it). Advisory, one stretch per
    surge as ``kl_surge``'s, and no alarm of its own."""

    name = "surrogate_surge"
    signals = (POLICY_LOSS,)
    what = "surrogate (policy) loss, by size,"

    def __init__(self, cfg: SurrogateSurgeConfig, warmup: WarmupConfig):
        self._start(cfg, warmup, floor=0.0, alarm_at=None)

    def _size(self, value: float) -> float:
        return abs(value)


class PolicyStd(Detector):
    """The policy's log-std climbing towards float32 overflow: how many iterations until NaN.

    Reads ``train/log_std_max`` when the run reports it (live training does), else ``train/log_std_mean``
    (the log of the mean std, what SB3, rsl_rl and skrl log), else the mean log-std per action dimension
    from ``train/dist_entropy`` (what OpenRL logs): the last two are lower bounds on the largest, and the
    warning says which it read (until session 16 a framework's mean std was read as the largest).
    The climb rate is a least-squares slope over the last ``rate_points`` points, per iteration. The
    warning is said once, when the overflow comes within ``warn_within_iters``: a forecast about the
    run, not a state to stay in (a standing warning would stop the stable checkpoints for hundreds of
    iterations), so it is advisory: the run stays healthy, and is not said to have "recovered" while
    its std still climbs (until session 16 it was, ``policy.recover_points`` records later). The alarm fires
    on every point within ``alarm_within_iters``.
    """

    name = "policy_std"
    _state_fields = ("history", "warn_since", "saturated_since", "warned")

    def __init__(self, cfg: PolicyStdConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.history: deque[tuple[int, float]] = deque(maxlen=cfg.rate_points)
        self.warn_since: int | None = None  # first iteration of the current stretch inside the warning horizon
        self.saturated_since: int | None = None  # ... of the current stretch above saturated_log_std
        self.warned = False  # the current stretch's warning has been said
        # derived, not state: the history's log-stds, and how many of its newest points are at least an iteration
        # apart, in order (the slope's bound below holds for those; a rollback's earlier iterations break it)
        self._ys: deque[float] = deque(maxlen=cfg.rate_points)
        self._ordered = 0
        self._bound = 0.5 * math.sqrt(12.0 / (cfg.rate_points ** 2 - 1))

    def reads(self) -> tuple[str, ...]:
        return (LOG_STD_MAX, LOG_STD_MEAN, ENTROPY)

    def _values(self, record: MetricRecord) -> dict[str, float] | None:
        """``{signal: log-std}``: the exact maximum, else the log of the mean std, else the mean per dimension
        from the entropy."""
        for key in (LOG_STD_MAX, LOG_STD_MEAN):
            value = record.metrics.get(key)
            if value is not None:
                return {key: value}
        entropy = record.metrics.get(ENTROPY)
        if entropy is None:
            return None
        dims = self.cfg.action_dims
        return {ENTROPY: (entropy - dims * GAUSSIAN_ENTROPY_PER_DIM) / dims}

    def _check(self, record, values, judging):
        (signal, log_std), = values.items()
        history = self.history
        self._ordered = self._ordered + 1 if history and record.iteration >= history[-1][0] + 1 else 1
        history.append((record.iteration, log_std))
        self._ys.append(log_std)
        if log_std <= self.cfg.saturated_log_std:
            self.saturated_since = None
        elif self.saturated_since is None:
            self.saturated_since = record.iteration
        if len(history) < self.cfg.rate_points:
            return None
        headroom = self.cfg.overflow_log_std - log_std
        if self.warn_since is None and headroom > 0 and self._ordered >= len(history):
            # most records: the slope cannot put the overflow within twice the horizon. For n points at least an
            # iteration apart, |slope| <= (max - min of the log-stds) / 2 * sqrt(12 / (n^2 - 1)) (the residuals
            # from the mid-range are at most half the range; Cauchy-Schwarz; n distinct integers spread at least
            # as consecutive ones), so the fit is skipped where it could only say "not within the horizon"
            ys = self._ys
            if (max(ys) - min(ys)) * self._bound * self.cfg.warn_within_iters < 0.5 * headroom:
                self.warned = False
                return None
        rate = _slope(history)  # log-std per iteration
        if rate is None:
            return None
        eta = 0.0 if headroom <= 0 else headroom / rate if rate > 0 else math.inf  # iterations to overflow
        eta = round(eta, 6)  # a slope summed in floating point must not miss an exact horizon
        # hysteresis: a standing warning ends only well outside the horizon, not on every wobble of the rate
        limit = self.cfg.warn_within_iters * (1.0 if self.warn_since is None else 1.5)
        if eta > limit:
            self.warn_since, self.warned = None, False
            return None
        if self.warn_since is None:
            self.warn_since = record.iteration
        if not judging:
            return None
        level: Level = "alarm" if eta <= self.cfg.alarm_within_iters else "warning"
        if level == "warning" and self.warned:
            return None
        self.warned = True
        what = {LOG_STD_MAX: "largest log-std", LOG_STD_MEAN: "log of the mean std"}.get(
            signal, f"mean log-std over {self.cfg.action_dims} action dims")
        verdict = self._verdict(
            record, level, signal, log_std, self.cfg.overflow_log_std,
            f"policy {what} {log_std:.1f} (std {math.exp(min(log_std, 700)):.2g}) climbing {rate:+.3f}/iteration: "
            f"float32 log-probs overflow at {self.cfg.overflow_log_std:g}, NaN in about {eta:.0f} iterations "
            "(the entropy bonus outweighs the reward's pull on the std; lower lr or entropy_coef)",
            onset_hint=self.saturated_since if self.saturated_since is not None else self.warn_since,
        )
        verdict.advisory = level == "warning"  # a forecast: its own alarm follows if it comes true
        return verdict

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)  # (the history as a deque of rate_points, its pairs as saved)
        self._ys = deque((y for _, y in self.history), maxlen=self.cfg.rate_points)
        self._ordered = 0  # not known: the fit runs until rate_points ordered points have come


def _slope_se(points, slope: float) -> float:
    """The standard error of ``slope``, the least-squares slope of (x, y) pairs (distinct x, 3 or more points)."""
    n = len(points)
    xs, ys = zip(*points)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum([(x - mx) ** 2 for x in xs])
    sse = sum([(y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys)])
    return math.sqrt(sse / max(n - 2, 1) / sxx) if sxx > 0 else math.inf


def _slope(points) -> float | None:
    """Least-squares slope of (x, y) pairs; None when all x are equal."""
    n = len(points)
    xs, ys = zip(*points)  # the same sums, term by term and in the same order, as over the pairs
    mx = sum(xs) / n
    my = sum(ys) / n
    dx = [x - mx for x in xs]
    sxx = sum([d ** 2 for d in dx])
    if sxx <= 0:
        return None
    return sum([d * (y - my) for d, y in zip(dx, ys)]) / sxx


class NonFinite(Detector):
    """Any NaN/Inf in a tracked metric is immediate divergence, warm-up or not.

    Except a policy std that has never been a number in this run: a policy without one (skrl logs torch's
    ``Categorical.stddev``, NaN, as ``Policy / Standard deviation`` at every write) logs no std. Until session 20
    every skrl run with a discrete action space was a NaN alarm at its first update and stopped (live and in
    replay). Once the std has been finite, a NaN one is divergence again.
    """

    name = "nonfinite"
    _state_fields = ("std_seen",)

    def __init__(self, cfg: NonFiniteConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.std_seen = False  # a policy std has been finite in this run

    def reads(self) -> tuple[str, ...]:
        return TRACKED_KEYS

    def bad_keys(self, record: MetricRecord) -> list[str]:
        """The record's non-finite tracked keys that are divergence (in order); notes a finite policy std."""
        metrics = record.metrics
        if not self.std_seen:
            self.std_seen = any(isinstance(metrics.get(k), float) and math.isfinite(metrics[k]) for k in POLICY_STD_KEYS)
        if record.surely_finite():  # most records: one sum instead of a look at each tracked key
            return []
        bad = record.nonfinite_keys()
        return bad if self.std_seen else [k for k in bad if k not in POLICY_STD_KEYS]

    def update(self, record: MetricRecord) -> Verdict | None:
        metrics = record.metrics
        bad = self.bad_keys(record)
        if not bad:
            return None
        key = bad[0]
        return self._verdict(
            record, "alarm", key, metrics[key], 0.0,
            f"non-finite {key} = {metrics[key]}" + (f" (also: {', '.join(bad[1:])})" if bad[1:] else ""),
            onset_hint=record.iteration,
        )


def build_detectors(cfg: WatchdogConfig) -> list[Detector]:
    """The enabled detectors, in a fixed order (their names are stable keys in saved state)."""
    found: list[Detector] = []
    if cfg.nonfinite.enabled:
        found.append(NonFinite(cfg.nonfinite, cfg.warmup))
    if cfg.value_loss.enabled:
        found.append(ValueLossThreshold(cfg.value_loss, cfg.warmup))
    if cfg.blowup.enabled:
        found.extend(BlowUp(cfg.blowup, cfg.warmup, s) for s in cfg.blowup.signals)
    if cfg.trend.enabled:
        found.extend(TrendCusum(cfg.trend, cfg.warmup, s) for s in cfg.trend.signals)
    for section, kind in (("critic_grad_norm", CriticGradNorm), ("reward_collapse", RewardCollapse),
                          ("entropy_collapse", EntropyCollapse), ("entropy_surge", EntropySurge),
                          ("kl_surge", KlSurge), ("surrogate_surge", SurrogateSurge), ("policy_std", PolicyStd), ("memory", MemoryForecast),
                          ("throughput", Throughput)):
        sub = getattr(cfg, section)
        if sub.enabled:
            found.append(kind(sub, cfg.warmup))
    return found


def detector_key(det: Detector) -> str:
    """A unique, stable name for a detector instance (per-signal detectors carry their signal)."""
    return f"{det.name}:{det.signal}" if isinstance(det, (TrendCusum, BlowUp)) else det.name


# --- resources: the machine, not the learning (watchdog.resources) ---------------------------------
# Their verdicts are about ``sys/*`` signals, which the policy handles on their own channel: a
# resource alarm never rolls back weights (that frees no leaked memory). Their state describes this
# process on this machine, so it is not saved: a rollback leaves it as it is (memory does not roll
# back), and a resumed process warms up and learns it again (its memory starts over).

from watchdog.config import MemoryConfig, ThroughputConfig  # noqa: E402  (kept with the classes below)
from watchdog.signals import (HELD_BY_SIGNAL, MEMORY_LIMITS, SYS_CUDA_RESERVED_MB, SYS_RSS_MB,  # noqa: E402
                              SYS_STEPS_PER_S)


STAIR_SAMPLES, STAIR_STEPS, STAIR_RECENT = 12, 3, 4  # MemoryForecast._staircase: levels kept, rises needed, recent


MEMORY_T = 3.0  # standard errors a memory climb must stand above its own jitter (MemoryForecast._climb)


class MemoryForecast(Detector):
    """Memory climbing towards its limit: how many iterations until out-of-memory.

    For each memory signal the records carry (``sys/cuda_reserved_mb``, ``sys/rss_mb``), a climb over
    the last ``window_points`` points after warm-up (throughout: :meth:`_climb`; a step is no leak),
    and the limit the configured one, else the device's total / the machine's memory from the record.
    A climb smaller than ``min_climb_mb`` over the window is noise, so a run whose memory is flat
    after warm-up never triggers; a run already above its limit is an alarm at once.

    The climb is fitted to the memory less what the watchdog's own in-memory checkpoint copies hold
    (``sys/watchdog_host_mb`` / ``sys/watchdog_cuda_mb``, when the record has them): those grow by design
    up to retention's bound and are not a leak. The headroom is the real memory's.
    """

    name = "memory"
    process_scaled = True

    def __init__(self, cfg: MemoryConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.seen = 0  # points this process judged (its own warm-up: start-up allocations are not a leak)
        self.limits = {SYS_CUDA_RESERVED_MB: cfg.cuda_limit_mb, SYS_RSS_MB: cfg.rss_limit_mb}
        self.history: dict[str, list[list[float]]] = {}  # signal -> [[iteration, MiB], ...] (plain: saveable)
        self.warn_since: dict[str, int] = {}  # signal -> first iteration of its current warning stretch
        # signal -> [[iteration, level], ...]: the newest third's median every third of a window (a staircase's steps)
        self.stairs: dict[str, list[list[float]]] = {}

    def reads(self) -> tuple[str, ...]:
        return tuple(s for s, _ in MEMORY_LIMITS)  # the limits (and held copies) in a record matter only with these

    def _values(self, record: MetricRecord) -> dict[str, float] | None:
        """The memory signals present whose limit is known (configured, or in the record)."""
        metrics, found = record.metrics, None
        for s, total in MEMORY_LIMITS:  # (a loop, not a comprehension: most records carry neither)
            if s in metrics and (self.limits[s] is not None or total in metrics):
                found = found or {}
                found[s] = metrics[s]
        return found

    def _check(self, record, values, judging):
        self.seen += 1
        if self.seen <= self.cfg.warmup_points:  # the climb is fitted from warm-up on
            return None
        verdicts = [self._forecast(record, s, used) for s, used in values.items()]
        verdicts = [v for v in verdicts if v is not None]
        return next((v for v in verdicts if v.level == "alarm"), verdicts[0] if verdicts else None)

    def _forecast(self, record: MetricRecord, signal: str, used: float) -> Verdict | None:
        held = record.metrics.get(HELD_BY_SIGNAL[signal], 0.0)
        held = held if math.isfinite(held) and held > 0 else 0.0
        history = self.history.setdefault(signal, [])
        history.append([record.iteration, used - held])  # the climb of what is not the watchdog's own copies
        del history[: -self.cfg.window_points]
        limit = self.limits[signal] or record.metrics[dict(MEMORY_LIMITS)[signal]]
        headroom = limit - used
        rate = self._climb(history) if headroom > 0 else 0.0
        if rate is None:  # too few points to tell a climb from a step
            return None
        stairs = False  # a staircase: said, never acted on (a buffer that filled in steps looks alike)
        if rate == 0 and headroom > 0:
            rate = self._staircase(signal, history)
            stairs = rate > 0
        eta = 0.0 if headroom <= 0 else headroom / rate if rate > 0 else math.inf
        # hysteresis: a standing warning ends only well outside the horizon
        horizon = self.cfg.warn_within_iters * (1.0 if signal not in self.warn_since else 1.5)
        if eta > horizon:
            self.warn_since.pop(signal, None)
            return None
        self.warn_since.setdefault(signal, record.iteration)
        level: Level = "alarm" if eta <= self.cfg.alarm_within_iters and not stairs else "warning"
        what = "CUDA memory reserved by torch" if signal == SYS_CUDA_RESERVED_MB else "resident memory"
        cause = ("already above it" if headroom <= 0 else
                 f"climbing {rate:+.1f} MiB/iteration{' in steps' if stairs else ''}: out of memory in about "
                 f"{eta:.0f} iterations" + (" (a warning only: a buffer that filled in steps and stops looks alike)"
                                            if stairs else ""))
        if held >= 0.5:  # (it said "the watchdog's own 0 MiB" on nearly every verdict until session 20)
            cause += f" (the watchdog's own {held:.0f} MiB of checkpoint copies left out of the climb)"
        return self._verdict(
            record, level, signal, used, limit,
            f"{what} {used:.0f} MiB of a {limit:.0f} MiB limit, {cause} (a leak: tensors or arrays kept across "
            "iterations, a growing buffer or list; a restart from a checkpoint frees it, a rollback does not)",
            onset_hint=self.warn_since[signal],
        )

    @property
    def _third(self) -> int:
        """The points of a window's newest third (at least 2: a slope needs them)."""
        return max(2, self.cfg.window_points // 3)

    def _climb(self, history: list[list[float]]) -> float | None:
        """MiB per iteration the memory is climbing now (0: not climbing), None until the window holds two
        thirds of its points (``2 x window_points // 3``).

        A leak climbs over the whole window: the window's older two thirds and its newest third (sharing a point)
        must each climb at a third of the window's rate or more. A one-off allocation (a cache, a buffer filled
        once, a bigger batch) is a step: flat on one side of it, so it never reads as a climb; nor does a buffer
        that filled up and stopped. The rate is the newest third's: a leak that began or sped up inside the
        window is forecast at its present speed. (Until session 20 one least-squares slope over the window read a
        1 GiB step, flat before and after it, as +46 MiB/iteration: a warning, and an alarm that stopped a healthy
        run where 2.4 GiB were left, restarted and stopped again by `watchdog run` until its budget was spent;
        and a leak that began inside the window was forecast 8-17x too slow.)"""
        third = self._third
        if len(history) < max(third + 1, 2 * self.cfg.window_points // 3) or history[-1][0] <= history[0][0]:
            return None
        rate = _slope(history)  # MiB per iteration (x distinct: checked above)
        if rate is None or rate <= 0 or rate * (history[-1][0] - history[0][0]) < self.cfg.min_climb_mb:
            return 0.0
        older, newest = history[: len(history) - third + 1], history[-third:]
        rates = [_slope(part) if part[-1][0] > part[0][0] else None for part in (older, newest)]
        if any(r is None or r < rate / 3 for r in rates):
            return 0.0
        # the memory's own jitter (an allocator's, a data loader's): the window's climb must stand MEMORY_T standard
        # errors above none, and the forecast is the window's rate unless the newest third's is above it by more than
        # MEMORY_T standard errors of their difference (a leak that sped up). A flat but noisy memory near its limit
        # read +2-10 MiB/iteration from the newest third's 10 points alone: 58 warnings and an alarm, a stop, in
        # 3,000 iterations of a healthy run at 7,500 of 8,000 MiB (+-30 MiB; a review, session 29). Without jitter
        # the rates are as before: the newest third's where it climbs faster, else the same as the window's.
        se = _slope_se(history, rate)
        if rate <= MEMORY_T * se:
            return 0.0
        return rates[1] if rates[1] - rate > MEMORY_T * math.hypot(se, _slope_se(newest, rates[1])) else rate

    def _staircase(self, signal: str, history: list[list[float]]) -> float:
        """MiB per iteration of a leak that climbs in steps further apart than a third of the window (CUDA memory
        reserved in segments, a snapshot appended to a list every N iterations), which :meth:`_climb` reads as separate
        steps: over the last ``STAIR_SAMPLES`` levels (the newest third's median, one every third of a window), at
        least ``STAIR_STEPS`` rises of ``min_climb_mb`` / 3 or more, none as large a fall, the newest rise among the
        last ``STAIR_RECENT`` levels (a buffer that filled up and stopped is no leak), and the rise over them
        ``min_climb_mb`` or more; the rate is that rise over its span. 0: no staircase. (A review of session 20:
        +64 MiB every 32 iterations was killed unwarned, where one slope over the window had warned.)"""
        third = self._third
        stairs = self.stairs.setdefault(signal, [])
        if not stairs or history[-1][0] - stairs[-1][0] > history[-1][0] - history[-third][0]:  # a third of a window on
            stairs.append([history[-1][0], statistics.median(h[1] for h in history[-third:])])
            del stairs[:-STAIR_SAMPLES]
        if len(stairs) < STAIR_STEPS + 1:
            return 0.0
        small = self.cfg.min_climb_mb / 3
        moves = [b[1] - a[1] for a, b in zip(stairs, stairs[1:])]
        if any(d <= -small for d in moves):
            return 0.0
        steps: list[list[float]] = []  # [last move's index, size]: rises in a row are one step (a level taken while a
        for i, d in enumerate(moves):  # step sat mid-window is half of it, and its next level the other half)
            if d < small:
                continue
            if steps and steps[-1][0] == i - 1:
                steps[-1] = [i, steps[-1][1] + d]
            else:
                steps.append([i, d])
        rise, span = stairs[-1][1] - stairs[0][1], stairs[-1][0] - stairs[0][0]
        if (len(steps) < STAIR_STEPS or steps[-1][0] < len(moves) - STAIR_RECENT
                or steps[-1][1] < rise / (2 * len(steps))):  # the newest a step like the others, not a bump after one
            return 0.0
        return rise / span if rise >= self.cfg.min_climb_mb and span > 0 else 0.0


class Throughput(Detector):
    """Env steps per second below ``drop_fraction`` of the run's settled rate for ``patience_points``.

    The settled rate is the highest median of ``baseline_points`` consecutive not-low points the run
    has had, so a slow slide (thermal throttling, fragmentation) is caught as well as a sudden drop.
    """

    name = "throughput"
    signals = (SYS_STEPS_PER_S,)
    # a restarted process's machine, a switched config, and a task that took a staged step (a shorter rollout, harder
    # terrain) run at their own speed (the last was warned about as the hardware's fault until session 20)
    process_scaled = config_scaled = task_scaled = True

    def __init__(self, cfg: ThroughputConfig, warmup: WarmupConfig):
        super().__init__(warmup)
        self.cfg = cfg
        self.seen = 0  # points this process judged (start-up and first compilations are slow)
        self.baseline: list[float] = []
        self.settled: float | None = None
        self.low = 0
        self.first_low: int | None = None

    def _check(self, record, values, judging):
        rate = values[SYS_STEPS_PER_S]
        self.seen += 1
        if self.seen <= self.cfg.warmup_points:
            return None
        floor = None if self.settled is None else self.cfg.drop_fraction * self.settled
        if floor is None or rate >= floor:
            self.baseline = [*self.baseline, rate][-self.cfg.baseline_points:]
            if len(self.baseline) == self.cfg.baseline_points:
                self.settled = max(self.settled or 0.0, statistics.median(self.baseline))
            self.low, self.first_low = 0, None
            return None
        self.low += 1
        self.first_low = record.iteration if self.first_low is None else self.first_low
        if self.low < self.cfg.patience_points:
            return None
        return self._verdict(
            record, "warning", SYS_STEPS_PER_S, rate, floor,
            f"throughput {rate:.4g} env steps/s, below {self.cfg.drop_fraction:g} x this run's settled "
            f"{self.settled:.4g} for {self.low} points (thermal throttling, memory fragmentation or swapping, a "
            "leaking buffer, a competing process; check the GPU's clocks and temperature and the host's load)",
            onset_hint=self.first_low,
        )
