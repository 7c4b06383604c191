//! The decision pipeline, in DESIGN.md section 7's order: exemption, route (and bundle
//! freshness), passport, revocation, identity, policy, proof (on the headers), body size, body
//! hash, time again, replay. It is split at the one point where the shell must wait: everything
//! that needs only headers runs first (a stolen passport without the caller's key is refused
//! before any body is buffered), and what can change during the wait (the passport's and the
//! bundle's time) is decided again, at the `now` of the callback that decides.

use crate::config::{Bundle, Config, Freshness, Route, Routing};
use crate::decision::{clean_claim, Denial, Facts, Unverified};
use crate::headers;
use crate::jwks::{Hold, NoRemoteKeys, RemoteKeys};
use crate::passport::{self, Passport};
use crate::policy;
use crate::proof;
use crate::reason::Reason;
use crate::replay::{Claim, Pressure, ReplayStore, SharedStore};
use crate::request::RequestView;
use crate::signer::SignerClass;

/// A loaded configuration ready to decide requests.
#[derive(Debug, Clone)]
pub struct Engine {
    pub config: Config,
    /// When the configuration (and so the bundle) was loaded, Unix seconds.
    pub loaded_at: i64,
    pub replay: ReplayStore,
    /// The verified-token cache of each `jwt_providers` entry, in this VM (section 13).
    pub token_caches: core::cell::RefCell<Vec<crate::jwt::TokenCache>>,
    /// The DPoP nonce secret, read from shared data by the shell for each request when a
    /// provider uses server nonces (section 14); `None` otherwise or when it could not be read.
    pub dpop_nonce_key: core::cell::RefCell<Option<crate::dpop::nonce::NonceKey>>,
    /// The DPoP proof keys proven in this VM (section 14): validated once, then given a table.
    pub dpop_keys: core::cell::RefCell<crate::dpop::key::KeyCache>,
}

/// The outcome of the headers phase.
#[derive(Debug)]
pub enum HeadersVerdict {
    /// An `allow_unauthenticated` request: no credentials checked.
    Exempt(Facts),
    Deny(Denial),
    /// Every check on the headers passed; the decision needs the complete body.
    NeedBody(Box<Pending>),
    /// The passport's issuer has remote keys that are not there yet (or a refetch may bring its
    /// `kid`): hold the request, then decide it again from the start (DESIGN.md section 12).
    AwaitKeys(Hold),
}

/// What a request that passed every header check still needs for its decision, and nothing
/// else: no header map and no passport, so a request waiting for its body costs a few hundred
/// bytes. Each field is credential-neutral, so another credential kind fills the same shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Verified facts, for the audit event, filter state and identity headers.
    pub facts: Facts,
    /// The complete body must hash to this (the signed `X-TrustPlane-Body-SHA256`); `None` when
    /// the credential does not bind the body.
    pub body_sha256: Option<[u8; 32]>,
    /// The credential is valid while `now < valid_until`; at or after it the answer is `expired`.
    pub valid_until: i64,
    pub expired: Reason,
    /// The `WWW-Authenticate` challenges `expired` answers with: a DPoP provider's, for its
    /// token or its proof; `None`: the default ones.
    pub expired_challenges: Option<Vec<String>>,
    /// The route's bundle is current while `now <= fresh_until`; `None`: it never goes stale.
    pub fresh_until: Option<i64>,
    /// The one-time key consumed at the decision.
    pub replay: Option<ReplayKey>,
    /// DPoP proofs whose `jti` is consumed at the decision, after the passport's (section 14).
    pub dpop: Vec<crate::dpop::provider::PendingProof>,
}

/// A one-time credential identifier and how long its consumption must be remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayKey {
    pub issuer: String,
    pub jti: String,
    /// The caller charged for the entry (its share of the store).
    pub subject: String,
    /// Unix seconds; always after the decision's `now` (the time check runs first).
    pub expires: i64,
}

