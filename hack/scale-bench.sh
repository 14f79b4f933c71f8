#!/usr/bin/env bash
# Measures the operator at scale on the local control planes (a benchmark, not a test):
#   - convergence: time from creating N MultiCloudWorkloads (default 200, one server-side
#     apply) over 3 member clusters until every one is Ready (all replicas ready in the
#     members), followed by one watch; and the writes every API server served meanwhile,
#     per workload (bench.json writesPerWorkload, requests-converging.tsv);
#   - memory: the operator's resident set size while converging and once settled;
#   - requests: what every API server (management, members, the members' metrics-servers)
#     served in a quiet window after convergence, from their apiserver_request_total
#     counters: reads (GET, LIST), watches (counted when they end) and writes (POST, PUT,
#     PATCH, APPLY, DELETE), per workload per minute and by resource; then the same with
#     the operator paused (the other components' share), and the difference, the operator's;
#   - failover: time from stopping one member's API server until its CloudPool is
#     Ready=False, until every workload that ran there is re-planned onto the others, and
#     until the surviving members run exactly that plan (every Deployment's replicas, and
#     its ready replicas, as the workload's status says), with the writes served from the
#     stop until then (requests-failover.tsv); then the time until the member, started
#     again, is reconciled.
#
#   hack/scale-bench.sh [--workloads N] [--seed-history]
#                          results on stdout and in target/scale-bench/ (bench.json, the
#                          operator's log, RSS samples, metrics, request counts)
#   --seed-history         before the workloads are created, give each one a WorkloadHistory
#                          holding 7 days of 1-minute demand (a daily cycle of 10-100
#                          millicores, the same each day), so memory is measured in the steady state; the
#                          operator's log must say "resumed demand history" for every one
#   --substrate            no operator: the floor the control planes set on this machine. The
#                          member Deployments the operator converges to (one replica of each
#                          workload in each member) are applied straight to the members, and
#                          then, once the azure API server has stopped, the survivors' are
#                          scaled to the failover's plan (two each); each is timed until every
#                          replica is ready (target/scale-bench/substrate.json). The client is
#                          hack/substrate-apply.py (Python 3 with PyYAML)
#   SKYFLEET_BENCH_QUIET=300     length of the quiet window, in seconds (shorten for trials)
#   SKYFLEET_BENCH_BASELINE=60   length of the window with the operator paused (0: skip it)
#   SKYFLEET_BENCH_CONVERGE_TIMEOUT=900   seconds to wait for all N Ready; on timeout the
#                          bench goes on (convergeSeconds null) so memory, requests and
#                          failover are still measured
#   SKYFLEET_KEEP_CLUSTER=1 hack/scale-bench.sh   leave the control planes running
#   SKYFLEET_BENCH_BIN=path/to/skyfleet          bench that build instead of building this one
#                          (built here: the image's static musl form when the
#                          x86_64-unknown-linux-musl target and musl-gcc are installed, else
#                          glibc; bench.json says which)
#
# It runs its own control planes (state in .local/bench, ports from 17700) so it never
# touches the test or demo clusters, and the release build of the operator with its default
# periods (probe 5s, sync 15s, failover grace 30s) unless SKYFLEET_BENCH_ARGS says otherwise.
# Each member gets enough kwok nodes (110 pods each) for every workload at its maximum
# replicas in that one member, plus a fifth. The CloudPools admit only namespaces labelled
# skyfleet-bench=true (spec.allowedNamespaces), as a multi-tenant fleet's pools do, and the
# bench's namespaces carry that label, so the namespace check is measured too.
set -euo pipefail
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HACK")
export GOTOOLCHAIN=local
# The members' controller managers talk to their API servers at 100 requests per second
# (burst 200; Huawei CCE, for one, runs its controller manager at 100, 200 above 1 000
# nodes), rather than the upstream 20 (burst 30): at 20 they, not skyfleet, paced
# convergence (each member's Deployment and ReplicaSet controllers create and update
# thousands of objects).
export SKYFLEET_KCM_QPS=${SKYFLEET_KCM_QPS:-100} SKYFLEET_KCM_BURST=${SKYFLEET_KCM_BURST:-200}
export SKYFLEET_CLUSTER_DIR=${SKYFLEET_CLUSTER_DIR:-$ROOT/.local/bench}
export SKYFLEET_PORT_BASE=${SKYFLEET_PORT_BASE:-17700}
STATE=$SKYFLEET_CLUSTER_DIR
OUT=${SKYFLEET_BENCH_OUT:-${CARGO_TARGET_DIR:-$ROOT/target}/scale-bench}
mkdir -p "$OUT"
ADMIN=127.0.0.1:$((SKYFLEET_PORT_BASE + 90))
WORKLOADS=200
NAMESPACES=10
SEED=0
QUIET=${SKYFLEET_BENCH_QUIET:-300}
BASELINE=${SKYFLEET_BENCH_BASELINE:-60}
CONVERGE_TIMEOUT=${SKYFLEET_BENCH_CONVERGE_TIMEOUT:-900}
# The bench workload (below): replicas {min: 2, max: MAX_REPLICAS}, 100m CPU and 64Mi each.
MAX_REPLICAS=10
# Its pod template (spec.template), shared by --substrate's member Deployments.
pod_template() { # i
  cat <<EOF
  template:
    metadata: {labels: {app: svc-$1}}
    spec:
      containers:
      - name: app
        image: registry.example/svc:1
        resources: {requests: {cpu: 100m, memory: 64Mi}}
EOF
}
PODS_PER_NODE=110
MEMBERS=(aws azure gcp)
SUBSTRATE=0
usage() { echo "usage: hack/scale-bench.sh [--workloads N] [--seed-history | --substrate]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --workloads) WORKLOADS=${2:?a number}; shift 2 ;;
    --seed-history) SEED=1; shift ;;
    --substrate) SUBSTRATE=1; shift ;;
    *) usage ;;
  esac
