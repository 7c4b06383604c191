use super::*;
use serde_json::json;

// RFC 8032 section 7.1 TEST 1 public key.
const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
// RFC 7515 appendix A.3 P-256 key.
const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
// RFC 7515 appendix A.2 RSA-2048 modulus.
const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const OCT_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

fn one(v: serde_json::Value, origin: Origin) -> Result<Jwk, Skip> {
    parse_jwk(v.as_object().unwrap(), origin)
}

#[test]
fn each_key_type_parses_and_fits_one_alg() {
    let cases = [
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"kid":"e"}),
            Alg::EdDSA,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"alg":"Ed25519"}),
            Alg::EdDSA,
        ),
        (
            json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"alg":"ES256","use":"sig"}),
            Alg::ES256,
        ),
        (
            json!({"kty":"RSA","n":RSA_N,"e":"AQAB","alg":"RS256","key_ops":["verify"]}),
            Alg::RS256,
        ),
        (json!({"kty":"oct","k":OCT_K,"alg":"HS256"}), Alg::HS256),
    ];
    for (v, alg) in cases {
        let jwk = one(v.clone(), Origin::Inline).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(jwk.key.alg(), alg, "{v}");
    }
}

#[test]
fn skip_rules_name_the_reason() {
    let cases = [
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"use":"enc"}),
            Skip::NotForSignatures,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"key_ops":["sign"]}),
            Skip::NotForSignatures,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"key_ops":"verify"}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"OKP","crv":"X25519","x":ED_X}),
            Skip::UnknownCurve,
        ),
        (
            json!({"kty":"EC","crv":"P-384","x":EC_X,"y":EC_Y}),
            Skip::UnknownCurve,
        ),
        (
            json!({"kty":"EC","crv":"secp256k1","x":EC_X,"y":EC_Y}),
            Skip::UnknownCurve,
        ),
        (json!({"kty":"AKP","x":ED_X}), Skip::UnknownKeyType),
        (json!({"crv":"Ed25519","x":ED_X}), Skip::BadEncoding),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"alg":"ES256"}),
            Skip::AlgDoesNotFit,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"alg":"none"}),
            Skip::AlgDoesNotFit,
        ),
        (
            json!({"kty":"RSA","n":RSA_N,"e":"AQAB","alg":"HS256"}),
            Skip::AlgDoesNotFit,
        ),
        (
            json!({"kty":"RSA","n":RSA_N,"e":"AQAB","alg":"PS256"}),
            Skip::AlgDoesNotFit,
        ),
        (
            json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"alg":"HS256"}),
            Skip::AlgDoesNotFit,
        ),
        (
            json!({"kty":"oct","k":OCT_K,"alg":"RS256"}),
            Skip::AlgDoesNotFit,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"alg":7}),
            Skip::AlgDoesNotFit,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"d":ED_X}),
            Skip::PrivateMembers,
        ),
        (
            json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"d":EC_X}),
            Skip::PrivateMembers,
        ),
        (
            json!({"kty":"RSA","n":RSA_N,"e":"AQAB","p":"AQAB"}),
            Skip::PrivateMembers,
        ),
        (
            json!({"kty":"RSA","n":RSA_N,"e":"AQAB","oth":[]}),
            Skip::PrivateMembers,
        ),
        // Encodings: padding, standard alphabet, wrong lengths, not strings.
        (
            json!({"kty":"OKP","crv":"Ed25519","x":format!("{ED_X}=")}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":&ED_X[..42]}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":b64::encode(&[9u8; 33])}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X.replace('_', "/")}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"EC","crv":"P-256","x":EC_X}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"EC","crv":"P-256","x":b64::encode(&[1u8; 31]),"y":EC_Y}),
            Skip::BadEncoding,
        ),
        (json!({"kty":"RSA","n":RSA_N,"e":65537}), Skip::BadEncoding),
        (
            json!({"kty":"RSA","n":format!("AA{RSA_N}"),"e":"AQAB"}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"kid":5}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"kid":""}),
            Skip::BadEncoding,
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x":ED_X,"kid":"k".repeat(257)}),
            Skip::BadEncoding,
        ),
        // Valid encodings of keys that must not be trusted.
        (
            json!({"kty":"OKP","crv":"Ed25519","x":b64::encode(&{let mut b=[0u8;32]; b[0]=1; b})}),
            Skip::WeakKey,
        ),
        (
            json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_X}),
            Skip::WeakKey,
        ),
        (
            json!({"kty":"RSA","n":b64::encode(&[0xc5; 128]),"e":"AQAB"}),
            Skip::RsaTooSmall,
        ),
        (
            json!({"kty":"RSA","n":b64::encode(&[0xc5; 600]),"e":"AQAB"}),
            Skip::RsaTooLarge,
        ),
        (
            json!({"kty":"RSA","n":RSA_N,"e":"AQ"}),
            Skip::RsaBadExponent,
        ),
        (
            json!({"kty":"RSA","n":RSA_N,"e":"AQAA"}),
            Skip::RsaBadExponent,
        ),
        (
            json!({"kty":"oct","k":b64::encode(&[1u8; 31])}),
            Skip::SecretTooShort,
        ),
    ];
    for (v, why) in cases {
        assert_eq!(one(v.clone(), Origin::Inline).err(), Some(why), "{v}");
    }
    // oct only inline.
    assert_eq!(
        one(json!({"kty":"oct","k":OCT_K}), Origin::Remote).err(),
        Some(Skip::OctNotInline)
    );
}

