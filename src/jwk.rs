//! JSON Web Keys (RFC 7517, RFC 7518 section 6, RFC 8037) into typed public keys, with the skip
//! rules of DESIGN.md section 12: an entry whose `use` is not `sig`, whose `key_ops` do not allow
//! `verify`, whose `kty`/`crv` proofgate does not implement, whose `alg` does not fit the key,
//! that carries private members, or whose members are badly encoded is skipped with a [`Skip`]
//! the caller can log. `oct` (HMAC) keys are accepted only from inline configuration
//! ([`Origin::Inline`]), never from a fetched JWKS.
//!
//! Every document goes through the strict JSON front end (`crate::json`): a JWKS with a
//! duplicated member name anywhere is refused whole.

use crate::algs::es256::Es256Key;
use crate::algs::hs256::Hs256Key;
use crate::algs::rs256::{Rs256Key, RsaKeyError};
use crate::algs::Alg;
use crate::b64;
use crate::crypto::VerifyingKey;
use crate::json::{self, JsonError};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Most keys one JWKS may hold; a larger document is refused whole (never truncated, so which
/// keys are used never depends on their order past a limit).
pub const MAX_KEYS: usize = 100;

/// Longest `kid` kept; longer ones are skipped as bad encodings.
pub const MAX_KID_BYTES: usize = 256;

/// Where a key comes from: `oct` secrets only ever come from the configuration itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Inline,
    Remote,
}

/// A public key (or an inline HMAC secret) of a type proofgate verifies with.
#[derive(Debug, Clone)]
pub enum PublicKey {
    Ed25519(VerifyingKey),
    P256(Es256Key),
    Rsa(Rs256Key),
    Oct(Hs256Key),
}

impl PublicKey {
    /// The one algorithm this key type verifies with: an HMAC `alg` never fits an asymmetric key,
    /// and no asymmetric `alg` fits a secret.
    pub const fn alg(&self) -> Alg {
        match self {
            PublicKey::Ed25519(_) => Alg::EdDSA,
            PublicKey::P256(_) => Alg::ES256,
            PublicKey::Rsa(_) => Alg::RS256,
            PublicKey::Oct(_) => Alg::HS256,
        }
    }

    /// True only if `alg` fits this key and `signature` is valid for `signing_input`.
    pub fn verify(&self, alg: Alg, signing_input: &[u8], signature: &[u8]) -> bool {
        if alg != self.alg() {
            return false;
        }
        match self {
            PublicKey::Ed25519(k) => {
                <&[u8; 64]>::try_from(signature).is_ok_and(|s| k.verify(signing_input, s))
            }
            PublicKey::P256(k) => k.verify(signing_input, signature),
            PublicKey::Rsa(k) => k.verify(signing_input, signature),
            PublicKey::Oct(k) => k.verify(signing_input, signature),
        }
    }

    /// The RFC 7638 JWK thumbprint (SHA-256) of a public key; `None` for a secret, which has no
    /// thumbprint proofgate would ever publish or compare.
    pub fn thumbprint(&self) -> Option<[u8; 32]> {
        // Required members only, in lexicographic order, no whitespace (RFC 7638 section 3.2);
        // every value is base64url or a fixed name, so nothing needs JSON escaping.
        let canonical = match self {
            PublicKey::Ed25519(k) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64::encode(k.as_bytes())
            ),
            PublicKey::P256(k) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(k.x()),
                b64::encode(k.y())
            ),
            PublicKey::Rsa(k) => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(k.exponent()),
                b64::encode(k.modulus())
            ),
            PublicKey::Oct(_) => return None,
        };
        Some(Sha256::digest(canonical.as_bytes()).into())
    }
}

/// One usable key of a set.
#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    pub key: PublicKey,
}

/// Why one JWK entry was skipped. [`Skip::describe`] is safe to log: it never includes key
/// material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    NotAnObject,
    /// `use` other than `sig`, or `key_ops` without `verify`.
    NotForSignatures,
    UnknownKeyType,
    UnknownCurve,
    /// `alg` names an algorithm proofgate does not implement, or one that does not fit the key.
    AlgDoesNotFit,
    /// `d`, `p`, `q`, `dp`, `dq`, `qi` or `oth` on an asymmetric key.
    PrivateMembers,
    /// A required member missing, not a string, not canonical base64url, or of the wrong length.
    BadEncoding,
    /// A valid encoding of a key that must not be trusted (small-order Ed25519, off-curve P-256).
    WeakKey,
    RsaTooSmall,
    RsaTooLarge,
    RsaBadExponent,
    /// An HMAC secret shorter than 256 bits.
    SecretTooShort,
    /// An `oct` key in a fetched JWKS.
    OctNotInline,
}

