//! transcript-v1 (DESIGN.md section 4): the 20 canonical `key=value` lines a TrustPlane caller
//! signs, rebuilt by the verifier from the request it actually received, and their SHA-256.

use sha2::{Digest, Sha256};

/// Everything transcript-v1 covers, already resolved by the verifier.
#[derive(Debug, Clone)]
pub struct TranscriptInput<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub audience: &'a str,
    pub route_id: &'a str,
    pub content_encoding: &'a str,
    /// Output of [`crate::query::normalize`].
    pub normalized_query: &'a str,
    /// `(lowercase name, raw value)` of each signed header present, sorted by name, no duplicates.
    pub selected_headers: &'a [(&'a str, &'a [u8])],
    pub body_sha256_hex: &'a str,
    pub passport_jti: &'a str,
    pub nonce: &'a str,
    pub issued_at: i64,
    pub key_binding: &'a str,
}

/// Seconds per `time_bucket`.
pub const TIME_BUCKET_SECONDS: i64 = 20;

/// The canonical lines, in order.
pub fn canonical_lines(t: &TranscriptInput<'_>) -> Vec<String> {
    let query_sha = sha256_hex(t.normalized_query.as_bytes());
    let content_encoding = match t.content_encoding.trim().to_ascii_lowercase() {
        e if e.is_empty() => "identity".to_string(),
        e => e,
    };
    let allow_list: Vec<&str> = t.selected_headers.iter().map(|(n, _)| *n).collect();
    let selected: Vec<String> = t
        .selected_headers
        .iter()
        .map(|(n, v)| format!("{n}:{}", sha256_hex(v.trim_ascii())))
        .collect();
    vec![
        "version=trustplane-transcript-v1".to_string(),
        format!("method={}", t.method.trim().to_ascii_uppercase()),
        format!("scheme={}", t.scheme.trim().to_ascii_lowercase()),
        format!("authority={}", t.authority.trim().to_ascii_lowercase()),
        format!("path={}", t.path.trim()),
        format!("audience={}", t.audience),
        format!("route_id={}", t.route_id),
        format!("content_encoding={content_encoding}"),
        "query_normalization.algorithm=rfc3986-sort-keys-values".to_string(),
        format!("query_normalization.normalized={}", t.normalized_query),
        format!("query_normalization.sha256={query_sha}"),
        format!("query_sha256={query_sha}"),
        format!("headers.allow_list={}", allow_list.join(",")),
        format!("headers.selected={}", selected.join(",")),
        format!("body_sha256={}", t.body_sha256_hex),
        format!("passport_jti={}", t.passport_jti),
        format!("nonce={}", t.nonce.trim()),
        format!("issued_at={}", t.issued_at),
        format!(
            "time_bucket={}",
            t.issued_at.div_euclid(TIME_BUCKET_SECONDS)
        ),
        format!("key_binding={}", t.key_binding),
    ]
}

/// The 32-byte digest of the canonical form (lines joined by LF, no trailing newline).
pub fn digest(t: &TranscriptInput<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    for (i, line) in canonical_lines(t).iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(line.as_bytes());
    }
    h.finalize().into()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

/// Lowercase hex.
pub fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Parses exactly 64 lowercase hex characters.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let b = text.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *o = nib(b[2 * i])? << 4 | nib(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_is_lowercase_only() {
        let d = [0xabu8; 32];
        assert_eq!(parse_hex32(&hex_lower(&d)), Some(d));
        assert_eq!(parse_hex32(&hex_lower(&d).to_uppercase()), None);
        assert_eq!(parse_hex32("ab"), None);
    }
}
