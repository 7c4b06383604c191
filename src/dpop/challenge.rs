//! The `WWW-Authenticate` challenges of a 401 from a DPoP provider (RFC 9449 sections 7.1 and
//! 7.2, DESIGN.md section 14). Proof failures answer `DPoP error="invalid_dpop_proof"`, a
//! missing or stale server nonce `DPoP error="use_dpop_nonce"`, a token refused as such (or
//! presented the wrong way) `error="invalid_token"`; every DPoP challenge names the accepted
//! `algs`. An `allowed` provider also takes bearer tokens, so when the client did not use the
//! `DPoP` scheme its answer carries the `Bearer` challenge too, and the error goes in the
//! challenge of the scheme the client used (RFC 9449 section 7.2).

use super::{Mode, Scheme, Settings, NONCE_HEADER};
use crate::decision::Denial;
use crate::reason::Reason;

/// Dresses a denial by a DPoP provider (`dpop` not `disabled`): a 401 gets the provider's
/// challenges, and `nonce` (a `use_dpop_nonce` refusal's fresh nonce) goes in `DPoP-Nonce`.
/// Other statuses and non-DPoP providers keep the default response.
pub fn dress(
    denial: &mut Denial,
    settings: &Settings,
    used: Option<Scheme>,
    nonce: Option<String>,
) {
    if settings.mode == Mode::Disabled || denial.reason.status() != 401 {
        return;
    }
    denial.challenges = Some(challenges(settings, denial.reason, used));
    if let Some(nonce) = nonce {
        denial.extra_headers.push((NONCE_HEADER, nonce));
    }
}

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
    fn dress_only_401s_of_dpop_providers() {
        use crate::decision::Facts;
        let deny = |r| Denial::new(r, true, Facts::default());
        let mut d = deny(Reason::UseDpopNonce);
        dress(
            &mut d,
            &settings(Mode::Required),
            Some(Scheme::DPoP),
            Some("n".into()),
        );
        assert_eq!(
            d.challenges,
            Some(vec![
                "DPoP error=\"use_dpop_nonce\", algs=\"EdDSA ES256\"".into()
            ])
        );
        assert_eq!(d.extra_headers, [("dpop-nonce", "n".to_string())]);
        let mut d = deny(Reason::AudienceMismatch);
        dress(&mut d, &settings(Mode::Required), Some(Scheme::DPoP), None);
        assert_eq!((d.challenges, d.extra_headers.len()), (None, 0));
        let mut d = deny(Reason::PassportExpired);
        dress(
            &mut d,
            &settings(Mode::Disabled),
            Some(Scheme::Bearer),
            None,
        );
        assert_eq!(d.challenges, None);
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
