#!/usr/bin/env python3
"""The shell ladder (issue 12): what being a proxy-wasm filter costs inside Envoy before any of
proofgate's own work, measured in one run beside the floor and proofgate itself.

One Envoy per configuration (`--concurrency 1`, the same HTTP connection manager as every row of
bench/bench.py), all running side by side, each warmed once, then measured back to back in an
order rotated every round, like bench.py's paired phase:
- floor: no filter;
- wasm noop: bench/shell-floor with `noop` (a filter that answers Continue);
- wasm read: + one read of the whole request header map;
- wasm read+write: + one write of the whole map;
- wasm read+edit: instead of that write, 3 headers removed and 7 set, one host call each;
- wasm shell: + proofgate's other host calls on an allowed GET (clock, two shared-data reads (the
  replay secret and the bucket) and a CAS write, six filter-state properties, a 500-byte info log
  line, a counter);
- proofgate GET: passport + proof, as in bench.py (single-use signed requests).
Every configuration gets the same GET with a passport and a proof (the noop and shell filters
send one signed request, cycled; proofgate a fresh one each time). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench/bench.py: Envoy, wrk, signing, configs)


def _log(msg: str) -> None:
    # Progress to stderr: stdout is the Markdown section bench/run.sh appends to RESULTS.md.
    print(f"[shell {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


bench.log = _log

ROOT = bench.ROOT
SHELL_CRATE = ROOT / "bench" / "shell-floor"
SHELL_WASM = SHELL_CRATE / "target" / "wasm32-wasip1" / "release" / "shell_floor.wasm"
MODES = [("wasm-noop", "noop"), ("wasm-read", "read"), ("wasm-read-write", "read_write"),
         ("wasm-read-edit", "read_edit"),
         ("wasm-shell", "shell")]

# What each rung adds to: the step column is the difference of the two rows' added CPU.
BASE = {"wasm-read": "wasm-noop", "wasm-read-write": "wasm-read", "wasm-read-edit": "wasm-read",
        "wasm-shell": "wasm-read-write"}


def shell_filter(mode: str) -> dict[str, Any]:
    return {"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "shell_floor", "root_id": "shell_floor", "fail_open": False,
            "vm_config": {"vm_id": "shell_floor", "runtime": "envoy.wasm.runtime.v8",
                          "code": {"local": {"filename": str(SHELL_WASM)}}},
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": mode},
        },
    }}


def run_once(args: argparse.Namespace, c: bench.PairedConfig, duration: float) -> dict[str, Any]:
    """One saturation run of `c`: a fresh slice of its single-use requests (never sent twice),
    or its one request line cycled."""
    assert c.envoy
    if c.pool:
        res = bench.measure(args, c.envoy, c.pool.path, duration=duration,
                            offset=c.pool.offset, mode="strict", limit=c.pool.left)
        c.pool.take(res["used"])
        return res
    assert c.file
    return bench.measure(args, c.envoy, c.file, duration=duration, mode="cycle")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=3, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--sign-procs", type=int, default=2)
    p.add_argument("--bench-max-entries", type=int, default=262144)
    p.add_argument("--envoy", type=Path, default=ROOT / ".venv" / "bin" / "envoy")
    p.add_argument("--wasm", type=Path, default=ROOT / "target" / "wasm32-wasip1" / "release" / "proofgate.wasm")
    p.add_argument("--compare-wasm", type=Path, action="append", default=[],
                   help="another proofgate build, measured as one more row in the same rounds "
                   "(an A/B of a change); may be given more than once")
    p.add_argument("--no-ladder", action="store_true",
                   help="only the floor and the proofgate builds (for A/B runs)")
    args = p.parse_args(argv)
    args.plugin_override = "{}"
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1"],
                   cwd=SHELL_CRATE, check=True)
    work = Path(tempfile.mkdtemp(prefix="proofgate-shell-"))
    # Removed whatever happens, as bench.py does its own: the request files take hundreds of MB,
    # and a --compare-wasm copy may be envoy_breakdown.py's skip-crypto build, which accepts
    # forged signatures.
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    """The ladder (or the A/B) in `work`; prints the Markdown section."""
    args.out = work
    args.port, args.admin_port = bench.free_port(), bench.free_port()
    wasm_copy = work / "proofgate.wasm"
    wasm_copy.write_bytes(args.wasm.read_bytes())
    args.wasm = wasm_copy

    cfgs: list[bench.PairedConfig] = [bench.PairedConfig("floor", "floor: no filter", "floor", "GET", [])]
    for name, mode in [] if args.no_ladder else MODES:
        cfgs.append(bench.PairedConfig(name, f"wasm filter, {mode}", name, "GET", [shell_filter(mode)]))
    builds = [("proofgate-get", "proofgate passport+proof GET", args.wasm)]
    for i, wasm in enumerate(args.compare_wasm, 1):
        other = work / f"proofgate-compare-{i}.wasm"
        other.write_bytes(wasm.read_bytes())
        builds.append((f"proofgate-get-compare-{i}", f"proofgate passport+proof GET, {wasm.name}", other))
    pgs = []
    for name, label, wasm in builds:
        pg = bench.PairedConfig(name, label, name, "GET",
                                [bench.wasm_filter(wasm, bench.passport_plugin(args, {}))])
        pg.pool = bench.RequestPool(work / f"{name}.reqs", bench._signer(args, pg, ""), bench.PASSPORT_MAX_AGE)
        pgs.append(pg)
    cfgs += pgs
    for c in cfgs[:-len(pgs)]:
        # One signed request with this Envoy's authority, cycled: the same headers proofgate gets.
        c.file = work / f"{c.name}.reqs"
        bench.sign_requests(c.file, 1, "GET", c.authority, "", 1)

    rounds: list[dict[str, dict[str, Any]]] = []
    with contextlib.ExitStack() as stack:
        for c in cfgs:
            c.envoy = stack.enter_context(bench.Envoy(args, c.name, c.cfg, c.ports))
        for pg in pgs:
            assert pg.pool
            pg.pool.ensure(int(7000 * (args.warmup + args.rounds * args.duration) * 1.3) + 2000, 0, 600)
        for c in cfgs:
            res = run_once(args, c, args.warmup)
            _log(f"warm-up {c.name:<16} {bench.fmt_run(res)}")
        for r in range(args.rounds):
            k = r % len(cfgs)
            runs: dict[str, Any] = {}
            for c in cfgs[k:] + cfgs[:k]:
                res = run_once(args, c, args.duration)
                runs[c.name] = res
                _log(f"round {r + 1} {c.name:<16} {bench.fmt_run(res)} steal {100 * res['steal_util']:.0f}%")
            rounds.append(runs)

    def med(name: str, key: str) -> float:
        return statistics.median(r[name][key] for r in rounds)

    def added(name: str) -> float:
        if name == "floor":
            return 0.0
        # Per round, the configuration's CPU per request minus the floor's in the same round.
        return statistics.median(r[name]["cpu_us_per_req"] - r["floor"]["cpu_us_per_req"] for r in rounds)

    steal = [100 * r[c.name]["steal_util"] for r in rounds for c in cfgs]
    print("### The shell ladder: what a wasm filter costs in Envoy before proofgate's work")
    print()
    print(f"`bench/shell_floor.py` (part of `make bench`), {time.strftime('%Y-%m-%d %H:%M %Z')}: "
          f"{len(cfgs)} Envoys side by side (`--concurrency 1`), {args.rounds} rounds of "
          f"{args.duration:.0f} s saturation runs in rotated order, wrk `-c{args.connections}`; "
          "every request is the same GET with a passport and a proof (bench/shell-floor/src/lib.rs "
          "says what each mode does). Medians over rounds; added CPU is per round against the "
          f"floor of the same round. Steal over the runs: median {statistics.median(steal):.0f}%, "
          f"max {max(steal):.0f}%.")
    print()
    print("| configuration | req/s | CPU µs/req | added CPU µs/req over the floor | step (µs/req) |")
    print("|---|---:|---:|---:|---:|")
    for c in cfgs:
        a = 0.0 if c.name == "floor" else added(c.name)
        base = BASE.get(c.name)
        step = f"{a - added(base):+.0f} over {base}" if base else ""
        print(f"| {c.label} | {med(c.name, 'rps'):,.0f} | {med(c.name, 'cpu_us_per_req'):.0f} | "
              f"{a:.0f} | {step} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
