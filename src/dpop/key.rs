//! The public key a DPoP proof carries in its `jwk` header (RFC 9449 section 4.2, DESIGN.md
//! section 14): typed through the one JWK front end (`crate::jwk`, the same rules as a fetched
//! JWKS: no private members, no secrets, valid points, RSA of at least 2048 bits), and named by
//! its RFC 7638 SHA-256 thumbprint (the `cnf.jkt` of a bound token).

use crate::algs::Alg;
use crate::b64;
use crate::crypto::{TableWidth, VerifyingKey};
use crate::jwk::{self, Origin, PublicKey, Skip};
use core::cell::RefCell;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A proof key.
#[derive(Debug, Clone)]
pub struct ProofKey(PublicKey);

/// Why a `jwk` was refused (all of them answer `invalid_dpop_proof`; the variants keep tests
/// exact about which rule fired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// A private member, or a symmetric secret.
    PrivateMember,
    /// A key type or curve proofgate does not verify with, a `use`/`key_ops` not for
    /// signatures, or an `alg` member that does not fit the key.
    Unsupported,
    /// A member missing or badly encoded, or not a valid, safe key (small-order Ed25519,
    /// off-curve P-256, RSA under 2048 bits).
    BadKey,
}

impl ProofKey {
    /// Types a `jwk` object, and returns it with its RFC 7638 thumbprint.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<(ProofKey, String), KeyError> {
        Self::from_jwk_cached(jwk, None)
    }

    /// [`ProofKey::from_jwk`], taking an Ed25519 key from `cache` when a proof by it passed
    /// every check before: the same member rules apply, only the point's validation (and its
    /// table) is reused.
    pub fn from_jwk_cached(
        jwk: &Map<String, Value>,
        cache: Option<&RefCell<KeyCache>>,
    ) -> Result<(ProofKey, String), KeyError> {
        // A proof key is never a secret: `k` is refused as a private member, like `d`.
        if jwk.contains_key("k") {
            return Err(KeyError::PrivateMember);
        }
        let mut ed25519 = |x: &[u8; 32]| match cache.and_then(|c| c.try_borrow_mut().ok()?.get(x)) {
            Some(key) => Ok(key),
            None => VerifyingKey::from_bytes(x),
        };
        let key = match jwk::parse_jwk_with(jwk, Origin::Remote, &mut ed25519) {
            Ok(parsed) => parsed.key,
            Err(Skip::PrivateMembers) => return Err(KeyError::PrivateMember),
            Err(
                Skip::NotAnObject
                | Skip::NotForSignatures
                | Skip::UnknownKeyType
                | Skip::UnknownCurve
                | Skip::AlgDoesNotFit
                | Skip::OctNotInline,
            ) => return Err(KeyError::Unsupported),
            Err(_) => return Err(KeyError::BadKey),
        };
        let thumbprint = key.thumbprint().ok_or(KeyError::Unsupported)?;
        Ok((ProofKey(key), b64::encode(&thumbprint)))
    }

    /// The one algorithm this key verifies with.
    pub fn alg(&self) -> Alg {
        self.0.alg()
    }

    /// True only if `signature` is valid for `message` under this key with `alg`.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify(alg, message, signature)
    }

    /// Records in `cache` that a proof by this key passed every check (an Ed25519 key; other
    /// kinds are not cached).
    pub fn proven(&self, cache: Option<&RefCell<KeyCache>>) {
        if let (PublicKey::Ed25519(key), Some(cache)) = (&self.0, cache) {
            if let Ok(mut cache) = cache.try_borrow_mut() {
                cache.proven(key);
            }
        }
    }
}

/// The Ed25519 proof keys of clients whose proofs passed every check (each bound to a verified
/// token's `cnf.jkt`), per VM. A client signs every request with one key, so validating its
/// point (decompression, canonical encoding, small order, torsion: about as much work as the
/// signature check) once is enough, and a key used again gets a radix-16 table
/// ([`TableWidth::Radix16`], 60 KiB) that makes its signature checks faster. Only proven keys
/// enter, so a flood of made-up keys never does; at most [`KeyCache::CAPACITY`] keys are kept,
/// the least recently used leaving first. A linear scan over raw key bytes: no hashing that a
/// caller could steer.
#[derive(Debug, Clone, Default)]
pub struct KeyCache {
    entries: Vec<Cached>,
    clock: u64,
}

#[derive(Debug, Clone)]
struct Cached {
    key: VerifyingKey,
    proven: u32,
    last_used: u64,
}

