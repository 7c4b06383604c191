//! Bearer JWTs of a `jwt_providers` entry (DESIGN.md section 13): every check in the section's
//! order, each failure with its exact [`Reason`]:
//!
//! 1. token found in the provider's `from_headers` (`missing_token`);
//! 2. compact JWS, strict base64url, one strict-JSON object per part, `alg` in `algorithms` and
//!    fitting the key, no `crit` (`malformed_token`);
//! 3. key by `kid` (`unknown_signing_key`);
//! 4. signature (`invalid_token_signature`), skipped on a verified-token cache hit;
//! 5. bundle revocations by jti, subject cutoff and key (`revoked`);
//! 6. `iss` (`issuer_mismatch`);
//! 7. `exp` required, `nbf`/`iat` if present, with skew, lifetime bounded (`token_expired`,
//!    `token_not_yet_valid`);
//! 8. then 403: `audience_mismatch`, `insufficient_scope`, `env_mismatch`.
//!
//! Claims of the wrong type (`exp` not an integer, `iss` not a string, ...) are decided after the
//! signature, as `malformed_token`: the token is signed but not a token proofgate understands.

use crate::algs::Alg;
use crate::b64;
use crate::config::{JwtProvider, Revocation};
use crate::json;
use crate::jwk::KeySet;
use crate::reason::Reason;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Longest token considered; anything longer is `malformed_token` without being decoded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token that passed every check of its provider.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub iss: String,
    /// `sub`, when it is a clean string.
    pub sub: Option<String>,
    pub jti: Option<String>,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    pub exp: i64,
    pub kid: Option<String>,
    pub alg: Alg,
    /// The verified claims, for `claim_to_headers` and DPoP's `cnf.jkt`.
    pub claims: Map<String, Value>,
    /// True if the signature check was skipped on a cache hit.
    pub cached: bool,
}

impl VerifiedToken {
    /// The value `claim_to_headers` sends for `claim`: a clean string, or an array of clean
    /// strings joined by spaces; anything else (numbers, objects, control characters) is not sent.
    pub fn header_value(&self, claim: &str) -> Option<String> {
        match self.claims.get(claim)? {
            Value::String(s) => clean(s).map(str::to_string),
            Value::Array(items) => {
                let parts: Option<Vec<&str>> =
                    items.iter().map(|v| v.as_str().and_then(clean)).collect();
                let parts = parts?;
                (!parts.is_empty()).then(|| parts.join(" "))
            }
            _ => None,
        }
    }
}

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'p, 'h> {
    pub token: &'h str,
    /// The header it came from (lowercase).
    pub header: &'p str,
}

/// Finds the provider's token: the first `from_headers` entry present. A header present more than
/// once, or present without its `value_prefix`, or holding more than [`MAX_TOKEN_BYTES`], is
/// `malformed_token`; no header at all is `missing_token`.
pub fn find_token<'p, 'h>(
    provider: &'p JwtProvider,
    header: &dyn Fn(&str) -> Vec<&'h [u8]>,
) -> Result<Found<'p, 'h>, Reason> {
    for from in &provider.from_headers {
        let values = header(&from.name);
        let value = match values.as_slice() {
            [] => continue,
            [one] => *one,
            _ => return Err(Reason::MalformedToken),
        };
        if value.len() > MAX_TOKEN_BYTES + from.value_prefix.len() {
            return Err(Reason::MalformedToken);
        }
        let text = std::str::from_utf8(value).map_err(|_| Reason::MalformedToken)?;
        let token = text
            .strip_prefix(from.value_prefix.as_str())
            .ok_or(Reason::MalformedToken)?;
        return Ok(Found {
            token,
            header: &from.name,
        });
    }
    Err(Reason::MissingToken)
}

/// The unverified `iss` of a compact JWS, to choose an `any` alternative (section 11) and
/// nothing else. `None` if the token is not a readable JWS with a string `iss`.
pub fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_, payload) = (parts.next()?, parts.next()?);
    let claims = json::parse_object(&b64::decode(payload)?, json::TOKEN).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// What a rejected token let us learn, for audit events (only values from a verified signature).
