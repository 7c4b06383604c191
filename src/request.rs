//! The request as the filter received it: a plain view built by the shell from Envoy's header
//! map, which the core reads without ever touching the host.

/// One inbound request's headers (names lowercase, in arrival order, duplicates kept).
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RequestView {
    /// Builds a view from header pairs; names are lowercased.
    pub fn new(mut headers: Vec<(String, Vec<u8>)>) -> Self {
        // In place: Envoy already sends lowercase names, so this is a scan, not a copy.
        for (name, _) in &mut headers {
            name.make_ascii_lowercase();
        }
        RequestView { headers }
    }

    /// Bytes of header names and values: what keeping this view costs, give or take the
    /// per-header bookkeeping.
    pub fn byte_len(&self) -> usize {
        self.headers
            .iter()
            .map(|(n, v)| n.len().saturating_add(v.len()))
            .fold(0, usize::saturating_add)
    }

    /// The first value of `name` (lowercase), as transcript-v1 says.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// How many times `name` (lowercase) occurs.
    pub fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    /// The first value of `name` as UTF-8 text, if present and valid.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.first(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn method(&self) -> &str {
        self.text(":method").unwrap_or("")
    }

    pub fn scheme(&self) -> &str {
        self.text(":scheme").unwrap_or("")
    }

    pub fn authority(&self) -> &str {
        self.text(":authority").unwrap_or("")
    }

    /// `:path` before the first `?`.
    pub fn path(&self) -> &str {
        let full = self.text(":path").unwrap_or("");
        full.split_once('?').map_or(full, |(p, _)| p)
    }

    /// The raw query after the first `?` (empty when there is none).
    pub fn raw_query(&self) -> &str {
        self.text(":path")
            .and_then(|p| p.split_once('?'))
            .map_or("", |(_, q)| q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(pairs: &[(&str, &str)]) -> RequestView {
        RequestView::new(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn splits_path_and_query_and_keeps_first_duplicate() {
        let r = view(&[(":path", "/a/b?x=1?y"), ("X-Dup", "one"), ("x-dup", "two")]);
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.raw_query(), "x=1?y");
        assert_eq!(r.text("x-dup"), Some("one"));
        assert_eq!(r.count("x-dup"), 2);
        let r = view(&[(":path", "/plain")]);
        assert_eq!((r.path(), r.raw_query()), ("/plain", ""));
    }
}
