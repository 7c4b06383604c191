//! Route policy after the passport is verified (DESIGN.md sections 6 and 7): identity (audience,
//! trust domain), then the route's allowed sources in stages (issuer, trust domain, subject),
//! then signer class, context and provenance for the remaining candidates.

use crate::config::bundle_types::{ContextPolicy, ProvenancePolicy};
use crate::config::{Bundle, Config, Revocation, Route, Source};
use crate::passport::Passport;
use crate::reason::Reason;
use crate::signer::SignerClass;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The bundle's revocations indexed at load, so a lookup costs the same with 10 or 100,000 of
/// them: revoked jtis, the latest `not_before` per subject, revoked kids per issuer. Lookups
/// only (never inserts) take caller-chosen values, through std's keyed hasher.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    jtis: HashSet<String>,
    subjects: HashMap<String, i64>,
    keys: HashMap<String, HashSet<String>>,
}

impl Revocations {
    pub fn new(list: &[Revocation]) -> Revocations {
        let mut index = Revocations::default();
        for r in list {
            match r {
                Revocation::Jti(jti) => {
                    index.jtis.insert(jti.clone());
                }
                Revocation::SubjectBefore { sub, not_before } => {
                    let latest = index.subjects.entry(sub.clone()).or_insert(*not_before);
                    *latest = (*latest).max(*not_before);
                }
                Revocation::Key { issuer, kid } => {
                    index
                        .keys
                        .entry(issuer.clone())
                        .or_default()
                        .insert(kid.clone());
                }
            }
        }
        index
    }

    /// True if a passport with these (signature-verified, not yet validated) claims is revoked:
    /// its jti, its key, or its subject before the subject's cutoff. An unreadable `iat` cannot
    /// prove issue after the cutoff, so it counts as before it.
    pub fn is_revoked(
        &self,
        iss: Option<&str>,
        kid: &str,
        sub: Option<&str>,
        jti: Option<&str>,
        iat: Option<i64>,
    ) -> bool {
        jti.is_some_and(|j| self.jtis.contains(j))
            || sub
                .and_then(|s| self.subjects.get(s))
                .is_some_and(|cutoff| iat.is_none_or(|t| t < *cutoff))
            || iss
                .and_then(|i| self.keys.get(i))
                .is_some_and(|kids| kids.contains(kid))
    }
}

/// The audience and trust domain checks, with the route's expected audience.
pub fn check_identity(
    p: &Passport,
    config: &Config,
    expected_audience: &str,
) -> Result<(), Reason> {
    if p.aud != expected_audience {
        return Err(Reason::AudienceMismatch);
    }
    if config
        .trust_domain
        .as_ref()
        .is_some_and(|td| *td != p.trust_domain)
    {
        return Err(Reason::TrustDomainMismatch);
    }
    let issuer_td = config.issuer(&p.iss).and_then(|i| i.trust_domain.as_ref());
    if issuer_td.is_some_and(|td| *td != p.trust_domain) {
        return Err(Reason::TrustDomainMismatch);
    }
    Ok(())
}

