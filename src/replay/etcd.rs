//! etcd v3 wire formats for the cluster-wide replay store (DESIGN.md section 15): the few
//! `etcdserverpb` messages proofgate sends and reads, encoded by `prost`, and the same requests
//! and answers as the `/v3/...` JSON gateway speaks them (int64 as decimal strings, bytes as
//! base64, and default values, such as `"succeeded": false`, omitted).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use prost::Message;
use serde_json::{json, Value};

/// `etcdserverpb.Compare` (only the fields proofgate sets).
#[derive(Clone, PartialEq, Message)]
pub struct Compare {
    /// `CompareResult`: EQUAL = 0.
    #[prost(int32, tag = "1")]
    pub result: i32,
    /// `CompareTarget`: CREATE = 1.
    #[prost(int32, tag = "2")]
    pub target: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    /// `target_union.create_revision`.
    #[prost(int64, optional, tag = "5")]
    pub create_revision: Option<i64>,
}

/// `etcdserverpb.PutRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub lease: i64,
}

/// `etcdserverpb.RequestOp` with its `request_put` member.
#[derive(Clone, PartialEq, Message)]
pub struct RequestOp {
    #[prost(message, optional, tag = "2")]
    pub request_put: Option<PutRequest>,
}

/// `etcdserverpb.TxnRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct TxnRequest {
    #[prost(message, repeated, tag = "1")]
    pub compare: Vec<Compare>,
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<RequestOp>,
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<RequestOp>,
}

/// `etcdserverpb.ResponseHeader`.
#[derive(Clone, PartialEq, Message)]
pub struct ResponseHeader {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    #[prost(int64, tag = "3")]
    pub revision: i64,
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// `etcdserverpb.TxnResponse` (its `responses` are not needed and skipped).
#[derive(Clone, PartialEq, Message)]
pub struct TxnResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(bool, tag = "2")]
    pub succeeded: bool,
}

/// `etcdserverpb.LeaseGrantRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct LeaseGrantRequest {
    #[prost(int64, tag = "1")]
    pub ttl: i64,
    #[prost(int64, tag = "2")]
    pub id: i64,
}

/// `etcdserverpb.LeaseGrantResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct LeaseGrantResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(int64, tag = "2")]
    pub id: i64,
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    #[prost(string, tag = "4")]
    pub error: String,
}

/// `envoy.config.core.v3.GrpcService` with `envoy_grpc.cluster_name`: handed to
/// `proxy_dispatch_grpc_call` as a proto, because Envoy reads a bare cluster name only when the
/// name happens not to parse as one.
#[derive(Clone, PartialEq, Message)]
pub struct GrpcService {
    #[prost(message, optional, tag = "1")]
    pub envoy_grpc: Option<EnvoyGrpc>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EnvoyGrpc {
    #[prost(string, tag = "1")]
    pub cluster_name: String,
}

pub const KV_SERVICE: &str = "etcdserverpb.KV";
pub const LEASE_SERVICE: &str = "etcdserverpb.Lease";
pub const TXN_PATH: &str = "/v3/kv/txn";
pub const LEASE_GRANT_PATH: &str = "/v3/lease/grant";
/// gRPC status NOT_FOUND, which etcd answers for a lease it does not know.
pub const GRPC_NOT_FOUND: u32 = 5;
const LEASE_NOT_FOUND: &str = "requested lease not found";

/// The serialized `GrpcService` for an Envoy cluster.
pub fn grpc_service(cluster: &str) -> Vec<u8> {
    GrpcService {
        envoy_grpc: Some(EnvoyGrpc {
            cluster_name: cluster.to_string(),
        }),
    }
    .encode_to_vec()
}

/// "Put `key` = `value` with `lease` if `key` was never created".
pub fn txn_request(key: &[u8], value: &[u8], lease: i64) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: 0,
            target: 1,
            key: key.to_vec(),
            create_revision: Some(0),
        }],
        success: vec![RequestOp {
            request_put: Some(PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                lease,
            }),
        }],
        failure: vec![],
    }
}

