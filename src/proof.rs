//! transcript-v1 request proof checks, in DESIGN.md section 4's order, split where the body is
//! needed: on the headers, the proof headers are present, the proof is well formed and verifies
//! over the caller's digest with the passport's `cnf` key, and the digest rebuilt from the
//! received request (with the claimed `X-TrustPlane-Body-SHA256`) equals the caller's digest;
//! once the body is complete, it must hash to that claimed value.

use crate::b64;
use crate::config::Config;
use crate::headers;
use crate::passport::{Passport, ProofAhead};
use crate::query;
use crate::reason::Reason;
use crate::request::RequestView;
use crate::transcript::{self, TranscriptInput};
use sha2::{Digest, Sha256};

/// The four proof headers, read once.
#[derive(Debug, Clone, Copy)]
pub struct ProofHeaders<'a> {
    pub transcript_sha256: &'a [u8],
    pub proof: &'a [u8],
    pub nonce: &'a [u8],
    pub body_sha256: &'a [u8],
}

impl<'a> ProofHeaders<'a> {
    /// All four headers, or `missing_request_proof`. A repeated proof header is
    /// `invalid_request_proof`: the request would mean two different things.
    pub fn read(req: &'a RequestView) -> Result<Self, Reason> {
        let names = [
            headers::TRANSCRIPT_SHA256,
            headers::PROOF,
            headers::NONCE,
            headers::BODY_SHA256,
        ];
        let mut vals: [&[u8]; 4] = [&[]; 4];
        for (slot, name) in vals.iter_mut().zip(names) {
            *slot = req
                .first(name)
                .filter(|v| !v.trim_ascii().is_empty())
                .ok_or(Reason::MissingRequestProof)?;
        }
        if names.iter().any(|n| req.count(n) > 1) {
            return Err(Reason::InvalidRequestProof);
        }
        Ok(ProofHeaders {
            transcript_sha256: vals[0],
            proof: vals[1],
            nonce: vals[2],
            body_sha256: vals[3],
        })
    }
}

/// The proof's digest and signature if its headers are present and well formed, read ahead for
/// [`crate::passport::verify_with_proof`]; `None` leaves every decision to [`verify_headers`].
pub fn read_ahead(req: &RequestView) -> Option<ProofAhead> {
    let h = ProofHeaders::read(req).ok()?;
    Some(ProofAhead {
        digest: std::str::from_utf8(h.transcript_sha256)
            .ok()
            .and_then(transcript::parse_hex32)?,
        signature: std::str::from_utf8(h.proof)
            .ok()
            .and_then(b64::decode_array::<64>)?,
    })
}

/// What the headers proved: the passport's `cnf` key signed this digest, and the transcript
/// rebuilt from the request as received (with the body hash the caller claims) has that digest.
/// Only the comparison of the body with `body_sha256` is left for when the body is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The verified transcript digest, lowercase hex.
    pub digest_hex: String,
    /// `X-TrustPlane-Body-SHA256`, as signed: the body must hash to it.
    pub body_sha256: [u8; 32],
}

/// Checks the request proof on the headers alone (DESIGN.md section 4's order): headers present,
/// proof well formed and valid over the caller's digest, rebuilt digest (with the claimed body
/// hash) equal to it. A stolen passport without the caller's key stops here, before any body is
/// buffered.
pub fn verify_headers(
    config: &Config,
    req: &RequestView,
    passport: &Passport,
    audience: &str,
    route_id: &str,
) -> Result<SignedRequest, Reason> {
    let h = ProofHeaders::read(req)?;
    let claimed = std::str::from_utf8(h.transcript_sha256)
        .ok()
        .and_then(transcript::parse_hex32)
        .ok_or(Reason::InvalidRequestProof)?;
    let signature = std::str::from_utf8(h.proof)
        .ok()
        .and_then(b64::decode_array::<64>)
        .ok_or(Reason::InvalidRequestProof)?;
    let valid = match &passport.proof_signature {
        Some(decided) => decided.verify(&passport.cnf_key, &claimed, &signature),
        None => passport.cnf_key.verify(&claimed, &signature),
    };
    if !valid {
        return Err(Reason::InvalidRequestProof);
    }

    // No body hashes to a value that is not 64 lowercase hex: refused now, not after buffering.
    let body_hex =
        std::str::from_utf8(h.body_sha256).map_err(|_| Reason::RequestBindingMismatch)?;
    let body_sha256 = transcript::parse_hex32(body_hex).ok_or(Reason::RequestBindingMismatch)?;
    let nonce = std::str::from_utf8(h.nonce).map_err(|_| Reason::RequestBindingMismatch)?;
    let normalized =
        query::normalize(req.raw_query()).map_err(|_| Reason::RequestBindingMismatch)?;
    // `signed_headers` is sorted and deduplicated at load; the first occurrence of each wins.
    let selected: Vec<(&str, &[u8])> = config
        .signed_headers
        .iter()
        .filter_map(|n| req.first(n).map(|v| (n.as_str(), v)))
        .collect();
    let scheme = config.transcript_scheme.as_deref().unwrap_or(req.scheme());
    let input = TranscriptInput {
        method: req.method(),
        scheme,
        authority: req.authority(),
        path: req.path(),
        audience,
        route_id,
        content_encoding: req.text("content-encoding").unwrap_or(""),
        normalized_query: &normalized,
        selected_headers: &selected,
        body_sha256_hex: body_hex,
        passport_jti: &passport.jti,
        nonce,
        issued_at: passport.iat,
        key_binding: passport.key_binding.name(),
    };
    if transcript::digest(&input) != claimed {
        return Err(Reason::RequestBindingMismatch);
    }
    Ok(SignedRequest {
        digest_hex: transcript::hex_lower(&claimed),
        body_sha256,
    })
}

/// Whether the complete body hashes to the signed `X-TrustPlane-Body-SHA256`.
pub fn body_matches(expected: &[u8; 32], body: &[u8]) -> bool {
    let actual: [u8; 32] = Sha256::digest(body).into();
    actual == *expected
}
