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

/// The canonical form: the 20 lines joined by LF, no trailing newline.
pub fn canonical(t: &TranscriptInput<'_>) -> String {
    let mut out = Vec::with_capacity(1024 + t.normalized_query.len() + t.path.len());
    write_canonical(t, &mut out);
    // Every piece written is a `&str` or ASCII (hex, digits, an ASCII case mapping of a `&str`),
    // so this is always the borrowed case.
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical lines, in order (for tests and diagnostics).
pub fn canonical_lines(t: &TranscriptInput<'_>) -> Vec<String> {
    canonical(t).split('\n').map(str::to_string).collect()
}

/// The 32-byte digest of the canonical form, written by the same writer as [`canonical`] (issue
/// 12: no formatting machinery, no per-line strings) into one buffer, hashed in one call.
pub fn digest(t: &TranscriptInput<'_>) -> [u8; 32] {
    let mut out = Vec::with_capacity(1024 + t.normalized_query.len() + t.path.len());
    write_canonical(t, &mut out);
    Sha256::digest(&out).into()
}

/// Where the canonical form goes: a buffer ([`canonical`]) or SHA-256 ([`digest`]).
trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn put_str(&mut self, s: &str) {
        self.put(s.as_bytes());
    }

    /// `s` with ASCII letters mapped by `map` (`to_ascii_uppercase` / `to_ascii_lowercase`),
    /// every other byte as it is, without allocating.
    fn put_mapped(&mut self, s: &str, map: fn(&u8) -> u8) {
        for chunk in s.as_bytes().chunks(64) {
            let mut buf = [0u8; 64];
            for (o, b) in buf.iter_mut().zip(chunk) {
                *o = map(b);
            }
            self.put(&buf[..chunk.len()]);
        }
    }

    fn put_hex_sha256(&mut self, bytes: &[u8]) {
        self.put(&hex32(&Sha256::digest(bytes).into()));
    }

    fn put_i64(&mut self, v: i64) {
        use core::fmt::Write;
        struct Out<'a, S: ?Sized>(&'a mut S);
        impl<S: Sink + ?Sized> Write for Out<'_, S> {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                self.0.put_str(s);
                Ok(())
            }
        }
        // Writing into a sink cannot fail.
        let _ = write!(Out(self), "{v}");
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// The one writer of the canonical form (DESIGN.md section 4, line for line).
fn write_canonical(t: &TranscriptInput<'_>, out: &mut impl Sink) {
    let query_sha = hex32(&Sha256::digest(t.normalized_query.as_bytes()).into());
    out.put_str("version=trustplane-transcript-v1\nmethod=");
    out.put_mapped(t.method.trim(), u8::to_ascii_uppercase);
    out.put_str("\nscheme=");
    out.put_mapped(t.scheme.trim(), u8::to_ascii_lowercase);
    out.put_str("\nauthority=");
    out.put_mapped(t.authority.trim(), u8::to_ascii_lowercase);
    out.put_str("\npath=");
    out.put_str(t.path.trim());
    out.put_str("\naudience=");
    out.put_str(t.audience);
    out.put_str("\nroute_id=");
    out.put_str(t.route_id);
    out.put_str("\ncontent_encoding=");
    match t.content_encoding.trim() {
        "" => out.put_str("identity"),
        encoding => out.put_mapped(encoding, u8::to_ascii_lowercase),
    }
    out.put_str(
        "\nquery_normalization.algorithm=rfc3986-sort-keys-values\nquery_normalization.normalized=",
    );
    out.put_str(t.normalized_query);
    out.put_str("\nquery_normalization.sha256=");
    out.put(&query_sha);
    out.put_str("\nquery_sha256=");
    out.put(&query_sha);
    out.put_str("\nheaders.allow_list=");
    for (i, (name, _)) in t.selected_headers.iter().enumerate() {
        if i > 0 {
            out.put_str(",");
        }
        out.put_str(name);
    }
    out.put_str("\nheaders.selected=");
    for (i, (name, value)) in t.selected_headers.iter().enumerate() {
        if i > 0 {
            out.put_str(",");
        }
        out.put_str(name);
        out.put_str(":");
        out.put_hex_sha256(value.trim_ascii());
    }
    out.put_str("\nbody_sha256=");
    out.put_str(t.body_sha256_hex);
    out.put_str("\npassport_jti=");
    out.put_str(t.passport_jti);
    out.put_str("\nnonce=");
    out.put_str(t.nonce.trim());
    out.put_str("\nissued_at=");
    out.put_i64(t.issued_at);
    out.put_str("\ntime_bucket=");
    out.put_i64(t.issued_at.div_euclid(TIME_BUCKET_SECONDS));
    out.put_str("\nkey_binding=");
    out.put_str(t.key_binding);
}

