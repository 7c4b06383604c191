//! transcript-v1 request proof checks, in DESIGN.md section 4's order: the proof headers are
//! present; the proof is well formed and verifies over the caller's digest with the passport's
//! `cnf` key; the digest rebuilt from the received request equals the caller's digest; the body
//! hash header equals the hash of the body received.

use crate::b64;
use crate::config::Config;
use crate::headers;
use crate::passport::Passport;
use crate::query;
use crate::reason::Reason;
use crate::request::RequestView;
use crate::transcript::{self, TranscriptInput};

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

/// Checks the proof of `req` with `body`; returns the verified transcript digest (hex).
pub fn verify(
    config: &Config,
    req: &RequestView,
    body: &[u8],
    passport: &Passport,
    audience: &str,
    route_id: &str,
) -> Result<String, Reason> {
    let h = ProofHeaders::read(req)?;
    let claimed = std::str::from_utf8(h.transcript_sha256)
        .ok()
        .and_then(transcript::parse_hex32)
        .ok_or(Reason::InvalidRequestProof)?;
    let signature = std::str::from_utf8(h.proof)
        .ok()
        .and_then(b64::decode_array::<64>)
        .ok_or(Reason::InvalidRequestProof)?;
    if !passport.cnf_key.verify(&claimed, &signature) {
        return Err(Reason::InvalidRequestProof);
    }

    let nonce = std::str::from_utf8(h.nonce).map_err(|_| Reason::RequestBindingMismatch)?;
    let normalized =
        query::normalize(req.raw_query()).map_err(|_| Reason::RequestBindingMismatch)?;
    let body_hex = transcript::sha256_hex(body);
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
        body_sha256_hex: &body_hex,
        passport_jti: &passport.jti,
        nonce,
        issued_at: passport.iat,
        key_binding: passport.key_binding.name(),
    };
    let rebuilt = transcript::digest(&input);
    if rebuilt != claimed || h.body_sha256 != body_hex.as_bytes() {
        return Err(Reason::RequestBindingMismatch);
    }
    Ok(transcript::hex_lower(&rebuilt))
}
