//! What a decision looks like on the wire (DESIGN.md section 7): the deny response (status,
//! audit headers, JSON body, `WWW-Authenticate`) and, on allow, the identity headers for the
//! upstream. Pure data; the shell only copies it to the host.

use crate::event_id::EventId;
use crate::headers;
use crate::log_text;
use crate::reason::Reason;
use crate::replay::Pressure;

/// Facts known about a request when it was decided, for headers, audit events and access logs.
/// `issuer`, `subject` and `jti` are only ever set from a credential whose signature verified,
/// and only when clean ([`clean_claim`]); what was read before that is in `unverified`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub route_id: Option<String>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub trust_domain: Option<String>,
    pub jti: Option<String>,
    pub key_binding: Option<String>,
    pub required_key_binding: Option<String>,
    pub transcript_sha256: Option<String>,
    /// RFC 7638 thumbprint of a DPoP proof key whose signature verified (DESIGN.md section 14).
    pub dpop_jkt: Option<String>,
    /// Why an allow was an allow ("verified", "exempt_route", "rule_allow").
    pub allow_detail: Option<&'static str>,
    /// Bearer JWTs (DESIGN.md section 13): the provider that verified the token, and the
    /// token's `scope` (verified values only).
    pub provider: Option<String>,
    pub scopes: Option<String>,
    /// The verified-token cache skipped a token's signature check (metrics only).
    pub token_cache_hit: bool,
    /// `claim_to_headers` values for the upstream on allow (verified, clean claims).
    pub claim_headers: Vec<(String, String)>,
    /// Request headers removed before the upstream on allow (a provider's token header).
    pub strip_headers: Vec<String>,
    /// Credential headers kept on allow although `forward_credentials` is false (the token
    /// header of a provider with `forward: true`).
    pub keep_headers: Vec<String>,
    /// A finer cause of a deny for the audit event's `detail_reason` (default: the code).
    pub deny_detail: Option<&'static str>,
    /// Claims of a credential refused before its signature verified: audit event only.
    pub unverified: Unverified,
}

/// Claims read from a credential whose signature did not verify (or was never checked):
/// attacker-chosen text, kept only for the audit event's `unverified_*` fields, escaped and
/// bounded by [`Unverified::new`]. Never a filter state value, a header or a policy input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unverified {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub jti: Option<String>,
}

impl Unverified {
    pub fn new(issuer: Option<&str>, subject: Option<&str>, jti: Option<&str>) -> Self {
        let keep = |v: Option<&str>| {
            v.map(|v| log_text::escape_bounded(v, log_text::UNVERIFIED_MAX_CHARS))
        };
        Unverified {
            issuer: keep(issuer),
            subject: keep(subject),
            jti: keep(jti),
        }
    }
}

/// A claim from a verified credential, if it is clean enough to be a fact: non-empty, no
/// surrounding whitespace, no control characters (the rule passport claims are held to).
pub fn clean_claim(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.is_empty() && s.trim() == s && !s.chars().any(char::is_control))
}

/// A refusal and what was known when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: Reason,
    /// Whether the client presented a credential (`Authorization`): selects the 401 challenge.
    pub credential_presented: bool,
    pub facts: Facts,
    /// Replay-store pressure, when the replay step ran.
    pub replay: Option<Pressure>,
    /// `WWW-Authenticate` values that replace the default `Bearer` challenge of a 401 (a DPoP
    /// provider answers with `DPoP` challenges, DESIGN.md section 14).
    pub challenges: Option<Vec<String>>,
    /// Further response headers (a DPoP provider's `DPoP-Nonce`).
    pub extra_headers: Vec<(&'static str, String)>,
    /// `Retry-After` seconds (`keys_unavailable`: until the next key fetch).
    pub retry_after: Option<u32>,
}

impl Denial {
    pub fn new(reason: Reason, credential_presented: bool, facts: Facts) -> Self {
        Denial {
            reason,
            credential_presented,
            facts,
            replay: None,
            challenges: None,
            extra_headers: Vec::new(),
            retry_after: None,
        }
    }
}

/// A local reply built from a denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyResponse {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// The response for `denial`, tagged with `event_id`.
pub fn deny_response(denial: &Denial, event_id: &EventId) -> DenyResponse {
    let code = denial.reason.code();
    let status = denial.reason.status();
    let mut headers_out = vec![
        ("content-type", "application/json".to_string()),
        (headers::DECISION, "deny".to_string()),
        (headers::REASON, code.to_string()),
        (headers::EVENT_ID, event_id.to_string()),
    ];
    if status == 403 {
        // `insufficient_scope` names the scopes it wanted (RFC 6750 section 3.1).
        if let Some(challenges) = &denial.challenges {
            headers_out.extend(challenges.iter().map(|c| ("www-authenticate", c.clone())));
        }
    }
    if status == 401 {
        match &denial.challenges {
            Some(challenges) => {
                headers_out.extend(challenges.iter().map(|c| ("www-authenticate", c.clone())));
            }
            None => {
                let challenge = if denial.credential_presented {
                    "Bearer realm=\"proofgate\", error=\"invalid_token\""
                } else {
                    "Bearer realm=\"proofgate\""
                };
                headers_out.push(("www-authenticate", challenge.to_string()));
            }
        }
    }
    if let Some(seconds) = denial.retry_after.or(retry_after_seconds(denial.reason)) {
        headers_out.push(("retry-after", seconds.to_string()));
    }
    headers_out.extend(denial.extra_headers.iter().cloned());
    // Codes and event ids are fixed ASCII alphabets: no escaping needed, none possible.
    let body = format!("{{\"allowed\":false,\"reason\":\"{code}\",\"event_id\":\"{event_id}\"}}");
    DenyResponse {
        status,
        headers: headers_out,
        body,
    }
}

