#!/usr/bin/env bash
# Instructions per request of the native core pipeline, from callgrind: the pipeline benchmark
# run at two request counts, the difference divided by the extra requests (so setup, signing and
# process start cancel out). Instruction counts repeat exactly for the same binary and inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get install -y valgrind >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y valgrind >/dev/null; }; }
bin=$(cargo bench --bench pipeline --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="pipeline" and m.get("executable"): print(m["executable"])')
count() {
  PIPELINE_ITERS=$1 PIPELINE_PREPARE=110 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
lo=$(count 10); hi=$(count 110)
echo "callgrind: $(( (hi - lo) / 100 )) instructions per request (native core pipeline; $lo at 10 requests, $hi at 110)"
