"""Detection-quality scorecard: our detectors + policy against three baselines, on real curves.

    python -m bench.detection [--data DIR] [--out bench/results/detection.json] [--seed N] [--quick]

What it measures (with the default ``WatchdogConfig()``, or ``--set section.key=value`` overrides; the
leave-one-run-out scorecard over a grid of settings is ``python -m bench.loo``):

1. **False alarms.** The five real, healthy MAPush runs (``../shared/data/mapush_runs``) replayed as
   OpenRL logged them (one record per 5 iterations) and as a per-iteration curve (below): our
   warnings after warm-up, alarms and rollbacks; each baseline's alarms (an *alarm* = a maximal run of
   consecutive firing points, so a baseline that fires for 200 points in a row counts once). Then every
   other real run in ``../shared/data/more_runs`` (``bench.real_runs``): MAPush at both resolutions, SB3
   at its logged one with ``value_loss.enabled: false``.

2. **Synthetic divergences spliced into those real curves.** For every run: 3 onsets in its second
   half (55/70/85 % of the last iteration, plus 0-4 random iterations so onsets fall between log
   records), 4 growth shapes of the value-loss factor f(d), d = iterations since onset:

   - ``exp``          f = 100 ** (d / T)
   - ``ramp``         f = 1 + 99 d / T
   - ``step``         f = H from the onset on (H = 100, 30, 10 for the fast, medium, slow variant)
   - ``oscillating``  f = 100 ** (d / T) * 3 ** sin(2 pi d / 16)

   with T (iterations to a 100x rise) = 20, 80, 250; f is capped at 1000. The value loss is multiplied
   by f and the critic grad norm by sqrt(f). Crossed with reward collapse yes/no (the step reward
   falls, linearly within 5 iterations from the moment f first reaches 10, by the larger of
   "late median - early median" and twice the late 5-95 % spread, i.e. back to an untrained policy's
   level) and NaN crash yes/no (at the first multiple of 5 at or after onset + 1.5 T + 10: value loss,
   policy loss and both grad norms NaN on that record, and the run ends there; a crash that would
   fall after the run's last record is dropped and the case counts as a no-crash case). Each case
   ends at the crash, else 500 iterations after onset, else at the run's end.
   5 runs x 3 onsets x 4 shapes x 3 speeds x 2 x 2 = 720 cases, each scored at two resolutions:

   - ``log_interval``: the real records (every 5th iteration, as OpenRL's ``log.txt``), modified.
   - ``per_iteration``: the real curve interpolated to every iteration. Positive metrics are
     interpolated linearly in log space, rewards linearly; value loss, critic grad norm and step
     reward then get iid noise (multiplicative for the positive ones, additive for the reward) whose
     scale is the run's own residual scale sigma = 1.4826 MAD(second differences) / sqrt(1.5) of the
     logged points. An interpolated point at fraction w between two records gets noise with
     sd sigma * sqrt(2 w (1 - w)), so that, with the two records' own noise it inherits, its total
     noise equals sigma; the records themselves are kept exactly, so the log-interval series is the
     per-iteration series at every 5th iteration. Other metrics: linear interpolation, no noise.

   Ground truth: the true onset iteration; the first iteration after onset whose per-iteration
   value loss exceeds 0.2 (the "0.2 crossing"; used for both resolutions); the crash iteration.

3. **Methods.** Ours: ``watchdog.pipeline.Watchdog`` with a minimal driver (fake checkpoint saves,
   retention of the newest 20 stable checkpoints like the live hook's memory snapshots; a rollback
   during the healthy prefix is carried out and the replay goes on). Baselines, run on the same
   series: (a) *bare*: value loss > 0.2, from the first point, no arming; (b) *llm-foundry*
   ``KillLossSpike``: loss >= 2x the mean of the previous 100 points for more than 4 consecutive
   points (judging starts once the window is full; the window holds every loss, outliers included);
   (c) *OLMo-style*: loss > mean + 6 sigma of the previous 128 points (full window needed).

4. **Metrics per method.** Detection: the first alarm at or after the true onset and at or before
   the crash (or the case's end); also "before the crash" (strictly, crash cases only: a NaN record
   is caught by our non-finite rule by construction). Alarms before the true onset (the fraction of
   cases with one, inherited from the healthy prefix). Onset error |estimated - true| over detected
   cases: ours uses the alarm's fitted onset, baselines their alarm iteration. Detection delay
   (alarm - true onset) for everyone. Ours only: lead time of the first warning (the first iteration
   at or after onset on which any detector gives a verdict) before the 0.2 crossing, and how often
   the rollback target (``Rollback.target.iteration``) is before the true onset.

Writes ``bench/results/detection.json`` (summary) and ``detection_cases.jsonl`` (every scored case, one
per line) and prints markdown tables and the elapsed time.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from watchdog.config import WatchdogConfig
from watchdog.logtxt import parse_log_txt
from watchdog.pipeline import Watchdog
from watchdog.driver import VirtualDriver, carry_out
from watchdog.policy import Rollback, Stop
from watchdog.signals import (
    ACTOR_GRAD_NORM,
    CRITIC_GRAD_NORM,
    POLICY_LOSS,
    STEP_REWARD,
    VALUE_LOSS,
    MetricRecord,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mapush_runs"
RESULTS = ROOT / "bench" / "results" / "detection.json"



def steps_per_iteration(data: Path) -> dict[str, int]:
    """run -> env steps per PPO iteration, as the data's own runs.json records them."""
    facts = json.loads((data / "runs.json").read_text())
    return {run: int(f["steps_per_iteration"]) for run, f in sorted(facts.items())}


