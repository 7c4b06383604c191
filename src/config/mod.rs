//! Plugin configuration (DESIGN.md section 2): parsed once at `on_configure`, validated
//! completely, and refused with a JSON-path message on the first problem. proofgate's own objects
//! reject unknown keys; the embedded `policy_bundle` follows TrustPlane and tolerates them.

mod bundle;
pub mod dpop;
pub mod jwks;
mod providers;
mod reader;
pub mod replay;
mod rules;
mod trust;

pub use bundle::{Bundle, Freshness, Revocation, Route, Source, SubjectRule};

/// Policy types of the bundle that only the policy module needs by name.
pub mod bundle_types {
    pub use super::bundle::{decimal, ContextPolicy, ProvenancePolicy};
}
pub use providers::{ClaimToHeader, FromHeader, JwtProvider, ProviderKeys};
pub use reader::ConfigError;
pub use trust::{TrustedIssuer, TrustedKey};

use crate::signer::SignerClass;
use reader::{Node, Result};

/// How the route of a request is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Method + path against the bundle's `path_template`s.
    Request,
    /// One fixed route id for every request this filter instance sees.
    RouteId(String),
}

/// A request that needs no credentials (`allow_unauthenticated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExemptRule {
    /// `None` matches every method.
    pub method: Option<String>,
    pub path_prefix: String,
}

impl ExemptRule {
    /// Segment-aware prefix match, failing closed on dot segments and encoded separators
    /// anywhere in the path (see `path_match`).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && crate::path_match::prefix_matches(&self.path_prefix, path)
    }
}

/// The validated plugin configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub audience: Option<String>,
    pub trust_domain: Option<String>,
    pub issuers: Vec<TrustedIssuer>,
    pub bundle: Option<Bundle>,
    pub routing: Routing,
    pub required_key_binding: SignerClass,
    /// Lowercase, deduplicated, sorted.
    pub signed_headers: Vec<String>,
    pub transcript_scheme: Option<String>,
    pub clock_skew_seconds: i64,
    pub max_passport_lifetime_seconds: i64,
    pub max_body_bytes: usize,
    pub replay: replay::ReplayConfig,
    pub allow_unauthenticated: Vec<ExemptRule>,
    pub forward_credentials: bool,
    pub audit_log_allow: bool,
    /// How long a `realtime` bundle counts as current after it was loaded.
    pub realtime_window_seconds: i64,
    /// Memory for trust-material keys' precomputed tables (the base point's is extra).
    pub key_tables_max_bytes: usize,
    /// Bearer-JWT providers (DESIGN.md section 13).
    pub jwt_providers: Vec<JwtProvider>,
    /// Section 11; `None`: every request needs a passport (except `allow_unauthenticated`).
    pub rules: Option<Vec<crate::rules::Rule>>,
    /// Requests a VM holds waiting for their bodies at most (issue 8).
    pub max_parked_requests: usize,
    /// A body not complete this long after its headers is `body_timeout` (DESIGN.md section 16).
    pub body_timeout_ms: u64,
}

pub const DEFAULT_SIGNED_HEADERS: [&str; 2] = ["content-type", "x-trustplane-nonce"];
pub const DEFAULT_CLOCK_SKEW_SECONDS: i64 = 30;
pub const DEFAULT_MAX_PASSPORT_LIFETIME_SECONDS: i64 = 900;
pub const DEFAULT_MAX_BODY_BYTES: i64 = 1_048_576;
pub const DEFAULT_REPLAY_MAX_ENTRIES: i64 = replay::DEFAULT_MAX_ENTRIES;
pub const DEFAULT_REALTIME_WINDOW_SECONDS: i64 = 5;
/// Eight keys a radix-256 table (480 KiB) and four more a radix-16 one (60 KiB); with fewer keys,
/// some of those radix-256 tables grow to radix 1024 (1,560 KiB): both of two keys', two of four.
pub const DEFAULT_KEY_TABLES_MAX_BYTES: i64 = 4 * 1024 * 1024;

pub const DEFAULT_MAX_PARKED_REQUESTS: i64 = 1024;
pub const DEFAULT_BODY_TIMEOUT_MS: i64 = 10_000;

const TOP_LEVEL_KEYS: [&str; 22] = [
    "jwt_providers",
    "rules",
    "audience",
    "trust_domain",
    "trust_material",
    "policy_bundle",
    "routing",
    "required_key_binding",
    "signed_headers",
    "transcript_scheme",
    "clock_skew_seconds",
    "max_passport_lifetime_seconds",
    "max_body_bytes",
    "replay",
    "allow_unauthenticated",
    "forward_credentials",
    "audit",
    "realtime_window_seconds",
    "key_tables_max_bytes",
    "max_parked_requests",
    "body_timeout_ms",
    // Free text for operators; never interpreted.
    "comment",
];

