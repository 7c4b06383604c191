"""Real-Envoy harness for proofgate end-to-end tests (stdlib only).

`start_gateway(plugin_config, workdir)` starts `examples/upstream.py --record` and an Envoy with the
proofgate wasm filter (or, with `plugin_config=None`, no filter at all: the harness self-test),
waits for admin /ready == LIVE and returns a `Gateway`. `validate_config(plugin_config)` runs
`envoy --mode validate` on the same bootstrap. `send()` speaks raw HTTP/1.1 through http.client so
tests control every header byte: duplicates, order, exact request targets.

Environment: PROOFGATE_WASM (default target/wasm32-wasip1/release/proofgate.wasm) and ENVOY_BIN
(default .venv/bin/envoy), both relative to the repository root unless absolute;
ENVOY_COMPONENT_LOG_LEVEL (default wasm:info) for debugging, e.g. wasm:trace,http:trace.
"""

from __future__ import annotations

import atexit
import copy
import http.client
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
AUDIT_PREFIX = "proofgate.audit "
READY_TIMEOUT_S = 30.0

ISSUER = "https://issuer.example/external-jwks"
TRUST_DOMAIN = "example.external"
SUBJECT = "external:jwks:demo-caller"
KID = "demo-caller-1"
TEST_PUBLIC_KEY = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"


def _repo_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


def wasm_path() -> Path:
    return _repo_path(os.environ.get("PROOFGATE_WASM", "target/wasm32-wasip1/release/proofgate.wasm"))


def envoy_bin() -> Path:
    return _repo_path(os.environ.get("ENVOY_BIN", ".venv/bin/envoy"))


# ---------------------------------------------------------------------------------------------
# Plugin configuration used by the tests (tests override fields on a deep copy).

def _route(route_id: str, method: str, path_template: str) -> dict[str, Any]:
    return {
        "route_id": route_id,
        "method": method,
        "path_template": path_template,
        "required_key_binding": "software",
        "allowed_sources": [{
            "source_type": "software_jwks",
            "issuer": ISSUER,
            "trust_domain": TRUST_DOMAIN,
            "subject_exact": SUBJECT,
            "required_key_binding": "software",
        }],
        "freshness_class": "offline-ok",
    }


def policy_bundle() -> dict[str, Any]:
    return {
        "version": "trustplane-bundle-v1",
        "kind": "policy_runtime_bundle",
        "trust_domain": TRUST_DOMAIN,
        "apis": [{"api_id": "orders-api", "audience": "orders-api"}],
        "route_groups": [{
            "route_group_id": "orders",
            "api_id": "orders-api",
            "routes": [
                _route("orders.create", "POST", "/v1/orders"),
                _route("orders.get", "GET", "/v1/orders/{order_id}"),
                _route("orders.search", "GET", "/v1/orders/search"),
            ],
        }],
        "default_required_key_binding": "software",
        "default_freshness_class": "offline-ok",
        "revocations": [],
    }


def base_plugin_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "audience": "orders-api",
        "trust_material": {"issuers": [{
            "issuer": ISSUER,
            "trust_domain": TRUST_DOMAIN,
            "keys": [{"kid": KID, "alg": "EdDSA", "public_key_b64url": TEST_PUBLIC_KEY}],
        }]},
        "policy_bundle": policy_bundle(),
        "routing": {"mode": "request"},
        "signed_headers": ["content-type", "accept", "x-trustplane-nonce"],
        "allow_unauthenticated": [{"method": "GET", "path_prefix": "/healthz"}],
        "max_body_bytes": 4096,
    }
    config.update(copy.deepcopy(overrides))
    return config


# ---------------------------------------------------------------------------------------------
# Envoy bootstrap

WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def wasm_filter_config(plugin_config: dict[str, Any], wasm: Path) -> dict[str, Any]:
    """The `envoy.filters.http.wasm` typed config for proofgate, with the README's settings."""
    return {
        "@type": WASM_FILTER_TYPE,
        "config": {
            "name": "proofgate",
            "root_id": "proofgate",
            # A crashed VM is replaced (README, "Recommended Envoy settings").
            "failure_policy": "FAIL_RELOAD",
            "allow_on_headers_stop_iteration": True,
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": json.dumps(plugin_config),
            },
            "vm_config": {
                "vm_id": "proofgate",
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": str(wasm)}},
            },
        },
    }