impl Skip {
    pub const fn describe(self) -> &'static str {
        match self {
            Skip::NotAnObject => "not a JSON object",
            Skip::NotForSignatures => "use/key_ops not for signature verification",
            Skip::UnknownKeyType => "unknown kty",
            Skip::UnknownCurve => "unknown crv",
            Skip::AlgDoesNotFit => "alg not implemented or not fitting the key",
            Skip::PrivateMembers => "carries private key members",
            Skip::BadEncoding => "missing or badly encoded member",
            Skip::WeakKey => "not a valid public key (off-curve or small-order)",
            Skip::RsaTooSmall => "RSA modulus under 2048 bits",
            Skip::RsaTooLarge => "RSA modulus over 4096 bits",
            Skip::RsaBadExponent => "RSA exponent not odd and >= 3",
            Skip::SecretTooShort => "oct secret under 256 bits",
            Skip::OctNotInline => "oct keys are accepted only inline, never from a JWKS URL",
        }
    }
}

impl core::fmt::Display for Skip {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// A skipped entry: its position and, when it is a clean short string, its `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub index: usize,
    pub kid: Option<String>,
    pub why: Skip,
}

/// The usable keys of one JWKS document or inline key list, and what was skipped.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    pub skipped: Vec<Skipped>,
}

/// Why a whole JWKS document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksError {
    Json(JsonError),
    /// Not an object with a `keys` array.
    NotAJwks,
    /// More than [`MAX_KEYS`] entries.
    TooManyKeys,
    /// Every entry was skipped.
    NoUsableKey,
}

impl core::fmt::Display for JwksError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JwksError::Json(e) => write!(f, "JWKS is not strict JSON: {e}"),
            JwksError::NotAJwks => f.write_str("not a JWKS (an object with a \"keys\" array)"),
            JwksError::TooManyKeys => write!(f, "JWKS holds more than {MAX_KEYS} keys"),
            JwksError::NoUsableKey => f.write_str("JWKS holds no usable key"),
        }
    }
}

/// Parses a fetched JWKS document (section 12). Unknown top-level members are ignored (RFC 7517
/// section 5 allows them); `oct` entries are skipped.
pub fn parse_jwks(bytes: &[u8]) -> Result<KeySet, JwksError> {
    let doc = json::parse_object(bytes, json::JWKS).map_err(|e| match e {
        JsonError::NotAnObject => JwksError::NotAJwks,
        e => JwksError::Json(e),
    })?;
    let Some(Value::Array(entries)) = doc.get("keys") else {
        return Err(JwksError::NotAJwks);
    };
    let set = parse_keys(entries, Origin::Remote)?;
    if set.keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(set)
}

/// Parses a list of JWK values (a JWKS `keys` array, or a provider's inline `keys`).
pub fn parse_keys(entries: &[Value], origin: Origin) -> Result<KeySet, JwksError> {
    if entries.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys);
    }
    let mut set = KeySet::default();
    for (index, entry) in entries.iter().enumerate() {
        match entry {
            Value::Object(m) => match parse_jwk(m, origin) {
                Ok(jwk) => set.keys.push(jwk),
                Err(why) => set.skipped.push(Skipped {
                    index,
                    kid: loggable_kid(m),
                    why,
                }),
            },
            _ => set.skipped.push(Skipped {
                index,
                kid: None,
                why: Skip::NotAnObject,
            }),
        }
    }
    Ok(set)
}

impl KeySet {
    /// The key a JWS header names: the first key with this `kid` whose type fits `alg`. Without
    /// a `kid`, the set's only key fitting `alg`, if exactly one does: proofgate never tries
    /// keys one after another.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Option<&Jwk> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.key.alg() == alg),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.key.alg() == alg);
                let only = fitting.next()?;
                fitting.next().is_none().then_some(only)
            }
        }
    }

    /// The set's Ed25519 keys, to give them precomputed tables ([`crate::crypto::give_tables`]).
    pub fn ed25519_keys_mut(&mut self) -> impl Iterator<Item = &mut VerifyingKey> {
        self.keys.iter_mut().filter_map(|jwk| match &mut jwk.key {
            PublicKey::Ed25519(k) => Some(k),
            _ => None,
        })
    }
}

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// Parses one JWK object.
pub fn parse_jwk(m: &Map<String, Value>, origin: Origin) -> Result<Jwk, Skip> {
    parse_jwk_with(m, origin, &mut VerifyingKey::from_bytes)
}

