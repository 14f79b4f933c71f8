#!/usr/bin/env python3
"""How far issue 15's simulate goals are reachable at all, per trace: the goals ask, on every
trace, for unmet demand <= 0.1 % and cost <= 1.15 x the oracle's. This replays a wide family of
simple causal policies, each with its parameters tuned in hindsight for that one trace (an
advantage no real policy has), with the same plans, prices and timing as `skyfleet simulate`,
and prints per trace:

* the cheapest policy of the family that meets unmet <= 0.1 %, as a multiple of the oracle's
  cost ("none" when no member meets it);
* the lowest unmet share any member reaches within 1.15 x the oracle's cost;
* skyfleet's own figures from `skyfleet simulate`.

The family: at each step t the policy sizes for m x the highest demand it has seen over the
last k steps (a scale-down window of k steps), optionally also for the highest demand around
the same time of day (+- w steps) on each of the last J days (a daily season):
k in 1..2016 steps, m in 1..5, w in 0..24 steps, J in 1, 3, 7: 324 policies per trace.

Timing and money, as `skyfleet simulate` models them: the policy decides at the start of each
step and sees that step's demand; replicas it adds serve after the startup (3 of the step's 5
minutes short), removed ones stop at once; each step pays for every replica of the plan. The
plan for a sized demand is `skyfleet plan`'s, exact: replicas R = ceil(demand / (request x
target utilisation)), placed with the workload's redundancy (from a table built by calling
`skyfleet plan` once per R). Pool failures are left out, which only favours the family.

Usage: hack/simulate-frontier.py SKYFLEET_BIN FLEET_KEY WORKLOAD PEAK_CORES SIMULATE_DIR MANIFEST...
(called by `hack/simulate-table.sh --frontier`, which runs `skyfleet simulate --out` per trace
and fleet first, into SIMULATE_DIR/FLEET_KEY.TRACE.json and SIMULATE_DIR/FLEET_KEY.TRACE/).
Needs numpy and PyYAML.
"""

import csv
import glob
import json
import math
import os
import subprocess
import sys

import numpy as np
import yaml

STARTUP_S = 180
GOAL_UNMET = 0.001
GOAL_COST = 1.15


def quantity_cores(text):
    text = str(text)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def workload_shape(manifests, name):
    """(cpu request per replica, target utilisation, burst headroom) of the workload."""
    for path in manifests:
        for doc in yaml.safe_load_all(open(path)):
            if doc and doc.get("kind") == "MultiCloudWorkload" and doc["metadata"]["name"] == name:
                spec = doc["spec"]
                cpu = sum(
                    quantity_cores(c["resources"]["requests"]["cpu"])
                    for c in spec["template"]["spec"]["containers"]
                )
                target = spec["scaling"]["targetCPUUtilizationPercentage"] / 100
                burst = spec["scaling"].get("burstHeadroomPercent", 10) / 100
                return cpu, target, burst
    raise SystemExit(f"no MultiCloudWorkload {name} in {manifests}")


def plan_table(binary, manifests, workload, rmax, cpu, target, burst):
    """Per required replicas R (index): total replicas and cost per hour of `skyfleet plan`."""
    replicas, cost = [0], [0.0]
    for r in range(1, rmax + 1):
        # The demand whose plan needs exactly R replicas (plan adds the burst headroom).
        demand = (r - 0.5) * cpu * target / (1 + burst)
        args = [binary, "plan", "--workload", workload, "--demand", f"{demand:.6f}", "-o", "json"]
        for m in manifests:
            args += ["-f", m]
        out = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
        replicas.append(out["totalReplicas"])
        cost.append(out["totalCostPerHour"])
        if out["requiredReplicas"] < r:  # clamped at replicas.max: every larger R plans the same
            break
    return np.array(replicas, dtype=float), np.array(cost)


def window_max(d, k, include_now):
    """max(d[t-k+1 .. t]) (include_now) or max(d[t-k .. t-1]) per t; the first value before t=0."""
    padded = np.concatenate([np.full(k, d[0]), d])
    view = np.lib.stride_tricks.sliding_window_view(padded, k + 1)[: len(d)]
    return view[:, 1:].max(axis=1) if include_now else view[:, :-1].max(axis=1)


def seasonal_max(d, w, days, season):
    """max of d within +-w steps of the same time of day on each of the last `days` days."""
    n = len(d)
    padded = np.concatenate([np.zeros(w), d, np.zeros(w)])
    around = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1).max(axis=1)
    out = np.zeros(n)
    for j in range(1, days + 1):
        lag = j * season
        # Only the past: the window around t - lag ends before t.
        if w < lag < n:
            shifted = np.zeros(n)
            shifted[lag:] = around[: n - lag]
            out = np.maximum(out, shifted)
    return out


