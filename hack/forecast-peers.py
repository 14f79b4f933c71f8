#!/usr/bin/env python3
"""Peer forecasters for `skyfleet forecast-eval`: statsforecast AutoETS and AutoTheta.

What it measures: the WAPE of statsforecast's AutoETS and AutoTheta on demand traces under
the same rolling-origin protocol as `skyfleet forecast-eval` (operator/src/forecast/eval.rs),
and the seconds (wall clock and CPU) each model takes per trace, so the engine's `auto` can be compared with
established peers:

* the trace is read like the Rust CLI does (`timestamp,value`, rows kept in file order,
  empty/`nan` values are missing); the step is the median positive timestamp spacing, and
  horizon, window and season are converted to samples by rounding (at least 1);
* origins t = W-1 ... N-h-1, one per sample (W = window). A trace shorter than W + h starts
  at max(2*season, 2*h, 2), capped at W, and its history grows to the window from there;
* at origin t the model sees y[max(0, t+1-W) .. t] and forecasts steps 1..h;
* WAPE = sum |y - yhat| / sum |y| over all origins and steps (missing actuals not scored);
* each model is fitted at the first origin and refitted every season samples (a day of
  origins; a seventh of the window without a season), as the operator refits. Between refits
  the fitted model is applied to each new window with statsforecast's `forward` (parameters,
  and for ETS the initial states, kept; states re-filtered over the new window).
  Missing samples in a window are forward-filled for the model (statsforecast takes no NaN).

Run (one process, one thread; trace paths are arguments):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        nice -n 19 python3 hack/forecast-peers.py TRACE.csv [TRACE.csv ...] [--json OUT.jsonl]

Needs `pip install statsforecast`. Options --horizon/--window/--season match forecast-eval.
"""

import argparse
import csv
import datetime as dt
import json
import math
import os
import sys
import time

import numpy as np


