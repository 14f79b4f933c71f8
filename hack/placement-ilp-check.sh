#!/usr/bin/env bash
# Checks the placement solver against an ILP reference (PuLP + CBC, from PyPI) on random
# instances written as manifests: hack/placement-ilp-check.sh [INSTANCES]. A benchmark-style
# check reported in notes, not part of hack/test.sh (the exactness test there is brute force).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${SKYFLEET_CACHE:-$HOME/.cache/skyfleet}/ilp-venv-pulp-3.3.2
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV.tmp"
  "$VENV.tmp/bin/pip" install -q "pulp==3.3.2"
  mv "$VENV.tmp" "$VENV"
fi
cargo build -q --release -p skyfleet --bin skyfleet --manifest-path "$ROOT/Cargo.toml"
exec "$VENV/bin/python" "$ROOT/hack/placement-ilp-check.py" "$ROOT/target/release/skyfleet" "${1:-300}"
