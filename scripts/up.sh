#!/usr/bin/env bash
# Builds wasmpod and the example modules, then starts an all-in-one cluster
# (API server on SQLite and one node) in ./.wasmpod with the examples
# deployed. Then: export KUBECONFIG=$PWD/.wasmpod/kubeconfig.yaml; kubectl get pods
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build-examples.sh
cargo build --release --bin wasmpod
exec ./target/release/wasmpod up --examples wasm-examples "$@"