#[derive(Debug, Clone, Default)]
pub struct Partial {
    pub verified: Option<VerifiedToken>,
}

/// What the verifier needs besides the token.
pub struct Context<'a> {
    pub provider: &'a JwtProvider,
    pub keys: &'a KeySet,
    /// Scopes the matched rule adds to the provider's `required_scopes`.
    pub extra_scopes: &'a [String],
    pub revocations: &'a [Revocation],
    pub now: i64,
}

/// Verifies `token` for `ctx.provider`. On a signature the cache has seen for this key set the
/// signature check is skipped; every other check runs on every request.
pub fn verify(
    token: &str,
    ctx: &Context<'_>,
    cache: Option<&mut TokenCache>,
) -> Result<VerifiedToken, Reason> {
    let p = ctx.provider;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Reason::MalformedToken);
    }
    // 2. Framing and header.
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reason::MalformedToken);
    };
    let header = segment_object(h64).ok_or(Reason::MalformedToken)?;
    let claims = segment_object(p64).ok_or(Reason::MalformedToken)?;
    if s64.is_empty() {
        return Err(Reason::MalformedToken);
    }
    let signature = b64::decode(s64).ok_or(Reason::MalformedToken)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .filter(|a| p.algorithms.contains(a))
        .ok_or(Reason::MalformedToken)?;
    if header.contains_key("crit") {
        return Err(Reason::MalformedToken);
    }
    if header.get("typ").is_some_and(|t| {
        !t.as_str().is_some_and(|t| {
            ["JWT", "at+jwt", "application/at+jwt"]
                .iter()
                .any(|ok| t.eq_ignore_ascii_case(ok))
        })
    }) {
        return Err(Reason::MalformedToken);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() => Some(k.as_str()),
        Some(_) => return Err(Reason::MalformedToken),
    };
    // 2-3. A key with this kid exists but is of another type: the alg does not fit the key
    // (this is where HS256 over an RSA public key ends); no key with this kid: unknown.
    let Some(jwk) = ctx.keys.find(kid, alg) else {
        let other_type = kid.is_some()
            && ctx
                .keys
                .keys
                .iter()
                .any(|k| k.kid.as_deref() == kid && k.key.alg() != alg);
        return Err(if other_type {
            Reason::MalformedToken
        } else {
            Reason::UnknownSigningKey
        });
    };

    // 4. Signature, unless this exact token verified under this key set before.
    let signing_input = &token.as_bytes()[..h64.len() + 1 + p64.len()];
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let cached = cache.as_ref().is_some_and(|c| c.contains(&digest, ctx.now));
    if !cached && !jwk.key.verify(alg, signing_input, &signature) {
        return Err(Reason::InvalidTokenSignature);
    }

    // 5. Revocations, on the raw claims (an unreadable iat cannot prove issuance after a cutoff).
    let iss = claims.get("iss").and_then(Value::as_str);
    let sub = claims.get("sub").and_then(Value::as_str);
    let jti = claims.get("jti").and_then(Value::as_str);
    let iat = claims.get("iat").and_then(Value::as_i64);
    let revoked = ctx.revocations.iter().any(|r| match r {
        Revocation::Jti(j) => jti == Some(j.as_str()),
        Revocation::SubjectBefore { sub: s, not_before } => {
            sub == Some(s.as_str()) && iat.is_none_or(|t| t < *not_before)
        }
        Revocation::Key { issuer, kid: k } => {
            iss == Some(issuer.as_str()) && kid == Some(k.as_str())
        }
    });
    if revoked {
        return Err(Reason::Revoked);
    }

    // 6. Issuer.
    if iss != Some(p.issuer.as_str()) {
        return Err(Reason::IssuerMismatch);
    }

    // 7. Time.
    let exp = time_claim(&claims, "exp")?.ok_or(Reason::MalformedToken)?;
    let nbf = time_claim(&claims, "nbf")?;
    let iat = time_claim(&claims, "iat")?;
    let skew = p.clock_skew_seconds;
    let now = ctx.now;
    if now >= exp.saturating_add(skew) {
        return Err(Reason::TokenExpired);
    }
    if nbf.is_some_and(|t| t > now.saturating_add(skew))
        || iat.is_some_and(|t| t > now.saturating_add(skew))
    {
        return Err(Reason::TokenNotYetValid);
    }
    // A lifetime beyond the bound counts as expired: measured from iat when present, else from
    // now (so a token without iat cannot live longer than the bound either).
    let start = iat.unwrap_or(now);
    if exp
        .checked_sub(start)
        .is_none_or(|life| life > p.max_lifetime_seconds)
    {
        return Err(Reason::TokenExpired);
    }

    // 8. 403s.
    if !p.audiences.is_empty() {
        let holds = match claims.get("aud") {
            Some(Value::String(a)) => p.audiences.contains(a),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .any(|a| p.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !holds {
            return Err(Reason::AudienceMismatch);
        }
    }
    let scopes: Vec<String> = match claims.get("scope") {
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let has_all = p
        .required_scopes
        .iter()
        .chain(ctx.extra_scopes)
        .all(|needed| scopes.iter().any(|s| s == needed));
    if !has_all {
        return Err(Reason::InsufficientScope);
    }
    if let Some(env) = &p.env {
        if claims.get("env").and_then(Value::as_str) != Some(env.as_str()) {
            return Err(Reason::EnvMismatch);
        }
    }

    if let Some(cache) = cache {
        if !cached {
            cache.insert(digest, exp.saturating_add(skew), now);
        }
    }
    Ok(VerifiedToken {
        iss: p.issuer.clone(),
        sub: sub.and_then(clean).map(str::to_string),
        jti: jti.and_then(clean).map(str::to_string),
        scopes,
        exp,
        kid: kid.map(str::to_string),
        alg,
        claims,
        cached,
    })
}

/// The scopes a request needed and did not have, for `WWW-Authenticate: ... scope="..."`.
pub fn required_scopes(provider: &JwtProvider, extra: &[String]) -> String {
    let mut all: Vec<&str> = provider
        .required_scopes
        .iter()
        .chain(extra)
        .map(String::as_str)
        .collect();
    all.dedup();
    all.join(" ")
}

fn segment_object(segment: &str) -> Option<Map<String, Value>> {
    if segment.is_empty() {
        return None;
    }
    json::parse_object(&b64::decode(segment)?, json::TOKEN).ok()
}

/// An optional NumericDate claim: absent is `None`; present, it must be an integer (a float, a
/// string or a number beyond `i64` is `malformed_token`).
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(Reason::MalformedToken),
    }
}

