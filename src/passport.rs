//! passport-v1 (DESIGN.md section 3): parse the compact JWS from `Authorization: Bearer`, find
//! the trust-material key, verify the Ed25519 signature, then validate claims and time. Each step
//! has its own [`Reason`]; nothing after a failed step runs.

use crate::b64;
use crate::config::Config;
use crate::crypto::{self, Decided, VerifyingKey};
use crate::json;
use crate::jwks::{KeyLookup, NoRemoteKeys, RemoteKeys};
use crate::reason::Reason;
use crate::signer::SignerClass;
use serde_json::{Map, Value};

/// Longest `Authorization` value considered; anything longer is malformed, not parsed.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A passport whose signature verified and whose claims are valid at `now`.
#[derive(Debug, Clone)]
pub struct Passport {
    pub kid: String,
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub trust_domain: String,
    pub cnf_kid: String,
    pub key_binding: SignerClass,
    pub cnf_key: VerifyingKey,
    pub ctx: Option<Value>,
    pub provenance: Option<Value>,
    /// The request proof's signature, when it was checked together with this passport's
    /// ([`verify_with_proof`]): reused only for exactly the same key, digest and signature.
    pub proof_signature: Option<Decided>,
}

/// The request proof's signature inputs, read from the proof headers before the passport is
/// verified, so both signatures share one field inversion (issue 12). A hint only: the proof
/// step reads its headers again and decides on what it reads.
#[derive(Debug, Clone, Copy)]
pub struct ProofAhead {
    pub digest: [u8; 32],
    pub signature: [u8; 64],
}

/// What was learnt of a passport before it failed, for audit events.
#[derive(Debug, Clone, Default)]
pub struct Partial {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub jti: Option<String>,
}

// Every field optional and loosely typed: a wrong type is an invalid claim, decided after the
// signature; only JSON syntax errors and duplicate names (at any depth) are malformed.
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    crit: Option<Value>,
}

struct RawClaims {
    iss: Option<Value>,
    sub: Option<Value>,
    aud: Option<Value>,
    iat: Option<Value>,
    exp: Option<Value>,
    jti: Option<Value>,
    trust_domain: Option<Value>,
    cnf: Option<Value>,
    ctx: Option<Value>,
    provenance: Option<Value>,
}

impl RawHeader {
    fn from(mut m: Map<String, Value>) -> Self {
        RawHeader {
            alg: m.remove("alg"),
            kid: m.remove("kid"),
            typ: m.remove("typ"),
            crit: m.remove("crit"),
        }
    }
}

impl RawClaims {
    fn from(mut m: Map<String, Value>) -> Self {
        RawClaims {
            iss: m.remove("iss"),
            sub: m.remove("sub"),
            aud: m.remove("aud"),
            iat: m.remove("iat"),
            exp: m.remove("exp"),
            jti: m.remove("jti"),
            trust_domain: m.remove("trust_domain"),
            cnf: m.remove("cnf"),
            ctx: m.remove("ctx"),
            provenance: m.remove("provenance"),
        }
    }
}

/// Extracts the compact JWS from an `Authorization` value: exactly `Bearer`, one space, three
/// strict base64url segments.
pub fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, Reason> {
    let raw = authorization.ok_or(Reason::MissingPassport)?;
    if raw.len() > MAX_TOKEN_BYTES {
        return Err(Reason::MalformedPassport);
    }
    let token = raw
        .strip_prefix(b"Bearer ")
        .ok_or(Reason::MalformedPassport)?;
    // One pass over the bytes with a table (issue 12: the per-byte range tests and the split were
    // ~10,000 instructions per request natively): every byte is in the base64url alphabet or a
    // dot, and the dots make exactly three non-empty segments.
    let mut dots = 0;
    let mut segment_len = 0usize;
    for &b in token {
        if b == b'.' {
            if segment_len == 0 {
                return Err(Reason::MalformedPassport);
            }
            dots += 1;
            segment_len = 0;
        } else if BASE64URL[usize::from(b)] {
            segment_len += 1;
        } else {
            return Err(Reason::MalformedPassport);
        }
    }
    if dots != 2 || segment_len == 0 {
        return Err(Reason::MalformedPassport);
    }
    // Only ASCII got here, so this cannot fail; kept as the closed door rather than an unwrap.
    std::str::from_utf8(token).map_err(|_| Reason::MalformedPassport)
}

/// The base64url alphabet (RFC 4648 section 5), by byte value.
static BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// Verifies a compact JWS passport against `config`'s inline trust material at `now` (Unix
/// seconds); issuers with remote keys answer `keys_unavailable`. On failure, returns what could
/// be read of it for the audit event.
pub fn verify(token: &str, config: &Config, now: i64) -> Result<Passport, (Reason, Partial)> {
    verify_with(token, config, &NoRemoteKeys, now, None)
}

