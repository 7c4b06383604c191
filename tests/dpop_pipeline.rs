//! DPoP through the whole pipeline (DESIGN.md sections 11, 13, 14): a provider route with a
//! bound token and a proof passes the headers, its proof `jti` is consumed at the decision, and
//! what is decided again there (replay, the proof's age) answers with the DPoP challenge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_compact::{KeyPair, Seed};
use proofgate::b64;
use proofgate::config::Config;
use proofgate::decision::{deny_response, Denial};
use proofgate::dpop::key::access_token_hash;
use proofgate::event_id::EventId;
use proofgate::reason::Reason;
use proofgate::replay::cluster::{etcd_key, ClusterConsume, Reply, Step};
use proofgate::replay::MemoryStore;
use proofgate::request::RequestView;
use proofgate::verify::{Engine, HeadersVerdict, Pending};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;
const URL: &str = "https://api.example/orders";

fn jws(header: &Value, claims: &Value, key: &KeyPair) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = key.sk.sign(input.as_bytes(), None);
    format!("{input}.{}", b64::encode(&sig[..]))
}

/// RFC 8037 appendix A.1's test key signs the tokens; the client key is seeded.
fn issuer() -> KeyPair {
    let d = b64::decode_array::<32>("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap();
    KeyPair::from_seed(Seed::new(d))
}

fn client() -> (KeyPair, Value) {
    let kp = KeyPair::from_seed(Seed::new([3; 32]));
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(&kp.pk[..])});
    (kp, jwk)
}

fn engine() -> Engine {
    let cfg = json!({
        "transcript_scheme": "https",
        "jwt_providers": [{"name": "trustline", "issuer": "https://auth.internal",
            "keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
                      "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}],
            "dpop": "required"}],
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "trustline"}}]
    });
    Engine::new(Config::parse(cfg.to_string().as_bytes()).unwrap(), NOW)
}

fn request(token: &str, proof: &str) -> RequestView {
    let h = |n: &str, v: &str| (n.to_string(), v.as_bytes().to_vec());
    RequestView::new(vec![
        h(":method", "GET"),
        h(":scheme", "http"),
        h(":authority", "api.example"),
        h(":path", "/orders?page=1"),
        h("authorization", &format!("DPoP {token}")),
        h("dpop", proof),
    ])
}

fn bound_request(jti: &str) -> RequestView {
    bound_request_until(jti, NOW + 600)
}

/// A bound request whose token expires at `exp`.
fn bound_request_until(jti: &str, exp: i64) -> RequestView {
    let (kp, jwk) = client();
    let jkt = proofgate::dpop::key::ProofKey::from_jwk(jwk.as_object().unwrap())
        .unwrap()
        .1;
    let token = jws(
        &json!({"alg": "EdDSA", "kid": "k1"}),
        &json!({"iss": "https://auth.internal", "sub": "svc", "exp": exp,
                "cnf": {"jkt": jkt}}),
        &issuer(),
    );
    let proof = jws(
        &json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk}),
        &json!({"jti": jti, "htm": "GET", "htu": URL, "iat": NOW,
                "ath": access_token_hash(&token)}),
        &kp,
    );
    request(&token, &proof)
}

fn pending(e: &Engine, req: &RequestView) -> Pending {
    match e.check_headers(req, NOW) {
        HeadersVerdict::NeedBody(p) => *p,
        other => panic!("headers refused: {other:?}"),
    }
}

fn challenge(d: &Denial) -> Vec<String> {
    deny_response(d, &EventId::from_bytes([1; 16]))
        .headers
        .into_iter()
        .filter(|(n, _)| *n == "www-authenticate")
        .map(|(_, v)| v)
        .collect()
}

const INVALID_PROOF: &str = "DPoP error=\"invalid_dpop_proof\", algs=\"EdDSA ES256\"";

