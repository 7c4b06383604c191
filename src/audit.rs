//! `trustplane-auth-audit-event-v0.1` (DESIGN.md section 8): one JSON object per decision,
//! logged on one line after the prefix `proofgate.audit `. Built only from [`Facts`], which never
//! hold a token, proof or key, so none can leak into a log.

use crate::decision::Facts;
use crate::event_id::EventId;
use crate::reason::Reason;
use crate::rfc3339;
use serde_json::{Map, Value};

pub const LOG_PREFIX: &str = "proofgate.audit ";

/// The audit line (prefix included) for a decision: `None` reason means allow.
pub fn line(
    reason: Option<Reason>,
    facts: &Facts,
    event_id: &EventId,
    request_id: Option<&str>,
    policy_version: Option<&str>,
    now: i64,
) -> String {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("version", "trustplane-auth-audit-event-v0.1".into());
    put("occurred_at", rfc3339::format_utc(now).into());
    put("component", "adapter".into());
    put(
        "outcome",
        if reason.is_none() { "allow" } else { "deny" }.into(),
    );
    put("accepted", reason.is_none().into());
    put("reason_code", reason.map_or("allowed", Reason::code).into());
    put(
        "detail_reason",
        match reason {
            Some(r) => r.code(),
            None => facts.allow_detail.unwrap_or("verified"),
        }
        .into(),
    );
    put("event_id", event_id.to_string().into());
    let optional = [
        ("request_id", request_id.map(str::to_string)),
        ("route_id", facts.route_id.clone()),
        ("audience", facts.audience.clone()),
        ("issuer", facts.issuer.clone()),
        ("subject", facts.subject.clone()),
        ("jti", facts.jti.clone()),
        ("key_binding", facts.key_binding.clone()),
        ("required_key_binding", facts.required_key_binding.clone()),
        ("transcript_sha256", facts.transcript_sha256.clone()),
        ("policy_version", policy_version.map(str::to_string)),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            put(k, v.into());
        }
    }
    format!("{LOG_PREFIX}{}", Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_and_allow_lines_parse_with_required_fields() {
        let id = EventId::from_bytes([7; 16]);
        let facts = Facts {
            route_id: Some("orders.create".into()),
            jti: Some("j\"1".into()),
            ..Facts::default()
        };
        let l = line(
            Some(Reason::JtiReplay),
            &facts,
            &id,
            Some("req-1"),
            None,
            1_750_000_000,
        );
        let v: Value = serde_json::from_str(l.strip_prefix(LOG_PREFIX).unwrap()).unwrap();
        assert_eq!(v["version"], "trustplane-auth-audit-event-v0.1");
        assert_eq!(v["occurred_at"], "2025-06-15T15:06:40Z");
        assert_eq!(v["component"], "adapter");
        assert_eq!(v["outcome"], "deny");
        assert_eq!(v["accepted"], false);
        assert_eq!(v["reason_code"], "jti_replay");
        assert_eq!(v["detail_reason"], "jti_replay");
        assert_eq!(v["event_id"], "07".repeat(16));
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["jti"], "j\"1");
        assert!(v.get("subject").is_none());
        assert!(!l.contains('\n'));

        let l = line(
            None,
            &Facts {
                allow_detail: Some("exempt_route"),
                ..Facts::default()
            },
            &id,
            None,
            Some("p7"),
            0,
        );
        let v: Value = serde_json::from_str(l.strip_prefix(LOG_PREFIX).unwrap()).unwrap();
        assert_eq!(
            (v["outcome"].as_str(), v["accepted"].as_bool()),
            (Some("allow"), Some(true))
        );
        assert_eq!(
            (v["reason_code"].as_str(), v["detail_reason"].as_str()),
            (Some("allowed"), Some("exempt_route"))
        );
        assert_eq!(v["policy_version"], "p7");
    }
}