done
[[ $WORKLOADS =~ ^[1-9][0-9]*$ ]] || { echo "--workloads must be a positive number" >&2; exit 2; }
for v in QUIET BASELINE CONVERGE_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number of seconds" >&2; exit 2; }
done
[ "$QUIET" -gt 0 ] || { echo "SKYFLEET_BENCH_QUIET must be at least 1" >&2; exit 2; }
[ "$SEED$SUBSTRATE" != 11 ] || { echo "--substrate runs no operator: drop --seed-history" >&2; exit 2; }
if [ "$SEED" = 1 ] && [[ ${SKYFLEET_BENCH_ARGS:-} == *history-step* ]]; then
  echo "--seed-history writes 1-minute steps; drop --history-step from SKYFLEET_BENCH_ARGS" >&2; exit 2
fi

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
k() { kubectl --kubeconfig="$STATE/$1/kubeconfig" "${@:2}"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Waits until `n` MultiCloudWorkloads each print, through the jsonpath `state`, something
# matching the regex `want`; gives up (status 1) after `limit` seconds. It follows one
# watch: a LIST of every workload each second, and its jq, would cost the 2-core machine a
# share of what is being measured (at 1 000 workloads, megabytes of JSON a second).
await_workloads() { # state want n limit
  await_objects mgmt mcw '' "$@"
}
# The same for any namespaced resource of one cluster, those with a label when one is given.
await_objects() { # cluster resource label state want n limit
  local cluster=$1 resource=$2 select=()
  [ -z "$3" ] || select=(-l "$3")
  shift 3
  local key state ok met=0 left rc=1 fd watcher end=$((SECONDS + $4))
  local -A seen=()
  # A watch can end early (the API server drops a watcher that falls behind under load):
  # it is opened again, and its initial list brings every workload's state up to date.
  while [ "$rc" != 0 ] && [ $((end - SECONDS)) -gt 0 ]; do
    coproc WATCH { k "$cluster" get "$resource" "${select[@]}" -A --watch --chunk-size=0 -o jsonpath="{.metadata.namespace}/{.metadata.name} $1{\"\\n\"}" 2>>"$STATE/watch.log"; }
    fd=${WATCH[0]} watcher=$WATCH_PID
    # (The list in one chunk: kubectl prints a chunked list as lists, not as its objects. A
    # shell loop, not awk: mawk waits for a full block of a pipe before it reads a line.)
    while left=$((end - SECONDS)) && [ "$left" -gt 0 ] && IFS=' ' read -r -t "$left" key state <&"$fd"; do
      ok=0
      [[ $state =~ $2 ]] && ok=1
      met=$((met + ok - ${seen[$key]:-0}))
      seen[$key]=$ok
      if [ "$met" -ge "$3" ]; then rc=0; break; fi
    done
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    [ "$rc" = 0 ] || [ $((end - SECONDS)) -le 0 ] || { echo "$(date -u +%T) the watch ended; opened again" >>"$STATE/watch.log"; sleep 0.2; }
  done
  return "$rc"
}

OP_PID=
SAMPLER_PID=
started=0
cleanup() {
  mkdir -p "$OUT"
  cp "$STATE/operator.log" "$STATE/rss.txt" "$STATE/watch.log" "$OUT/" 2>/dev/null || true
  curl -fsS "http://$ADMIN/metrics" >"$OUT/metrics.txt" 2>/dev/null || true
  if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
  if [ -n "$OP_PID" ]; then
    kill -CONT "$OP_PID" 2>/dev/null || true
    kill "$OP_PID" 2>/dev/null || true
  fi
  if [ "$started" = 1 ] && [ -z "${SKYFLEET_KEEP_CLUSTER:-}" ]; then "$HACK/cluster.sh" down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

load_start=$(loadavg)
# The image ships a static musl build (Dockerfile), whose allocator gives memory back
# differently from glibc's: bench that form where this machine can build it.
MUSL=x86_64-unknown-linux-musl
if [ -n "${SKYFLEET_BENCH_BIN:-}" ]; then
  BIN=$SKYFLEET_BENCH_BIN
elif rustup target list --installed 2>/dev/null | grep -qx "$MUSL" && command -v musl-gcc >/dev/null; then
  log "building the operator as the image does (release, $MUSL)"
  (cd "$ROOT" && cargo build --release --quiet -p skyfleet --bin skyfleet --target "$MUSL")
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$MUSL/release/skyfleet
else
  log "building the operator (release, glibc: not the image's musl build; rustup target add $MUSL and install musl-tools for that)"
  (cd "$ROOT" && cargo build --release --quiet -p skyfleet --bin skyfleet)
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/skyfleet
fi
case "$(file -b "$BIN" 2>/dev/null)" in
  *static*) BUILD=static ;;
  *dynamic*) BUILD=dynamic-glibc ;;
  *) BUILD=unknown ;;
