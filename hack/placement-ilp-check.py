#!/usr/bin/env python3
"""Checks `skyfleet plan` against an ILP reference (PuLP + CBC) on random instances.

Each instance is a set of CloudPool manifests and one MultiCloudWorkload, written as users
write them. `skyfleet plan -o json` decides; the same integer program (per-pool bounds and
capacity, N-K redundancy written out over every set of K domains, spread with binaries,
replicas.max, and with `redundancy.spot: Tolerate` the replicas on on-demand pools ≥ R) is
solved by CBC. The costs must agree (ratio 1.000), and skyfleet must say
infeasible exactly when CBC does.

Usage: hack/placement-ilp-check.sh [N] (sets up a venv with PuLP under ~/.cache/skyfleet).
"""
import itertools
import json
import math
import random
import subprocess
import sys
import tempfile
import time

import pulp

SKYFLEET = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
CPU, MEM_GIB = 0.5, 0.5  # every generated workload requests 500m and 512Mi


def instance(rng):
    providers = rng.sample(["aws", "azure", "gcp", "onprem"], rng.randint(1, 4))
    pools = []
    for i in range(rng.randint(2, 9)):
        prov = rng.choice(providers)
        pool = {
            "name": f"pool{i}",
            "labels": {"tier": rng.choice(["standard", "standard", "spot"])},
            "spec": {
                "provider": prov,
                "region": f"{prov}-r{rng.randint(0, 1)}",
                "pricing": {
                    "cpuPerHour": round(rng.uniform(0.01, 0.06), 5),
                    "memoryGiBPerHour": round(rng.uniform(0.001, 0.006), 6),
                    "replicaPerHour": rng.choice([0, 0, 0.002]),
                },
            },
        }
        if rng.random() < 0.5:
            pool["spec"]["capacity"] = {"cpu": str(rng.randint(1, 8))}
        if rng.random() < 0.35:
            pool["spec"]["pricing"]["capacityType"] = "Spot"
        pools.append(pool)
    lo = rng.randint(0, 4)
    workload = {
        "replicas": {"min": lo, "max": rng.randint(max(lo, 1), 24)},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "a", "image": "a",
                                     "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}]},
        },
        "scaling": {"targetCPUUtilizationPercentage": rng.choice([50, 70, 80])},
        "placement": {
            "redundancy": {"tolerate": rng.randint(0, 2), "domain": rng.choice(["Pool", "Region", "Provider"])},
            "spread": {"minPools": rng.randint(0, 3), "minProviders": rng.randint(0, 2), "minRegions": rng.randint(0, 2)},
        },
    }
    if rng.random() < 0.4:
        workload["placement"]["redundancy"]["spot"] = "Tolerate"
    if rng.random() < 0.3:
        workload["placement"]["poolSelector"] = {"matchLabels": {"tier": "standard"}}
    if rng.random() < 0.4:
        p = rng.choice(pools)["name"]
        mn = rng.randint(0, 2)
        workload["placement"]["pools"] = [{"name": p, "minReplicas": mn, "maxReplicas": mn + rng.randint(0, 6)}]
    return pools, workload, round(rng.uniform(0, 8), 2)


def manifests(pools, workload):
    docs = [{"apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
             "metadata": {"name": p["name"], "labels": p["labels"]}, "spec": p["spec"]} for p in pools]
    docs.append({"apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
                 "metadata": {"name": "w", "namespace": "default"}, "spec": workload})
    return "\n---\n".join(json.dumps(d) for d in docs)  # JSON is YAML


