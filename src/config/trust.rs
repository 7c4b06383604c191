//! `trust_material`: the issuers whose passports proofgate accepts and their Ed25519 keys.

use super::jwks::{self, JwksConfig};
use super::reader::{self, Node, Result};
use crate::b64;
use crate::crypto::{KeyError, VerifyingKey};

/// A trusted passport issuer.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    pub issuer: String,
    /// When set, passports of this issuer must carry exactly this `trust_domain`.
    pub trust_domain: Option<String>,
    /// Inline keys; empty when the keys come from `jwks`.
    pub keys: Vec<TrustedKey>,
    /// Remote keys (DESIGN.md section 12): Ed25519 keys of a JWKS fetched through Envoy.
    pub jwks: Option<JwksConfig>,
}

/// One signing key of an issuer.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub kid: String,
    pub key: VerifyingKey,
}

impl TrustedIssuer {
    pub fn key(&self, kid: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// The issuers, their keys without tables yet: `parse_root` gives every key of the configuration
/// its table from one budget.
pub(super) fn parse(n: &Node<'_>) -> Result<Vec<TrustedIssuer>> {
    let obj = n.object(Some(&["issuers"]))?;
    let issuers = obj
        .array("issuers", |n| parse_issuer(&n))?
        .unwrap_or_default();
    if issuers.is_empty() {
        return obj.err("issuers", "must list at least one issuer");
    }
    for (i, a) in issuers.iter().enumerate() {
        if issuers[..i].iter().any(|b| b.issuer == a.issuer) {
            return obj.err(
                &format!("issuers[{i}].issuer"),
                format!("duplicate issuer {:?}", a.issuer),
            );
        }
    }
    Ok(issuers)
}

fn parse_issuer(n: &Node<'_>) -> Result<TrustedIssuer> {
    let obj = n.object(Some(&["issuer", "trust_domain", "keys", "jwks"]))?;
    let issuer = obj.required_string("issuer")?;
    let trust_domain = obj.string("trust_domain")?;
    let jwks = obj.child("jwks", |n| jwks::parse(&n, &issuer))?;
    let keys = obj.array("keys", |n| parse_key(&n))?.unwrap_or_default();
    match (&jwks, keys.is_empty()) {
        (Some(_), false) => {
            return obj.err(
                "keys",
                "not allowed with jwks: an issuer's keys come from one place",
            )
        }
        (None, true) => return obj.err("keys", "must list at least one key (or set jwks)"),
        _ => {}
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].iter().any(|o| o.kid == k.kid) {
            return obj.err(
                &format!("keys[{i}].kid"),
                format!("duplicate kid {:?}", k.kid),
            );
        }
    }
    Ok(TrustedIssuer {
        issuer,
        trust_domain,
        keys,
        jwks,
    })
}

fn parse_key(n: &Node<'_>) -> Result<TrustedKey> {
    let obj = n.object(Some(&["kid", "alg", "public_key_b64url"]))?;
    let kid = obj.required_string("kid")?;
    match obj.string("alg")?.as_deref() {
        None | Some("EdDSA") => {}
        Some(other) => return obj.err("alg", format!("must be \"EdDSA\", not {other:?}")),
    }
    let raw = obj.required("public_key_b64url", |n| reader::string(&n))?;
    let Some(bytes) = b64::decode(&raw) else {
        return obj.err("public_key_b64url", "is not canonical unpadded base64url");
    };
    let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        return obj.err(
            "public_key_b64url",
            format!(
                "must decode to 32 bytes (an Ed25519 public key), got {}",
                bytes.len()
            ),
        );
    };
    match VerifyingKey::from_bytes(&bytes) {
        Ok(key) => Ok(TrustedKey { kid, key }),
        Err(KeyError::WeakKey) => obj.err("public_key_b64url", "is a small-order point, refused"),
        Err(KeyError::MixedOrder) => obj.err(
            "public_key_b64url",
            "has a small-order component (not torsion-free), refused",
        ),
        Err(KeyError::NotAPoint) => obj.err("public_key_b64url", "is not a valid Ed25519 point"),
    }
}
