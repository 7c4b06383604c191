//! The public key a DPoP proof carries in its `jwk` header (RFC 9449 section 4.2, DESIGN.md
//! section 14): typed from the JWK members, refused when it holds any private member, matched to
//! the proof's `alg`, and named by its RFC 7638 SHA-256 thumbprint (the `cnf.jkt` of a bound
//! token). Ed25519 goes through `crate::crypto`, the one Ed25519 seam.

use crate::b64;
use crate::crypto;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// JWK members that hold private (or symmetric) key material (RFC 7518 section 6). A proof key
/// carrying any of them is refused: the client leaked its key or sent the wrong one.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A verified-usable proof key.
#[derive(Debug, Clone)]
pub enum ProofKey {
    Ed25519(crypto::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// Why a `jwk` was refused (all of them answer `invalid_dpop_proof`; the variants keep tests
/// exact about which rule fired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// A private or symmetric member is present.
    PrivateMember,
    /// `kty`/`crv` unknown or unsupported, a member missing or not a string.
    Unsupported,
    /// The coordinates are not canonical base64url of the right length, or not a valid,
    /// safe point (small-order Ed25519 keys and off-curve P-256 points included).
    BadKey,
}

impl ProofKey {
    /// Types a `jwk` object, and returns it with its RFC 7638 thumbprint.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<(ProofKey, String), KeyError> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(KeyError::PrivateMember);
        }
        let member = |name: &str| match jwk.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            _ => Err(KeyError::Unsupported),
        };
        match (member("kty")?, member("crv")?) {
            ("OKP", "Ed25519") => {
                let x = member("x")?;
                let bytes = b64::decode_array::<32>(x).ok_or(KeyError::BadKey)?;
                let key = crypto::VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadKey)?;
                let jkt = thumbprint(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", x)]);
                Ok((ProofKey::Ed25519(key), jkt))
            }
            ("EC", "P-256") => {
                let (x, y) = (member("x")?, member("y")?);
                let xb = b64::decode_array::<32>(x).ok_or(KeyError::BadKey)?;
                let yb = b64::decode_array::<32>(y).ok_or(KeyError::BadKey)?;
                let point =
                    p256::EncodedPoint::from_affine_coordinates((&xb).into(), (&yb).into(), false);
                // Refuses points off the curve and the identity.
                let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| KeyError::BadKey)?;
                let jkt = thumbprint(&[("crv", "P-256"), ("kty", "EC"), ("x", x), ("y", y)]);
                Ok((ProofKey::P256(key), jkt))
            }
            _ => Err(KeyError::Unsupported),
        }
    }

    /// True only if `signature` (the JWS signature bytes) is valid for `message` under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            ProofKey::Ed25519(key) => match <&[u8; 64]>::try_from(signature) {
                Ok(sig) => key.verify(message, sig),
                Err(_) => false,
            },
            ProofKey::P256(key) => {
                use p256::ecdsa::signature::Verifier;
                // JWS ES256 is the 64-byte r || s, never DER (RFC 7518 section 3.4).
                if signature.len() != 64 {
                    return false;
                }
                match p256::ecdsa::Signature::from_slice(signature) {
                    Ok(sig) => key.verify(message, &sig).is_ok(),
                    Err(_) => false,
                }
            }
        }
    }
}

/// The RFC 7638 JWK SHA-256 thumbprint, base64url: the required members, sorted by name,
/// serialised without whitespace, hashed. `members` must already be those required members.
pub fn thumbprint(members: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut json = String::from("{");
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        // serde_json's string form is exactly the JSON escaping RFC 7638 asks for; for the
        // base64url and fixed names of real keys it adds nothing but the quotes.
        json.push_str(&Value::from(*name).to_string());
        json.push(':');
        json.push_str(&Value::from(*value).to_string());
    }
    json.push('}');
    b64::encode(&Sha256::digest(json.as_bytes()))
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

    /// RFC 7638 section 3.1: the RSA key and its published thumbprint.
    #[test]
    fn rfc7638_section_3_1_thumbprint() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        // Given in the RFC's member order; the function sorts.
        assert_eq!(
            thumbprint(&[("kty", "RSA"), ("n", n), ("e", "AQAB")]),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RFC 9449 section 6.1: the example proof key's thumbprint is the example token's `cnf.jkt`.
    #[test]
    fn rfc9449_example_key_thumbprint_is_the_example_jkt() {
        let jwk = obj(
            r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#,
        );
        let (key, jkt) = ProofKey::from_jwk(&jwk).unwrap();
        assert!(matches!(key, ProofKey::P256(_)));
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
        for m in PRIVATE_MEMBERS {
            assert_eq!(
                refused(format!(
                    r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","{m}":"AAAA"}}"#
                )),
                KeyError::PrivateMember,
                "{m}"
            );
        }
        assert_eq!(
            refused(r#"{"kty":"oct","k":"c2VjcmV0"}"#.into()),
            KeyError::PrivateMember
        );
        for text in [
            format!(r#"{{"kty":"OKP","crv":"Ed448","x":"{x}"}}"#),
            format!(r#"{{"kty":"OKP","crv":"X25519","x":"{x}"}}"#),
            format!(r#"{{"kty":"OKP","x":"{x}"}}"#),
            r#"{"kty":"OKP","crv":"Ed25519"}"#.into(),
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":["{x}"]}}"#),
            r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#.into(),
            r#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#.into(),
        ] {
            assert_eq!(refused(text.clone()), KeyError::Unsupported, "{text}");
        }
        for text in [
            // Padding, wrong length, the identity point (small order).
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}="}}"#),
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, &x[..42]),
            r#"{"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#.into(),
            // (1, 1) is not on P-256.
            r#"{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}"#.into(),
        ] {
            assert_eq!(refused(text.clone()), KeyError::BadKey, "{text}");
        }
    }
}