/// [`verify`], with the keys of issuers whose keys are fetched (DESIGN.md section 12), and with
/// the request proof's signature checked alongside the passport's when its `cnf` key is trust
/// material with a precomputed table: the proof's verdict is kept in
/// [`Passport::proof_signature`] and used only if the passport verifies. It reads `cnf` before
/// the passport's signature is known, but only to pick one of the configuration's own keys, so a
/// forged passport costs at most one more table-path verification, never a key decompression.
pub fn verify_with(
    token: &str,
    config: &Config,
    remote: &dyn RemoteKeys,
    now: i64,
    proof: Option<&ProofAhead>,
) -> Result<Passport, (Reason, Partial)> {
    let mut partial = Partial::default();
    let fail = |r: Reason, p: &Partial| Err((r, p.clone()));
    let mut segs = token.splitn(3, '.');
    let (Some(h64), Some(p64), Some(s64)) = (segs.next(), segs.next(), segs.next()) else {
        return fail(Reason::MalformedPassport, &partial);
    };
    let Some(header) = json_object(h64).map(RawHeader::from) else {
        return fail(Reason::MalformedPassport, &partial);
    };
    let Some(claims) = json_object(p64).map(RawClaims::from) else {
        return fail(Reason::MalformedPassport, &partial);
    };
    let Some(signature) = b64::decode_array::<64>(s64) else {
        return fail(Reason::MalformedPassport, &partial);
    };
    if header.alg.as_ref().and_then(Value::as_str) != Some("EdDSA") || header.crit.is_some() {
        return fail(Reason::MalformedPassport, &partial);
    }
    if header
        .typ
        .as_ref()
        .is_some_and(|t| t.as_str() != Some("JWT"))
    {
        return fail(Reason::MalformedPassport, &partial);
    }
    let Some(kid) = header
        .kid
        .as_ref()
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
    else {
        return fail(Reason::MalformedPassport, &partial);
    };
    partial.iss = claims
        .iss
        .as_ref()
        .and_then(Value::as_str)
        .map(str::to_string);
    partial.sub = claims
        .sub
        .as_ref()
        .and_then(Value::as_str)
        .map(str::to_string);
    partial.jti = claims
        .jti
        .as_ref()
        .and_then(Value::as_str)
        .map(str::to_string);

    let issuer = partial.iss.as_deref().and_then(|iss| config.issuer(iss));
    let key = match issuer {
        Some(issuer) if issuer.jwks.is_some() => match remote.lookup(&issuer.issuer, kid, now) {
            KeyLookup::Found(key) => key,
            KeyLookup::UnknownKid => return fail(Reason::UnknownSigningKey, &partial),
            KeyLookup::Unavailable => return fail(Reason::KeysUnavailable, &partial),
        },
        Some(issuer) => match issuer.key(kid) {
            Some(k) => &k.key,
            None => return fail(Reason::UnknownSigningKey, &partial),
        },
        None => return fail(Reason::UnknownSigningKey, &partial),
    };
    let signing_input = &token.as_bytes()[..h64.len() + 1 + p64.len()];
    let ahead = proof.and_then(|p| Some((p, precomputed_cnf_key(&claims, config)?)));
    let (valid, proof_signature) = match ahead {
        Some((p, cnf)) => {
            let [passport_ok, proof_ok] = crypto::verify_pair(
                (key, signing_input, &signature),
                (cnf, &p.digest, &p.signature),
            );
            let decided = Decided::new(cnf, &p.digest, &p.signature, proof_ok);
            (passport_ok, Some(decided))
        }
        None => (key.verify(signing_input, &signature), None),
    };
    if !valid {
        return fail(Reason::InvalidPassportSignature, &partial);
    }
    // Revocation comes right after the signature (DESIGN.md section 7), before claims are
    // validated, so it reads the raw claims; an unreadable `iat` cannot prove a passport was
    // issued after a subject's cutoff, so it counts as before it.
    if let Some(bundle) = &config.bundle {
        let iat = claims.iat.as_ref().and_then(Value::as_i64);
        let revoked = bundle.revoked.is_revoked(
            partial.iss.as_deref(),
            kid,
            partial.sub.as_deref(),
            partial.jti.as_deref(),
            iat,
        );
        if revoked {
            return fail(Reason::Revoked, &partial);
        }
    }

    let passport = match validate_claims(kid, claims, config) {
        Some(p) => Passport {
            proof_signature,
            ..p
        },
        None => return fail(Reason::InvalidPassportClaims, &partial),
    };
    check_time(&passport, config, now).map_err(|r| (r, partial))?;
    Ok(passport)
}

/// Decodes a base64url segment holding one JSON object, through the strict front end: duplicate
/// member names at any depth, nesting bombs and non-objects are all refused.
fn json_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = b64::decode(segment)?;
    json::parse_object(&bytes, json::TOKEN).ok()
}

