//! DPoP (RFC 9449) proof-of-possession for bearer JWT providers, DESIGN.md section 14: given a
//! token that already passed its provider's checks (section 13), decide whether the way it was
//! presented is acceptable: downgrade protection first, then every check of RFC 9449 section
//! 4.3 and 7.1 in order, each failure with its exact reason. The proof's `jti` is consumed last,
//! through the replay store's "consume this key until this time" interface ([`consume`]), after
//! every other check of the request has passed.
//!
//! Pure: the request arrives as a [`RequestParts`], the time as `now`, the nonce secret as a
//! [`nonce::NonceKey`] the shell read from shared data.

pub mod challenge;
pub mod htu;
pub mod key;
pub mod nonce;
mod proof;
pub mod provider;

pub use crate::algs::Alg;
use crate::reason::Reason;
use crate::replay::{self, Claim, Pressure, Refused, ReplayStore, SharedStore};
use crate::request::RequestView;
use key::ProofKey;
use nonce::NonceKey;
use serde_json::Value;

pub const DEFAULT_MAX_AGE_SECONDS: i64 = 60;
/// A proof `jti` longer than this is refused (RFC 9449 section 11.1: no unnecessarily large
/// `jti` values); a UUID is 36 bytes, 96 random bits in base64url 16.
pub const MAX_JTI_BYTES: usize = 256;
/// The request header carrying the proof (lowercase, as the request view holds names).
pub const HEADER: &str = "dpop";
/// The response header carrying a server nonce.
pub const NONCE_HEADER: &str = "dpop-nonce";

/// A provider's `dpop` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// DPoP is not understood: only `Bearer` tokens are looked for.
    #[default]
    Disabled,
    /// `DPoP` tokens with a proof, and `Bearer` tokens without `cnf.jkt`.
    Allowed,
    /// Only DPoP-bound tokens with a proof.
    Required,
}

impl Mode {
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "disabled" => Some(Mode::Disabled),
            "allowed" => Some(Mode::Allowed),
            "required" => Some(Mode::Required),
            _ => None,
        }
    }
}

/// The proof algorithms accepted when `dpop_algorithms` is not set.
pub const DEFAULT_ALGORITHMS: [Alg; 2] = [Alg::EdDSA, Alg::ES256];

/// A `dpop_algorithms` entry: an asymmetric algorithm proofgate verifies (`none` and HMAC are
/// never proof algorithms, RFC 9449 section 4.2).
pub fn proof_alg(name: &str) -> Option<Alg> {
    Alg::parse(name).filter(|a| !a.is_symmetric())
}

/// The configured algorithm a proof header's `alg` names: `EdDSA` also admits the
/// fully-specified JOSE name `Ed25519` that current clients (e.g. the npm `dpop` package) send.
fn admitted(algorithms: &[Alg], header_alg: &str) -> Option<Alg> {
    algorithms
        .iter()
        .copied()
        .find(|a| a.name() == header_alg || (*a == Alg::EdDSA && header_alg == "Ed25519"))
}

/// A provider's DPoP configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    /// Non-empty, no duplicates.
    pub algorithms: Vec<Alg>,
    pub max_age_seconds: i64,
    /// `dpop_nonce.rotate_seconds`: server nonces are required when set.
    pub nonce_rotate_seconds: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Disabled,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_age_seconds: DEFAULT_MAX_AGE_SECONDS,
            nonce_rotate_seconds: None,
        }
    }
}

/// The `Authorization` scheme a token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    DPoP,
}

/// Splits an `Authorization` value into its scheme and token: `Bearer` or `DPoP` (scheme names
/// are case-insensitive, RFC 9110 section 11.1), one space, then a token without whitespace.
pub fn split_authorization(value: &str) -> Option<(Scheme, &str)> {
    let (name, token) = value.split_once(' ')?;
    let scheme = if name.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if name.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return None;
    };
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    Some((scheme, token))
}

/// A verified token as it was presented.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub scheme: Scheme,
    /// The token exactly as sent (what `ath` hashes).
    pub token: &'a str,
    /// The verified token's `cnf.jkt`, if it has one.
    pub cnf_jkt: Option<&'a str>,
}

