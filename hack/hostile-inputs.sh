#!/usr/bin/env bash
# Throws hostile or broken tenant input at a running operator on the local control planes
# and prints, for each, what the API server or the operator answered, and the operator's RSS
# and liveness afterwards (a report, not a test: the tests assert each behaviour).
#   hack/hostile-inputs.sh            uses the clusters of hack/cluster.sh (started if needed)
# Output: a Markdown table on stdout; the operator's log in target/hostile-inputs/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${CARGO_TARGET_DIR:-$ROOT/target}/hostile-inputs
mkdir -p "$OUT"
hack/cluster.sh healthy >/dev/null 2>&1 || hack/cluster.sh up >&2
MG=".local/cluster/mgmt/kubeconfig"
k() { kubectl --kubeconfig="$MG" "$@"; }
kubectl --kubeconfig="$MG" apply -f crds/ >/dev/null
k wait --for=condition=Established crd --all --timeout=60s >/dev/null
cargo build -q -p skyfleet --bin skyfleet
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/skyfleet
RUN=h$$
NS=hostile-$RUN
SECRETS=hostile-secrets-$RUN
k create namespace "$NS" >/dev/null
k create namespace "$SECRETS" >/dev/null
ADMIN=127.0.0.1:$((17900 + RANDOM % 90))
"$BIN" operator --kubeconfig="$MG" --admin-address="$ADMIN" --namespace="$NS" \
  --member-kubeconfig-namespace="$SECRETS" --probe-period=2s --sync-period=2s \
  --history-step=5s >"$OUT/operator.log" 2>&1 &
OP=$!
trap 'kill $OP 2>/dev/null; k delete namespace "$NS" "$SECRETS" --wait=false >/dev/null 2>&1; k delete cpool -l hostile-run=$RUN --wait=false >/dev/null 2>&1' EXIT
for _ in $(seq 50); do curl -fs "http://$ADMIN/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$OP/status"; }
alive() { curl -fs -o /dev/null -w '%{http_code}' "http://$ADMIN/healthz" 2>/dev/null || echo down; }
short() { tr '\n' ' ' | sed -e 's/\s\+/ /g' -e 's/|/\\|/g' | cut -c1-"${1:-160}"; }
row() { printf '| %s | %s | %s | %s | %s |\n' "$N" "$1" "$2" "$(rss)" "$(alive)"; }
N=0
printf "| # | input | answer | operator RSS after | /healthz after |\n|---|---|---|---|---|\n"

