#!/usr/bin/env python3
"""Sign a request for proofgate with the TrustPlane SDK (`pip install trustplane-auth-sdk`).

Issues a passport and a transcript-v1 request proof and prints a ready-to-paste curl command
(or JSON). The -H headers are sent and, with X-TrustPlane-Nonce, are the signed allow-list, so
send exactly these headers: the curl output also removes curl's default Accept and Content-Type
(a header that the gateway's `signed_headers` lists and that you did not sign fails the proof).

    python3 examples/sign_request.py --method POST \\
        --url 'http://127.0.0.1:10000/v1/orders?b=2&a=1' \\
        -H 'Content-Type: application/json' --data '{"order_id":"ord_123"}'

    python3 examples/sign_request.py --url http://127.0.0.1:10000/v1/orders/123 --format json
    python3 examples/sign_request.py --url http://127.0.0.1:10000/v1/orders/123 \\
        --format jsonl --count 1000 > requests.jsonl      # distinct jti + nonce each

The default key is a TEST-ONLY key (seed 00..1f); use --key-seed-hex for another.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tpsign  # noqa: E402


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def as_curl(req: dict[str, Any]) -> str:
    words = ["curl", "-i", "-X", req["method"], req["url"]]
    sent = {name.lower() for name in req["headers"]}
    for name, value in req["headers"].items():
        words += ["-H", f"{name}: {value}"]
    # curl adds these by default; unsigned copies would break the request proof.
    for default in ("Accept", "Content-Type"):
        if default.lower() not in sent:
            words += ["-H", f"{default}:"]
    if req["body"]:
        words += ["--data-binary", req["body"].decode("utf-8")]
    return " ".join(shlex.quote(w) for w in words)


def as_json(req: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": req["method"],
        "url": req["url"],
        "headers": req["headers"],
        "body": req["body"].decode("utf-8"),
    }


def main(argv: list[str] | None = None) -> int:
    d = tpsign.DEFAULTS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="GET")
    p.add_argument("--url", required=True, help="absolute URL; its scheme and authority are signed")
    p.add_argument("--data", default="", help="request body (UTF-8 text)")
    p.add_argument("-H", "--header", dest="headers", action="append", type=parse_header, default=[],
                   metavar="'Name: value'", help="header to send and sign (repeatable)")
    p.add_argument("--route-id", help="default: orders.create / orders.get / orders.search by method+path")
    p.add_argument("--audience", default=d["audience"])
    p.add_argument("--issuer", default=d["issuer"])
    p.add_argument("--kid", default=d["kid"])
    p.add_argument("--subject", default=d["subject"])
    p.add_argument("--trust-domain", default=d["trust_domain"])
    p.add_argument("--ttl", type=int, default=d["ttl"], help="passport lifetime, seconds")
    p.add_argument("--nonce", help="default: 16 random bytes, hex")
    p.add_argument("--key-seed-hex", help="32-byte Ed25519 seed, hex (default: the test key)")
    p.add_argument("--format", choices=("curl", "json", "jsonl"), default="curl")
    p.add_argument("--count", type=int, default=1, help="with --format jsonl: N distinct signed requests")
    args = p.parse_args(argv)

    if args.count < 1 or (args.count > 1 and args.format != "jsonl"):
        p.error("--count N needs N >= 1 and, above 1, --format jsonl")
    if args.count > 1 and args.nonce:
        p.error("--nonce would repeat across --count requests")
    seed = bytes.fromhex(args.key_seed_hex) if args.key_seed_hex else tpsign.TEST_KEY_SEED
    key = tpsign.key_from_seed(seed)

    for _ in range(args.count):
        try:
            req = tpsign.sign(
                args.method, args.url, args.data.encode("utf-8"), dict(args.headers),
                args.route_id, nonce=args.nonce, key=key,
                issuer=args.issuer, subject=args.subject, audience=args.audience,
                trust_domain=args.trust_domain, kid=args.kid, ttl=args.ttl,
            )
        except ValueError as exc:
            p.error(str(exc))
        if args.format == "curl":
            print(as_curl(req))
        elif args.format == "json":
            print(json.dumps(as_json(req), indent=2))
        else:
            print(json.dumps(as_json(req), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
