//! Header names proofgate reads, writes and strips (DESIGN.md sections 4 and 7), and the decoder
//! for the proxy-wasm header-map wire format, written here so that no byte the client sends can
//! make the shell panic (the SDK's own decoder unwraps UTF-8).

pub const AUTHORIZATION: &str = "authorization";
pub const TRANSCRIPT_SHA256: &str = "x-trustplane-transcript-sha256";
pub const PROOF: &str = "x-trustplane-proof";
pub const NONCE: &str = "x-trustplane-nonce";
pub const BODY_SHA256: &str = "x-trustplane-body-sha256";

pub const SUBJECT: &str = "x-trustplane-subject";
pub const ISSUER: &str = "x-trustplane-issuer";
pub const TRUST_DOMAIN: &str = "x-trustplane-trust-domain";
pub const JTI: &str = "x-trustplane-jti";
pub const ROUTE_ID: &str = "x-trustplane-route-id";
pub const KEY_BINDING: &str = "x-trustplane-key-binding";
pub const EVENT_ID: &str = "x-trustplane-event-id";
pub const DECISION: &str = "x-trustplane-decision";
pub const REASON: &str = "x-trustplane-reason";

/// Headers only proofgate may set: removed from every inbound request, exempt routes included.
pub const IDENTITY_AND_DECISION: [&str; 9] = [
    SUBJECT,
    ISSUER,
    TRUST_DOMAIN,
    JTI,
    ROUTE_ID,
    KEY_BINDING,
    EVENT_ID,
    DECISION,
    REASON,
];

/// Credentials removed before the request goes upstream unless `forward_credentials`.
pub const CREDENTIALS: [&str; 5] = [AUTHORIZATION, TRANSCRIPT_SHA256, PROOF, NONCE, BODY_SHA256];

/// Decodes a proxy-wasm serialised header map: `u32 count`, then `count` pairs of
/// `u32 name_len, u32 value_len`, then each name and value followed by a NUL byte, all lengths
/// little-endian. Returns `None` for any inconsistency. Names are lowercased (HTTP/2 and Envoy
/// already do this; HTTP/1 names are case-insensitive).
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let count = read_u32(bytes, 0)?;
    let sizes_end = 4usize.checked_add(count.checked_mul(8)?)?;
    if sizes_end > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut data = sizes_end;
    for i in 0..count {
        let name_len = read_u32(bytes, 4 + i * 8)?;
        let value_len = read_u32(bytes, 8 + i * 8)?;
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = nul_after(bytes, data.checked_add(name_len)?)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = nul_after(bytes, data.checked_add(value_len)?)?;
        let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        pairs.push((name, value.to_vec()));
    }
    Some(pairs)
}

/// The offset after the NUL terminator expected at `at`.
fn nul_after(bytes: &[u8], at: usize) -> Option<usize> {
    (*bytes.get(at)? == 0).then_some(at + 1)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

/// Encodes header pairs in the proxy-wasm wire format [`decode_map`] reads.
pub fn encode_map(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = len32(pairs.len()).to_vec();
    for (n, v) in pairs {
        out.extend(len32(n.len()));
        out.extend(len32(v.len()));
    }
    for (n, v) in pairs {
        out.extend(n.as_bytes());
        out.push(0);
        out.extend(*v);
        out.push(0);
    }
    out
}

/// The request's header map after proofgate's edits, serialised for one
/// `proxy_set_header_map_pairs` call (issue 12: one host call instead of one per removed or set
/// header): every pair of `current` in order except those whose name `drop` matches or `set`
/// names, then `set` (so each set header replaces every earlier value of its name, as
/// `proxy_replace_header_map_value` did). `None` when nothing would change: no write needed.
/// Names are compared ASCII case-insensitively; `current` comes from the host, lowercase.
pub fn rewrite_map(
    current: &[(String, Vec<u8>)],
    drop: impl Fn(&str) -> bool,
    set: &[(&str, &str)],
) -> Option<Vec<u8>> {
    let is_set = |n: &str| set.iter().any(|(s, _)| s.eq_ignore_ascii_case(n));
    let mut pairs: Vec<(&str, &[u8])> = Vec::with_capacity(current.len() + set.len());
    pairs.extend(
        current
            .iter()
            .filter(|(n, _)| !drop(n) && !is_set(n))
            .map(|(n, v)| (n.as_str(), v.as_slice())),
    );
    if set.is_empty() && pairs.len() == current.len() {
        return None;
    }
    pairs.extend(set.iter().map(|(n, v)| (*n, v.as_bytes())));
    Some(encode_map(&pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn rewrite_map_drops_replaces_and_appends_in_order() {
        let current = owned(&[
            (":method", "GET"),
            (":path", "/v1/orders/1"),
            ("authorization", "Bearer x"),
            ("accept", "a"),
            ("x-trustplane-subject", "spoofed"),
            ("accept", "b"),
            ("x-trustplane-proof", "p"),
            ("cookie", "c"),
        ]);
        let drop = |n: &str| n == "authorization" || n == "x-trustplane-proof";
        let set = [("x-trustplane-subject", "alice"), ("X-Claim-Sub", "s")];
        let map = rewrite_map(&current, drop, &set).unwrap();
        let expected = owned(&[
            (":method", "GET"),
            (":path", "/v1/orders/1"),
            ("accept", "a"),
            ("accept", "b"),
            ("cookie", "c"),
            ("x-trustplane-subject", "alice"),
            ("x-claim-sub", "s"),
        ]);
        assert_eq!(decode_map(&map).unwrap(), expected);
        // A set name replaces every earlier value of it, whatever its case.
        let current = owned(&[("x-claim-sub", "1"), ("x-claim-sub", "2")]);
        let map = rewrite_map(&current, |_| false, &[("X-Claim-Sub", "3")]).unwrap();
        assert_eq!(decode_map(&map).unwrap(), owned(&[("x-claim-sub", "3")]));
    }

    #[test]
    fn rewrite_map_is_none_when_nothing_changes() {
        let current = owned(&[(":path", "/"), ("accept", "a")]);
        assert_eq!(rewrite_map(&current, |n| n == "authorization", &[]), None);
        assert!(rewrite_map(&current, |n| n == "accept", &[]).is_some());
        assert!(rewrite_map(&[], |_| true, &[("x-a", "1")]).is_some());
    }

    #[test]
    fn decodes_pairs_with_binary_values() {
        let raw = encode_map(&[(":Path", b"/x"), ("x-bin", &[0xff, 0x00, 0x80])]);
        let map = decode_map(&raw).unwrap();
        assert_eq!(
            map,
            vec![
                (":path".into(), b"/x".to_vec()),
                ("x-bin".into(), vec![0xff, 0, 0x80])
            ]
        );
    }

    #[test]
    fn rejects_truncated_and_lying_lengths() {
        let raw = encode_map(&[("a", b"b")]);
        for cut in 0..raw.len() {
            assert_eq!(decode_map(&raw[..cut]), None, "cut at {cut}");
        }
        let mut lying = raw.clone();
        lying[0] = 200;
        assert_eq!(decode_map(&lying), None);
        assert_eq!(decode_map(&[0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(decode_map(&[0, 0, 0, 0]), Some(vec![]));
    }
}
