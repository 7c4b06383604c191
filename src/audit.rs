//! `trustplane-auth-audit-event-v0.1` (DESIGN.md section 8): one JSON object per decision,
//! logged on one line after the prefix `proofgate.audit `. Built only from [`Facts`], which never
//! hold a token, proof or key, so none can leak into a log. `issuer`, `subject` and `jti` are
//! verified facts; text read from a credential that failed before its signature verified goes
//! only to `unverified_*` fields, escaped and bounded. JSON escaping keeps the event on one line.

use crate::decision::Facts;
use crate::event_id::EventId;
use crate::reason::Reason;
use crate::rfc3339;
use serde::Serialize;

pub const LOG_PREFIX: &str = "proofgate.audit ";

/// The event's fields, in schema order; optional ones are left out when unknown.
#[derive(Serialize)]
struct Event<'a> {
    version: &'static str,
    occurred_at: String,
    component: &'static str,
    outcome: &'static str,
    accepted: bool,
    reason_code: &'static str,
    detail_reason: &'static str,
    event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_binding: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_key_binding: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_version: Option<&'a str>,
    // Read from a credential refused before its signature verified: escaped and bounded, never
    // in `issuer` / `subject` / `jti`.
    #[serde(skip_serializing_if = "Option::is_none")]
    unverified_issuer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unverified_subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unverified_jti: Option<&'a str>,
    /// The DPoP proof key's thumbprint (DESIGN.md section 14): never the proof itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_jkt: Option<&'a str>,
    /// The JWT provider that verified a bearer token, and its `scope` (section 13).
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<&'a str>,
}

/// The audit line (prefix included) for a decision: `None` reason means allow.
pub fn line(
    reason: Option<Reason>,
    facts: &Facts,
    event_id: &EventId,
    request_id: Option<&str>,
    policy_version: Option<&str>,
    now: i64,
) -> String {
    let event = Event {
        version: "trustplane-auth-audit-event-v0.1",
        occurred_at: rfc3339::format_utc(now),
        component: "adapter",
        outcome: if reason.is_none() { "allow" } else { "deny" },
        accepted: reason.is_none(),
        reason_code: reason.map_or("allowed", Reason::code),
        detail_reason: match reason {
            Some(r) => facts.deny_detail.unwrap_or(r.code()),
            None => facts.allow_detail.unwrap_or("verified"),
        },
        event_id: event_id.to_string(),
        request_id,
        route_id: facts.route_id.as_deref(),
        audience: facts.audience.as_deref(),
        issuer: facts.issuer.as_deref(),
        subject: facts.subject.as_deref(),
        jti: facts.jti.as_deref(),
        key_binding: facts.key_binding.as_deref(),
        required_key_binding: facts.required_key_binding.as_deref(),
        transcript_sha256: facts.transcript_sha256.as_deref(),
        policy_version,
        unverified_issuer: facts.unverified.issuer.as_deref(),
        unverified_subject: facts.unverified.subject.as_deref(),
        unverified_jti: facts.unverified.jti.as_deref(),
        dpop_jkt: facts.dpop_jkt.as_deref(),
        provider: facts.provider.as_deref(),
        scopes: facts.scopes.as_deref(),
    };
    let mut out = String::from(LOG_PREFIX);
    // Serialising borrowed strings and plain values cannot fail; keep the prefix-only line if
    // it somehow does, rather than panic.
    if let Ok(json) = serde_json::to_string(&event) {
        out.push_str(&json);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
        assert!(v.get("dpop_jkt").is_none());
        assert!(v.get("subject").is_none());
        assert!(!l.contains('\n'));

        let l = line(
            None,
            &Facts {
                allow_detail: Some("exempt_route"),
                dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
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
        assert_eq!(v["dpop_jkt"], "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    }
}
