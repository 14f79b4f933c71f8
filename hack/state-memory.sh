#!/usr/bin/env bash
# What one workload's demand state costs the operator in steady state, measured (issue 16):
# heap and RSS per workload after N workloads resumed a 7-day 1-minute history and ran two
# hours of decisions, and the write rate persisting it gives. Arguments go to the example,
# e.g. `hack/state-memory.sh --workloads 200 --live 2`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p skyfleet --example state_memory -- "$@"
