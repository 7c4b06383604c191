//! The `jwks` object (DESIGN.md section 12): where a trust-material issuer or a JWT provider
//! fetches its keys, through which Envoy cluster, and the timing and size bounds of the cache.
//! Every value is bounded at load so that no configuration can make proofgate fetch in a loop,
//! wait forever, or hold an unbounded document.

use super::reader::{Node, Result};

/// A validated `jwks` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksConfig {
    /// The Envoy cluster the callout goes through.
    pub cluster: String,
    /// The full URI, as configured (or derived from the issuer).
    pub uri: String,
    /// `:authority` of the callout (host and optional port of `uri`).
    pub authority: String,
    /// `:path` of the callout (path and query of `uri`).
    pub path: String,
    pub cache_seconds: i64,
    pub timeout_ms: i64,
    pub min_refetch_seconds: i64,
    pub max_stale_seconds: i64,
    pub max_bytes: usize,
}

pub const DEFAULT_CACHE_SECONDS: i64 = 600;
pub const DEFAULT_TIMEOUT_MS: i64 = 2000;
pub const DEFAULT_MIN_REFETCH_SECONDS: i64 = 30;
pub const DEFAULT_MAX_STALE_SECONDS: i64 = 86_400;
pub const DEFAULT_MAX_BYTES: i64 = 262_144;

/// Where a JWKS is served by default: the issuer's well-known path.
pub const WELL_KNOWN_PATH: &str = "/.well-known/jwks.json";

const KEYS: [&str; 7] = [
    "cluster",
    "uri",
    "cache_seconds",
    "timeout_ms",
    "min_refetch_seconds",
    "max_stale_seconds",
    "max_bytes",
];

/// Parses a `jwks` object; `issuer` gives the default `uri`.
pub fn parse(n: &Node<'_>, issuer: &str) -> Result<JwksConfig> {
    let obj = n.object(Some(&KEYS))?;
    let cluster = obj.required_string("cluster")?;
    let uri = match obj.string("uri")? {
        Some(uri) => uri,
        None => format!("{}{WELL_KNOWN_PATH}", issuer.trim_end_matches('/')),
    };
    let Some((authority, path)) = split_uri(&uri) else {
        let what = if obj.raw("uri").is_some() {
            "must be an absolute http(s) URI with a host and no userinfo, fragment or spaces"
        } else {
            "is required: the issuer is not an http(s) URL to derive it from"
        };
        return obj.err("uri", what);
    };
    // Bounds: a refresh at most every second and at least once a day; a callout that waits at
    // most a minute; stale keys served at most 30 days; a document that fits shared data.
    let cache_seconds = obj
        .int("cache_seconds", 1, 86_400)?
        .unwrap_or(DEFAULT_CACHE_SECONDS);
    let timeout_ms = obj
        .int("timeout_ms", 100, 60_000)?
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    let min_refetch_seconds = obj
        .int("min_refetch_seconds", 1, 86_400)?
        .unwrap_or(DEFAULT_MIN_REFETCH_SECONDS);
    let max_stale_seconds = obj
        .int("max_stale_seconds", 0, 30 * 86_400)?
        .unwrap_or(DEFAULT_MAX_STALE_SECONDS);
    let max_bytes = obj
        .int("max_bytes", 256, 4 * 1024 * 1024)?
        .unwrap_or(DEFAULT_MAX_BYTES);
    if min_refetch_seconds > cache_seconds {
        return obj.err(
            "min_refetch_seconds",
            format!("must not exceed cache_seconds ({cache_seconds})"),
        );
    }
    Ok(JwksConfig {
        cluster,
        uri,
        authority,
        path,
        cache_seconds,
        timeout_ms,
        min_refetch_seconds,
        max_stale_seconds,
        max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
    })
}