impl KeyCache {
    /// Keys kept per VM (and so at most 16 × 60 KiB of tables).
    pub const CAPACITY: usize = 16;
    /// Proofs a key must have passed before it gets its table.
    pub const TABLE_AFTER: u32 = 2;

    /// The validated key with these bytes, if a proof by it passed before.
    pub fn get(&mut self, bytes: &[u8; 32]) -> Option<VerifyingKey> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.key.as_bytes() == bytes)?;
        entry.last_used = clock;
        Some(entry.key.clone())
    }

    /// Records a proof by `key` that passed every check.
    pub fn proven(&mut self, key: &VerifyingKey) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|e| e.key.as_bytes() == key.as_bytes())
        {
            entry.proven = entry.proven.saturating_add(1);
            entry.last_used = clock;
            if entry.proven >= Self::TABLE_AFTER && !entry.key.has_table() {
                entry.key = entry.key.clone().with_table_width(TableWidth::Radix16);
            }
            return;
        }
        if self.entries.len() >= Self::CAPACITY {
            if let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_used)
            {
                self.entries.swap_remove(oldest);
            }
        }
        self.entries.push(Cached {
            key: key.clone(),
            proven: 1,
            last_used: clock,
        });
    }

    /// How many keys are kept, and how many of them have a table.
    pub fn counts(&self) -> (usize, usize) {
        let tables = self.entries.iter().filter(|e| e.key.has_table()).count();
        (self.entries.len(), tables)
    }
}

/// `base64url(SHA-256(token))`, the `ath` a proof must carry for `token` (RFC 9449 section 4.2).
pub fn access_token_hash(token: &str) -> String {
    b64::encode(&Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    /// RFC 7638 section 3.1: the RSA key (with its optional members) and its thumbprint.
    #[test]
    fn rfc7638_section_3_1_thumbprint() {
        let jwk = obj(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        );
        let (key, jkt) = ProofKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.alg(), Alg::RS256);
        assert_eq!(jkt, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    /// RFC 9449 section 6.1: the example proof key's thumbprint is the example token's `cnf.jkt`.
    #[test]
    fn rfc9449_example_key_thumbprint_is_the_example_jkt() {
        let jwk = obj(
            r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#,
        );
        let (key, jkt) = ProofKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.alg(), Alg::ES256);
        assert_eq!(jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    }

    /// RFC 9449 section 4.2 / 7.1: the `ath` of the example access token.
    #[test]
    fn rfc9449_example_ath() {
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn optional_members_do_not_change_the_thumbprint() {
        let plain = obj(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        );
        let decorated = obj(
            r#"{"kid":"k1","use":"sig","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","crv":"Ed25519","kty":"OKP"}"#,
        );
        let a = ProofKey::from_jwk(&plain).unwrap().1;
        let b = ProofKey::from_jwk(&decorated).unwrap().1;
        assert_eq!(a, b);
        // RFC 8037 appendix A.3: the thumbprint of that Ed25519 key.
        assert_eq!(a, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn private_unsupported_and_bad_keys_are_refused() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let refused = |text: String| ProofKey::from_jwk(&obj(&text)).map(|_| ()).unwrap_err();
        for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert_eq!(
                refused(format!(
                    r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","{m}":"AAAA"}}"#
                )),
                KeyError::PrivateMember,
                "{m}"
            );
        }
        assert_eq!(
            refused(r#"{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}"#.into()),
            KeyError::PrivateMember
        );
        for text in [
            format!(r#"{{"kty":"OKP","crv":"Ed448","x":"{x}"}}"#),
            format!(r#"{{"kty":"OKP","crv":"X25519","x":"{x}"}}"#),
            format!(r#"{{"kty":"XYZ","crv":"Ed25519","x":"{x}"}}"#),
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","use":"enc"}}"#),
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","alg":"ES256"}}"#),
            r#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#.into(),
        ] {
            assert_eq!(refused(text.clone()), KeyError::Unsupported, "{text}");
        }
        for text in [
            format!(r#"{{"kty":"OKP","x":"{x}"}}"#),
            r#"{"kty":"OKP","crv":"Ed25519"}"#.into(),
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":["{x}"]}}"#),
            // Padding, wrong length, the identity point (small order).
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}="}}"#),
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, &x[..42]),
            r#"{"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#.into(),
            // (1, 1) is not on P-256.
            r#"{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}"#.into(),
            // A 16-bit RSA modulus.
            r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#.into(),
        ] {
            assert_eq!(refused(text.clone()), KeyError::BadKey, "{text}");
        }
    }
}
