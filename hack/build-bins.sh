#!/usr/bin/env bash
# Builds every control-plane binary skyfleet's tests and demo use, from pinned Go modules,
# into per-component cache directories keyed by version (hack/versions.sh), and links them
# into one directory. Built components are reused, so a fresh clone on a warm machine builds
# nothing, and bumping one component rebuilds only that one. Prints the binary directory last.
set -euo pipefail
source "$(dirname "$0")/versions.sh"
export CGO_ENABLED=0
log() { printf '[build-bins] %s\n' "$*" >&2; }

k8s_ldflags() {
  # A module-proxy build has no git metadata: without these, servers report v0.0.0-master.
  local v=$K8S_VERSION maj min now ldf="-s -w -buildid="
  maj=${v#v}; maj=${maj%%.*}; min=${v#v*.}; min=${min%%.*}
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=$v -X $p.gitMajor=$maj -X $p.gitMinor=$min -X $p.gitTreeState=clean -X $p.buildDate=$now"
  done
  printf '%s' "$ldf"
}

# Each binary is written under a temporary name and renamed, so an interrupted build never
# leaves a half-written binary that looks complete.
mkdir -p "$K8S_DIR"
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  [ -x "$K8S_DIR/$c" ] && continue
  log "building $c $K8S_VERSION"
  (cd "$SKYFLEET_HACK_DIR/k8s" && go build -trimpath -tags selinux,notest,grpcnotrace \
    -ldflags "$(k8s_ldflags)" -o "$K8S_DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c")
  mv "$K8S_DIR/$c.tmp" "$K8S_DIR/$c"
done
if [ ! -x "$K8S_DIR/etcd" ]; then
  log "building etcd (the version k8s.io/apiserver pins, from the same module)"
  (cd "$SKYFLEET_HACK_DIR/k8s" && go build -trimpath -ldflags "-s -w" -o "$K8S_DIR/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$K8S_DIR/etcd.tmp" "$K8S_DIR/etcd"
fi

go_install() { # dir name package@version ldflags
  local dir=$1 name=$2 pkg=$3 ldf=$4 tmp
  [ -x "$dir/$name" ] && return 0
  mkdir -p "$dir"; tmp=$(mktemp -d)
  log "building $name from $pkg"
  GOBIN="$tmp" go install -trimpath -ldflags "$ldf" "$pkg"
  mv "$tmp/$name" "$dir/$name"; rm -rf "$tmp"
}
go_install "$KWOK_DIR" kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "-s -w"
go_install "$METRICS_SERVER_DIR" metrics-server "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION" \
  "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
# helm v3 assumes Kubernetes 1.20 in `helm template`/`lint` unless told otherwise.
hv="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
for p in pkg/chartutil pkg/lint/rules; do hv+=" -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$k8s_minor"; done
go_install "$HELM_DIR" helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "${hv}"
# Prometheus and promtool: the UI assets are not embedded (no builtinassets tag); the tests use
# only the HTTP API. The version flags make /api/v1/status/buildinfo say which release it is.
pm=${PROMETHEUS_VERSION#v0.}; pv="3.$(( ${pm%%.*} - 300 )).${pm#*.}"
pl="-s -w -X github.com/prometheus/common/version.Version=$pv -X github.com/prometheus/common/version.Branch=module"
go_install "$PROMETHEUS_DIR" prometheus "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" "$pl"
go_install "$PROMETHEUS_DIR" promtool "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" "$pl"
# ExternalDNS and its DNSEndpoint CRD (the one kind skyfleet writes for it), from the same module.
go_install "$EXTERNAL_DNS_DIR" external-dns "sigs.k8s.io/external-dns@$EXTERNAL_DNS_VERSION" \
  "-s -w -X sigs.k8s.io/external-dns/pkg/apis/externaldns.Version=$EXTERNAL_DNS_VERSION"
if [ ! -d "$EXTERNAL_DNS_DIR/crds" ]; then
  src=$(go mod download -json "sigs.k8s.io/external-dns@$EXTERNAL_DNS_VERSION" | sed -n 's/.*"Dir": "\([^"]*\)".*/\1/p')
  [ -d "$src" ] || { log "error: go mod download found no directory for sigs.k8s.io/external-dns@$EXTERNAL_DNS_VERSION"; exit 1; }
  rm -rf "$EXTERNAL_DNS_DIR/crds.tmp"; mkdir -p "$EXTERNAL_DNS_DIR/crds.tmp"
  cp "$src/config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml" "$EXTERNAL_DNS_DIR/crds.tmp/"
  chmod -R u+w "$EXTERNAL_DNS_DIR/crds.tmp"
  mv "$EXTERNAL_DNS_DIR/crds.tmp" "$EXTERNAL_DNS_DIR/crds"
fi

# kwok ships its Stages (how nodes and pods behave) and its metric emulation as YAML inside its
# module; hack/kwok/config.sh assembles the ones the clusters run, with skyfleet's changes, into
# $KWOK_CONFIG beside the binary, so starting a cluster needs no Go. The file's name carries a
# hash of hack/kwok/ (hack/versions.sh): a machine that cached an older config writes the new one.
if [ ! -s "$KWOK_CONFIG" ] || [ ! -d "$KWOK_DIR/crds" ]; then
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\([^"]*\)".*/\1/p')
  [ -d "$src" ] || { log "error: go mod download found no directory for sigs.k8s.io/kwok@$KWOK_VERSION"; exit 1; }
  if [ ! -s "$KWOK_CONFIG" ]; then
    log "writing $(basename "$KWOK_CONFIG") (hack/kwok/config.sh) from sigs.k8s.io/kwok@$KWOK_VERSION"
    "$SKYFLEET_HACK_DIR/kwok/config.sh" "$src" > "$KWOK_CONFIG.tmp"
    mv "$KWOK_CONFIG.tmp" "$KWOK_CONFIG"
  fi
  if [ ! -d "$KWOK_DIR/crds" ]; then
    rm -rf "$KWOK_DIR/crds.tmp"; mkdir -p "$KWOK_DIR/crds.tmp"
    cp "$src"/kustomize/crd/bases/kwok.x-k8s.io_*.yaml "$KWOK_DIR/crds.tmp/"
    chmod -R u+w "$KWOK_DIR/crds.tmp"
    mv "$KWOK_DIR/crds.tmp" "$KWOK_DIR/crds"
  fi
fi

mkdir -p "$SKYFLEET_BIN"
for f in "$K8S_DIR"/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd} "$KWOK_DIR/kwok" \
         "$METRICS_SERVER_DIR/metrics-server" "$HELM_DIR/helm" "$PROMETHEUS_DIR/prometheus" "$PROMETHEUS_DIR/promtool" \
         "$EXTERNAL_DNS_DIR/external-dns"; do
  ln -sfn "$f" "$SKYFLEET_BIN/$(basename "$f")"
done
ln -sfn "$KWOK_CONFIG" "$SKYFLEET_BIN/kwok-config.yaml"
ln -sfn "$KWOK_DIR/crds" "$SKYFLEET_BIN/kwok-crds"
ln -sfn "$EXTERNAL_DNS_DIR/crds" "$SKYFLEET_BIN/external-dns-crds"
rm -f "$SKYFLEET_BIN/crds"
log "binaries ready in $SKYFLEET_BIN"
echo "$SKYFLEET_BIN"
