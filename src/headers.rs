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

/// One edit of the request's header map, one host call each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit<'a> {
    /// Remove every value of the name.
    Remove(&'a str),
    /// Replace every value of the name with this one (`proxy_replace_header_map_value`).
    Replace(&'a str, &'a str),
    /// Add one more value of a name already set by an earlier `Replace` of this list.
    Add(&'a str, &'a str),
}

/// proofgate's edits of the request's header map after a decision: every name of `current` that
/// `drop` matches and `set` does not name is removed (once per name), then `set` is applied in
/// order, each name's first value replacing every earlier one and later values of the same name
/// added after it. Empty when nothing would change.
///
/// Edits, not one `proxy_set_header_map_pairs` of the whole map (which Envoy applies by removing
/// and re-adding every header, pseudo-headers included): only the headers proofgate changes are
/// touched. Inside Envoy neither form was consistently cheaper in three runs of
/// bench/shell_floor.py on 2026-11-29 (issue 12): over a header read, the whole-map write cost
/// +39, +8 and +7 µs of Envoy CPU per request, the ten single edits +8, +10 and +15 µs, on a
/// machine whose noise is of that size. Names are compared ASCII case-insensitively; `current`
/// comes from the host, lowercase.
pub fn edits<'a>(
    current: &'a [(String, Vec<u8>)],
    drop: impl Fn(&str) -> bool,
    set: &[(&'a str, &'a str)],
) -> Vec<Edit<'a>> {
    let is_set = |n: &str| set.iter().any(|(s, _)| s.eq_ignore_ascii_case(n));
    let mut out: Vec<Edit<'a>> = Vec::with_capacity(set.len() + 4);
    for (i, (name, _)) in current.iter().enumerate() {
        let first = !current[..i].iter().any(|(n, _)| n == name);
        if first && drop(name) && !is_set(name) {
            out.push(Edit::Remove(name));
        }
    }
    for (i, (name, value)) in set.iter().enumerate() {
        let seen = set[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        out.push(if seen {
            Edit::Add(name, value)
        } else {
            Edit::Replace(name, value)
        });
    }
    out
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

    /// The header map a host holds after `edits`, as Envoy applies them: a replace drops every
    /// value of the name and appends the new one, an add appends, a remove drops every value.
    fn apply(current: &[(String, Vec<u8>)], edits: &[Edit]) -> Vec<(String, Vec<u8>)> {
        let mut map = current.to_vec();
        for e in edits {
            match *e {
                Edit::Remove(n) => map.retain(|(m, _)| !m.eq_ignore_ascii_case(n)),
                Edit::Replace(n, v) => {
                    map.retain(|(m, _)| !m.eq_ignore_ascii_case(n));
                    map.push((n.to_ascii_lowercase(), v.as_bytes().to_vec()));
                }
                Edit::Add(n, v) => map.push((n.to_ascii_lowercase(), v.as_bytes().to_vec())),
            }
        }
        map
    }

    #[test]
    fn edits_drop_replace_and_append() {
        let current = owned(&[
            (":method", "GET"),
            (":path", "/v1/orders/1"),
            ("authorization", "Bearer x"),
            ("accept", "a"),
            ("x-trustplane-subject", "spoofed"),
            ("accept", "b"),
            ("x-trustplane-proof", "p"),
            ("x-trustplane-proof", "p2"),
            ("cookie", "c"),
        ]);
        let drop = |n: &str| n == "authorization" || n == "x-trustplane-proof";
        let set = [("x-trustplane-subject", "alice"), ("X-Claim-Sub", "s")];
        let e = edits(&current, drop, &set);
        assert_eq!(
            e,
            vec![
                Edit::Remove("authorization"),
                Edit::Remove("x-trustplane-proof"),
                Edit::Replace("x-trustplane-subject", "alice"),
                Edit::Replace("X-Claim-Sub", "s"),
            ]
        );
        let expected = owned(&[
            (":method", "GET"),
            (":path", "/v1/orders/1"),
            ("accept", "a"),
            ("accept", "b"),
            ("cookie", "c"),
            ("x-trustplane-subject", "alice"),
            ("x-claim-sub", "s"),
        ]);
        assert_eq!(apply(&current, &e), expected);
        // A set name replaces every earlier value of it, whatever its case; a second value of a
        // set name is added after the first, never replacing it.
        let current = owned(&[("x-claim-sub", "1"), ("x-claim-sub", "2")]);
        let e = edits(
            &current,
            |_| false,
            &[("X-Claim-Sub", "3"), ("x-claim-sub", "4")],
        );
        assert_eq!(
            e,
            vec![
                Edit::Replace("X-Claim-Sub", "3"),
                Edit::Add("x-claim-sub", "4")
            ]
        );
        assert_eq!(
            apply(&current, &e),
            owned(&[("x-claim-sub", "3"), ("x-claim-sub", "4")])
        );
        // A dropped name that is also set is replaced, not removed first.
        let current = owned(&[("x-trustplane-subject", "spoofed")]);
        let e = edits(&current, |_| true, &[("x-trustplane-subject", "alice")]);
        assert_eq!(e, vec![Edit::Replace("x-trustplane-subject", "alice")]);
    }

    #[test]
    fn edits_are_empty_when_nothing_changes() {
        let current = owned(&[(":path", "/"), ("accept", "a")]);
        assert!(edits(&current, |n| n == "authorization", &[]).is_empty());
        assert_eq!(
            edits(&current, |n| n == "accept", &[]),
            vec![Edit::Remove("accept")]
        );
        assert_eq!(
            edits(&[], |_| true, &[("x-a", "1")]),
            vec![Edit::Replace("x-a", "1")]
        );
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
