//! DPoP at a JWT provider's door (DESIGN.md sections 13 and 14): where the provider's token is
//! found and with which scheme, what the verified token is bound to, and what a proof that passed
//! its checks carries to the decision.

use super::{challenge, Mode, Proven, Scheme};
use crate::config::JwtProvider;
use crate::jwt;
use crate::reason::Reason;
use serde_json::{Map, Value};

/// The provider's token and the scheme it came with. A provider with DPoP on also takes
/// `Authorization: DPoP <token>`; everything else is the provider's own `from_headers` lookup.
pub fn find_token<'h>(
    provider: &JwtProvider,
    header: &dyn Fn(&str) -> Vec<&'h [u8]>,
) -> Result<(Scheme, &'h str, String), Reason> {
    if provider.dpop.mode != Mode::Disabled {
        if let [value] = header(crate::headers::AUTHORIZATION).as_slice() {
            let text = core::str::from_utf8(value).ok();
            if let Some((Scheme::DPoP, token)) = text.and_then(super::split_authorization) {
                if token.len() > jwt::MAX_TOKEN_BYTES {
                    return Err(Reason::MalformedToken);
                }
                return Ok((Scheme::DPoP, token, crate::headers::AUTHORIZATION.into()));
            }
        }
    }
    jwt::find_token(provider, header).map(|f| (Scheme::Bearer, f.token, f.header.to_string()))
}

/// The verified token's `cnf.jkt`. A token whose `cnf` names a `jkt` of any other type is still
/// bound (so it can never pass as a bearer token), to no key a proof could have (`""`).
pub fn token_jkt(claims: &Map<String, Value>) -> Option<&str> {
    match claims.get("cnf")?.get("jkt")? {
        Value::String(jkt) => Some(jkt),
        _ => Some(""),
    }
}

/// A proof that passed every check on the headers, waiting for the decision: its replay claim,
/// and the challenges a refusal there (replay, or aged out while the request waited) answers
/// with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingProof {
    pub proven: Proven,
    pub challenges: Vec<String>,
}

impl PendingProof {
    pub fn new(provider: &JwtProvider, proven: Proven) -> Self {
        PendingProof {
            challenges: challenge::challenges(
                &provider.dpop,
                Reason::DpopReplay,
                Some(Scheme::DPoP),
            ),
            proven,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cnf_jkt_of_any_type_binds() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            token_jkt(&claims(json!({"cnf": {"jkt": "abc"}}))),
            Some("abc")
        );
        assert_eq!(token_jkt(&claims(json!({"cnf": {"jkt": 7}}))), Some(""));
        assert_eq!(token_jkt(&claims(json!({"cnf": {"kid": "k"}}))), None);
        assert_eq!(token_jkt(&claims(json!({"sub": "x"}))), None);
    }
}
