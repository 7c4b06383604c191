//! The `replay` object of the plugin configuration (DESIGN.md sections 2, 5 and 15): the size of
//! the shared-data store, one caller's share of it, and the optional cluster-wide store in etcd.

use super::reader::{self, Node, Result};

pub const DEFAULT_MAX_ENTRIES: i64 = 65_536;
pub const MAX_MAX_ENTRIES: i64 = 4_194_304;
pub const DEFAULT_CLUSTER_TIMEOUT_MS: i64 = 250;
pub const DEFAULT_KEY_PREFIX: &str = "proofgate/replay/";

/// `replay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Live entries the shared-data store holds without refusing (DESIGN.md section 5).
    pub max_entries: usize,
    /// Live entries one (issuer, subject) may hold; default a quarter of `max_entries`.
    pub max_entries_per_subject: usize,
    /// `replay.cluster`: the cluster-wide store (section 15), when configured.
    pub cluster: Option<ClusterConfig>,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        let max_entries = DEFAULT_MAX_ENTRIES as usize;
        ReplayConfig {
            max_entries,
            max_entries_per_subject: max_entries / 4,
            cluster: None,
        }
    }
}

/// How the etcd v3 API is reached through the Envoy cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `etcdserverpb.KV/Txn` over gRPC (HTTP/2 cluster).
    Grpc,
    /// The `/v3/kv/txn` JSON gateway over HTTP.
    Http,
}

/// `replay.cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Envoy cluster that reaches etcd.
    pub cluster: String,
    pub protocol: Protocol,
    /// Prefix of every key proofgate writes in etcd.
    pub key_prefix: String,
    /// How long a request waits for etcd before it is refused (503).
    pub timeout_ms: u32,
}

/// Parses `$.replay`.
pub fn parse(n: Node<'_>) -> Result<ReplayConfig> {
    let r = n.object(Some(&["max_entries", "max_entries_per_subject", "cluster"]))?;
    let max_entries = r
        .int("max_entries", 1, MAX_MAX_ENTRIES)?
        .unwrap_or(DEFAULT_MAX_ENTRIES);
    let max_entries_per_subject = r
        .int("max_entries_per_subject", 1, max_entries)?
        .unwrap_or((max_entries / 4).max(1));
    let cluster = r.child("cluster", parse_cluster)?;
    Ok(ReplayConfig {
        max_entries: usize::try_from(max_entries).unwrap_or(1),
        max_entries_per_subject: usize::try_from(max_entries_per_subject).unwrap_or(1),
        cluster,
    })
}

fn parse_cluster(n: Node<'_>) -> Result<ClusterConfig> {
    let c = n.object(Some(&[
        "backend",
        "cluster",
        "protocol",
        "key_prefix",
        "timeout_ms",
    ]))?;
    c.required("backend", |n| match reader::string(&n)?.as_str() {
        "etcd" => Ok(()),
        _ => n.err("must be \"etcd\""),
    })?;
    let cluster = c.required_string("cluster")?;
    if cluster.is_empty() {
        return c.err("cluster", "must name an Envoy cluster");
    }
    let protocol = c
        .child("protocol", |n| match reader::string(&n)?.as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http" => Ok(Protocol::Http),
            _ => n.err("must be \"grpc\" or \"http\""),
        })?
        .unwrap_or(Protocol::Grpc);
    let key_prefix = c
        .string("key_prefix")?
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string());
    if key_prefix.is_empty() || key_prefix.len() > 256 || key_prefix.chars().any(char::is_control) {
        return c.err(
            "key_prefix",
            "must be 1 to 256 characters without control characters",
        );
    }
    let timeout_ms = c
        .int("timeout_ms", 1, 60_000)?
        .unwrap_or(DEFAULT_CLUSTER_TIMEOUT_MS);
    Ok(ClusterConfig {
        cluster,
        protocol,
        key_prefix,
        timeout_ms: u32::try_from(timeout_ms).unwrap_or(250),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(v: serde_json::Value) -> core::result::Result<ReplayConfig, String> {
        parse(Node::root(&v)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_the_share() {
        assert_eq!(parsed(json!({})), Ok(ReplayConfig::default()));
        let c = parsed(json!({"max_entries": 1000})).unwrap();
        assert_eq!((c.max_entries, c.max_entries_per_subject), (1000, 250));
        let c = parsed(json!({"max_entries": 3, "max_entries_per_subject": 3})).unwrap();
        assert_eq!(c.max_entries_per_subject, 3);
        assert_eq!(
            parsed(json!({"max_entries": 3}))
                .unwrap()
                .max_entries_per_subject,
            1
        );
        let e = parsed(json!({"max_entries": 10, "max_entries_per_subject": 11})).unwrap_err();
        assert!(
            e.contains("$.max_entries_per_subject") && e.contains("from 1 to 10"),
            "{e}"
        );
    }

    #[test]
    fn cluster_is_checked_with_json_paths() {
        let c = parsed(json!({"cluster": {"backend": "etcd", "cluster": "etcd"}})).unwrap();
        assert_eq!(
            c.cluster,
            Some(ClusterConfig {
                cluster: "etcd".into(),
                protocol: Protocol::Grpc,
                key_prefix: DEFAULT_KEY_PREFIX.into(),
                timeout_ms: 250,
            })
        );
        let c = parsed(
            json!({"cluster": {"backend": "etcd", "cluster": "e", "protocol": "http",
            "key_prefix": "p/", "timeout_ms": 1000}}),
        )
        .unwrap()
        .cluster
        .unwrap();
        assert_eq!(
            (c.protocol, c.key_prefix.as_str(), c.timeout_ms),
            (Protocol::Http, "p/", 1000)
        );
        for (bad, path) in [
            (json!({"cluster": "etcd"}), "$.cluster.backend"),
            (
                json!({"backend": "redis", "cluster": "e"}),
                "$.cluster.backend",
            ),
            (json!({"backend": "etcd"}), "$.cluster.cluster"),
            (
                json!({"backend": "etcd", "cluster": ""}),
                "$.cluster.cluster",
            ),
            (
                json!({"backend": "etcd", "cluster": "e", "protocol": "h2"}),
                "$.cluster.protocol",
            ),
            (
                json!({"backend": "etcd", "cluster": "e", "key_prefix": ""}),
                "$.cluster.key_prefix",
            ),
            (
                json!({"backend": "etcd", "cluster": "e", "timeout_ms": 0}),
                "$.cluster.timeout_ms",
            ),
            (
                json!({"backend": "etcd", "cluster": "e", "tls": true}),
                "$.cluster.tls",
            ),
        ] {
            let e = parsed(json!({ "cluster": bad })).unwrap_err();
            assert!(e.contains(path), "{path}: {e}");
        }
    }
}
