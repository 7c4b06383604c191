//! proofgate: a proxy-wasm HTTP filter that admits only requests a TrustPlane caller signed.
//!
//! The crate is a pure core (everything outside `filter/`), which works on bytes, strings and an
//! explicit `now` and is tested natively, and a thin shell (`filter/`, wasm only) that is the one
//! place naming `proxy_wasm`. See DESIGN.md section 1.

pub mod algs;
pub mod audit;
pub mod b64;
pub mod config;
pub mod crypto;
pub mod decision;
pub mod dpop;
pub mod event_id;
pub mod headers;
pub mod json;
pub mod jwk;
pub mod jwks;
pub mod jwt;
pub mod log_budget;
pub mod log_text;
pub mod parking;
pub mod passport;
pub mod path_match;
pub mod policy;
pub mod proof;
pub mod query;
pub mod reason;
pub mod replay;
pub mod request;
pub mod rfc3339;
pub mod routing;
pub mod rules;
pub mod signer;
pub mod transcript;
pub mod verify;
mod verify_rules;
pub mod vm_gauges;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod filter;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
proxy_wasm::main! {{
    filter::install();
}}