esac
"$HACK/build-bins.sh" >/dev/null
if ! "$HACK/cluster.sh" healthy 2>/dev/null; then
  log "starting control planes in $STATE"
  "$HACK/cluster.sh" up >/dev/null
  started=1
elif [ -n "$(k mgmt get mcw -A --no-headers 2>/dev/null)" ]; then
  log "the control planes in $STATE still hold workloads of an earlier run; stop them first:"
  log "  SKYFLEET_CLUSTER_DIR=$STATE SKYFLEET_PORT_BASE=$SKYFLEET_PORT_BASE hack/cluster.sh down"
  exit 1
fi

# Room for every workload at its maximum replicas in each member (a member may hold all of
# them once another is lost), plus a fifth; hack/cluster.sh's three nodes count.
nodes_per_member=$(( (WORKLOADS * MAX_REPLICAS * 6 / 5 + PODS_PER_NODE - 1) / PODS_PER_NODE ))
extra_nodes=$(( nodes_per_member > 3 ? nodes_per_member - 3 : 0 ))
bench_nodes() { # member provider region count
  local n
  for n in $(seq 0 $(($4 - 1))); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $1-bench-$n
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/$1-bench-$n/metrics/resource
  labels:
    kubernetes.io/hostname: $1-bench-$n
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    skyfleet.io/bench-capacity: "true"
    skyfleet.io/provider: $2
    topology.kubernetes.io/region: $3
    topology.kubernetes.io/zone: $3-$((n % 2 + 1))
spec:
  taints: []
status:
  allocatable: {cpu: "32", memory: 128Gi, pods: "$PODS_PER_NODE"}
  capacity: {cpu: "32", memory: 128Gi, pods: "$PODS_PER_NODE"}
EOF
  done
}
if [ "$extra_nodes" -gt 0 ]; then
  log "adding $extra_nodes kwok nodes to each member ($nodes_per_member in all, $((nodes_per_member * PODS_PER_NODE)) pods)"
  for member in "${MEMBERS[@]}"; do
    region=$(k "$member" get node "$member-node-0" -o jsonpath='{.metadata.labels.topology\.kubernetes\.io/region}')
    bench_nodes "$member" "$member" "$region" "$extra_nodes" | k "$member" apply --server-side -f - >/dev/null
  done
  for member in "${MEMBERS[@]}"; do
    k "$member" wait --for=condition=Ready node -l skyfleet.io/bench-capacity=true --timeout=300s >/dev/null
  done
fi

# The bench's namespaces (the label is what the CloudPools' allowedNamespaces select).
ns_manifest=$STATE/namespaces.yaml
: >"$ns_manifest"
for n in $(seq 0 $((NAMESPACES - 1))); do
  printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench-%s, labels: {skyfleet-bench: "true"}}\n---\n' "$n" >>"$ns_manifest"
done

