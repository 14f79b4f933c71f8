#!/usr/bin/env bash
# skyfleet, end to end, on this machine: builds what is missing, starts a management cluster
# and three member clusters (aws, azure, gcp) on 127.0.0.1, installs the CRDs and the chart's
# RBAC, runs the operator as the chart's ServiceAccount, applies the example CloudPools and a
# sped-up `checkout` workload, then replays a demand trace as CPU usage in the members and
# shows what the operator does; half-way one member's API server stops, and later comes back.
#
#   hack/demo.sh [options]      run the demo (leaves clusters and operator running at the end)
#   hack/demo.sh down           stop the operator and the demo's clusters, remove their state
#
# Options:
#   --trace NAME|FILE   a trace shipped in traces/ (nyc_taxi, ec2_cpu_utilization_825cc2, ...)
#                       or any timestamp,value CSV (default: nyc_taxi)
#   --peak-cores N      the trace is scaled so its highest value is N cores (default: 4)
#   --days N            trace days to replay (default: 2)
#   --speed N           trace seconds per real second (default: 720, a day in 2 minutes)
#   --tick SECONDS      real seconds between usage updates (default: 2.5)
#   --fail MEMBER       the member whose API server stops half-way (default: aws, where the
#                       cheapest pool is); --no-failover to skip the outage
#   --show-every N      print the clusters' state every N ticks (default: 4)
#   --dry-run           check the options and read the trace, say what would be replayed, and
#                       stop (builds and starts nothing)
#
# Environment: SKYFLEET_DEMO_DIR (state, default .local/demo), SKYFLEET_DEMO_PORT_BASE (default
# 17500; the tests use 17000), SKYFLEET_DEMO_ADMIN (the operator's /metrics, default
# 127.0.0.1:17590), CARGO_TARGET_DIR (where the skyfleet binary is built).
set -euo pipefail
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HACK")
CALLER_PWD=$PWD   # --trace FILE is relative to where the demo was started
cd "$ROOT"
# shellcheck source=hack/versions.sh
source "$HACK/versions.sh"

STATE=${SKYFLEET_DEMO_DIR:-$ROOT/.local/demo}
PORT_BASE=${SKYFLEET_DEMO_PORT_BASE:-17500}
ADMIN=${SKYFLEET_DEMO_ADMIN:-127.0.0.1:17590}
# hack/cluster.sh reads these: the demo never touches the tests' clusters (.local/cluster, 17000).
export SKYFLEET_CLUSTER_DIR=$STATE SKYFLEET_PORT_BASE=$PORT_BASE
OPDIR=$STATE/operator   # inside the cluster state, so `hack/cluster.sh down` stops it too
SKYFLEET=${CARGO_TARGET_DIR:-$ROOT/target}/release/skyfleet
NS=shop WORKLOAD=checkout SYSNS=skyfleet-system
MEMBERS=(aws azure gcp)
HISTORY_STEP=5

TRACE=nyc_taxi PEAK=4 DAYS=2 SPEED=720 TICK=2.5 FAIL=aws SHOW_EVERY=4 DRY_RUN=
TRACES=$ROOT/traces   # shipped with the repository, so a fresh clone has them

