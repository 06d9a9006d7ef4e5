#!/usr/bin/env bash
# Builds the example guests in wasm-examples/ for WASI preview 1 (core
# modules with `_start`) and WASI preview 2 (components implementing
# wasi:cli/command), and copies them to
#   wasm-examples/out/wasip1/<name>.wasm
#   wasm-examples/out/wasip2/<name>.wasm
# where the manifests in wasm-examples/manifests and the node tests expect them.
# Prints nothing when everything is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

examples=wasm-examples
# Examples that only make sense as preview 2 components (they use wasi:http):
# built for wasm32-wasip2 only.
p2_only=(http-echo http-client)
# An explicit target dir keeps the guests apart from the host build even when
# CARGO_TARGET_DIR points elsewhere.
target_dir="$examples/target"
p2_excludes=()
for name in "${p2_only[@]}"; do p2_excludes+=(--exclude "$name"); done
cargo build --quiet --release --locked \
  --manifest-path "$examples/Cargo.toml" --target-dir "$target_dir" \
  --workspace "${p2_excludes[@]}" --target wasm32-wasip1
cargo build --quiet --release --locked \
  --manifest-path "$examples/Cargo.toml" --target-dir "$target_dir" \
  --target wasm32-wasip2

# The first eight bytes of a binary: magic "\0asm", then version and layer.
# A core module is version 1, layer 0; a component is version 0x0d, layer 1.
header() {
  od -An -tx1 -N8 "$1" | tr -d ' \n'
}
expected_header() {
  case "$1" in
    wasip1) echo 0061736d01000000 ;;
    wasip2) echo 0061736d0d000100 ;;
  esac
}

updated=0
for crate_manifest in "$examples"/*/Cargo.toml; do
  name=$(basename "$(dirname "$crate_manifest")")
  flavours="wasip1 wasip2"
  if [[ " ${p2_only[*]} " == *" $name "* ]]; then flavours=wasip2; fi
  for flavour in $flavours; do
    built="$target_dir/wasm32-$flavour/release/$name.wasm"
    # A library (an HTTP handler) is named with underscores.
    if [ ! -f "$built" ]; then built="$target_dir/wasm32-$flavour/release/${name//-/_}.wasm"; fi
    out="$examples/out/$flavour/$name.wasm"
    if [ ! -f "$built" ]; then
      echo "error: cargo did not produce $built" >&2
      exit 1
    fi
    if [ "$(header "$built")" != "$(expected_header "$flavour")" ]; then
      echo "error: $built is not a $flavour binary (header $(header "$built"))" >&2
      exit 1
    fi
    if ! cmp -s "$built" "$out"; then
      mkdir -p "$(dirname "$out")"
      # Copy then rename, so a reader never sees a half-written module.
      cp "$built" "$out.tmp"
      mv "$out.tmp" "$out"
      updated=$((updated + 1))
    fi
  done
done

if [ "$updated" -gt 0 ]; then
  echo "build-examples: updated $updated file(s) in $examples/out"
fi
