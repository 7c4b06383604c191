#!/usr/bin/env bash
# ES256/RS256 verification cost, natively and inside V8 (node's WASI). Prints two tables.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --quiet --release
echo "native:"; ./target/release/jwt-algs-v8
cargo build --quiet --release --target wasm32-wasip1
echo; echo "V8 (node $(node --version)):"
node --no-warnings run.mjs target/wasm32-wasip1/release/jwt-algs-v8.wasm