#[test]
fn proof_jti_is_consumed_at_the_decision_and_a_replay_gets_the_dpop_challenge() {
    let e = engine();
    let mut store = MemoryStore::default();
    let req = bound_request("jti-a");
    let p = pending(&e, &req);
    assert_eq!(p.valid_until, NOW + 61);
    assert_eq!(p.expired, Reason::InvalidDpopProof);
    let admitted = e.check_body(p, b"", &mut store, NOW).unwrap();
    assert_eq!(admitted.facts.strip_headers, ["authorization", "dpop"]);
    assert!(admitted.facts.dpop_jkt.is_some());

    // The same request again passes the headers (a replay is decided at the decision).
    let again = e.check_body(pending(&e, &req), b"", &mut store, NOW + 1);
    let denial = again.unwrap_err();
    assert_eq!(denial.reason, Reason::DpopReplay);
    assert_eq!(challenge(&denial), [INVALID_PROOF]);
}

#[test]
fn a_proof_that_ages_out_while_the_request_waits_is_refused_at_the_decision() {
    let e = engine();
    let mut store = MemoryStore::default();
    let p = pending(&e, &bound_request("jti-b"));
    let denial = e.check_body(p, b"", &mut store, NOW + 61).unwrap_err();
    assert_eq!(denial.reason, Reason::InvalidDpopProof);
    assert_eq!(challenge(&denial), [INVALID_PROOF]);
    // And its jti was not consumed: the store refused nothing, it was never asked.
    let fresh = pending(&e, &bound_request("jti-b"));
    assert!(e.check_body(fresh, b"", &mut store, NOW + 1).is_ok());
}

#[test]
fn refusals_on_the_headers_carry_the_dpop_challenge() {
    let e = engine();
    let req = bound_request("jti-c");
    let mut headers = req.headers.clone();
    headers.retain(|(n, _)| n != "dpop");
    match e.check_headers(&RequestView::new(headers), NOW) {
        HeadersVerdict::Deny(d) => {
            assert_eq!(d.reason, Reason::MissingDpopProof);
            assert_eq!(challenge(&d), [INVALID_PROOF]);
        }
        other => panic!("{other:?}"),
    }
}

/// The engine of [`engine`] with the cluster-wide replay store (DESIGN.md section 15).
fn cluster_engine() -> Engine {
    let cfg = json!({
        "transcript_scheme": "https",
        "jwt_providers": [{"name": "trustline", "issuer": "https://auth.internal",
            "keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
                      "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}],
            "dpop": "required"}],
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "trustline"}}],
        "replay": {"cluster": {"backend": "etcd", "cluster": "etcd", "protocol": "http",
                               "key_prefix": "pg/"}}
    });
    Engine::new(Config::parse(cfg.to_string().as_bytes()).unwrap(), NOW)
}

fn client_jkt() -> String {
    proofgate::dpop::key::ProofKey::from_jwk(client().1.as_object().unwrap())
        .unwrap()
        .1
}

#[test]
fn with_a_cluster_store_the_proof_jti_is_claimed_in_etcd_and_its_replay_is_dpop_replay() {
    let e = cluster_engine();
    let cfg = e.config.replay.cluster.clone().unwrap();
    let mut store = MemoryStore::default();
    let admitted = e
        .check_body(
            pending(&e, &bound_request("jti-etcd")),
            b"",
            &mut store,
            NOW,
        )
        .unwrap();
    // One key for the cluster: the proof's jti, per proof key, until just after its last second.
    assert_eq!(admitted.cluster.len(), 1, "{:?}", admitted.cluster);
    let key = &admitted.cluster[0];
    let jkt = client_jkt();
    assert_eq!(
        (
            key.namespace,
            key.issuer.as_str(),
            key.id.as_str(),
            key.until
        ),
        ("dpop", jkt.as_str(), "jti-etcd", NOW + 61)
    );
    assert_eq!(key.replay, Reason::DpopReplay);

    // What goes to etcd: a lease for the window, then the put of the proof's key.
    let etcd_key = etcd_key(&cfg.key_prefix, &key.claim());
    assert!(etcd_key.starts_with(b"pg/dpop/"));
    let (mut consume, step) = ClusterConsume::start(&cfg, &key.claim(), &mut store, NOW);
    match step {
        Step::Send(call) => assert_eq!(call.method, "LeaseGrant"),
        other => panic!("{other:?}"),
    }
    let granted = Reply::Http {
        status: 200,
        body: br#"{"header":{},"ID":"7","TTL":"80"}"#,
    };
    match consume.on_reply(granted, &mut store, NOW) {
        Step::Send(call) => {
            let body: Value = serde_json::from_slice(&call.body).unwrap();
            let put = &body["success"][0]["request_put"];
            assert_eq!(put["key"], STANDARD.encode(&etcd_key));
            assert_eq!(put["lease"], "7");
            assert_eq!(body["compare"][0]["key"], STANDARD.encode(&etcd_key));
        }
        other => panic!("{other:?}"),
    }
    // etcd already holds it (the JSON gateway omits "succeeded" on a failed compare).
    let held = Reply::Http {
        status: 200,
        body: br#"{"header":{}}"#,
    };
    assert_eq!(consume.on_reply(held, &mut store, NOW), Step::Replay);
    let denial = admitted.refused(Reason::DpopReplay, Some(0));
    assert_eq!(denial.reason, Reason::DpopReplay);
    assert_eq!(challenge(&denial), [INVALID_PROOF]);
}

