//! Every rule of DESIGN.md section 14 with its exact reason, and the RFC 9449 examples as data
//! with the time pinned.

use super::*;
use crate::b64;
use crate::replay::MemoryStore;
use serde_json::json;

const NOW: i64 = 1_800_000_000;
const TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJjbGllbnQifQ.c2ln";
const URL: &str = "https://api.example/orders";

/// A client key: Ed25519 (seeded) or P-256 (fixed scalar).
enum Client {
    Ed(ed25519_compact::KeyPair),
    P256(p256::ecdsa::SigningKey),
}

impl Client {
    fn ed(seed: u8) -> Client {
        Client::Ed(ed25519_compact::KeyPair::from_seed(
            ed25519_compact::Seed::new([seed; 32]),
        ))
    }

    fn p256(scalar: u8) -> Client {
        Client::P256(p256::ecdsa::SigningKey::from_bytes(&[scalar; 32].into()).unwrap())
    }

    fn jwk(&self) -> serde_json::Value {
        match self {
            Client::Ed(kp) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(&kp.pk[..])}),
            Client::P256(sk) => {
                let point = sk.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256",
                       "x": b64::encode(point.x().unwrap()), "y": b64::encode(point.y().unwrap())})
            }
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Client::Ed(_) => "EdDSA",
            Client::P256(_) => "ES256",
        }
    }

    fn jkt(&self) -> String {
        match ProofKey::from_jwk(self.jwk().as_object().unwrap()) {
            Ok((_, jkt)) => jkt,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Client::Ed(kp) => kp.sk.sign(message, None).to_vec(),
            Client::P256(sk) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = sk.sign(message);
                sig.to_bytes().to_vec()
            }
        }
    }

    /// A compact JWS over exactly these header and claims.
    fn proof_with(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64::encode(&sig))
    }

    fn header(&self) -> serde_json::Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    fn proof(&self, claims: &serde_json::Value) -> String {
        self.proof_with(&self.header(), claims)
    }
}

fn claims() -> serde_json::Value {
    json!({"jti": "jti-1", "htm": "GET", "htu": URL, "iat": NOW,
           "ath": key::access_token_hash(TOKEN)})
}

fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    base[key] = value;
    base
}

fn without(mut base: serde_json::Value, key: &str) -> serde_json::Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

fn settings(mode: Mode) -> Settings {
    Settings {
        mode,
        ..Settings::default()
    }
}

fn request<'a>(method: &'a str, proofs: Vec<&'a [u8]>) -> RequestParts<'a> {
    RequestParts {
        method,
        scheme: "https",
        authority: "api.example",
        path: "/orders",
        proofs,
    }
}

struct Case<'a> {
    settings: Settings,
    scheme: Scheme,
    token: &'a str,
    cnf_jkt: Option<String>,
    nonce_key: Option<NonceKey>,
    keys: Option<&'a core::cell::RefCell<key::KeyCache>>,
    now: i64,
}

impl<'a> Case<'a> {
    fn bound(client: &Client) -> Case<'a> {
        Case {
            settings: settings(Mode::Required),
            scheme: Scheme::DPoP,
            token: TOKEN,
            cnf_jkt: Some(client.jkt()),
            nonce_key: None,
            keys: None,
            now: NOW,
        }
    }

    fn run(&self, req: &RequestParts<'_>) -> Result<Binding, Refusal> {
        let ctx = Context {
            settings: &self.settings,
            provider: "trustline",
            skew_seconds: 30,
            nonce_key: self.nonce_key.as_ref(),
            keys: self.keys,
            now: self.now,
        };
        let presented = Presented {
            scheme: self.scheme,
            token: self.token,
            cnf_jkt: self.cnf_jkt.as_deref(),
        };
        check(&ctx, &presented, req)
    }

    fn proof(&self, proof: &str) -> Result<Binding, Refusal> {
        self.run(&request("GET", vec![proof.as_bytes()]))
    }

    fn reason(&self, proof: &str) -> Reason {
        match self.proof(proof) {
            Ok(b) => panic!("accepted: {b:?}"),
            Err(r) => r.reason,
        }
    }
}

fn proven(result: Result<Binding, Refusal>) -> Proven {
    match result {
        Ok(Binding::Bound(p)) => p,
        other => panic!("not bound: {other:?}"),
    }
}

