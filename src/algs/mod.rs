//! The JWS signature algorithms proofgate accepts on bearer JWTs (DESIGN.md sections 12 and 13;
//! RFC 7518 section 3, RFC 8037). Each verifier lives in its own file and is tested against the
//! Project Wycheproof vectors of its primitive; Ed25519 stays on the crypto seam (`crate::crypto`).
//!
//! `none` is not an [`Alg`] at all, so no code path can select it, and a key only ever verifies
//! with the one algorithm its type fits ([`crate::jwk::PublicKey::verify`]): an HMAC `alg` over
//! an asymmetric key cannot even be expressed.

pub mod es256;
pub mod hs256;
pub mod rs256;

/// A JWS `alg` proofgate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    EdDSA,
    ES256,
    RS256,
    HS256,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256];

    /// The registered name, exactly (JOSE names are case-sensitive); `none` and everything
    /// proofgate does not implement is `None`.
    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
            Alg::HS256 => "HS256",
        }
    }

    /// A MAC rather than a signature: its key is a shared secret, accepted only inline.
    pub const fn is_symmetric(self) -> bool {
        matches!(self, Alg::HS256)
    }
}

impl core::fmt::Display for Alg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exact_and_none_is_not_an_alg() {
        for a in Alg::ALL {
            assert_eq!(Alg::parse(a.name()), Some(a));
        }
        for bad in [
            "none", "None", "NONE", "", "es256", "HS384", "RS512", "PS256", "Ed25519",
        ] {
            assert_eq!(Alg::parse(bad), None, "{bad}");
        }
        assert!(Alg::HS256.is_symmetric());
        assert!(!Alg::ES256.is_symmetric() && !Alg::RS256.is_symmetric());
    }
}
