"""Deterministic fault injection, so a divergence (and the watchdog's answer) can be produced on demand.

Spec grammar, one fault per spec (``--inject`` is repeatable)::

    KIND@START[-END][:VALUE]

    reward_scale@30-34:50   rewards x50 during iterations 30..34 (inclusive); without -END from START on
    nan@40                  one batch of NaN observations/rewards at iteration 40 (no VALUE, no END)
    lr_spike@25:20          learning rates x20 once at iteration 25; lasts until a config switch sets lr
    obs_noise@10-19:0.5     Gaussian observation noise, std 0.5, during iterations 10..19
    crash@7                 raise a RuntimeError (not a numeric failure) at iteration 7: a rank that dies
    mem_leak@20:64          from iteration 20 on, hold on to 64 MiB more each iteration (tensors on the
                            training's device: host RSS on CPU, torch's CUDA allocator on a GPU); default 64
    slow@30-40:3            iterations 30..40 take 3x as long (a sleep of 2x the previous iteration's own
                            work at their start: throttling, a competing process); default factor 2

Distributed runs (torchrun) take an optional rank filter as a suffix::

    KIND@START[-END][:VALUE][/rank=R]

    nan@5/rank=1            NaN batch on rank 1 only; a spec without /rank=R applies on every rank

In a single-process run the process is rank 0; a filter naming a rank >= the world size is an error.

Iterations are the monotonic count of iterations actually run, rolled-back ones included, so a
transient fault does not recur after a rollback.

The schedule only sets knobs; the env applies them. It writes exactly ``env.reward_scale``
(float, 1.0 = off), ``env.obs_noise_std`` (float, 0.0 = off) and ``env.nan_next_step`` (bool, the
env clears it after one step), and calls ``scale_learning_rates`` for ``lr_spike``. The resource
faults act on the process itself: ``mem_leak`` keeps tensors in the schedule (freed only when the
process ends, as a real leak is), ``slow`` sleeps.

An injected fault is one incident in one process: ``openrl_ws/train.py`` drops every ``--inject``
in an attempt that ``watchdog run`` restarted (``WATCHDOG_RESTART`` in its environment), so a test
sees the recovery instead of the same incident again.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openrl_ws.live_config import scale_learning_rates
from watchdog.errors import ConfigError
from watchdog.supervise import RESTART_ENV

log = logging.getLogger(__name__)

KINDS = ("reward_scale", "nan", "lr_spike", "obs_noise", "crash", "mem_leak", "slow")
GRAMMAR = "KIND@START[-END][:VALUE][/rank=R] with KIND one of " + ", ".join(KINDS) + ", e.g. reward_scale@30-34:50"
_SPEC = re.compile(r"^(?P<kind>[a-z_]+)@(?P<start>\d+)(?:-(?P<end>\d+))?(?::(?P<value>[^:@/]+))?(?:/rank=(?P<rank>\d+))?$")
_RANGED = {"reward_scale", "obs_noise", "mem_leak", "slow"}  # may have -END; the others happen at START only
_NEEDS_VALUE = {"reward_scale", "lr_spike", "obs_noise"}
_DEFAULT_VALUE = {"mem_leak": 64.0, "slow": 2.0}  # VALUE optional: MiB per iteration, slow-down factor
MIB = 1024 * 1024


class InjectedCrash(RuntimeError):
    """What ``crash@N`` raises: an ordinary failure, not a numeric one (no rollback catches it)."""


@dataclass(frozen=True)
class Fault:
    """One parsed ``--inject`` spec. ``end`` is inclusive; ``None`` means "from start on"."""

    kind: str
    start: int
    end: int | None
    value: float | None
    spec: str
    rank: int | None = None  # None: every rank

    def applies_to(self, rank: int) -> bool:
        return self.rank is None or self.rank == rank

    def active(self, iteration: int) -> bool:
        """Whether a ranged fault covers ``iteration`` (one-shot faults: iteration == start)."""
        if self.kind not in _RANGED:
            return iteration == self.start
        return iteration >= self.start and (self.end is None or iteration <= self.end)


def parse_inject(spec: str) -> Fault:
    """Parse ``KIND@START[-END][:VALUE]``; a malformed spec is a one-line ConfigError."""
    text = spec.strip() if isinstance(spec, str) else spec
    match = _SPEC.match(text) if isinstance(text, str) else None
    if match is None:
        _fail(spec, "it does not match the grammar")
    kind, start = match["kind"], int(match["start"])
    end = None if match["end"] is None else int(match["end"])
    if kind not in KINDS:
        _fail(spec, f"unknown kind {kind!r}")
    if end is not None and kind not in _RANGED:
        _fail(spec, f"{kind} happens once at START and takes no -END")
    if end is not None and end < start:
        _fail(spec, f"END {end} is before START {start}")
    value = _parse_value(spec, kind, match["value"])
    rank = None if match["rank"] is None else int(match["rank"])
    return Fault(kind=kind, start=start, end=end, value=value, spec=text, rank=rank)


def _parse_value(spec: str, kind: str, raw: str | None) -> float | None:
    """Check VALUE: required and finite for all kinds but nan, > 0 for lr_spike, >= 0 for obs_noise."""
    if kind in _DEFAULT_VALUE and raw is None:
        return _DEFAULT_VALUE[kind]
    if kind not in _NEEDS_VALUE and kind not in _DEFAULT_VALUE:
        if raw is not None:
            _fail(spec, f"{kind} takes no :VALUE")
        return None
    if raw is None:
        _fail(spec, f"{kind} needs a :VALUE")
    try:
        value = float(raw)
    except ValueError:
        _fail(spec, f"VALUE {raw!r} is not a number")
    if not math.isfinite(value):
        _fail(spec, f"VALUE {raw!r} is not finite")
    if kind == "lr_spike" and value <= 0:
        _fail(spec, "lr_spike VALUE must be > 0")
    if kind == "obs_noise" and value < 0:
        _fail(spec, "obs_noise VALUE (a std) must be >= 0")
    if kind == "mem_leak" and value <= 0:
        _fail(spec, "mem_leak VALUE (MiB per iteration) must be > 0")
    if kind == "slow" and value < 1:
        _fail(spec, "slow VALUE (a slow-down factor) must be >= 1")
    return value


def _fail(spec: Any, why: str) -> None:
    """Raise the one-line error every malformed spec gets."""
    raise ConfigError(f"bad --inject spec {spec!r}: {why}", hint=f"expected {GRAMMAR}")


class FaultSchedule:
    """Turns parsed faults into env knob settings and lr scalings, iteration by iteration."""

    def __init__(self, faults: Iterable[Fault]):
        self.faults = tuple(faults)
        self._fired: set[str] = set()
        self.held: list[Any] = []  # mem_leak's tensors: never released while the process lives
        self._began: float | None = None  # perf_counter at the previous iteration's start
        self._slept = 0.0  # slow's sleep at the previous iteration's start

    @classmethod
    def from_specs(cls, specs: Iterable[str]) -> "FaultSchedule":
        """Parse every ``--inject`` spec (all are checked before training starts)."""
        return cls(parse_inject(s) for s in specs)

    def max_rank(self) -> int:
        """The highest rank a filter names (-1 when none does)."""
        return max((f.rank for f in self.faults if f.rank is not None), default=-1)

    def for_rank(self, rank: int) -> "FaultSchedule":
        """The faults that apply on ``rank`` (those without a filter and those naming it)."""
        return FaultSchedule(f for f in self.faults if f.applies_to(rank))

    def __bool__(self) -> bool:
        return bool(self.faults)

    def this_attempt(self) -> tuple["FaultSchedule", str | None]:
        """The faults this process injects, and what to say about those it does not: an injected fault is one
        incident, not a property of the run, so a process `watchdog run` restarted injects none (the examples
        repeated theirs until session 18: a `crash@10` spent every restart of the budget)."""
        attempt = os.environ.get(RESTART_ENV)
        if not self.faults or not attempt:
            return self, None
        return FaultSchedule(()), (f"restart {attempt} by `watchdog run`: injected faults "
                                   f"({', '.join(f.spec for f in self.faults)}) are not repeated")

    def after(self, iterations: int) -> list[Fault]:
        """The faults that start at or after iteration ``iterations`` (a run of that many never meets them)."""
        return [f for f in self.faults if f.start >= iterations]

    def before(self, start: int) -> list[tuple[Fault, bool]]:
        """The faults that start before iteration ``start`` (a run resumed there never meets their start), each with
        whether part of it still happens (a range that goes on past ``start``)."""
        return [(f, f.kind in _RANGED and (f.end is None or f.end >= start)) for f in self.faults if f.start < start]

    def begin_iteration(self, iteration: int, env: Any, trainer: Any) -> list[str]:
        """Set this iteration's knobs; return descriptions of what was applied or reverted."""
        notes = []
        notes += self._set_knob(env, "reward_scale", self._reward_scale(iteration), 1.0, iteration)
        notes += self._set_knob(env, "obs_noise_std", self._obs_noise_std(iteration), 0.0, iteration)
        for index, fault in enumerate(self.faults):
            key = f"{index}:{fault.spec}"
            if fault.kind in _RANGED or not fault.active(iteration) or key in self._fired:
                continue
            self._fired.add(key)
            if fault.kind == "nan":
                env.nan_next_step = True
                notes.append(f"iteration {iteration}: NaN observations/rewards for one step ({fault.spec})")
            elif fault.kind == "crash":
                raise InjectedCrash(f"injected crash at iteration {iteration} ({fault.spec})")
            elif fault.kind == "lr_spike":
                changed = scale_learning_rates(trainer, fault.value)
                lrs = ", ".join(f"{k} {old:.3g} -> {new:.3g}" for k, (old, new) in changed.items())
                notes.append(f"iteration {iteration}: learning rates x{fault.value:g}: {lrs} ({fault.spec})")
        notes += self._leak(iteration, env) + self._slow(iteration)
        for note in notes:
            log.info("fault injection: %s", note)  # the caller shows the notes on the console
        return notes

    def _leak(self, iteration: int, env: Any) -> list[str]:
        """Hold on to VALUE MiB more of the training's memory for each active ``mem_leak``."""
        import torch

        notes = []
        for fault in self.faults:
            if fault.kind != "mem_leak" or not fault.active(iteration):
                continue
            device = getattr(env, "device", None) or "cpu"
            self.held.append(torch.ones(int(fault.value * MIB), dtype=torch.uint8, device=device))  # touched: resident
            if iteration == fault.start or len(self.held) == 1:
                notes.append(f"iteration {iteration}: holding {fault.value:g} MiB more each iteration on {device} "
                             f"({fault.spec})")
        return notes

    def _slow(self, iteration: int) -> list[str]:
        """Sleep (factor - 1) x the previous iteration's own work (its time without our sleep)."""
        now = time.perf_counter()
        work = None if self._began is None else max(0.0, now - self._began - self._slept)
        factor = math.prod(f.value for f in self.faults if f.kind == "slow" and f.active(iteration))
        self._began, self._slept = now, 0.0
        if factor <= 1 or work is None:
            return []
        self._slept = (factor - 1) * work
        time.sleep(self._slept)
        if any(f.kind == "slow" and f.start == iteration for f in self.faults):
            return [f"iteration {iteration}: slowed {factor:g}x (slept {self._slept:.2f} s)"]
        return []

    def _reward_scale(self, iteration: int) -> float:
        """Product of the active reward_scale faults (1.0 when none)."""
        return math.prod(f.value for f in self.faults if f.kind == "reward_scale" and f.active(iteration))

    def _obs_noise_std(self, iteration: int) -> float:
        """Combined std of the active obs_noise faults (independent noises add in variance)."""
        return math.sqrt(sum(f.value**2 for f in self.faults if f.kind == "obs_noise" and f.active(iteration)))

    def _set_knob(self, env: Any, name: str, value: float, off: float, iteration: int) -> list[str]:
        """Write an env knob when it differs from what the env holds; describe the change."""
        current = getattr(env, name, off)
        if current == value:
            return []
        setattr(env, name, value)
        active = [f.spec for f in self.faults if f.kind == name.replace("_std", "") and f.active(iteration)]
        if value == off:
            return [f"iteration {iteration}: {name} back to {off:g}"]
        return [f"iteration {iteration}: {name} {current:g} -> {value:g} ({', '.join(active)})"]

    def state_dict(self) -> dict[str, Any]:
        """Which one-shot faults already fired (so a resumed run does not fire them again)."""
        return {"fired": sorted(self._fired)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of ``state_dict``."""
        self._fired = set(state.get("fired", ()))