#[test]
fn valid_proofs_with_ed25519_and_p256_keys() {
    for client in [Client::ed(1), Client::p256(2)] {
        let case = Case::bound(&client);
        let p = proven(case.proof(&client.proof(&claims())));
        assert_eq!(
            p,
            Proven {
                jkt: client.jkt(),
                jti: "jti-1".into(),
                last_valid: NOW + 60
            }
        );
    }
    // The fully-specified JOSE name, as the npm `dpop` package sends it.
    let client = Client::ed(1);
    let header = with(client.header(), "alg", json!("Ed25519"));
    assert!(Case::bound(&client)
        .proof(&client.proof_with(&header, &claims()))
        .is_ok());
    // Media types are case-insensitive.
    let header = with(client.header(), "typ", json!("DPoP+JWT"));
    assert!(Case::bound(&client)
        .proof(&client.proof_with(&header, &claims()))
        .is_ok());
}

#[test]
fn downgrades_are_refused_both_ways() {
    let client = Client::ed(1);
    let proof = client.proof(&claims());
    let req = request("GET", vec![proof.as_bytes()]);
    let no_proof = request("GET", vec![]);
    let mut case = Case::bound(&client);
    for mode in [Mode::Allowed, Mode::Required] {
        case.settings.mode = mode;
        // A DPoP-bound token as a bearer token, with or without a proof.
        case.scheme = Scheme::Bearer;
        case.cnf_jkt = Some(client.jkt());
        for r in [&req, &no_proof] {
            assert_eq!(case.run(r).unwrap_err().reason, Reason::DpopDowngrade);
        }
    }
    // `required`: a token without cnf.jkt, whatever the scheme, with or without a proof.
    case.settings.mode = Mode::Required;
    case.cnf_jkt = None;
    for scheme in [Scheme::Bearer, Scheme::DPoP] {
        case.scheme = scheme;
        for r in [&req, &no_proof] {
            let refusal = case.run(r).unwrap_err();
            assert_eq!((refusal.reason, refusal.jkt), (Reason::DpopDowngrade, None));
        }
    }
}

#[test]
fn allowed_takes_unbound_bearer_tokens_and_disabled_ignores_dpop() {
    let client = Client::ed(1);
    let proof = client.proof(&claims());
    let mut case = Case::bound(&client);
    case.settings.mode = Mode::Allowed;
    case.scheme = Scheme::Bearer;
    case.cnf_jkt = None;
    assert_eq!(case.run(&request("GET", vec![])), Ok(Binding::Unbound));
    assert_eq!(case.proof(&proof), Ok(Binding::Unbound));
    // A DPoP-scheme token without cnf.jkt on an `allowed` provider: nothing to bind to.
    case.scheme = Scheme::DPoP;
    let refusal = case.proof(&proof).unwrap_err();
    assert_eq!(
        (refusal.reason, refusal.jkt),
        (Reason::DpopBindingMismatch, Some(client.jkt()))
    );
    case.settings.mode = Mode::Disabled;
    case.cnf_jkt = Some(client.jkt());
    case.scheme = Scheme::Bearer;
    assert_eq!(case.run(&request("GET", vec![])), Ok(Binding::Unbound));
}

#[test]
fn exactly_one_dpop_header() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    let proof = client.proof(&claims());
    assert_eq!(
        case.run(&request("GET", vec![])).unwrap_err().reason,
        Reason::MissingDpopProof
    );
    let two = request("GET", vec![proof.as_bytes(), proof.as_bytes()]);
    assert_eq!(case.run(&two).unwrap_err().reason, Reason::InvalidDpopProof);
    // Two proofs folded into one header value are not one JWS either.
    assert_eq!(
        case.reason(&format!("{proof}, {proof}")),
        Reason::InvalidDpopProof
    );
}

#[test]
fn malformed_proofs_are_invalid() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    let proof = client.proof(&claims());
    for bad in [
        String::new(),
        "not-a-jws".into(),
        proof.rsplit_once('.').unwrap().0.to_string(),
        format!("{proof}.AAAA"),
        format!("{proof}="),
        format!(" {proof}"),
    ] {
        assert_eq!(case.reason(&bad), Reason::InvalidDpopProof, "{bad}");
    }
}