fn validate_claims(kid: &str, c: RawClaims, config: &Config) -> Option<Passport> {
    let cnf = c.cnf?;
    let cnf = cnf.as_object()?;
    let key_text = claim_str(cnf.get("public_key_b64url"))?;
    let key_bytes = b64::decode_array::<32>(&key_text)?;
    let cnf_key = match config.precomputed_key(&key_bytes) {
        Some(known) => known.clone(),
        None => VerifyingKey::from_bytes(&key_bytes).ok()?,
    };
    let aud = match c.aud? {
        Value::String(s) => s,
        Value::Array(items) => match items.into_iter().next()? {
            Value::String(s) => s,
            _ => return None,
        },
        _ => return None,
    };
    Some(Passport {
        kid: kid.to_string(),
        iss: claim_str(c.iss.as_ref())?,
        sub: claim_str(c.sub.as_ref())?,
        aud: clean(aud)?,
        iat: c.iat.as_ref().and_then(Value::as_i64)?,
        exp: c.exp.as_ref().and_then(Value::as_i64)?,
        jti: claim_str(c.jti.as_ref())?,
        trust_domain: claim_str(c.trust_domain.as_ref())?,
        cnf_kid: claim_str(cnf.get("kid"))?,
        key_binding: SignerClass::parse(&claim_str(cnf.get("key_binding"))?)?,
        cnf_key,
        ctx: c.ctx,
        provenance: c.provenance,
        proof_signature: None,
    })
}

/// The trust-material key (one with a precomputed table) that `cnf.public_key_b64url` names, read
/// the way [`validate_claims`] reads it; `None` for any other key or a malformed claim.
fn precomputed_cnf_key<'c>(claims: &RawClaims, config: &'c Config) -> Option<&'c VerifyingKey> {
    let text = claim_str(claims.cnf.as_ref()?.as_object()?.get("public_key_b64url"))?;
    config.precomputed_key(&b64::decode_array::<32>(&text)?)
}

fn claim_str(v: Option<&Value>) -> Option<String> {
    clean(v?.as_str()?.to_string())
}

/// A claim string that can safely become a header value and an exact-match key: non-empty, no
/// surrounding whitespace, no control characters.
fn clean(s: String) -> Option<String> {
    let ok = !s.is_empty() && s.trim() == s && !s.chars().any(char::is_control);
    ok.then_some(s)
}

fn check_time(p: &Passport, config: &Config, now: i64) -> Result<(), Reason> {
    let skew = config.clock_skew_seconds;
    if p.exp <= p.iat {
        return Err(Reason::InvalidPassportClaims);
    }
    if now >= p.exp.saturating_add(skew) {
        return Err(Reason::PassportExpired);
    }
    if p.iat > now.saturating_add(skew) {
        return Err(Reason::PassportNotYetValid);
    }
    // `exp > iat` here, so the difference cannot overflow below zero; it can above.
    if p.exp
        .checked_sub(p.iat)
        .is_none_or(|life| life > config.max_passport_lifetime_seconds)
    {
        return Err(Reason::PassportLifetimeExceeded);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The framing check as it was before the one-pass scan (issue 12), kept as the reference.
    fn reference(authorization: Option<&[u8]>) -> Result<&str, Reason> {
        let raw = authorization.ok_or(Reason::MissingPassport)?;
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(Reason::MalformedPassport);
        }
        let text = std::str::from_utf8(raw).map_err(|_| Reason::MalformedPassport)?;
        let token = text
            .strip_prefix("Bearer ")
            .ok_or(Reason::MalformedPassport)?;
        let mut parts = 0;
        for seg in token.split('.') {
            parts += 1;
            if seg.is_empty()
                || !seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(Reason::MalformedPassport);
            }
        }
        if parts != 3 {
            return Err(Reason::MalformedPassport);
        }
        Ok(token)
    }

    #[test]
    fn bearer_token_agrees_with_the_reference_on_every_byte_in_every_position() {
        let good = b"Bearer aB0.-_z.Z9".to_vec();
        assert_eq!(bearer_token(Some(&good)), Ok("aB0.-_z.Z9"));
        let mut cases = vec![None, Some(Vec::new()), Some(good.clone())];
        for at in 0..=good.len() {
            for b in 0..=255u8 {
                let mut replaced = good.clone();
                if at < good.len() {
                    replaced[at] = b;
                    cases.push(Some(replaced));
                }
                let mut inserted = good.clone();
                inserted.insert(at, b);
                cases.push(Some(inserted));
            }
            let mut removed = good.clone();
            if at < good.len() {
                removed.remove(at);
                cases.push(Some(removed));
            }
        }
        for framing in [
            "Bearer a.b",
            "Bearer a.b.c.d",
            "Bearer .b.c",
            "Bearer a..c",
            "Bearer a.b.",
        ] {
            cases.push(Some(framing.as_bytes().to_vec()));
        }
        cases.push(Some(b"Bearer a.b.\xc3\xa9".to_vec()));
        let mut long = b"Bearer a.b.".to_vec();
        long.resize(MAX_TOKEN_BYTES, b'c');
        cases.push(Some(long.clone()));
        long.push(b'c');
        cases.push(Some(long));
        let mut accepted = 0;
        for case in &cases {
            let got = bearer_token(case.as_deref());
            assert_eq!(got, reference(case.as_deref()), "{case:?}");
            accepted += usize::from(got.is_ok());
        }
        // Both outcomes occur: the alphabet's 64 bytes in each segment position are accepted.
        assert!(accepted > 64 * 8, "{accepted}");
    }
}
