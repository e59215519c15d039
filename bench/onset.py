"""Onset estimation: the change-point fit's two evidence settings, chosen leave-one-run-out.

    python -m bench.onset [--out bench/results/onset_loo.json]

The onset fit (``watchdog.onset.estimate_onset``) runs once, at the alarm; it never changes when or
whether an alarm fires. So this replays the spliced divergences of ``bench.detection`` once (the
default config, both resolutions), keeps the exact input of every alarm's fit (iterations, log
values, fallback), and refits them offline for each setting in ``GRID``: ``jump_evidence`` (how much
a step must explain over a bend) x ``swing_evidence`` (how much a change in noise must explain over
a change in level).

For each held-out run R (one of the five ``mapush_runs``), the setting whose onset error over the
other four runs' cases is best at its worse resolution (p90, then the share within 10 iterations,
then the median) is chosen and R's cases are
scored with it. Reported: the held-out errors per resolution, pooled over the five folds, next to
the defaults' errors on all runs, and the old model (a flat baseline with a step and a ramp,
``hinge``: the estimator before 2026-11-30) on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from bench import detection as det
import watchdog.pipeline as pipeline
from watchdog.onset import JUMP_EVIDENCE, SWING_EVIDENCE, estimate_onset, median3

RESULTS = Path(__file__).resolve().parent / "results" / "onset_loo.json"
GRID = [(j, s) for j in (10.0, 20.0, 40.0) for s in (20.0, 40.0, 80.0, math.inf)]


def capture_fits(seed: int = det.SEED) -> list[dict]:
    """Replay every spliced case once; the inputs of the onset fit at each case's first alarm."""
    fits: list[dict] = []
    current: dict = {}
    fit = pipeline.estimate_onset

    def recording(its, values, *, fallback):
        if current:
            fits.append({**current, "its": list(its), "values": list(values), "fallback": fallback})
        return fit(its, values, fallback=fallback)

    score = det.score_case

    def scoring(case, res, *args, **kwargs):
        current.update(run=case.run, onset=case.onset, shape=case.shape, speed=case.speed, res=res, n=len(fits))
        try:
            return score(case, res, *args, **kwargs)
        finally:
            current.clear()

    rng = np.random.default_rng(seed)
    curves, drops = {}, {}
    for run, spi in det.steps_per_iteration(det.DATA).items():
        logged, dense, _ = det.load_curves(det.DATA, run, spi, rng)
        curves[run] = {"log_interval": logged, "per_iteration": dense}
        drops[run] = det.reward_drop(logged)
    cases = det.make_cases({r: c["log_interval"] for r, c in curves.items()}, rng)
    pipeline.estimate_onset, det.score_case = recording, scoring
    try:
        det.score_runs(det.WatchdogConfig(), curves, cases, drops, det.RESOLUTIONS)
    finally:
        pipeline.estimate_onset, det.score_case = fit, score
    first: dict[tuple, dict] = {}  # a case's first alarm only (the scorer stops there)
    for f in fits:
        first.setdefault((f["run"], f["onset"], f["shape"], f["speed"], f["res"], f["n"]), f)
    return list(first.values())


def old_hinge(its, values, fallback) -> int:
    """The estimator before 2026-11-30: a flat level, then a step and a ramp (log and raw space)."""
    t, y = np.asarray(its, float), np.asarray(values, float)
    keep = np.isfinite(y)
    t, y = t[keep], y[keep]
    if len(t) < 6:
        return fallback
    y = median3(y)
    raw = np.exp(y - y.max())
    best, at = math.inf, None
    for k in range(3, len(t) - 1):
        for target, back in ((y, lambda f: f), (raw, lambda f: np.log(np.maximum(f, 1e-300)) + y.max())):
            for cols in (((t >= t[k]).astype(float), np.maximum(0.0, t - t[k])), (np.maximum(0.0, t - t[k]),),
                         ((t >= t[k]).astype(float),)):
                design = np.stack([np.ones(len(t)), *cols], 1)
                coef = np.linalg.lstsq(design, target, rcond=None)[0]
                if (coef[1:] >= 0).all():
                    f = back(design @ coef)
                    err = float(((y - f) ** 2).sum())
                    if f[-1] > f[0] and err < best:
                        best, at = err, int(t[k])
                    break
    return fallback if at is None else at


def errors(fits: list[dict], setting: tuple[float, float] | None) -> np.ndarray:
    out = []
    for f in fits:
        if setting is None:
            est = old_hinge(f["its"], f["values"], f["fallback"])
        else:
            est = estimate_onset(f["its"], f["values"], fallback=f["fallback"],
                                 jump_evidence=setting[0], swing_evidence=setting[1]).iteration
        out.append(est - f["onset"])
    return np.asarray(out, int)


def summary(err: np.ndarray) -> dict:
    a = np.abs(err)
    return {"cases": int(len(a)), "median": float(np.median(a)), "p90": float(np.percentile(a, 90, method="lower")),
            "within_10": float((a <= 10).mean()), "late_over_10": int((err > 10).sum()), "early_over_10": int((err < -10).sum())}


def _worst(err: np.ndarray, rows: np.ndarray, res_of: np.ndarray) -> tuple:
    """The setting's score on ``rows``: its worse resolution's p90, then share within 10, then median
    (one setting serves every logging rate, so it must hold at both)."""
    parts = [summary(err[rows & (res_of == res)]) for res in det.RESOLUTIONS]
    return (max(p["p90"] for p in parts), -min(p["within_10"] for p in parts), max(p["median"] for p in parts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    fits = capture_fits()
    runs = sorted({f["run"] for f in fits})
    print(f"{len(fits)} alarms' onset fits captured in {time.perf_counter() - t0:.0f} s", flush=True)
    by_setting = {s: errors(fits, s) for s in GRID}
    run_of = np.array([f["run"] for f in fits])
    res_of = np.array([f["res"] for f in fits])
    held = np.zeros(len(fits), int)
    chosen = {}
    for r in runs:
        train = run_of != r
        best = min(GRID, key=lambda s: _worst(by_setting[s], train, res_of))
        chosen[r] = {"jump_evidence": best[0], "swing_evidence": best[1]}
        held[~train] = by_setting[best][~train]
    default = by_setting[(JUMP_EVIDENCE, SWING_EVIDENCE)]
    old = errors(fits, None)
    table = {}
    print("\n| resolution | estimator | cases | onset error median | p90 | within 10 | late > 10 | early > 10 |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for res in det.RESOLUTIONS:
        sel = res_of == res
        table[res] = {"leave_one_run_out": summary(held[sel]), "defaults_all_runs": summary(default[sel]),
                      "old_hinge": summary(old[sel])}
        for name, row in table[res].items():
            print(f"| {res} | {name} | {row['cases']} | {row['median']:.0f} | {row['p90']:.0f} | "
                  f"{100 * row['within_10']:.0f} % | {row['late_over_10']} | {row['early_over_10']} |")
    print("\nchosen per held-out run:", json.dumps(chosen))
    grid_rows = {f"jump {j:g} / swing {s:g}": summary(by_setting[(j, s)]) for j, s in GRID}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(),
        "defaults": {"jump_evidence": JUMP_EVIDENCE, "swing_evidence": SWING_EVIDENCE},
        "by_resolution": table, "chosen": chosen, "grid_all_runs_both_resolutions": grid_rows,
        "elapsed_s": time.perf_counter() - t0,
    }, indent=1))
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