/// A claim string that can become a header value or an audit field.
fn clean(s: &str) -> Option<&str> {
    let ok = !s.is_empty() && s.len() <= 1024 && !s.chars().any(char::is_control);
    ok.then_some(s)
}

/// The verified-token cache of one provider in one VM (section 13): SHA-256 of the token →
/// when the entry leaves (`exp` plus skew). A hit skips only the signature. It holds only tokens
/// whose signature verified, so a caller cannot fill it without valid tokens, and it is cleared
/// whenever the provider's key set changes (a new generation).
#[derive(Debug, Clone, Default)]
pub struct TokenCache {
    entries: BTreeMap<[u8; 32], i64>,
    max_entries: usize,
    generation: u64,
}

impl TokenCache {
    pub fn new(max_entries: usize) -> Self {
        TokenCache {
            entries: BTreeMap::new(),
            max_entries,
            generation: 0,
        }
    }

    /// Forgets everything when the key set this cache vouched for is replaced.
    pub fn sync_generation(&mut self, generation: u64) {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn contains(&self, digest: &[u8; 32], now: i64) -> bool {
        self.entries.get(digest).is_some_and(|until| now < *until)
    }

    fn insert(&mut self, digest: [u8; 32], until: i64, now: i64) {
        if self.max_entries == 0 {
            return;
        }
        if self.entries.len() >= self.max_entries {
            self.entries.retain(|_, t| now < *t);
        }
        if self.entries.len() >= self.max_entries {
            // Still full of live entries: the one leaving soonest makes room.
            if let Some(soonest) = self
                .entries
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| *k)
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(digest, until);
    }
}

#[cfg(test)]
mod tests;
