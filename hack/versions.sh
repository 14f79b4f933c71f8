# Pinned versions of every binary the local control planes use; sourced by the hack/ scripts.
# Bumping a version here (or hack/k8s/go.sum) changes the cache key, so the next run rebuilds.
KWOK_VERSION=v0.8.0
METRICS_SERVER_VERSION=v0.9.0  # v0.8.1 is not served by the module proxy (403)
HELM_VERSION=v3.21.4
# Kubernetes and etcd versions come from hack/k8s/go.mod (see hack/k8s/pin.sh).
SKYFLEET_HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_VERSION=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit} $1 == "require" && $2 == "k8s.io/kubernetes" {print $3; exit}' "$SKYFLEET_HACK_DIR/k8s/go.mod")
GO_VERSION=$(go env GOVERSION 2>/dev/null)
# One cache directory per component, keyed by what determines its build, so bumping one
# component rebuilds only that one.
SKYFLEET_CACHE=${SKYFLEET_CACHE:-$HOME/.cache/skyfleet}
K8S_KEY=$(printf '%s' "$K8S_VERSION $GO_VERSION $(sha256sum < "$SKYFLEET_HACK_DIR/k8s/go.sum")" | sha256sum | cut -c1-12)
K8S_DIR=$SKYFLEET_CACHE/k8s/$K8S_VERSION-$K8S_KEY
KWOK_DIR=$SKYFLEET_CACHE/kwok/$KWOK_VERSION-$GO_VERSION
METRICS_SERVER_DIR=$SKYFLEET_CACHE/metrics-server/$METRICS_SERVER_VERSION-$GO_VERSION
HELM_DIR=$SKYFLEET_CACHE/helm/$HELM_VERSION-$GO_VERSION
# The directory the scripts run binaries from: links into the component directories.
SKYFLEET_BIN=${SKYFLEET_BIN:-$SKYFLEET_CACHE/bin}
export GOTOOLCHAIN=local
