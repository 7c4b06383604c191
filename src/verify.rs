//! The decision pipeline, in DESIGN.md section 7's order: exemption, route (and bundle
//! freshness), passport, revocation, identity, policy, body size, proof, replay. It is split at
//! the one point where the shell must wait: everything that needs only headers runs first, so a
//! bad passport is refused before any body is buffered.

use crate::config::{Bundle, Config, Freshness, Route, Routing};
use crate::decision::{Denial, Facts};
use crate::headers;
use crate::passport::{self, Passport};
use crate::policy;
use crate::proof;
use crate::reason::Reason;
use crate::replay::{Pressure, ReplayStore, SharedStore};
use crate::request::RequestView;
use crate::signer::SignerClass;

/// A loaded configuration ready to decide requests.
#[derive(Debug, Clone)]
pub struct Engine {
    pub config: Config,
    /// When the configuration (and so the bundle) was loaded, Unix seconds.
    pub loaded_at: i64,
    pub replay: ReplayStore,
}

/// The outcome of the headers phase.
#[derive(Debug)]
pub enum HeadersVerdict {
    /// An `allow_unauthenticated` request: no credentials checked.
    Exempt(Facts),
    Deny(Denial),
    /// Passport and policy passed; the proof needs the body.
    NeedBody(Box<Pending>),
}

/// A request whose passport and policy passed.
#[derive(Debug)]
pub struct Pending {
    pub passport: Passport,
    pub route_id: String,
    pub audience: String,
    pub facts: Facts,
}

/// A request that passed every check, its jti consumed.
#[derive(Debug)]
pub struct Admitted {
    pub facts: Facts,
    pub pressure: Pressure,
}

impl Engine {
    pub fn new(config: Config, loaded_at: i64) -> Self {
        let replay = ReplayStore::new(config.replay_max_entries);
        Engine {
            config,
            loaded_at,
            replay,
        }
    }

    /// Runs every check that needs only the request headers.
    pub fn check_headers(&self, req: &RequestView, now: i64) -> HeadersVerdict {
        let cfg = &self.config;
        let credential_presented = req.first(headers::AUTHORIZATION).is_some();
        let mut facts = Facts::default();
        let deny = |reason: Reason, facts: &Facts| {
            HeadersVerdict::Deny(Denial::new(reason, credential_presented, facts.clone()))
        };

        if cfg
            .allow_unauthenticated
            .iter()
            .any(|r| r.matches(req.method(), req.path()))
        {
            facts.allow_detail = Some("exempt_route");
            return HeadersVerdict::Exempt(facts);
        }

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
        if let Some(route) = route {
            if let Err(reason) = self.check_freshness(route, now) {
                return deny(reason, &facts);
            }
        }

        let token = match passport::bearer_token(req.first(headers::AUTHORIZATION)) {
            Ok(t) if req.count(headers::AUTHORIZATION) == 1 => t,
            Ok(_) => return deny(Reason::MalformedPassport, &facts),
            Err(reason) => return deny(reason, &facts),
        };
        let passport = match passport::verify(token, cfg, now) {
            Ok(p) => p,
            Err((reason, partial)) => {
                facts.issuer = partial.iss;
                facts.subject = partial.sub;
                facts.jti = partial.jti;
                return deny(reason, &facts);
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

        let declared = req
            .text("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > cfg.max_body_bytes as u64) {
            return deny(Reason::BodyTooLarge, &facts);
        }
        HeadersVerdict::NeedBody(Box::new(Pending {
            passport,
            route_id,
            audience,
            facts,
        }))
    }

    /// Body-size limit check for each chunk the shell buffers.
    pub fn body_too_large(&self, buffered: usize) -> bool {
        buffered > self.config.max_body_bytes
    }

    /// Checks the request proof over the complete body and consumes the jti.
    // A denial carries its facts by value: it is built once per request, so boxing buys nothing.
    #[allow(clippy::result_large_err)]
    pub fn check_body(
        &self,
        pending: Pending,
        req: &RequestView,
        body: &[u8],
        store: &mut dyn SharedStore,
        now: i64,
    ) -> Result<Admitted, Denial> {
        let Pending {
            passport,
            route_id,
            audience,
            mut facts,
        } = pending;
        let deny = |reason: Reason, facts: Facts| Denial::new(reason, true, facts);
        if self.body_too_large(body.len()) {
            return Err(deny(Reason::BodyTooLarge, facts));
        }
        match proof::verify(&self.config, req, body, &passport, &audience, &route_id) {
            Ok(digest) => facts.transcript_sha256 = Some(digest),
            Err(reason) => return Err(deny(reason, facts)),
        }
        let expires = passport.exp.saturating_add(self.config.clock_skew_seconds);
        match self
            .replay
            .consume(store, &passport.iss, &passport.jti, expires, now)
        {
            Ok(pressure) => {
                facts.allow_detail = Some("verified");
                Ok(Admitted { facts, pressure })
            }
            Err(refused) => Err(Denial {
                replay: Some(refused.pressure),
                ..deny(refused.reason, facts)
            }),
        }
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

    /// The bundle's age is the time since proofgate loaded it.
    fn check_freshness(&self, route: &Route, now: i64) -> Result<(), Reason> {
        let age = now.saturating_sub(self.loaded_at);
        match route.freshness {
            Freshness::OfflineOk => Ok(()),
            Freshness::Realtime if age <= self.config.realtime_window_seconds => Ok(()),
            Freshness::Bounded(Some(max)) if age <= max => Ok(()),
            Freshness::Realtime | Freshness::Bounded(Some(_)) => Err(Reason::StaleBundleFailClosed),
            Freshness::Bounded(None) | Freshness::Unknown => Err(Reason::BundleFreshnessUnknown),
        }
    }
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