/// The same transaction as the JSON gateway takes it.
pub fn txn_json(key: &[u8], value: &[u8], lease: i64) -> Vec<u8> {
    let key = STANDARD.encode(key);
    json!({
        "compare": [{"result": "EQUAL", "target": "CREATE", "key": key, "create_revision": "0"}],
        "success": [{"request_put": {"key": key, "value": STANDARD.encode(value),
                                     "lease": lease.to_string()}}],
    })
    .to_string()
    .into_bytes()
}

pub fn lease_grant_json(ttl: i64) -> Vec<u8> {
    json!({"TTL": ttl.to_string(), "ID": "0"})
        .to_string()
        .into_bytes()
}

/// What an answer from etcd means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The transaction's compare held: the key is now ours.
    Created,
    /// The compare failed: the key already existed.
    Exists,
    /// A lease granted, with its id.
    Lease(i64),
    /// The lease the put named is unknown to etcd (expired or revoked): grant another.
    LeaseNotFound,
    /// Anything else: etcd or the path to it failed; the text is for the log.
    Failed(&'static str),
}

/// A gRPC unary answer: `status` is the grpc-status (0 = OK), `message` the response body.
pub fn grpc_txn_answer(status: u32, status_message: &str, message: &[u8]) -> Answer {
    match status {
        0 => match TxnResponse::decode(message) {
            Ok(r) if r.header.is_some() => {
                if r.succeeded {
                    Answer::Created
                } else {
                    Answer::Exists
                }
            }
            _ => Answer::Failed("malformed TxnResponse"),
        },
        GRPC_NOT_FOUND if status_message.contains(LEASE_NOT_FOUND) => Answer::LeaseNotFound,
        _ => Answer::Failed("etcd Txn failed"),
    }
}

pub fn grpc_lease_answer(status: u32, message: &[u8]) -> Answer {
    match (status, LeaseGrantResponse::decode(message)) {
        (0, Ok(r)) if r.header.is_some() && r.error.is_empty() && r.id != 0 => Answer::Lease(r.id),
        (0, _) => Answer::Failed("malformed LeaseGrantResponse"),
        _ => Answer::Failed("etcd LeaseGrant failed"),
    }
}

fn json_int(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A JSON gateway answer to `/v3/kv/txn`: HTTP status and body.
pub fn http_txn_answer(status: u32, body: &[u8]) -> Answer {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Answer::Failed("etcd txn answer is not JSON");
    };
    if status == 200 && v.get("header").is_some_and(Value::is_object) {
        return match v.get("succeeded") {
            Some(Value::Bool(true)) => Answer::Created,
            // The gateway omits `succeeded` when it is false.
            None | Some(Value::Bool(false)) => Answer::Exists,
            Some(_) => Answer::Failed("malformed txn answer"),
        };
    }
    let message = v.get("error").or_else(|| v.get("message"));
    if message
        .and_then(Value::as_str)
        .is_some_and(|m| m.contains(LEASE_NOT_FOUND))
    {
        return Answer::LeaseNotFound;
    }
    Answer::Failed("etcd txn failed")
}