/// What the checks read from the request.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// `transcript_scheme` when configured (TLS ended before Envoy), else `:scheme`.
    pub scheme: &'a str,
    pub authority: &'a str,
    /// `:path` before any `?`.
    pub path: &'a str,
    /// Every `DPoP` header value, in arrival order.
    pub proofs: Vec<&'a [u8]>,
}

impl<'a> RequestParts<'a> {
    pub fn from_view(req: &'a RequestView, transcript_scheme: Option<&'a str>) -> Self {
        RequestParts {
            method: req.method(),
            scheme: transcript_scheme.unwrap_or_else(|| req.scheme()),
            authority: req.authority(),
            path: req.path(),
            proofs: req
                .headers
                .iter()
                .filter(|(n, _)| n == HEADER)
                .map(|(_, v)| v.as_slice())
                .collect(),
        }
    }
}

/// The outcome of a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// A plain bearer token on a provider that allows one: no proof involved.
    Unbound,
    /// A valid proof for this request; its `jti` still has to be consumed.
    Bound(Proven),
}

/// A proof that passed every check but the replay check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// RFC 7638 thumbprint of the proof key (equal to the token's `cnf.jkt`).
    pub jkt: String,
    pub jti: String,
    /// The last second at which the proof is still acceptable (`iat + dpop_max_age_seconds`).
    pub last_valid: i64,
}

/// A refused request, with what may be said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    /// The proof key's thumbprint, once its signature verified (for the audit event).
    pub jkt: Option<String>,
    /// A fresh server nonce for the `DPoP-Nonce` response header (`use_dpop_nonce`).
    pub nonce: Option<String>,
}

impl Refusal {
    fn new(reason: Reason) -> Self {
        Refusal {
            reason,
            jkt: None,
            nonce: None,
        }
    }
}

/// What a check needs besides the token and the request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub settings: &'a Settings,
    /// Provider name: nonces are bound to it.
    pub provider: &'a str,
    /// The provider's `clock_skew_seconds`: how far in the future `iat` may be.
    pub skew_seconds: i64,
    /// The shared nonce secret; required when `settings.nonce_rotate_seconds` is set.
    pub nonce_key: Option<&'a NonceKey>,
    /// The VM's cache of proven proof keys; `None`: every key is validated afresh.
    pub keys: Option<&'a core::cell::RefCell<key::KeyCache>>,
    pub now: i64,
}