#[test]
fn parse_jwks_keeps_good_keys_and_reports_skips() {
    let doc = json!({"keys":[
        {"kty":"OKP","crv":"Ed25519","x":ED_X,"kid":"ed"},
        {"kty":"oct","k":OCT_K,"kid":"secret"},
        "not an object",
        {"kty":"EC","crv":"P-384","x":EC_X,"y":EC_Y,"kid":"p384"},
        {"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"kid":"ec"}
    ], "extra": true});
    let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
    let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
    assert_eq!(kids, ["ed", "ec"]);
    assert_eq!(
        set.skipped,
        vec![
            Skipped {
                index: 1,
                kid: Some("secret".into()),
                why: Skip::OctNotInline
            },
            Skipped {
                index: 2,
                kid: None,
                why: Skip::NotAnObject
            },
            Skipped {
                index: 3,
                kid: Some("p384".into()),
                why: Skip::UnknownCurve
            },
        ]
    );
}

#[test]
fn whole_document_refusals() {
    let ed = json!({"kty":"OKP","crv":"Ed25519","x":ED_X});
    assert_eq!(parse_jwks(b"[]").err(), Some(JwksError::NotAJwks));
    assert_eq!(parse_jwks(b"{}").err(), Some(JwksError::NotAJwks));
    assert_eq!(
        parse_jwks(br#"{"keys":{}}"#).err(),
        Some(JwksError::NotAJwks)
    );
    assert_eq!(
        parse_jwks(b"<html>").err(),
        Some(JwksError::Json(JsonError::Syntax))
    );
    assert_eq!(
        parse_jwks(br#"{"keys":[]}"#).err(),
        Some(JwksError::NoUsableKey)
    );
    let only_bad = json!({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]});
    assert_eq!(
        parse_jwks(only_bad.to_string().as_bytes()).err(),
        Some(JwksError::NoUsableKey)
    );
    // Duplicates anywhere, including inside one key, refuse the whole document.
    let dup = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","x":"{ED_X}"}}]}}"#);
    assert_eq!(
        parse_jwks(dup.as_bytes()).err(),
        Some(JwksError::Json(JsonError::DuplicateMember))
    );
    // Thousands of keys: refused whole, not truncated.
    let many = json!({"keys": vec![ed.clone(); MAX_KEYS + 1]});
    assert_eq!(
        parse_jwks(many.to_string().as_bytes()).err(),
        Some(JwksError::TooManyKeys)
    );
    let thousands = json!({"keys": vec![ed.clone(); 5000]});
    assert_eq!(
        parse_jwks(thousands.to_string().as_bytes()).err(),
        Some(JwksError::TooManyKeys)
    );
    let max = json!({"keys": vec![ed; MAX_KEYS]});
    assert_eq!(
        parse_jwks(max.to_string().as_bytes()).unwrap().keys.len(),
        MAX_KEYS
    );
    // Nesting bombs.
    let bomb = format!(
        r#"{{"keys":[],"x":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert_eq!(
        parse_jwks(bomb.as_bytes()).err(),
        Some(JwksError::Json(JsonError::TooDeep))
    );
}

#[test]
fn find_by_kid_and_alg_never_tries_each() {
    let doc = json!({"keys":[
        {"kty":"OKP","crv":"Ed25519","x":ED_X,"kid":"a"},
        {"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"kid":"a"},
        {"kty":"RSA","n":RSA_N,"e":"AQAB"}
    ]});
    let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
    assert_eq!(
        set.find(Some("a"), Alg::EdDSA).unwrap().key.alg(),
        Alg::EdDSA
    );
    assert_eq!(
        set.find(Some("a"), Alg::ES256).unwrap().key.alg(),
        Alg::ES256
    );
    assert!(set.find(Some("a"), Alg::RS256).is_none());
    assert!(set.find(Some("b"), Alg::EdDSA).is_none());
    // No kid: only when exactly one key fits the alg.
    assert_eq!(set.find(None, Alg::RS256).unwrap().key.alg(), Alg::RS256);
    assert!(set.find(None, Alg::HS256).is_none());
    let two = json!({"keys":[
        {"kty":"OKP","crv":"Ed25519","x":ED_X,"kid":"a"},
        {"kty":"OKP","crv":"Ed25519","x":"PUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw","kid":"b"}
    ]});
    let set = parse_jwks(two.to_string().as_bytes()).unwrap();
    assert_eq!(set.keys.len(), 2);
    assert!(set.find(None, Alg::EdDSA).is_none());
}

#[test]
fn an_hmac_alg_never_verifies_with_an_asymmetric_key() {
    let set = parse_jwks(
        json!({"keys":[{"kty":"RSA","n":RSA_N,"e":"AQAB"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let rsa = &set.keys[0].key;
    // The classic confusion: HMAC keyed with the public key's bytes.
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(RSA_N.as_bytes()).unwrap();
    mac.update(b"x.y");
    let tag = mac.finalize().into_bytes();
    assert!(!rsa.verify(Alg::HS256, b"x.y", &tag));
}

/// RFC 7638 section 3.1's worked example, and RFC 8037 appendix A.3's for Ed25519.
#[test]
fn thumbprints_match_the_rfc_examples() {
    let rsa = one(
        json!({"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29",
               "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}),
        Origin::Remote,
    )
    .unwrap();
    assert_eq!(
        b64::encode(&rsa.key.thumbprint().unwrap()),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    let ed = one(
        json!({"kty":"OKP","crv":"Ed25519","x":ED_X}),
        Origin::Remote,
    )
    .unwrap();
    assert_eq!(
        b64::encode(&ed.key.thumbprint().unwrap()),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let oct = one(json!({"kty":"oct","k":OCT_K}), Origin::Inline).unwrap();
    assert_eq!(oct.key.thumbprint(), None);
}