def ecds_resource(plugin_config: dict[str, Any], wasm: Path, version: str = "1") -> dict[str, Any]:
    """An ECDS discovery response delivering proofgate's filter config (the file Envoy watches)."""
    return {"version_info": version, "resources": [{
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": "proofgate",
        "typed_config": wasm_filter_config(plugin_config, wasm),
    }]}


def bootstrap(*, upstream_port: int, plugin_config: dict[str, Any] | None, wasm: Path,
              access_log: Path, listener_port: int = 0, admin_port: int = 0,
              escaped_slashes_action: str = "REJECT_REQUEST",
              ecds_path: Path | None = None,
              extra_clusters: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The Envoy bootstrap as a dict (written as JSON, which is also YAML). The HTTP connection
    manager is the README's deployment list; `escaped_slashes_action` other than
    REJECT_REQUEST is for tests that show the filter fails closed on its own. With `ecds_path`
    the filter's config comes from that file through extension config discovery.
    `extra_clusters` are added beside `upstream` (e.g. the JWKS server a `jwks.cluster` names)."""
    http_filters: list[dict[str, Any]] = []
    if ecds_path is not None:
        http_filters.append({"name": "proofgate", "config_discovery": {
            "config_source": {"path_config_source": {"path": str(ecds_path)},
                              "resource_api_version": "V3"},
            "type_urls": [WASM_FILTER_TYPE],
        }})
    elif plugin_config is not None:
        http_filters.append({"name": "envoy.filters.http.wasm",
                             "typed_config": wasm_filter_config(plugin_config, wasm)})
    http_filters.append({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    })
    access_log_format = (
        '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%" %RESPONSE_CODE% '
        "%FILTER_STATE(wasm.proofgate.decision:PLAIN)% %FILTER_STATE(wasm.proofgate.reason:PLAIN)% "
        "%REQ(X-REQUEST-ID)% route=%FILTER_STATE(wasm.proofgate.route_id:PLAIN)% "
        "subject=%FILTER_STATE(wasm.proofgate.subject:PLAIN)% issuer=%FILTER_STATE(wasm.proofgate.issuer:PLAIN)% "
        "event=%FILTER_STATE(wasm.proofgate.event_id:PLAIN)%\n"
    )
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": escaped_slashes_action,
        "access_log": [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": str(access_log),
                "log_format": {"text_format_source": {"inline_string": access_log_format}},
            },
        }],
        "route_config": {
            "name": "local",
            "virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
            }],
        },
        "http_filters": http_filters,
    }
    return {
        # Config sources (ECDS) need a node identity.
        **({"node": {"id": "proofgate-e2e", "cluster": "proofgate-e2e"}} if ecds_path else {}),
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener_port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}],
            }],
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{
                    "endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                                 "port_value": upstream_port}}},
                }]}]},
            }, *copy.deepcopy(list(extra_clusters))],
        },
    }


# ---------------------------------------------------------------------------------------------
# HTTP client with raw header control

@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]  # lowercased names, in order
    body: bytes
    upstream_before: int | None = None  # upstream records before this request (Gateway.send)

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def send(host: str, port: int, method: str, target: str,
         headers: Iterable[tuple[str, str]] = (), body: bytes | None = None,
         *, authority: str | None = None, timeout: float = 5.0) -> Response:
    """One request on a fresh connection. Headers go out exactly as given (duplicates kept);
    Host is `authority` (default host:port) unless `headers` carries one; Content-Length is
    added when a body is given and `headers` has none."""
    headers = list(headers)
    names = {n.lower() for n, _ in headers}
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if "host" not in names:
            conn.putheader("Host", authority or f"{host}:{port}")
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, [(n.lower(), v) for n, v in resp.getheaders()], data)
    finally:
        conn.close()


def _http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# ---------------------------------------------------------------------------------------------
# Processes

_base_ids = itertools.count(1)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"<{path} unreadable>"


def _stop(proc: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def start_upstream(record: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "upstream.py"), "--port", "0", "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not match:
        _stop(proc)
        raise RuntimeError(f"upstream did not start: {line!r}")
    return proc, int(match.group(1))


def envoy_command(config: Path, *extra: str) -> list[str]:
    return [str(envoy_bin()), "-c", str(config), *extra]


@dataclass
class Gateway:
    workdir: Path
    plugin_config: dict[str, Any] | None
    host: str = "127.0.0.1"
    port: int = 0
    admin_port: int = 0
    envoy: subprocess.Popen[bytes] | None = None
    upstream: subprocess.Popen[str] | None = None
    # Listeners from a watched file (file-based LDS) instead of static_resources: `reload()`
    # delivers another plugin configuration the way an LDS update does.
    file_lds: bool = False
    upstream_port: int = 0
    # More Envoy clusters (e.g. the etcd cluster of `replay.cluster`), added to the bootstrap.
    extra_clusters: list[dict[str, Any]] = field(default_factory=list)
    record: Path = field(init=False)
    envoy_log: Path = field(init=False)
    access_log: Path = field(init=False)
    escaped_slashes_action: str = "REJECT_REQUEST"
    ecds: bool = False  # deliver the plugin config through ECDS (`push_config` updates it)
    wasm: Path | None = None  # default: wasm_path()

    def __post_init__(self) -> None:
        self.record = self.workdir / "upstream.jsonl"
        self.envoy_log = self.workdir / "envoy.log"
        self.access_log = self.workdir / "access.log"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "Gateway":
        _started.append(self)
        self.record.touch()
        self.upstream, upstream_port = start_upstream(self.record)
        self.upstream_port = upstream_port
        config = self.workdir / "envoy.yaml"
        ecds_path = None
        if self.ecds:
            assert self.plugin_config is not None
            ecds_path = self.workdir / "proofgate.ecds.json"
            self.push_config(self.plugin_config)
        boot = bootstrap(upstream_port=upstream_port, plugin_config=self.plugin_config,
                         wasm=self.wasm or wasm_path(), access_log=self.access_log,
                         escaped_slashes_action=self.escaped_slashes_action, ecds_path=ecds_path)
        boot["static_resources"]["clusters"] += copy.deepcopy(self.extra_clusters)
        if self.file_lds:
            self.port = self.port or free_port()
            boot = self._with_file_lds(boot)
        config.write_text(json.dumps(boot, indent=2))
        admin_file = self.workdir / "admin.address"
        cmd = envoy_command(
            config, "--concurrency", "2", "--log-level", "info",
            "--component-log-level", os.environ.get("ENVOY_COMPONENT_LOG_LEVEL", "wasm:info"),
            "--log-path", str(self.envoy_log),
            "--base-id", str(_unique_base_id()), "--admin-address-path", str(admin_file),
            "--file-flush-interval-msec", "20",
        )
        self.envoy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      cwd=self.workdir)
        try:
            self._wait_ready(admin_file)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, admin_file: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        assert self.envoy is not None
        while time.monotonic() < deadline:
            if self.envoy.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.envoy.returncode} before ready; "
                                   f"log tail:\n{_tail(self.envoy_log)}")
            if not self.admin_port and admin_file.exists():
                text = admin_file.read_text().strip()
                if text:
                    self.admin_port = int(text.rsplit(":", 1)[1])
            if self.admin_port:
                try:
                    status, body = _http_get(f"{self.admin_url}/ready")
                    if status == 200 and body.strip() == b"LIVE":
                        self.port = self._listener_port()
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"envoy not ready within {READY_TIMEOUT_S}s; log tail:\n{_tail(self.envoy_log)}")

    def _with_file_lds(self, boot: dict[str, Any]) -> dict[str, Any]:
        listeners = boot["static_resources"].pop("listeners")
        for listener in listeners:
            listener["address"]["socket_address"]["port_value"] = self.port
        self._write_lds(listeners)
        boot["node"] = {"id": "proofgate-e2e", "cluster": "proofgate-e2e"}
        boot["dynamic_resources"] = {"lds_config": {
            "resource_api_version": "V3", "path_config_source": {"path": str(self.workdir / "lds.json")}}}
        return boot

    def _write_lds(self, listeners: list[dict[str, Any]]) -> None:
        resources = [{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **lst} for lst in listeners]
        tmp = self.workdir / "lds.json.tmp"
        tmp.write_text(json.dumps({"resources": resources}, indent=2))
        tmp.rename(self.workdir / "lds.json")  # Envoy reloads on the rename

    def reload(self, plugin_config: dict[str, Any], timeout: float = 15.0) -> None:
        """File-based LDS update of the listener with another plugin configuration; returns once
        Envoy applied it and every worker's VM loaded it (new connections use it)."""
        assert self.file_lds, "reload() needs Gateway(file_lds=True)"
        before = self.stats()
        self.plugin_config = plugin_config
        boot = bootstrap(upstream_port=self.upstream_port, plugin_config=plugin_config, wasm=self.wasm or wasm_path(),
                         access_log=self.access_log, listener_port=self.port,
                         escaped_slashes_action=self.escaped_slashes_action)
        self._write_lds(boot["static_resources"]["listeners"])

        def applied() -> bool:
            now = self.stats()
            return (now.get("listener_manager.lds.update_success", 0)
                    > before.get("listener_manager.lds.update_success", 0)
                    and now.get("listener_manager.total_listeners_warming", 0) == 0
                    and now.get("wasmcustom.proofgate.config.loads", 0)
                    > before.get("wasmcustom.proofgate.config.loads", 0))
        self.wait_for(applied, timeout, "the LDS update")

    def _listener_port(self) -> int:
        _, body = _http_get(f"{self.admin_url}/listeners?format=json")
        listeners = json.loads(body)["listener_statuses"]
        return int(listeners[0]["local_address"]["socket_address"]["port_value"])

    def stop(self) -> None:
        _stop(self.envoy)
        _stop(self.upstream)
        if self.upstream is not None and self.upstream.stdout is not None:
            self.upstream.stdout.close()

    def push_config(self, plugin_config: dict[str, Any]) -> None:
        """ECDS: replace the plugin config file atomically (Envoy watches for the rename)."""
        self._ecds_version = getattr(self, "_ecds_version", 0) + 1
        path = self.workdir / "proofgate.ecds.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ecds_resource(plugin_config, self.wasm or wasm_path(),
                                                str(self._ecds_version))))
        os.replace(tmp, path)

    def alive(self) -> bool:
        return self.envoy is not None and self.envoy.poll() is None

    # -- requests -------------------------------------------------------------------------
    def send(self, method: str, target: str, headers: Iterable[tuple[str, str]] = (),
             body: bytes | None = None, **kwargs: Any) -> Response:
        before = len(self.upstream_requests())
        resp = send(self.host, self.port, method, target, headers, body, **kwargs)
        resp.upstream_before = before
        return resp

    def send_signed(self, req: dict[str, Any], *, drop: Sequence[str] = (),
                    replace: dict[str, str] | None = None, extra: Iterable[tuple[str, str]] = (),
                    method: str | None = None, target: str | None = None,
                    body: bytes | None = None) -> Response:
        """Send a request from tpsign.sign(), optionally tampered with after signing."""
        replace = {k.lower(): v for k, v in (replace or {}).items()}
        drop_l = {d.lower() for d in drop}
        headers = [(n, replace.get(n.lower(), v)) for n, v in req["headers"].items()
                   if n.lower() not in drop_l]
        headers += list(extra)
        payload = req["body"] if body is None else body
        m = method or req["method"]
        return self.send(m, target or req["target"], headers,
                         payload if (payload or m not in ("GET", "HEAD")) else None)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -- observations ---------------------------------------------------------------------
    def upstream_requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]

    def log_text(self) -> str:
        return self.envoy_log.read_text(errors="replace") if self.envoy_log.exists() else ""

    def audit_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_text().splitlines():
            at = line.find(AUDIT_PREFIX)
            if at >= 0:
                events.append(json.loads(line[at + len(AUDIT_PREFIX):]))
        return events

    def wasm_errors(self) -> list[str]:
        """Envoy error/critical lines from the wasm component (a trap or panic shows up here)."""
        return [line for line in self.log_text().splitlines()
                if "][error][wasm]" in line or "][critical][wasm]" in line]

    def access_log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def wait_for(self, probe: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
        """Poll `probe` until it returns something truthy (logs are flushed every 20 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def audit_event(self, event_id: str, timeout: float = 5.0) -> dict[str, Any]:
        def probe() -> list[dict[str, Any]]:
            return [e for e in self.audit_events() if e.get("event_id") == event_id]
        found = self.wait_for(probe, timeout, f"audit event {event_id}")
        assert len(found) == 1, f"{len(found)} audit events with event_id {event_id}: {found}"
        return found[0]

    def stats(self) -> dict[str, int]:
        """Counters and gauges from admin /stats?format=json, by name."""
        _, body = _http_get(f"{self.admin_url}/stats?format=json")
        out: dict[str, int] = {}
        for stat in json.loads(body)["stats"]:
            if "name" in stat and isinstance(stat.get("value"), int):
                out[stat["name"]] = stat["value"]
        return out


_started: list[Gateway] = []


@atexit.register
def _stop_all() -> None:  # a crashed script must not leave Envoys or upstreams behind
    for gateway in _started:
        gateway.stop()


def _unique_base_id() -> int:
    # Distinct per process and per gateway, so several Envoys (and parallel runs) coexist.
    return (os.getpid() % 10_000) * 100 + next(_base_ids) % 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(plugin_config: dict[str, Any] | None, workdir: Path | None = None,
                  **options: Any) -> Gateway:
    """`options` are Gateway fields, e.g. escaped_slashes_action="KEEP_UNCHANGED"."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="proofgate-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return Gateway(workdir, plugin_config, **options).start()


def stop_checked(gw: Gateway) -> None:
    """Stop a gateway and fail if its wasm logged errors (a trap or panic) while it ran."""
    errors = gw.wasm_errors()
    gw.stop()
    assert not errors, "wasm errors in envoy.log (trap/panic?):\n" + "\n".join(errors[-20:])


def serve(plugin_config: dict[str, Any], workdir: Path, **options: Any) -> Iterator[Gateway]:
    """A gateway for a pytest fixture: started, yielded, then stopped with `stop_checked`."""
    gw = start_gateway(plugin_config, workdir, **options)
    try:
        yield gw
    finally:
        stop_checked(gw)


# ---------------------------------------------------------------------------------------------
# Config validation

def validate_config(plugin_config: dict[str, Any], workdir: Path | None = None,
                    extra_clusters: Sequence[dict[str, Any]] = ()) -> tuple[bool, str]:
    """`envoy --mode validate` on the bootstrap with this plugin config: (ok, output)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="proofgate-validate-"))
    config = workdir / "envoy.yaml"
    config.write_text(json.dumps(bootstrap(upstream_port=9, plugin_config=plugin_config,
                                           wasm=wasm_path(), access_log=workdir / "access.log",
                                           extra_clusters=extra_clusters), indent=2))
    proc = subprocess.run(
        envoy_command(config, "--mode", "validate", "--log-level", "info",
                      "--component-log-level", "wasm:info", "--base-id", str(_unique_base_id())),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, cwd=workdir,
    )
    return proc.returncode == 0, proc.stdout


# ---------------------------------------------------------------------------------------------
# The wire contract (DESIGN.md section 7)

STATUS_BY_REASON = {
    **dict.fromkeys(["bundle_policy_missing", "bundle_route_missing", "stale_bundle_fail_closed",
                     "bundle_freshness_unknown", "audience_mismatch", "trust_domain_mismatch",
                     "source_issuer_mismatch", "source_trust_domain_mismatch",
                     "source_subject_mismatch", "insufficient_key_binding", "missing_context",
                     "context_mismatch", "missing_provenance", "provenance_mismatch"], 403),
    **dict.fromkeys(["missing_passport", "malformed_passport", "unknown_signing_key",
                     "invalid_passport_signature", "invalid_passport_claims", "passport_expired",
                     "passport_not_yet_valid", "passport_lifetime_exceeded",
                     "missing_request_proof", "invalid_request_proof", "request_binding_mismatch",
                     "jti_replay", "revoked", "jti_in_flight"], 401),
    # Bearer JWT providers (DESIGN.md section 13).
    **dict.fromkeys(["missing_token", "malformed_token", "invalid_token_signature",
                     "issuer_mismatch", "token_expired", "token_not_yet_valid"], 401),
    **dict.fromkeys(["insufficient_scope", "env_mismatch"], 403),
    # DPoP (DESIGN.md section 14); a DPoP provider's 401 has its own challenges (test_dpop.py).
    **dict.fromkeys(["missing_dpop_proof", "invalid_dpop_proof", "dpop_binding_mismatch",
                     "dpop_replay", "dpop_downgrade", "use_dpop_nonce"], 401),
    "body_too_large": 413,
    "body_timeout": 408,
    "replay_store_unavailable": 503,
    "keys_unavailable": 503,
    "too_many_parked_requests": 503,
}
EVENT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
IDENTITY_HEADERS = ("x-trustplane-subject", "x-trustplane-issuer", "x-trustplane-trust-domain",
                    "x-trustplane-jti", "x-trustplane-route-id", "x-trustplane-key-binding",
                    "x-trustplane-event-id")
DECISION_HEADERS = ("x-trustplane-decision", "x-trustplane-reason")
CREDENTIAL_HEADERS = ("authorization", "x-trustplane-proof", "x-trustplane-transcript-sha256",
                      "x-trustplane-body-sha256", "x-trustplane-nonce")


def describe(resp: Response) -> str:
    return f"status={resp.status} headers={resp.headers} body={resp.body[:600]!r}"


def expect_deny(resp: Response, status: int, reason: str, *, presented: bool,
                gateway: Gateway | None = None) -> str:
    """Assert the exact deny contract; returns the event id. `presented`: an Authorization header
    was sent (a 401 then says error="invalid_token"). With `gateway`, also assert the request did
    not reach the upstream."""
    info = describe(resp)
    assert STATUS_BY_REASON.get(reason) == status, f"test bug: {reason} is not a {status}"
    assert (resp.status, resp.header("x-trustplane-reason")) == (status, reason), info
    assert resp.headers_named("content-type") == ["application/json"], info
    assert resp.headers_named("x-trustplane-decision") == ["deny"], info
    assert resp.headers_named("x-trustplane-reason") == [reason], info
    event_ids = resp.headers_named("x-trustplane-event-id")
    assert len(event_ids) == 1 and EVENT_ID_RE.match(event_ids[0]), info
    event_id = event_ids[0]
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"deny body is not JSON: {info}") from None
    assert body == {"allowed": False, "reason": reason, "event_id": event_id}, info
    challenge = resp.headers_named("www-authenticate")
    if status == 401:
        want = 'Bearer realm="proofgate"' + (', error="invalid_token"' if presented else "")
        assert challenge == [want], info
    else:
        assert challenge == [], info
    if gateway is not None and resp.upstream_before is not None:
        assert len(gateway.upstream_requests()) == resp.upstream_before, "denied request reached upstream"
    return event_id


def header_values(seen: dict[str, Any], name: str) -> list[str]:
    return [v for n, v in seen["headers"] if n == name]


def expect_allow(resp: Response, *, jti: str, route_id: str,
                 forwarded_credentials: bool = False) -> dict[str, Any]:
    """Assert an allowed request and what the upstream saw; returns the upstream's view."""
    info = describe(resp)
    assert resp.status == 200, info
    assert resp.header("x-trustplane-decision") != "deny", info
    seen = resp.json()
    expected = {
        "x-trustplane-subject": SUBJECT,
        "x-trustplane-issuer": ISSUER,
        "x-trustplane-trust-domain": TRUST_DOMAIN,
        "x-trustplane-jti": jti,
        "x-trustplane-route-id": route_id,
        "x-trustplane-key-binding": "software",
    }
    for name, value in expected.items():
        assert header_values(seen, name) == [value], f"upstream {name}: {seen['headers']}"
    event_ids = header_values(seen, "x-trustplane-event-id")
    assert len(event_ids) == 1 and EVENT_ID_RE.match(event_ids[0]), f"upstream event id: {seen['headers']}"
    for name in DECISION_HEADERS:
        assert header_values(seen, name) == [], f"upstream got {name}: {seen['headers']}"
    for name in CREDENTIAL_HEADERS:
        got = header_values(seen, name)
        if forwarded_credentials:
            assert len(got) == 1, f"upstream should get {name} (forward_credentials): {seen['headers']}"
        else:
            assert got == [], f"upstream got credential {name}: {seen['headers']}"
    return seen
