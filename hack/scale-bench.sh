#!/usr/bin/env bash
# Measures the operator at scale on the local control planes (a benchmark, not a test):
#   - convergence: time from creating N MultiCloudWorkloads (default 200) over 3 member
#     clusters until every one is Ready (all replicas ready in the members);
#   - memory: the operator's resident set size while converging and once settled;
#   - failover: time from stopping one member's API server until its CloudPool is
#     Ready=False, and until every workload that ran there is re-planned onto the others;
#     then the time until the member, started again, is reconciled.
#
#   hack/scale-bench.sh [--workloads N]      results on stdout and in target/scale-bench/
#                                            (bench.json, the operator's log and metrics)
#   SKYFLEET_KEEP_CLUSTER=1 hack/scale-bench.sh   leave the control planes running
#
# It runs its own control planes (state in .local/bench, ports from 17700) so it never
# touches the test or demo clusters, and the release build of the operator with its default
# periods (probe 5s, sync 15s, failover grace 30s) unless SKYFLEET_BENCH_ARGS says otherwise.
set -euo pipefail
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HACK")
export GOTOOLCHAIN=local
export SKYFLEET_CLUSTER_DIR=${SKYFLEET_CLUSTER_DIR:-$ROOT/.local/bench}
export SKYFLEET_PORT_BASE=${SKYFLEET_PORT_BASE:-17700}
STATE=$SKYFLEET_CLUSTER_DIR
OUT=${SKYFLEET_BENCH_OUT:-${CARGO_TARGET_DIR:-$ROOT/target}/scale-bench}
mkdir -p "$OUT"
ADMIN=127.0.0.1:$((SKYFLEET_PORT_BASE + 90))
WORKLOADS=200
NAMESPACES=10
while [ $# -gt 0 ]; do
  case $1 in
    --workloads) WORKLOADS=${2:?a number}; shift 2 ;;
    *) echo "usage: hack/scale-bench.sh [--workloads N]" >&2; exit 2 ;;
  esac