/// `(authority, path)` of an absolute `http`/`https` URI; `None` for anything else.
fn split_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))?;
    if uri.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') || !uri.is_ascii() {
        return None;
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || authority.starts_with(':') {
        return None;
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Some((authority.to_string(), path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn parse_value(v: serde_json::Value, issuer: &str) -> Result<JwksConfig> {
        parse(&Node::root(&v), issuer)
    }

    #[test]
    fn defaults_and_derived_uri() {
        let c = parse_value(json!({"cluster": "auth"}), "https://auth.internal/").unwrap();
        assert_eq!(c.uri, "https://auth.internal/.well-known/jwks.json");
        assert_eq!(c.authority, "auth.internal");
        assert_eq!(c.path, "/.well-known/jwks.json");
        assert_eq!(
            (
                c.cache_seconds,
                c.timeout_ms,
                c.min_refetch_seconds,
                c.max_stale_seconds,
                c.max_bytes
            ),
            (600, 2000, 30, 86_400, 262_144)
        );
    }

    #[test]
    fn explicit_uri_gives_authority_and_path() {
        let c = parse_value(
            json!({"cluster": "a", "uri": "http://127.0.0.1:8080/keys?v=2"}),
            "iss",
        )
        .unwrap();
        assert_eq!(c.authority, "127.0.0.1:8080");
        assert_eq!(c.path, "/keys?v=2");
        let c = parse_value(json!({"cluster": "a", "uri": "https://h"}), "iss").unwrap();
        assert_eq!((c.authority.as_str(), c.path.as_str()), ("h", "/"));
    }

    #[test]
    fn bad_values_name_their_path() {
        let cases = [
            (json!({}), "$.cluster", "is required"),
            (json!({"cluster": ""}), "$.cluster", "must not be empty"),
            (
                json!({"cluster": "a", "uri": "ftp://h/k"}),
                "$.uri",
                "absolute http(s)",
            ),
            (
                json!({"cluster": "a", "uri": "https://u@h/k"}),
                "$.uri",
                "userinfo",
            ),
            (
                json!({"cluster": "a", "uri": "https://h/k#f"}),
                "$.uri",
                "fragment",
            ),
            (
                json!({"cluster": "a", "uri": "https:///k"}),
                "$.uri",
                "host",
            ),
            (
                json!({"cluster": "a", "cache_seconds": 0}),
                "$.cache_seconds",
                "from 1 to 86400",
            ),
            (
                json!({"cluster": "a", "cache_seconds": 1e12}),
                "$.cache_seconds",
                "integer",
            ),
            (
                json!({"cluster": "a", "timeout_ms": 0}),
                "$.timeout_ms",
                "from 100",
            ),
            (
                json!({"cluster": "a", "timeout_ms": 3_600_000}),
                "$.timeout_ms",
                "to 60000",
            ),
            (
                json!({"cluster": "a", "min_refetch_seconds": 0}),
                "$.min_refetch_seconds",
                "from 1",
            ),
            (
                json!({"cluster": "a", "cache_seconds": 10, "min_refetch_seconds": 11}),
                "$.min_refetch_seconds",
                "must not exceed cache_seconds",
            ),
            (
                json!({"cluster": "a", "max_stale_seconds": -1}),
                "$.max_stale_seconds",
                "from 0",
            ),
            (
                json!({"cluster": "a", "max_bytes": 10}),
                "$.max_bytes",
                "from 256",
            ),
            (
                json!({"cluster": "a", "max_bytes": 1_000_000_000}),
                "$.max_bytes",
                "to 4194304",
            ),
            (json!({"cluster": "a", "ttl": 5}), "$.ttl", "unknown key"),
            (json!("auth"), "$", "must be an object"),
        ];
        for (value, path, says) in cases {
            let e = parse_value(value.clone(), "https://i").unwrap_err();
            assert_eq!(e.path, path, "{value}: {}", e.message);
            assert!(e.message.contains(says), "{value}: {:?}", e.message);
        }
    }

    #[test]
    fn an_issuer_that_is_not_a_url_needs_an_explicit_uri() {
        let e = parse_value(json!({"cluster": "a"}), "spiffe://td").unwrap_err();
        assert_eq!(e.path, "$.uri");
        assert!(e.message.contains("is required"), "{}", e.message);
    }
}