#[test]
fn typ_must_be_dpop_jwt_and_no_crit() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    for header in [
        without(client.header(), "typ"),
        with(client.header(), "typ", json!("JWT")),
        with(client.header(), "typ", json!("at+jwt")),
        with(client.header(), "typ", json!(["dpop+jwt"])),
        with(client.header(), "crit", json!(["exp"])),
    ] {
        let refusal = case
            .proof(&client.proof_with(&header, &claims()))
            .unwrap_err();
        assert_eq!(
            (refusal.reason, refusal.jkt),
            (Reason::InvalidDpopProof, None),
            "{header}"
        );
    }
}

#[test]
fn alg_must_be_asymmetric_listed_and_fit_the_key() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    for alg in [
        json!("none"),
        json!("HS256"),
        json!("RS256"),
        json!("ES256"),
        json!("eddsa"),
        json!(null),
    ] {
        let header = with(client.header(), "alg", alg.clone());
        assert_eq!(
            case.reason(&client.proof_with(&header, &claims())),
            Reason::InvalidDpopProof,
            "{alg}"
        );
    }
    // Only ES256 configured: EdDSA proofs are refused, even well signed.
    let mut es_only = Case::bound(&client);
    es_only.settings.algorithms = vec![Alg::ES256];
    assert_eq!(
        es_only.reason(&client.proof(&claims())),
        Reason::InvalidDpopProof
    );
    // RS256 listed, but the jwk is an Ed25519 key: the alg must fit the key.
    let mut rs = Case::bound(&client);
    rs.settings.algorithms = vec![Alg::RS256, Alg::EdDSA];
    let header = with(client.header(), "alg", json!("RS256"));
    assert_eq!(
        rs.reason(&client.proof_with(&header, &claims())),
        Reason::InvalidDpopProof
    );
    let ec = Client::p256(2);
    let mut ed_only = Case::bound(&ec);
    ed_only.settings.algorithms = vec![Alg::EdDSA];
    assert_eq!(
        ed_only.reason(&ec.proof(&claims())),
        Reason::InvalidDpopProof
    );
    assert!(Case::bound(&ec).proof(&ec.proof(&claims())).is_ok());
}

#[test]
fn jwk_must_be_a_public_key() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    let mut private = client.jwk();
    private["d"] = json!(b64::encode(&[9; 32]));
    for jwk in [
        private,
        json!("not an object"),
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        json!({"kty": "OKP", "crv": "Ed25519"}),
    ] {
        let header = with(client.header(), "jwk", jwk.clone());
        assert_eq!(
            case.reason(&client.proof_with(&header, &claims())),
            Reason::InvalidDpopProof,
            "{jwk}"
        );
    }
    let header = without(client.header(), "jwk");
    assert_eq!(
        case.reason(&client.proof_with(&header, &claims())),
        Reason::InvalidDpopProof
    );
}

#[test]
fn signature_must_verify_with_the_jwk() {
    for client in [Client::ed(1), Client::p256(2)] {
        let case = Case::bound(&client);
        let proof = client.proof(&claims());
        let (input, sig) = proof.rsplit_once('.').unwrap();
        let mut bytes = b64::decode(sig).unwrap();
        bytes[5] ^= 1;
        let flipped = format!("{input}.{}", b64::encode(&bytes));
        // Signed by another key, but naming this one.
        let other = match client {
            Client::Ed(_) => Client::ed(9),
            Client::P256(_) => Client::p256(9),
        };
        let forged = other.proof_with(&client.header(), &claims());
        let truncated = format!("{input}.{}", b64::encode(&bytes[..63]));
        for bad in [flipped, forged, truncated] {
            let refusal = case.proof(&bad).unwrap_err();
            assert_eq!(
                (refusal.reason, refusal.jkt),
                (Reason::InvalidDpopProof, None)
            );
        }
    }
}

