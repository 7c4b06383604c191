//! `rules` (DESIGN.md section 11) as configuration: each rule's `match` and `requires`, checked
//! against the providers at load (unknown names, nesting deeper than 2, an `any` whose
//! alternatives could be chosen by the same issuer, an `all` whose alternatives read the same
//! header, a last rule that does not match every request).

use super::providers::JwtProvider;
use super::reader::{self, Node, Obj, Result};
use super::trust::TrustedIssuer;
use crate::path_match::PathTemplate;
use crate::rules::{PathRule, Requirement, Rule, RuleMatch};
use serde_json::Value;

/// Deepest `any`/`all` nesting accepted (section 11).
pub const MAX_DEPTH: usize = 2;

/// `rules`, if present: `None` means "no rules" (exactly the behaviour before rules existed).
pub(super) fn parse(
    obj: &Obj<'_>,
    providers: &[JwtProvider],
    issuers: &[TrustedIssuer],
) -> Result<Option<Vec<Rule>>> {
    let Some(rules) = obj.array("rules", |n| parse_rule(&n, providers, issuers))? else {
        return Ok(None);
    };
    match rules.last() {
        None => obj.err("rules", "must list at least one rule"),
        Some(last) if !last.matcher.is_catch_all() => obj.err(
            &format!("rules[{}].match", rules.len() - 1),
            "the last rule must match every request ({\"prefix\": \"/\"} without methods): nothing is decided by omission",
        ),
        Some(_) => Ok(Some(rules)),
    }
}

fn parse_rule(n: &Node<'_>, providers: &[JwtProvider], issuers: &[TrustedIssuer]) -> Result<Rule> {
    let obj = n.object(Some(&["match", "requires", "comment"]))?;
    let matcher = obj.required("match", |n| parse_match(&n))?;
    let requires = obj.required("requires", |n| parse_requirement(&n, providers, 0))?;
    obj.required("requires", |n| {
        check_alternatives(&n, &requires, providers, issuers)
    })?;
    Ok(Rule { matcher, requires })
}

fn parse_match(n: &Node<'_>) -> Result<RuleMatch> {
    let obj = n.object(Some(&["prefix", "path", "path_template", "methods"]))?;
    let given: Vec<&str> = ["prefix", "path", "path_template"]
        .into_iter()
        .filter(|k| obj.raw(k).is_some())
        .collect();
    if given.len() != 1 {
        return n.err("needs exactly one of prefix, path, path_template");
    }
    let text = obj.required_string(given[0])?;
    if !text.starts_with('/') {
        return obj.err(given[0], "must start with '/'");
    }
    if text.contains(['?', '#']) {
        return obj.err(
            given[0],
            "is matched before '?': it must not contain '?' or '#'",
        );
    }
    let path = match given[0] {
        "prefix" => PathRule::Prefix(text),
        "path" => PathRule::Exact(text),
        _ => match PathTemplate::parse(&text) {
            Ok(t) => PathRule::Template(t),
            Err(why) => return obj.err("path_template", why),
        },
    };
    let methods = obj.array("methods", |n| {
        let m = reader::string(&n)?;
        if !m.bytes().all(|b| b.is_ascii_uppercase()) {
            return n.err("must be an upper-case HTTP method");
        }
        Ok(m)
    })?;
    if methods.as_ref().is_some_and(Vec::is_empty) {
        return obj.err(
            "methods",
            "must not be empty (omit it to match every method)",
        );
    }
    Ok(RuleMatch { path, methods })
}