def parse_duration(text):
    """`30s`, `5m`, `1h`, `7d` (or combinations like `1h30m`) to seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total, num = 0.0, ""
    for ch in text.strip():
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
        else:
            raise ValueError(f"bad duration {text!r}")
    if num or total <= 0:
        raise ValueError(f"bad duration {text!r}")
    return total


def steps(seconds, step):
    n = round(seconds / step) if step > 0 else 1
    return int(n) if n >= 1 else 1


def read_trace(path):
    """Values in file order and the median positive spacing (seconds), as parse_trace does."""
    values, times = [], []
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = [c.strip().strip('"').lower() for c in next(rows)]
        header[0] = header[0].lstrip("\ufeff")
        if header != ["timestamp", "value"]:
            raise SystemExit(f"{path}: header must be timestamp,value, found {header}")
        for row in rows:
            if not row or all(not c.strip() for c in row):
                continue
            ts, v = (c.strip().strip('"') for c in row)
            times.append(dt.datetime.fromisoformat(ts))
            values.append(float("nan") if v == "" or v.lower() == "nan" else float(v))
    gaps = sorted(
        g for g in ((b - a).total_seconds() for a, b in zip(times, times[1:])) if g > 0
    )
    return np.asarray(values, dtype=np.float64), gaps[len(gaps) // 2]


def ffill(w):
    if np.isfinite(w).all():
        return w
    w = w.copy()
    last = next((x for x in w if np.isfinite(x)), 0.0)
    for i, x in enumerate(w):
        if np.isfinite(x):
            last = x
        else:
            w[i] = last
    return w


def make_model(name, season):
    from statsforecast.models import AutoETS, AutoTheta

    if name == "AutoETS":
        return AutoETS(season_length=season)
    if name == "AutoTheta":
        return AutoTheta(season_length=season)
    raise SystemExit(f"unknown model {name}")


def evaluate(series, name, window, horizon, season):
    """Rolling-origin WAPE of one statsforecast model (see the module docstring)."""
    n, w, h = len(series), window, horizon
    seas = season if season >= 2 else 1
    start = w if n >= w + h else min(max(2 * seas, 2 * h, 2), w)
    if n < start + h:
        raise ValueError(f"too short: {n} samples, need {start + h}")
    refit_every = seas if seas > 1 else max(w // 7, 1)
    last_origin = n - h - 1
    abs_err = abs_y = 0.0
    refits = forwards = fallbacks = 0
    model = None
    t0, c0 = time.perf_counter(), time.process_time()
    for i, t in enumerate(range(start - 1, last_origin + 1)):
        hist = ffill(series[max(0, t + 1 - w) : t + 1])
        mean = None
        if model is None or i % refit_every == 0:
            try:
                model = make_model(name, seas).fit(hist)
                mean = model.predict(h=h)["mean"]
                refits += 1
            except Exception as e:  # noqa: BLE001 - report, keep going
                print(f"  {name}: fit failed at origin {t}: {e}", file=sys.stderr)
                model = None
        else:
            try:
                mean = model.forward(y=hist, h=h)["mean"]
                forwards += 1
            except Exception as e:  # noqa: BLE001
                print(f"  {name}: forward failed at origin {t}: {e}", file=sys.stderr)
        if mean is None or not np.isfinite(mean).all():
            # Count it and fall back to the last value so the origin is still scored.
            fallbacks += 1
            mean = np.full(h, hist[-1])
        actual = series[t + 1 : t + 1 + h]
        ok = np.isfinite(actual)
        abs_err += float(np.abs(actual[ok] - mean[ok]).sum())
        abs_y += float(np.abs(actual[ok]).sum())
    return {
        "wape": abs_err / abs_y if abs_y > 0 else math.nan,
        "seconds": time.perf_counter() - t0,  # wall clock, as forecast-eval reports
        "cpu_seconds": time.process_time() - c0,
        "origins": last_origin + 2 - start,
        "first_history": start,
        "refits": refits,
        "forwards": forwards,
        "fallbacks": fallbacks,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("traces", nargs="+", metavar="TRACE")
    ap.add_argument("--horizon", default="1h")
    ap.add_argument("--window", default="7d")
    ap.add_argument("--season", default="24h")
    ap.add_argument("--models", default="AutoETS,AutoTheta")
    ap.add_argument("--json", help="append one JSON line per trace to this file")
    args = ap.parse_args()
    models = args.models.split(",")
    print(
        f"{'trace':<38} {'step':>5} {'origins':>7} "
        + " ".join(f"{m + ' WAPE':>15}" for m in models)
        + " "
        + " ".join(f"{m + ' s':>12}" for m in models)
        + " "
        + " ".join(f"{m + ' cpu s':>14}" for m in models),
        flush=True,
    )
    for path in args.traces:
        y, step = read_trace(path)
        h = steps(parse_duration(args.horizon), step)
        w = steps(parse_duration(args.window), step)
        s = steps(parse_duration(args.season), step)
        res = {m: evaluate(y, m, w, h, s) for m in models}
        stem = os.path.splitext(os.path.basename(path))[0]
        first = res[models[0]]
        note = f" (short trace: from {first['first_history']} samples)" if first["first_history"] < w else ""
        fb = sum(r["fallbacks"] for r in res.values())
        note += f" ({fb} last-value fallbacks)" if fb else ""
        print(
            f"{stem:<38} {int(step // 60):>4}m {first['origins']:>7} "
            + " ".join(f"{res[m]['wape']:>15.4f}" for m in models)
            + " "
            + " ".join(f"{res[m]['seconds']:>12.1f}" for m in models)
            + " "
            + " ".join(f"{res[m]['cpu_seconds']:>14.1f}" for m in models)
            + note,
            flush=True,
        )
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"trace": path, "step_seconds": step, "window": w,
                                    "horizon": h, "season": s, "models": res}) + "\n")


if __name__ == "__main__":
    main()