LOG_INTERVAL = 5
SEED = 20261125
ONSET_FRACTIONS = (0.55, 0.70, 0.85)
SHAPES = ("exp", "ramp", "step", "oscillating")
SPEEDS = (20, 80, 250)  # iterations for a 100x rise (fast, medium, slow)
STEP_HEIGHTS = {20: 100.0, 80: 30.0, 250: 10.0}
OSC_PERIOD, OSC_AMPLITUDE = 16, 3.0
FACTOR_CAP = 1000.0
HORIZON = 500  # iterations after onset a case runs when it does not crash
COLLAPSE_RAMP = 5  # iterations for the reward to fall
THRESHOLD = 0.2
RETAIN_STABLE = WatchdogConfig().policy.keep_stable  # the library registry keeps the first + these
NOISY = (VALUE_LOSS, CRITIC_GRAD_NORM, STEP_REWARD)
CRASH_KEYS = (VALUE_LOSS, POLICY_LOSS, CRITIC_GRAD_NORM, ACTOR_GRAD_NORM)
RESOLUTIONS = ("log_interval", "per_iteration")
METHODS = ("ours", "bare_0.2", "llm_foundry", "olmo_6sigma")


# --------------------------------------------------------------------------- curves


@dataclass
class Curve:
    """One run at one resolution: iterations and metric arrays (NaN where a record lacks a key)."""

    run: str
    spi: int
    its: np.ndarray
    metrics: dict[str, np.ndarray]

    def records(self, lo: int, hi: int, override: dict[str, np.ndarray] | None = None) -> list[MetricRecord]:
        """Records for indices [lo, hi), with ``override`` arrays (full length) replacing metrics.

        A metric a record lacks (NaN here) is left out, unless the override put the NaN there.
        """
        override = override or {}
        cols = []
        for k, base in self.metrics.items():
            if k in override:
                new = override[k]
                cols.append((k, new, np.isnan(new[lo:hi]) & np.isfinite(base[lo:hi])))
            else:
                cols.append((k, base, None))
        out = []
        for j, i in enumerate(range(lo, hi)):
            m = {}
            for k, c, crashed in cols:
                v = c[i]
                if v == v or (crashed is not None and crashed[j]):
                    m[k] = float(v)
            it = int(self.its[i])
            out.append(MetricRecord(it, (it + 1) * self.spi, m))
        return out


def residual_sigma(y: np.ndarray) -> float:
    """Noise scale of a series around its local trend: robust sd of second differences / sqrt(1.5)."""
    y = y[np.isfinite(y)]
    if len(y) < 5:
        return 0.0
    d2 = y[1:-1] - 0.5 * (y[:-2] + y[2:])
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / math.sqrt(1.5))


def running_median(y: np.ndarray, width: int) -> np.ndarray:
    """Centred running median (edges padded with the end values)."""
    half = width // 2
    padded = np.pad(y, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)


def load_curves(data: Path, run: str, spi: int, rng: np.random.Generator) -> tuple[Curve, Curve, dict]:
    """(log-interval curve, per-iteration curve, noise scales) for one real run."""
    recs = parse_log_txt(data / run / "log.txt", steps_per_iteration=spi).records
    its = np.array([r.iteration for r in recs])
    keys = sorted({k for r in recs for k in r.metrics})
    raw = {k: np.array([r.metrics.get(k, np.nan) for r in recs], float) for k in keys}
    logged = Curve(run, spi, its, raw)
    full = np.arange(its[0], its[-1] + 1)
    knot = np.isin(full, its)
    dense: dict[str, np.ndarray] = {}
    sigmas = {}
    for k, x in raw.items():
        ok = np.isfinite(x)
        positive = bool(ok.any() and (x[ok] > 0).all())
        y = np.log(x[ok]) if positive else x[ok]
        if k in NOISY:
            # between records: the local trend (running median of 5 records) plus fresh noise of the
            # run's own scale; the records themselves (single-iteration samples too) stay exact
            s = residual_sigma(y)
            sigmas[k] = {"sigma": s, "space": "log" if positive else "linear"}
            yi = np.interp(full, its[ok], running_median(y, 5))
            yi = np.where(knot, np.interp(full, its[ok], y), yi + rng.normal(0.0, s, len(full)))
        else:
            yi = np.interp(full, its[ok], y)
        dense[k] = np.exp(yi) if positive else yi
    return logged, Curve(run, spi, full, dense), sigmas


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    run: str
    onset: int
    shape: str
    speed: int
    collapse: bool
    nan: bool


