#!/usr/bin/env bash
# Local Kubernetes control planes for skyfleet's tests and demo, on 127.0.0.1 only.
#
#   hack/cluster.sh up [--members N]      one etcd, a management cluster "mgmt" and N member
#                                         clusters (default 3: aws, azure, gcp), each with its
#                                         own kube-apiserver (own etcd prefix), controller-manager,
#                                         scheduler, kwok nodes and metrics-server
#   hack/cluster.sh down                  stop everything and remove the state
#   hack/cluster.sh status                what runs, and where the kubeconfigs are
#   hack/cluster.sh stop-apiserver NAME   stop one cluster's API server (failover tests)
#   hack/cluster.sh start-apiserver NAME  start it again
#   hack/cluster.sh usage NAME NAMESPACE CPU [POD,...]   (only those pods, when named)
#                                         every pod in NAMESPACE of cluster NAME reports CPU
#                                         (a quantity such as 250m) to metrics.k8s.io
#   hack/cluster.sh kubeconfig NAME       print the path of a cluster's admin kubeconfig
#
# Nothing listens on or connects to anything but 127.0.0.1: kwok nodes have InternalIP
# 127.0.0.1, and metrics.k8s.io is reached through an ExternalName Service pointing at it.
# kwok runs the Stages of hack/kwok/config.sh: a pod is Running and Ready within about a
# second of being scheduled, unless its template asks for a startup time with the annotation
# pod-ready.stage.kwok.x-k8s.io/delay (e.g. "15s"; with .../jitter-delay as well, the time is
# drawn between the two); a deleted pod is gone within about a second.
# Environment: SKYFLEET_CLUSTER_DIR (state, default .local/cluster in the repo),
# SKYFLEET_PORT_BASE (default 17000), SKYFLEET_BIN (binaries, default from hack/versions.sh),
# SKYFLEET_KCM_QPS / SKYFLEET_KCM_BURST (the controller managers' request rate to their API
# servers; default the upstream 20 / 30, hack/scale-bench.sh raises it),
# SKYFLEET_APISERVER_PROFILING=true (serve /debug/pprof on the API servers, for a CPU profile
# taken with the admin certificate; off by default).
set -euo pipefail
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HACK")
source "$HACK/versions.sh"
STATE=${SKYFLEET_CLUSTER_DIR:-$ROOT/.local/cluster}
PORT_BASE=${SKYFLEET_PORT_BASE:-17000}
B=$SKYFLEET_BIN
ETCD_PORT=$((PORT_BASE))
ETCD_PEER_PORT=$((PORT_BASE + 1))

# Member clusters stand for clouds: name provider region, in order.
MEMBERS=("aws aws us-east-1" "azure azure eastus" "gcp gcp us-central1" "onprem onprem dc1" "oci oci us-ashburn-1")

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# Ports of cluster number i (0 = mgmt): apiserver, kwok, metrics-server, kcm, scheduler.
ports() {
  local base=$((PORT_BASE + 10 + 10 * $1))
  API_PORT=$base KWOK_PORT=$((base + 1)) MS_PORT=$((base + 2)) KCM_PORT=$((base + 3)) SCHED_PORT=$((base + 4))
}