good_workload() { # name, extra JSON merged into spec (jq-free: a Python one-liner)
  python3 - "$1" "$2" "$NS" "$RUN" <<'PY'
import json, sys
name, extra, ns, run = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
spec = {"replicas": {"min": 1, "max": 4},
        "template": {"metadata": {"labels": {"app": "h"}},
                     "spec": {"containers": [{"name": "c", "image": "x",
                              "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
        "scaling": {"forecast": {"model": "None"}},
        "placement": {"poolSelector": {"matchLabels": {"hostile-run": run}}, "redundancy": {"tolerate": 0}}}
def merge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict): merge(a[k], v)
        else: a[k] = v
merge(spec, extra)
print(json.dumps({"apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
                  "metadata": {"name": name, "namespace": ns}, "spec": spec}))
PY
}

# 1. The API server refuses (schema and CEL).
refused() { # what, JSON
  N=$((N + 1))
  local out
  if out=$(echo "$2" | k apply -f - 2>&1); then row "$1" "ACCEPTED: $(echo "$out" | short)"; else row "$1" "refused: $(echo "$out" | sed 's/.*is invalid: //' | short)"; fi
}
refused "replicas.max 100000" "$(good_workload w1 '{"replicas": {"max": 100000}}')"
refused "replicas.min above max" "$(good_workload w2 '{"replicas": {"min": 9, "max": 4}}')"
refused "history 365d" "$(good_workload w3 '{"scaling": {"forecast": {"history": "365d"}}}')"
refused "history 0s" "$(good_workload w4 '{"scaling": {"forecast": {"history": "0s"}}}')"
refused "horizon 48h" "$(good_workload w5 '{"scaling": {"forecast": {"horizon": "48h"}}}')"
refused "season 30d" "$(good_workload w6 '{"scaling": {"forecast": {"season": "30d", "history": "90d"}}}')"
refused "season longer than history" "$(good_workload w7 '{"scaling": {"forecast": {"season": "7d", "history": "2d"}}}')"
refused "horizon not below history" "$(good_workload w8 '{"scaling": {"forecast": {"horizon": "2h", "history": "2h"}}}')"
refused "duration garbage 1y" "$(good_workload w9 '{"scaling": {"forecast": {"history": "1y"}}}')"
refused "scaleDownStabilization 48h" "$(good_workload w10 '{"scaling": {"scaleDownStabilization": "48h"}}')"
refused "tolerate 9" "$(good_workload w11 '{"placement": {"redundancy": {"tolerate": 9}}}')"
refused "quantile 1.5" "$(good_workload w12 '{"scaling": {"forecast": {"quantile": 1.5}}}')"
refused "target utilisation 0" "$(good_workload w13 '{"scaling": {"targetCPUUtilizationPercentage": 0}}')"
refused "workload name of 70 characters" "$(good_workload "$(printf 'a%.0s' $(seq 70))" '{}')"
refused "template label skyfleet.io/pool" "$(good_workload w15 '{"template": {"metadata": {"labels": {"app": "h", "skyfleet.io/pool": "x"}}}}')"
N=$((N + 1))
good_workload w16 '{"placement": {"poolSelector": {"matchExpressions": [{"key": "a", "operator": "Sometimes", "values": ["b"]}]}}}' | k apply -f - >/dev/null 2>&1 || true
sleep 4
row "poolSelector operator Sometimes" "accepted by the API server; operator: $(k get mcw w16 -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Degraded")].reason}: {.status.conditions[?(@.type=="Degraded")].message}' | short)"
refused "maxMovesPerDecision -1" "$(good_workload w17 '{"placement": {"maxMovesPerDecision": -1}}')"
pool() { # name, extra spec JSON
  python3 -c 'import json,sys; s={"provider":"aws","region":"r","pricing":{"cpuPerHour":0.01,"memoryGiBPerHour":0.001}}; s.update(json.loads(sys.argv[2])); print(json.dumps({"apiVersion":"skyfleet.io/v1alpha1","kind":"CloudPool","metadata":{"name":sys.argv[1],"labels":{"hostile-run":sys.argv[3]}},"spec":s}))' "$1" "$2" "$RUN"
}
refused "CloudPool name of 70 characters" "$(pool "$(printf 'p%.0s' $(seq 70))" '{}')"
refused "CloudPool provider AWS!" "$(pool p2-$RUN '{"provider": "AWS!"}')"
refused "CloudPool negative price" "$(pool p3-$RUN '{"pricing": {"cpuPerHour": -1, "memoryGiBPerHour": 0.001}}')"
refused "CloudPool capacity cpu -4" "$(pool p4-$RUN '{"capacity": {"cpu": "-4"}}')"
refused "CloudPool podSecurity privileged" "$(pool p5-$RUN '{"podSecurity": {"enforce": "privileged"}}')"
refused "CloudPool allowedNamespaces with no labels" "$(pool p6-$RUN '{"allowedNamespaces": {"matchLabels": {}}}')"
refused "CloudPool Secret in a bad namespace name" "$(pool p7-$RUN '{"kubeconfigSecretRef": {"name": "s", "namespace": "Bad_NS"}}')"

# 2. The operator answers: a good workload, then its stored history made hostile.
N=$((N + 1))
good_workload hist '{}' | k apply -f - >/dev/null
for _ in $(seq 60); do k get workloadhistory hist -n "$NS" >/dev/null 2>&1 && break; sleep 1; done
row "a good workload (baseline)" "accepted; WorkloadHistory written"
history() { # what, history text
  N=$((N + 1))
  # The operator reads the history once per process: stop it (so it cannot write its own
  # over the edit), edit, and start it again so that it reads this one.
  kill -KILL $OP; wait $OP 2>/dev/null || true
  local out
  local before
  before=$(k get mcw hist -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="HistoryValid")].message}' 2>/dev/null || true)
  printf '%s' "$2" | python3 -c 'import json,sys; print(json.dumps({"spec": {"history": sys.stdin.read()}}))' >"$OUT/patch.json"
  out=$(k patch workloadhistory hist -n "$NS" --type=merge --patch-file="$OUT/patch.json" 2>&1) || true
  "$BIN" operator --kubeconfig="$MG" --admin-address="$ADMIN" --namespace="$NS" \
    --member-kubeconfig-namespace="$SECRETS" --probe-period=2s --sync-period=2s \
    --history-step=5s >>"$OUT/operator.log" 2>&1 &
  OP=$!
  for _ in $(seq 50); do curl -fs "http://$ADMIN/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  if [[ $out == *invalid* || $out == *rror* ]]; then
    row "$1" "refused by the API server: $(echo "$out" | sed 's/.*is invalid: //' | short)"; return
  fi
  # The answer of the process just started: a new refusal, or none (accepted or clamped).
  local cond="" msg=""
  for _ in $(seq 24); do
    msg=$(k get mcw hist -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="HistoryValid")].message}' 2>/dev/null || true)
    [ -n "$msg" ] && [ "$msg" != "$before" ] && break; sleep 0.5
  done
  cond=$(k get mcw hist -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="HistoryValid")].reason}: {.status.conditions[?(@.type=="HistoryValid")].message}' 2>/dev/null || true)
  if [ "$msg" = "$before" ] || [ -z "$msg" ]; then
    cond="accepted, clamped to the window ($(k get wlh hist -n "$NS" -o jsonpath='{.spec.history}' | cut -c1-40)… stored after); HistoryValid: ${cond:-none}"
  fi
  row "$1" "$(echo "$cond" | sed 's/ (read at [^)]*)//' | short 200)"
}
NOW=$(date +%s)
history "history start 0 (pads 1.8e9 s of gaps)" "v1 5 0 1000"
history "history start in the future" "v1 5 $((NOW + 86400)) 100,200"
history "negative and NaN values" "v1 5 $((NOW - 60)) -5,NaN,inf"
history "garbage" "zzz not a history"
history "unknown version" "v9 5 $((NOW - 60)) 1,2"
history "a step that is not the operator's" "v1 60 $((NOW - 600)) 1,2,3"
history "300 KiB of values" "v1 5 $((NOW - 60)) $(python3 -c 'print(",".join(["1"]*150000))')"
history "a million-step v2 compaction factor" "v2 5 $((NOW - 600)) 1000000 1,2 3,4"

