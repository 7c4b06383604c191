//! The `WWW-Authenticate` challenges of a 401 from a DPoP provider (RFC 9449 sections 7.1 and
//! 7.2, DESIGN.md section 14). Proof failures answer `DPoP error="invalid_dpop_proof"`, a
//! missing or stale server nonce `DPoP error="use_dpop_nonce"`, a token refused as such (or
//! presented the wrong way) `error="invalid_token"`; every DPoP challenge names the accepted
//! `algs`. An `allowed` provider also takes bearer tokens, so when the client did not use the
//! `DPoP` scheme its answer carries the `Bearer` challenge too, and the error goes in the
//! challenge of the scheme the client used (RFC 9449 section 7.2).

use super::{Mode, Scheme, Settings};
use crate::reason::Reason;

/// The `WWW-Authenticate` values for a 401 with `reason`; `used` is the scheme of the presented
/// token, `None` when no credential came.
pub fn challenges(settings: &Settings, reason: Reason, used: Option<Scheme>) -> Vec<String> {
    let algs = settings
        .algorithms
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(" ");
    let dpop = |error: Option<&str>| match error {
        Some(e) => format!("DPoP error=\"{e}\", algs=\"{algs}\""),
        None => format!("DPoP algs=\"{algs}\""),
    };
    let error = match reason {
        Reason::UseDpopNonce => "use_dpop_nonce",
        Reason::MissingDpopProof
        | Reason::InvalidDpopProof
        | Reason::DpopBindingMismatch
        | Reason::DpopReplay => "invalid_dpop_proof",
        _ => "invalid_token",
    };
    let bearer_too = settings.mode == Mode::Allowed;
    match used {
        None if bearer_too => vec!["Bearer realm=\"proofgate\"".into(), dpop(None)],
        None => vec![dpop(None)],
        Some(Scheme::Bearer) if bearer_too && reason != Reason::DpopDowngrade => vec![
            format!("Bearer realm=\"proofgate\", error=\"{error}\""),
            dpop(None),
        ],
        Some(_) => vec![dpop(Some(error))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpop::Alg;

    fn settings(mode: Mode) -> Settings {
        Settings {
            mode,
            ..Settings::default()
        }
    }

    #[test]
    fn proof_nonce_and_token_errors_on_the_dpop_scheme() {
        let s = settings(Mode::Required);
        let one = |r, used| challenges(&s, r, used);
        let d = Some(Scheme::DPoP);
        for r in [
            Reason::MissingDpopProof,
            Reason::InvalidDpopProof,
            Reason::DpopBindingMismatch,
            Reason::DpopReplay,
        ] {
            assert_eq!(
                one(r, d),
                ["DPoP error=\"invalid_dpop_proof\", algs=\"EdDSA ES256\""]
            );
        }
        assert_eq!(
            one(Reason::UseDpopNonce, d),
            ["DPoP error=\"use_dpop_nonce\", algs=\"EdDSA ES256\""]
        );
        assert_eq!(
            one(Reason::InvalidPassportSignature, d),
            ["DPoP error=\"invalid_token\", algs=\"EdDSA ES256\""]
        );
        assert_eq!(
            one(Reason::DpopDowngrade, Some(Scheme::Bearer)),
            ["DPoP error=\"invalid_token\", algs=\"EdDSA ES256\""]
        );
        assert_eq!(
            one(Reason::MissingPassport, None),
            ["DPoP algs=\"EdDSA ES256\""]
        );
    }

    #[test]
    fn allowed_providers_also_challenge_for_bearer() {
        let s = Settings {
            algorithms: vec![Alg::ES256],
            ..settings(Mode::Allowed)
        };
        assert_eq!(
            challenges(&s, Reason::MissingPassport, None),
            ["Bearer realm=\"proofgate\"", "DPoP algs=\"ES256\""]
        );
        assert_eq!(
            challenges(&s, Reason::PassportExpired, Some(Scheme::Bearer)),
            [
                "Bearer realm=\"proofgate\", error=\"invalid_token\"",
                "DPoP algs=\"ES256\""
            ]
        );
        assert_eq!(
            challenges(&s, Reason::DpopDowngrade, Some(Scheme::Bearer)),
            ["DPoP error=\"invalid_token\", algs=\"ES256\""]
        );
        assert_eq!(
            challenges(&s, Reason::DpopReplay, Some(Scheme::DPoP)),
            ["DPoP error=\"invalid_dpop_proof\", algs=\"ES256\""]
        );
    }
}
