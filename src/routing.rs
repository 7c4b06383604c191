//! Route resolution (DESIGN.md sections 2 and 6): which bundle route a request belongs to.
//! `request` mode matches method + `path_template` (single-segment `{name}` placeholders, an
//! exact path beats a template); `route-id` mode names the route in configuration.

use crate::config::{Bundle, Route};

/// A parsed `path_template`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder,
}

impl PathTemplate {
    /// Parses `/a/{b}/c`. Placeholders must fill a whole segment and be named `[A-Za-z0-9_]+`.
    pub fn parse(text: &str) -> Result<PathTemplate, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("must start with '/'".into());
        };
        let mut segments = Vec::new();
        for seg in rest.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!("invalid placeholder {seg:?}"));
                }
                segments.push(Segment::Placeholder);
            } else if seg.contains(['{', '}', '?', '#']) {
                return Err(format!(
                    "invalid segment {seg:?}: placeholders must fill a whole segment"
                ));
            } else {
                segments.push(Segment::Literal(seg.to_string()));
            }
        }
        Ok(PathTemplate { segments })
    }

    /// True if the template has no placeholder.
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// True if `path` (no query) matches; placeholders match one non-empty segment.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for seg in &self.segments {
            match (seg, parts.next()) {
                (Segment::Literal(l), Some(p)) if l == p => {}
                (Segment::Placeholder, Some(p)) if !p.is_empty() => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }

    /// True if some path matches both templates.
    pub fn overlaps(&self, other: &PathTemplate) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Literal(l), Segment::Placeholder)
                    | (Segment::Placeholder, Segment::Literal(l)) => !l.is_empty(),
                    (Segment::Placeholder, Segment::Placeholder) => true,
                })
    }
}

/// The route for `method` + `path`: an exact template first, then the (unique, checked at load)
/// placeholder template.
pub fn resolve<'b>(bundle: &'b Bundle, method: &str, path: &str) -> Option<&'b Route> {
    let candidates = || {
        bundle
            .routes
            .iter()
            .filter(|r| r.method == method && r.template.matches(path))
    };
    candidates()
        .find(|r| r.template.is_exact())
        .or_else(|| candidates().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_templates() {
        let t = PathTemplate::parse("/v1/orders/{order_id}").unwrap();
        assert!(t.matches("/v1/orders/123"));
        assert!(!t.matches("/v1/orders/"));
        assert!(!t.matches("/v1/orders"));
        assert!(!t.matches("/v1/orders/1/2"));
        assert!(!t.matches("v1/orders/1"));
        assert!(!t.is_exact());
        let e = PathTemplate::parse("/v1/orders").unwrap();
        assert!(e.is_exact() && e.matches("/v1/orders") && !e.matches("/v1/orders/"));
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in [
            "v1",
            "/v1/{}",
            "/v1/{a-b}",
            "/v1/x{id}",
            "/v1/{id}x",
            "/v1/{a}/{b",
            "/v1?x",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_detection() {
        let p = |s| PathTemplate::parse(s).unwrap();
        assert!(p("/v1/{a}").overlaps(&p("/v1/{b}")));
        assert!(p("/v1/{a}/x").overlaps(&p("/v1/o/{b}")));
        assert!(!p("/v1/{a}").overlaps(&p("/v2/{a}")));
        assert!(!p("/v1/{a}").overlaps(&p("/v1/{a}/x")));
    }
}
