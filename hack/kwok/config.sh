#!/usr/bin/env bash
# Prints the kwok configuration the local clusters run (hack/cluster.sh gives it to kwok as
# --config): Stages and resource-metric emulation taken from kwok's Go module, plus
# skyfleet's changes to them. hack/build-bins.sh caches the output as $KWOK_CONFIG, whose
# name carries a hash of this directory (hack/versions.sh), so editing anything here replaces
# the cached config on the next build.
#   hack/kwok/config.sh KWOK_MODULE_DIR > kwok-config.yaml
#
# Nodes: node-initialize.yaml in this directory (kwok's fast node-initialize, fixed so that
# it never deletes a node's addresses; see that file), then kwok's heartbeat-with-lease.
#
# Pods: kwok's "general" pod Stages, which model a pod's life step by step: pod-create (IPs
# assigned, Pending, not Ready), pod-init-container-running and -completed (pods with init
# containers only), pod-ready (Running and Ready), pod-complete (Job pods: Succeeded) and
# pod-delete (a deleted pod without finalizers goes away). Each step waits for the pod's
# annotations `<stage>.stage.kwok.x-k8s.io/delay` (a Go duration such as 15s, or an RFC 3339
# time to wait for) and `<stage>.stage.kwok.x-k8s.io/jitter-delay`. With both, the wait is
# drawn uniformly between the two; with jitter-delay alone, between 0 and it; kwok takes a
# jitter-delay at or below delay as the wait. So a pod template annotated
# `pod-ready.stage.kwok.x-k8s.io/delay: 15s` gives pods that become Ready 15 s after they are
# scheduled. Upstream, a step without annotations waits between 1 and 5 s, deletion up to
# the end of the grace period (often 30 s), and the 5 s default jitter caps an annotated delay
# (delay: 15s alone would wait 5 s). Here a step has no default wait and no default jitter, so
# pods are Ready and deleted pods gone within about a second of scheduling or deletion, as
# with kwok's "fast" Stages, and pod-delete's jitter comes from its annotation rather than
# from the deletion timestamp.
set -euo pipefail
src=${1:?usage: $0 KWOK_MODULE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { printf '[kwok-config] error: %s\n' "$*" >&2; exit 1; }
[ -d "$src/kustomize/stage" ] || die "$src does not look like the sigs.k8s.io/kwok module"

doc() { # label file
  [ -s "$2" ] || die "$2 is missing"
  printf -- '---\n# %s\n' "$1"; cat "$2"
}

doc "skyfleet hack/kwok/node-initialize.yaml" "$here/node-initialize.yaml"
doc "sigs.k8s.io/kwok kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
  "$src/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml"

for s in pod-create pod-init-container-running pod-init-container-completed pod-ready pod-complete pod-delete; do
  f=$src/kustomize/stage/pod/general/$s.yaml
  [ -s "$f" ] || die "$f is missing"
  out=$(sed -e 's/^    durationMilliseconds: 1000$/    durationMilliseconds: 0/' \
            -e '/^    jitterDurationMilliseconds: 5000$/d' \
            -e "s/^      expressionFrom: '\.metadata\.deletionTimestamp'\$/      expressionFrom: '.metadata.annotations[\"$s.stage.kwok.x-k8s.io\/jitter-delay\"]'/" "$f")
  # Fail loudly, rather than fall back to kwok's slow defaults, if a new kwok version
  # changes what the edits above expect.
  grep -qx '  delay:' <<<"$out" \
    && grep -qx '    durationMilliseconds: 0' <<<"$out" \
    && ! grep -q "jitterDurationMilliseconds\|expressionFrom: '.metadata.deletionTimestamp'" <<<"$out" \
    && grep -qxF "      expressionFrom: '.metadata.annotations[\"$s.stage.kwok.x-k8s.io/delay\"]'" <<<"$out" \
    && grep -qxF "      expressionFrom: '.metadata.annotations[\"$s.stage.kwok.x-k8s.io/jitter-delay\"]'" <<<"$out" \
    || die "$f no longer has the delay fields hack/kwok/config.sh rewrites; update it"
  printf -- '---\n# sigs.k8s.io/kwok kustomize/stage/pod/general/%s.yaml, waiting only when annotated\n%s\n' "$s" "$out"
done

# After a member outage kube-controller-manager marks the pods of its Unknown nodes not Ready;
# a kubelet would report them Ready again once its node is back, and this stage does.
doc "skyfleet hack/kwok/pod-ready-again.yaml" "$here/pod-ready-again.yaml"
doc "sigs.k8s.io/kwok kustomize/metrics/resource/metrics-resource.yaml" "$src/kustomize/metrics/resource/metrics-resource.yaml"