/// Decides how `presented` may be used for `req` (DESIGN.md section 14), in order: downgrade,
/// one `DPoP` header, well-formed JWS, `typ`, `alg`, `jwk`, signature, claims present, `htm`,
/// `htu`, `nonce`, `iat`, `ath`, `cnf.jkt`.
pub fn check(
    ctx: &Context<'_>,
    presented: &Presented<'_>,
    req: &RequestParts<'_>,
) -> Result<Binding, Refusal> {
    let settings = ctx.settings;
    match (settings.mode, presented.scheme, presented.cnf_jkt) {
        (Mode::Disabled, _, _) => return Ok(Binding::Unbound),
        // RFC 9449 section 7.2: a DPoP-bound token presented as a bearer token.
        (_, Scheme::Bearer, Some(_)) => return Err(Refusal::new(Reason::DpopDowngrade)),
        (Mode::Required, _, None) => return Err(Refusal::new(Reason::DpopDowngrade)),
        (Mode::Allowed, Scheme::Bearer, None) => return Ok(Binding::Unbound),
        (_, Scheme::DPoP, _) => {}
    }

    let invalid = || Refusal::new(Reason::InvalidDpopProof);
    let value = match req.proofs.as_slice() {
        [] => return Err(Refusal::new(Reason::MissingDpopProof)),
        [one] => *one,
        _ => return Err(invalid()),
    };
    let parsed = proof::parse(value).ok_or_else(invalid)?;
    let header = &parsed.header;
    match header.get("typ") {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("dpop+jwt") => {}
        _ => return Err(invalid()),
    }
    // No JWS extension is understood, so none may be critical (RFC 7515 section 4.1.11).
    if header.contains_key("crit") {
        return Err(invalid());
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => admitted(&settings.algorithms, name).ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    let (key, jkt) = match header.get("jwk") {
        Some(Value::Object(jwk)) => {
            ProofKey::from_jwk_cached(jwk, ctx.keys).map_err(|_| invalid())?
        }
        _ => return Err(invalid()),
    };
    if !key.verify(alg, parsed.signing_input, &parsed.signature) {
        return Err(invalid());
    }

    // The key is proven from here on: its thumbprint may be recorded.
    let refuse = |reason: Reason| Refusal {
        reason,
        jkt: Some(jkt.clone()),
        nonce: None,
    };
    let claims = &parsed.claims;
    let text = |name: &str| match claims.get(name) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let (Some(jti), Some(htm), Some(htu), Some(ath), Some(iat)) = (
        text("jti"),
        text("htm"),
        text("htu"),
        text("ath"),
        claims.get("iat").and_then(Value::as_i64),
    ) else {
        return Err(refuse(Reason::InvalidDpopProof));
    };
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(refuse(Reason::InvalidDpopProof));
    }
    let nonce_claim = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.as_str()),
        Some(_) => return Err(refuse(Reason::InvalidDpopProof)),
    };

    if htm != req.method {
        return Err(refuse(Reason::DpopBindingMismatch));
    }
    let target = htu::from_request(req.scheme, req.authority, req.path);
    match (htu::from_htu(htu), target) {
        (Some(claimed), Some(actual)) if claimed == actual => {}
        _ => return Err(refuse(Reason::DpopBindingMismatch)),
    }

    if let Some(rotate) = settings.nonce_rotate_seconds {
        // Without the shared secret nothing can be issued or checked: fail closed.
        let Some(nonce_key) = ctx.nonce_key else {
            return Err(refuse(Reason::InternalError));
        };
        let fresh =
            nonce_claim.is_some_and(|n| nonce_key.accepts(ctx.provider, rotate, n, ctx.now));
        if !fresh {
            return Err(Refusal {
                nonce: Some(nonce_key.issue(ctx.provider, rotate, ctx.now)),
                ..refuse(Reason::UseDpopNonce)
            });
        }
    }

    let last_valid = iat.saturating_add(settings.max_age_seconds);
    if ctx.now > last_valid || iat > ctx.now.saturating_add(ctx.skew_seconds) {
        return Err(refuse(Reason::InvalidDpopProof));
    }
    if ath != key::access_token_hash(presented.token) {
        return Err(refuse(Reason::DpopBindingMismatch));
    }
    if presented.cnf_jkt != Some(jkt.as_str()) {
        return Err(refuse(Reason::DpopBindingMismatch));
    }
    key.proven(ctx.keys);
    Ok(Binding::Bound(Proven {
        jkt,
        jti: jti.to_string(),
        last_valid,
    }))
}

impl Proven {
    /// The replay store's claim for this proof: its `jti`, unique per key (the key's
    /// thumbprint is both the namespace's issuer and the caller charged for the entry), held
    /// until just after the proof's last valid second.
    pub fn claim(&self) -> Claim<'_> {
        Claim {
            namespace: Claim::DPOP,
            issuer: &self.jkt,
            id: &self.jti,
            subject: &self.jkt,
            until: self.last_valid.saturating_add(1),
        }
    }
}

/// The reason for a proof `jti` the replay store refused: a second use is `dpop_replay`; a
/// proof that aged out while the request waited (a held body, a key fetch) is
/// `invalid_dpop_proof`, since its age is decided again at the decision; a store that cannot
/// take it fails closed.
pub fn replay_reason(refusal: replay::Refusal) -> Reason {
    match refusal {
        replay::Refusal::Replay => Reason::DpopReplay,
        replay::Refusal::Expired => Reason::InvalidDpopProof,
        replay::Refusal::Full
        | replay::Refusal::ShareFull
        | replay::Refusal::ClockBehind
        | replay::Refusal::Unavailable => Reason::ReplayStoreUnavailable,
    }
}

/// Consumes a proven proof's `jti` across every worker (and, with a cluster store, every
/// replica). Called at the decision, after every other check.
pub fn consume(
    replay: &ReplayStore,
    store: &mut dyn SharedStore,
    proven: &Proven,
    now: i64,
) -> Result<Pressure, Refused> {
    replay
        .consume(store, &proven.claim(), now)
        .map_err(|refused| Refused {
            reason: replay_reason(refused.refusal),
            ..refused
        })
}

#[cfg(test)]
mod tests;
