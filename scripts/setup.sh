#!/usr/bin/env bash
# Installs what building wasmpod and its examples needs beyond cargo: the
# WebAssembly targets.
set -euo pipefail
cd "$(dirname "$0")/.."
installed=$(rustup target list --installed)
for target in wasm32-wasip1 wasm32-wasip2; do
  if ! grep -qx "$target" <<<"$installed"; then
    rustup target add "$target"
  fi
done