if [ "$SUBSTRATE" = 1 ]; then
  # What the members' own components (API server, etcd, controller manager, scheduler, kwok)
  # take for the pods of a converge and of a failover, with a client that decides nothing:
  # the same Deployments the operator applies, sent straight to the members, all members at
  # once.
  member_deployments() { # member replicas
    local i
    for i in $(seq 0 $((WORKLOADS - 1))); do
      cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-$i
  namespace: bench-$((i % NAMESPACES))
  labels: {skyfleet.io/workload: svc-$i, skyfleet.io/pool: bench-$1}
spec:
  replicas: $2
  selector: {matchLabels: {app: svc-$i}}
EOF
      pod_template "$i"
      echo ---
    done
  }
  send() { # member replicas: 16 applies at a time over kept-alive connections (the
    # operator's concurrency), from a client that spends little CPU (hack/substrate-apply.py)
    local server
    server=$(k "$1" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
    member_deployments "$1" "$2" |
      python3 "$HACK/substrate-apply.py" --server "$server" --ca "$STATE/pki/skyfleet-ca.crt" \
        --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" --clients 16 \
        2>>"$STATE/substrate-apply.log"
  }
  send_all() { # replicas members...: all members at once
    local want=$1 member pid pids=()
    shift
    for member in "$@"; do send "$member" "$want" & pids+=($!); done
    for pid in "${pids[@]}"; do
      wait "$pid" || { log "substrate: a member refused an apply ($STATE/substrate-apply.log)"; exit 1; }
    done
  }
  ready_everywhere() { # replicas members...
    local want=$1 member
    shift
    for member in "$@"; do
      await_objects "$member" deploy skyfleet.io/workload '{.status.readyReplicas}' "^$want\$" "$WORKLOADS" 900 || return 1
    done
  }
  for member in "${MEMBERS[@]}"; do k "$member" apply -f "$ns_manifest" >/dev/null; done
  : >"$STATE/substrate-apply.log"
  log "substrate: applying $WORKLOADS Deployments of 1 replica to each member, no operator"
  t0=$(now)
  send_all 1 "${MEMBERS[@]}"
  sent=$(since "$t0")
  ready_everywhere 1 "${MEMBERS[@]}" || { log "substrate: not all ready after 900 s"; exit 1; }
  converge=$(since "$t0")
  log "substrate: $((WORKLOADS * ${#MEMBERS[@]})) Deployments sent after ${sent}s, every replica ready after ${converge}s"
  sleep "$QUIET"
  log "substrate: stopping the azure member's API server, scaling the survivors' Deployments to 2"
  t_stop=$(now)
  "$HACK/cluster.sh" stop-apiserver azure >/dev/null 2>&1
  stopped=$(since "$t_stop")
  # From here: the survivors' work alone (an operator adds its detection and grace before it).
  t1=$(now)
  send_all 2 aws gcp
  scaled=$(since "$t1")
  ready_everywhere 2 aws gcp || { log "substrate: the survivors are not ready after 900 s"; exit 1; }
  failover=$(since "$t1")
  log "substrate: azure stopped in ${stopped}s; then the survivors scaled after ${scaled}s, every replica ready after ${failover}s"
  "$HACK/cluster.sh" start-apiserver azure >/dev/null 2>&1
  jq -n --argjson workloads "$WORKLOADS" --argjson members "${#MEMBERS[@]}" \
    --argjson nodes "$((extra_nodes + 3))" --arg qps "$SKYFLEET_KCM_QPS/$SKYFLEET_KCM_BURST" \
    --argjson sent "$sent" --argjson converge "$converge" --argjson scaled "$scaled" \
    --argjson failover "$failover" --argjson stopped "$stopped" --arg load "$(loadavg)" '{
      workloads: $workloads, members: $members, kwokNodesPerMember: $nodes,
      controllerManagerQpsBurst: $qps, loadAverageAtEnd: $load,
      converge: {deploymentsSentSeconds: $sent, everyReplicaReadySeconds: $converge},
      failover: {apiServerStopSeconds: $stopped, survivorsScaledSeconds: $scaled,
        everyReplicaReadySeconds: $failover}
    }' | tee "$OUT/substrate.json"
  cp "$STATE/substrate-apply.log" "$OUT/"
  exit 0
fi

log "installing CRDs, member Secrets and one CloudPool per member"
k mgmt apply --server-side -f "$ROOT/crds/" >/dev/null
# kubectl wait fails at once, rather than waiting, while a new CRD has no status.conditions
# yet ("accessor error"), so that is retried.
crds_at=$SECONDS
until k mgmt wait --for=condition=Established crd --all --timeout=60s >/dev/null 2>"$STATE/crd-wait.err"; do
  grep -q 'accessor error' "$STATE/crd-wait.err" && [ $((SECONDS - crds_at)) -lt 60 ] || { cat "$STATE/crd-wait.err" >&2; exit 1; }
  sleep 0.5