cluster_names() { cat "$STATE/clusters" 2>/dev/null || true; }
cluster_index() { local i=0 n; for n in $(cluster_names); do [ "$n" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; die "no cluster named $1 (have: $(cluster_names | tr '\n' ' '))"; }

alive() { local f=$1; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# Starts a component in the background, detached from this shell, and records its command so
# it can be restarted exactly as it was.
spawn() { # dir name cmd...
  local dir=$1 name=$2; shift 2
  printf '%q ' "$@" > "$dir/$name.cmd"
  setsid "$@" >>"$dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}
respawn() { # dir name
  local dir=$1 name=$2
  setsid bash -c "exec $(cat "$dir/$name.cmd")" >>"$dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}
stop_pid() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

wait_for() { # what seconds cmd...
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && die "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pki() {
  local P=$STATE/pki
  [ -s "$P/admin.crt" ] && return 0
  mkdir -p "$P"
  log "writing PKI"
  local q=(-nodes -days 3650)
  ca() {
    openssl req -x509 -newkey rsa:2048 "${q[@]}" -subj "/CN=$1" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      -keyout "$P/$1.key" -out "$P/$1.crt" 2>/dev/null
  }
  leaf() { # ca name subject extensions
    openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$P/$2.key" -out "$P/$2.csr" 2>/dev/null
    openssl x509 -req -in "$P/$2.csr" -CA "$P/$1.crt" -CAkey "$P/$1.key" -CAcreateserial -days 3650 \
      -extfile <(printf '%s\n' "$4") -out "$P/$2.crt" 2>/dev/null
    rm -f "$P/$2.csr"
  }
  ca skyfleet-ca
  ca front-proxy-ca
  leaf skyfleet-ca apiserver /CN=kube-apiserver \
    $'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth'
  leaf skyfleet-ca admin "/O=system:masters/CN=admin" 'extendedKeyUsage=clientAuth'
  leaf front-proxy-ca front-proxy-client /CN=front-proxy-client 'extendedKeyUsage=clientAuth'
  openssl genrsa -out "$P/sa.key" 2048 2>/dev/null
  openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
}

# A self-contained admin kubeconfig (certificates embedded), usable as a member Secret.
kubeconfig() { # name port
  local P=$STATE/pki
  cat > "$STATE/$1/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $1
  cluster:
    server: https://127.0.0.1:$2
    certificate-authority-data: $(base64 -w0 < "$P/skyfleet-ca.crt")
users:
- name: $1-admin
  user:
    client-certificate-data: $(base64 -w0 < "$P/admin.crt")
    client-key-data: $(base64 -w0 < "$P/admin.key")
contexts:
- name: $1
  context:
    cluster: $1
    user: $1-admin
current-context: $1
EOF
}

start_apiserver() { # name index
  local name=$1 P=$STATE/pki dir=$STATE/$1
  ports "$2"
  port_free "$API_PORT" || die "port $API_PORT (apiserver of $name) is taken; set SKYFLEET_PORT_BASE"
  spawn "$dir" kube-apiserver "$B/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --etcd-prefix="/skyfleet/$name" \
    --bind-address=127.0.0.1 --secure-port="$API_PORT" \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --client-ca-file="$P/skyfleet-ca.crt" \
    --service-account-issuer="https://$name.skyfleet.invalid" \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --authorization-mode=Node,RBAC \
    --service-cluster-ip-range=10.96.0.0/16 \
    --allow-privileged=true \
    --kubelet-preferred-address-types=InternalIP \
    --requestheader-client-ca-file="$P/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
    --profiling="${SKYFLEET_APISERVER_PROFILING:-false}"
}

apiserver_ready() { # name
  local p; ports "$(cluster_index "$1")"; p=$API_PORT
  curl -fsS --max-time 2 --cacert "$STATE/pki/skyfleet-ca.crt" "https://127.0.0.1:$p/readyz" >/dev/null
}

start_components() { # name index provider region
  local name=$1 i=$2 dir=$STATE/$1 K=$STATE/$1/kubeconfig P=$STATE/pki
  ports "$i"
  spawn "$dir" kube-controller-manager "$B/kube-controller-manager" \
    --kubeconfig="$K" --authentication-kubeconfig="$K" --authorization-kubeconfig="$K" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false --controllers='*' \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/skyfleet-ca.crt" \
    --cluster-signing-cert-file="$P/skyfleet-ca.crt" --cluster-signing-key-file="$P/skyfleet-ca.key" \
    --node-monitor-grace-period=40s --use-service-account-credentials=false \
    --kube-api-qps="${SKYFLEET_KCM_QPS:-20}" --kube-api-burst="${SKYFLEET_KCM_BURST:-30}"
  spawn "$dir" kube-scheduler "$B/kube-scheduler" \
    --kubeconfig="$K" --authentication-kubeconfig="$K" --authorization-kubeconfig="$K" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false
  kubectl --kubeconfig="$K" apply --server-side -f "$B/kwok-crds/kwok.x-k8s.io_resourceusages.yaml" \
    -f "$B/kwok-crds/kwok.x-k8s.io_clusterresourceusages.yaml" >/dev/null
  spawn "$dir" kwok "$B/kwok" --kubeconfig="$K" --config="$(cat "$STATE/kwok-config")" \
    --enable-crds=ResourceUsage,ClusterResourceUsage \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-port="$KWOK_PORT" --server-address="127.0.0.1:$KWOK_PORT" \
    --node-lease-duration-seconds=40 --cidr=10.244.0.0/16
  nodes "$name" "$3" "$4"
  spawn "$dir" metrics-server "$B/metrics-server" \
    --kubeconfig="$K" --authentication-kubeconfig="$K" --authorization-kubeconfig="$K" \
    --bind-address=127.0.0.1 --secure-port="$MS_PORT" --cert-dir="$dir/metrics-server-certs" \
    --kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port --kubelet-insecure-tls \
    --metric-resolution=10s --kubelet-request-timeout=5s
  kubectl --kubeconfig="$K" apply --server-side -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec: {type: ExternalName, externalName: 127.0.0.1}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {namespace: kube-system, name: metrics-server, port: $MS_PORT}
EOF
}

# kwok nodes labelled with the cluster's provider and region. The aws member also gets a
# tainted spot node group, so one cluster can hold a spot pool and an on-demand pool.
nodes() { # name provider region
  local name=$1 provider=$2 region=$3 K=$STATE/$1/kubeconfig count=3 n extra
  [ "$name" = mgmt ] && count=1
  for n in $(seq 0 $((count - 1))); do
    node_yaml "$name-node-$n" "$provider" "$region" "${region}-$((n % 2 == 0 ? 1 : 2))" ""
  done | kubectl --kubeconfig="$K" apply --server-side -f - >/dev/null
  if [ "$provider" = aws ]; then
    extra=$'    eks.amazonaws.com/capacityType: SPOT\n'
    for n in 0 1; do node_yaml "$name-spot-$n" "$provider" "$region" "${region}-1" "$extra" spot; done \
      | kubectl --kubeconfig="$K" apply --server-side -f - >/dev/null
  fi
}
node_yaml() { # node provider region zone extra-labels [taint]
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/$1/metrics/resource
  labels:
    kubernetes.io/hostname: $1
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    skyfleet.io/provider: $2
    topology.kubernetes.io/region: $3
    topology.kubernetes.io/zone: $4
$5spec:
$( [ -n "${6:-}" ] && printf '  taints:\n  - {key: spot, value: "true", effect: NoSchedule}\n' || printf '  taints: []\n')
status:
  allocatable: {cpu: "32", memory: 128Gi, pods: "110"}
  capacity: {cpu: "32", memory: 128Gi, pods: "110"}
EOF
}

cmd_up() {
  local members=3
  while [ $# -gt 0 ]; do
    case $1 in
      --members) members=${2:?--members needs a number}; shift 2 ;;
      *) die "unknown flag $1" ;;
    esac
  done
  [[ $members =~ ^[0-9]+$ ]] && [ "$members" -ge 1 ] && [ "$members" -le ${#MEMBERS[@]} ] \
    || die "--members must be between 1 and ${#MEMBERS[@]}"
  if [ -f "$STATE/clusters" ]; then
    if [ "$(($(cluster_names | wc -l) - 1))" = "$members" ] && cmd_healthy; then
      log "already up"; cmd_status; return 0
    fi
    log "found a stale or different environment; replacing it"
    cmd_down
  fi
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok metrics-server; do
    [ -x "$B/$b" ] || die "$B/$b is missing: run hack/build-bins.sh"
  done
  [ -s "$B/kwok-config.yaml" ] || die "$B/kwok-config.yaml is missing: run hack/build-bins.sh"
  mkdir -p "$STATE"
  # The config file itself rather than the link to it, so that `healthy` can tell when
  # hack/build-bins.sh has since linked a different one.
  readlink -f "$B/kwok-config.yaml" > "$STATE/kwok-config"
  { echo mgmt; for m in $(seq 0 $((members - 1))); do set -- ${MEMBERS[$m]}; echo "$1"; done; } > "$STATE/clusters"
  pki
  port_free "$ETCD_PORT" || die "port $ETCD_PORT (etcd) is taken; set SKYFLEET_PORT_BASE"
  mkdir -p "$STATE/etcd"
  spawn "$STATE/etcd" etcd "$B/etcd" --name=skyfleet --data-dir="$STATE/etcd/data" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="skyfleet=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level=warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
  local i=0 name
  for name in $(cluster_names); do
    mkdir -p "$STATE/$name"; ports $i; kubeconfig "$name" "$API_PORT"
    start_apiserver "$name" $i; i=$((i + 1))
  done
  for name in $(cluster_names); do wait_for "kube-apiserver of $name" 120 apiserver_ready "$name"; done
  i=0
  for name in $(cluster_names); do
    if [ "$name" = mgmt ]; then start_components mgmt 0 onprem mgmt
    else set -- ${MEMBERS[$((i - 1))]}; start_components "$name" $i "$2" "$3"; fi
    i=$((i + 1))
  done
  for name in $(cluster_names); do
    local K=$STATE/$name/kubeconfig
    wait_for "nodes of $name to be Ready" 120 kubectl --kubeconfig="$K" wait --for=condition=Ready node --all --timeout=2s
    wait_for "metrics.k8s.io on $name" 120 kubectl --kubeconfig="$K" wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=2s
    wait_for "the default ServiceAccount on $name" 60 kubectl --kubeconfig="$K" get serviceaccount default -n default
  done
  cmd_status
}

# True when etcd and every component of every cluster run, every API server is ready, and kwok
# runs the config hack/build-bins.sh links now (after a change to hack/kwok/, `up` replaces the
# environment instead of reusing it).
cmd_healthy() {
  alive "$STATE/etcd/etcd.pid" || return 1
  [ "$(cat "$STATE/kwok-config" 2>/dev/null)" = "$(readlink -f "$B/kwok-config.yaml")" ] || return 1
  local name c
  for name in $(cluster_names); do
    for c in kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server; do
      alive "$STATE/$name/$c.pid" || return 1
    done
    apiserver_ready "$name" || return 1
  done
}

cmd_down() {
  # Every process gets SIGTERM at once, then whatever still runs after 10 s gets SIGKILL; the
  # whole environment is going away, so nothing needs an orderly sequence.
  local f pids=()
  for f in "$STATE"/*/*.pid; do
    [ -f "$f" ] && pids+=("$(cat "$f")")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "${pids[@]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$STATE"
  log "down"
}

cmd_status() {
  local i=0 name state
  [ -f "$STATE/clusters" ] || { log "not up"; return 1; }
  printf 'skyfleet local control planes (state in %s)\n' "$STATE"
  for name in $(cluster_names); do
    ports $i
    if apiserver_ready "$name" 2>/dev/null; then state=ready; else state=down; fi
    printf '  %-8s https://127.0.0.1:%-6s %-6s kubectl --kubeconfig=%s get nodes\n' "$name" "$API_PORT" "$state" "$STATE/$name/kubeconfig"
    i=$((i + 1))
  done
  printf 'stop with: hack/cluster.sh down\n'
}

cmd_usage() { # name namespace cpu [pod,...]
  local name=${1:?cluster} ns=${2:?namespace} cpu=${3:?cpu quantity} pods=${4:-}
  [ -f "$STATE/$name/kubeconfig" ] || die "no cluster named $name"
  local names=""
  [ -n "$pods" ] && names="
    matchNames: [$pods]"
  kubectl --kubeconfig="$STATE/$name/kubeconfig" apply --server-side --force-conflicts -f - >/dev/null <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterResourceUsage
metadata:
  name: usage-$ns
spec:
  selector:
    matchNamespaces: [$ns]$names
  usages:
  - usage:
      cpu: {value: "$cpu"}
      memory: {value: 64Mi}
EOF
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  healthy) cmd_healthy ;;
  stop-apiserver) i=$(cluster_index "${2:?cluster name}"); stop_pid "$STATE/$2/kube-apiserver.pid"; log "stopped the API server of $2" ;;
  start-apiserver)
    i=$(cluster_index "${2:?cluster name}")
    alive "$STATE/$2/kube-apiserver.pid" || respawn "$STATE/$2" kube-apiserver
    wait_for "kube-apiserver of $2" 120 apiserver_ready "$2"
    log "started the API server of $2" ;;
  usage) shift; cmd_usage "$@" ;;
  kubeconfig) cluster_index "${2:?cluster name}" >/dev/null; echo "$STATE/$2/kubeconfig" ;;
  *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