#[test]
fn required_claims_present_and_typed() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    let mut bad_claims: Vec<serde_json::Value> = ["jti", "htm", "htu", "iat", "ath"]
        .iter()
        .map(|c| without(claims(), c))
        .collect();
    bad_claims.extend([
        with(claims(), "iat", json!(NOW.to_string())),
        with(claims(), "iat", json!(NOW as f64 + 0.5)),
        with(claims(), "jti", json!("")),
        with(claims(), "jti", json!("j".repeat(MAX_JTI_BYTES + 1))),
        with(claims(), "jti", json!(7)),
        with(claims(), "htm", json!(["GET"])),
        with(claims(), "nonce", json!(1)),
    ]);
    for c in bad_claims {
        let refusal = case.proof(&client.proof(&c)).unwrap_err();
        assert_eq!(
            (refusal.reason, refusal.jkt),
            (Reason::InvalidDpopProof, Some(client.jkt())),
            "{c}"
        );
    }
    assert!(case
        .proof(&client.proof(&with(claims(), "jti", json!("j".repeat(MAX_JTI_BYTES)))))
        .is_ok());
}

#[test]
fn htm_must_equal_the_method() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    let proof = client.proof(&with(claims(), "htm", json!("POST")));
    assert_eq!(case.reason(&proof), Reason::DpopBindingMismatch);
    assert!(case.run(&request("POST", vec![proof.as_bytes()])).is_ok());
    let lower = client.proof(&with(claims(), "htm", json!("get")));
    assert_eq!(case.reason(&lower), Reason::DpopBindingMismatch);
}

#[test]
fn htu_must_name_the_request_uri() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    for (htu, ok) in [
        ("https://api.example/orders?id=7#x", true),
        ("HTTPS://API.EXAMPLE:443/orders", true),
        ("https://api.example/orders/7", false),
        ("https://evil.example/orders", false),
        ("http://api.example/orders", false),
        ("https://api.example:8443/orders", false),
        ("/orders", false),
    ] {
        let result = case.proof(&client.proof(&with(claims(), "htu", json!(htu))));
        match ok {
            true => assert!(result.is_ok(), "{htu}"),
            false => assert_eq!(
                result.unwrap_err().reason,
                Reason::DpopBindingMismatch,
                "{htu}"
            ),
        }
    }
    // The scheme is what the request's parts say (transcript_scheme or :scheme).
    let proof = client.proof(&claims());
    let mut plain = request("GET", vec![proof.as_bytes()]);
    plain.scheme = "http";
    assert_eq!(
        case.run(&plain).unwrap_err().reason,
        Reason::DpopBindingMismatch
    );
    let view = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        (":authority".into(), b"api.example".to_vec()),
        (":path".into(), b"/orders?page=2".to_vec()),
        ("DPoP".into(), proof.as_bytes().to_vec()),
    ]);
    assert!(case
        .run(&RequestParts::from_view(&view, Some("https")))
        .is_ok());
    assert_eq!(
        case.run(&RequestParts::from_view(&view, None))
            .unwrap_err()
            .reason,
        Reason::DpopBindingMismatch
    );
}

#[test]
fn iat_window_is_max_age_back_and_skew_forward() {
    let client = Client::ed(1);
    let case = Case::bound(&client);
    for (iat, ok) in [
        (NOW - 60, true),
        (NOW - 61, false),
        (NOW + 30, true),
        (NOW + 31, false),
        (0, false),
    ] {
        let result = case.proof(&client.proof(&with(claims(), "iat", json!(iat))));
        match ok {
            true => assert!(result.is_ok(), "{iat}"),
            false => assert_eq!(
                result.unwrap_err().reason,
                Reason::InvalidDpopProof,
                "{iat}"
            ),
        }
    }
    let mut short = Case::bound(&client);
    short.settings.max_age_seconds = 5;
    assert_eq!(
        short.reason(&client.proof(&with(claims(), "iat", json!(NOW - 6)))),
        Reason::InvalidDpopProof
    );
}

#[test]
fn ath_must_hash_the_presented_token() {
    let client = Client::ed(1);
    let mut case = Case::bound(&client);
    let proof = client.proof(&claims());
    case.token = "another.token.value";
    assert_eq!(case.reason(&proof), Reason::DpopBindingMismatch);
}

#[test]
fn cnf_jkt_must_be_the_proof_key_thumbprint() {
    let client = Client::ed(1);
    let mut case = Case::bound(&client);
    // A valid proof by another key than the token is bound to.
    case.cnf_jkt = Some(Client::ed(2).jkt());
    let refusal = case.proof(&client.proof(&claims())).unwrap_err();
    assert_eq!(
        (refusal.reason, refusal.jkt),
        (Reason::DpopBindingMismatch, Some(client.jkt()))
    );
}