pub fn http_lease_answer(status: u32, body: &[u8]) -> Answer {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Answer::Failed("etcd lease answer is not JSON");
    };
    match (status, v.get("ID").and_then(json_int)) {
        (200, Some(id)) if id != 0 && v.get("error").is_none() => Answer::Lease(id),
        (200, _) => Answer::Failed("malformed lease answer"),
        _ => Answer::Failed("etcd lease grant failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_request_bytes() {
        let bytes = txn_request(b"k", b"v", 7).encode_to_vec();
        assert_eq!(
            bytes,
            [
                0x0a, 0x07, 0x10, 0x01, 0x1a, 0x01, b'k', 0x28, 0x00, // compare CREATE == 0
                0x12, 0x0a, 0x12, 0x08, 0x0a, 0x01, b'k', 0x12, 0x01, b'v', 0x18, 0x07 // put
            ]
        );
        assert_eq!(
            LeaseGrantRequest { ttl: 60, id: 0 }.encode_to_vec(),
            [0x08, 60]
        );
        assert_eq!(
            grpc_service("etcd"),
            [0x0a, 0x06, 0x0a, 0x04, b'e', b't', b'c', b'd']
        );
    }

    #[test]
    fn grpc_answers() {
        let header = [0x0a, 0x04, 0x08, 0x01, 0x18, 0x05];
        let mut created = header.to_vec();
        created.extend_from_slice(&[0x10, 0x01]);
        assert_eq!(grpc_txn_answer(0, "", &created), Answer::Created);
        assert_eq!(grpc_txn_answer(0, "", &header), Answer::Exists);
        assert!(matches!(grpc_txn_answer(0, "", &[]), Answer::Failed(_)));
        assert!(matches!(grpc_txn_answer(0, "", &[0xff]), Answer::Failed(_)));
        assert_eq!(
            grpc_txn_answer(5, "etcdserver: requested lease not found", &[]),
            Answer::LeaseNotFound
        );
        assert!(matches!(
            grpc_txn_answer(14, "etcdserver: no leader", &[]),
            Answer::Failed(_)
        ));
        assert!(matches!(
            grpc_txn_answer(5, "something else", &[]),
            Answer::Failed(_)
        ));
        let mut lease = header.to_vec();
        lease.extend_from_slice(&[0x10, 0x2a, 0x18, 0x3c]);
        assert_eq!(grpc_lease_answer(0, &lease), Answer::Lease(42));
        assert!(matches!(grpc_lease_answer(0, &header), Answer::Failed(_)));
        let mut refused = lease.clone();
        refused.extend_from_slice(&[0x22, 0x01, b'x']);
        assert!(matches!(grpc_lease_answer(0, &refused), Answer::Failed(_)));
        assert!(matches!(grpc_lease_answer(4, &lease), Answer::Failed(_)));
    }

    #[test]
    fn json_gateway_requests_and_answers() {
        let txn: Value = serde_json::from_slice(&txn_json(b"k", b"v", 7)).unwrap();
        assert_eq!(
            txn,
            json!({"compare": [{"result": "EQUAL", "target": "CREATE", "key": "aw==",
                                "create_revision": "0"}],
                   "success": [{"request_put": {"key": "aw==", "value": "dg==", "lease": "7"}}]})
        );
        assert_eq!(lease_grant_json(60), br#"{"ID":"0","TTL":"60"}"#);
        let header =
            r#""header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"2"}"#;
        let ok = format!(r#"{{{header},"succeeded":true,"responses":[{{"response_put":{{}}}}]}}"#);
        assert_eq!(http_txn_answer(200, ok.as_bytes()), Answer::Created);
        // The gateway leaves `succeeded` out when the compare failed.
        assert_eq!(
            http_txn_answer(200, format!("{{{header}}}").as_bytes()),
            Answer::Exists
        );
        assert!(matches!(http_txn_answer(200, b"{}"), Answer::Failed(_)));
        assert!(matches!(http_txn_answer(200, b"<html>"), Answer::Failed(_)));
        assert!(matches!(
            http_txn_answer(200, format!(r#"{{{header},"succeeded":"yes"}}"#).as_bytes()),
            Answer::Failed(_)
        ));
        let lost = br#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;
        assert_eq!(http_txn_answer(404, lost), Answer::LeaseNotFound);
        let no_leader = br#"{"error":"etcdserver: no leader","code":14}"#;
        assert!(matches!(http_txn_answer(503, no_leader), Answer::Failed(_)));
        let grant = format!(r#"{{{header},"ID":"7587862072794519817","TTL":"60"}}"#);
        assert_eq!(
            http_lease_answer(200, grant.as_bytes()),
            Answer::Lease(7_587_862_072_794_519_817)
        );
        assert!(matches!(
            http_lease_answer(200, format!("{{{header}}}").as_bytes()),
            Answer::Failed(_)
        ));
        assert!(matches!(
            http_lease_answer(503, grant.as_bytes()),
            Answer::Failed(_)
        ));
    }
}