def factor(shape: str, speed: int, d: np.ndarray) -> np.ndarray:
    """Value-loss multiplier d iterations after onset (d < 0: 1)."""
    dd = np.minimum(np.maximum(d, 0), 4 * speed).astype(float)  # past 4 T the cap holds for every shape
    if shape == "exp":
        f = 100.0 ** (dd / speed)
    elif shape == "ramp":
        f = 1.0 + 99.0 * dd / speed
    elif shape == "step":
        f = np.full_like(dd, STEP_HEIGHTS[speed])
    elif shape == "oscillating":
        f = 100.0 ** (dd / speed) * OSC_AMPLITUDE ** np.sin(2 * math.pi * dd / OSC_PERIOD)
    else:
        raise ValueError(shape)
    return np.where(d >= 0, np.minimum(f, FACTOR_CAP), 1.0)


def collapse_start(case: Case) -> int:
    d = np.arange(0, HORIZON + 1)
    hit = np.nonzero(factor(case.shape, case.speed, d) >= 10.0)[0]
    return case.onset + (int(hit[0]) if len(hit) else HORIZON + 1)


def crash_iteration(case: Case, last_it: int) -> int | None:
    if not case.nan:
        return None
    c = case.onset + 1.5 * case.speed + 10
    c = int(math.ceil(c / LOG_INTERVAL) * LOG_INTERVAL)
    return c if c <= last_it else None


