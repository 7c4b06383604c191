//! The headers phase when the configuration has `rules` (DESIGN.md section 11): the first
//! matching rule's requirement decides which credential checks run. A passport requirement takes
//! the passport pipeline unchanged ([`Engine::check_passport`]); a provider requirement verifies
//! a bearer JWT (section 13) and yields the same credential-neutral [`Pending`] (no body hash, no
//! jti to consume, valid until the token's `exp` plus skew), so the decision is taken at the same
//! point, at the `now` of the deciding callback, exactly as for passports.

use crate::config::{JwtProvider, ProviderKeys};
use crate::decision::{clean_claim, Denial, Facts};
use crate::dpop::{self, provider::PendingProof, Proven, Scheme};
use crate::headers;
use crate::jwk::KeySet;
use crate::jwks::{Hold, ProviderLookup, RemoteKeys};
use crate::jwt::{self, Context, VerifiedToken};
use crate::passport;
use crate::reason::Reason;
use crate::request::RequestView;
use crate::rules::{self, IssuerOf, Requirement, Rule};
use crate::verify::{Engine, HeadersVerdict, Pending};

/// What one requirement yielded.
enum Passed {
    /// A passport passed its header checks; the rest happens at the decision.
    Passport(Box<Pending>),
    /// A provider's token passed every check.
    Token(Box<TokenPass>),
}

struct TokenPass {
    provider: usize,
    token: VerifiedToken,
    /// The header the token came from.
    header: String,
    /// A DPoP proof that passed its checks on the headers (section 14).
    dpop: Option<Proven>,
}

struct Refusal {
    reason: Reason,
    facts: Box<Facts>,
    challenges: Option<Vec<String>>,
    /// Further response headers (a DPoP provider's `DPoP-Nonce`).
    extra_headers: Vec<(&'static str, String)>,
    /// A passport whose remote keys are on their way (DESIGN.md section 12): hold the request.
    hold: Option<Hold>,
    retry_after: Option<u32>,
}

/// The remote keys a passport requirement may use, and whether it may ask to hold the request.
struct Keys<'a> {
    remote: &'a dyn RemoteKeys,
    may_hold: bool,
}

impl Refusal {
    fn bare(reason: Reason) -> Self {
        Refusal {
            reason,
            facts: Box::default(),
            challenges: None,
            extra_headers: Vec::new(),
            hold: None,
            retry_after: None,
        }
    }
}

impl IssuerOf for Engine {
    fn is_passport_issuer(&self, iss: &str) -> bool {
        self.config.issuer(iss).is_some()
    }

    fn provider_issuer(&self, provider: usize) -> Option<&str> {
        self.config
            .jwt_providers
            .get(provider)
            .map(|p| p.issuer.as_str())
    }
}

impl Engine {
    /// Every `claim_to_headers` header of every provider: removed from every inbound request,
    /// like proofgate's own identity headers, so only proofgate ever sets them.
    pub fn claim_header_names(&self) -> impl Iterator<Item = &str> {
        self.config
            .jwt_providers
            .iter()
            .flat_map(|p| p.claim_to_headers.iter().map(|c| c.header.as_str()))
    }

    pub(crate) fn check_rules(
        &self,
        rules: &[Rule],
        req: &RequestView,
        now: i64,
        remote: &dyn RemoteKeys,
        may_hold: bool,
    ) -> HeadersVerdict {
        let keys = Keys { remote, may_hold };
        let credential_presented = req.first(headers::AUTHORIZATION).is_some()
            || self.config.jwt_providers.iter().any(|p| {
                p.token_headers()
                    .any(|h| h != headers::AUTHORIZATION && req.first(h).is_some())
            });
        let Some((index, rule)) = rules::first_match(rules, req.method(), req.path()) else {
            // Only a path with an ambiguous segment (`..`, `%2F`, ...) matches no rule, the last
            // one being a catch-all: refused rather than guessed.
            return HeadersVerdict::Deny(Denial::new(
                Reason::BundleRouteMissing,
                credential_presented,
                Facts::default(),
            ));
        };
        let rule_facts = || Facts {
            route_id: Some(format!("rules[{index}]")),
            ..Facts::default()
        };
        match self.requirement(&rule.requires, req, now, &keys) {
            Ok(None) => {
                let mut facts = rule_facts();
                facts.allow_detail = Some("rule_allow");
                HeadersVerdict::Exempt(facts)
            }
            Ok(Some(passed)) => {
                let mut pending = self.pending_of(passed);
                if pending.facts.route_id.is_none() {
                    pending.facts.route_id = rule_facts().route_id;
                }
                HeadersVerdict::NeedBody(pending)
            }
            Err(Refusal {
                hold: Some(hold), ..
            }) => HeadersVerdict::AwaitKeys(hold),
            Err(refusal) => {
                let mut facts = *refusal.facts;
                if facts.route_id.is_none() {
                    facts.route_id = rule_facts().route_id;
                }
                let mut denial = Denial::new(refusal.reason, credential_presented, facts);
                denial.challenges = refusal.challenges;
                denial.extra_headers = refusal.extra_headers;
                denial.retry_after = refusal.retry_after;
                HeadersVerdict::Deny(denial)
            }
        }
    }

