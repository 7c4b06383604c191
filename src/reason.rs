//! The one list of rejection reasons, their stable wire codes and HTTP statuses
//! (DESIGN.md section 7). Tests assert these variants, never a bare `is_err()`.

/// Every way proofgate can refuse a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    BundlePolicyMissing,
    BundleRouteMissing,
    StaleBundleFailClosed,
    BundleFreshnessUnknown,
    MissingPassport,
    MalformedPassport,
    UnknownSigningKey,
    /// The remote keys a request needs were never loaded or are past `max_stale_seconds`
    /// (DESIGN.md section 12): the gateway's problem, never the caller's, so 503.
    KeysUnavailable,
    InvalidPassportSignature,
    Revoked,
    InvalidPassportClaims,
    PassportExpired,
    PassportNotYetValid,
    PassportLifetimeExceeded,
    /// Bearer JWTs (DESIGN.md section 13): no token in the provider's `from_headers`.
    MissingToken,
    /// Not a compact JWS of strict JSON objects, an `alg` outside the provider's list or not
    /// fitting the key, `crit`, or claims of the wrong type.
    MalformedToken,
    InvalidTokenSignature,
    IssuerMismatch,
    TokenExpired,
    TokenNotYetValid,
    AudienceMismatch,
    TrustDomainMismatch,
    InsufficientScope,
    EnvMismatch,
    SourceIssuerMismatch,
    SourceTrustDomainMismatch,
    SourceSubjectMismatch,
    InsufficientKeyBinding,
    MissingContext,
    ContextMismatch,
    MissingProvenance,
    ProvenanceMismatch,
    MissingRequestProof,
    InvalidRequestProof,
    RequestBindingMismatch,
    BodyTooLarge,
    /// A request with the same (issuer, jti) is already waiting for its body in this VM.
    /// proofgate's addition (issue 8): one captured passport cannot hold many streams.
    JtiInFlight,
    /// The VM already holds `max_parked_requests` requests waiting for their bodies (503 with
    /// `Retry-After`). proofgate's addition (issue 8).
    TooManyParkedRequests,
    /// The body was not complete within `body_timeout_ms` (DESIGN.md section 16).
    BodyTimeout,
    JtiReplay,
    ReplayStoreUnavailable,
    /// DPoP (DESIGN.md section 14): `Authorization: DPoP` without a `DPoP` header.
    MissingDpopProof,
    /// The proof is malformed, badly signed, too old or too new, or more than one came.
    InvalidDpopProof,
    /// The proof is for another method, URI (`htm`, `htu`), token (`ath`) or key (`cnf.jkt`).
    DpopBindingMismatch,
    /// The proof's `jti` was used already.
    DpopReplay,
    /// A DPoP-bound token as a bearer token, or an unbound token where DPoP is required.
    DpopDowngrade,
    /// The proof lacks a current server nonce; the response carries one in `DPoP-Nonce`.
    UseDpopNonce,
    /// The filter could not read what it needs from the host (headers, body, clock). Not in
    /// DESIGN.md's table: proofgate's own addition so that such failures still deny, with 503.
    InternalError,
}

impl Reason {
    /// Every variant, in check order; used by tests and metric registration.
    pub const ALL: [Reason; 48] = [
        Reason::BundlePolicyMissing,
        Reason::BundleRouteMissing,
        Reason::StaleBundleFailClosed,
        Reason::BundleFreshnessUnknown,
        Reason::MissingPassport,
        Reason::MalformedPassport,
        Reason::UnknownSigningKey,
        Reason::KeysUnavailable,
        Reason::InvalidPassportSignature,
        Reason::Revoked,
        Reason::InvalidPassportClaims,
        Reason::PassportExpired,
        Reason::PassportNotYetValid,
        Reason::PassportLifetimeExceeded,
        Reason::MissingToken,
        Reason::MalformedToken,
        Reason::InvalidTokenSignature,
        Reason::IssuerMismatch,
        Reason::TokenExpired,
        Reason::TokenNotYetValid,
        Reason::AudienceMismatch,
        Reason::TrustDomainMismatch,
        Reason::InsufficientScope,
        Reason::EnvMismatch,
        Reason::SourceIssuerMismatch,
        Reason::SourceTrustDomainMismatch,
        Reason::SourceSubjectMismatch,
        Reason::InsufficientKeyBinding,
        Reason::MissingContext,
        Reason::ContextMismatch,
        Reason::MissingProvenance,
        Reason::ProvenanceMismatch,
        Reason::MissingRequestProof,
        Reason::InvalidRequestProof,
        Reason::RequestBindingMismatch,
        Reason::BodyTooLarge,
        Reason::JtiInFlight,
        Reason::TooManyParkedRequests,
        Reason::BodyTimeout,
        Reason::JtiReplay,
        Reason::ReplayStoreUnavailable,
        Reason::MissingDpopProof,
        Reason::InvalidDpopProof,
        Reason::DpopBindingMismatch,
        Reason::DpopReplay,
        Reason::DpopDowngrade,
        Reason::UseDpopNonce,
        Reason::InternalError,
    ];

