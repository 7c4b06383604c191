//! The cluster-wide replay step (DESIGN.md section 15) as a state machine the shell drives: what
//! to send to etcd, and what each answer makes of the request. After the shared-data consume
//! passed, one transaction puts the claim's key if it was never created, with a lease that ends
//! no earlier than the claim's `until`. Leases are shared per window of [`LEASE_WINDOW`] seconds
//! (so etcd holds a few leases, not one per jti), granted lazily by the first request that needs
//! one, and their ids kept in shared data for every worker; a lease etcd no longer knows is
//! forgotten and granted again once. Anything else that goes wrong refuses the request: the
//! machine never answers `Consumed` without etcd's confirmation.

use super::etcd::{self, Answer};
use super::{Claim, SharedStore, StoreError};
use crate::config::replay::{ClusterConfig, Protocol};
use prost::Message;
use sha2::{Digest, Sha256};

/// Seconds per lease window: a key lives at most this much longer than its claim.
pub const LEASE_WINDOW: i64 = 60;
/// Shared-data slots for lease ids (a ring over windows; keys can never be deleted).
const LEASE_SLOTS: i64 = 64;

/// The etcd key of a claim: the prefix, the namespace, and the SHA-256 (hex) of the issuer and
/// id, length-prefixed. Hashing keeps caller-chosen bytes out of etcd's key space.
pub fn etcd_key(prefix: &str, claim: &Claim<'_>) -> Vec<u8> {
    let mut h = Sha256::new();
    for f in [claim.issuer, claim.id] {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    let digest = h.finalize();
    let mut key = format!("{prefix}{}/", claim.namespace);
    for b in digest {
        key.push_str(&format!("{b:02x}"));
    }
    key.into_bytes()
}

/// The window whose end is the first multiple of [`LEASE_WINDOW`] at or after `until`.
pub fn window_of(until: i64) -> i64 {
    until.div_euclid(LEASE_WINDOW) + i64::from(until.rem_euclid(LEASE_WINDOW) != 0)
}

/// The TTL to grant at `now` so that a lease for `window` lives until the window's end.
pub fn ttl_for(window: i64, now: i64) -> i64 {
    (window.saturating_mul(LEASE_WINDOW) - now).max(1)
}

fn slot_key(cluster: &str, window: i64) -> String {
    format!(
        "proofgate.replay.etcd.{cluster}.lease.{}",
        window.rem_euclid(LEASE_SLOTS)
    )
}

/// The lease id kept for `window`, if any.
pub fn lease_for(store: &mut dyn SharedStore, cluster: &str, window: i64) -> Option<i64> {
    match store.get(&slot_key(cluster, window)) {
        Ok((Some(v), _)) if v.len() == 16 => {
            let w = i64::from_be_bytes(v[..8].try_into().ok()?);
            let id = i64::from_be_bytes(v[8..].try_into().ok()?);
            (w == window && id != 0).then_some(id)
        }
        _ => None,
    }
}

/// Keeps `id` as the lease of `window` (0 forgets it). Best effort: another worker may have
/// stored its own lease for the window first, and then both are valid.
pub fn keep_lease(store: &mut dyn SharedStore, cluster: &str, window: i64, id: i64) {
    let key = slot_key(cluster, window);
    let mut value = window.to_be_bytes().to_vec();
    value.extend_from_slice(&id.to_be_bytes());
    let cas = match store.get(&key) {
        Ok((_, cas)) => cas,
        Err(_) => return,
    };
    match store.set(&key, &value, cas) {
        Ok(()) | Err(StoreError::CasMismatch) | Err(StoreError::Other) => {}
    }
}

/// One call to etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// gRPC service and method.
    pub service: &'static str,
    pub method: &'static str,
    /// HTTP path on the JSON gateway.
    pub path: &'static str,
    /// The protobuf message (gRPC) or JSON body (HTTP).
    pub body: Vec<u8>,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Send(Call),
    /// etcd confirmed the put: the claim is consumed cluster-wide.
    Consumed,
    /// The key already existed: a replay.
    Replay,
    /// etcd failed, timed out, or answered something unexpected: refuse (503).
    Unavailable(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Grant,
    Txn(i64),
}

/// An answer as the shell received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// gRPC: grpc-status, its message, the response message.
    Grpc {
        status: u32,
        message: &'a str,
        body: &'a [u8],
    },
    /// HTTP: status code and body.
    Http { status: u32, body: &'a [u8] },
    /// The call could not be made or got no answer (timeout, reset, no such cluster).
    Failed,
}

/// One request's cluster consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConsume {
    cluster: String,
    protocol: Protocol,
    key: Vec<u8>,
    value: Vec<u8>,
    window: i64,
    waiting: Waiting,
    regranted: bool,
}

