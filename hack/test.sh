#!/usr/bin/env bash
# The one test entry point: formatting, lints, unit and property tests, and the end-to-end
# suites against real control planes (built from pinned Go modules on first use, then cached).
#   hack/test.sh            everything
#   SKYFLEET_KEEP_CLUSTER=1 leave the control planes running afterwards (for a faster rerun)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export GOTOOLCHAIN=local
step() { printf '\n==> %s\n' "$*"; }
t0=$SECONDS

step "building control-plane binaries (cached by version)"
hack/build-bins.sh >/dev/null
echo "done after $((SECONDS - t0))s"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "starting local control planes (hack/cluster.sh up)"
started=0
if ! hack/cluster.sh healthy 2>/dev/null; then
  hack/cluster.sh up
  started=1
fi
cleanup() { [ "$started" = 1 ] && [ -z "${SKYFLEET_KEEP_CLUSTER:-}" ] && hack/cluster.sh down || true; }
trap cleanup EXIT

step "cargo test --workspace (unit, property and end-to-end tests)"
cargo test --workspace
echo "all tests passed after $((SECONDS - t0))s"