/// [`parse_jwk`], with the Ed25519 point validation supplied by the caller: a cache of keys it
/// validated before with [`VerifyingKey::from_bytes`] (DPoP proof keys), never anything weaker.
pub fn parse_jwk_with(
    m: &Map<String, Value>,
    origin: Origin,
    ed25519: &mut dyn FnMut(&[u8; 32]) -> Result<VerifyingKey, crate::crypto::KeyError>,
) -> Result<Jwk, Skip> {
    let kid = match m.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_BYTES => Some(k.clone()),
        Some(_) => return Err(Skip::BadEncoding),
    };
    match m.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err(Skip::NotForSignatures),
    }
    if let Some(ops) = m.get("key_ops") {
        let Value::Array(ops) = ops else {
            return Err(Skip::BadEncoding);
        };
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Err(Skip::NotForSignatures);
        }
    }
    let kty = m.get("kty").and_then(Value::as_str);
    let key = match kty {
        Some("OKP") => {
            no_private(m)?;
            match m.get("crv").and_then(Value::as_str) {
                Some("Ed25519") => {}
                Some(_) => return Err(Skip::UnknownCurve),
                None => return Err(Skip::BadEncoding),
            }
            let x = member::<32>(m, "x")?;
            match ed25519(&x) {
                Ok(k) => PublicKey::Ed25519(k),
                Err(_) => return Err(Skip::WeakKey),
            }
        }
        Some("EC") => {
            no_private(m)?;
            match m.get("crv").and_then(Value::as_str) {
                Some("P-256") => {}
                Some(_) => return Err(Skip::UnknownCurve),
                None => return Err(Skip::BadEncoding),
            }
            let x = member::<32>(m, "x")?;
            let y = member::<32>(m, "y")?;
            PublicKey::P256(Es256Key::from_coordinates(&x, &y).ok_or(Skip::WeakKey)?)
        }
        Some("RSA") => {
            no_private(m)?;
            let n = member_bytes(m, "n")?;
            let e = member_bytes(m, "e")?;
            PublicKey::Rsa(Rs256Key::from_components(&n, &e).map_err(|e| match e {
                RsaKeyError::NotMinimal => Skip::BadEncoding,
                RsaKeyError::TooSmall => Skip::RsaTooSmall,
                RsaKeyError::TooLarge => Skip::RsaTooLarge,
                RsaKeyError::BadExponent => Skip::RsaBadExponent,
            })?)
        }
        Some("oct") => {
            if origin == Origin::Remote {
                return Err(Skip::OctNotInline);
            }
            let k = member_bytes(m, "k")?;
            PublicKey::Oct(Hs256Key::new(&k).ok_or(Skip::SecretTooShort)?)
        }
        Some(_) => return Err(Skip::UnknownKeyType),
        None => return Err(Skip::BadEncoding),
    };
    if let Some(alg) = m.get("alg") {
        let fits = alg.as_str().is_some_and(|a| {
            // RFC 9864's fully-specified name for EdDSA over Ed25519 also fits an Ed25519 key.
            Alg::parse(a) == Some(key.alg()) || (a == "Ed25519" && key.alg() == Alg::EdDSA)
        });
        if !fits {
            return Err(Skip::AlgDoesNotFit);
        }
    }
    Ok(Jwk { kid, key })
}

fn no_private(m: &Map<String, Value>) -> Result<(), Skip> {
    if PRIVATE_MEMBERS.iter().any(|p| m.contains_key(*p)) {
        return Err(Skip::PrivateMembers);
    }
    Ok(())
}

fn member_bytes(m: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Skip> {
    let text = m
        .get(name)
        .and_then(Value::as_str)
        .ok_or(Skip::BadEncoding)?;
    b64::decode(text)
        .filter(|b| !b.is_empty())
        .ok_or(Skip::BadEncoding)
}

fn member<const N: usize>(m: &Map<String, Value>, name: &str) -> Result<[u8; N], Skip> {
    let text = m
        .get(name)
        .and_then(Value::as_str)
        .ok_or(Skip::BadEncoding)?;
    b64::decode_array::<N>(text).ok_or(Skip::BadEncoding)
}

/// A `kid` worth putting in a log line: short, printable ASCII.
fn loggable_kid(m: &Map<String, Value>) -> Option<String> {
    let kid = m.get("kid")?.as_str()?;
    let ok = !kid.is_empty() && kid.len() <= 64 && kid.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| kid.to_string())
}

#[cfg(test)]
mod tests;
