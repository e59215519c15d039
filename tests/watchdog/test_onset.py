"""The onset fit on the shapes it has a model for, each for the reason stated in watchdog.onset."""

import math

import numpy as np
import pytest

from watchdog.onset import estimate_onset

ONSET = 300


def series(shape: str, *, drift: float = 0.0, seed: int = 0, end: int = 420, every: int = 1):
    """log value loss: noise (sd 0.15) around a level drifting by ``drift`` per iteration, then ``shape``."""
    rng = np.random.default_rng(seed)
    t = np.arange(200, end, every)
    y = -4.0 + drift * (t - 200) + rng.normal(0.0, 0.15, len(t))
    d = np.maximum(t - ONSET, 0)
    if shape == "exp":  # 100x in 250 iterations
        y = y + math.log(100.0) * d / 250
    elif shape == "step":
        y = y + math.log(10.0) * (t >= ONSET)
    elif shape == "swings":  # growing oscillations: 3x up and down every 16 iterations, a slow rise
        y = y + np.where(t >= ONSET, math.log(3.0) * np.sin(2 * math.pi * d / 16) + math.log(100.0) * d / 250, 0.0)
    return t, y


@pytest.mark.parametrize("seed", range(5))
def test_slow_climb_from_a_still_falling_loss_is_not_dated_late(seed):
    """A flat baseline would meet a slow climb that starts from a falling level late; the bend's slope does not."""
    t, y = series("exp", drift=-0.004, seed=seed)
    onset = estimate_onset(t, y, fallback=400)
    assert onset.method == "hinge" and abs(onset.iteration - ONSET) <= 12
    assert onset.low <= ONSET <= onset.high + 5


@pytest.mark.parametrize("every", [1, 5])
def test_a_jump_is_dated_at_the_jump(every):
    t, y = series("step", seed=1, every=every, end=340)
    onset = estimate_onset(t, y, fallback=330)
    assert ONSET <= onset.iteration <= ONSET + every and onset.method == "hinge"


@pytest.mark.parametrize("seed", range(3))
def test_growing_swings_are_dated_where_the_spread_changed(seed):
    """The mean has hardly moved when swings of 3x begin; the change in noise dates them."""
    t, y = series("swings", seed=seed, end=380)
    onset = estimate_onset(t, y, fallback=370)
    assert abs(onset.iteration - ONSET) <= 5


def test_noise_alone_gives_the_fallback():
    t, y = series("none", seed=3)
    assert estimate_onset(t, y, fallback=410).method == "fallback"


def test_a_divergence_after_a_rollback_is_dated_on_the_trajectory_that_went_on_from_it():
    """The recorded run goes on diverging after a (virtual) rollback, as a replay feeds it: the next alarm's
    onset fit must neither read the abandoned stretch as history nor reach back to the run's first
    iterations (a real skrl Hopper replay rolled back to iteration 0 that way). It is dated at the restore
    point at the earliest, and then that checkpoint is the target again (at the next rollback's learning
    rates)."""
    from tests.watchdog.drive import drive
    from watchdog.signals import MetricRecord

    rng = np.random.default_rng(5)
    def loss(it: int) -> float:  # starts high and settles (the early dynamics a long fit window finds), then climbs
        base = 0.02 + 0.5 * math.exp(-it / 8)
        return (base if it < 200 else 0.02 * math.exp((it - 200) / 6)) * math.exp(rng.normal(0, 0.1))

    out = drive([MetricRecord.from_mapping(it, it * 64, {"value_loss": loss(it)}) for it in range(260)])
    first, *later = out.rollbacks
    assert 185 <= first.target.iteration < 200 <= first.onset.iteration + 5
    assert later, "the recorded climb goes on after the rollback: it alarms again"
    for rb in later:
        assert rb.onset.iteration >= first.target.iteration and rb.target.iteration == first.target.iteration, rb
    history = [r.iteration for r in out.watchdog.history]
    assert history == sorted(history) and not set(range(first.target.iteration + 1, first.from_iteration + 1)) & set(history)
