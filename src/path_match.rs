//! Request-path matching shared by every rule that names paths (DESIGN.md sections 2 and 6):
//! `allow_unauthenticated` prefixes, bundle `path_template`s, and any later rule set. The path is
//! the request's `:path` without its query, as Envoy forwards it.
//!
//! Fail closed on anything the upstream could read as another path: a segment that is a dot
//! segment (`.`, `..`), holds a backslash, or holds an encoded `/`, `\` or `.` (`%2F`, `%5C`,
//! `%2E`, any case) never matches a prefix (anywhere in the path) or a `{name}` placeholder. An
//! upstream that decodes `%2F` before routing would otherwise serve `/admin` for
//! `/healthz/..%2Fadmin`. Envoy's `path_with_escaped_slashes_action: REJECT_REQUEST` refuses
//! most of these earlier; this module does not rely on it.

/// True for a segment that may mean something else to an upstream: `.`, `..`, a backslash, or
/// a percent-encoded `/`, `\` or `.`.
pub fn is_ambiguous_segment(segment: &str) -> bool {
    if segment == "." || segment == ".." || segment.contains('\\') {
        return true;
    }
    segment.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_uppercase()),
                (b'2', b'F') | (b'5', b'C') | (b'2', b'E')
            )
    })
}

/// True if any segment of `path` is ambiguous.
pub fn has_ambiguous_segment(path: &str) -> bool {
    path.split('/').any(is_ambiguous_segment)
}

/// Segment-aware prefix match: `/healthz` covers `/healthz` and `/healthz/x`, never
/// `/healthzfoo`; a prefix ending in `/` covers what is below it. A path with an ambiguous
/// segment anywhere never matches, so `/healthz/../admin` and `/healthz/..%2Fadmin` stay guarded.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(prefix) else {
        return false;
    };
    let aligned = rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/');
    aligned && !has_ambiguous_segment(path)
}

/// Exact match: the whole path, byte for byte (no decoding, so `%2F` never equals `/`).
pub fn exact_matches(exact: &str, path: &str) -> bool {
    exact == path
}

/// A parsed `path_template`: literal segments and single-segment `{name}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

/// One segment of a [`PathTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
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

    /// The template's segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True if the template has no placeholder.
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// True if `path` (no query) matches: literals byte for byte, a placeholder one non-empty
    /// segment that is not ambiguous.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for seg in &self.segments {
            match parts.next() {
                Some(p) if seg.matches(p) => {}
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
                    | (Segment::Placeholder, Segment::Literal(l)) => placeholder_accepts(l),
                    (Segment::Placeholder, Segment::Placeholder) => true,
                })
    }
}

impl Segment {
    /// True if this template segment matches the request segment `part`.
    pub fn matches(&self, part: &str) -> bool {
        match self {
            Segment::Literal(l) => l == part,
            Segment::Placeholder => placeholder_accepts(part),
        }
    }
}

/// What a `{name}` placeholder accepts: one non-empty, unambiguous segment.
pub fn placeholder_accepts(part: &str) -> bool {
    !part.is_empty() && !is_ambiguous_segment(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_segments() {
        for seg in [
            ".", "..", "..%2F", "..%2f", "%5C", "a%5cb", "%2e%2e", "%2E", "x%2fy", "a\\b",
        ] {
            assert!(is_ambiguous_segment(seg), "{seg}");
        }
        for seg in [
            "",
            "a",
            "...",
            "%2",
            "%25",
            "%2G",
            "a%20b",
            "file.json",
            "%41",
        ] {
            assert!(!is_ambiguous_segment(seg), "{seg}");
        }
    }

    #[test]
    fn prefix_is_segment_aware_and_fails_closed_on_encoded_separators() {
        assert!(prefix_matches("/healthz", "/healthz"));
        assert!(prefix_matches("/healthz", "/healthz/deep"));
        assert!(prefix_matches("/static/", "/static/app.js"));
        assert!(!prefix_matches("/healthz", "/healthzfoo"));
        assert!(!prefix_matches("/healthz", "/health"));
        for path in [
            "/healthz/../admin",
            "/healthz/./x",
            "/healthz/..%2Fadmin",
            "/healthz/..%2fadmin",
            "/healthz/..%5Cadmin",
            "/healthz/..%5cadmin",
            "/healthz/%2e%2e%2fadmin",
            "/healthz/%2E%2E/admin",
            "/healthz/a%2Fb",
            "/healthz/..\\admin",
            "/healthz%2F..%2Fadmin",
        ] {
            assert!(!prefix_matches("/healthz", path), "{path}");
        }
    }

    #[test]
    fn exact_is_byte_for_byte() {
        assert!(exact_matches("/v1/orders", "/v1/orders"));
        assert!(!exact_matches("/v1/orders", "/v1/orders/"));
        assert!(!exact_matches("/v1/a/b", "/v1/a%2Fb"));
    }

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
    fn placeholders_never_match_ambiguous_segments() {
        let t = PathTemplate::parse("/v1/orders/{order_id}").unwrap();
        for path in [
            "/v1/orders/..%2Fadmin",
            "/v1/orders/..%2fadmin",
            "/v1/orders/%2e%2e%2fadmin",
            "/v1/orders/..%5Cadmin",
            "/v1/orders/a%2Fb",
            "/v1/orders/..",
            "/v1/orders/.",
            "/v1/orders/a\\b",
        ] {
            assert!(!t.matches(path), "{path}");
        }
        assert!(t.matches("/v1/orders/a%20b"));
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
        // A placeholder never matches "..", so it cannot overlap a literal "..".
        assert!(!p("/v1/{a}").overlaps(&p("/v1/..")));
    }
}