#[test]
fn server_nonces_are_required_when_configured() {
    let client = Client::ed(1);
    let key = NonceKey::from_slice(&[5; 32]).unwrap();
    let mut case = Case::bound(&client);
    case.settings.nonce_rotate_seconds = Some(300);
    case.nonce_key = Some(key.clone());
    let current = key.issue("trustline", 300, NOW);

    let refusal = case.proof(&client.proof(&claims())).unwrap_err();
    assert_eq!(refusal.reason, Reason::UseDpopNonce);
    assert_eq!(refusal.nonce.as_deref(), Some(current.as_str()));
    for stale in [
        key.issue("trustline", 300, NOW - 600),
        key.issue("sentropic", 300, NOW),
        NonceKey::from_slice(&[6; 32])
            .unwrap()
            .issue("trustline", 300, NOW),
        "eyJ7S_zG.eyJH0-Z.HX4w-7v".to_string(),
    ] {
        let refusal = case
            .proof(&client.proof(&with(claims(), "nonce", json!(stale))))
            .unwrap_err();
        assert_eq!(
            (refusal.reason, refusal.nonce.as_deref()),
            (Reason::UseDpopNonce, Some(current.as_str()))
        );
    }
    for fresh in [current.clone(), key.issue("trustline", 300, NOW - 300)] {
        assert!(case
            .proof(&client.proof(&with(claims(), "nonce", json!(fresh))))
            .is_ok());
    }
    // The nonce is checked after the URI: a proof for elsewhere gets no nonce.
    let elsewhere = with(claims(), "htu", json!("https://api.example/other"));
    assert_eq!(
        case.reason(&client.proof(&elsewhere)),
        Reason::DpopBindingMismatch
    );
    // No shared secret available: fail closed, never skip the nonce.
    case.nonce_key = None;
    let with_nonce = client.proof(&with(claims(), "nonce", json!(current)));
    assert_eq!(case.reason(&with_nonce), Reason::InternalError);
}

#[test]
fn jti_is_consumed_once_per_key_until_the_proof_expires() {
    let replay = ReplayStore::new(&crate::config::replay::ReplayConfig::default());
    let mut store = MemoryStore::default();
    replay.open(&mut store).unwrap();
    let client = Client::ed(1);
    let p = proven(Case::bound(&client).proof(&client.proof(&claims())));
    assert_eq!(
        p.claim(),
        Claim {
            namespace: "dpop",
            issuer: &client.jkt(),
            id: "jti-1",
            subject: &client.jkt(),
            until: NOW + 61
        }
    );
    assert!(consume(&replay, &mut store, &p, NOW).is_ok());
    let again = consume(&replay, &mut store, &p, NOW + 1).unwrap_err();
    assert_eq!(again.reason, Reason::DpopReplay);
    assert_eq!(
        consume(&replay, &mut store, &p, p.last_valid)
            .unwrap_err()
            .reason,
        Reason::DpopReplay,
        "still remembered at the proof's last valid second"
    );
    // The same jti from another key is another proof.
    let other = Client::p256(2);
    let q = proven(Case::bound(&other).proof(&other.proof(&claims())));
    assert!(consume(&replay, &mut store, &q, NOW).is_ok());
    // Decided again at the decision: a proof that aged out while the request waited.
    let late = Proven {
        jti: "jti-late".into(),
        ..p.clone()
    };
    assert_eq!(
        consume(&replay, &mut store, &late, p.last_valid + 1)
            .unwrap_err()
            .reason,
        Reason::InvalidDpopProof
    );
    assert_eq!(
        replay_reason(crate::replay::Refusal::Full),
        Reason::ReplayStoreUnavailable
    );
}

/// RFC 9449 figure 13 (section 7.1) with the section 6.1 token binding: the published proof,
/// access token and `cnf.jkt`, checked at the proof's own `iat`.
const RFC_KEY_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const RFC_RESOURCE_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
/// RFC 9449 figures 1 and 5 (section 5): token-endpoint proofs, without `ath`.
const RFC_TOKEN_PROOFS: [&str; 2] = [
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg",
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5QsGSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA",
];