impl ClusterConsume {
    /// Starts consuming `claim` (already consumed in shared data) at `now`.
    pub fn start(
        cfg: &ClusterConfig,
        claim: &Claim<'_>,
        store: &mut dyn SharedStore,
        now: i64,
    ) -> (Self, Step) {
        let mut c = ClusterConsume {
            cluster: cfg.cluster.clone(),
            protocol: cfg.protocol,
            key: etcd_key(&cfg.key_prefix, claim),
            value: claim.until.to_string().into_bytes(),
            window: window_of(claim.until),
            waiting: Waiting::Grant,
            regranted: false,
        };
        let step = match lease_for(store, &c.cluster, c.window) {
            Some(id) => c.txn(id),
            None => c.grant(now),
        };
        (c, step)
    }

    fn grant(&mut self, now: i64) -> Step {
        self.waiting = Waiting::Grant;
        let ttl = ttl_for(self.window, now);
        Step::Send(Call {
            service: etcd::LEASE_SERVICE,
            method: "LeaseGrant",
            path: etcd::LEASE_GRANT_PATH,
            body: match self.protocol {
                Protocol::Grpc => etcd::LeaseGrantRequest { ttl, id: 0 }.encode_to_vec(),
                Protocol::Http => etcd::lease_grant_json(ttl),
            },
        })
    }

    fn txn(&mut self, lease: i64) -> Step {
        self.waiting = Waiting::Txn(lease);
        Step::Send(Call {
            service: etcd::KV_SERVICE,
            method: "Txn",
            path: etcd::TXN_PATH,
            body: match self.protocol {
                Protocol::Grpc => etcd::txn_request(&self.key, &self.value, lease).encode_to_vec(),
                Protocol::Http => etcd::txn_json(&self.key, &self.value, lease),
            },
        })
    }