/// `Retry-After` seconds for refusals about the gateway's state rather than the request, when
/// the denial does not carry its own (`keys_unavailable` does: until the next key fetch). A full
/// or unreachable replay store and a full parking lot usually recover within seconds.
fn retry_after_seconds(reason: Reason) -> Option<u32> {
    match reason {
        Reason::ReplayStoreUnavailable | Reason::TooManyParkedRequests => Some(1),
        _ => None,
    }
}

/// The identity headers for the upstream on allow (values come from a verified passport).
pub fn identity_headers(facts: &Facts, event_id: &EventId) -> Vec<(&'static str, String)> {
    let pairs = [
        (headers::SUBJECT, &facts.subject),
        (headers::ISSUER, &facts.issuer),
        (headers::TRUST_DOMAIN, &facts.trust_domain),
        (headers::JTI, &facts.jti),
        (headers::ROUTE_ID, &facts.route_id),
        (headers::KEY_BINDING, &facts.key_binding),
    ];
    let mut out: Vec<(&'static str, String)> = pairs
        .into_iter()
        .filter_map(|(n, v)| v.clone().map(|v| (n, v)))
        .collect();
    out.push((headers::EVENT_ID, event_id.to_string()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_401_with_and_without_credential() {
        let id = EventId::from_bytes([0xab; 16]);
        let mut d = Denial::new(Reason::MissingPassport, false, Facts::default());
        let r = deny_response(&d, &id);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers,
            vec![
                ("content-type", "application/json".to_string()),
                ("x-trustplane-decision", "deny".to_string()),
                ("x-trustplane-reason", "missing_passport".to_string()),
                ("x-trustplane-event-id", "ab".repeat(16)),
                ("www-authenticate", "Bearer realm=\"proofgate\"".to_string()),
            ]
        );
        assert_eq!(
            r.body,
            format!(
                "{{\"allowed\":false,\"reason\":\"missing_passport\",\"event_id\":\"{}\"}}",
                "ab".repeat(16)
            )
        );
        d.credential_presented = true;
        d.reason = Reason::PassportExpired;
        let r = deny_response(&d, &id);
        assert_eq!(
            r.headers[4].1,
            "Bearer realm=\"proofgate\", error=\"invalid_token\""
        );
    }

    #[test]
    fn dpop_challenges_replace_the_bearer_one_and_extra_headers_follow() {
        let id = EventId::from_bytes([2; 16]);
        let d = Denial {
            challenges: Some(vec![
                "Bearer realm=\"proofgate\"".into(),
                "DPoP algs=\"EdDSA\"".into(),
            ]),
            extra_headers: vec![("dpop-nonce", "n0nce".into())],
            ..Denial::new(Reason::UseDpopNonce, true, Facts::default())
        };
        let r = deny_response(&d, &id);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers[4..],
            [
                ("www-authenticate", "Bearer realm=\"proofgate\"".to_string()),
                ("www-authenticate", "DPoP algs=\"EdDSA\"".to_string()),
                ("dpop-nonce", "n0nce".to_string()),
            ]
        );
    }

    #[test]
    fn replay_store_unavailable_says_when_to_retry() {
        let id = EventId::from_bytes([3; 16]);
        let d = Denial::new(Reason::ReplayStoreUnavailable, true, Facts::default());
        let r = deny_response(&d, &id);
        assert_eq!(r.status, 503);
        assert_eq!(r.headers[4..], [("retry-after", "1".to_string())]);
    }

    #[test]
    fn keys_unavailable_is_a_503_with_retry_after() {
        let id = EventId::from_bytes([3; 16]);
        let mut d = Denial::new(Reason::KeysUnavailable, true, Facts::default());
        d.retry_after = Some(7);
        let r = deny_response(&d, &id);
        assert_eq!(r.status, 503);
        assert_eq!(
            r.headers[4..],
            [("retry-after", "7".to_string())],
            "no challenge: the caller did nothing wrong"
        );
    }

    #[test]
    fn too_many_parked_requests_says_when_to_retry() {
        let id = EventId::from_bytes([2; 16]);
        let d = Denial::new(Reason::TooManyParkedRequests, true, Facts::default());
        let r = deny_response(&d, &id);
        assert_eq!(r.status, 503);
        assert!(r.headers.contains(&("retry-after", "1".to_string())));
        assert!(r.headers.iter().all(|(n, _)| *n != "www-authenticate"));
        let d = Denial::new(Reason::JtiInFlight, true, Facts::default());
        assert!(deny_response(&d, &id)
            .headers
            .iter()
            .all(|(n, _)| *n != "retry-after"));
    }

    #[test]
    fn deny_403_has_no_challenge() {
        let id = EventId::from_bytes([1; 16]);
        let d = Denial::new(Reason::AudienceMismatch, true, Facts::default());
        let r = deny_response(&d, &id);
        assert_eq!(r.status, 403);
        assert!(r.headers.iter().all(|(n, _)| *n != "www-authenticate"));
    }

    #[test]
    fn only_a_busy_store_or_a_full_lot_says_retry_after_by_default() {
        let id = EventId::from_bytes([2; 16]);
        for reason in Reason::ALL {
            let r = deny_response(&Denial::new(reason, true, Facts::default()), &id);
            let retry: Vec<&str> = r
                .headers
                .iter()
                .filter(|(n, _)| *n == "retry-after")
                .map(|(_, v)| v.as_str())
                .collect();
            let busy = [
                Reason::ReplayStoreUnavailable,
                Reason::TooManyParkedRequests,
            ];
            let want: &[&str] = if busy.contains(&reason) { &["1"] } else { &[] };
            assert_eq!(retry, want, "{reason}");
        }
    }
}