impl ReplayKey {
    /// The replay store's claim for this passport jti.
    pub fn claim(&self) -> Claim<'_> {
        Claim {
            namespace: Claim::PASSPORT,
            issuer: &self.issuer,
            id: &self.jti,
            subject: &self.subject,
            until: self.expires,
        }
    }
}

/// A key consumed in shared data that the cluster-wide store (`replay.cluster`, DESIGN.md section
/// 15) must take as well, with what a refusal there answers: "consume this key until this time",
/// for a passport jti or a DPoP proof jti alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterKey {
    pub namespace: &'static str,
    pub issuer: String,
    pub id: String,
    pub subject: String,
    /// Unix seconds: the claim is live while `now < until`.
    pub until: i64,
    /// The answer when the cluster already holds the key: `jti_replay` for a passport,
    /// `dpop_replay` for a proof.
    pub replay: Reason,
    /// The `WWW-Authenticate` challenges that answer carries (a DPoP provider's); `None`: the
    /// default ones.
    pub challenges: Option<Vec<String>>,
}

impl ClusterKey {
    /// The replay store's claim for this key.
    pub fn claim(&self) -> Claim<'_> {
        Claim {
            namespace: self.namespace,
            issuer: &self.issuer,
            id: &self.id,
            subject: &self.subject,
            until: self.until,
        }
    }

    fn passport(key: &ReplayKey) -> Self {
        ClusterKey {
            namespace: Claim::PASSPORT,
            issuer: key.issuer.clone(),
            id: key.jti.clone(),
            subject: key.subject.clone(),
            until: key.expires,
            replay: Reason::JtiReplay,
            challenges: None,
        }
    }

    fn dpop(proof: crate::dpop::provider::PendingProof) -> Self {
        let until = proof.proven.claim().until;
        let crate::dpop::Proven { jkt, jti, .. } = proof.proven;
        ClusterKey {
            namespace: Claim::DPOP,
            issuer: jkt.clone(),
            id: jti,
            subject: jkt,
            until,
            replay: Reason::DpopReplay,
            challenges: Some(proof.challenges),
        }
    }
}

/// A request that passed every check, its jti (and any DPoP proof jti) consumed in shared data.
#[derive(Debug)]
pub struct Admitted {
    pub facts: Facts,
    pub pressure: Pressure,
    /// The consumed keys, in the order they were consumed, for the cluster-wide step
    /// (`replay.cluster`) that may follow: a passport jti, then DPoP proof jtis.
    pub cluster: Vec<ClusterKey>,
    /// What the decision still depends on in time, checked again after any later wait.
    pub valid_until: i64,
    pub expired: Reason,
    pub fresh_until: Option<i64>,
    /// The challenges `expired` answers with (a DPoP provider's token or proof).
    pub expired_challenges: Option<Vec<String>>,
}

impl Admitted {
    /// The time checks of the decision, again at `now` (after a wait such as an etcd round
    /// trip): the bundle still current, the credential (and any DPoP proof) still valid.
    pub fn recheck(&self, now: i64) -> Result<(), Reason> {
        if self.fresh_until.is_some_and(|until| now > until) {
            return Err(Reason::StaleBundleFailClosed);
        }
        if now >= self.valid_until {
            return Err(self.expired);
        }
        Ok(())
    }

    /// The denial for `reason`, decided after a wait: a refusal of [`Admitted::recheck`], a
    /// replay of `cluster[key]` in the cluster store, or the store's failure. A DPoP proof's
    /// refusal carries its provider's DPoP challenges, as it does at the local decision.
    pub fn refused(self, reason: Reason, key: Option<usize>) -> Denial {
        let challenges = match key.and_then(|i| self.cluster.get(i)) {
            Some(k) if k.replay == reason => k.challenges.clone(),
            Some(_) => None,
            None if reason == self.expired => self.expired_challenges.clone(),
            None => None,
        };
        Denial {
            challenges,
            ..Denial::new(reason, true, self.facts)
        }
    }
}