    /// The stable snake_case code sent in `x-trustplane-reason` and audit events.
    pub const fn code(self) -> &'static str {
        match self {
            Reason::BundlePolicyMissing => "bundle_policy_missing",
            Reason::BundleRouteMissing => "bundle_route_missing",
            Reason::StaleBundleFailClosed => "stale_bundle_fail_closed",
            Reason::BundleFreshnessUnknown => "bundle_freshness_unknown",
            Reason::MissingPassport => "missing_passport",
            Reason::MalformedPassport => "malformed_passport",
            Reason::UnknownSigningKey => "unknown_signing_key",
            Reason::KeysUnavailable => "keys_unavailable",
            Reason::InvalidPassportSignature => "invalid_passport_signature",
            Reason::Revoked => "revoked",
            Reason::InvalidPassportClaims => "invalid_passport_claims",
            Reason::PassportExpired => "passport_expired",
            Reason::PassportNotYetValid => "passport_not_yet_valid",
            Reason::PassportLifetimeExceeded => "passport_lifetime_exceeded",
            Reason::MissingToken => "missing_token",
            Reason::MalformedToken => "malformed_token",
            Reason::InvalidTokenSignature => "invalid_token_signature",
            Reason::IssuerMismatch => "issuer_mismatch",
            Reason::TokenExpired => "token_expired",
            Reason::TokenNotYetValid => "token_not_yet_valid",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::EnvMismatch => "env_mismatch",
            Reason::AudienceMismatch => "audience_mismatch",
            Reason::TrustDomainMismatch => "trust_domain_mismatch",
            Reason::SourceIssuerMismatch => "source_issuer_mismatch",
            Reason::SourceTrustDomainMismatch => "source_trust_domain_mismatch",
            Reason::SourceSubjectMismatch => "source_subject_mismatch",
            Reason::InsufficientKeyBinding => "insufficient_key_binding",
            Reason::MissingContext => "missing_context",
            Reason::ContextMismatch => "context_mismatch",
            Reason::MissingProvenance => "missing_provenance",
            Reason::ProvenanceMismatch => "provenance_mismatch",
            Reason::BodyTooLarge => "body_too_large",
            Reason::JtiInFlight => "jti_in_flight",
            Reason::TooManyParkedRequests => "too_many_parked_requests",
            Reason::BodyTimeout => "body_timeout",
            Reason::MissingRequestProof => "missing_request_proof",
            Reason::InvalidRequestProof => "invalid_request_proof",
            Reason::RequestBindingMismatch => "request_binding_mismatch",
            Reason::JtiReplay => "jti_replay",
            Reason::ReplayStoreUnavailable => "replay_store_unavailable",
            Reason::MissingDpopProof => "missing_dpop_proof",
            Reason::InvalidDpopProof => "invalid_dpop_proof",
            Reason::DpopBindingMismatch => "dpop_binding_mismatch",
            Reason::DpopReplay => "dpop_replay",
            Reason::DpopDowngrade => "dpop_downgrade",
            Reason::UseDpopNonce => "use_dpop_nonce",
            Reason::InternalError => "internal_error",
        }
    }

    /// The HTTP status of the deny response.
    pub const fn status(self) -> u32 {
        match self {
            Reason::BundlePolicyMissing
            | Reason::BundleRouteMissing
            | Reason::StaleBundleFailClosed
            | Reason::BundleFreshnessUnknown
            | Reason::AudienceMismatch
            | Reason::TrustDomainMismatch
            | Reason::InsufficientScope
            | Reason::EnvMismatch
            | Reason::SourceIssuerMismatch
            | Reason::SourceTrustDomainMismatch
            | Reason::SourceSubjectMismatch
            | Reason::InsufficientKeyBinding
            | Reason::MissingContext
            | Reason::ContextMismatch
            | Reason::MissingProvenance
            | Reason::ProvenanceMismatch => 403,
            Reason::MissingPassport
            | Reason::MalformedPassport
            | Reason::UnknownSigningKey
            | Reason::InvalidPassportSignature
            | Reason::Revoked
            | Reason::InvalidPassportClaims
            | Reason::PassportExpired
            | Reason::PassportNotYetValid
            | Reason::PassportLifetimeExceeded
            | Reason::MissingToken
            | Reason::MalformedToken
            | Reason::InvalidTokenSignature
            | Reason::IssuerMismatch
            | Reason::TokenExpired
            | Reason::TokenNotYetValid
            | Reason::MissingRequestProof
            | Reason::InvalidRequestProof
            | Reason::RequestBindingMismatch
            | Reason::JtiReplay
            | Reason::MissingDpopProof
            | Reason::InvalidDpopProof
            | Reason::DpopBindingMismatch
            | Reason::DpopReplay
            | Reason::DpopDowngrade
            | Reason::UseDpopNonce
            | Reason::JtiInFlight => 401,
            Reason::BodyTimeout => 408,
            Reason::BodyTooLarge => 413,
            Reason::ReplayStoreUnavailable
            | Reason::KeysUnavailable
            | Reason::TooManyParkedRequests
            | Reason::InternalError => 503,
        }
    }
}