impl Config {
    /// Parses and validates the plugin configuration bytes.
    pub fn parse(bytes: &[u8]) -> core::result::Result<Config, ConfigError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ConfigError {
            path: "$".into(),
            message: format!("not valid JSON: {e}"),
        })?;
        parse_root(Node::root(&value))
    }

    /// A trust-material key with these bytes that carries a precomputed table, so a passport
    /// whose `cnf` key is its issuer's own key (the software-caller shape) reuses the table.
    pub fn precomputed_key(&self, bytes: &[u8; 32]) -> Option<&crate::crypto::VerifyingKey> {
        self.issuers
            .iter()
            .flat_map(|i| i.keys.iter())
            .map(|k| &k.key)
            .find(|k| k.has_table() && k.as_bytes() == bytes)
    }

    /// The trusted issuer entry named `iss`.
    pub fn issuer(&self, iss: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }
}

/// One `key_tables_max_bytes` budget for every Ed25519 key known at load, in configuration order:
/// trust-material keys, then providers' inline keys (`crypto::TableBudget` says who gets what).
fn assign_key_tables(issuers: &mut [TrustedIssuer], providers: &mut [JwtProvider], bytes: usize) {
    fn inline(p: &mut JwtProvider) -> Option<&mut crate::jwk::KeySet> {
        match &mut p.keys {
            ProviderKeys::Inline(set) => Some(set),
            ProviderKeys::Remote(_) => None,
        }
    }
    let keys = issuers
        .iter_mut()
        .flat_map(|i| i.keys.iter_mut().map(|k| &mut k.key))
        .chain(
            providers
                .iter_mut()
                .filter_map(inline)
                .flat_map(crate::jwk::KeySet::ed25519_keys_mut),
        );
    crate::crypto::give_tables(bytes, keys);
    // Keys that get a table after load (a fetched JWKS's Ed25519 keys when a VM adopts them, a
    // DPoP client's key on its second proof) need the base point's table too: built now, once
    // per VM (~20 ms in V8), rather than inside a callout's or a request's callback.
    let eddsa_later =
        |algorithms: &[crate::algs::Alg]| algorithms.contains(&crate::algs::Alg::EdDSA);
    if issuers.iter().any(|i| i.jwks.is_some())
        || providers.iter().any(|p| {
            (matches!(p.keys, ProviderKeys::Remote(_)) && eddsa_later(&p.algorithms))
                || (p.dpop.mode != crate::dpop::Mode::Disabled && eddsa_later(&p.dpop.algorithms))
        })
    {
        crate::crypto::prepare();
    }
}

