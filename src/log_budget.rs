//! How many audit lines unauthenticated denies may write (issue 8, item 5; a departure from
//! DESIGN.md section 8, which logs every decision). Anyone can send requests without a valid
//! signature, so their audit lines are rate-limited per VM by a token bucket and the rest are
//! counted; every allow and every deny that got past a signature is always logged.

use crate::reason::Reason;

/// Lines an idle VM may write at once for unauthenticated denies.
pub const BURST: u32 = 100;
/// Lines per second an unauthenticated flood may write, per VM, once the burst is spent.
pub const PER_SECOND: u32 = 10;

/// True for denies decided before any signature was verified: the route step (it runs before
/// the credential) and every passport failure up to and including the signature. Everything
/// later was decided about a credential a trusted key signed, so it is always logged.
/// `internal_error` is always logged: callers cannot cause it at will, and operators need it.
pub const fn unauthenticated(reason: Reason) -> bool {
    match reason {
        Reason::BundlePolicyMissing
        | Reason::BundleRouteMissing
        | Reason::StaleBundleFailClosed
        | Reason::BundleFreshnessUnknown
        | Reason::MissingPassport
        | Reason::MalformedPassport
        | Reason::UnknownSigningKey
        | Reason::InvalidPassportSignature
        | Reason::MissingToken
        | Reason::InvalidTokenSignature => true,
        // Mostly decided before the signature (DESIGN.md section 13, step 2); also the rare
        // signed token whose claims have the wrong type, which is limited with them.
        Reason::MalformedToken => true,
        // The gateway's own missing keys (DESIGN.md section 12): decided before any signature,
        // so any caller can cause one; the JWKS warnings and `proofgate.deny.keys_unavailable`
        // still tell operators.
        Reason::KeysUnavailable => true,
        Reason::Revoked
        | Reason::InvalidPassportClaims
        | Reason::PassportExpired
        | Reason::PassportNotYetValid
        | Reason::PassportLifetimeExceeded
        | Reason::IssuerMismatch
        | Reason::TokenExpired
        | Reason::TokenNotYetValid
        | Reason::InsufficientScope
        | Reason::EnvMismatch
        | Reason::AudienceMismatch
        | Reason::TrustDomainMismatch
        | Reason::SourceIssuerMismatch
        | Reason::SourceTrustDomainMismatch
        | Reason::SourceSubjectMismatch
        | Reason::InsufficientKeyBinding
        | Reason::MissingContext
        | Reason::ContextMismatch
        | Reason::MissingProvenance
        | Reason::ProvenanceMismatch
        | Reason::BodyTooLarge
        | Reason::MissingRequestProof
        | Reason::InvalidRequestProof
        | Reason::RequestBindingMismatch
        | Reason::JtiReplay
        | Reason::ReplayStoreUnavailable
        | Reason::InternalError => false,
        // Decided about a request whose passport and proof verified: a captured passport can
        // hold only one stream (`jti_in_flight`), so these cost an attacker a signed passport each.
        Reason::JtiInFlight | Reason::TooManyParkedRequests | Reason::BodyTimeout => false,
        // DESIGN.md section 14: a DPoP proof is bound to a verified token (`cnf.jkt`, `ath`), so
        // these are decided after the token's signature. A DPoP check moved before it belongs
        // in the `true` arm.
        Reason::MissingDpopProof
        | Reason::InvalidDpopProof
        | Reason::DpopBindingMismatch
        | Reason::DpopReplay
        | Reason::DpopDowngrade
        | Reason::UseDpopNonce => false,
    }
}

/// A token bucket over whole seconds of the host clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBudget {
    tokens: u32,
    refilled_at: i64,
    suppressed: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            tokens: BURST,
            refilled_at: i64::MIN,
            suppressed: 0,
        }
    }
}

impl LogBudget {
    /// Whether the audit line of a deny with `reason` at `now` is written. Lines that are not
    /// are counted until [`LogBudget::take_suppressed`].
    pub fn admit(&mut self, reason: Reason, now: i64) -> bool {
        if !unauthenticated(reason) {
            return true;
        }
        if now > self.refilled_at {
            let elapsed = now.saturating_sub(self.refilled_at);
            let refill = u32::try_from(elapsed)
                .unwrap_or(u32::MAX)
                .saturating_mul(PER_SECOND);
            self.tokens = self.tokens.saturating_add(refill).min(BURST);
            self.refilled_at = now;
        }
        // A clock that steps back refills nothing until it passes `refilled_at` again.
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            false
        }
    }

    /// Lines suppressed since the last call, and resets the count.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(budget: &mut LogBudget, reason: Reason, now: i64, n: u32) -> u32 {
        (0..n).filter(|_| budget.admit(reason, now)).count() as u32
    }

    #[test]
    fn a_flood_gets_the_burst_then_the_rate() {
        let mut b = LogBudget::default();
        assert_eq!(admitted(&mut b, Reason::MissingPassport, 100, 1000), BURST);
        assert_eq!(b.take_suppressed(), u64::from(1000 - BURST));
        assert_eq!(b.take_suppressed(), 0, "taking resets the count");
        assert_eq!(
            admitted(&mut b, Reason::MissingPassport, 101, 1000),
            PER_SECOND
        );
        assert_eq!(
            admitted(&mut b, Reason::MalformedPassport, 103, 1000),
            2 * PER_SECOND
        );
        assert_eq!(b.take_suppressed(), u64::from(2000 - 3 * PER_SECOND));
    }

    #[test]
    fn a_quiet_vm_refills_to_the_burst_only() {
        let mut b = LogBudget::default();
        admitted(&mut b, Reason::MissingPassport, 0, 1000);
        assert_eq!(admitted(&mut b, Reason::MissingPassport, 3600, 1000), BURST);
    }

    #[test]
    fn a_clock_step_back_does_not_refill() {
        let mut b = LogBudget::default();
        admitted(&mut b, Reason::MissingPassport, 1000, 1000);
        assert_eq!(admitted(&mut b, Reason::MissingPassport, 10, 1000), 0);
        assert_eq!(
            admitted(&mut b, Reason::MissingPassport, 1001, 1000),
            PER_SECOND
        );
    }

    #[test]
    fn denies_past_the_signature_and_allows_are_never_limited() {
        let mut b = LogBudget::default();
        admitted(&mut b, Reason::MissingPassport, 5, 1000);
        b.take_suppressed();
        for reason in Reason::ALL.into_iter().filter(|r| !unauthenticated(*r)) {
            assert_eq!(admitted(&mut b, reason, 5, 500), 500, "{reason}");
        }
        assert_eq!(b.take_suppressed(), 0);
    }

    #[test]
    fn the_unauthenticated_set_is_exactly_what_precedes_a_verified_signature() {
        let limited: Vec<&str> = Reason::ALL
            .into_iter()
            .filter(|r| unauthenticated(*r))
            .map(Reason::code)
            .collect();
        assert_eq!(
            limited,
            [
                "bundle_policy_missing",
                "bundle_route_missing",
                "stale_bundle_fail_closed",
                "bundle_freshness_unknown",
                "missing_passport",
                "malformed_passport",
                "unknown_signing_key",
                "keys_unavailable",
                "invalid_passport_signature",
                "missing_token",
                "malformed_token",
                "invalid_token_signature",
            ]
        );
    }
}