/// Lowercase hex of 32 bytes, on the stack.
fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

/// Lowercase hex.
pub fn hex_lower(bytes: &[u8]) -> String {
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

    /// The canonical form as it was built before the streaming writer (issue 12): one `write!`
    /// into a `String`; kept as the reference the writer must match byte for byte.
    fn reference(t: &TranscriptInput<'_>) -> String {
        use core::fmt::Write;
        let query_sha = sha256_hex(t.normalized_query.as_bytes());
        let content_encoding = t.content_encoding.trim();
        let mut out = String::new();
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
        let names: Vec<&str> = t.selected_headers.iter().map(|(n, _)| *n).collect();
        out.push_str(&names.join(","));
        out.push_str("\nheaders.selected=");
        let selected: Vec<String> = t
            .selected_headers
            .iter()
            .map(|(n, v)| format!("{n}:{}", sha256_hex(v.trim_ascii())))
            .collect();
        out.push_str(&selected.join(","));
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

    #[test]
    fn the_streaming_writer_matches_the_reference_byte_for_byte() {
        let long = format!("/p/{}", "Ab\u{e9}".repeat(70));
        let headers_sets: [&[(&str, &[u8])]; 4] = [
            &[],
            &[("content-type", b" application/json ")],
            &[("a", b""), ("b", b"\t x \t"), ("c", b"\xff\xfe binary")],
            &[
                ("x-trustplane-nonce", b"n0"),
                ("content-type", b"TEXT/Plain"),
            ],
        ];
        let mut checked = 0;
        for method in ["GET", " post ", "pAtCh", "M\u{e9}thod"] {
            for (scheme, authority) in [("https", "api.example"), (" HTTPS ", " API.Example:8443 ")]
            {
                for path in ["/", " /v1/orders/1 ", long.as_str(), "/\u{1F600}/x"] {
                    for encoding in ["", "  ", " GZip ", "br,\u{e9}"] {
                        for query in ["", "a=1&b=%20"] {
                            for selected in headers_sets {
                                for issued_at in [0, 19, -1, -21, 1_700_000_000, i64::MIN, i64::MAX]
                                {
                                    let t = TranscriptInput {
                                        method,
                                        scheme,
                                        authority,
                                        path,
                                        audience: "aud \u{e9}",
                                        route_id: "orders.get",
                                        content_encoding: encoding,
                                        normalized_query: query,
                                        selected_headers: selected,
                                        body_sha256_hex: "00ff",
                                        passport_jti: "jti-1",
                                        nonce: " nonce ",
                                        issued_at,
                                        key_binding: "software",
                                    };
                                    let want = reference(&t);
                                    assert_eq!(canonical(&t), want);
                                    let hashed: [u8; 32] = Sha256::digest(want.as_bytes()).into();
                                    assert_eq!(digest(&t), hashed);
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 2 * 4 * 4 * 2 * 4 * 7);
    }

    #[test]
    fn hex_round_trip_is_lowercase_only() {
        let d = [0xabu8; 32];
        assert_eq!(parse_hex32(&hex_lower(&d)), Some(d));
        assert_eq!(parse_hex32(&hex_lower(&d).to_uppercase()), None);
        assert_eq!(parse_hex32("ab"), None);
    }
}
