//! The `DPoP` header's value taken apart (RFC 9449 section 4.3 items 1-2): a compact JWS of
//! exactly three strict-base64url segments whose header and payload are each one JSON object,
//! parsed with the strict, duplicate-refusing parser every credential goes through.

use crate::b64;
use serde_json::{Map, Value};

/// A proof larger than this is refused unread; real proofs are well under 1 KiB.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// A syntactically well-formed proof, not yet checked.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// `b64(header) "." b64(payload)`: the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub signature: Vec<u8>,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// Parses one `DPoP` header value, or `None` if it is not a well-formed JWS.
pub fn parse(value: &[u8]) -> Option<Parsed<'_>> {
    if value.len() > MAX_PROOF_BYTES {
        return None;
    }
    let text = core::str::from_utf8(value).ok()?;
    let mut segments = text.split('.');
    let (h, p, s) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let header = object(&b64::decode(h)?)?;
    let claims = object(&b64::decode(p)?)?;
    let signature = b64::decode(s)?;
    Some(Parsed {
        signing_input: value.get(..h.len() + 1 + p.len())?,
        signature,
        header,
        claims,
    })
}

fn object(bytes: &[u8]) -> Option<Map<String, Value>> {
    crate::json::parse_object(bytes, crate::json::TOKEN).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        b64::encode(json.as_bytes())
    }

    #[test]
    fn three_strict_segments_of_json_objects() {
        let h = seg(r#"{"typ":"dpop+jwt"}"#);
        let p = seg(r#"{"jti":"x"}"#);
        let good = format!("{h}.{p}.AAAA");
        let parsed = parse(good.as_bytes()).unwrap();
        assert_eq!(parsed.signing_input, format!("{h}.{p}").as_bytes());
        assert_eq!(parsed.signature, vec![0, 0, 0]);
        assert_eq!(parsed.header["typ"], "dpop+jwt");
        assert_eq!(parsed.claims["jti"], "x");

        for bad in [
            format!("{h}.{p}"),
            format!("{h}.{p}.AAAA.AAAA"),
            format!("{h}.{p}.AAAA="),
            format!("{h} .{p}.AAAA"),
            format!("{h}.{}.AAAA", seg("[1]")),
            format!("{h}.{}.AAAA", seg(r#"{"jti":"a","jti":"b"}"#)),
            format!("{}.{p}.AAAA", seg(r#"{"typ":"dpop+jwt""#)),
            format!("{h}.{p}.{}", "A".repeat(MAX_PROOF_BYTES)),
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(parse(&[0xff, b'.', b'.']).is_none());
    }
}
