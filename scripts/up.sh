#!/usr/bin/env bash
# Builds wasmpod and starts an all-in-one cluster in ./.wasmpod (SQLite).
# Then: export KUBECONFIG=$PWD/.wasmpod/kubeconfig.yaml; kubectl get pods -A
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --bin wasmpod
exec ./target/release/wasmpod up "$@"
