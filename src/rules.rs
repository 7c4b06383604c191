//! `rules` (DESIGN.md section 11): which credential a request needs. The first rule whose
//! `match` fits decides; the last rule matches every request (checked at load), so nothing is
//! decided by omission. Paths are matched by the one path-matching module (`crate::path_match`),
//! so an ambiguous segment (`..`, `%2F`, ...) never matches a prefix or a placeholder here either.
//!
//! `any` picks its alternative by the credential presented, never by trying each: the token's
//! unverified `iss` selects `passport` (a trust-material issuer) or the provider whose `issuer` it
//! is. Unverified, that value only chooses which checks run; every chosen check then verifies
//! the token in full, so a forged `iss` can only select checks that then fail.

use crate::path_match::{self, PathTemplate};

/// How a rule matches a request path (before `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRule {
    Prefix(String),
    Exact(String),
    Template(PathTemplate),
}

/// A rule's `match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub path: PathRule,
    /// `None` matches every method.
    pub methods: Option<Vec<String>>,
}

impl RuleMatch {
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self
            .methods
            .as_ref()
            .is_some_and(|m| !m.iter().any(|x| x == method))
        {
            return false;
        }
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        match &self.path {
            PathRule::Prefix(p) => path_match::prefix_matches(p, path),
            PathRule::Exact(p) => path_match::exact_matches(p, path),
            PathRule::Template(t) => t.matches(path),
        }
    }

    /// Matches every request: `prefix: "/"` without `methods`.
    pub fn is_catch_all(&self) -> bool {
        self.methods.is_none() && matches!(&self.path, PathRule::Prefix(p) if p == "/")
    }
}

/// What a matching rule requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No credential.
    Allow,
    /// A passport and request proof (sections 3-6).
    Passport,
    /// A token of `jwt_providers[provider]`, holding `scopes` on top of the provider's own.
    Provider {
        provider: usize,
        scopes: Vec<String>,
    },
    /// One alternative, picked by the credential's issuer.
    Any(Vec<Requirement>),
    /// Every alternative.
    All(Vec<Requirement>),
}

impl Requirement {
    /// True if this requirement (or an alternative in it) can require a passport.
    pub fn needs_passport(&self) -> bool {
        match self {
            Requirement::Passport => true,
            Requirement::Allow | Requirement::Provider { .. } => false,
            Requirement::Any(alts) | Requirement::All(alts) => {
                alts.iter().any(Self::needs_passport)
            }
        }
    }

    /// Nesting depth: a leaf is 0, `any`/`all` one more than their deepest alternative.
    pub fn depth(&self) -> usize {
        match self {
            Requirement::Any(alts) | Requirement::All(alts) => {
                1 + alts.iter().map(Self::depth).max().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: RuleMatch,
    pub requires: Requirement,
}

/// The first rule matching the request, with its index (for logs and audit).
pub fn first_match<'a>(rules: &'a [Rule], method: &str, path: &str) -> Option<(usize, &'a Rule)> {
    rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.matcher.matches(method, path))
}

/// What an `any` alternative is chosen by: the issuer its credential names.
pub trait IssuerOf {
    /// True if `iss` selects the passport alternative (a trust-material issuer).
    fn is_passport_issuer(&self, iss: &str) -> bool;
    /// The issuer of `jwt_providers[provider]`.
    fn provider_issuer(&self, provider: usize) -> Option<&str>;
}

/// Picks the alternative of an `any` whose issuer is `iss` (the first, if several could).
pub fn select<'a>(
    alternatives: &'a [Requirement],
    iss: &str,
    issuers: &dyn IssuerOf,
) -> Option<&'a Requirement> {
    alternatives.iter().find(|alt| selects(alt, iss, issuers))
}

