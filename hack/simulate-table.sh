#!/usr/bin/env bash
# `skyfleet simulate` on every trace, on two fleets, as one Markdown table (issue 15's goals):
#   - the example fleet (crds/examples, `checkout`) at a peak of 6 cores;
#   - hack/simulate/five-pools-spot.yaml (`big`) at 120 cores, with every Spot pool lost at
#     3 days for 2 hours.
# Each cell: cost / static-peak, cost / oracle, unmet %, the worst step's shortfall.
# With --frontier, then per fleet how far the two goals (unmet ≤ 0.1 %, cost ≤ 1.15 × the
# oracle) are reachable together at all: hack/simulate-frontier.py replays 324 simple causal
# policies per trace, each tuned in hindsight for it (needs numpy and PyYAML).
# Usage: hack/simulate-table.sh [--frontier] [TRACE...]   (default: traces/*.csv, the 19 NAB
# traces)
# SKYFLEET_BIN picks the binary (default: a release build of this tree).
set -euo pipefail
cd "$(dirname "$0")/.."
frontier=false
if [[ "${1:-}" == --frontier ]]; then
  frontier=true
  shift
fi
bin=${SKYFLEET_BIN:-}
if [[ -z "$bin" ]]; then
  cargo build -q --release -p skyfleet
  bin=target/release/skyfleet
fi
traces=("$@")
if [[ ${#traces[@]} -eq 0 ]]; then
  traces=(traces/*.csv)
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for t in "${traces[@]}"; do
  name=$(basename "$t" .csv)
  "$bin" simulate --trace "$t" --peak-cores 6 -f crds/examples/cloudpools.yaml \
    -f crds/examples/workloads.yaml --workload checkout -o json --out "$out/example.$name" \
    >"$out/example.$name.json"
  "$bin" simulate --trace "$t" --peak-cores 120 -f hack/simulate/five-pools-spot.yaml \
    --workload big --fail Spot@3d+2h -o json --out "$out/spot.$name" >"$out/spot.$name.json"
done
python3 - "$out" <<'PY'
import glob, json, os, sys

out = sys.argv[1]
fleets = [("example", "example fleet, 6 cores"), ("spot", "five pools + Spot, 120 cores, Spot lost at 3 d")]
names = sorted({os.path.basename(p).split(".", 1)[1][:-5] for p in glob.glob(f"{out}/*.json")})
print("| trace | " + " | ".join(f for _, f in fleets) + " |")
print("|---|" + "---|" * len(fleets))
goals = {k: [0, 0, 0, 0] for k, _ in fleets}
for n in names:
    cells = []
    for key, _ in fleets:
        s = json.load(open(f"{out}/{key}.{n}.json"))["strategies"]
        sk, sp, o = s["skyfleet"], s["static-peak"], s["oracle"]
        r_sp, r_o, o_sp = sk["cost"] / sp["cost"], sk["cost"] / o["cost"], o["cost"] / sp["cost"]
        unmet = 100 * sk["unmetShare"]
        cells.append(f"{r_sp:.3f}, {r_o:.3f}, {unmet:.3f} %, {sk['worstShortfallCores']:.2f}c")
        g = goals[key]
        g[0] += unmet <= 0.1
        g[1] += r_o <= 1.15
        g[2] += o_sp <= 0.65 and r_sp <= 0.65
        g[3] += o_sp <= 0.65
    print(f"| {n} | " + " | ".join(cells) + " |")
print()
for key, label in fleets:
    g = goals[key]
    print(f"- {label}: unmet ≤ 0.1 % on {g[0]} of {len(names)}; cost ≤ 1.15 × oracle on {g[1]}; "
          f"cost ≤ 0.65 × static-peak on {g[2]} of the {g[3]} where the oracle reaches it")
PY
if $frontier; then
  echo
  echo "### example fleet, 6 cores: the goals reachable together?"
  python3 hack/simulate-frontier.py "$bin" example checkout 6 "$out" \
    crds/examples/cloudpools.yaml crds/examples/workloads.yaml
  echo
  echo "### five pools + Spot, 120 cores: the goals reachable together? (no failures for the family)"
  python3 hack/simulate-frontier.py "$bin" spot big 120 "$out" hack/simulate/five-pools-spot.yaml
fi
