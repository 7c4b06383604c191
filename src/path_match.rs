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

/// Templates indexed by segment (a trie built at load), so finding the template of a path costs
/// the path's length, not the number of templates. Entries are caller-defined ids. An exact
/// template beats a placeholder one; two exact templates, or two placeholder templates, that
/// match a common path are refused by the caller with [`PathIndex::overlapping`] before insert.
#[derive(Debug, Clone, Default)]
pub struct PathIndex {
    root: Node,
}

#[derive(Debug, Clone, Default)]
struct Node {
    // Built from configuration only; request segments probe it, and std's hasher is keyed
    // (random per process), so a caller cannot aim at a slow lookup.
    literals: std::collections::HashMap<String, Node>,
    placeholder: Option<Box<Node>>,
    /// The exact template ending here (reached through literals only).
    exact: Option<usize>,
    /// The placeholder template ending here.
    template: Option<usize>,
}

impl PathIndex {
    /// Adds `template` as entry `id` (replacing an entry with the very same template).
    pub fn insert(&mut self, template: &PathTemplate, id: usize) {
        let mut node = &mut self.root;
        for seg in template.segments() {
            node = match seg {
                Segment::Literal(l) => node.literals.entry(l.clone()).or_default(),
                Segment::Placeholder => node.placeholder.get_or_insert_with(Default::default),
            };
        }
        if template.is_exact() {
            node.exact = Some(id);
        } else {
            node.template = Some(id);
        }
    }

    /// Ids of entries of the same kind (exact or placeholder) that match some path `template`
    /// matches, ascending.
    pub fn overlapping(&self, template: &PathTemplate) -> Vec<usize> {
        let mut out = Vec::new();
        overlap(
            &self.root,
            template.segments(),
            template.is_exact(),
            &mut out,
        );
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The entry for `path` (no query): the exact template if one matches, else the placeholder
    /// template that does.
    pub fn resolve(&self, path: &str) -> Option<usize> {
        let rest = path.strip_prefix('/')?;
        exact(&self.root, rest).or_else(|| templated(&self.root, Some(rest)))
    }
}

fn split(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((seg, more)) => (seg, Some(more)),
        None => (rest, None),
    }
}

fn exact(mut node: &Node, rest: &str) -> Option<usize> {
    let mut rest = Some(rest);
    while let Some(r) = rest {
        let (seg, more) = split(r);
        node = node.literals.get(seg)?;
        rest = more;
    }
    node.exact
}

/// Depth-first, literal before placeholder; templates of one kind never overlap, so the first
/// found is the only one.
fn templated(node: &Node, rest: Option<&str>) -> Option<usize> {
    let Some(r) = rest else {
        return node.template;
    };
    let (seg, more) = split(r);
    if let Some(found) = node.literals.get(seg).and_then(|c| templated(c, more)) {
        return Some(found);
    }
    match &node.placeholder {
        Some(p) if placeholder_accepts(seg) => templated(p, more),
        _ => None,
    }
}

fn overlap(node: &Node, segs: &[Segment], exact: bool, out: &mut Vec<usize>) {
    let Some((first, rest)) = segs.split_first() else {
        out.extend(if exact { node.exact } else { node.template });
        return;
    };
    match first {
        Segment::Literal(l) => {
            if let Some(child) = node.literals.get(l.as_str()) {
                overlap(child, rest, exact, out);
            }
            if let (Some(p), false) = (&node.placeholder, exact) {
                if placeholder_accepts(l) {
                    overlap(p, rest, exact, out);
                }
            }
        }
        Segment::Placeholder => {
            if let Some(p) = &node.placeholder {
                overlap(p, rest, exact, out);
            }
            for (l, child) in &node.literals {
                if placeholder_accepts(l) {
                    overlap(child, rest, exact, out);
                }
            }
        }
    }
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
    fn index_resolves_like_a_scan_over_the_templates() {
        let templates = [
            "/v1/orders",
            "/v1/orders/{id}",
            "/v1/orders/search",
            "/v1/orders/{id}/items/{item}",
            "/v1/{kind}/x",
            "/v1/a/{b}/c",
            "/",
            "/v1/orders/",
            "/{a}",
        ];
        let parsed: Vec<PathTemplate> = templates
            .iter()
            .map(|t| PathTemplate::parse(t).unwrap())
            .collect();
        let mut index = PathIndex::default();
        for (i, t) in parsed.iter().enumerate() {
            let clash = index.overlapping(t);
            let scan: Vec<usize> = parsed[..i]
                .iter()
                .enumerate()
                .filter(|(_, o)| o.is_exact() == t.is_exact() && o.overlaps(t))
                .map(|(j, _)| j)
                .collect();
            assert_eq!(clash, scan, "{}", templates[i]);
            index.insert(t, i);
        }
        let scan = |path: &str| {
            let hit = |exact: bool| {
                parsed
                    .iter()
                    .position(|t| t.is_exact() == exact && t.matches(path))
            };
            hit(true).or_else(|| hit(false))
        };
        for path in [
            "/v1/orders",
            "/v1/orders/7",
            "/v1/orders/search",
            "/v1/orders/7/items/9",
            "/v1/orders/7/items/",
            "/v1/orders/x",
            "/v1/a/x",
            "/v1/a/b/c",
            "/v1/a/b/d",
            "/",
            "/v1",
            "/v2",
            "/v1/orders/",
            "/v1/orders/..%2F",
            "/%2e%2e",
            "",
            "v1/orders",
            "//",
        ] {
            assert_eq!(index.resolve(path), scan(path), "{path}");
        }
    }

    #[test]
    fn index_reports_placeholder_overlaps_in_order() {
        let p = |s| PathTemplate::parse(s).unwrap();
        let mut index = PathIndex::default();
        index.insert(&p("/v1/{a}/x"), 0);
        index.insert(&p("/v1/o/{b}/y"), 1);
        index.insert(&p("/v1/o/x"), 2);
        assert_eq!(index.overlapping(&p("/v1/o/{b}")), vec![0]);
        assert_eq!(index.overlapping(&p("/v1/{a}/{b}/y")), vec![1]);
        assert_eq!(index.overlapping(&p("/v1/o/x")), vec![2]);
        assert!(index.overlapping(&p("/v1/{a}")).is_empty());
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