fn parse_root(root: Node<'_>) -> Result<Config> {
    let obj = root.object(Some(&TOP_LEVEL_KEYS))?;
    let audience = obj.string("audience")?;
    let trust_domain = obj.string("trust_domain")?;
    let key_tables_max_bytes = obj
        .int("key_tables_max_bytes", 0, 256 * 1024 * 1024)?
        .unwrap_or(DEFAULT_KEY_TABLES_MAX_BYTES);
    let key_tables_max_bytes = usize::try_from(key_tables_max_bytes).unwrap_or(0);
    let mut issuers = obj
        .child("trust_material", |n| trust::parse(&n))?
        .unwrap_or_default();
    let mut jwt_providers = providers::parse_all(&obj)?;
    assign_key_tables(&mut issuers, &mut jwt_providers, key_tables_max_bytes);
    let rules = rules::parse(&obj, &jwt_providers, &issuers)?;
    // Section 11: trust material, a bundle (request mode) and an audience are needed only when
    // some request can need a passport.
    let needs_passport = rules
        .as_ref()
        .is_none_or(|r| r.iter().any(|r| r.requires.needs_passport()));
    if needs_passport && obj.raw("trust_material").is_none() {
        return obj.err("trust_material", "is required");
    }
    let bundle = obj.child("policy_bundle", |n| bundle::parse(&n))?;
    let routing = obj
        .child("routing", |n| {
            let r = n.object(Some(&["mode", "route_id"]))?;
            match r.required_string("mode")?.as_str() {
                "request" => match r.raw("route_id") {
                    Some(_) => r.err("route_id", "only allowed with mode \"route-id\""),
                    None => Ok(Routing::Request),
                },
                "route-id" => Ok(Routing::RouteId(r.required_string("route_id")?)),
                other => r.err(
                    "mode",
                    format!("must be \"request\" or \"route-id\", not {other:?}"),
                ),
            }
        })?
        .unwrap_or(Routing::Request);
    let required_key_binding = obj
        .child("required_key_binding", |n| signer_class(&n))?
        .unwrap_or(SignerClass::Software);
    let signed_headers = obj
        .array("signed_headers", |n| {
            let name = reader::string(&n)?.to_ascii_lowercase();
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return n.err("must be an HTTP header name");
            }
            Ok(name)
        })?
        .unwrap_or_else(|| {
            DEFAULT_SIGNED_HEADERS
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
    let mut signed_headers = signed_headers;
    signed_headers.sort();
    signed_headers.dedup();
    let transcript_scheme = obj.child("transcript_scheme", |n| {
        match reader::string(&n)?.as_str() {
            s @ ("http" | "https") => Ok(s.to_string()),
            _ => n.err("must be \"http\" or \"https\""),
        }
    })?;
    let clock_skew_seconds = obj
        .int("clock_skew_seconds", 0, 3600)?
        .unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS);
    let max_passport_lifetime_seconds = obj
        .int("max_passport_lifetime_seconds", 1, 86_400)?
        .unwrap_or(DEFAULT_MAX_PASSPORT_LIFETIME_SECONDS);
    let max_body_bytes = obj
        .int("max_body_bytes", 0, 64 * 1024 * 1024)?
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    let replay = obj.child("replay", replay::parse)?.unwrap_or_default();
    let allow_unauthenticated = obj
        .array("allow_unauthenticated", |n| {
            let r = n.object(Some(&["method", "path_prefix"]))?;
            let method = r.string("method")?;
            let path_prefix = r.required_string("path_prefix")?;
            if !path_prefix.starts_with('/') {
                return r.err("path_prefix", "must start with '/'");
            }
            Ok(ExemptRule {
                method,
                path_prefix,
            })
        })?
        .unwrap_or_default();
    let forward_credentials = obj.bool("forward_credentials")?.unwrap_or(false);
    let audit_log_allow = obj
        .child("audit", |n| {
            Ok(n.object(Some(&["log_allow"]))?
                .bool("log_allow")?
                .unwrap_or(true))
        })?
        .unwrap_or(true);
    let realtime_window_seconds = obj
        .int("realtime_window_seconds", 1, 3600)?
        .unwrap_or(DEFAULT_REALTIME_WINDOW_SECONDS);
    let max_parked_requests = obj
        .int("max_parked_requests", 1, 65_536)?
        .unwrap_or(DEFAULT_MAX_PARKED_REQUESTS);
    let body_timeout_ms = obj
        .int("body_timeout_ms", 100, 600_000)?
        .unwrap_or(DEFAULT_BODY_TIMEOUT_MS);

    if let Some(td) = &trust_domain {
        if let Some((i, iss)) = issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.trust_domain.as_ref().is_some_and(|t| t != td))
        {
            return root.err(format!(
                "trust_material.issuers[{i}].trust_domain {:?} contradicts trust_domain {td:?}: no passport could pass",
                iss.trust_domain.as_deref().unwrap_or_default()
            ));
        }
    }

    match (&routing, &bundle) {
        (Routing::Request, None) if needs_passport => {
            return obj.err("policy_bundle", "is required with routing mode \"request\"");
        }
        (Routing::RouteId(id), Some(b)) if b.route(id).is_none() => {
            return obj.err(
                "routing",
                format!("route_id {id:?} is not a route of policy_bundle"),
            );
        }
        _ => {}
    }
    // Every reachable route needs an expected audience.
    if audience.is_none() && needs_passport {
        let routes_without = |b: &Bundle| {
            b.routes
                .iter()
                .find(|r| r.audience.is_none())
                .map(|r| r.route_id.clone())
        };
        let missing = match (&routing, &bundle) {
            (_, None) => Some("every route".to_string()),
            (Routing::RouteId(id), Some(b)) => b
                .route(id)
                .filter(|r| r.audience.is_none())
                .map(|r| r.route_id.clone()),
            (Routing::Request, Some(b)) => routes_without(b),
        };
        if let Some(what) = missing {
            return obj.err(
                "audience",
                format!("is required: no policy_bundle API gives an audience for {what}"),
            );
        }
    }

    Ok(Config {
        audience,
        trust_domain,
        issuers,
        bundle,
        routing,
        required_key_binding,
        signed_headers,
        transcript_scheme,
        clock_skew_seconds,
        max_passport_lifetime_seconds,
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
        replay,
        allow_unauthenticated,
        forward_credentials,
        audit_log_allow,
        realtime_window_seconds,
        key_tables_max_bytes,
        jwt_providers,
        rules,
        max_parked_requests: usize::try_from(max_parked_requests).unwrap_or(1),
        body_timeout_ms: u64::try_from(body_timeout_ms).unwrap_or(0),
    })
}

/// A signer-class name; unknown names are errors.
fn signer_class(n: &Node<'_>) -> Result<SignerClass> {
    let name = reader::string(n)?;
    match SignerClass::parse(&name) {
        Some(c) => Ok(c),
        None => n.err(format!(
            "unknown signer class {name:?} (known: software, remote_kms, hardware_local, attested_workload)"
        )),
    }
}

#[cfg(test)]
mod tests;
