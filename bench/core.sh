#!/usr/bin/env bash
# The core's own cost, outside Envoy, as a Markdown section for bench/RESULTS.md:
#  - Ed25519 backends inside V8 (node's WASI; Envoy's wasm runtime is V8 too): bench/crypto-v8;
#  - the whole core pipeline per passport+proof request, natively and in V8 (benches/pipeline.rs);
#  - callgrind instructions per request, and the share spent in Ed25519 verification.
# Needs node for the V8 rows (skipped with a note when missing) and valgrind (installed if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "## The core outside Envoy"
echo
echo "Measured by \`bench/core.sh\` (part of \`make bench\`) on the same machine, right after the Envoy runs."
echo
if command -v node >/dev/null 2>&1; then
  echo "### Ed25519 backends in V8 ($(node --version), WASI, TurboFan only as in Envoy), one verification of a 32-byte digest"
  echo
  (cd bench/crypto-v8 && cargo build --quiet --release --target wasm32-wasip1)
  node --no-warnings bench/crypto-v8/run.mjs bench/crypto-v8/target/wasm32-wasip1/release/crypto-v8.wasm
  echo
  echo "proofgate keeps the seam's precomputed-table path for trust-material keys (and for a passport's"
  echo "\`cnf\` key when it is one of them, the software-caller shape) and its variable-base path for"
  echo "other \`cnf\` keys; both are strict (canonical S, canonical A and R, small-order A and R refused,"
  echo "cofactorless equation). The table is built once per key at configuration load."
  echo
fi

cargo build --quiet --release --target wasm32-wasip1 --bench pipeline --no-default-features
cargo bench --quiet --bench pipeline --no-run 2>/dev/null
native_out=$(PIPELINE_SCALE=1 cargo bench --quiet --bench pipeline 2>/dev/null)
native=$(grep '^pipeline:' <<<"$native_out")
allocs=$(grep '^allocations:' <<<"$native_out")
echo "### Core pipeline per passport + proof request (route, passport, 2 signatures, policy, transcript, replay)"
echo
echo "- native (x86_64): ${native#pipeline: }"
echo "- heap allocations (native, counted): ${allocs#allocations: }"
echo
echo "### Configuration size (native): routes and revocations are indexed at load"
echo
echo "One placeholder route per service (\`/svcN/items/{item_id}\`), and per 10 revoked jtis one revoked"
echo "subject and one revoked key. Resolution and lookup stay flat as the bundle grows; loading is"
echo "once per VM (each Envoy worker, each configuration update). Per-request figures are the fastest"
echo "of 7 rounds (the round least disturbed by other load on a shared machine)."
echo
grep '^scale:' <<<"$native_out" | sed 's/^scale: \{0,1\}//'
echo
if command -v node >/dev/null 2>&1; then
  wasm=$(ls -t target/wasm32-wasip1/release/deps/pipeline-*.wasm | head -1)
  out=$(PIPELINE_ITERS=1000 node --no-warnings bench/pipeline-wasi.mjs "$wasm")
  v8=$(grep '^pipeline:' <<<"$out")
  echo "- V8 (node WASI): ${v8#pipeline: }"
  v8_us=$(sed -n 's/.*requests, \([0-9.]*\) µs per request.*/\1/p' <<<"$v8")
  crypto_us=$(sed -n 's/^crypto: \([0-9.]*\) µs.*/\1/p' <<<"$out")
fi

cg=$(bench/callgrind.sh | tail -1)
echo "- ${cg/#callgrind: /callgrind (native): }; counts repeat to within a few instructions for the same binary"
cg_big=$(PIPELINE_ROUTES=10000 PIPELINE_REVOCATIONS=100000 bench/callgrind.sh | tail -1)
echo "- the same with 10,000 extra routes and 100,000 revoked jtis (plus 20,000 subjects and keys): ${cg_big#callgrind: }"
cg_audit=$(bench/callgrind-audit.sh | tail -1)
echo "- ${cg_audit/#callgrind: /callgrind (native): } (built by hand, byte-for-byte serde_json's output; 12,259 through serde_json)"
if [[ -n ${v8_us:-} && -n ${crypto_us:-} ]]; then
  python3 - "$v8_us" "$crypto_us" <<'PY'
import sys
core, crypto = map(float, sys.argv[1:3])
print()
print("### Where a passport + proof request's time goes")
print()
print(f"In V8 (configured as Envoy configures it: Liftoff off, so no JIT warm-up inside the timed requests; "
      f"bench/v8-envoy.mjs) the core takes {core:.0f} µs per request in its fastest round of 100; the pipeline's "
      f"two table-path Ed25519 verifications (verify_pair over distinct signatures) timed in the same "
      f"process take {crypto:.0f} µs ({100 * crypto / core:.0f}%), the rest of the core (JSON, base64, SHA-256 of "
      f"body, query, headers and transcript, policy, replay bucket) about {core - crypto:.0f} µs. "
      "Inside Envoy the filter's added CPU per request (the table above, over the floor) also pays the shell: "
      "the clock, the header map read (twice on a POST, with the body), the shared data reads (the replay secret and the bucket) and CAS write, "
      "one write of the whole header map, 6 filter-state "
      "properties, the audit log line and the allow counter (randomness once per 32 requests); the shell "
      "ladder below measures what those calls, and being a wasm filter at all, cost inside Envoy. The "
      "signatures are the largest single part; jwt_authn verifies one signature natively with BoringSSL.")
PY
fi

# The replay store as it fills (issue 7): one consume at 1%, 50% and 90% of two sizes.
echo
echo "### Replay store fill: one consume (bucket read, prune, append, CAS write), fastest of 10 rounds"
echo
echo "| where | max_entries | 1% | 50% | 90% |"
echo "|---|---:|---:|---:|---:|"
replay_rows() {
  python3 -c '
import re, sys
rows = {}
for line in sys.stdin:
    m = re.match(r"replay: max_entries=(\d+) fill=(\d+)% consume=(\d+) ns", line)
    if m:
        rows.setdefault(int(m[1]), {})[int(m[2])] = int(m[3])
for size, fills in rows.items():
    cells = " | ".join(f"{fills[f] / 1000:.2f} µs" for f in (1, 50, 90))
    print(f"| {sys.argv[1]} | {size:,} | {cells} |")
' "$1"
}
cargo bench --quiet --bench replay 2>/dev/null | replay_rows "native (x86_64)"
if command -v node >/dev/null 2>&1; then
  cargo build --quiet --release --target wasm32-wasip1 --bench replay --no-default-features
  replay_wasm=$(ls -t target/wasm32-wasip1/release/deps/replay-*.wasm | head -1)
  # node (v20's WASI) has crashed with SIGSEGV on exit after printing every row (bench run of
  # 2026-11-28): keep the rows it printed and say so; fail only when rows are missing.
  replay_v8_status=0
  replay_v8=$(node --no-warnings bench/replay-wasi.mjs "$replay_wasm") || replay_v8_status=$?
  printf '%s\n' "$replay_v8" | replay_rows "V8 (node WASI)"
  if [[ $replay_v8_status -ne 0 ]]; then
    if [[ $(grep -c '^replay: ' <<<"$replay_v8") -ge 6 ]]; then
      echo
      echo "(node exited with status $replay_v8_status after printing all rows above.)"
    else
      echo "bench/core.sh: node replay bench failed (status $replay_v8_status)" >&2
      exit "$replay_v8_status"
    fi
  fi
fi
