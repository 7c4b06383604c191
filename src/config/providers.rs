//! `jwt_providers` (DESIGN.md section 13): bearer-JWT issuers, their keys, and what a token of
//! theirs must carry. Every problem is refused at load with its JSON path; inline keys that would
//! be skipped in a fetched JWKS are errors here (an operator's typo must not silently drop a key).

use super::jwks::{self as jwks_config, JwksConfig};
use super::reader::{self, Node, Obj, Result};
use crate::algs::Alg;
use crate::jwk::{self, KeySet, Origin, PublicKey};
use serde_json::Value;

/// One `from_headers` entry: where a token is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromHeader {
    /// Lowercase header name.
    pub name: String,
    /// Text before the token, matched exactly (`"Bearer "` by default for `authorization`).
    pub value_prefix: String,
}

/// One `claim_to_headers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    pub claim: String,
    /// Lowercase header name.
    pub header: String,
}

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum ProviderKeys {
    /// `keys`: parsed at load, never change.
    Inline(KeySet),
    /// `jwks`: fetched through an Envoy cluster (DESIGN.md section 12); the shell's key ring
    /// holds them, the pipeline asks for them through `jwks::RemoteKeys`.
    Remote(JwksConfig),
}

/// A validated JWT provider.
#[derive(Debug, Clone)]
pub struct JwtProvider {
    pub name: String,
    pub issuer: String,
    /// Empty: `aud` is not checked.
    pub audiences: Vec<String>,
    pub keys: ProviderKeys,
    pub algorithms: Vec<Alg>,
    pub from_headers: Vec<FromHeader>,
    pub required_scopes: Vec<String>,
    pub env: Option<String>,
    pub clock_skew_seconds: i64,
    pub max_lifetime_seconds: i64,
    pub claim_to_headers: Vec<ClaimToHeader>,
    pub forward: bool,
    /// Verified-token cache size per VM; 0 disables it.
    pub cache_max_entries: usize,
    /// DPoP (DESIGN.md section 14): `dpop`, `dpop_algorithms`, `dpop_max_age_seconds`,
    /// `dpop_nonce`.
    pub dpop: crate::dpop::Settings,
}

impl JwtProvider {
    /// Every header name that may carry this provider's token.
    pub fn token_headers(&self) -> impl Iterator<Item = &str> {
        self.from_headers.iter().map(|h| h.name.as_str())
    }
}

pub const DEFAULT_ALGORITHMS: [Alg; 3] = [Alg::EdDSA, Alg::ES256, Alg::RS256];
pub const DEFAULT_CLOCK_SKEW_SECONDS: i64 = 30;
pub const DEFAULT_MAX_LIFETIME_SECONDS: i64 = 86_400;
pub const DEFAULT_CACHE_MAX_ENTRIES: i64 = 4096;
pub const DEFAULT_CLAIM_TO_HEADERS: [(&str, &str); 4] = [
    ("sub", "x-auth-client-id"),
    ("name", "x-auth-client-name"),
    ("scope", "x-auth-scopes"),
    ("env", "x-auth-env"),
];

const KEYS: [&str; 18] = [
    "name",
    "issuer",
    "audiences",
    "keys",
    "jwks",
    "algorithms",
    "from_headers",
    "required_scopes",
    "env",
    "clock_skew_seconds",
    "max_lifetime_seconds",
    "claim_to_headers",
    "forward",
    "cache",
    super::dpop::KEYS[0],
    super::dpop::KEYS[1],
    super::dpop::KEYS[2],
    super::dpop::KEYS[3],
];

/// Headers proofgate itself sets or strips: a provider may not write them from claims.
fn reserved_header(name: &str) -> bool {
    name.starts_with("x-trustplane-")
        || name.starts_with(':')
        || matches!(
            name,
            "authorization" | "host" | "content-length" | "transfer-encoding" | "dpop" | "cookie"
        )
}