    /// `Ok(None)`: allowed without a credential.
    fn requirement(
        &self,
        requirement: &Requirement,
        req: &RequestView,
        now: i64,
        keys: &Keys<'_>,
    ) -> Result<Option<Vec<Passed>>, Refusal> {
        match requirement {
            Requirement::Allow => Ok(None),
            Requirement::Passport => {
                match self.check_passport(req, now, keys.remote, keys.may_hold) {
                    HeadersVerdict::NeedBody(p) => Ok(Some(vec![Passed::Passport(p)])),
                    HeadersVerdict::Deny(d) => Err(Refusal {
                        reason: d.reason,
                        facts: Box::new(d.facts),
                        challenges: d.challenges,
                        extra_headers: d.extra_headers,
                        hold: None,
                        retry_after: d.retry_after,
                    }),
                    HeadersVerdict::AwaitKeys(hold) => Err(Refusal {
                        hold: Some(hold),
                        ..Refusal::bare(Reason::KeysUnavailable)
                    }),
                    // The passport pipeline never exempts once rules decided.
                    HeadersVerdict::Exempt(_) => Err(Refusal::bare(Reason::InternalError)),
                }
            }
            Requirement::Provider { provider, scopes } => self
                .check_provider(*provider, scopes, req, now, keys)
                .map(|t| Some(vec![Passed::Token(Box::new(t))])),
            Requirement::Any(alternatives) => {
                let mut presented = false;
                for alt in alternatives {
                    let Some(token) = self.credential_of(alt, req) else {
                        continue;
                    };
                    presented = true;
                    let chosen = jwt::unverified_issuer(token)
                        .and_then(|iss| rules::select(std::slice::from_ref(alt), &iss, self));
                    if chosen.is_some() {
                        return self.requirement(alt, req, now, keys);
                    }
                }
                match (presented, alternatives.first()) {
                    (true, _) => Err(Refusal::bare(Reason::IssuerMismatch)),
                    // No credential at all: the first alternative's missing reason.
                    (false, Some(first)) => self.requirement(first, req, now, keys),
                    (false, None) => Err(Refusal::bare(Reason::InternalError)),
                }
            }
            Requirement::All(alternatives) => {
                let mut passed = Vec::new();
                for alt in alternatives {
                    if let Some(p) = self.requirement(alt, req, now, keys)? {
                        passed.extend(p);
                    }
                }
                Ok(Some(passed))
            }
        }
    }

