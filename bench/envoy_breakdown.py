#!/usr/bin/env python3
"""Where proofgate's CPU goes inside Envoy (issue 12): three measurements of the committed HEAD,
each on a passport + proof GET under saturation, printed as one Markdown section.

1. **Crypto in Envoy, by difference.** HEAD and HEAD with `bench/patches/skip-crypto.patch` (both
   signature checks answer "valid" without computing) side by side in bench/shell_floor.py's
   rotated rounds: the difference in Envoy CPU per request is what the two verifications cost
   inside Envoy, and the patched build's cost over the floor is everything else proofgate does.
   The patched wasm accepts forged signatures: it is built in a scratch copy of the tree, into
   `target/breakdown/`, copied to a temporary directory that is removed at the end (also when a
   step fails), and only ever loaded by this script and the shell_floor.py run it starts (whose
   copy goes with that run's own directory); the linked wasm files in `target/breakdown/` are deleted after
   each build. Never ship it.
2. **Host calls, timed from inside the VM.** HEAD with `bench/patches/host-call-timing.patch`:
   every host call and the main spans of `on_http_request_headers` are timed with
   `proxy_get_current_time_nanoseconds` (a host call itself, ~0.7 µs, so nested spans include the
   timer's own cost), and the VM logs the totals every 10,000 requests.
3. **Table widths by turns.** HEAD with both patches above plus
   `bench/patches/width-by-turns.patch`: the base point and the trust key also get radix-256
   tables (HEAD's are radix 1024), every other request takes them, and each width's pair of
   verifications is timed on its own. Both widths run in the same VM, request by request, so the
   machine's drift (which moves whole runs by up to 2x here) falls on both alike.
4. **perf**, when the machine has it: `perf record -e cpu-clock -g` on the HEAD build's Envoy,
   samples split into wasm code (the leaf frame is V8-generated code), host code called from wasm
   (a wasm frame further up the stack; Envoy's binary has no frame pointers, so this is a lower
   bound) and the rest (Envoy's own work, the floor included).

Run `bench/envoy_breakdown.py` after `make venv` (it builds its own wasm files from HEAD);
takes about 7 minutes.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import shell_floor  # noqa: E402  (its run_once: one saturation run from a single-use pool)

ROOT = bench.ROOT
PATCHES = ROOT / "bench" / "patches"
TARGET = ROOT / "target" / "breakdown"


def _log(msg: str) -> None:
    print(f"[breakdown {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


bench.log = _log


def build(tag: str, patches: list[Path], out: Path) -> Path:
    """HEAD (plus `patches`, in order) built in a scratch copy of the tree: the working tree is
    never patched."""
    with tempfile.TemporaryDirectory(prefix=f"proofgate-{tag}-") as tmp:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        for patch in patches:
            subprocess.run(["git", "apply", str(patch)], cwd=tmp, check=True)
        subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1",
                        "--target-dir", str(TARGET)], cwd=tmp, check=True)
    wasm = out / f"proofgate-{tag}.wasm"
    release = TARGET / "wasm32-wasip1" / "release"
    shutil.copyfile(release / "proofgate.wasm", wasm)
    # No patched build is left where a deploy could pick it up (the skip-crypto one accepts
    # forged signatures): cargo links them again next time.
    for built in [release / "proofgate.wasm", *release.glob("deps/proofgate*.wasm")]:
        built.unlink(missing_ok=True)
    _log(f"built {wasm.name}")
    return wasm


def one_envoy(args: argparse.Namespace, wasm: Path, name: str, rate: float, seconds: float,
              during: Any = None) -> tuple[bench.Envoy, dict[str, Any]]:
    """One proofgate Envoy under `seconds` of saturation with fresh signed GETs; `during(pid)`
    runs while wrk does (perf)."""
    c = bench.PairedConfig(name, name, name, "GET",
                           [bench.wasm_filter(wasm, bench.passport_plugin(args, {}))])
    c.pool = bench.RequestPool(args.out / f"{name}.reqs", bench._signer(args, c, ""),
                               bench.PASSPORT_MAX_AGE)
    c.pool.ensure(int(rate * (seconds + 3)), 0, 600)
    with bench.Envoy(args, name, c.cfg, c.ports) as env:
        c.envoy = env
        shell_floor.run_once(args, c, 2)  # warm-up
        proc = during(env.pid) if during else None
        res = shell_floor.run_once(args, c, seconds)
        if proc:
            proc.wait()
        _log(f"{name}: {bench.fmt_run(res)}")
        return env, res


def host_call_table(log_text: str) -> list[str]:
    lines = [l for l in log_text.splitlines() if "TIMING after" in l]
    if not lines:
        return ["(the timing build logged no TIMING line: fewer than 10,000 requests?)"]
    m = re.search(r"TIMING after (\d+) requests:(.*)$", lines[-1])
    assert m
    out = [f"Host calls and spans, timed inside the VM over its first {int(m.group(1)):,} requests "
           "(µs of wall time, the timer's own ~0.7 µs per span included):", "",
           "| call or span | calls per request | µs per call | µs per request |", "|---|---:|---:|---:|"]
    n = int(m.group(1))
    for name, count, per_call, per_req in re.findall(r" (\S+)=(\d+)x([\d.]+)us/call=([\d.]+)us/req", m.group(2)):
        out.append(f"| {name} | {int(count) / n:.2f} | {float(per_call):.2f} | {float(per_req):.1f} |")
    return out


def width_turns(log_text: str) -> list[str]:
    """The two widths' pair of verifications, from the width-by-turns build's last TIMING line."""
    lines = [l for l in log_text.splitlines() if "TIMING after" in l]
    spans = dict(re.findall(r" (pair_radix\d+)=\d+x([\d.]+)us/call", lines[-1])) if lines else {}
    if set(spans) != {"pair_radix1024", "pair_radix256"}:
        return ["(the width-by-turns build logged no timing of both widths)"]
    n = int(re.search(r"TIMING after (\d+) requests", lines[-1]).group(1))
    wide, narrow = float(spans["pair_radix1024"]), float(spans["pair_radix256"])
    return [f"Table widths by turns in one VM (`bench/patches/width-by-turns.patch`; {n:,} requests, "
            "every other one on each width; µs of wall time per passport + proof pair of "
            "verifications, the timer's ~0.7 µs included): radix 1024 (HEAD's base point and "
            f"trust key) **{wide:.1f}**, radix 256 **{narrow:.1f}**, "
            f"{100 * (wide - narrow) / narrow:+.0f}%."]


def perf_split(data: Path) -> list[str]:
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "tid,ip,dso"],
                            capture_output=True, text=True).stdout
    counts: collections.Counter[str] = collections.Counter()
    frames: list[str] = []

    def close() -> None:
        if frames:
            # V8's generated code is anonymous memory: perf names it "[JIT] tid N" or
            # "/tmp/perf-PID.map" depending on how it read the maps.
            jit = ["JIT" in d or "/perf-" in d for d in frames]
            counts["wasm code" if jit[0] else "host code called from wasm" if any(jit)
                   else "Envoy's own (the floor included)"] += 1
        frames.clear()

    for line in script.splitlines():
        if "(" not in line:  # a sample's header line (thread id), or the blank line after it
            close()
        else:
            frames.append(line.rsplit("(", 1)[1])
    close()
    total = sum(counts.values()) or 1
    out = [f"perf (`-e cpu-clock -F 2000 -g`), {total:,} samples of the Envoy process:", "",
           "| where the sample's stack is | share |", "|---|---:|"]
    for k, v in counts.most_common():
        out.append(f"| {k} | {100 * v / total:.1f}% |")
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--envoy", type=Path, default=ROOT / ".venv" / "bin" / "envoy")
    args = p.parse_args(argv)
    args.connections, args.sign_procs, args.bench_max_entries = 16, 2, 262144
    args.plugin_override = "{}"
    args.out = Path(tempfile.mkdtemp(prefix="proofgate-breakdown-"))
    args.port, args.admin_port = bench.free_port(), bench.free_port()
    # Removed whatever happens: it holds the skip-crypto build, which accepts forged signatures.
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        base = build("head", [], args.out)
        skip = build("skip-crypto", [PATCHES / "skip-crypto.patch"], args.out)
        timing = build("host-call-timing", [PATCHES / "host-call-timing.patch"], args.out)
        turns = build("width-by-turns", [PATCHES / "host-call-timing.patch",
                                          PATCHES / "width-by-turns.patch"], args.out)

        ab = subprocess.run([sys.executable, str(ROOT / "bench" / "shell_floor.py"), "--no-ladder",
                             "--rounds", str(args.rounds), "--wasm", str(base), "--compare-wasm", str(skip)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if ab.returncode != 0:
            raise bench.BenchError(f"shell_floor.py failed ({ab.returncode})")
        table = [l for l in ab.stdout.splitlines() if l.startswith("|")]

        env, _ = one_envoy(args, timing, "timing", 6000, 12)
        timings = host_call_table(env.log_path.read_text(errors="replace"))
        env, _ = one_envoy(args, turns, "turns", 6000, 12)
        by_turns = width_turns(env.log_path.read_text(errors="replace"))

        perf_lines = ["(perf is not installed: `apt-get install linux-perf` for this part)"]
        if shutil.which("perf"):
            data = args.out / "perf.data"

            def record(pid: int) -> subprocess.Popen[Any]:
                return subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-g", "-p",
                                         str(pid), "-o", str(data), "--", "sleep", "6"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, res = one_envoy(args, base, "perf", 6000, 7, during=record)
            perf_lines = perf_split(data) + ["", f"(that run: {res['cpu_us_per_req']:.0f} µs of Envoy CPU "
                                             f"per request at {res['rps']:,.0f} req/s)"]

        print(f"### Where proofgate's CPU goes inside Envoy (`bench/envoy_breakdown.py`, {head}, "
              f"{time.strftime('%Y-%m-%d %H:%M %Z')})")
        print()
        print(f"Crypto by difference: HEAD and HEAD with `bench/patches/skip-crypto.patch` side by side "
              f"({args.rounds} rotated rounds of 3 s; medians; added CPU is per round against the floor):")
        print()
        print("\n".join(table))
        print()
        print("\n".join(timings))
        print()
        print("\n".join(by_turns))
        print()
        print("\n".join(perf_lines))
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