/// The providers, their inline keys without tables yet (see `trust::parse`).
pub(super) fn parse_all(obj: &Obj<'_>) -> Result<Vec<JwtProvider>> {
    let providers = obj
        .array("jwt_providers", |n| parse_provider(&n))?
        .unwrap_or_default();
    for (i, p) in providers.iter().enumerate() {
        if let Some(j) = providers[..i].iter().position(|o| o.name == p.name) {
            return obj.err(
                &format!("jwt_providers[{i}].name"),
                format!(
                    "duplicate provider name {:?} (also jwt_providers[{j}])",
                    p.name
                ),
            );
        }
    }
    Ok(providers)
}

fn parse_provider(n: &Node<'_>) -> Result<JwtProvider> {
    let obj = n.object(Some(&KEYS))?;
    let name = obj.required_string("name")?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return obj.err("name", "must use only letters, digits, '-', '_' and '.'");
    }
    let issuer = obj.required_string("issuer")?;
    if issuer.chars().any(char::is_control) {
        return obj.err("issuer", "must not contain control characters");
    }
    let audiences = obj
        .array("audiences", |n| reader::string(&n))?
        .unwrap_or_default();
    if obj.raw("audiences").is_some() && audiences.is_empty() {
        return obj.err(
            "audiences",
            "must not be empty (omit it to accept any audience)",
        );
    }
    let algorithms = match obj.array("algorithms", |n| {
        let name = reader::string(&n)?;
        match Alg::parse(&name) {
            Some(a) => Ok(a),
            None => n.err(format!(
                "unknown algorithm {name:?} (known: EdDSA, ES256, RS256, HS256; \"none\" is never accepted)"
            )),
        }
    })? {
        Some(list) if list.is_empty() => return obj.err("algorithms", "must not be empty"),
        Some(list) => list,
        None => DEFAULT_ALGORITHMS.to_vec(),
    };
    for (i, a) in algorithms.iter().enumerate() {
        if algorithms[..i].contains(a) {
            return obj.err(&format!("algorithms[{i}]"), format!("duplicate {a}"));
        }
    }
    let keys = match (obj.raw("keys"), obj.raw("jwks")) {
        (Some(_), Some(_)) => return obj.err("jwks", "give either keys or jwks, not both"),
        (None, None) => return obj.err("keys", "is required (or jwks)"),
        (None, Some(_)) => {
            // A fetched JWKS never supplies oct (HMAC) keys (section 12): HS256 would be a
            // dead algorithm, or worse, an invitation to try a public key as a secret.
            if let Some(i) = algorithms.iter().position(|a| *a == Alg::HS256) {
                return obj.err(
                    &format!("algorithms[{i}]"),
                    "HS256 is not allowed with jwks: oct (HMAC) keys are accepted only inline in keys",
                );
            }
            match obj.child("jwks", |n| jwks_config::parse(&n, &issuer))? {
                Some(c) => ProviderKeys::Remote(c),
                None => return obj.err("jwks", "must be an object"),
            }
        }
        (Some(_), None) => ProviderKeys::Inline(inline_keys(&obj, &algorithms)?),
    };
    let from_headers = obj
        .array("from_headers", |n| {
            let h = n.object(Some(&["name", "value_prefix"]))?;
            let name = header_name(&h, "name")?;
            let value_prefix = match h.raw("value_prefix") {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return h.err("value_prefix", "must be a string"),
            };
            Ok(FromHeader { name, value_prefix })
        })?
        .unwrap_or_else(|| {
            vec![FromHeader {
                name: "authorization".into(),
                value_prefix: "Bearer ".into(),
            }]
        });
    if from_headers.is_empty() {
        return obj.err("from_headers", "must not be empty");
    }
    let required_scopes = obj
        .array("required_scopes", |n| scope(&n))?
        .unwrap_or_default();
    let env = obj.string("env")?;
    let clock_skew_seconds = obj
        .int("clock_skew_seconds", 0, 3600)?
        .unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS);
    let max_lifetime_seconds = obj
        .int("max_lifetime_seconds", 1, 30 * 86_400)?
        .unwrap_or(DEFAULT_MAX_LIFETIME_SECONDS);
    let claim_to_headers = obj
        .array("claim_to_headers", |n| {
            let c = n.object(Some(&["claim", "header"]))?;
            let claim = c.required_string("claim")?;
            let header = header_name(&c, "header")?;
            if reserved_header(&header) {
                return c.err(
                    "header",
                    format!("{header:?} is set or removed by proofgate itself"),
                );
            }
            Ok(ClaimToHeader { claim, header })
        })?
        .unwrap_or_else(|| {
            DEFAULT_CLAIM_TO_HEADERS
                .iter()
                .map(|(claim, header)| ClaimToHeader {
                    claim: claim.to_string(),
                    header: header.to_string(),
                })
                .collect()
        });
    let forward = obj.bool("forward")?.unwrap_or(false);
    let cache_max_entries = obj
        .child("cache", |n| {
            let c = n.object(Some(&["max_entries"]))?;
            Ok(c.int("max_entries", 0, 65_536)?
                .unwrap_or(DEFAULT_CACHE_MAX_ENTRIES))
        })?
        .unwrap_or(DEFAULT_CACHE_MAX_ENTRIES);
    let dpop = super::dpop::parse(&obj)?;
    if dpop.mode != crate::dpop::Mode::Disabled
        && !from_headers.iter().any(|h| h.name == "authorization")
    {
        return obj.err(
            "from_headers",
            "must include authorization when dpop is on (DPoP tokens come as \"Authorization: DPoP <token>\")",
        );
    }
    Ok(JwtProvider {
        name,
        issuer,
        audiences,
        keys,
        algorithms,
        from_headers,
        required_scopes,
        env,
        clock_skew_seconds,
        max_lifetime_seconds,
        claim_to_headers,
        forward,
        cache_max_entries: usize::try_from(cache_max_entries).unwrap_or(0),
        dpop,
    })
}

