#!/usr/bin/env bash
# Instructions to build one allow audit line (benches/audit.rs), from callgrind: the benchmark
# run at two line counts, the difference divided by the extra lines (issue 12, lever 3).
# Prints one line: `callgrind: N instructions per allow audit line`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get install -y valgrind >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y valgrind >/dev/null; }; }
bin=$(cargo bench --bench audit --no-run --message-format=json 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="audit" and m.get("executable"): print(m["executable"])')
out=$(mktemp)
trap 'rm -f "$out"' EXIT
total() {
  AUDIT_LINES=$1 valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,
}
lo=$(total 1000)
hi=$(total 2000)
echo "callgrind: $(( (hi - lo) / 1000 )) instructions per allow audit line"
