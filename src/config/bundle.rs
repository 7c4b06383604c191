//! The embedded `trustplane-bundle-v1` policy bundle (DESIGN.md section 6): APIs and their
//! audiences, routes with templates, allowed sources, signer-class minimums, freshness, context
//! and provenance policies, revocations. Unknown fields are tolerated (TrustPlane's format);
//! everything proofgate interprets is validated, with the JSON path of the first problem.

use super::reader::{self, ConfigError, Node, Obj, Result};
use super::signer_class;
use crate::policy::Revocations;
use crate::routing::{PathTemplate, RouteIndex};
use crate::signer::SignerClass;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Bundle {
    pub trust_domain: Option<String>,
    pub routes: Vec<Route>,
    pub default_required_key_binding: Option<SignerClass>,
    pub provenance_policy: Option<ProvenancePolicy>,
    pub revocations: Vec<Revocation>,
    /// `revocations` indexed at load.
    pub revoked: Revocations,
    /// `routes` indexed at load (method, path segments, id).
    pub index: RouteIndex,
    /// `policy_version`, `bundle_version` or `version_id`, for audit events.
    pub policy_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub route_id: String,
    /// Uppercase.
    pub method: String,
    pub template: PathTemplate,
    /// The audience of the route's API, when the bundle names one.
    pub audience: Option<String>,
    pub required_key_binding: Option<SignerClass>,
    pub sources: Vec<Source>,
    pub freshness: Freshness,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Current only within `realtime_window_seconds` of being loaded.
    Realtime,
    /// Current for this many seconds after being loaded; `None` when no positive maximum was
    /// given, which fails closed.
    Bounded(Option<i64>),
    OfflineOk,
    /// No freshness class at all: fails closed.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub issuer: String,
    pub trust_domain: String,
    pub subject: SubjectRule,
    pub required_key_binding: Option<SignerClass>,
    pub context_policy: Option<ContextPolicy>,
    pub provenance_policy: Option<ProvenancePolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRule {
    Exact(String),
    Prefix(String),
}

impl SubjectRule {
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            SubjectRule::Exact(s) => subject == s,
            SubjectRule::Prefix(p) => subject.starts_with(p.as_str()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextPolicy {
    pub required_tool_name: Option<String>,
    pub required_workflow_id: Option<String>,
    pub max_txn_value: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvenancePolicy {
    pub profile: Option<String>,
    pub required_spiffe_trust_domain: Option<String>,
    pub required_posture: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    Jti(String),
    SubjectBefore { sub: String, not_before: i64 },
    Key { issuer: String, kid: String },
}

impl Bundle {
    pub fn route(&self, id: &str) -> Option<&Route> {
        self.index.id(id).and_then(|i| self.routes.get(i))
    }
}

pub(super) fn parse(n: &Node<'_>) -> Result<Bundle> {
    let obj = n.object(None)?;
    match obj.raw("version").and_then(Value::as_str) {
        Some("trustplane-bundle-v1") => {}
        _ => return obj.err("version", "must be \"trustplane-bundle-v1\""),
    }
    let trust_domain = obj.string("trust_domain")?;
    let default_required_key_binding =
        obj.child("default_required_key_binding", |n| signer_class(&n))?;
    let default_freshness = freshness(
        &obj,
        "default_freshness_class",
        "default_max_staleness_seconds",
    )?;
    let provenance_policy = obj.child("provenance_policy", |n| provenance(&n))?;
    let policy_version = ["policy_version", "bundle_version", "version_id"]
        .iter()
        .find_map(|k| obj.raw(k).and_then(Value::as_str).map(str::to_string));

    let apis = obj
        .array("apis", |n| {
            let a = n.object(None)?;
            Ok((a.required_string("api_id")?, a.string("audience")?))
        })?
        .unwrap_or_default();
    for (i, (id, _)) in apis.iter().enumerate() {
        if apis[..i].iter().any(|(o, _)| o == id) {
            return obj.err(
                &format!("apis[{i}].api_id"),
                format!("duplicate api_id {id:?}"),
            );
        }
    }

    let mut routes: Vec<Route> = Vec::new();
    let groups = obj.array("route_groups", |g| {
        let g = g.object(None)?;
        let api_id = g.string("api_id")?;
        let audience = match &api_id {
            None => None,
            Some(id) => match apis.iter().find(|(a, _)| a == id) {
                Some((_, aud)) => aud.clone(),
                None => return g.err("api_id", format!("names no API of apis[]: {id:?}")),
            },
        };
        let routes = g
            .array("routes", |r| {
                parse_route(&r, audience.clone(), default_freshness)
            })?
            .unwrap_or_default();
        Ok((g.path().to_string(), routes))
    })?;
    let mut paths: Vec<String> = Vec::new();
    let mut index = RouteIndex::default();
    for (group_path, group_routes) in groups.unwrap_or_default() {
        for (i, route) in group_routes.into_iter().enumerate() {
            let path = format!("{group_path}.routes[{i}]");
            if let Some(dup) = index.id(&route.route_id) {
                return Err(ConfigError {
                    path: format!("{path}.route_id"),
                    message: format!(
                        "duplicate route_id {:?} (also at {})",
                        route.route_id, paths[dup]
                    ),
                });
            }
            if let Some(&clash) = index.clashes(&route).first() {
                return Err(ConfigError {
                    path: format!("{path}.path_template"),
                    message: format!(
                        "matches the same {} requests as route {:?} ({})",
                        route.method, routes[clash].route_id, paths[clash]
                    ),
                });
            }
            index.insert(&route, routes.len());
            routes.push(route);
            paths.push(path);
        }
    }
    if routes.is_empty() {
        return obj.err("route_groups", "must contain at least one route");
    }

    let revocations = obj
        .array("revocations", |n| revocation(&n))?
        .unwrap_or_default();

    let revoked = Revocations::new(&revocations);
    Ok(Bundle {
        trust_domain,
        routes,
        default_required_key_binding,
        provenance_policy,
        revocations,
        revoked,
        index,
        policy_version,
    })
}

fn parse_route(
    n: &Node<'_>,
    audience: Option<String>,
    default_freshness: FreshnessSpec,
) -> Result<Route> {
    let r = n.object(None)?;
    let route_id = r.required_string("route_id")?;
    let method = r.required_string("method")?.to_ascii_uppercase();
    if !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return r.err("method", "must be an HTTP method name");
    }
    let template = r.required("path_template", |n| {
        PathTemplate::parse(&reader::string(&n)?).or_else(|e| n.err(e))
    })?;
    let required_key_binding = r.child("required_key_binding", |n| signer_class(&n))?;
    let sources = r
        .array("allowed_sources", |n| source(&n))?
        .unwrap_or_default();
    if sources.is_empty() {
        return r.err(
            "allowed_sources",
            "must list at least one source (a route nobody may call is a config error)",
        );
    }
    let freshness =
        freshness(&r, "freshness_class", "max_staleness_seconds")?.resolve(default_freshness);
    Ok(Route {
        route_id,
        method,
        template,
        audience,
        required_key_binding,
        sources,
        freshness,
    })
}

/// A freshness class and maximum staleness as written, before route and bundle defaults combine.
#[derive(Debug, Clone, Copy, Default)]
struct FreshnessSpec {
    class: Option<FreshnessClass>,
    max_staleness: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
enum FreshnessClass {
    Realtime,
    Bounded,
    OfflineOk,
}

impl FreshnessSpec {
    /// The route's own values win field by field over the bundle defaults, so a route that only
    /// tightens `max_staleness_seconds` keeps the default class with its own limit.
    fn resolve(self, default: FreshnessSpec) -> Freshness {
        let max = self
            .max_staleness
            .or(default.max_staleness)
            .filter(|s| *s > 0);
        match self.class.or(default.class) {
            Some(FreshnessClass::Realtime) => Freshness::Realtime,
            Some(FreshnessClass::Bounded) => Freshness::Bounded(max),
            Some(FreshnessClass::OfflineOk) => Freshness::OfflineOk,
            None => Freshness::Unknown,
        }
    }
}

fn freshness(obj: &Obj<'_>, class_key: &str, staleness_key: &str) -> Result<FreshnessSpec> {
    let max_staleness = obj.child(staleness_key, |n| match n.value.as_i64() {
        Some(v) => Ok(v),
        None => n.err("must be an integer"),
    })?;
    let class = obj.child(class_key, |n| match reader::string(&n)?.as_str() {
        "realtime" => Ok(FreshnessClass::Realtime),
        "bounded" => Ok(FreshnessClass::Bounded),
        "offline-ok" | "offline_ok" => Ok(FreshnessClass::OfflineOk),
        other => n.err(format!(
            "unknown freshness class {other:?} (known: realtime, bounded, offline-ok)"
        )),
    })?;
    Ok(FreshnessSpec {
        class,
        max_staleness,
    })
}

fn source(n: &Node<'_>) -> Result<Source> {
    let s = n.object(None)?;
    let issuer = s.required_string("issuer")?;
    let trust_domain = s.required_string("trust_domain")?;
    let subject = match (s.string("subject_exact")?, s.string("subject_prefix")?) {
        (Some(e), None) => SubjectRule::Exact(e),
        (None, Some(p)) => SubjectRule::Prefix(p),
        (Some(_), Some(_)) => {
            return n.err("has both subject_exact and subject_prefix; give exactly one")
        }
        (None, None) => return n.err("needs exactly one of subject_exact or subject_prefix"),
    };
    let required_key_binding = s.child("required_key_binding", |n| signer_class(&n))?;
    let context_policy = s.child("context_policy", |n| {
        let c = n.object(None)?;
        let max_txn_value = c.child("max_txn_value", |n| match decimal(n.value) {
            Some(v) => Ok(v),
            None => n.err("must be a number or a decimal string"),
        })?;
        Ok(ContextPolicy {
            required_tool_name: c.string("required_tool_name")?,
            required_workflow_id: c.string("required_workflow_id")?,
            max_txn_value,
        })
    })?;
    let provenance_policy = s.child("provenance_policy", |n| provenance(&n))?;
    Ok(Source {
        issuer,
        trust_domain,
        subject,
        required_key_binding,
        context_policy,
        provenance_policy,
    })
}

fn provenance(n: &Node<'_>) -> Result<ProvenancePolicy> {
    let p = n.object(None)?;
    Ok(ProvenancePolicy {
        profile: p.string("profile")?,
        required_spiffe_trust_domain: p.string("required_spiffe_trust_domain")?,
        required_posture: p.string("required_posture")?,
    })
}

fn revocation(n: &Node<'_>) -> Result<Revocation> {
    let r = n.object(None)?;
    let has = |k: &str| r.raw(k).is_some();
    if has("jti") && !has("sub") && !has("issuer") {
        return Ok(Revocation::Jti(r.required_string("jti")?));
    }
    if has("sub") && !has("jti") && !has("issuer") {
        let sub = r.required_string("sub")?;
        let not_before = r.int("not_before", 0, i64::MAX)?;
        let Some(not_before) = not_before else {
            return r.err("not_before", "is required with sub (unix seconds)");
        };
        return Ok(Revocation::SubjectBefore { sub, not_before });
    }
    if has("issuer") && !has("jti") && !has("sub") {
        return Ok(Revocation::Key {
            issuer: r.required_string("issuer")?,
            kid: r.required_string("kid")?,
        });
    }
    n.err("must be exactly one of {\"jti\"}, {\"sub\", \"not_before\"} or {\"issuer\", \"kid\"}")
}

/// A finite number, from a JSON number or a plain decimal string such as `"1000.00"`.
pub fn decimal(v: &Value) -> Option<f64> {
    let parsed = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            let ok = !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(digits.contains('.') && frac.is_empty());
            if ok {
                s.parse::<f64>().ok()
            } else {
                None
            }
        }
        _ => None,
    };
    parsed.filter(|f| f.is_finite())
}
