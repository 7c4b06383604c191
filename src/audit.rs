//! `trustplane-auth-audit-event-v0.1` (DESIGN.md section 8): one JSON object per decision,
//! logged on one line after the prefix `proofgate.audit `. Built only from [`Facts`], which never
//! hold a token, proof or key, so none can leak into a log. `issuer`, `subject` and `jti` are
//! verified facts; text read from a credential that failed before its signature verified goes
//! only to `unverified_*` fields, escaped and bounded. JSON escaping keeps the event on one line.

use crate::decision::Facts;
use crate::event_id::EventId;
use crate::reason::Reason;
use crate::rfc3339;

pub const LOG_PREFIX: &str = "proofgate.audit ";

/// The audit line (prefix included) for a decision: `None` reason means allow.
///
/// Written field by field rather than through `serde_json` (issue 12: 12,259 → 4,218 instructions
/// per allow line natively, `bench/callgrind-audit.sh`); the output is byte-for-byte what
/// `serde_json::to_string` of the event struct gives (the test `matches_serde_json_byte_for_byte`
/// keeps the two equal): fields in schema order, optional ones left out when unknown, strings
/// escaped as JSON so the event stays on one line.
pub fn line(
    reason: Option<Reason>,
    facts: &Facts,
    event_id: &EventId,
    request_id: Option<&str>,
    policy_version: Option<&str>,
    now: i64,
) -> String {
    let mut out = String::with_capacity(LOG_PREFIX.len() + 768);
    out.push_str(LOG_PREFIX);
    out.push_str("{\"version\":\"trustplane-auth-audit-event-v0.1\"");
    field(&mut out, "occurred_at", &rfc3339::format_utc(now));
    field(&mut out, "component", "adapter");
    field(
        &mut out,
        "outcome",
        if reason.is_none() { "allow" } else { "deny" },
    );
    out.push_str(if reason.is_none() {
        ",\"accepted\":true"
    } else {
        ",\"accepted\":false"
    });
    field(
        &mut out,
        "reason_code",
        reason.map_or("allowed", Reason::code),
    );
    let detail = match reason {
        Some(r) => facts.deny_detail.unwrap_or(r.code()),
        None => facts.allow_detail.unwrap_or("verified"),
    };
    field(&mut out, "detail_reason", detail);
    let hex = event_id.hex();
    field(
        &mut out,
        "event_id",
        core::str::from_utf8(&hex).unwrap_or_default(),
    );
    // Read from a credential refused before its signature verified: escaped and bounded, never
    // in `issuer` / `subject` / `jti`. `dpop_jkt` is the DPoP proof key's thumbprint, never the
    // proof itself (section 14); `provider` and `scopes` come from a verified bearer JWT (13).
    let optional = [
        ("request_id", request_id),
        ("route_id", facts.route_id.as_deref()),
        ("audience", facts.audience.as_deref()),
        ("issuer", facts.issuer.as_deref()),
        ("subject", facts.subject.as_deref()),
        ("jti", facts.jti.as_deref()),
        ("key_binding", facts.key_binding.as_deref()),
        (
            "required_key_binding",
            facts.required_key_binding.as_deref(),
        ),
        ("transcript_sha256", facts.transcript_sha256.as_deref()),
        ("policy_version", policy_version),
        ("unverified_issuer", facts.unverified.issuer.as_deref()),
        ("unverified_subject", facts.unverified.subject.as_deref()),
        ("unverified_jti", facts.unverified.jti.as_deref()),
        ("dpop_jkt", facts.dpop_jkt.as_deref()),
        ("provider", facts.provider.as_deref()),
        ("scopes", facts.scopes.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            field(&mut out, name, value);
        }
    }
    out.push('}');
    out
}

/// `,"name":"value"`, `value` escaped as a JSON string. Names are plain ASCII identifiers.
fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    push_json_string(out, value);
}