done
[[ $WORKLOADS =~ ^[1-9][0-9]*$ ]] || { echo "--workloads must be a positive number" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
k() { kubectl --kubeconfig="$STATE/$1/kubeconfig" "${@:2}"; }

OP_PID=
SAMPLER_PID=
started=0
cleanup() {
  mkdir -p "$OUT"
  cp "$STATE/operator.log" "$STATE/rss.txt" "$OUT/" 2>/dev/null || true
  curl -fsS "http://$ADMIN/metrics" >"$OUT/metrics.txt" 2>/dev/null || true
  if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
  if [ -n "$OP_PID" ]; then kill "$OP_PID" 2>/dev/null || true; fi
  if [ "$started" = 1 ] && [ -z "${SKYFLEET_KEEP_CLUSTER:-}" ]; then "$HACK/cluster.sh" down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

log "building the operator (release)"
(cd "$ROOT" && cargo build --release --quiet -p skyfleet --bin skyfleet)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/skyfleet
"$HACK/build-bins.sh" >/dev/null
if ! "$HACK/cluster.sh" healthy 2>/dev/null; then
  log "starting control planes in $STATE"
  "$HACK/cluster.sh" up >/dev/null
  started=1
fi

log "installing CRDs, member Secrets and one CloudPool per member"
k mgmt apply --server-side -f "$ROOT/crds/" >/dev/null
k mgmt wait --for=condition=Established crd --all --timeout=60s >/dev/null
k mgmt create namespace skyfleet-system --dry-run=client -o yaml | k mgmt apply -f - >/dev/null
prices=(aws:0.04 azure:0.03 gcp:0.05)
for entry in "${prices[@]}"; do
  member=${entry%%:*} price=${entry#*:}
  k mgmt -n skyfleet-system create secret generic "member-$member" \
    --from-file=kubeconfig="$STATE/$member/kubeconfig" --dry-run=client -o yaml | k mgmt apply -f - >/dev/null
  region=$(k "$member" get nodes -o jsonpath='{.items[0].metadata.labels.topology\.kubernetes\.io/region}')
  k mgmt apply -f - >/dev/null <<EOF
apiVersion: skyfleet.io/v1alpha1
kind: CloudPool
metadata: {name: bench-$member, labels: {bench: "true"}}
spec:
  provider: $member
  region: ${region:-$member}
  kubeconfigSecretRef: {name: member-$member, namespace: skyfleet-system}
  pricing: {cpuPerHour: $price, memoryGiBPerHour: 0.004}
EOF
done

log "starting the operator ($BIN operator, admin on $ADMIN)"
# shellcheck disable=SC2086 # SKYFLEET_BENCH_ARGS is a list of flags
"$BIN" operator --kubeconfig "$STATE/mgmt/kubeconfig" --admin-address "$ADMIN" \
  ${SKYFLEET_BENCH_ARGS:-} >"$STATE/operator.log" 2>&1 &
OP_PID=$!
: >"$STATE/rss.txt"
( while kill -0 "$OP_PID" 2>/dev/null; do
    awk -v t="$(date +%s)" '/^VmRSS/ { print t, $2 }' "/proc/$OP_PID/status" >>"$STATE/rss.txt" 2>/dev/null || true
    sleep 1
  done ) &
SAMPLER_PID=$!
for member in aws azure gcp; do
  k mgmt wait --for=condition=Ready "cloudpool/bench-$member" --timeout=120s >/dev/null
done

log "creating $WORKLOADS workloads in $NAMESPACES namespaces"
manifest=$STATE/workloads.yaml
: >"$manifest"
for n in $(seq 0 $((NAMESPACES - 1))); do
  printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench-%s}\n---\n' "$n" >>"$manifest"
done
for i in $(seq 0 $((WORKLOADS - 1))); do
  cat >>"$manifest" <<EOF
apiVersion: skyfleet.io/v1alpha1
kind: MultiCloudWorkload
metadata: {name: svc-$i, namespace: bench-$((i % NAMESPACES))}
spec:
  replicas: {min: 2, max: 10}
  template:
    metadata: {labels: {app: svc-$i}}
    spec:
      containers:
      - name: app
        image: registry.example/svc:1
        resources: {requests: {cpu: 100m, memory: 64Mi}}
  placement:
    poolSelector: {matchLabels: {bench: "true"}}
    redundancy: {tolerate: 1, domain: Provider}
---
EOF
done
t0=$(now)
k mgmt apply -f "$manifest" >/dev/null
ready_count() {
  k mgmt get mcw -A -o json |
    jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}
while :; do
  n=$(ready_count)
  [ "$n" -ge "$WORKLOADS" ] && break
  [ "$(since "$t0" | cut -d. -f1)" -lt 900 ] || { log "only $n of $WORKLOADS Ready after 900 s; see $STATE/operator.log"; exit 1; }
  sleep 1
done
converge=$(since "$t0")
deployments=0 pods=0
for member in aws azure gcp; do
  deployments=$((deployments + $(k "$member" get deploy -A -l skyfleet.io/workload --no-headers 2>/dev/null | wc -l)))
  pods=$((pods + $(k "$member" get pods -A --field-selector=status.phase=Running --no-headers 2>/dev/null | grep -c '^bench-' || true)))
done
log "all $WORKLOADS Ready after ${converge}s: $deployments member Deployments, $pods Running pods"
peak_converging=$(awk 'max < $2 { max = $2 } END { print max + 0 }' "$STATE/rss.txt")
log "settling for 60 s (4 sync periods) to measure memory at rest"
sleep 60
rest=$(awk '/^VmRSS/ { print $2 }' "/proc/$OP_PID/status")

azure_workloads() {
  k mgmt get mcw -A -o json |
    jq '[.items[] | select(any(.status.pools[]?; .name == "bench-azure" and .replicas > 0))] | length'
}
before=$(azure_workloads)
log "stopping the azure member's API server ($before workloads have replicas there)"
t1=$(now)
"$HACK/cluster.sh" stop-apiserver azure >/dev/null 2>&1
until [ "$(k mgmt get cloudpool bench-azure -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = False ]; do sleep 0.5; done
detected=$(since "$t1")
log "pool Ready=False after ${detected}s"
until [ "$(azure_workloads)" -eq 0 ]; do
  [ "$(since "$t1" | cut -d. -f1)" -lt 600 ] || { log "not re-planned after 600 s"; exit 1; }
  sleep 0.5
done
replanned=$(since "$t1")
log "every workload re-planned off azure after ${replanned}s"
# Re-planned in status is also applied in the surviving members: their Deployments add up
# to what status says.
want=$(k mgmt get mcw -A -o json | jq '[.items[].status.pools[]? | select(.name != "bench-azure") | .replicas] | add')
surviving_replicas() {
  local member total=0
  for member in aws gcp; do
    total=$((total + $(k "$member" get deploy -A -l skyfleet.io/workload -o json | jq '[.items[].spec.replicas] | add // 0')))
  done
  echo "$total"
}
until [ "$(surviving_replicas)" -ge "$want" ]; do sleep 0.5; done
got=$(surviving_replicas)
applied=$(since "$t1")
log "surviving members run the new plan ($got replicas) after ${applied}s"

t2=$(now)
"$HACK/cluster.sh" start-apiserver azure >/dev/null 2>&1
until [ "$(k mgmt get cloudpool bench-azure -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; do sleep 0.5; done
back=$(since "$t2")
log "azure answers and its pool is Ready after ${back}s"
peak=$(awk 'max < $2 { max = $2 } END { print max + 0 }' "$STATE/rss.txt")

jq -n --argjson workloads "$WORKLOADS" --argjson converge "$converge" \
  --argjson deployments "$deployments" --argjson pods "$pods" \
  --argjson rssPeakConvergingKiB "$peak_converging" --argjson rssAtRestKiB "$rest" --argjson rssPeakKiB "$peak" \
  --argjson onAzure "$before" --argjson detected "$detected" --argjson replanned "$replanned" \
  --argjson applied "$applied" --argjson recovered "$back" \
  '{workloads: $workloads, members: 3, convergeSeconds: $converge, memberDeployments: $deployments,
    runningPods: $pods, rssPeakConvergingKiB: $rssPeakConvergingKiB, rssAtRestKiB: $rssAtRestKiB,
    rssPeakKiB: $rssPeakKiB, failover: {workloadsOnLostMember: $onAzure, notReadySeconds: $detected,
    replannedSeconds: $replanned, appliedSeconds: $applied, memberBackReadySeconds: $recovered}}' |
  tee "$OUT/bench.json"