t0=$SECONDS
if [ -t 1 ]; then B=$'\033[1m' R=$'\033[0m'; else B='' R=''; fi
step() { printf '\n%s==> %s%s  (%ss)\n' "$B" "$*" "$R" "$((SECONDS - t0))"; }
say() { printf '    %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

mgmt() { kubectl --kubeconfig="$STATE/mgmt/kubeconfig" --request-timeout=5s "$@"; }
member() { local m=$1; shift; kubectl --kubeconfig="$STATE/$m/kubeconfig" --request-timeout=2s "$@"; }
cluster() { "$HACK/cluster.sh" "$@"; }

stop_operator() {
  local f=$OPDIR/operator.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_down() {
  stop_operator
  cluster down
}

# ---------------------------------------------------------------------------------------------
# Options

parse() {
  while [ $# -gt 0 ]; do
    case $1 in
      --trace) TRACE=${2:?--trace needs a name or file}; shift 2 ;;
      --peak-cores) PEAK=${2:?--peak-cores needs a number}; shift 2 ;;
      --days) DAYS=${2:?--days needs a number}; shift 2 ;;
      --speed) SPEED=${2:?--speed needs a number}; shift 2 ;;
      --tick) TICK=${2:?--tick needs seconds}; shift 2 ;;
      --fail) FAIL=${2:?--fail needs a member name}; shift 2 ;;
      --no-failover) FAIL=; shift ;;
      --show-every) SHOW_EVERY=${2:?--show-every needs a number}; shift 2 ;;
      --dry-run) DRY_RUN=1; shift ;;
      -h|--help) usage 0 ;;
      *) printf 'demo: unknown option %s\n\n' "$1" >&2; usage ;;
    esac
  done
  local n
  for n in "$PEAK" "$DAYS" "$TICK"; do [[ $n =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "not a positive number: $n"; done
  if ! [[ $SPEED =~ ^[0-9]+$ ]] || [ "$SPEED" -lt 60 ]; then die "--speed must be a whole number of at least 60"; fi
  [[ $SHOW_EVERY =~ ^[1-9][0-9]*$ ]] || die "--show-every must be a positive whole number"
  if [ -n "$FAIL" ]; then
    [[ " ${MEMBERS[*]} " == *" $FAIL "* ]] || die "--fail must be one of: ${MEMBERS[*]}"
  fi
  if (cd "$CALLER_PWD" && [ -f "$TRACE" ]); then TRACE_FILE=$(cd "$CALLER_PWD" && realpath "$TRACE")
  elif [ -f "$TRACES/$TRACE.csv" ]; then TRACE_FILE=$(realpath "$TRACES/$TRACE.csv")
  else
    local have=() f
    for f in "$TRACES"/*.csv; do [ -f "$f" ] && have+=("$(basename "$f" .csv)"); done
    die "no trace $TRACE: give a CSV file or one of: ${have[*]:-(none in $TRACES)}"
  fi
}

need() { command -v "$1" >/dev/null || die "$1 is needed ($2)"; }

# ---------------------------------------------------------------------------------------------
# Setup

build() {
  need go "Go builds the control planes; GOTOOLCHAIN=local"
  need cargo "Rust builds the operator"
  need kubectl "the demo talks to the clusters with kubectl"
  need openssl "hack/cluster.sh writes the clusters' certificates"
  need curl "for the operator's /metrics"
  step "building control-plane binaries (hack/build-bins.sh; cached in $SKYFLEET_CACHE after the first time)"
  "$HACK/build-bins.sh" >/dev/null
  step "building the operator (cargo build --release -p skyfleet --bin skyfleet)"
  cargo build --release -p skyfleet --bin skyfleet
  [ -x "$SKYFLEET" ] || die "cargo built no $SKYFLEET (is CARGO_TARGET_DIR different from the build's?)"
}

clusters_up() {
  step "starting the control planes: mgmt + aws, azure, gcp (hack/cluster.sh up, state $STATE, ports $PORT_BASE+)"
  if cluster healthy 2>/dev/null; then
    say "already running: reusing them"
  else
    cluster up
  fi
}

install() {
  stop_operator   # from an earlier run: it would write its history and plans while we set up
  step "installing the CRDs (kubectl apply -f crds/)"
  mgmt apply -f crds/ >/dev/null
  local crd
  for crd in cloudpools.skyfleet.io multicloudworkloads.skyfleet.io; do
    # A new CRD has no conditions for a moment, and `kubectl wait` fails rather than waits.
    for _ in $(seq 60); do
      mgmt wait --for=condition=Established "crd/$crd" --timeout=10s >/dev/null 2>&1 && break
      sleep 0.5
    done
    mgmt wait --for=condition=Established "crd/$crd" --timeout=1s >/dev/null
    say "crd/$crd established"
  done

  step "installing the chart's RBAC (helm template charts/skyfleet: ServiceAccount, ClusterRole, Role, bindings)"
  mgmt apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $SYSNS}
---
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
EOF
  "$SKYFLEET_BIN/helm" template skyfleet charts/skyfleet -n "$SYSNS" \
      --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml \
    | mgmt apply -f - | sed 's/^/    /'
  # The operator runs here, not in a pod, but as the chart's ServiceAccount: only the chart's
  # RBAC stands behind it.
  mkdir -p "$OPDIR"
  local token kc=$OPDIR/kubeconfig
  token=$(mgmt create token skyfleet -n "$SYSNS" --duration=24h)
  cp "$STATE/mgmt/kubeconfig" "$kc"
  kubectl --kubeconfig="$kc" config set-credentials skyfleet-sa --token="$token" >/dev/null
  kubectl --kubeconfig="$kc" config set-context --current --user=skyfleet-sa >/dev/null
  say "operator kubeconfig $kc is $(kubectl --kubeconfig="$kc" auth whoami -o 'jsonpath={.status.userInfo.username}')"

  step "member kubeconfig Secrets in $SYSNS (self-contained: certificates embedded)"
  local m
  for m in "${MEMBERS[@]}"; do
    mgmt -n "$SYSNS" create secret generic "member-$m" --from-file=kubeconfig="$STATE/$m/kubeconfig" \
      --dry-run=client -o yaml | mgmt apply -f - | sed 's/^/    /'
  done

  step "applying the example CloudPools (crds/examples/cloudpools.yaml)"
  mgmt apply -f crds/examples/cloudpools.yaml | sed 's/^/    /'
  # A previous run's demand history would be stale: the trace starts again.
  mgmt -n "$NS" delete configmap "$WORKLOAD-skyfleet-history" --ignore-not-found >/dev/null
}

apply_workload() {
  step "applying the workload (hack/demo/checkout.yaml: crds/examples' checkout on the demo's clock)"
  local season=$((86400 / SPEED)) history=$((7 * 86400 / SPEED)) desired=''
  sed -e "s/^      season: 2m\$/      season: ${season}s/" -e "s/^      history: 14m\$/      history: ${history}s/" \
    hack/demo/checkout.yaml | mgmt apply -f - | sed 's/^/    /'
  say "forecast season ${season}s (one trace day at --speed $SPEED), history ${history}s, horizon 15s, step ${HISTORY_STEP}s"
  for _ in $(seq 60); do
    desired=$(mgmt -n "$NS" get mcw "$WORKLOAD" -o jsonpath='{.status.desiredReplicas}' 2>/dev/null || true)
    [ -n "$desired" ] && [ "$desired" != 0 ] && break
    sleep 0.5
  done
  say "placed: ${desired:-nothing yet} replicas"
}

start_operator() {
  step "starting the operator (skyfleet operator, as ServiceAccount $SYSNS/skyfleet)"
  stop_operator
  local host=${ADMIN%:*} port=${ADMIN##*:}
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then die "$ADMIN is taken; set SKYFLEET_DEMO_ADMIN"; fi
  mkdir -p "$OPDIR"
  local args=(operator --kubeconfig="$OPDIR/kubeconfig" --member-kubeconfig-namespace="$SYSNS"
    --admin-address="$ADMIN" --leader-elect --lease-namespace="$SYSNS" --lease-name=skyfleet-leader
    --identity=demo --probe-period=2s --sync-period=5s --failover-grace=20s --history-step="${HISTORY_STEP}s")
  printf '    %s' "$SKYFLEET"; printf ' %s' "${args[@]}"; printf '\n'
  RUST_LOG=info setsid "$SKYFLEET" "${args[@]}" >>"$OPDIR/operator.log" 2>&1 </dev/null &
  echo $! > "$OPDIR/operator.pid"
  for _ in $(seq 60); do
    curl -fsS --max-time 1 "http://$ADMIN/readyz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$OPDIR/operator.pid")" 2>/dev/null || { tail -20 "$OPDIR/operator.log" >&2; die "the operator exited (log above)"; }
    sleep 0.5
  done
  curl -fsS --max-time 1 "http://$ADMIN/readyz" >/dev/null || die "the operator is not ready after 30s; see $OPDIR/operator.log"
  say "ready: http://$ADMIN/metrics, log $OPDIR/operator.log"
  local want=$(( ${#MEMBERS[@]} + 1 )) ready=0
  for _ in $(seq 60); do
    ready=$(mgmt get cpool -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
    [ "$ready" -ge "$want" ] && break
    sleep 0.5
  done
  say "$ready of $want CloudPools Ready"
  mgmt get cpool | sed 's/^/    /'
}

# ---------------------------------------------------------------------------------------------
# The trace

# One line per tick: "<trace time> <demand in millicores>", the mean of the samples the tick
# covers, scaled so the trace's highest value is --peak-cores.
load_trace() {
  local t1 t2 step_secs per_tick ticks
  t1=$(sed -n 2p "$TRACE_FILE" | cut -d, -f1); t2=$(sed -n 3p "$TRACE_FILE" | cut -d, -f1)
  step_secs=$(( $(date -ud "$t2" +%s) - $(date -ud "$t1" +%s) ))
  [ "$step_secs" -gt 0 ] || die "cannot read the sample spacing of $TRACE_FILE"
  per_tick=$(awk -v s="$SPEED" -v t="$TICK" -v d="$step_secs" 'BEGIN { n = int(s * t / d + 0.5); print (n < 1 ? 1 : n) }')
  ticks=$(awk -v days="$DAYS" -v d="$step_secs" -v k="$per_tick" 'BEGIN { print int(days * 86400 / d / k) }')
  mapfile -t TICKS < <(awk -F, -v peak="$PEAK" -v k="$per_tick" -v max_ticks="$ticks" '
    BEGIN { n = 0; hi = 0 }
    NR > 1 && $2 != "" { ts[n] = $1; v[n] = $2 + 0; if (v[n] > hi) hi = v[n]; n++ }
    END {
      if (hi <= 0) exit 1
      for (i = 0; i + k <= n && i / k < max_ticks; i += k) {
        s = 0; for (j = i; j < i + k; j++) s += v[j]
        t = substr(ts[i], 1, 16); gsub(/ /, "_", t)
        printf "%s %d\n", t, s / k / hi * peak * 1000 + 0.5
      }
    }' "$TRACE_FILE")
  [ ${#TICKS[@]} -gt 0 ] || die "$TRACE_FILE gave no samples"
  say "$TRACE_FILE: one sample every ${step_secs}s, $per_tick per tick of ${TICK}s, ${#TICKS[@]} ticks (${DAYS} days), peak $PEAK cores"
}

# ---------------------------------------------------------------------------------------------
# The show

declare -A LAST_USAGE=()
DOWN=

running_pods() { # member
  member "$1" -n "$NS" get pods -l "app=$WORKLOAD" --field-selector=status.phase=Running -o name 2>/dev/null | wc -l
}

# Spreads the demand over the workload's Running pods in the members that answer: each of
# them reports demand / pods of CPU (a member that is down serves nothing).
drive() { # millicores
  local demand=$1 m total=0 per
  declare -A pods=()
  for m in "${MEMBERS[@]}"; do
    [ "$m" = "$DOWN" ] && continue
    pods[$m]=$(running_pods "$m")
    total=$((total + pods[$m]))
  done
  SERVING=$total
  [ "$total" -gt 0 ] || return 0
  per=$(( (demand + total - 1) / total ))
  [ "$per" -ge 1 ] || per=1
  for m in "${!pods[@]}"; do
    [ "${LAST_USAGE[$m]:-}" = "$per" ] && continue
    cluster usage "$m" "$NS" "${per}m" && LAST_USAGE[$m]=$per
  done
  PER_POD=$per
}

cores() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }

show() { # tick label demand
  local m
  SHOWN=$1
  printf '\n%s--- %s  demand %s cores over %s pods (%sm each)  tick %s/%s  %ss ---%s\n' \
    "$B" "${2//_/ }" "$(cores "$3")" "${SERVING:-0}" "${PER_POD:-0}" "$1" "${#TICKS[@]}" "$((SECONDS - t0))" "$R"
  mgmt get cpool,mcw -n "$NS" 2>&1 | sed 's/^/  /'
  mgmt get mcw "$WORKLOAD" -n "$NS" -o jsonpath='  demand {.status.demand.currentCores} cores now, forecast peak {.status.demand.forecastPeakCores} ({.status.demand.model}, {.status.demand.historySamples} samples){"\n"}  traffic: {.status.traffic.split}{"\n"}  why: {.status.message}{"\n"}' 2>&1 || true
  for m in "${MEMBERS[@]}"; do
    if [ "$m" = "$DOWN" ]; then
      printf '  [%s] API server stopped\n' "$m"
    else
      member "$m" -n "$NS" get deploy -l "skyfleet.io/workload=$WORKLOAD" --no-headers 2>&1 \
        | sed "s/^/  [$m] /" || true
    fi
  done
}

pool_ready() { # pool
  mgmt get cpool "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null
}
planned() { # pool
  mgmt get mcw "$WORKLOAD" -n "$NS" -o jsonpath="{.status.pools[?(@.name==\"$1\")].replicas}" 2>/dev/null
}

events() {
  printf '  the latest skyfleet events (kubectl get events -A --field-selector involvedObject.apiVersion=skyfleet.io/v1alpha1):\n'
  mgmt get events -A --field-selector involvedObject.apiVersion=skyfleet.io/v1alpha1 --sort-by=.eventTime \
    -o custom-columns='TIME:.eventTime,KIND:.involvedObject.kind,NAME:.involvedObject.name,REASON:.reason,MESSAGE:.message' \
    2>/dev/null | tail -6 | cut -c1-220 | sed 's/^/    /' || true
}

# What the outage looks like from the management cluster, each stage announced once:
# down -> Ready=False -> replicas planned elsewhere; up -> Ready=True and back in the plan.
PHASE='' SINCE=0 POOL='' SHOWN=''
watch_failover() { # tick label demand
  [ -n "$POOL" ] || return 0
  local ready planned
  case $PHASE in
    down)
      [ "$(pool_ready "$POOL")" = False ] || return 0
      PHASE=not-ready
      step "$POOL is Ready=False, $((SECONDS - SINCE))s after its API server stopped"
      mgmt get cpool "$POOL" -o jsonpath='    {.status.conditions[?(@.type=="Ready")].reason}: {.status.conditions[?(@.type=="Ready")].message}{"\n"}' || true
      mgmt get mcw "$WORKLOAD" -n "$NS" -o jsonpath='    traffic now: {.status.traffic.split} (its replicas stay planned for the grace){"\n"}' 2>/dev/null || true
      ;;
    not-ready)
      planned=$(planned "$POOL")
      [ "${planned:-0}" = 0 ] || return 0
      PHASE=failed-over
      step "FAILOVER: $POOL's replicas are planned elsewhere, $((SECONDS - SINCE))s after its API server stopped"
      show "$@"
      events
      ;;
    up)
      ready=$(pool_ready "$POOL"); planned=$(planned "$POOL")
      [ "$ready" = True ] && [ "${planned:-0}" != 0 ] || return 0
      PHASE=back
      step "$POOL is Ready and back in the plan ($planned replicas), $((SECONDS - SINCE))s after its API server started"
      show "$@"
      ;;
  esac
}

# shellcheck disable=SC2317  # called from a trap
restore() {
  if [ -n "$DOWN" ]; then
    say "starting the API server of $DOWN again"
    cluster start-apiserver "$DOWN" || true
    DOWN=
  fi
}

replay() {
  step "replaying $(basename "$TRACE_FILE") as CPU usage in the members (${#TICKS[@]} ticks of ${TICK}s)"
  say "every tick: demand / Running pods of $WORKLOAD across the members that answer = each pod's CPU (hack/cluster.sh usage)"
  local n=${#TICKS[@]} i=0 label demand start next stop_at=-1 back_at=-1
  # The member's standard-tier pool: the one the workload's poolSelector uses.
  [ -z "$FAIL" ] || POOL=$(mgmt get cpool -l skyfleet.io/tier=standard --no-headers \
    -o custom-columns=NAME:.metadata.name,SECRET:.spec.kubeconfigSecretRef.name | awk -v s="member-$FAIL" '$2 == s {print $1; exit}')
  if [ -n "$FAIL" ]; then stop_at=$((n / 2)); back_at=$((n * 3 / 4)); fi
  trap 'restore' EXIT
  trap 'printf "\ninterrupted\n"; restore; exit 130' INT TERM
  start=$(date +%s.%N)
  for ((i = 0; i < n; i++)); do
    read -r label demand <<<"${TICKS[$i]}"
    if [ "$i" = "$stop_at" ]; then
      show "$i" "$label" "$demand"
      step "OUTAGE: stopping the API server of $FAIL (hack/cluster.sh stop-apiserver $FAIL); pool $POOL has $(planned "$POOL") replicas planned"
      SINCE=$SECONDS
      cluster stop-apiserver "$FAIL"
      DOWN=$FAIL; PHASE=down
      say "the operator marks the pool Ready=False within seconds, keeps its share for --failover-grace=20s, then plans around it"
    fi
    if [ "$i" = "$back_at" ]; then
      show "$i" "$label" "$demand"
      step "RECOVERY: starting the API server of $FAIL again (hack/cluster.sh start-apiserver $FAIL)"
      SINCE=$SECONDS
      cluster start-apiserver "$FAIL"
      DOWN=; LAST_USAGE=(); PHASE=up
    fi
    drive "$demand"
    watch_failover "$i" "$label" "$demand"
    if [ $((i % SHOW_EVERY)) = 0 ] && [ "$SHOWN" != "$i" ]; then show "$i" "$label" "$demand"; fi
    next=$(awk -v s="$start" -v t="$TICK" -v i="$i" 'BEGIN { printf "%.3f", s + (i + 1) * t }')
    sleep "$(awk -v n="$next" -v now="$(date +%s.%N)" 'BEGIN { d = n - now; printf "%.2f", (d > 0 ? d : 0) }')"
  done
  show "$n" "$label" "$demand"
  trap - EXIT INT TERM
}

finish() {
  step "done in $((SECONDS - t0))s; the clusters and the operator keep running"
  cat <<EOF
    kubeconfigs:   $STATE/{mgmt,aws,azure,gcp}/kubeconfig (admin)
                   $OPDIR/kubeconfig (the operator's ServiceAccount)
      kubectl --kubeconfig=$STATE/mgmt/kubeconfig get cpool,mcw -A
      kubectl --kubeconfig=$STATE/mgmt/kubeconfig describe mcw $WORKLOAD -n $NS
      kubectl --kubeconfig=$STATE/aws/kubeconfig get deploy,pods -n $NS
    metrics:       curl -s http://$ADMIN/metrics | grep ^skyfleet
    operator log:  $OPDIR/operator.log (pid $(cat "$OPDIR/operator.pid" 2>/dev/null))
    usage by hand: SKYFLEET_CLUSTER_DIR=$STATE SKYFLEET_PORT_BASE=$PORT_BASE hack/cluster.sh usage aws $NS 300m
    stop:          hack/demo.sh down
                   (or: kill the operator, then SKYFLEET_CLUSTER_DIR=$STATE SKYFLEET_PORT_BASE=$PORT_BASE hack/cluster.sh down)
EOF
}

case ${1:-} in
  down) shift; [ $# = 0 ] || usage; cmd_down ;;
  -h|--help|help) usage 0 ;;
  *)
    [ "${1:-}" = run ] && shift
    parse "$@"
    if [ -n "$DRY_RUN" ]; then
      load_trace
      say "dry run: would replay $TRACE_FILE with --fail ${FAIL:-(none)}; nothing was built or started"
      exit 0
    fi
    build
    clusters_up
    install
    start_operator
    apply_workload
    step "reading the trace"
    load_trace
    replay
    finish
    ;;
esac
# Bash reads a script as it runs: stop here, so that editing this file during a demo cannot
# make the running one execute whatever now sits past this point.
exit 0