done
k mgmt create namespace skyfleet-system --dry-run=client -o yaml | k mgmt apply -f - >/dev/null
prices=(aws:0.04 azure:0.03 gcp:0.05)
for entry in "${prices[@]}"; do
  member=${entry%%:*} price=${entry#*:}
  k mgmt -n skyfleet-system create secret generic "member-$member" \
    --from-file=kubeconfig="$STATE/$member/kubeconfig" --dry-run=client -o yaml | k mgmt apply -f - >/dev/null
  region=$(k "$member" get node "$member-node-0" -o jsonpath='{.metadata.labels.topology\.kubernetes\.io/region}')
  k mgmt apply -f - >/dev/null <<EOF
apiVersion: skyfleet.io/v1alpha1
kind: CloudPool
metadata: {name: bench-$member, labels: {bench: "true"}}
spec:
  provider: $member
  region: ${region:-$member}
  kubeconfigSecretRef: {name: member-$member, namespace: skyfleet-system}
  pricing: {cpuPerHour: $price, memoryGiBPerHour: 0.004}
  allowedNamespaces: {matchLabels: {skyfleet-bench: "true"}}
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
for member in "${MEMBERS[@]}"; do
  k mgmt wait --for=condition=Ready "cloudpool/bench-$member" --timeout=120s >/dev/null
done

k mgmt apply -f "$ns_manifest" >/dev/null

seed_secs=null
if [ "$SEED" = 1 ]; then
  # The stored form DemandHistory::decode reads (operator/src/decide/history.rs): "v1 <step>
  # <start> <v,v,...>", millicores, one value per 60 s step, 7 days (10 080 steps, the
  # default forecast.history at the default --history-step) ending at the last whole
  # minute, so nothing is from the future. Without an owner reference: the operator's first
  # write (server-side apply, forced) adds it. Labels as the operator writes them.
  log "seeding $WORKLOADS WorkloadHistories with 7 days of demand each"
  ts=$(now)
  rm -rf "$STATE/histories" && mkdir -p "$STATE/histories"
  awk -v n="$WORKLOADS" -v nss="$NAMESPACES" -v end="$(( $(date +%s) / 60 * 60 ))" -v dir="$STATE/histories" 'BEGIN {
    steps = 10080; start = end - steps * 60; pi = atan2(0, -1)
    for (m = 0; m < 1440; m++) day[m] = 1 + 0.5 * sin(2 * pi * m / 1440)
    for (i = 0; i < n; i++) {
      srand(i + 1)
      base = 20 + (i * 37) % 40
      f = dir "/bench-" (i % nss) ".yaml"
      printf "---\napiVersion: skyfleet.io/v1alpha1\nkind: WorkloadHistory\nmetadata:\n  name: svc-%d\n  namespace: bench-%d\n", i, i % nss > f
      printf "  labels: {app.kubernetes.io/managed-by: skyfleet, skyfleet.io/workload: svc-%d}\n", i > f
      printf "spec:\n  memory: \"\"\n  history: \"v1 60 %d ", start > f
      # One day of values (the noise repeats daily), written seven times.
      m0 = (start % 86400) / 60
      d = int(base * day[m0] + rand() * 10)
      for (s = 1; s < 1440; s++) d = d "," int(base * day[(m0 + s) % 1440] + rand() * 10)
      printf "%s,%s,%s,%s,%s,%s,%s\"\n", d, d, d, d, d, d, d > f
    }
  }'
  # One kubectl per namespace, three at a time.
  printf '%s\n' "$STATE"/histories/*.yaml |
    xargs -P 3 -I{} kubectl --kubeconfig="$STATE/mgmt/kubeconfig" apply --server-side \
      --field-manager=scale-bench-seed -f {} >/dev/null
  seed_secs=$(since "$ts")
  seeded=$(k mgmt get workloadhistories -A --no-headers | wc -l)
  log "seeded $seeded histories in ${seed_secs}s ($(du -sh "$STATE/histories" | cut -f1) of YAML)"
fi

log "creating $WORKLOADS workloads in $NAMESPACES namespaces"
manifest=$STATE/workloads.yaml
: >"$manifest"
for i in $(seq 0 $((WORKLOADS - 1))); do
  {
    cat <<EOF
apiVersion: skyfleet.io/v1alpha1
kind: MultiCloudWorkload
metadata: {name: svc-$i, namespace: bench-$((i % NAMESPACES))}
spec:
  replicas: {min: 2, max: $MAX_REPLICAS}
EOF
    pod_template "$i"
    cat <<EOF
  placement:
    poolSelector: {matchLabels: {bench: "true"}}
    redundancy: {tolerate: 1, domain: Provider}
---
EOF
  } >>"$manifest"
done
# --- Counting requests --------------------------------------------------------------------
# apiserver_request_total of one API server, summed over code, scope, version and the
# rest: "VERB<TAB>resource[.group][/subresource]<TAB>count" (non-resource paths, such as
# /version and /metrics, as "(nonresource)").
# metrics.k8s.io is served by each member's metrics-server (the aggregator's proxying is not
# counted by kube-apiserver), so its counters are read too, as "<member>-metrics-server".
metrics_text() { # cluster | member-metrics-server
  local i member=${1%-metrics-server}
  if [ "$member" = "$1" ]; then k "$1" get --raw /metrics; return; fi
  for i in "${!MEMBERS[@]}"; do [ "${MEMBERS[$i]}" = "$member" ] && break; done
  curl -fsSk --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" \
    "https://127.0.0.1:$((SKYFLEET_PORT_BASE + 10 + 10 * (i + 1) + 2))/metrics"
}
scrape() { # cluster | member-metrics-server
  metrics_text "$1" | awk '
    function label(name,   at) {
      if (match(line, "[{,]" name "=\"[^\"]*\"")) return substr(line, RSTART + length(name) + 3, RLENGTH - length(name) - 4)
      return ""
    }
    /^apiserver_request_total\{/ {
      line = $0
      res = label("resource"); grp = label("group"); sr = label("subresource")
      key = res == "" ? "(nonresource)" : res (grp == "" ? "" : "." grp) (sr == "" ? "" : "/" sr)
      sum[label("verb") "\t" key] += $NF
    }
    END { for (k in sum) printf "%s\t%d\n", k, sum[k] }'
}
scrape_all() { # file
  local c
  : >"$1"
  for c in mgmt "${MEMBERS[@]}" "${MEMBERS[@]/%/-metrics-server}"; do
    { scrape "$c" || log "could not read the metrics of $c"; } | sed "s/^/$c\t/" >>"$1"
  done
}
# "server VERB resource n" of what was served between two scrapes.
delta() { # before after
  awk -F'\t' 'NR == FNR { b[$1 FS $2 FS $3] = $4; next }
    { d = $4 - b[$1 FS $2 FS $3]; if (d > 0) printf "%s\t%s\t%s\t%d\n", $1, $2, $3, d }' "$1" "$2"
}
scrape_all "$STATE/requests-start.tsv"
t0=$(now)
# Server-side: one request an object (a client-side apply reads each one first).
k mgmt apply --server-side -f "$manifest" >/dev/null
created=$(since "$t0")
log "all $WORKLOADS workloads created after ${created}s"
ready_count() {
  k mgmt get mcw -A -o json |
    jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}
converge=null
if await_workloads '{.status.conditions[?(@.type=="Ready")].status}' '^True$' "$WORKLOADS" "$CONVERGE_TIMEOUT"; then
  converge=$(since "$t0")
else
  log "only $(ready_count) of $WORKLOADS Ready after $CONVERGE_TIMEOUT s; measuring the rest anyway (see $STATE/operator.log)"
fi
scrape_all "$STATE/requests-converged.tsv"
delta "$STATE/requests-start.tsv" "$STATE/requests-converged.tsv" >"$OUT/requests-converging.tsv"
ready_at_end=$(ready_count)
load_converged=$(loadavg)
deployments=0 pods=0 pending=0
for member in "${MEMBERS[@]}"; do
  deployments=$((deployments + $(k "$member" get deploy -A -l skyfleet.io/workload --no-headers 2>/dev/null | wc -l)))
  pods=$((pods + $(k "$member" get pods -A --field-selector=status.phase=Running --no-headers 2>/dev/null | grep -c '^bench-' || true)))
  pending=$((pending + $(k "$member" get pods -A --field-selector=status.phase=Pending --no-headers 2>/dev/null | grep -c '^bench-' || true)))
done
log "$ready_at_end of $WORKLOADS Ready after $(since "$t0")s (converged: $converge): $deployments member Deployments, $pods Running pods, $pending Pending"
peak_converging=$(awk 'max < $2 { max = $2 } END { print max + 0 }' "$STATE/rss.txt")
resumed=$(grep -c 'resumed demand history' "$STATE/operator.log" || true)
refused=$(grep -c 'stored demand history refused\|stored decision memory refused' "$STATE/operator.log" || true)
if [ "$SEED" = 1 ]; then
  log "the operator resumed $resumed seeded histories; log lines saying refused: $refused"
fi
log "settling for 60 s (4 sync periods) to measure memory at rest"
sleep 60
rest=$(awk '/^VmRSS/ { print $2 }' "/proc/$OP_PID/status")

# --- Requests in a quiet window ----------------------------------------------------------
log "counting API requests over a quiet window of ${QUIET}s (nothing changes; SKYFLEET_BENCH_QUIET)"
scrape_all "$STATE/requests-before.tsv"
sleep "$QUIET"
scrape_all "$STATE/requests-after.tsv"
delta "$STATE/requests-before.tsv" "$STATE/requests-after.tsv" >"$OUT/requests-window.tsv"
rest_end=$(awk '/^VmRSS/ { print $2 }' "/proc/$OP_PID/status")
: >"$OUT/requests-baseline.tsv"
if [ "$BASELINE" -gt 0 ]; then
  log "the same for ${BASELINE}s with the operator paused (SIGSTOP): what the other components ask"
  kill -STOP "$OP_PID"
  scrape_all "$STATE/baseline-before.tsv"
  sleep "$BASELINE"
  scrape_all "$STATE/baseline-after.tsv"
  kill -CONT "$OP_PID"
  delta "$STATE/baseline-before.tsv" "$STATE/baseline-after.tsv" >"$OUT/requests-baseline.tsv"
fi
requests=$(jq -n --rawfile window "$OUT/requests-window.tsv" --rawfile base "$OUT/requests-baseline.tsv" \
  --argjson workloads "$WORKLOADS" --argjson quiet "$QUIET" --argjson baseline "$BASELINE" '
  def rows($t): $t | split("\n") | map(select(. != "") | split("\t")
    | {server: .[0], verb: .[1], resource: .[2], n: (.[3] | tonumber)});
  def class: if .verb == "GET" or .verb == "LIST" then "reads"
    elif .verb == "WATCH" then "watches"
    elif (.verb | IN("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")) then "writes"
    else "other" end;
  def r1: . * 10 | round / 10;
  def per($minutes): {
    count: (map(.n) | add // 0 | r1),
    perWorkloadPerMinute: ((map(.n) | add // 0) / $workloads / $minutes * 1000 | round / 1000),
    byResource: (group_by(.verb + " " + .resource) | map({key: (.[0].verb + " " + .[0].resource), value: (map(.n) | add | r1)})
      | sort_by(-.value) | from_entries)
  };
  def summary($minutes): {reads: (map(select(class == "reads")) | per($minutes)),
    watches: (map(select(class == "watches")) | per($minutes)),
    writes: (map(select(class == "writes")) | per($minutes)),
    other: (map(select(class == "other")) | per($minutes))};
  def report($minutes): {total: summary($minutes),
    perApiServer: (group_by(.server) | map({key: .[0].server, value: summary($minutes)}) | from_entries)};
  (rows($window)) as $w | (rows($base)) as $b |
  {windowSeconds: $quiet, workloads: $workloads, all: ($w | report($quiet / 60))}
  + if $baseline > 0 then {
      baselineSeconds: $baseline,
      operatorPaused: ($b | report($baseline / 60)),
      # The window minus the paused baseline scaled to its length: what the operator asked.
      operator: ([$w[] | . as $r | $r + {n: ($r.n - ([$b[] | select(.server == $r.server and .verb == $r.verb and .resource == $r.resource) | .n] | add // 0) * $quiet / $baseline)}]
        + [$b[] | . as $r | select([$w[] | select(.server == $r.server and .verb == $r.verb and .resource == $r.resource)] | length == 0)
            | $r + {n: (-$r.n * $quiet / $baseline)}]
        | map(select(.n | fabs >= 0.5)) | report($quiet / 60))
    } else {} end')
print_requests() { # which
  jq -r --arg which "$1" '.[$which] as $r | ($r.perApiServer | to_entries[] | "  \(.key): " +
      "reads \(.value.reads.count) (\(.value.reads.perWorkloadPerMinute)/workload/min), " +
      "writes \(.value.writes.count) (\(.value.writes.perWorkloadPerMinute)/workload/min), watches ended \(.value.watches.count)" +
      ([.value.reads.byResource, .value.writes.byResource] | add | to_entries | sort_by(-.value) | .[:8]
        | map("\n      \(.key): \(.value)") | join(""))),
    "  total: reads \($r.total.reads.count) (\($r.total.reads.perWorkloadPerMinute)/workload/min), writes \($r.total.writes.count) (\($r.total.writes.perWorkloadPerMinute)/workload/min)"' <<<"$requests"
}
echo "requests served in the ${QUIET}s window, every client:"
print_requests all
if [ "$BASELINE" -gt 0 ]; then
  echo "of which the operator's (the window minus the paused baseline, scaled):"
  print_requests operator
fi

# --- Failover ----------------------------------------------------------------------------
azure_workloads() {
  k mgmt get mcw -A -o json |
    jq '[.items[] | select(any(.status.pools[]?; .name == "bench-azure" and .replicas > 0))] | length'
}
before=$(azure_workloads)
log "stopping the azure member's API server ($before workloads have replicas there)"
scrape_all "$STATE/requests-failover-start.tsv"
t1=$(now)
"$HACK/cluster.sh" stop-apiserver azure >/dev/null 2>&1
# Its graceful shutdown (it answers while it drains) is in every time below; reported apart,
# as --substrate does, so each can be read from when it stopped answering too.
stopped=$(since "$t1")
until [ "$(k mgmt get cloudpool bench-azure -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = False ]; do sleep 0.5; done
detected=$(since "$t1")
log "the API server stopped after ${stopped}s; pool Ready=False after ${detected}s"
replanned=null
if await_workloads '{.status.pools[?(@.name=="bench-azure")].replicas}' '^0?$' "$WORKLOADS" 600; then
  replanned=$(since "$t1") && log "every workload re-planned off azure after ${replanned}s"
else
  log "not re-planned after 600 s: $(azure_workloads) workloads still plan replicas on azure"
fi
# Re-planned in status is also applied in the surviving members: their Deployments add up
# to what status says...
want=$(k mgmt get mcw -A -o json | jq '[.items[].status.pools[]? | select(.name != "bench-azure") | .replicas] | add // 0')
surviving_replicas() {
  local member total=0
  for member in aws gcp; do
    total=$((total + $(k "$member" get deploy -A -l skyfleet.io/workload -o json | jq '[.items[].spec.replicas] | add // 0')))
  done
  echo "$total"
}
applied=null
until [ "$(surviving_replicas)" -ge "$want" ]; do
  [ "$(since "$t1" | cut -d. -f1)" -lt 600 ] || { log "the survivors' Deployments do not add up to $want after 600 s"; break; }
  sleep 0.5
done
got=$(surviving_replicas)
[ "$got" -ge "$want" ] && applied=$(since "$t1") && log "surviving members' Deployments add up to the new plan ($got replicas) after ${applied}s"
# ...and exactly: every workload's Deployment in each surviving pool has the replicas its
# status gives that pool, all of them ready (a pool in status with 0 replicas may have no
# Deployment).
plan_mismatches() {
  { k mgmt get mcw -A -o json | jq -c '{plan: [.items[] | .metadata as $m | .status.pools[]?
        | select(.name != "bench-azure") | {key: "\($m.namespace)/\($m.name)/\(.name)", value: .replicas}] | from_entries}'
    for member in aws gcp; do
      k "$member" get deploy -A -l skyfleet.io/workload -o json | jq -c '{run: [.items[] | .metadata.labels as $l
        | {key: "\($l["skyfleet.io/workload-namespace"])/\($l["skyfleet.io/workload"])/\($l["skyfleet.io/pool"])",
           value: {replicas: (.spec.replicas // 0), ready: (.status.readyReplicas // 0)}}] | from_entries}'
    done
  } | jq -s '(map(.plan // {}) | add) as $plan | (map(.run // {}) | add) as $run
      | [$plan | to_entries[] | select(.value != ($run[.key].replicas // 0) or .value != ($run[.key].ready // 0))]
        + [$run | to_entries[] | select(($plan[.key] // 0) == 0 and .value.replicas > 0)]
      | length'
}
survivors_ok=false survivors=null
until [ "$(plan_mismatches)" -eq 0 ]; do
  [ "$(since "$t1" | cut -d. -f1)" -lt 600 ] || break
  sleep 1
done
mismatches=$(plan_mismatches)
if [ "$mismatches" -eq 0 ]; then
  survivors_ok=true survivors=$(since "$t1")
  log "the survivors run the new plan exactly, every replica ready, after ${survivors}s"
else
  log "after 600 s, $mismatches workload-pool pairs in the survivors differ from the plan (replicas or ready)"
fi

scrape_all "$STATE/requests-failover-end.tsv"
delta "$STATE/requests-failover-start.tsv" "$STATE/requests-failover-end.tsv" >"$OUT/requests-failover.tsv"
t2=$(now)
"$HACK/cluster.sh" start-apiserver azure >/dev/null 2>&1
until [ "$(k mgmt get cloudpool bench-azure -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; do sleep 0.5; done
back=$(since "$t2")
log "azure answers and its pool is Ready after ${back}s"
peak=$(awk 'max < $2 { max = $2 } END { print max + 0 }' "$STATE/rss.txt")

jq -n --argjson workloads "$WORKLOADS" --argjson converge "$converge" --argjson readyAtEnd "$ready_at_end" \
  --argjson deployments "$deployments" --argjson pods "$pods" --argjson pending "$pending" \
  --argjson nodes "$((extra_nodes + 3))" --argjson seeded "$SEED" --argjson seedSeconds "$seed_secs" \
  --argjson resumed "$resumed" --argjson refused "$refused" \
  --argjson rssPeakConvergingKiB "$peak_converging" --argjson rssAtRestKiB "$rest" \
  --argjson rssAfterQuietKiB "$rest_end" --argjson rssPeakKiB "$peak" \
  --argjson onAzure "$before" --argjson stopped "$stopped" --argjson detected "$detected" --argjson replanned "$replanned" \
  --argjson applied "$applied" --argjson survivorsOk "$survivors_ok" --argjson survivors "$survivors" \
  --argjson mismatches "$mismatches" --argjson recovered "$back" --argjson requests "$requests" \
  --arg created "$created" --rawfile converging "$OUT/requests-converging.tsv" --rawfile failingOver "$OUT/requests-failover.tsv" \
  --arg loadStart "$load_start" --arg loadConverged "$load_converged" --arg loadEnd "$(loadavg)" \
  --arg args "${SKYFLEET_BENCH_ARGS:-}" --arg build "$BUILD" --arg kcmQps "$SKYFLEET_KCM_QPS/$SKYFLEET_KCM_BURST" --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  '# Writes per workload in a phase, on each API server, and the five most frequent.
  def writes($t): $t | split("\n") | map(select(. != "") | split("\t")
      | select(.[1] | IN("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"))
      | {server: .[0], what: "\(.[1]) \(.[2])", n: (.[3] | tonumber)})
    | {perWorkload: (map(.n) | add // 0 | . / $workloads * 10 | round / 10),
       byApiServer: (group_by(.server) | map({key: .[0].server, value: (map(.n) | add / $workloads * 10 | round / 10)}) | from_entries),
       top: (sort_by(-.n) | .[:5] | map("\(.server) \(.what): \(.n)"))};
  {workloads: $workloads, members: 3, kwokNodesPerMember: $nodes, commit: $commit, build: $build, controllerManagerQpsBurst: $kcmQps, operatorArgs: $args,
    loadAverage: {start: $loadStart, converged: $loadConverged, end: $loadEnd},
    history: {seeded: ($seeded == 1), seedSeconds: $seedSeconds, resumed: $resumed, logLinesRefused: $refused},
    createdSeconds: ($created | tonumber), convergeSeconds: $converge, readyWorkloads: $readyAtEnd,
    writesPerWorkload: {converging: writes($converging), failover: writes($failingOver)}, memberDeployments: $deployments,
    runningPods: $pods, pendingPods: $pending, rssPeakConvergingKiB: $rssPeakConvergingKiB, rssAtRestKiB: $rssAtRestKiB,
    rssAfterQuietKiB: $rssAfterQuietKiB, rssPeakKiB: $rssPeakKiB, requests: $requests,
    failover: {workloadsOnLostMember: $onAzure, apiServerStopSeconds: $stopped, notReadySeconds: $detected,
    replannedSeconds: $replanned, appliedSeconds: $applied, survivorsRunNewPlan: $survivorsOk,
    survivorsRunNewPlanSeconds: $survivors, survivorMismatches: $mismatches, memberBackReadySeconds: $recovered}}' |
  tee "$OUT/bench.json"