impl core::fmt::Display for Reason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for r in Reason::ALL {
            let c = r.code();
            assert!(seen.insert(c), "duplicate code {c}");
            assert!(
                c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c}"
            );
        }
        assert_eq!(seen.len(), 48);
    }

    /// DESIGN.md section 7's table, as data: every code with its status, in check order.
    const DESIGN_TABLE: [(&str, u32); 48] = [
        ("bundle_policy_missing", 403),
        ("bundle_route_missing", 403),
        ("stale_bundle_fail_closed", 403),
        ("bundle_freshness_unknown", 403),
        ("missing_passport", 401),
        ("malformed_passport", 401),
        ("unknown_signing_key", 401),
        // Section 12: the signing key's step, when the keys are remote and not there.
        ("keys_unavailable", 503),
        ("invalid_passport_signature", 401),
        ("revoked", 401),
        ("invalid_passport_claims", 401),
        ("passport_expired", 401),
        ("passport_not_yet_valid", 401),
        ("passport_lifetime_exceeded", 401),
        ("missing_token", 401),
        ("malformed_token", 401),
        ("invalid_token_signature", 401),
        ("issuer_mismatch", 401),
        ("token_expired", 401),
        ("token_not_yet_valid", 401),
        ("audience_mismatch", 403),
        ("trust_domain_mismatch", 403),
        ("insufficient_scope", 403),
        ("env_mismatch", 403),
        ("source_issuer_mismatch", 403),
        ("source_trust_domain_mismatch", 403),
        ("source_subject_mismatch", 403),
        ("insufficient_key_binding", 403),
        ("missing_context", 403),
        ("context_mismatch", 403),
        ("missing_provenance", 403),
        ("provenance_mismatch", 403),
        ("missing_request_proof", 401),
        ("invalid_request_proof", 401),
        ("request_binding_mismatch", 401),
        ("body_too_large", 413),
        // proofgate's additions (README, "Departures from DESIGN.md"), then section 16's.
        ("jti_in_flight", 401),
        ("too_many_parked_requests", 503),
        ("body_timeout", 408),
        ("jti_replay", 401),
        ("replay_store_unavailable", 503),
        ("missing_dpop_proof", 401),
        ("invalid_dpop_proof", 401),
        ("dpop_binding_mismatch", 401),
        ("dpop_replay", 401),
        ("dpop_downgrade", 401),
        ("use_dpop_nonce", 401),
        // proofgate's addition (README, "Departures from DESIGN.md").
        ("internal_error", 503),
    ];

    #[test]
    fn codes_statuses_and_order_follow_the_design_table() {
        let ours: Vec<(&str, u32)> = Reason::ALL.iter().map(|r| (r.code(), r.status())).collect();
        assert_eq!(ours, DESIGN_TABLE);
    }
}