impl Engine {
    pub fn new(config: Config, loaded_at: i64) -> Self {
        let replay = ReplayStore::new(&config.replay);
        let token_caches = config
            .jwt_providers
            .iter()
            .map(|p| crate::jwt::TokenCache::new(p.cache_max_entries))
            .collect();
        Engine {
            config,
            loaded_at,
            replay,
            token_caches: core::cell::RefCell::new(token_caches),
            dpop_nonce_key: core::cell::RefCell::new(None),
            dpop_keys: core::cell::RefCell::new(crate::dpop::key::KeyCache::default()),
        }
    }

    /// Whether some provider issues DPoP nonces, so the shell must read their secret.
    pub fn uses_dpop_nonces(&self) -> bool {
        self.config.jwt_providers.iter().any(|p| {
            p.dpop.mode != crate::dpop::Mode::Disabled && p.dpop.nonce_rotate_seconds.is_some()
        })
    }

    /// Runs every check that needs only the request headers, with inline keys only.
    pub fn check_headers(&self, req: &RequestView, now: i64) -> HeadersVerdict {
        self.check_headers_with(req, now, &NoRemoteKeys, false)
    }

    /// [`Engine::check_headers`] with remote keys; `may_hold` allows an
    /// [`HeadersVerdict::AwaitKeys`] answer (false when deciding a request that was held).
    pub fn check_headers_with(
        &self,
        req: &RequestView,
        now: i64,
        remote: &dyn RemoteKeys,
        may_hold: bool,
    ) -> HeadersVerdict {
        let cfg = &self.config;
        let mut facts = Facts::default();
        if cfg
            .allow_unauthenticated
            .iter()
            .any(|r| r.matches(req.method(), req.path()))
        {
            facts.allow_detail = Some("exempt_route");
            return HeadersVerdict::Exempt(facts);
        }
        // Section 11: with `rules`, the first matching rule says which credential is needed.
        if let Some(rules) = &cfg.rules {
            return self.check_rules(rules, req, now, remote, may_hold);
        }
        self.check_passport(req, now, remote, may_hold)
    }