#[test]
fn a_proof_that_ages_out_during_the_etcd_round_trip_is_refused_with_the_dpop_challenge() {
    let e = cluster_engine();
    let mut store = MemoryStore::default();
    let admitted = e
        .check_body(
            pending(&e, &bound_request("jti-slow")),
            b"",
            &mut store,
            NOW,
        )
        .unwrap();
    assert_eq!(admitted.recheck(NOW + 60), Ok(()));
    assert_eq!(admitted.recheck(NOW + 61), Err(Reason::InvalidDpopProof));
    let denial = admitted.refused(Reason::InvalidDpopProof, None);
    assert_eq!(denial.reason, Reason::InvalidDpopProof);
    assert_eq!(challenge(&denial), [INVALID_PROOF]);
}

#[test]
fn an_etcd_failure_is_a_503_without_a_dpop_challenge() {
    let e = cluster_engine();
    let mut store = MemoryStore::default();
    let admitted = e
        .check_body(
            pending(&e, &bound_request("jti-down")),
            b"",
            &mut store,
            NOW,
        )
        .unwrap();
    let denial = admitted.refused(Reason::ReplayStoreUnavailable, Some(0));
    assert_eq!(
        deny_response(&denial, &EventId::from_bytes([1; 16])).status,
        503
    );
    assert!(challenge(&denial).is_empty());
}

const INVALID_TOKEN: &str = "DPoP error=\"invalid_token\", algs=\"EdDSA ES256\"";

/// A DPoP-bound token that expires while its request waits (for its body, or for etcd) is
/// `token_expired` with the provider's DPoP challenge, as it is on the headers.
#[test]
fn a_dpop_token_that_expires_while_its_request_waits_gets_the_dpop_challenge() {
    // exp + 30 s of skew = NOW + 40, before the proof's last second (NOW + 60).
    for e in [engine(), cluster_engine()] {
        let mut store = MemoryStore::default();
        let p = pending(&e, &bound_request_until("jti-exp", NOW + 10));
        assert_eq!((p.valid_until, p.expired), (NOW + 40, Reason::TokenExpired));
        let denial = e.check_body(p, b"", &mut store, NOW + 40).unwrap_err();
        assert_eq!(denial.reason, Reason::TokenExpired);
        assert_eq!(challenge(&denial), [INVALID_TOKEN]);
        // Admitted in time, then etcd answers too late.
        let p = pending(&e, &bound_request_until("jti-exp2", NOW + 10));
        let admitted = e.check_body(p, b"", &mut store, NOW + 39).unwrap();
        assert_eq!(admitted.recheck(NOW + 40), Err(Reason::TokenExpired));
        let denial = admitted.refused(Reason::TokenExpired, None);
        assert_eq!(challenge(&denial), [INVALID_TOKEN]);
    }
}
