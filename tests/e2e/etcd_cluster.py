"""A real 3-member etcd cluster on loopback for the cluster-wide replay tests (Debian
`etcd-server`, which `make` installs when missing). Data lives on tmpfs when there is one, so
fsync does not dominate on a shared CI machine. Not a test module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness


def etcd_bin() -> str | None:
    return shutil.which("etcd")


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdCluster:
    workdir: Path
    members: list[Member] = field(default_factory=list)

    @classmethod
    def create(cls, size: int = 3) -> "EtcdCluster":
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
        workdir = Path(tempfile.mkdtemp(prefix="proofgate-etcd-", dir=base))
        c = cls(workdir)
        for i in range(size):
            c.members.append(Member(f"m{i}", harness.free_port(), harness.free_port(),
                                    workdir / f"m{i}", workdir / f"m{i}.log"))
        return c

    def start(self, member: Member) -> None:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        cmd = [etcd_bin() or "etcd", "--name", member.name, "--data-dir", str(member.data_dir),
               "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
               "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
               "--initial-cluster", initial, "--initial-cluster-token", "proofgate-e2e",
               "--initial-cluster-state", "new", "--heartbeat-interval", "100",
               "--election-timeout", "1000", "--log-level", "warn"]
        log = member.log.open("ab")
        member.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()

    def start_all(self) -> "EtcdCluster":
        for m in self.members:
            self.start(m)
        self.wait_healthy(self.members)
        return self

    def kill(self, member: Member) -> None:
        if member.proc is not None and member.proc.poll() is None:
            member.proc.kill()
            member.proc.wait(timeout=10)
        member.proc = None

    def stop(self) -> None:
        for m in self.members:
            self.kill(m)
        shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def healthy(member: Member) -> bool:
        try:
            with urllib.request.urlopen(f"{member.client_url}/health", timeout=1) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def wait_healthy(self, members: list[Member], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.healthy(m) for m in members):
                return
            time.sleep(0.1)
        logs = "\n".join(m.log.read_text(errors="replace")[-2000:] for m in self.members if m.log.exists())
        raise RuntimeError(f"etcd members not healthy within {timeout}s:\n{logs}")

    def etcdctl(self, *args: str) -> Any:
        endpoints = ",".join(m.client_url for m in self.members if m.proc is not None)
        out = subprocess.run(["etcdctl", "--endpoints", endpoints, "-w", "json", *args],
                             check=True, capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})
        return json.loads(out.stdout)

    def envoy_cluster(self, name: str, *, http2: bool) -> dict[str, Any]:
        """An Envoy cluster reaching every member, with a TCP health check, so a dead member is
        left out within about a second (a member without quorum still answers, with an error)."""
        cluster: dict[str, Any] = {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "0.25s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                             "port_value": m.client_port}}}}
                for m in self.members]}]},
            "health_checks": [{
                "timeout": "0.5s", "interval": "0.3s", "unhealthy_threshold": 1, "healthy_threshold": 1,
                # Envoy checks a cluster without traffic only every 60 s by default.
                "no_traffic_interval": "0.3s", "no_traffic_healthy_interval": "0.3s",
                "tcp_health_check": {},
            }],
        }
        if http2:
            cluster["typed_extension_protocol_options"] = {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }}
        return cluster
