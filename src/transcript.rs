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

/// The canonical form: the 20 lines joined by LF, no trailing newline, built in one buffer.
pub fn canonical(t: &TranscriptInput<'_>) -> String {
    use core::fmt::Write;
    let query_sha = sha256_hex(t.normalized_query.as_bytes());
    let content_encoding = t.content_encoding.trim();
    let mut out = String::with_capacity(1024 + t.normalized_query.len() + t.path.len());
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "version=trustplane-transcript-v1\nmethod={}\nscheme={}\nauthority={}\npath={}\n\
         audience={}\nroute_id={}\ncontent_encoding={}\n\
         query_normalization.algorithm=rfc3986-sort-keys-values\n\
         query_normalization.normalized={}\nquery_normalization.sha256={query_sha}\n\
         query_sha256={query_sha}\nheaders.allow_list=",
        t.method.trim().to_ascii_uppercase(),
        t.scheme.trim().to_ascii_lowercase(),
        t.authority.trim().to_ascii_lowercase(),
        t.path.trim(),
        t.audience,
        t.route_id,
        if content_encoding.is_empty() {
            "identity".to_string()
        } else {
            content_encoding.to_ascii_lowercase()
        },
        t.normalized_query,
    );
    for (i, (name, _)) in t.selected_headers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
    }
    out.push_str("\nheaders.selected=");
    for (i, (name, value)) in t.selected_headers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&sha256_hex(value.trim_ascii()));
    }
    let _ = write!(
        out,
        "\nbody_sha256={}\npassport_jti={}\nnonce={}\nissued_at={}\ntime_bucket={}\nkey_binding={}",
        t.body_sha256_hex,
        t.passport_jti,
        t.nonce.trim(),
        t.issued_at,
        t.issued_at.div_euclid(TIME_BUCKET_SECONDS),
        t.key_binding,
    );
    out
}

/// The canonical lines, in order (for tests and diagnostics).
pub fn canonical_lines(t: &TranscriptInput<'_>) -> Vec<String> {
    canonical(t).split('\n').map(str::to_string).collect()
}

/// The 32-byte digest of the canonical form.
pub fn digest(t: &TranscriptInput<'_>) -> [u8; 32] {
    Sha256::digest(canonical(t).as_bytes()).into()
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