fn rfc_case(now: i64) -> Case<'static> {
    Case {
        settings: settings(Mode::Required),
        scheme: Scheme::DPoP,
        token: RFC_ACCESS_TOKEN,
        cnf_jkt: Some(RFC_KEY_JKT.into()),
        nonce_key: None,
        keys: None,
        now,
    }
}

fn rfc_resource_request(proof: &str) -> RequestParts<'_> {
    RequestParts {
        method: "GET",
        scheme: "https",
        authority: "resource.example.org",
        path: "/protectedresource",
        proofs: vec![proof.as_bytes()],
    }
}

#[test]
fn rfc9449_resource_request_example_verifies_at_its_time() {
    let case = rfc_case(1_562_262_618);
    let p = proven(case.run(&rfc_resource_request(RFC_RESOURCE_PROOF)));
    assert_eq!(
        p,
        Proven {
            jkt: RFC_KEY_JKT.into(),
            jti: "e1j3V_bKic8-LAEB".into(),
            last_valid: 1_562_262_618 + 60
        }
    );
    // A minute and a second later it is too old; another token, another method, another host
    // are mismatches; a flipped signature bit is invalid.
    assert_eq!(
        rfc_case(1_562_262_679)
            .run(&rfc_resource_request(RFC_RESOURCE_PROOF))
            .unwrap_err()
            .reason,
        Reason::InvalidDpopProof
    );
    let mut other_token = rfc_case(1_562_262_618);
    other_token.token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxV";
    assert_eq!(
        other_token
            .run(&rfc_resource_request(RFC_RESOURCE_PROOF))
            .unwrap_err()
            .reason,
        Reason::DpopBindingMismatch
    );
    let mut post = rfc_resource_request(RFC_RESOURCE_PROOF);
    post.method = "POST";
    assert_eq!(
        case.run(&post).unwrap_err().reason,
        Reason::DpopBindingMismatch
    );
    let mut host = rfc_resource_request(RFC_RESOURCE_PROOF);
    host.authority = "resource.example.com";
    assert_eq!(
        case.run(&host).unwrap_err().reason,
        Reason::DpopBindingMismatch
    );
    let tampered = RFC_RESOURCE_PROOF.replace("2oW9RP35", "2oW9RP36");
    assert_eq!(
        case.run(&rfc_resource_request(&tampered))
            .unwrap_err()
            .reason,
        Reason::InvalidDpopProof
    );
}

#[test]
fn rfc9449_token_endpoint_examples_verify_but_carry_no_ath() {
    // Their signatures verify (the refusal names the key), but a proof sent with an access
    // token must carry `ath`.
    for (proof, iat) in RFC_TOKEN_PROOFS.iter().zip([1_562_262_616, 1_562_265_296]) {
        let req = RequestParts {
            method: "POST",
            scheme: "https",
            authority: "server.example.com",
            path: "/token",
            proofs: vec![proof.as_bytes()],
        };
        let refusal = rfc_case(iat).run(&req).unwrap_err();
        assert_eq!(
            (refusal.reason, refusal.jkt.as_deref()),
            (Reason::InvalidDpopProof, Some(RFC_KEY_JKT))
        );
    }
}

#[test]
fn authorization_schemes() {
    assert_eq!(
        split_authorization("DPoP abc.def"),
        Some((Scheme::DPoP, "abc.def"))
    );
    assert_eq!(split_authorization("dpop abc"), Some((Scheme::DPoP, "abc")));
    assert_eq!(
        split_authorization("Bearer abc"),
        Some((Scheme::Bearer, "abc"))
    );
    assert_eq!(
        split_authorization("BEARER abc"),
        Some((Scheme::Bearer, "abc"))
    );
    for bad in [
        "DPoP",
        "DPoP ",
        "DPoP  abc",
        "DPoP a b",
        "Basic abc",
        "DPoPabc",
        "DPoP a\tb",
    ] {
        assert_eq!(split_authorization(bad), None, "{bad}");
    }
}