    /// The token an alternative would check, if the request carries one.
    fn credential_of<'r>(
        &self,
        requirement: &Requirement,
        req: &'r RequestView,
    ) -> Option<&'r str> {
        match requirement {
            Requirement::Passport => passport::bearer_token(req.first(headers::AUTHORIZATION)).ok(),
            Requirement::Provider { provider, .. } => {
                let p = self.config.jwt_providers.get(*provider)?;
                let values = |name: &str| -> Vec<&'r [u8]> {
                    req.headers
                        .iter()
                        .filter(|(n, _)| n == name)
                        .map(|(_, v)| v.as_slice())
                        .collect()
                };
                dpop::provider::find_token(p, &values)
                    .ok()
                    .map(|(_, token, _)| token)
            }
            Requirement::All(inner) => inner.first().and_then(|f| self.credential_of(f, req)),
            Requirement::Any(inner) => inner.iter().find_map(|f| self.credential_of(f, req)),
            Requirement::Allow => None,
        }
    }

    fn check_provider(
        &self,
        index: usize,
        extra_scopes: &[String],
        req: &RequestView,
        now: i64,
        remote: &Keys<'_>,
    ) -> Result<TokenPass, Refusal> {
        let Some(provider) = self.config.jwt_providers.get(index) else {
            return Err(Refusal::bare(Reason::InternalError));
        };
        let provider_facts = || {
            Box::new(Facts {
                provider: Some(provider.name.clone()),
                ..Facts::default()
            })
        };
        let values = |name: &str| -> Vec<&[u8]> {
            req.headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
                .collect()
        };
        // A DPoP provider's 401s carry its challenges (section 14).
        let refuse = |reason: Reason, used: Option<Scheme>, facts: Box<Facts>| {
            let mut denial = Denial::new(reason, used.is_some(), Facts::default());
            dpop::challenge::dress(&mut denial, &provider.dpop, used, None);
            Refusal {
                reason,
                facts,
                challenges: denial.challenges,
                extra_headers: Vec::new(),
                hold: None,
                retry_after: None,
            }
        };
        let (scheme, token_text, header) =
            dpop::provider::find_token(provider, &values).map_err(|reason| {
                let used = (reason != Reason::MissingToken).then_some(Scheme::Bearer);
                refuse(reason, used, provider_facts())
            })?;
        // The gateway's own missing keys are a 503 with Retry-After, never a 401 (section 12).
        let unavailable = || Refusal {
            facts: provider_facts(),
            retry_after: Some(remote.remote.provider_retry_after(&provider.name, now)),
            ..Refusal::bare(Reason::KeysUnavailable)
        };
        // A held request asks for its keys (or a refetch), then is decided again from the
        // start with the keys and the clock of the wake-up.
        let hold = |reason: Reason| -> Option<Refusal> {
            if !remote.may_hold {
                return None;
            }
            let hold = remote.remote.provider_hold(&provider.name, reason, now)?;
            Some(Refusal {
                hold: Some(hold),
                ..Refusal::bare(Reason::KeysUnavailable)
            })
        };
        // Without keys the token still goes through the checks before the key lookup (a
        // malformed token is `malformed_token` at once, never held); its key lookup then finds
        // nothing, which is the gateway's problem, not the caller's.
        let no_keys = KeySet::default();
        let (keys, generation) = match &provider.keys {
            ProviderKeys::Inline(keys) => (keys, None),
            ProviderKeys::Remote(_) => match remote.remote.provider_keys(&provider.name, now) {
                ProviderLookup::Keys { keys, generation } => (keys, Some(generation)),
                ProviderLookup::Unavailable => (&no_keys, None),
            },
        };
        let missing = matches!(provider.keys, ProviderKeys::Remote(_)) && generation.is_none();
        let revocations = self
            .config
            .bundle
            .as_ref()
            .map_or(&[][..], |b| b.revocations.as_slice());
        let ctx = Context {
            provider,
            keys,
            extra_scopes,
            revocations,
            now,
        };
        let verified = {
            let mut caches = self.token_caches.borrow_mut();
            let mut cache = caches
                .get_mut(index)
                .filter(|_| provider.cache_max_entries > 0);
            // A cache entry vouches for a signature under one key set: a new set empties it.
            if let (Some(cache), Some(generation)) = (cache.as_deref_mut(), generation) {
                cache.sync_generation(generation);
            }
            jwt::verify(token_text, &ctx, cache)
        };
        let token = match verified {
            Ok(token) => token,
            Err(Reason::InsufficientScope) => {
                return Err(Refusal {
                    reason: Reason::InsufficientScope,
                    facts: provider_facts(),
                    challenges: Some(vec![format!(
                        "Bearer realm=\"proofgate\", error=\"insufficient_scope\", scope=\"{}\"",
                        jwt::required_scopes(provider, extra_scopes)
                    )]),
                    extra_headers: Vec::new(),
                    hold: None,
                    retry_after: None,
                });
            }
            Err(Reason::UnknownSigningKey) if missing => {
                return Err(hold(Reason::KeysUnavailable).unwrap_or_else(unavailable));
            }
            Err(reason @ (Reason::UnknownSigningKey | Reason::InvalidTokenSignature))
                if generation.is_some() =>
            {
                // A rotated key: one rate-limited refetch, the request held meanwhile.
                return Err(
                    hold(reason).unwrap_or_else(|| refuse(reason, Some(scheme), provider_facts()))
                );
            }
            Err(reason) => return Err(refuse(reason, Some(scheme), provider_facts())),
        };
        let dpop = if provider.dpop.mode == dpop::Mode::Disabled {
            None
        } else {
            let nonce_key = self.dpop_nonce_key.borrow();
            let ctx = dpop::Context {
                settings: &provider.dpop,
                provider: &provider.name,
                skew_seconds: provider.clock_skew_seconds,
                nonce_key: nonce_key.as_ref(),
                keys: Some(&self.dpop_keys),
                now,
            };
            let presented = dpop::Presented {
                scheme,
                token: token_text,
                cnf_jkt: dpop::provider::token_jkt(&token.claims),
            };
            let parts =
                dpop::RequestParts::from_view(req, self.config.transcript_scheme.as_deref());
            match dpop::check(&ctx, &presented, &parts) {
                Ok(dpop::Binding::Unbound) => None,
                Ok(dpop::Binding::Bound(proven)) => Some(proven),
                Err(refusal) => {
                    let mut facts = provider_facts();
                    facts.dpop_jkt = refusal.jkt;
                    let mut denial = Denial::new(refusal.reason, true, Facts::default());
                    dpop::challenge::dress(
                        &mut denial,
                        &provider.dpop,
                        Some(scheme),
                        refusal.nonce,
                    );
                    return Err(Refusal {
                        reason: refusal.reason,
                        facts,
                        challenges: denial.challenges,
                        extra_headers: denial.extra_headers,
                        hold: None,
                        retry_after: None,
                    });
                }
            }
        };
        Ok(TokenPass {
            provider: index,
            token,
            header,
            dpop,
        })
    }

    /// One [`Pending`] for everything that passed: a passport's, with each token's facts added
    /// and its expiry folded in (the earliest expiry decides, with its reason).
    fn pending_of(&self, passed: Vec<Passed>) -> Box<Pending> {
        let mut pending: Option<Box<Pending>> = None;
        let mut tokens = Vec::new();
        for p in passed {
            match p {
                Passed::Passport(p) => pending = Some(p),
                Passed::Token(t) => tokens.push(t),
            }
        }
        let mut pending = pending.unwrap_or_else(|| {
            Box::new(Pending {
                facts: Facts::default(),
                body_sha256: None,
                valid_until: i64::MAX,
                expired: Reason::TokenExpired,
                expired_challenges: None,
                fresh_until: None,
                replay: None,
                dpop: Vec::new(),
            })
        });
        let passport_subject = pending.facts.subject.is_some();
        for t in tokens {
            let Some(provider) = self.config.jwt_providers.get(t.provider) else {
                continue;
            };
            let until = t.token.exp.saturating_add(provider.clock_skew_seconds);
            if until < pending.valid_until {
                pending.valid_until = until;
                pending.expired = Reason::TokenExpired;
                // A DPoP provider answers an expired token with its DPoP challenges, in the
                // scheme the token came with (a proof came only with the DPoP scheme).
                let used = if t.dpop.is_some() {
                    Scheme::DPoP
                } else {
                    Scheme::Bearer
                };
                pending.expired_challenges =
                    (provider.dpop.mode != dpop::Mode::Disabled).then(|| {
                        dpop::challenge::challenges(
                            &provider.dpop,
                            Reason::TokenExpired,
                            Some(used),
                        )
                    });
            }
            add_token_facts(
                &mut pending.facts,
                provider,
                &t.token,
                &t.header,
                !passport_subject,
            );
            if provider.dpop.mode != dpop::Mode::Disabled {
                // The proof header goes with the token: stripped unless the provider forwards.
                let list = if provider.forward {
                    &mut pending.facts.keep_headers
                } else {
                    &mut pending.facts.strip_headers
                };
                list.push(dpop::HEADER.to_string());
            }
            if let Some(proven) = t.dpop {
                // The proof is acceptable until its last valid second, decided again then.
                let until = proven.last_valid.saturating_add(1);
                pending.facts.dpop_jkt = Some(proven.jkt.clone());
                let proof = PendingProof::new(provider, proven);
                if until < pending.valid_until {
                    pending.valid_until = until;
                    pending.expired = Reason::InvalidDpopProof;
                    pending.expired_challenges = Some(proof.challenges.clone());
                }
                pending.dpop.push(proof);
            }
        }
        if pending.facts.allow_detail.is_none() {
            pending.facts.allow_detail = Some("verified");
        }
        pending
    }
}

/// A verified token's facts: provider, scopes, `claim_to_headers`, and what happens to the token
/// header. With `identity`, its issuer, subject and jti are the request's audit identity (a
/// passport's, when one passed too, takes precedence).
fn add_token_facts(
    facts: &mut Facts,
    provider: &JwtProvider,
    token: &VerifiedToken,
    header: &str,
    identity: bool,
) {
    if identity {
        facts.issuer = clean_claim(Some(token.iss.clone()));
        facts.subject = token.sub.clone();
        facts.jti = token.jti.clone();
    }
    let names: Vec<&str> = facts
        .provider
        .iter()
        .map(String::as_str)
        .chain([provider.name.as_str()])
        .collect();
    facts.provider = Some(names.join(" "));
    facts.token_cache_hit |= token.cached;
    if !token.scopes.is_empty() {
        facts.scopes = clean_claim(Some(token.scopes.join(" ")));
    }
    for c in &provider.claim_to_headers {
        if let Some(value) = token.header_value(&c.claim) {
            facts.claim_headers.push((c.header.clone(), value));
        }
    }
    if provider.forward {
        facts.keep_headers.push(header.to_string());
    } else {
        facts.strip_headers.push(header.to_string());
    }
}