# 3. Kubeconfig Secrets: the pool says why, the Secret's bytes appear nowhere.
secret_pool() { # what, kubeconfig text
  N=$((N + 1))
  local name="s$N-$RUN"
  k create secret generic "$name" -n "$SECRETS" --from-literal=kubeconfig="$2" >/dev/null
  pool "$name" "{\"kubeconfigSecretRef\": {\"name\": \"$name\", \"namespace\": \"$SECRETS\"}}" | k apply -f - >/dev/null
  local msg=""
  for _ in $(seq 30); do
    msg=$(k get cpool "$name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}: {.status.conditions[?(@.type=="Ready")].message}' 2>/dev/null || true)
    [ -n "$msg" ] && [ "$msg" != ": " ] && break; sleep 0.5
  done
  local leaked=no
  grep -q "sk-FAKE" "$OUT/operator.log" && leaked=yes
  k get events -A -o json | grep -q "sk-FAKE" && leaked=yes
  k get cpool "$name" -o json | grep -q "sk-FAKE" && leaked=yes
  row "$1" "$(echo "$msg" | short 150) (token leaked: $leaked)"
}
CFG() { printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster:\n    server: %s\n%s\nusers:\n- name: u\n  user:\n%s\ncontexts:\n- name: m\n  context: {cluster: m, user: u}\ncurrent-context: m\n' "$1" "$2" "$3"; }
TOK='    token: sk-FAKE-0123456789'
secret_pool "kubeconfig with an exec plugin" "$(CFG https://127.0.0.1:1 '    certificate-authority-data: Zm9v' "$TOK
    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}")"
secret_pool "kubeconfig with http://" "$(CFG http://127.0.0.1:1 '' "$TOK")"
secret_pool "kubeconfig with a tokenFile path" "$(CFG https://127.0.0.1:1 '    certificate-authority-data: Zm9v' '    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token')"
secret_pool "kubeconfig with insecure-skip-tls-verify" "$(CFG https://127.0.0.1:1 '    insecure-skip-tls-verify: true' "$TOK")"
secret_pool "kubeconfig with a proxy-url" "$(CFG https://127.0.0.1:1 '    proxy-url: http://127.0.0.1:3128' "$TOK")"
secret_pool "kubeconfig that is invalid YAML around a token" "users: [ {token: sk-FAKE-0123456789 ::: ]"
secret_pool "kubeconfig with a token where a list belongs" "users: sk-FAKE-0123456789"
secret_pool "kubeconfig with broken certificate data" "$(CFG https://127.0.0.1:1 '    certificate-authority-data: sk-FAKE-notbase64' "$TOK")"
N=$((N + 1))
pool "nokey-$RUN" "{\"kubeconfigSecretRef\": {\"name\": \"s34-$RUN\", \"namespace\": \"$SECRETS\", \"key\": \"nope\"}}" | k apply -f - >/dev/null
sleep 4
row "Secret without the key named" "$(k get cpool nokey-$RUN -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}: {.status.conditions[?(@.type=="Ready")].message}' | short)"
echo >&2 "operator log: $OUT/operator.log"