def ilp(pools, workload, required):
    """Minimum cost per hour, or None when infeasible."""
    pl = workload["placement"]
    selector = pl.get("poolSelector", {}).get("matchLabels", {})
    bounds = {b["name"]: b for b in pl.get("pools", [])}
    rmax = workload["replicas"]["max"]
    prob = pulp.LpProblem("placement", pulp.LpMinimize)
    x, u, cost = {}, {}, {}
    for p in pools:
        n, s = p["name"], p["spec"]
        eligible = all(p["labels"].get(k) == v for k, v in selector.items())
        hi = bounds.get(n, {}).get("maxReplicas", rmax)
        if "capacity" in s:
            hi = min(hi, math.floor(float(s["capacity"]["cpu"]) / CPU + 1e-9))
        lo = bounds.get(n, {}).get("minReplicas", 0)
        if not eligible:
            lo = hi = 0
        if lo > hi:
            return None
        x[n] = pulp.LpVariable(f"x_{n}", lo, hi, cat="Integer")
        u[n] = pulp.LpVariable(f"u_{n}", cat="Binary")
        prob += x[n] >= u[n]
        prob += x[n] <= max(hi, 0) * u[n]
        pr = s["pricing"]
        cost[n] = CPU * pr["cpuPerHour"] + MEM_GIB * pr["memoryGiBPerHour"] + pr.get("replicaPerHour", 0)
    prob += pulp.lpSum(cost[n] * x[n] for n in x)
    prob += pulp.lpSum(x.values()) <= rmax
    key = {"Pool": lambda p: p["name"], "Region": lambda p: (p["spec"]["provider"], p["spec"]["region"]),
           "Provider": lambda p: p["spec"]["provider"]}[pl["redundancy"]["domain"]]
    domains = sorted({key(p) for p in pools}, key=str)
    k = pl["redundancy"]["tolerate"]
    for lost in itertools.combinations(domains, min(k, len(domains))):
        prob += pulp.lpSum(x[p["name"]] for p in pools if key(p) not in lost) >= required
    if pl["redundancy"].get("spot") == "Tolerate":
        prob += pulp.lpSum(x[p["name"]] for p in pools
                           if p["spec"]["pricing"].get("capacityType") != "Spot") >= required
    for field, group in [("minProviders", lambda p: p["spec"]["provider"]),
                         ("minRegions", lambda p: (p["spec"]["provider"], p["spec"]["region"]))]:
        groups = sorted({group(p) for p in pools}, key=str)
        v = {g: pulp.LpVariable(f"v_{field}_{i}", cat="Binary") for i, g in enumerate(groups)}
        for g in groups:
            prob += v[g] <= pulp.lpSum(u[p["name"]] for p in pools if group(p) == g)
        prob += pulp.lpSum(v.values()) >= pl["spread"][field]
    prob += pulp.lpSum(u.values()) >= pl["spread"]["minPools"]
    status = prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[status] != "Optimal":
        return None
    return sum(cost[n] * x[n].value() for n in x)


def main():
    rng = random.Random(20261123)
    agree = feasible = budgets = 0
    worst = 0.0
    t_sky = t_ilp = 0.0
    with tempfile.TemporaryDirectory() as d:
        for i in range(N):
            pools, workload, demand = instance(rng)
            budgets += workload["placement"]["redundancy"].get("spot") == "Tolerate"
            path = f"{d}/i.yaml"
            with open(path, "w") as f:
                f.write(manifests(pools, workload))
            t0 = time.perf_counter()
            out = subprocess.run([SKYFLEET, "plan", "-f", path, "--demand", str(demand), "-o", "json"],
                                 capture_output=True, text=True)
            t_sky += time.perf_counter() - t0
            if out.returncode != 0:
                sys.exit(f"instance {i}: skyfleet plan failed: {out.stderr}")
            plan = json.loads(out.stdout)
            t0 = time.perf_counter()
            ref = ilp(pools, workload, plan["requiredReplicas"])
            t_ilp += time.perf_counter() - t0
            if (ref is None) != (not plan["feasible"]):
                sys.exit(f"instance {i}: skyfleet feasible={plan['feasible']} but CBC "
                         f"{'infeasible' if ref is None else f'found cost {ref}'}\n{manifests(pools, workload)}\n"
                         f"demand {demand}\n{out.stdout}")
            if ref is not None:
                feasible += 1
                ratio = plan["totalCostPerHour"] / ref if ref > 0 else 1.0
                worst = max(worst, abs(ratio - 1.0))
                if abs(ratio - 1.0) > 1e-6:
                    sys.exit(f"instance {i}: skyfleet cost {plan['totalCostPerHour']} vs CBC {ref}\n"
                             f"{manifests(pools, workload)}\ndemand {demand}\n{out.stdout}")
            agree += 1
    print(f"instances={N} with_spot_budget={budgets} agree={agree} feasible={feasible} infeasible={N - feasible} "
          f"max_cost_ratio_deviation={worst:.2e} skyfleet_plan_seconds={t_sky:.2f} cbc_seconds={t_ilp:.2f}")


if __name__ == "__main__":
    main()
