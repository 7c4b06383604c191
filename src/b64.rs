//! Strict base64url (RFC 4648 section 5) without padding, as JWS compact serialisation and the
//! TrustPlane headers use it: padding, whitespace, non-alphabet bytes and non-zero trailing bits
//! are all rejected, so every value has exactly one accepted spelling.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Decodes canonical unpadded base64url, or `None`.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()
}

/// Decodes canonical unpadded base64url of exactly `N` bytes, or `None`.
pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    // Reject by length before decoding so huge inputs cost nothing.
    if text.len() != (N * 4).div_ceil(3) {
        return None;
    }
    let bytes = decode(text)?;
    bytes.try_into().ok()
}

/// Encodes as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_non_canonical_spellings() {
        assert_eq!(decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode("aGk="), None, "padding");
        assert_eq!(decode("aG k"), None, "whitespace");
        assert_eq!(decode("aGl"), None, "non-zero trailing bits");
        assert_eq!(decode("a+k"), None, "standard alphabet");
        assert_eq!(decode("a"), None, "impossible length");
        assert_eq!(encode(b"hi"), "aGk");
    }

    #[test]
    fn decode_array_checks_length() {
        let key = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";
        assert_eq!(decode_array::<32>(key).map(|k| k[0]), Some(0x03));
        assert_eq!(decode_array::<32>(&key[..42]), None);
        assert_eq!(decode_array::<31>(key), None);
    }
}