    /// The next step after an answer, at `now`.
    pub fn on_reply(&mut self, reply: Reply<'_>, store: &mut dyn SharedStore, now: i64) -> Step {
        let answer = match (reply, self.waiting) {
            (Reply::Failed, _) => return Step::Unavailable("etcd call failed or timed out"),
            (Reply::Grpc { status, body, .. }, Waiting::Grant) => {
                etcd::grpc_lease_answer(status, body)
            }
            (
                Reply::Grpc {
                    status,
                    message,
                    body,
                },
                Waiting::Txn(_),
            ) => etcd::grpc_txn_answer(status, message, body),
            (Reply::Http { status, body }, Waiting::Grant) => etcd::http_lease_answer(status, body),
            (Reply::Http { status, body }, Waiting::Txn(_)) => etcd::http_txn_answer(status, body),
        };
        match (answer, self.waiting) {
            (Answer::Lease(id), Waiting::Grant) => {
                keep_lease(store, &self.cluster, self.window, id);
                self.txn(id)
            }
            (Answer::Created, Waiting::Txn(_)) => Step::Consumed,
            (Answer::Exists, Waiting::Txn(_)) => Step::Replay,
            (Answer::LeaseNotFound, Waiting::Txn(_)) if !self.regranted => {
                self.regranted = true;
                keep_lease(store, &self.cluster, self.window, 0);
                self.grant(now)
            }
            (Answer::LeaseNotFound, _) => Step::Unavailable("etcd lost a fresh lease"),
            (Answer::Failed(why), _) => Step::Unavailable(why),
            _ => Step::Unavailable("unexpected etcd answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::MemoryStore;

    fn cfg(protocol: Protocol) -> ClusterConfig {
        ClusterConfig {
            cluster: "etcd".into(),
            protocol,
            key_prefix: "pg/".into(),
            timeout_ms: 250,
        }
    }

    fn claim(until: i64) -> Claim<'static> {
        Claim {
            namespace: Claim::PASSPORT,
            issuer: "iss",
            id: "jti-1",
            subject: "s",
            until,
        }
    }

    fn sent(step: &Step) -> &Call {
        match step {
            Step::Send(call) => call,
            other => panic!("expected a call, got {other:?}"),
        }
    }

    #[test]
    fn key_and_lease_window_arithmetic() {
        let key = String::from_utf8(etcd_key("pg/", &claim(0))).unwrap();
        // sha256(u64be(3) "iss" u64be(5) "jti-1")
        let mut h = Sha256::new();
        h.update([0, 0, 0, 0, 0, 0, 0, 3]);
        h.update(b"iss");
        h.update([0, 0, 0, 0, 0, 0, 0, 5]);
        h.update(b"jti-1");
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key, format!("pg/passport/{hex}"));
        assert_eq!((window_of(120), window_of(121), window_of(179)), (2, 3, 3));
        assert_eq!(
            ttl_for(3, 100),
            80,
            "the lease ends at the window's end, 180"
        );
        assert_eq!(ttl_for(3, 500), 1, "never a zero TTL");
        let mut m = MemoryStore::default();
        keep_lease(&mut m, "etcd", 3, 42);
        assert_eq!(lease_for(&mut m, "etcd", 3), Some(42));
        assert_eq!(lease_for(&mut m, "other", 3), None, "per cluster");
        assert_eq!(
            lease_for(&mut m, "etcd", 3 + LEASE_SLOTS),
            None,
            "same slot, other window"
        );
        keep_lease(&mut m, "etcd", 3, 0);
        assert_eq!(lease_for(&mut m, "etcd", 3), None, "forgotten");
    }

    #[test]
    fn first_request_grants_a_lease_then_puts_with_it() {
        for protocol in [Protocol::Grpc, Protocol::Http] {
            let mut m = MemoryStore::default();
            let (mut c, step) = ClusterConsume::start(&cfg(protocol), &claim(121), &mut m, 100);
            assert_eq!(sent(&step).method, "LeaseGrant");
            let reply = match protocol {
                Protocol::Grpc => {
                    assert_eq!(sent(&step).body, [0x08, 80], "TTL to 180");
                    Reply::Grpc {
                        status: 0,
                        message: "",
                        body: &[0x0a, 0x00, 0x10, 0x2a],
                    }
                }
                Protocol::Http => {
                    assert_eq!(sent(&step).body, br#"{"ID":"0","TTL":"80"}"#);
                    Reply::Http {
                        status: 200,
                        body: br#"{"header":{},"ID":"42","TTL":"80"}"#,
                    }
                }
            };
            let step = c.on_reply(reply, &mut m, 101);
            assert_eq!(
                (sent(&step).service, sent(&step).method),
                ("etcdserverpb.KV", "Txn")
            );
            assert_eq!(
                lease_for(&mut m, "etcd", 3),
                Some(42),
                "kept for the others"
            );
            let created = match protocol {
                Protocol::Grpc => Reply::Grpc {
                    status: 0,
                    message: "",
                    body: &[0x0a, 0x00, 0x10, 0x01],
                },
                Protocol::Http => Reply::Http {
                    status: 200,
                    body: br#"{"header":{},"succeeded":true}"#,
                },
            };
            assert_eq!(c.on_reply(created, &mut m, 101), Step::Consumed);
            // The next request in the window uses the kept lease at once.
            let (_, step) = ClusterConsume::start(&cfg(protocol), &claim(150), &mut m, 102);
            assert_eq!(sent(&step).method, "Txn");
        }
    }

    #[test]
    fn every_failure_maps_to_a_refusal() {
        let mut m = MemoryStore::default();
        keep_lease(&mut m, "etcd", 3, 42);
        let start = |m: &mut MemoryStore| {
            ClusterConsume::start(&cfg(Protocol::Grpc), &claim(121), m, 100).0
        };
        let grpc = |status, message, body| Reply::Grpc {
            status,
            message,
            body,
        };
        let header_only: &[u8] = &[0x0a, 0x00];
        assert_eq!(
            start(&mut m).on_reply(grpc(0, "", header_only), &mut m, 100),
            Step::Replay
        );
        for reply in [
            Reply::Failed,
            grpc(14, "etcdserver: no leader", &[]),
            grpc(4, "context deadline exceeded", &[]),
            grpc(0, "", &[]),
            Reply::Http {
                status: 200,
                body: b"{}",
            },
        ] {
            assert!(
                matches!(
                    start(&mut m).on_reply(reply, &mut m, 100),
                    Step::Unavailable(_)
                ),
                "{reply:?}"
            );
        }
        // A lease etcd forgot: forgotten here too, granted again once, then refused.
        let mut c = start(&mut m);
        let lost = grpc(5, "etcdserver: requested lease not found", &[]);
        assert_eq!(sent(&c.on_reply(lost, &mut m, 100)).method, "LeaseGrant");
        assert_eq!(lease_for(&mut m, "etcd", 3), None);
        let granted = grpc(0, "", &[0x0a, 0x00, 0x10, 0x07]);
        assert_eq!(sent(&c.on_reply(granted, &mut m, 100)).method, "Txn");
        assert!(matches!(
            c.on_reply(lost, &mut m, 100),
            Step::Unavailable(_)
        ));
        // A failed grant is a refusal, and nothing is kept.
        let mut m = MemoryStore::default();
        let (mut c, _) = ClusterConsume::start(&cfg(Protocol::Grpc), &claim(121), &mut m, 100);
        assert!(matches!(
            c.on_reply(grpc(14, "no leader", &[]), &mut m, 100),
            Step::Unavailable(_)
        ));
        assert_eq!(lease_for(&mut m, "etcd", 3), None);
    }
}