/// The minimum signer class that applies without a source: the route's, the bundle default and
/// the top-level `required_key_binding`, whichever is strictest.
pub fn route_minimum(
    config: &Config,
    bundle: Option<&Bundle>,
    route: Option<&Route>,
) -> SignerClass {
    [
        Some(config.required_key_binding),
        bundle.and_then(|b| b.default_required_key_binding),
        route.and_then(|r| r.required_key_binding),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(SignerClass::Software)
}

/// Matches the passport against the route's allowed sources. On success, returns the effective
/// minimum signer class that was enforced.
pub fn check_sources(
    p: &Passport,
    bundle: &Bundle,
    route: &Route,
    base_minimum: SignerClass,
) -> Result<SignerClass, (Reason, SignerClass)> {
    let by_issuer: Vec<&Source> = route.sources.iter().filter(|s| s.issuer == p.iss).collect();
    if by_issuer.is_empty() {
        return Err((Reason::SourceIssuerMismatch, base_minimum));
    }
    let by_domain: Vec<&Source> = by_issuer
        .into_iter()
        .filter(|s| s.trust_domain == p.trust_domain)
        .collect();
    if by_domain.is_empty() {
        return Err((Reason::SourceTrustDomainMismatch, base_minimum));
    }
    let by_subject: Vec<&Source> = by_domain
        .into_iter()
        .filter(|s| s.subject.matches(&p.sub))
        .collect();
    let mut first_failure = None;
    for source in &by_subject {
        let minimum = source
            .required_key_binding
            .map_or(base_minimum, |m| m.max(base_minimum));
        let outcome = if p.key_binding < minimum {
            Err(Reason::InsufficientKeyBinding)
        } else {
            check_source_facts(p, bundle, source)
        };
        match outcome {
            Ok(()) => return Ok(minimum),
            Err(r) => {
                first_failure.get_or_insert((r, minimum));
            }
        }
    }
    Err(first_failure.unwrap_or((Reason::SourceSubjectMismatch, base_minimum)))
}

fn check_source_facts(p: &Passport, bundle: &Bundle, source: &Source) -> Result<(), Reason> {
    if let Some(policy) = &source.context_policy {
        check_context(p.ctx.as_ref(), policy)?;
    }
    for policy in [
        bundle.provenance_policy.as_ref(),
        source.provenance_policy.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        check_provenance(p.provenance.as_ref(), policy)?;
    }
    Ok(())
}

/// `ctx` claim shape (proofgate's choice, TrustPlane leaves it open): an object with string
/// `tool_name`, `workflow_id`, and `max_txn_value` as a number or decimal string.
pub fn check_context(ctx: Option<&Value>, policy: &ContextPolicy) -> Result<(), Reason> {
    let ctx = ctx
        .and_then(Value::as_object)
        .ok_or(Reason::MissingContext)?;
    let expect = |field: &str, want: &Option<String>| -> Result<(), Reason> {
        let Some(want) = want else { return Ok(()) };
        match ctx.get(field) {
            None | Some(Value::Null) => Err(Reason::MissingContext),
            Some(Value::String(got)) if got == want => Ok(()),
            Some(_) => Err(Reason::ContextMismatch),
        }
    };
    expect("tool_name", &policy.required_tool_name)?;
    expect("workflow_id", &policy.required_workflow_id)?;
    if let Some(ceiling) = policy.max_txn_value {
        match ctx.get("max_txn_value") {
            None | Some(Value::Null) => return Err(Reason::MissingContext),
            Some(v) => match crate::config::bundle_types::decimal(v) {
                Some(value) if value <= ceiling => {}
                _ => return Err(Reason::ContextMismatch),
            },
        }
    }
    Ok(())
}

/// `provenance` claim shape (proofgate's choice): an object with string `profile`,
/// `spiffe_trust_domain` and `posture`.
pub fn check_provenance(prov: Option<&Value>, policy: &ProvenancePolicy) -> Result<(), Reason> {
    let prov = prov
        .and_then(Value::as_object)
        .ok_or(Reason::MissingProvenance)?;
    let pairs = [
        ("profile", &policy.profile),
        ("spiffe_trust_domain", &policy.required_spiffe_trust_domain),
        ("posture", &policy.required_posture),
    ];
    for (field, want) in pairs {
        let Some(want) = want else { continue };
        match prov.get(field) {
            None | Some(Value::Null) => return Err(Reason::MissingProvenance),
            Some(Value::String(got)) if got == want => {}
            Some(_) => return Err(Reason::ProvenanceMismatch),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_index_agrees_with_a_scan() {
        let list = vec![
            Revocation::Jti("j1".into()),
            Revocation::SubjectBefore {
                sub: "alice".into(),
                not_before: 100,
            },
            Revocation::SubjectBefore {
                sub: "alice".into(),
                not_before: 50,
            },
            Revocation::Key {
                issuer: "iss-a".into(),
                kid: "k1".into(),
            },
        ];
        let index = Revocations::new(&list);
        let scan = |iss: Option<&str>,
                    kid: &str,
                    sub: Option<&str>,
                    jti: Option<&str>,
                    iat: Option<i64>| {
            list.iter().any(|r| match r {
                Revocation::Jti(j) => jti == Some(j.as_str()),
                Revocation::SubjectBefore { sub: s, not_before } => {
                    sub == Some(s.as_str()) && iat.is_none_or(|t| t < *not_before)
                }
                Revocation::Key { issuer, kid: k } => iss == Some(issuer.as_str()) && kid == k,
            })
        };
        let mut revoked = 0;
        for iss in [None, Some("iss-a"), Some("iss-b")] {
            for kid in ["k1", "k2"] {
                for sub in [None, Some("alice"), Some("bob")] {
                    for jti in [None, Some("j1"), Some("j2")] {
                        for iat in [None, Some(10), Some(60), Some(100), Some(200)] {
                            let want = scan(iss, kid, sub, jti, iat);
                            assert_eq!(index.is_revoked(iss, kid, sub, jti, iat), want);
                            revoked += usize::from(want);
                        }
                    }
                }
            }
        }
        assert!(revoked > 0 && revoked < 3 * 2 * 3 * 3 * 5);
    }
}