fn selects(alt: &Requirement, iss: &str, issuers: &dyn IssuerOf) -> bool {
    match alt {
        Requirement::Passport => issuers.is_passport_issuer(iss),
        Requirement::Provider { provider, .. } => issuers.provider_issuer(*provider) == Some(iss),
        // An `all` inside an `any` is chosen by its first alternative's credential.
        Requirement::All(inner) => inner.first().is_some_and(|f| selects(f, iss, issuers)),
        Requirement::Any(inner) => inner.iter().any(|f| selects(f, iss, issuers)),
        Requirement::Allow => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> RuleMatch {
        RuleMatch {
            path: PathRule::Prefix(p.into()),
            methods: None,
        }
    }

    fn rules() -> Vec<Rule> {
        vec![
            Rule {
                matcher: prefix("/healthz"),
                requires: Requirement::Allow,
            },
            Rule {
                matcher: RuleMatch {
                    path: PathRule::Template(PathTemplate::parse("/internal/{name}").unwrap()),
                    methods: Some(vec!["GET".into(), "POST".into()]),
                },
                requires: Requirement::Provider {
                    provider: 0,
                    scopes: vec!["read:orders".into()],
                },
            },
            Rule {
                matcher: RuleMatch {
                    path: PathRule::Exact("/v1/exact".into()),
                    methods: None,
                },
                requires: Requirement::Passport,
            },
            Rule {
                matcher: prefix("/"),
                requires: Requirement::Any(vec![
                    Requirement::Passport,
                    Requirement::Provider {
                        provider: 1,
                        scopes: vec![],
                    },
                ]),
            },
        ]
    }

    #[test]
    fn first_match_wins() {
        let r = rules();
        let idx = |m: &str, p: &str| first_match(&r, m, p).map(|(i, _)| i);
        assert_eq!(idx("GET", "/healthz"), Some(0));
        assert_eq!(idx("GET", "/healthz/live?x=1"), Some(0));
        assert_eq!(idx("GET", "/healthzfoo"), Some(3));
        // A path with an ambiguous segment matches no rule, not even the catch-all: the caller
        // refuses it rather than guess which rule the upstream would see.
        assert_eq!(idx("GET", "/healthz/..%2Fadmin"), None);
        assert_eq!(idx("GET", "/healthz/../admin"), None);
        assert_eq!(idx("GET", "/x/%2e%2e/admin"), None);
        assert_eq!(idx("GET", "/internal/orders"), Some(1));
        assert_eq!(idx("POST", "/internal/orders?q=1"), Some(1));
        assert_eq!(
            idx("DELETE", "/internal/orders"),
            Some(3),
            "method not listed"
        );
        assert_eq!(
            idx("GET", "/internal/a/b"),
            Some(3),
            "placeholder is one segment"
        );
        assert_eq!(idx("GET", "/internal/..%2Fx"), None);
        assert_eq!(idx("GET", "/v1/exact"), Some(2));
        assert_eq!(idx("GET", "/v1/exact/"), Some(3));
        assert_eq!(idx("GET", "/v1/exact?a=b"), Some(2));
        assert_eq!(idx("GET", "/anything"), Some(3));
        assert!(r[3].matcher.is_catch_all());
        assert!(!r[0].matcher.is_catch_all());
    }

    struct Issuers;
    impl IssuerOf for Issuers {
        fn is_passport_issuer(&self, iss: &str) -> bool {
            iss == "https://passports"
        }
        fn provider_issuer(&self, provider: usize) -> Option<&str> {
            ["https://a", "https://b"].get(provider).copied()
        }
    }

    #[test]
    fn any_selects_by_issuer_only() {
        let alts = [
            Requirement::Passport,
            Requirement::Provider {
                provider: 1,
                scopes: vec![],
            },
        ];
        assert_eq!(select(&alts, "https://passports", &Issuers), Some(&alts[0]));
        assert_eq!(select(&alts, "https://b", &Issuers), Some(&alts[1]));
        // Provider 0's issuer is not an alternative of this `any`.
        assert_eq!(select(&alts, "https://a", &Issuers), None);
        assert_eq!(select(&alts, "", &Issuers), None);
        let nested = [Requirement::All(vec![
            Requirement::Provider {
                provider: 0,
                scopes: vec![],
            },
            Requirement::Passport,
        ])];
        assert_eq!(select(&nested, "https://a", &Issuers), Some(&nested[0]));
        assert_eq!(select(&nested, "https://passports", &Issuers), None);
    }

    #[test]
    fn depth_and_passport_need() {
        let r = rules();
        assert!(r[3].requires.needs_passport());
        assert!(!r[1].requires.needs_passport());
        assert_eq!(r[3].requires.depth(), 1);
        assert_eq!(Requirement::Allow.depth(), 0);
    }
}