/// Inline keys: every entry must be usable (no silent skip), and each must fit an algorithm the
/// provider accepts.
fn inline_keys(obj: &Obj<'_>, algorithms: &[Alg]) -> Result<KeySet> {
    let Some(Value::Array(entries)) = obj.raw("keys") else {
        return obj.err("keys", "must be an array of JWKs");
    };
    if entries.is_empty() {
        return obj.err("keys", "must list at least one key");
    }
    let set = match jwk::parse_keys(entries, Origin::Inline) {
        Ok(set) => set,
        Err(e) => return obj.err("keys", e.to_string()),
    };
    if let Some(s) = set.skipped.first() {
        return obj.err(&format!("keys[{}]", s.index), s.why.describe());
    }
    for (i, k) in set.keys.iter().enumerate() {
        let alg = k.key.alg();
        if !algorithms.contains(&alg) {
            let why = if matches!(k.key, PublicKey::Oct(_)) {
                "is an oct (HMAC) key: add \"HS256\" to algorithms, or remove it".to_string()
            } else {
                format!("fits only {alg}, which algorithms does not list")
            };
            return obj.err(&format!("keys[{i}]"), why);
        }
        if let Some(kid) = &k.kid {
            if set.keys[..i]
                .iter()
                .any(|o| o.kid.as_ref() == Some(kid) && o.key.alg() == alg)
            {
                return obj.err(&format!("keys[{i}].kid"), format!("duplicate kid {kid:?}"));
            }
        }
    }
    if algorithms.contains(&Alg::HS256) && !set.keys.iter().any(|k| k.key.alg() == Alg::HS256) {
        return obj.err("algorithms", "HS256 needs an inline oct key in keys");
    }
    Ok(set)
}

fn header_name(obj: &Obj<'_>, key: &str) -> Result<String> {
    let name = obj.required_string(key)?.to_ascii_lowercase();
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return obj.err(key, "must be an HTTP header name");
    }
    Ok(name)
}

/// One scope name (`required_scopes`, a rule's `scopes`): a scope is one word of the token's
/// space-separated `scope` claim, so whitespace in it could never match.
pub(super) fn scope(n: &Node<'_>) -> Result<String> {
    let s = reader::string(n)?;
    if s.contains(char::is_whitespace) {
        return n.err("a scope must not contain whitespace");
    }
    Ok(s)
}