def replay(d, sized, replicas, cost, cpu, target, share):
    """Unmet share and total cost of a policy that sizes for `sized[t]` at step t."""
    unit = cpu * target
    r = np.clip(np.ceil(sized / unit - 1e-9).astype(int), 1, len(replicas) - 1)
    capacity = replicas[r] * cpu
    before = np.concatenate([[capacity[0]], capacity[:-1]])
    first = np.minimum(before, capacity)  # a scale-up serves only after the startup
    unmet = share * np.maximum(d - first, 0) + (1 - share) * np.maximum(d - capacity, 0)
    return unmet.sum() / d.sum(), cost[r].sum()


def main():
    binary, key, workload, peak, sim_dir = sys.argv[1:6]
    manifests = sys.argv[6:]
    cpu, target, burst = workload_shape(manifests, workload)
    rmax = math.ceil(3 * float(peak) * (1 + burst) / (cpu * target)) + 1
    replicas, cost = plan_table(binary, manifests, workload, rmax, cpu, target, burst)
    print(f"| trace | cheapest meeting unmet ≤ 0.1 %: cost / oracle (policy) "
          f"| lowest unmet within 1.15 × oracle (policy) | skyfleet: cost / oracle, unmet |")
    print("|---|---|---|---|")
    met_both = 0
    per_policy = {}
    sky_both = 0
    runs = sorted(glob.glob(f"{sim_dir}/{key}.*.json"))
    for path in runs:
        name = os.path.basename(path)[len(key) + 1 : -5]
        rows = list(csv.DictReader(open(f"{sim_dir}/{key}.{name}/oracle.csv")))
        d = np.array([float(x["demand_cores"]) for x in rows])
        offsets = np.array([float(x["offset_s"]) for x in rows])
        step = float(np.median(np.diff(offsets))) if len(offsets) > 1 else 300.0
        share = min(STARTUP_S / step, 1.0)
        season = max(1, round(86400 / step))
        oracle = sum(float(x["cost_per_hour"]) for x in rows)
        results = []
        for k in (1, 2, 3, 6, 12, 36, 72, 144, 288, 576, 1152, 2016):
            recent = window_max(d, k, include_now=True)
            for m in (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0):
                u, c = replay(d, m * recent, replicas, cost, cpu, target, share)
                results.append((u, c / oracle, f"k={k}, m={m}"))
        for w in (0, 3, 6, 12, 24):
            for days in (1, 3, 7):
                daily = seasonal_max(d, w, days, season)
                for k in (1, 2, 3, 12):
                    recent = window_max(d, k, include_now=True)
                    for m in (1.0, 1.25, 1.5, 2.0):
                        sized = m * np.maximum(recent, daily)
                        u, c = replay(d, sized, replicas, cost, cpu, target, share)
                        results.append((u, c / oracle, f"k={k}, m={m}, ±{w} on {days} d"))
        meeting = [x for x in results if x[0] <= GOAL_UNMET]
        cheap = [x for x in results if x[1] <= GOAL_COST]
        best = min(meeting, key=lambda x: x[1], default=None)
        lowest = min(cheap, key=lambda x: x[0], default=None)
        met_both += any(x[0] <= GOAL_UNMET and x[1] <= GOAL_COST for x in results)
        for u, c, label in results:
            per_policy[label] = per_policy.get(label, 0) + (u <= GOAL_UNMET and c <= GOAL_COST)
        sky = json.load(open(path))["strategies"]
        s, o = sky["skyfleet"], sky["oracle"]
        sky_both += s["unmetShare"] <= GOAL_UNMET and s["cost"] <= GOAL_COST * o["cost"]
        b = f"{best[1]:.2f}× ({best[2]})" if best else "none"
        lo = f"{100 * lowest[0]:.3f} % ({lowest[2]})" if lowest else "none"
        print(f"| {name} | {b} | {lo} | {s['cost'] / o['cost']:.3f}×, {100 * s['unmetShare']:.3f} % |")
    one, count = max(per_policy.items(), key=lambda x: x[1])
    print(f"\n- Some policy of the family meets both goals on {met_both} of {len(runs)} traces, "
          f"each with its own parameters ({len(results)} policies tried per trace).")
    print(f"- The best single policy for all traces ({one}) meets both on {count}.")
    print(f"- skyfleet, untuned, meets both on {sky_both}.")


if __name__ == "__main__":
    main()
