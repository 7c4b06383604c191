//! transcript-v1 query normalisation `rfc3986-sort-keys-values` (DESIGN.md section 4): split on
//! `&` keeping empty pieces, split each at its first `=`, percent-decode strictly (`+` stays `+`),
//! re-encode every byte outside the RFC 3986 unreserved set as uppercase `%XX`, stable-sort by
//! (key, value) bytewise, join.

/// The query could not be normalised: a malformed `%` escape, or escapes that decode to bytes
/// that are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedQuery;

/// Normalises a raw query string (without the leading `?`).
pub fn normalize(raw: &str) -> Result<String, MalformedQuery> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    let mut pairs = Vec::new();
    for piece in raw.split('&') {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        pairs.push((reencode(&decode(key)?), reencode(&decode(value)?)));
    }
    // `sort` is stable, so equal pairs keep their order (they are identical anyway).
    pairs.sort();
    let mut out = String::with_capacity(raw.len() + 8);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    Ok(out)
}

fn decode(text: &str) -> Result<Vec<u8>, MalformedQuery> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes
                .get(i + 1)
                .and_then(|b| hex_val(*b))
                .ok_or(MalformedQuery)?;
            let lo = bytes
                .get(i + 2)
                .and_then(|b| hex_val(*b))
                .ok_or(MalformedQuery)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // TrustPlane decodes to text before re-encoding: escapes must form UTF-8.
    if std::str::from_utf8(&out).is_err() {
        return Err(MalformedQuery);
    }
    Ok(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn reencode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_the_sdk() {
        assert_eq!(normalize("").unwrap(), "");
        assert_eq!(normalize("b=2&a=1").unwrap(), "a=1&b=2");
        assert_eq!(
            normalize("z=last&a=2&a=10&space=a%20b&encoded=%7E&empty=").unwrap(),
            "a=10&a=2&empty=&encoded=~&space=a%20b&z=last"
        );
        assert_eq!(normalize("flag").unwrap(), "flag=");
        assert_eq!(normalize("a=1&&b=2").unwrap(), "=&a=1&b=2");
        assert_eq!(normalize("a+b=c d").unwrap(), "a%2Bb=c%20d");
        assert_eq!(normalize("k=a=b").unwrap(), "k=a%3Db");
        assert_eq!(normalize("k=%c3%a9").unwrap(), "k=%C3%A9");
        assert_eq!(normalize("%41=1").unwrap(), "A=1");
    }

    #[test]
    fn rejects_malformed_escapes_and_non_utf8() {
        assert_eq!(normalize("a=%"), Err(MalformedQuery));
        assert_eq!(normalize("a=%4"), Err(MalformedQuery));
        assert_eq!(normalize("a=%zz"), Err(MalformedQuery));
        assert_eq!(normalize("a=%ff"), Err(MalformedQuery));
        assert_eq!(normalize("a=%c3"), Err(MalformedQuery));
    }
}
