//! The `htu` comparison of RFC 9449 section 4.3 (DESIGN.md section 14): the proof's URI and the
//! request's target are both reduced to scheme, host, port and path, with the normalisations
//! RFC 3986 sections 6.2.2 and 6.2.3 allow without changing what the URI names: scheme and host
//! lowercased, the scheme's default port dropped (as is an empty port), an empty path made `/`,
//! and the hex digits of percent-escapes uppercased. Query and fragment are ignored. Dot
//! segments and escapes of unreserved characters are left as they are, so an unusual spelling
//! fails closed rather than matching something the client did not sign.

/// A URI reduced for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    scheme: &'static str,
    host: String,
    /// `None` for the scheme's default port.
    port: Option<u16>,
    path: String,
}

/// Reduces a proof's `htu`; `None` if it is not an absolute `http(s)` URI without userinfo.
pub fn from_htu(htu: &str) -> Option<Target> {
    let without_fragment = htu.split_once('#').map_or(htu, |(u, _)| u);
    let without_query = without_fragment
        .split_once('?')
        .map_or(without_fragment, |(u, _)| u);
    let (scheme, rest) = without_query.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    target(scheme, authority, path)
}

/// Reduces the request's target: `scheme` (from `transcript_scheme` or `:scheme`), `:authority`
/// and `:path` without its query.
pub fn from_request(scheme: &str, authority: &str, path: &str) -> Option<Target> {
    if !path.starts_with('/') {
        return None;
    }
    target(scheme, authority, path)
}

fn target(scheme: &str, authority: &str, path: &str) -> Option<Target> {
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
        ("https", 443)
    } else if scheme.eq_ignore_ascii_case("http") {
        ("http", 80)
    } else {
        return None;
    };
    if authority.contains('@') || !authority.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    // An IPv6 literal keeps its colons inside the brackets.
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (literal, after) = authority.split_at(close + 1);
        match after {
            "" => (literal, None),
            _ => (literal, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u16 = p.parse().ok()?;
            (n != default_port).then_some(n)
        }
        Some(_) => return None,
    };
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        uppercase_escapes(path)
    };
    Some(Target {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
        path,
    })
}

/// `%2f` and `%2F` name the same octet (RFC 3986 section 6.2.2.1).
fn uppercase_escapes(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(h), Some(l)) if b == b'%' && h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                out.push('%');
                out.push(char::from(h.to_ascii_uppercase()));
                out.push(char::from(l.to_ascii_uppercase()));
                i += 3;
            }
            _ => {
                // Only ASCII is split here: a multi-byte character is copied whole below.
                let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&path[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(htu: &str, scheme: &str, authority: &str, path: &str) -> bool {
        match (from_htu(htu), from_request(scheme, authority, path)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    #[test]
    fn query_and_fragment_are_ignored() {
        assert!(same(
            "https://api.example/orders?x=1#f",
            "https",
            "api.example",
            "/orders"
        ));
        assert!(same(
            "https://api.example/orders#f?x",
            "https",
            "api.example",
            "/orders"
        ));
        assert!(same(
            "https://api.example/orders?",
            "https",
            "api.example",
            "/orders"
        ));
    }

    #[test]
    fn scheme_and_host_are_case_insensitive_path_is_not() {
        assert!(same(
            "HTTPS://API.Example/orders",
            "https",
            "api.example",
            "/orders"
        ));
        assert!(same(
            "https://api.example/orders",
            "HTTPS",
            "Api.Example",
            "/orders"
        ));
        assert!(!same(
            "https://api.example/Orders",
            "https",
            "api.example",
            "/orders"
        ));
    }

    #[test]
    fn default_ports_are_ignored_other_ports_are_not() {
        assert!(same(
            "https://api.example:443/a",
            "https",
            "api.example",
            "/a"
        ));
        assert!(same(
            "https://api.example/a",
            "https",
            "api.example:443",
            "/a"
        ));
        assert!(same("http://api.example:80/a", "http", "api.example", "/a"));
        assert!(same("http://api.example:/a", "http", "api.example", "/a"));
        assert!(same(
            "http://127.0.0.1:10000/a",
            "http",
            "127.0.0.1:10000",
            "/a"
        ));
        assert!(!same(
            "http://api.example:443/a",
            "http",
            "api.example",
            "/a"
        ));
        assert!(!same(
            "https://api.example:8443/a",
            "https",
            "api.example",
            "/a"
        ));
        assert!(!same(
            "http://api.example:10001/a",
            "http",
            "api.example:10000",
            "/a"
        ));
        assert!(same("http://[::1]:8080/a", "http", "[::1]:8080", "/a"));
        assert!(same("http://[::1]/a", "http", "[::1]:80", "/a"));
        assert!(!same("http://[::1]:8080/a", "http", "[::1]:8081", "/a"));
    }

    #[test]
    fn scheme_host_and_path_must_match() {
        assert!(!same("http://api.example/a", "https", "api.example", "/a"));
        assert!(!same(
            "https://evil.example/a",
            "https",
            "api.example",
            "/a"
        ));
        assert!(!same(
            "https://api.example/a/b",
            "https",
            "api.example",
            "/a"
        ));
        assert!(!same(
            "https://api.example/a/",
            "https",
            "api.example",
            "/a"
        ));
        assert!(!same(
            "https://api.example/a/../b",
            "https",
            "api.example",
            "/b"
        ));
    }

    #[test]
    fn empty_path_is_slash_and_escapes_compare_by_octet() {
        assert!(same("https://api.example", "https", "api.example", "/"));
        assert!(same("https://api.example?q", "https", "api.example", "/"));
        assert!(same(
            "https://api.example/a%2fb",
            "https",
            "api.example",
            "/a%2Fb"
        ));
        assert!(!same(
            "https://api.example/a%2Fb",
            "https",
            "api.example",
            "/a/b"
        ));
        assert!(!same(
            "https://api.example/%7Ea",
            "https",
            "api.example",
            "/~a"
        ));
    }

    #[test]
    fn malformed_uris_never_match() {
        for htu in [
            "api.example/a",
            "//api.example/a",
            "ftp://api.example/a",
            "https://user@api.example/a",
            "https:///a",
            "https://api.example:99999/a",
            "https://api.example:8o/a",
            "https://api example/a",
            "https://[::1/a",
            "https://[::1]x/a",
            "",
        ] {
            assert_eq!(from_htu(htu), None, "{htu}");
        }
        assert_eq!(from_request("https", "api.example", "*"), None);
        assert_eq!(from_request("https", "", "/"), None);
        assert_eq!(from_request("", "api.example", "/"), None);
    }
}
