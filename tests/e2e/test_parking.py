"""Requests waiting for their bodies (issue 8 item 1) against the real Envoy, over cleartext
HTTP/2 so that many streams share one connection and so one worker VM: one waiting stream per
jti (`jti_in_flight`), at most `max_parked_requests` per VM (503 `too_many_parked_requests` with
`Retry-After`), `body_timeout` (408) after `body_timeout_ms`, the `parked_requests` gauge, and a
flood of body-less streams with large headers that leaves fresh requests served and the VM's
memory under a stated bound."""

from __future__ import annotations

import functools
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import h2.config
import h2.connection
import h2.events
import pytest
import harness
import tpsign
from harness import Gateway, Response, expect_allow, expect_deny

MAX_PARKED = 4
BODY_TIMEOUT_MS = 2500
PLUGIN_CONFIG = harness.base_plugin_config(max_parked_requests=MAX_PARKED,
                                           body_timeout_ms=BODY_TIMEOUT_MS)

# The flood runs against its own gateway with the default bound and a body timeout longer than
# any loaded machine needs to send it, so that its first stream is still waiting at the end.
FLOOD_CONFIG = harness.base_plugin_config(body_timeout_ms=120_000)
FLOOD_STREAMS = 500
PADDING_BYTES = 48_000
# The flooded VM's linear memory after the flood (the gauge `proofgate.vm.memory_bytes`). The
# filter parks a few hundred bytes per waiting request and one request per jti; before issue 8
# each of these streams kept its ~100 KB header map and view in the VM (~50 MB for 500).
MEMORY_BOUND_BYTES = 8 * 1024 * 1024

PARKED_GAUGE = "wasmcustom.proofgate.parked_requests"
MEMORY_GAUGE = "wasmcustom.proofgate.vm.memory_bytes"


@dataclass
class _Stream:
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    reset: bool = False