    /// Sections 3-6 on the headers: route, passport, identity, policy, proof signature.
    pub(crate) fn check_passport(
        &self,
        req: &RequestView,
        now: i64,
        remote: &dyn RemoteKeys,
        may_hold: bool,
    ) -> HeadersVerdict {
        let cfg = &self.config;
        let credential_presented = req.first(headers::AUTHORIZATION).is_some();
        let mut facts = Facts::default();
        let deny = |reason: Reason, facts: &Facts| {
            HeadersVerdict::Deny(Denial::new(reason, credential_presented, facts.clone()))
        };
        let bundle = cfg.bundle.as_ref();
        let route = match self.resolve_route(bundle, req) {
            Ok(route) => route,
            Err(reason) => return deny(reason, &facts),
        };
        let route_id = match (&cfg.routing, route) {
            (_, Some(r)) => r.route_id.clone(),
            (Routing::RouteId(id), None) => id.clone(),
            (Routing::Request, None) => return deny(Reason::BundleRouteMissing, &facts),
        };
        facts.route_id = Some(route_id.clone());
        let audience = route
            .and_then(|r| r.audience.clone())
            .or_else(|| cfg.audience.clone());
        let Some(audience) = audience else {
            // Refused at load; kept as a closed door rather than an unwrap.
            return deny(Reason::BundlePolicyMissing, &facts);
        };
        facts.audience = Some(audience.clone());
        let base_minimum = policy::route_minimum(cfg, bundle, route);
        facts.required_key_binding = Some(base_minimum.name().to_string());
        let fresh_until = match route.map(|r| self.fresh_until(r)) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(until))) if now <= until => Some(until),
            Some(Ok(Some(_))) => return deny(Reason::StaleBundleFailClosed, &facts),
            Some(Err(reason)) => return deny(reason, &facts),
        };

        let token = match passport::bearer_token(req.first(headers::AUTHORIZATION)) {
            Ok(t) if req.count(headers::AUTHORIZATION) == 1 => t,
            Ok(_) => return deny(Reason::MalformedPassport, &facts),
            Err(reason) => return deny(reason, &facts),
        };
        let ahead = proof::read_ahead(req);
        let passport = match passport::verify_with(token, cfg, remote, now, ahead.as_ref()) {
            Ok(p) => p,
            Err((reason, partial)) => {
                let remote_issuer = partial
                    .iss
                    .as_deref()
                    .filter(|iss| cfg.issuer(iss).is_some_and(|i| i.jwks.is_some()));
                if let (Some(iss), true) = (remote_issuer, may_hold) {
                    if let Some(hold) = remote.hold(iss, reason, now) {
                        return HeadersVerdict::AwaitKeys(hold);
                    }
                }
                let retry_after = match (reason, remote_issuer) {
                    (Reason::KeysUnavailable, Some(iss)) => Some(remote.retry_after(iss, now)),
                    (Reason::KeysUnavailable, None) => Some(1),
                    _ => None,
                };
                if signature_verified(reason) {
                    facts.issuer = clean_claim(partial.iss);
                    facts.subject = clean_claim(partial.sub);
                    facts.jti = clean_claim(partial.jti);
                } else {
                    facts.unverified = Unverified::new(
                        partial.iss.as_deref(),
                        partial.sub.as_deref(),
                        partial.jti.as_deref(),
                    );
                }
                return HeadersVerdict::Deny(Denial {
                    retry_after,
                    ..Denial::new(reason, credential_presented, facts)
                });
            }
        };
        facts.issuer = Some(passport.iss.clone());
        facts.subject = Some(passport.sub.clone());
        facts.trust_domain = Some(passport.trust_domain.clone());
        facts.jti = Some(passport.jti.clone());
        facts.key_binding = Some(passport.key_binding.name().to_string());

        if let Err(reason) = policy::check_identity(&passport, cfg, &audience) {
            return deny(reason, &facts);
        }
        let minimum = match (bundle, route) {
            (Some(b), Some(r)) => policy::check_sources(&passport, b, r, base_minimum),
            _ => check_without_bundle(&passport, base_minimum),
        };
        match minimum {
            Ok(m) => facts.required_key_binding = Some(m.name().to_string()),
            Err((reason, m)) => {
                facts.required_key_binding = Some(m.name().to_string());
                return deny(reason, &facts);
            }
        }

        let signed = match proof::verify_headers(cfg, req, &passport, &audience, &route_id) {
            Ok(signed) => signed,
            Err(reason) => return deny(reason, &facts),
        };
        facts.transcript_sha256 = Some(signed.digest_hex);

        let declared = req
            .text("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > cfg.max_body_bytes as u64) {
            return deny(Reason::BodyTooLarge, &facts);
        }
        let valid_until = passport.exp.saturating_add(cfg.clock_skew_seconds);
        HeadersVerdict::NeedBody(Box::new(Pending {
            facts,
            body_sha256: Some(signed.body_sha256),
            valid_until,
            expired: Reason::PassportExpired,
            expired_challenges: None,
            fresh_until,
            replay: Some(ReplayKey {
                issuer: passport.iss,
                jti: passport.jti,
                subject: passport.sub,
                expires: valid_until,
            }),
            dpop: Vec::new(),
        }))
    }

    /// Body-size limit check for each chunk the shell buffers.
    pub fn body_too_large(&self, buffered: usize) -> bool {
        buffered > self.config.max_body_bytes
    }

    /// The decision, once the body is complete (`body` is empty for a request without one), at
    /// `now`, the time of the callback that decides: body size, body hash, time again (bundle
    /// freshness, then the credential's validity), then the jti is consumed.
    // A denial carries its facts by value: it is built once per request, so boxing buys nothing.
    #[allow(clippy::result_large_err)]
    pub fn check_body(
        &self,
        pending: Pending,
        body: &[u8],
        store: &mut dyn SharedStore,
        now: i64,
    ) -> Result<Admitted, Denial> {
        let Pending {
            mut facts,
            body_sha256,
            valid_until,
            expired,
            expired_challenges,
            fresh_until,
            replay,
            dpop,
        } = pending;
        let deny = |reason: Reason, facts: Facts| Denial::new(reason, true, facts);
        if self.body_too_large(body.len()) {
            return Err(deny(Reason::BodyTooLarge, facts));
        }
        if body_sha256.is_some_and(|want| !proof::body_matches(&want, body)) {
            return Err(deny(Reason::RequestBindingMismatch, facts));
        }
        // The headers were checked at an earlier `now`; a slow body must not outlive them.
        if fresh_until.is_some_and(|until| now > until) {
            return Err(deny(Reason::StaleBundleFailClosed, facts));
        }
        if now >= valid_until {
            // A DPoP provider's token or proof answers with its DPoP challenge.
            return Err(Denial {
                challenges: expired_challenges,
                ..deny(expired, facts)
            });
        }
        let mut pressure = match &replay {
            None => Pressure::default(),
            Some(key) => match self.replay.consume(store, &key.claim(), now) {
                Ok(pressure) => pressure,
                Err(refused) => {
                    return Err(Denial {
                        replay: Some(refused.pressure),
                        ..deny(refused.reason, facts)
                    })
                }
            },
        };
        let mut cluster: Vec<ClusterKey> = replay.iter().map(ClusterKey::passport).collect();
        // DPoP proof jtis, last (section 14); their age is decided again by the store.
        for proof in dpop {
            match crate::dpop::consume(&self.replay, store, &proof.proven, now) {
                Ok(p) => {
                    pressure.cas_retries += p.cas_retries;
                    pressure.bucket_entries = p.bucket_entries;
                }
                Err(refused) => {
                    let mut denial = Denial {
                        replay: Some(refused.pressure),
                        ..deny(refused.reason, facts)
                    };
                    if refused.reason.status() == 401 {
                        denial.challenges = Some(proof.challenges);
                    }
                    return Err(denial);
                }
            }
            cluster.push(ClusterKey::dpop(proof));
        }
        facts.allow_detail = Some("verified");
        Ok(Admitted {
            facts,
            pressure,
            cluster,
            valid_until,
            expired,
            fresh_until,
            expired_challenges,
        })
    }

    fn resolve_route<'a>(
        &'a self,
        bundle: Option<&'a Bundle>,
        req: &RequestView,
    ) -> Result<Option<&'a Route>, Reason> {
        match (&self.config.routing, bundle) {
            (Routing::Request, Some(b)) => crate::routing::resolve(b, req.method(), req.path())
                .map(Some)
                .ok_or(Reason::BundleRouteMissing),
            (Routing::Request, None) => Err(Reason::BundlePolicyMissing),
            (Routing::RouteId(id), Some(b)) => {
                b.route(id).map(Some).ok_or(Reason::BundlePolicyMissing)
            }
            (Routing::RouteId(_), None) => Ok(None),
        }
    }

    /// The last second at which `route`'s bundle is current (its age is the time since
    /// proofgate loaded it); `None` when it never goes stale.
    fn fresh_until(&self, route: &Route) -> Result<Option<i64>, Reason> {
        let window = match route.freshness {
            Freshness::OfflineOk => return Ok(None),
            Freshness::Realtime => self.config.realtime_window_seconds,
            Freshness::Bounded(Some(max)) => max,
            Freshness::Bounded(None) | Freshness::Unknown => {
                return Err(Reason::BundleFreshnessUnknown)
            }
        };
        Ok(Some(self.loaded_at.saturating_add(window)))
    }
}

/// Whether a passport refused for `reason` had its signature verified first, so that what was
/// read of it is a fact. Listed, not inferred: a reason added later counts as unverified.
fn signature_verified(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Revoked
            | Reason::InvalidPassportClaims
            | Reason::PassportExpired
            | Reason::PassportNotYetValid
            | Reason::PassportLifetimeExceeded
    )
}

/// Without a bundle (route-id mode), every trust-material issuer is an allowed source and only
/// the signer-class minimum applies.
fn check_without_bundle(
    p: &Passport,
    minimum: SignerClass,
) -> Result<SignerClass, (Reason, SignerClass)> {
    if p.key_binding < minimum {
        return Err((Reason::InsufficientKeyBinding, minimum));
    }
    Ok(minimum)
}