/// `s` as a JSON string, escaped exactly as `serde_json` escapes: `"` and `\` backslashed, the
/// short escapes `\b \f \n \r \t`, other control characters below U+0020 as `\u00XX`
/// (lowercase hex); everything else, DEL and non-ASCII included, as is.
fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    // Most values need no escape: one pass without an early exit (so the compiler can unroll or
    // vectorise it), then one copy.
    let clean = !s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if clean {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every escaped byte is ASCII, so `start` and `i` are always character boundaries.
        out.push_str(s.get(start..i).unwrap_or_default());
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::Value;

    /// The event as `serde_json` wrote it before issue 12: the reference the hand-written line
    /// must match byte for byte.
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
        #[serde(skip_serializing_if = "Option::is_none")]
        unverified_issuer: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        unverified_subject: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        unverified_jti: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dpop_jkt: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        scopes: Option<&'a str>,
    }

    fn with_serde(
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
        format!("{LOG_PREFIX}{}", serde_json::to_string(&event).unwrap())
    }

    #[test]
    fn matches_serde_json_byte_for_byte() {
        // Every byte below 0x80 (all control characters, quote, backslash, DEL), non-ASCII text
        // (two-, three- and four-byte UTF-8, U+2028/U+2029 line separators), escapes at the start,
        // the end and side by side, and the empty string.
        let ascii: String = (0u8..0x80).map(char::from).collect();
        let tricky = [
            ascii.as_str(),
            "",
            "plain",
            "\"",
            "\\",
            "\"\\\"\\",
            "a\u{0}b\u{1f}c\u{7f}d",
            "line\nbreak\r\n\ttab\u{8}\u{c}",
            "\u{1b}[31mred\u{1b}[0m",
            "é ü ß 東京 🦀 \u{2028}\u{2029} \u{feff}",
            "spiffe://example.com/ns/default/sa/orders",
            "</script><script>alert(1)</script>",
        ];
        let id = EventId::from_bytes(core::array::from_fn(|i| (i * 37) as u8));
        let reasons = [
            None,
            Some(Reason::JtiReplay),
            Some(Reason::InvalidPassportSignature),
        ];
        let mut compared = 0;
        for (i, t) in tricky.iter().enumerate() {
            let next = tricky[(i + 1) % tricky.len()];
            let some = |k: usize| (k % 3 != 0).then(|| t.to_string());
            let facts = Facts {
                route_id: some(1),
                audience: Some(next.to_string()),
                issuer: some(i + 1),
                subject: some(i + 2),
                trust_domain: Some(t.to_string()),
                jti: Some(t.to_string()),
                key_binding: some(i),
                required_key_binding: Some(next.to_string()),
                transcript_sha256: some(i + 1),
                dpop_jkt: some(i + 2),
                allow_detail: [None, Some("exempt_route")][i % 2],
                deny_detail: [Some("body_timeout"), None][i % 2],
                provider: some(i),
                scopes: Some(next.to_string()),
                unverified: crate::decision::Unverified {
                    issuer: some(i + 1),
                    subject: Some(t.to_string()),
                    jti: some(i + 2),
                },
                ..Facts::default()
            };
            for reason in reasons {
                for (request_id, policy) in [(Some(*t), Some(next)), (None, None)] {
                    for now in [0, 1_764_000_000 + i as i64, i64::MAX] {
                        let ours = line(reason, &facts, &id, request_id, policy, now);
                        let theirs = with_serde(reason, &facts, &id, request_id, policy, now);
                        assert_eq!(ours, theirs, "tricky string {i}");
                        assert!(!ours.contains('\n') && !ours.contains('\r'));
                        compared += 1;
                    }
                }
            }
        }
        // Nothing optional at all, too.
        let bare = Facts::default();
        assert_eq!(
            line(None, &bare, &id, None, None, 5),
            with_serde(None, &bare, &id, None, None, 5)
        );
        assert_eq!(compared, tricky.len() * 3 * 2 * 3);
    }

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