fn parse_requirement(n: &Node<'_>, providers: &[JwtProvider], depth: usize) -> Result<Requirement> {
    match n.value {
        Value::String(s) => match s.as_str() {
            "allow" if depth == 0 => Ok(Requirement::Allow),
            "allow" => n.err("\"allow\" cannot be an alternative of any/all"),
            "passport" => Ok(Requirement::Passport),
            other => n.err(format!(
                "unknown requirement {other:?} (known: \"allow\", \"passport\", {{\"provider\": ...}}, {{\"any\": [...]}}, {{\"all\": [...]}})"
            )),
        },
        Value::Object(m) if m.contains_key("provider") => {
            let obj = n.object(Some(&["provider", "scopes"]))?;
            let name = obj.required_string("provider")?;
            let Some(provider) = providers.iter().position(|p| p.name == name) else {
                return obj.err("provider", format!("unknown provider {name:?} (not in jwt_providers)"));
            };
            let scopes = obj
                .array("scopes", |n| super::providers::scope(&n))?
                .unwrap_or_default();
            Ok(Requirement::Provider { provider, scopes })
        }
        Value::Object(m) if m.len() == 1 && (m.contains_key("any") || m.contains_key("all")) => {
            let obj = n.object(None)?;
            let key = if m.contains_key("any") { "any" } else { "all" };
            if depth + 1 > MAX_DEPTH {
                return obj.err(key, format!("nesting deeper than {MAX_DEPTH}"));
            }
            let alts = obj
                .array(key, |n| parse_requirement(&n, providers, depth + 1))?
                .unwrap_or_default();
            if alts.len() < 2 {
                return obj.err(key, "needs at least two alternatives");
            }
            Ok(if key == "any" {
                Requirement::Any(alts)
            } else {
                Requirement::All(alts)
            })
        }
        _ => n.err("must be \"allow\", \"passport\", or an object with provider, any or all"),
    }
}

/// An `any` must be decidable by issuer alone; an `all` needs a credential per alternative.
fn check_alternatives(
    n: &Node<'_>,
    req: &Requirement,
    providers: &[JwtProvider],
    issuers: &[TrustedIssuer],
) -> Result<()> {
    match req {
        Requirement::Any(alts) => {
            let mut seen: Vec<String> = Vec::new();
            for alt in alts {
                for iss in selecting_issuers(alt, providers, issuers) {
                    if seen.contains(&iss) {
                        return n.err(format!(
                            "two alternatives of this any are chosen by the same issuer {iss:?}: the choice would be ambiguous"
                        ));
                    }
                    seen.push(iss);
                }
            }
            for alt in alts {
                check_alternatives(n, alt, providers, issuers)?;
            }
        }
        Requirement::All(alts) => {
            let mut seen: Vec<String> = Vec::new();
            for alt in alts {
                for h in credential_headers(alt, providers) {
                    if seen.contains(&h) {
                        return n.err(format!(
                            "two alternatives of this all read their credential from the header {h:?}: one request cannot carry both"
                        ));
                    }
                    seen.push(h);
                }
            }
            for alt in alts {
                check_alternatives(n, alt, providers, issuers)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn selecting_issuers(
    req: &Requirement,
    providers: &[JwtProvider],
    issuers: &[TrustedIssuer],
) -> Vec<String> {
    match req {
        Requirement::Passport => issuers.iter().map(|i| i.issuer.clone()).collect(),
        Requirement::Provider { provider, .. } => providers
            .get(*provider)
            .map(|p| vec![p.issuer.clone()])
            .unwrap_or_default(),
        Requirement::All(inner) => inner
            .first()
            .map(|f| selecting_issuers(f, providers, issuers))
            .unwrap_or_default(),
        Requirement::Any(inner) => inner
            .iter()
            .flat_map(|f| selecting_issuers(f, providers, issuers))
            .collect(),
        Requirement::Allow => Vec::new(),
    }
}

fn credential_headers(req: &Requirement, providers: &[JwtProvider]) -> Vec<String> {
    match req {
        Requirement::Passport => vec!["authorization".into()],
        Requirement::Provider { provider, .. } => providers
            .get(*provider)
            .map(|p| p.token_headers().map(str::to_string).collect())
            .unwrap_or_default(),
        Requirement::Any(inner) | Requirement::All(inner) => {
            let mut all: Vec<String> = inner
                .iter()
                .flat_map(|f| credential_headers(f, providers))
                .collect();
            all.sort();
            all.dedup();
            all
        }
        Requirement::Allow => Vec::new(),
    }
}
