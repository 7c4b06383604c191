#!/usr/bin/env bash
# The Ed25519 backend choice measured inside Envoy (issue 4): the same passport+proof GET
# benchmark (bench.py --only d-proofgate-get) against the filter built at the commits that
# differ in their crypto backend, interleaved over ROUNDS rounds so host drift hits each alike:
#   3b055d6  ed25519-compact
#   5644e68  curve25519-dalek, variable-base (tables built but not yet used, R decompressed)
#   952ddb1  curve25519-dalek, fixed-base tables for trust-material keys, no R decompression
#   HEAD     the current filter
# Prints a Markdown table (bench/BACKENDS.md holds the last one). About 2 minutes per round.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
work=$(mktemp -d)
trap 'for c in 3b055d6 5644e68 952ddb1; do git worktree remove --force "$work/$c" 2>/dev/null || true; done; rm -rf "$work"' EXIT
declare -A label=(
  [3b055d6]="ed25519-compact"
  [5644e68]="curve25519-dalek, variable-base"
  [952ddb1]="curve25519-dalek, fixed-base tables"
  [HEAD]="current ($(git rev-parse --short HEAD))"
)
for c in 3b055d6 5644e68 952ddb1; do
  git worktree add -q "$work/$c" "$c"
  (cd "$work/$c" && CARGO_TARGET_DIR="$work/target-$c" cargo build --quiet --release --target wasm32-wasip1)
  cp "$work/target-$c/wasm32-wasip1/release/proofgate.wasm" "$work/$c.wasm"
done
cargo build --quiet --release --target wasm32-wasip1
cp target/wasm32-wasip1/release/proofgate.wasm "$work/HEAD.wasm"

declare -A rps cpu
for round in $(seq "$ROUNDS"); do
  for c in 3b055d6 5644e68 952ddb1 HEAD; do
    bench/run.sh --only d-proofgate-get --duration 8 --fixed-duration 1 --fixed-warmup 1 \
      --wasm "$work/$c.wasm" >"$work/run-$c-$round.log" 2>&1
    read -r r u < <(python3 -c 'import json; s=json.load(open("bench/out/only/results.json"))["configs"][0]["sat"]; print(round(s["rps"]), round(s["cpu_us_per_req"]))')
    rps[$c]="${rps[$c]:-}${rps[$c]:+ / }$r"
    cpu[$c]="${cpu[$c]:-}${cpu[$c]:+ / }$u"
  done
done
echo "| filter (commit) | Ed25519 backend | req/s, one worker (per round) | CPU µs per request (per round) |"
echo "|---|---|---:|---:|"
for c in 3b055d6 5644e68 952ddb1 HEAD; do
  echo "| \`$c\` | ${label[$c]} | ${rps[$c]} | ${cpu[$c]} |"
done