/// Seeded random mutations of a valid proof (byte flips, truncations, insertions) are all
/// refused, and none panics.
#[test]
fn mutated_proofs_are_always_refused() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for client in [Client::ed(1), Client::p256(2)] {
        let case = Case::bound(&client);
        let proof = client.proof(&claims());
        let replay_free = case.proof(&proof);
        assert!(replay_free.is_ok());
        // The same mutations against a VM that already knows the key, with its table.
        let cache = core::cell::RefCell::new(key::KeyCache::default());
        let cached = Case {
            keys: Some(&cache),
            ..Case::bound(&client)
        };
        assert!(cached.proof(&proof).is_ok() && cached.proof(&proof).is_ok());
        if matches!(client, Client::Ed(_)) {
            assert_eq!(cache.borrow().counts(), (1, 1), "cached, with its table");
        }
        let bytes = proof.as_bytes();
        for _ in 0..1500 {
            let mut m = bytes.to_vec();
            let at = (next() % m.len() as u64) as usize;
            match next() % 3 {
                0 => m[at] = b"AZaz09-_.=+/ "[(next() % 13) as usize],
                1 => m.truncate(at),
                _ => m.insert(at, b"A.-_"[(next() % 4) as usize]),
            }
            if m == bytes {
                continue;
            }
            for c in [&case, &cached] {
                let result = c.run(&request("GET", vec![&m]));
                assert!(
                    result.is_err(),
                    "mutation accepted: {}",
                    String::from_utf8_lossy(&m)
                );
            }
        }
    }
}

/// Only a key whose proof passed every check is cached; a cached key is held to every rule of
/// the proof again (its signature, its binding), and gets its table on its second proof.
#[test]
fn only_proven_keys_are_cached_and_they_are_checked_as_before() {
    let client = Client::ed(1);
    let cache = core::cell::RefCell::new(key::KeyCache::default());
    let with_cache = |cnf: Option<String>| Case {
        keys: Some(&cache),
        cnf_jkt: cnf,
        ..Case::bound(&client)
    };
    // Bound to another key: the signature verified, the binding did not; nothing is kept.
    let other = Client::ed(9);
    let wrong = with_cache(Some(other.jkt()));
    assert_eq!(
        wrong.reason(&client.proof(&claims())),
        Reason::DpopBindingMismatch
    );
    assert_eq!(cache.borrow().counts(), (0, 0));
    // Proven once: kept without a table; twice: with one.
    let right = with_cache(Some(client.jkt()));
    assert!(right.proof(&client.proof(&claims())).is_ok());
    assert_eq!(cache.borrow().counts(), (1, 0));
    assert!(right.proof(&client.proof(&claims())).is_ok());
    assert_eq!(cache.borrow().counts(), (1, 1));
    // The cached key still refuses what it refused before.
    assert_eq!(
        wrong.reason(&client.proof(&claims())),
        Reason::DpopBindingMismatch
    );
    let forged = client.proof(&claims());
    let (head, _) = forged.rsplit_once('.').unwrap();
    let zero_sig = format!("{head}.{}", b64::encode(&[0u8; 64]));
    assert_eq!(right.reason(&zero_sig), Reason::InvalidDpopProof);
    let private = with(client.jwk(), "d", json!(b64::encode(&[1u8; 32])));
    let header = with(client.header(), "jwk", private);
    assert_eq!(
        right.reason(&client.proof_with(&header, &claims())),
        Reason::InvalidDpopProof
    );
}

/// At most `CAPACITY` keys, the least recently used leaving first.
#[test]
fn the_key_cache_keeps_the_most_recently_used_keys() {
    let mut cache = key::KeyCache::default();
    let keys: Vec<crate::crypto::VerifyingKey> = (1..=key::KeyCache::CAPACITY as u8 + 1)
        .map(|seed| {
            let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
            crate::crypto::VerifyingKey::from_bytes(&kp.pk.as_ref().try_into().unwrap()).unwrap()
        })
        .collect();
    for k in &keys[..key::KeyCache::CAPACITY] {
        cache.proven(k);
    }
    // The first key is used again, so the second is now the least recently used.
    assert!(cache.get(keys[0].as_bytes()).is_some());
    cache.proven(&keys[key::KeyCache::CAPACITY]);
    assert_eq!(cache.counts(), (key::KeyCache::CAPACITY, 0));
    assert!(cache.get(keys[1].as_bytes()).is_none());
    assert!(cache.get(keys[0].as_bytes()).is_some());
    assert!(cache
        .get(keys[key::KeyCache::CAPACITY].as_bytes())
        .is_some());
}