def reward_drop(logged: Curve) -> float:
    r = logged.metrics[STEP_REWARD]
    r = r[np.isfinite(r)]
    n = len(r)
    early = float(np.median(r[: max(3, n // 20)]))
    late_part = r[n // 2:]
    late = float(np.median(late_part))
    spread = float(np.percentile(late_part, 95) - np.percentile(late_part, 5))
    return max(late - early, 2 * spread)


def splice(curve: Curve, case: Case, drop: float, end_it: int, crash: int | None) -> dict[str, np.ndarray]:
    """Modified value loss, critic grad norm, reward (and NaNs at the crash) over the whole curve."""
    d = curve.its - case.onset
    f = factor(case.shape, case.speed, d)
    out = {
        VALUE_LOSS: curve.metrics[VALUE_LOSS] * f,
        CRITIC_GRAD_NORM: curve.metrics[CRITIC_GRAD_NORM] * np.sqrt(f),
    }
    if case.collapse:
        c0 = collapse_start(case)
        ramp = np.clip((curve.its - c0 + 1) / COLLAPSE_RAMP, 0.0, 1.0)
        out[STEP_REWARD] = curve.metrics[STEP_REWARD] - drop * ramp
    if crash is not None:
        at = curve.its == crash
        for k in CRASH_KEYS:
            arr = out.get(k, curve.metrics.get(k))
            if arr is None:
                continue
            arr = arr.copy()
            arr[at] = np.nan
            out[k] = arr
    return out


def make_cases(curves: dict[str, Curve], rng: np.random.Generator) -> list[Case]:
    cases = []
    for run, cur in curves.items():
        last = int(cur.its[-1])
        for frac in ONSET_FRACTIONS:
            onset = int(round(frac * last)) + int(rng.integers(0, LOG_INTERVAL))
            for shape in SHAPES:
                for speed in SPEEDS:
                    for collapse in (False, True):
                        for nan in (False, True):
                            cases.append(Case(run, onset, shape, speed, collapse, nan))
    return cases


# --------------------------------------------------------------------------- our watchdog


class Sink:
    """Keeps only the events the scorecard needs (warnings, alarms, rollbacks)."""

    KEEP = ("warning", "alarm", "rollback", "stop")

    def __init__(self):
        self.events: list[dict] = []

    def __call__(self, event: dict) -> None:
        if event["event"] in self.KEEP:
            self.events.append(event)


class Replayer(VirtualDriver):
    """A driver of ``Watchdog`` through the library's dispatch (retention included), noting what it did."""

    def __init__(self, cfg: WatchdogConfig):
        self.sink = Sink()
        self.wd = Watchdog(cfg, listeners=[self.sink])
        self.rollbacks: list[Rollback] = []
        self.stops: list[Stop] = []
        self.first_verdict: int | None = None
        self.watch_from: int | None = None

    def restore(self, action: Rollback) -> None:
        self.rollbacks.append(action)

    def stop(self, action: Stop) -> None:
        self.stops.append(action)

    def feed(self, rec: MetricRecord) -> list:
        wd = self.wd
        actions = wd.observe(rec)
        if self.watch_from is not None and self.first_verdict is None and wd.last_verdicts \
                and rec.iteration >= self.watch_from:
            self.first_verdict = rec.iteration
        carry_out(wd, actions, self, config_name="ppo_safe.yaml")
        return actions

    def fork(self) -> "Replayer":
        """A deep copy that shares the (never mutated) history records."""
        memo = {id(r): r for r in self.wd.history}
        if self.wd.last_record is not None:
            memo[id(self.wd.last_record)] = self.wd.last_record
        return copy.deepcopy(self, memo)

    def alarms(self, before: int | None = None) -> list[dict]:
        return [e for e in self.sink.events if e["event"] == "alarm" and (before is None or e["iteration"] < before)]


def summarize_healthy(rep: Replayer, cfg: WatchdogConfig) -> dict:
    ev = rep.sink.events
    return {
        "warnings": sum(e["event"] == "warning" and e["iteration"] >= cfg.warmup.min_iters for e in ev),
        "warnings_all": sum(e["event"] == "warning" for e in ev),
        "alarms": sum(e["event"] == "alarm" for e in ev),
        "rollbacks": len(rep.rollbacks),
        "stops": len(rep.stops),
        "end_state": rep.wd.state.value,
        "alarm_iterations": [e["iteration"] for e in ev if e["event"] == "alarm"],
    }


# --------------------------------------------------------------------------- baselines


def _prev_window_stats(v: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population sd of the previous ``window`` points (NaN until the window is full)."""
    n = len(v)
    c1 = np.concatenate([[0.0], np.cumsum(v)])
    c2 = np.concatenate([[0.0], np.cumsum(v * v)])
    mean = np.full(n, np.nan)
    sd = np.full(n, np.nan)
    if n > window:
        i = np.arange(window, n)
        s1 = c1[i] - c1[i - window]
        s2 = c2[i] - c2[i - window]
        mean[window:] = s1 / window
        sd[window:] = np.sqrt(np.maximum(s2 / window - (s1 / window) ** 2, 0.0))
    return mean, sd


def bare_rule(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return v > THRESHOLD


def llm_foundry(v: np.ndarray, window: int = 100, multiplier: float = 2.0, patience: int = 4) -> np.ndarray:
    mean, _ = _prev_window_stats(v, window)
    with np.errstate(invalid="ignore"):
        outlier = v >= multiplier * mean
    idx = np.arange(len(v))
    last_reset = np.maximum.accumulate(np.where(outlier, -1, idx))
    streak = np.where(outlier, idx - last_reset, 0)
    return streak > patience


def olmo_sigma(v: np.ndarray, window: int = 128, sigmas: float = 6.0) -> np.ndarray:
    mean, sd = _prev_window_stats(v, window)
    with np.errstate(invalid="ignore"):
        return v > mean + sigmas * sd


BASELINES = {"bare_0.2": bare_rule, "llm_foundry": llm_foundry, "olmo_6sigma": olmo_sigma}


def episodes(fire: np.ndarray) -> int:
    """Number of maximal runs of consecutive firing points."""
    f = fire.astype(int)
    return int(f[0] + np.sum(np.diff(f) == 1)) if len(f) else 0


# --------------------------------------------------------------------------- scoring


def score_case(case: Case, res: str, curve: Curve, snapshot: Replayer,
               drop: float, crossing_curve: Curve) -> dict:
    last_it = int(crossing_curve.its[-1])
    crash = crash_iteration(case, last_it)
    end_it = crash if crash is not None else min(case.onset + HORIZON, last_it)
    end = int(np.searchsorted(curve.its, end_it, side="right"))  # exclusive index
    start = int(np.searchsorted(curve.its, case.onset, side="left"))
    mod = splice(curve, case, drop, end_it, crash)

    # ground truth from the per-iteration curve
    dense_vl = splice(crossing_curve, case, drop, end_it, crash)[VALUE_LOSS]
    sel = (crossing_curve.its >= case.onset) & (crossing_curve.its <= end_it)
    with np.errstate(invalid="ignore"):
        over = np.nonzero(sel & (dense_vl > THRESHOLD))[0]
    crossing = int(crossing_curve.its[over[0]]) if len(over) else None

    row = {"run": case.run, "onset": case.onset, "shape": case.shape, "speed": case.speed,
           "collapse": case.collapse, "nan": crash is not None, "crash": crash, "end": end_it,
           "crossing": crossing, "resolution": res}

    # ours: continue the healthy prefix's watchdog on the modified suffix
    rep = snapshot.fork()
    rep.watch_from = case.onset
    alarms_before = len(rep.alarms())
    alarm_it = onset_est = target = None
    for rec in curve.records(start, end, mod):
        acts = rep.feed(rec)
        new = rep.alarms()[alarms_before:]
        if new:
            alarm_it = new[0]["iteration"]
            onset_est = new[0].get("onset_iteration")
            rb = next((a for a in acts if isinstance(a, Rollback)), None)
            target = rb.target.iteration if rb is not None else None
            break
    row["ours"] = {"alarm": alarm_it, "onset_estimate": onset_est, "target": target,
                   "first_verdict": rep.first_verdict, "alarm_before_onset": alarms_before > 0}

    # baselines: on the whole series up to the case's end
    vl = mod[VALUE_LOSS][:end]
    its = curve.its[:end]
    for name, fn in BASELINES.items():
        fire = fn(vl)
        after = np.nonzero(fire & (its >= case.onset))[0]
        row[name] = {"alarm": int(its[after[0]]) if len(after) else None,
                     "alarm_before_onset": bool(fire[its < case.onset].any())}
        row[name]["onset_estimate"] = row[name]["alarm"]
    return row


def aggregate(rows: list[dict], method: str) -> dict:
    n = len(rows)
    det = [r for r in rows if r[method]["alarm"] is not None]
    crash_rows = [r for r in rows if r["crash"] is not None]
    before_crash = [r for r in crash_rows if r[method]["alarm"] is not None and r[method]["alarm"] < r["crash"]]
    no_crash = [r for r in rows if r["crash"] is None]
    clean = [r for r in rows if not r[method]["alarm_before_onset"]]
    errs = [abs(r[method]["onset_estimate"] - r["onset"]) for r in det if r[method]["onset_estimate"] is not None]
    delays = [r[method]["alarm"] - r["onset"] for r in det]
    vs_cross = [r["crossing"] - r[method]["alarm"] for r in det if r["crossing"] is not None]
    out = {
        "cases": n,
        "detected": len(det),
        "detection_rate": len(det) / n if n else None,
        "crash_cases": len(crash_rows),
        "detected_before_crash": len(before_crash),
        "before_crash_rate": len(before_crash) / len(crash_rows) if crash_rows else None,
        "no_crash_cases": len(no_crash),
        "no_crash_detection_rate": (sum(r[method]["alarm"] is not None for r in no_crash) / len(no_crash)
                                    if no_crash else None),
        "alarm_before_onset_rate": sum(r[method]["alarm_before_onset"] for r in rows) / n if n else None,
        "clean_prefix_cases": len(clean),
        "clean_prefix_detection_rate": (sum(r[method]["alarm"] is not None for r in clean) / len(clean)
                                        if clean else None),
        "onset_error_median": _q(errs, 50),
        "onset_error_p90": _q(errs, 90),
        "delay_median": _q(delays, 50),
        "delay_p90": _q(delays, 90),
        "alarm_before_crossing_median": _q(vs_cross, 50),
    }
    if method == "ours":
        leads = [r["crossing"] - r["ours"]["first_verdict"] for r in rows
                 if r["crossing"] is not None and r["ours"]["first_verdict"] is not None]
        with_target = [r for r in det if r["ours"]["target"] is not None]
        out.update({
            "warning_lead_median": _q(leads, 50),
            "warning_lead_p10": _q(leads, 10),
            "warning_lead_positive_rate": (sum(x > 0 for x in leads) / len(leads)) if leads else None,
            "warning_lead_cases": len(leads),
            "rollbacks_with_target": len(with_target),
            "target_precedes_onset_rate": (sum(r["ours"]["target"] < r["onset"] for r in with_target)
                                           / len(with_target)) if with_target else None,
        })
    return out


def _q(xs, q):
    return float(np.percentile(xs, q)) if xs else None


# --------------------------------------------------------------------------- tables


def _fmt(x, pct=False, digits=0):
    if x is None:
        return "-"
    if pct:
        return f"{100 * x:.0f} %"
    return f"{x:.{digits}f}"


def table_false_alarms(fa: dict) -> str:
    lines = ["| run | resolution | points | ours: warnings (after warm-up) | ours: alarms | ours: rollbacks "
             "| bare 0.2 | llm-foundry | OLMo 6 sigma |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run, per in fa.items():
        for res in RESOLUTIONS:
            r = per[res]
            lines.append(f"| `{run}` | {res} | {r['points']} | {r['ours']['warnings']} | {r['ours']['alarms']} | "
                         f"{r['ours']['rollbacks']} | {r['bare_0.2']} | {r['llm_foundry']} | {r['olmo_6sigma']} |")
    return "\n".join(lines)


def more_real_runs(cfg: WatchdogConfig, skip: set[str]) -> dict:
    """Every other real run (``bench.real_runs``) replayed with ``cfg``: {run: {resolution: summary}}."""
    from bench import loo
    from bench.real_runs import load_real_runs

    real = load_real_runs()
    curves = loo.healthy_curves(real, np.random.default_rng(SEED + 1))
    out = {}
    for r in real:
        if r.name in skip:
            continue
        out[r.name] = loo.replay_healthy(cfg, r, curves)
        for res, summary in out[r.name].items():
            if r.framework == "openrl":
                vl = curves[r.name][res].metrics[VALUE_LOSS]
            else:
                vl = np.array([rec.metrics.get(VALUE_LOSS, np.nan) for rec in r.records], float)
            summary.update(baseline_alarms(vl, normalized=r.framework == "openrl"))
    return out


def baseline_alarms(vl: np.ndarray, *, normalized: bool = True) -> dict:
    """Each baseline's alarms (maximal runs of firing points) on one value-loss series; the bare 0.2 rule
    only where value targets are normalised (None elsewhere: nobody would run it there, nor do we)."""
    vl = vl[~np.isnan(vl)]
    return {name: (episodes(fn(vl)) if normalized or name != "bare_0.2" else None) for name, fn in BASELINES.items()}


MADE_HERE = ROOT / "tests" / "data"
FAULT_WORDS = ("fault", "spike", "ramp", "fixed_lr")  # folders of runs made with a fault injected
# a fault word where a word begins (after a separator, not a letter): "lr_fault", "long_faults", but not
# "sb3_default" (until session 26 a substring: a healthy run named "..._default" was left out as a faulted one)
_FAULTED = re.compile(r"(?<![a-z])(?:" + "|".join(map(re.escape, FAULT_WORDS)) + ")", re.IGNORECASE)
NOT_HEALTHY = {  # runs made here with no fault that are not healthy runs either (their READMEs say why)
    "mujoco/skrl/hopper": "collapsed by itself (return 795 -> ~190)",
    "mujoco/skrl/hopper_seed1": "collapsed by itself (return ~300 -> 24-97)",
    "mujoco/skrl/hopper_linearlr_rss": "collapsed by itself (return ~330 -> 7-30)",
    "many_envs/skrl/push_lite_adaptive_lr": "learned nothing; its return slid for 600 updates",
    "configs/skrl/invpendulum_klada_rss_seed3": "lost its balanced pole in its last 6 updates (return 1000 -> 15)",
    "mujoco_long/skrl_walker2d": "learned nothing; its return stepped down from ~-3 to -12.5",
    "mujoco_long/skrl_ant": "learned nothing; its return follows its episodes' length (-128 -> -755)",
    "openrl_restarted": "a crash and its restart",
    "sb3_csv/cartpole_healthy/csv": "the same run as sb3_csv/cartpole_healthy/tensorboard",
}


def healthy_made_here(root: Path = MADE_HERE) -> list[Path]:
    """The real runs in ``tests/data`` made with no fault injected, less ``NOT_HEALTHY``."""
    from watchdog.replay import iter_run_dirs

    runs = []
    for run in iter_run_dirs(root):
        rel = run.relative_to(root.resolve()).as_posix()
        if _FAULTED.search(rel) or any(rel.startswith(k) for k in NOT_HEALTHY):
            continue
        runs.append(run)
    return runs


def made_here_runs(root: Path = MADE_HERE) -> dict:
    """Every healthy run made here with the real libraries, replayed as ``watchdog replay`` reads it (its
    framework's config), and each baseline on its value loss as replay reads it (the bare 0.2 rule only
    where value targets are normalised): {run: summary}."""
    from watchdog.replay import replay_run

    cfg = WatchdogConfig()
    out = {}
    for run in healthy_made_here(root):
        report = replay_run(run)  # (its records are the run's as load_run read them: read once)
        rep = report.to_dict()
        vl = np.array([r.metrics.get(VALUE_LOSS, np.nan) for r in report.records], float)
        ev = rep["events"]
        out[run.relative_to(root.resolve()).as_posix()] = {
            "framework": rep["framework"], "iterations": rep["iterations"],
            "warnings": sum(e["event"] == "warning" and e["iteration"] >= cfg.warmup.min_iters for e in ev),
            "alarms": sum(e["event"] == "alarm" for e in ev), "rollbacks": len(rep["would_roll_back"]),
            "end_state": rep["final_state"],
        } | baseline_alarms(vl, normalized=rep["value_loss_rule"])  # (the 0.2 rule's: on where targets are normalised)
    return out


def table_made_here(made: dict) -> str:
    lines = ["| run | framework | iterations | ours: warnings (after warm-up) | ours: alarms | end state "
             "| bare 0.2 | llm-foundry | OLMo 6 sigma |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for run, r in made.items():
        base = " | ".join("n/a" if r.get(m) is None else str(r[m]) for m in METHODS[1:])
        lines.append(f"| `{run}` | {r['framework']} | {r['iterations']} | {r['warnings']} | {r['alarms']} | "
                     f"{r['end_state']} | {base} |")
    n = len(made)
    fired = {m: sum(bool(r.get(m)) for r in made.values()) for m in METHODS[1:]}
    lines.append(f"| **runs with an alarm** | | {n} runs | | {sum(bool(r['alarms']) for r in made.values())} | | "
                 + " | ".join(str(fired[m]) for m in METHODS[1:]) + " |")
    return "\n".join(lines)


def table_more_runs(more: dict) -> str:
    lines = ["| run | resolution | iterations | ours: warnings (after warm-up) | ours: alarms | ours: rollbacks | end state "
             "| bare 0.2 | llm-foundry | OLMo 6 sigma |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for run, per in more.items():
        for res, r in per.items():
            base = " | ".join("n/a" if r.get(m) is None else str(r[m]) for m in METHODS[1:])
            lines.append(f"| `{run}` | {res} | {r['iterations']} | {r['warnings']} | {r['alarms']} | {r['rollbacks']} | "
                         f"{r['end_state']} | {base} |")
    return "\n".join(lines)


def table_detection(agg: dict) -> str:
    lines = ["| method | resolution | detected | before crash | no-crash detected | alarm before onset "
             "| detected, clean prefix | onset error median / p90 | delay median / p90 | alarm before 0.2 crossing (median) "
             "| warning lead (median) | target before onset |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m in METHODS:
        for res in RESOLUTIONS:
            a = agg[res][m]
            lead = _fmt(a.get("warning_lead_median")) if m == "ours" else "n/a"
            tgt = (f"{_fmt(a.get('target_precedes_onset_rate'), pct=True)} of {a.get('rollbacks_with_target')}"
                   if m == "ours" else "n/a")
            lines.append(
                f"| {m} | {res} | {_fmt(a['detection_rate'], pct=True)} ({a['detected']}/{a['cases']}) | "
                f"{_fmt(a['before_crash_rate'], pct=True)} ({a['detected_before_crash']}/{a['crash_cases']}) | "
                f"{_fmt(a['no_crash_detection_rate'], pct=True)} | {_fmt(a['alarm_before_onset_rate'], pct=True)} | "
                f"{_fmt(a['clean_prefix_detection_rate'], pct=True)} ({a['clean_prefix_cases']}) | "
                f"{_fmt(a['onset_error_median'])} / {_fmt(a['onset_error_p90'])} | "
                f"{_fmt(a['delay_median'])} / {_fmt(a['delay_p90'])} | {_fmt(a['alarm_before_crossing_median'])} | "
                f"{lead} | {tgt} |")
    return "\n".join(lines)


def table_breakdown(rows_by_res: dict, key: str, values) -> str:
    head = "| resolution | " + key + " | " + " | ".join(METHODS) + " |"
    lines = [head, "| --- | --- | " + " | ".join("---:" for _ in METHODS) + " |"]
    for res in RESOLUTIONS:
        for v in values:
            sub = [r for r in rows_by_res[res] if r[key] == v]
            cells = []
            for m in METHODS:
                det = [r for r in sub if r[m]["alarm"] is not None]
                d = [r[m]["alarm"] - r["onset"] for r in det]
                cells.append(f"{100 * len(det) / len(sub):.0f} % (delay {_fmt(_q(d, 50))})" if sub else "-")
            lines.append(f"| {res} | {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def losses_to_baselines(rows_by_res: dict) -> dict:
    """Where a baseline does better than ours on the same case."""
    out = {}
    for res in RESOLUTIONS:
        rows = rows_by_res[res]
        for b in BASELINES:
            missed = [r for r in rows if r[b]["alarm"] is not None and r["ours"]["alarm"] is None]
            both = [r for r in rows if r[b]["alarm"] is not None and r["ours"]["alarm"] is not None]
            earlier = [r for r in both if r[b]["alarm"] < r["ours"]["alarm"]]
            earlier_clean = [r for r in earlier if not r[b]["alarm_before_onset"]]
            closer = [r for r in both if abs(r[b]["alarm"] - r["onset"]) < abs(r["ours"]["onset_estimate"] - r["onset"])]
            groups = {}
            for r in missed:
                key = f"{r['shape']}/T{r['speed']}"
                groups[key] = groups.get(key, 0) + 1
            out[f"{res}:{b}"] = {
                "baseline_detected_ours_missed": len(missed),
                "missed_by_group": groups,
                "missed_examples": [{k: r[k] for k in ("run", "onset", "shape", "speed", "collapse", "crash")}
                                    | {"baseline_alarm": r[b]["alarm"]} for r in missed[:5]],
                "both_detected": len(both),
                "baseline_alarm_earlier": len(earlier),
                "baseline_alarm_earlier_and_no_false_alarm_before_onset": len(earlier_clean),
                "earlier_by_median": _q([r["ours"]["alarm"] - r[b]["alarm"] for r in earlier], 50),
                "baseline_onset_closer": len(closer),
            }
    return out


def score_runs(cfg: WatchdogConfig, curves: dict[str, dict[str, "Curve"]], cases: list[Case], drops: dict[str, float],
               resolutions, *, verbose: bool = False) -> tuple[dict, dict]:
    """Replay each healthy run (false alarms) and score every spliced case on it, at each resolution."""
    false_alarms: dict[str, dict] = {}
    rows_by_res: dict[str, list[dict]] = {r: [] for r in RESOLUTIONS}
    for run in curves:
        false_alarms[run] = {}
        for res in resolutions:
            t0 = time.perf_counter()
            curve = curves[run][res]
            dense = curves[run]["per_iteration"]
            onsets = sorted({c.onset for c in cases if c.run == run})
            rep = Replayer(cfg)
            snapshots: dict[int, Replayer] = {}
            pending = list(onsets)
            for rec in curve.records(0, len(curve.its)):
                while pending and rec.iteration >= pending[0]:
                    snapshots[pending.pop(0)] = rep.fork()
                rep.feed(rec)
            vl = curve.metrics[VALUE_LOSS]
            false_alarms[run][res] = {"points": len(curve.its), "ours": summarize_healthy(rep, cfg)} | {
                **baseline_alarms(vl)}
            n_case = 0
            for case in cases:
                if case.run != run:
                    continue
                rows_by_res[res].append(score_case(case, res, curve, snapshots[case.onset], drops[run], dense))
                n_case += 1
            if verbose:
                print(f"  {run:22s} {res:14s} {len(curve.its):6d} points, {n_case} cases, "
                      f"{time.perf_counter() - t0:6.1f} s", flush=True)
    return false_alarms, rows_by_res


# --------------------------------------------------------------------------- main


def config_with(overrides: list[str]) -> WatchdogConfig:
    """The defaults with ``section.key=value`` overrides (values parsed as YAML)."""
    import yaml

    data: dict = {}
    for item in overrides:
        path, _, raw = item.partition("=")
        *sections, key = path.split(".")
        node = data
        for sec in sections:
            node = node.setdefault(sec, {})
        node[key] = yaml.safe_load(raw)
    return WatchdogConfig.model_validate(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with the five MAPush runs")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--quick", action="store_true", help="one onset per run and the log-interval resolution only")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override one watchdog setting (YAML value), e.g. trend.alarm_ratio=5")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    if not (args.data / "11-07-17_cuboid" / "log.txt").is_file():
        print(f"bench.detection: the real MAPush runs are not at {args.data} (pass --data)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    cfg = config_with(args.set)
    runs = steps_per_iteration(args.data)

    curves: dict[str, dict[str, Curve]] = {}
    sigmas = {}
    drops = {}
    for run, spi in runs.items():
        logged, dense, sig = load_curves(args.data, run, spi, rng)
        curves[run] = {"log_interval": logged, "per_iteration": dense}
        sigmas[run] = sig
        drops[run] = reward_drop(logged)
    cases = make_cases({r: c["log_interval"] for r, c in curves.items()}, rng)
    resolutions = RESOLUTIONS
    if args.quick:
        first = {}
        for c in cases:
            first.setdefault(c.run, c.onset)
        cases = [c for c in cases if c.onset == first[c.run]]
        resolutions = ("log_interval",)
    print(f"{len(cases)} spliced cases x {len(resolutions)} resolutions; seed {args.seed}", flush=True)

    false_alarms, rows_by_res = score_runs(cfg, curves, cases, drops, resolutions, verbose=True)

    agg = {res: {m: aggregate(rows_by_res[res], m) for m in METHODS} for res in resolutions}
    by_shape = {res: {m: {s: aggregate([r for r in rows_by_res[res] if r["shape"] == s], m) for s in SHAPES}
                      for m in METHODS} for res in resolutions}
    losses = losses_to_baselines(rows_by_res) if not args.quick else {}
    elapsed = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start

    more = {} if args.quick else more_real_runs(cfg, set(runs))
    made = {} if args.quick or args.set else made_here_runs()
    if not args.quick:
        print("\n### False alarms on the five real (healthy) runs\n")
        print(table_false_alarms(false_alarms))
        print("\n### ... and on the other real runs (more_runs; SB3 with value_loss.enabled: false)\n")
        print(table_more_runs(more))
        if made:
            print("\n### ... and on the healthy runs made here with the real libraries (tests/data; as replay reads "
                  "them)\n")
            print(table_made_here(made))
        print("\n### Spliced divergences: detection per method\n")
        print(table_detection(agg))
        print("\n### Detection rate (median delay after onset, iterations) by shape\n")
        print(table_breakdown(rows_by_res, "shape", SHAPES))
        print("\n### ... by rise speed (iterations to 100x; step: 100x/30x/10x)\n")
        print(table_breakdown(rows_by_res, "speed", SPEEDS))
        print("\n### ... by run\n")
        print(table_breakdown(rows_by_res, "run", list(runs)))
        print("\n### ... by reward collapse\n")
        print(table_breakdown(rows_by_res, "collapse", (False, True)))
        print("\n### Where a baseline beats ours\n")
        for key, v in losses.items():
            print(f"- {key}: detected {v['baseline_detected_ours_missed']} cases ours missed "
                  f"{v['missed_by_group'] or ''}; alarmed earlier in {v['baseline_alarm_earlier']}/{v['both_detected']} "
                  f"cases both caught ({v['baseline_alarm_earlier_and_no_false_alarm_before_onset']} of them without "
                  f"a false alarm before onset; median {_fmt(v['earlier_by_median'])} iterations earlier); "
                  f"onset closer in {v['baseline_onset_closer']}")
    else:
        for res in resolutions:
            for m in METHODS:
                print(res, m, agg[res][m])
    print(f"\nelapsed {elapsed:.1f} s wall, {cpu:.1f} s CPU")

    cases_path = args.out.with_name(args.out.stem + "_cases.jsonl")
    out = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
        "seed": args.seed, "quick": args.quick, "elapsed_s": elapsed, "cpu_s": cpu,
        "config": {"overrides": args.set, "effective": cfg.model_dump()},
        "design": {
            "onset_fractions": ONSET_FRACTIONS, "shapes": SHAPES, "speeds_T100": SPEEDS,
            "step_heights": STEP_HEIGHTS, "oscillation": {"period": OSC_PERIOD, "amplitude": OSC_AMPLITUDE},
            "factor_cap": FACTOR_CAP, "horizon": HORIZON, "collapse_ramp": COLLAPSE_RAMP,
            "critic_grad_norm": "x sqrt(factor)", "threshold": THRESHOLD, "retain_stable": RETAIN_STABLE,
        },
        "noise_sigmas": sigmas,
        "reward_drops": drops,
        "false_alarms": false_alarms,
        "false_alarms_more_runs": more,
        "false_alarms_made_here": made,
        "detection": agg,
        "detection_by_shape": by_shape,
        "baseline_wins": losses,
        "cases_file": cases_path.name,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=_json_default) + "\n")
    with open(cases_path, "w") as f:  # one scored case per line
        for res in resolutions:
            for row in rows_by_res[res]:
                f.write(json.dumps(row, default=_json_default) + "\n")
    print(f"wrote {args.out} and {cases_path}")
    return 0


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))


if __name__ == "__main__":
    raise SystemExit(main())
