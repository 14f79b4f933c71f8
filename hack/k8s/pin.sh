#!/usr/bin/env bash
# Regenerates hack/k8s/go.mod and go.sum for a Kubernetes release, e.g. `hack/k8s/pin.sh v1.34.10`.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local paths,
# so it cannot be `go install`ed; this main module replaces every staging module with the
# published tag that matches the release instead.
set -euo pipefail
cd "$(dirname "$0")"
V=${1:?usage: pin.sh v1.34.x}
SV="v0.${V#v1.}"
export GOTOOLCHAIN=local
GOMOD=$(go mod download -json "k8s.io/kubernetes@${V}" | sed -n 's/.*"GoMod": "\([^"]*\)".*/\1/p')
GOLINE=$(sed -n 's/^go //p' "$GOMOD" | head -1)
GODEBUG_LINES=$(awk '/^godebug \(/{b=1} b{print} b&&/^\)/{b=0} /^godebug [^(]/{print}' "$GOMOD")
MODS=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/src/.*#\1#p' "$GOMOD")
{
  printf 'module skyfleet.invalid/hack/k8s\n\ngo %s\n\n%s\n\n' "$GOLINE" "$GODEBUG_LINES"
  printf 'tool (\n\tgo.etcd.io/etcd/server/v3\n\tk8s.io/kubernetes/cmd/kube-apiserver\n\tk8s.io/kubernetes/cmd/kube-controller-manager\n\tk8s.io/kubernetes/cmd/kube-scheduler\n)\n\n'
  printf 'require k8s.io/kubernetes %s\n\nreplace (\n' "$V"
  for m in $MODS; do printf '\t%s => %s %s\n' "$m" "$m" "$SV"; done
  printf ')\n'
} > go.mod
rm -f go.sum
go mod tidy