class H2Client:
    """A minimal cleartext HTTP/2 (prior knowledge) client over one connection."""

    def __init__(self, gateway: Gateway) -> None:
        self.authority = gateway.authority
        self.sock = socket.create_connection((gateway.host, gateway.port), timeout=10)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        # Literal (not Huffman) header encoding: the flood's 48 KB padding is encoded per stream,
        # and pure-Python Huffman coding would make the test minutes long.
        self.conn.encoder.encode = functools.partial(self.conn.encoder.encode, huffman=False)
        self.conn.initiate_connection()
        self.streams: dict[int, _Stream] = {}
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def open(self, req: dict[str, Any], extra: list[tuple[str, str]] = ()) -> int:
        """Sends `req`'s headers (plus `extra`) on a new stream, without ending it."""
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", req["method"]), (":scheme", "http"), (":authority", self.authority),
                   (":path", req["target"])]
        headers += [(n.lower(), v) for n, v in req["headers"].items() if n.lower() != "host"]
        headers += list(extra)
        self.conn.send_headers(sid, headers, end_stream=False)
        self.streams[sid] = _Stream()
        self._flush()
        return sid

    def finish(self, sid: int, body: bytes) -> None:
        self.conn.send_data(sid, body, end_stream=True)
        self._flush()

    def pump(self, timeout: float) -> None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, BlockingIOError):
            return
        finally:
            self.sock.settimeout(10)
        if not data:
            raise AssertionError("the gateway closed the HTTP/2 connection")
        for event in self.conn.receive_data(data):
            stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.ResponseReceived) and stream:
                for name, value in event.headers:
                    if name == ":status":
                        stream.status = int(value)
                    else:
                        stream.headers.append((name.lower(), value))
            elif isinstance(event, h2.events.DataReceived):
                if stream:
                    stream.body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and stream:
                stream.ended = True
            elif isinstance(event, h2.events.StreamReset) and stream:
                stream.reset = True
        self._flush()

    def wait(self, sids: list[int], timeout: float) -> None:
        """Until every stream in `sids` has a complete response."""
        deadline = time.monotonic() + timeout
        while not all(self.streams[s].ended for s in sids):
            if time.monotonic() > deadline:
                pending = [s for s in sids if not self.streams[s].ended]
                raise AssertionError(f"{len(pending)} streams unanswered after {timeout}s")
            self.pump(0.2)

    def quiet(self, sids: list[int], seconds: float) -> bool:
        """True if none of `sids` gets a response for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump(0.1)
            if any(self.streams[s].status is not None for s in sids):
                return False
        return True

    def response(self, sid: int) -> Response:
        s = self.streams[sid]
        assert s.status is not None, f"stream {sid} has no response"
        return Response(s.status, s.headers, s.body)

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._flush()
        except OSError:
            pass
        self.sock.close()


def _post(gateway: Gateway, n: int) -> dict[str, Any]:
    return tpsign.sign("POST", gateway.url("/v1/orders"), f'{{"n":{n}}}'.encode(),
                       {"Content-Type": "application/json"})


def _gauge(gateway: Gateway, name: str) -> int:
    return gateway.stats().get(name, -1)


def _wait_gauge(gateway: Gateway, name: str, value: int, timeout: float = 10) -> None:
    gateway.wait_for(lambda: _gauge(gateway, name) == value, timeout, f"{name} == {value}")


def _counter(gateway: Gateway, reason: str) -> int:
    return gateway.stats().get(f"wasmcustom.proofgate.deny.{reason}", 0)


def test_a_copy_of_a_waiting_jti_is_refused_at_once(gateway: Gateway) -> None:
    req = _post(gateway, 1)
    client = H2Client(gateway)
    try:
        first = client.open(req)
        assert client.quiet([first], 0.5), "the first stream was answered without its body"
        copy = client.open(req)
        client.wait([copy], 10)
        event_id = expect_deny(client.response(copy), 401, "jti_in_flight", presented=True)
        assert gateway.audit_event(event_id)["jti"] == req["jti"]
        assert client.streams[first].status is None
        client.finish(first, req["body"])
        client.wait([first], 10)
        expect_allow(client.response(first), jti=req["jti"], route_id="orders.create")
    finally:
        client.close()
    _wait_gauge(gateway, PARKED_GAUGE, 0)


def test_beyond_the_bound_is_503_then_waiting_requests_time_out(gateway: Gateway) -> None:
    before = _counter(gateway, "too_many_parked_requests")
    reqs = [_post(gateway, 10 + i) for i in range(MAX_PARKED + 1)]
    client = H2Client(gateway)
    try:
        parked = [client.open(r) for r in reqs[:MAX_PARKED]]
        assert client.quiet(parked, 0.3)
        _wait_gauge(gateway, PARKED_GAUGE, MAX_PARKED)
        over = client.open(reqs[MAX_PARKED])
        client.wait([over], 10)
        resp = client.response(over)
        expect_deny(resp, 503, "too_many_parked_requests", presented=True)
        assert resp.headers_named("retry-after") == ["1"], resp.headers
        assert _counter(gateway, "too_many_parked_requests") == before + 1

        # Nobody sends a body: each parked request gets 408 body_timeout on its own stream.
        started = time.monotonic()
        client.wait(parked, 15)
        assert time.monotonic() - started >= (BODY_TIMEOUT_MS / 1000) - 1.0
        for sid, req in zip(parked, reqs):
            event_id = expect_deny(client.response(sid), 408, "body_timeout", presented=True)
            event = gateway.audit_event(event_id)
            assert (event["reason_code"], event["detail_reason"], event["jti"]) == \
                ("body_timeout", "body_timeout_no_body_bytes", req["jti"]), event
    finally:
        client.close()
    _wait_gauge(gateway, PARKED_GAUGE, 0)
    # The places are free again.
    fresh = _post(gateway, 99)
    expect_allow(gateway.send_signed(fresh), jti=fresh["jti"], route_id="orders.create")


def test_a_partial_body_times_out_and_says_so(gateway: Gateway) -> None:
    req = _post(gateway, 20)
    client = H2Client(gateway)
    try:
        sid = client.open(req)
        client.conn.send_data(sid, req["body"][:3], end_stream=False)
        client._flush()
        client.wait([sid], 15)
        event_id = expect_deny(client.response(sid), 408, "body_timeout", presented=True)
        assert gateway.audit_event(event_id)["detail_reason"] == "body_timeout_partial_body"
    finally:
        client.close()


def test_a_reset_stream_frees_its_place_and_its_jti(gateway: Gateway) -> None:
    req = _post(gateway, 30)
    client = H2Client(gateway)
    try:
        sid = client.open(req)
        _wait_gauge(gateway, PARKED_GAUGE, 1)
        client.conn.reset_stream(sid)
        client._flush()
        _wait_gauge(gateway, PARKED_GAUGE, 0)
    finally:
        client.close()
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.create")


def _memory_samples(gateway: Gateway, seconds: float) -> list[int]:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(_gauge(gateway, MEMORY_GAUGE))
        time.sleep(0.2)
    return samples


@pytest.fixture(scope="module")
def flood_gateway(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from harness.serve(FLOOD_CONFIG, tmp_path_factory.mktemp("flood"))


def test_flood_of_bodyless_streams_with_one_passport(flood_gateway: Gateway) -> None:
    gateway = flood_gateway
    # issue 8 item 1: HTTP/2 streams carrying one passport plus ~48 KB of padding headers and
    # never a body. Each used to park with its whole header map, and memory never came back.
    req = _post(gateway, 40)
    padding = [("x-padding", "p" * PADDING_BYTES)]
    before = _counter(gateway, "jti_in_flight")
    client = H2Client(gateway)
    try:
        sids = [client.open(req, padding)]
        assert client.quiet(sids, 0.3)
        for _ in range(FLOOD_STREAMS - 1):
            sids.append(client.open(req, padding))
            client.pump(0)
        client.wait(sids[1:], 120)
        outcomes = {(client.streams[s].status, dict(client.streams[s].headers).get("x-trustplane-reason"))
                    for s in sids[1:]}
        assert outcomes == {(401, "jti_in_flight")}, outcomes
        assert client.streams[sids[0]].status is None, "the first stream waits for its body"
        assert _counter(gateway, "jti_in_flight") == before + FLOOD_STREAMS - 1

        # Fresh requests are served while the flood's connection is open.
        fresh = tpsign.sign("GET", gateway.url("/v1/orders/41"))
        expect_allow(gateway.send_signed(fresh), jti=fresh["jti"], route_id="orders.get")

        samples = _memory_samples(gateway, 2.5)
        assert max(samples) <= MEMORY_BOUND_BYTES, f"VM memory after the flood: {samples}"
        print(f"flood of {FLOOD_STREAMS} streams: VM memory gauge samples {sorted(set(samples))}")
    finally:
        client.close()
    _wait_gauge(gateway, PARKED_GAUGE, 0)
