#!/usr/bin/env bash
# Instructions per request of the native core pipeline, from callgrind: the pipeline benchmark
# run at two request counts with the same requests signed up front, the difference divided by
# the extra requests (so setup, signing and process start cancel out), and the part of it spent
# in Ed25519 verification. Instruction counts repeat for the same binary and inputs.
# Prints one line: `callgrind: TOTAL instructions per request, VERIFY in verification (P%)`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get install -y valgrind >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y valgrind >/dev/null; }; }
bin=$(cargo bench --bench pipeline --no-run --message-format=json 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="pipeline" and m.get("executable"): print(m["executable"])')
out=$(mktemp)
trap 'rm -f "$out"' EXIT
profile() {  # "total verify" instructions with $1 measured requests (110 signed in both runs)
  PIPELINE_ITERS=$1 PIPELINE_PREPARE=110 valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" >/dev/null 2>&1
  local total verify
  total=$(callgrind_annotate "$out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
  # Verification is VerifyingKey::verify (one signature) plus crypto::verify_pair (the passport's
  # and the proof's together, one field inversion for both); neither calls the other.
  # --threshold=100: by default callgrind_annotate lists only the functions that make up 99% of
  # the total, which dropped verify_pair from the 10-request run and overstated the verification
  # share per request by a tenth (431,338 instead of 392,210 instructions; issue 12).
  verify=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
    { grep -E 'proofgate::crypto::(VerifyingKey::verify|verify_pair) ' || true; } |
    awk '{gsub(",", "", $1); s += $1} END {print s + 0}')
  echo "$total ${verify:-0}"
}
read -r lo_total lo_verify < <(profile 10)
read -r hi_total hi_verify < <(profile 110)
per=$(( (hi_total - lo_total) / 100 ))
per_verify=$(( (hi_verify - lo_verify) / 100 ))
echo "callgrind: $per instructions per request, $per_verify in the two Ed25519 verifications ($(( 100 * per_verify / per ))%)"
