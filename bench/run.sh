#!/usr/bin/env bash
# `make bench`: proofgate side by side with Envoy's native jwt_authn (issue 4).
#
# `make bench` builds the release wasm and the venv first, then runs this. It installs the load
# generator (Debian `wrk`) if missing, then bench/bench.py runs each Envoy configuration with one
# worker, one after another, then the paired phase (issue 12's headline ratios: the compared
# Envoys side by side, measured back to back in rotated rounds; `--only paired` runs it alone),
# and writes bench/RESULTS.md, bench/results.svg and bench/out/ (results.json, the Envoy configs
# and logs). About 16 minutes on a quiet 2-core machine, core.sh and etcd.py included, plus
# about 4 for bench/shell_floor.py (the shell ladder: a no-op wasm filter and its host calls)
# and 6 for bench/envoy_breakdown.py (where proofgate's CPU goes inside Envoy).
# Not part of `make test`. Options go to bench/bench.py (`bench/run.sh --help`), e.g.
#   bench/run.sh --duration 20 --fixed-duration 20      # longer runs
#   bench/run.sh --only paired --paired-rounds 20       # only the paired ratios, more rounds
#   bench/run.sh --fill-entries 16384                   # smaller replay store for the memory run
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_T0=$(date +%s)
export BENCH_T0
WASM=target/wasm32-wasip1/release/proofgate.wasm
PY=.venv/bin/python

die() { echo "bench/run.sh: $*" >&2; exit 1; }

[[ -f $WASM ]] || die "$WASM is missing: run 'make bench' (it builds the release wasm first)"
[[ -x .venv/bin/envoy && -x $PY ]] || die ".venv is missing: run 'make bench' (it creates the venv)"
$PY -c 'import trustplane_auth, cryptography' 2>/dev/null \
  || die ".venv lacks trustplane-auth-sdk / cryptography: run 'make venv'"

# The load generator: Debian's wrk (LuaJIT scripting). wrk2 is not packaged in Debian.
if ! command -v wrk >/dev/null 2>&1; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "wrk is not installed and there is no sudo: apt-get install wrk"
    SUDO="sudo"
  fi
  echo "bench/run.sh: installing wrk (apt-get install -y wrk)"
  $SUDO apt-get install -y wrk >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; } \
    || die "could not install wrk"
fi
{ wrk -v 2>&1 || true; } | grep -q '^wrk ' || die "wrk does not run"

status=0
$PY bench/bench.py "$@" || status=$?
# The core outside Envoy (crypto backends in V8, pipeline cost, callgrind count) goes after the
# Envoy results, but only when RESULTS.md was just rewritten by a full run.
if [[ $status -eq 0 && " $* " != *" --only"* && " $* " != *" --report-only"* ]]; then
  bench/core.sh >> bench/RESULTS.md || status=$?
  # What any proxy-wasm filter costs in Envoy before its own work, beside proofgate (issue 12).
  { echo; $PY bench/shell_floor.py; } >> bench/RESULTS.md || status=$?
  # Where proofgate's CPU goes inside Envoy: crypto by difference, host calls timed from inside
  # the VM, and a perf split when perf is installed (issue 12).
  { echo; $PY bench/envoy_breakdown.py; } >> bench/RESULTS.md || status=$?
  # Cluster-wide replay (issue 11): etcd rows, when etcd is installed (`make etcd`).
  if command -v etcd >/dev/null 2>&1; then
    { echo; $PY bench/etcd.py; } >> bench/RESULTS.md || status=$?
  fi
fi
echo "bench/run.sh: finished in $(( $(date +%s) - BENCH_T0 )) s (exit $status)"
exit $status
