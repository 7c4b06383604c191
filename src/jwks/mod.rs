//! Remote keys: JWKS fetched through Envoy HTTP callouts (DESIGN.md section 12), as a pure state
//! machine over shared data and an explicit clock. The shell (`filter/jwks.rs`) only dispatches
//! the callouts this module asks for, hands their responses back, pauses and resumes requests.
//!
//! - [`record`]: the two shared-data values of a source (fetch record, document).
//! - [`fetch`]: election of the one fetcher, schedule, backoff, refetch rate limit, completion.
//! - [`local`]: one VM's parsed copy of the shared document, re-parsed only when it changes.
//! - [`remote`]: what the decision pipeline asks of remote keys (a trait).
//! - [`ring`]: every source of a configuration: ticks, wake-ups, passport and provider key
//!   lookups.
//! - [`waiters`]: the requests a VM holds while keys are on their way, and when to wake them.

pub mod fetch;
pub mod local;
pub mod record;
pub mod remote;
pub mod ring;
pub mod waiters;

pub use fetch::{Completion, Election, FetchError, Source, Trigger};
pub use local::{Available, Local, Synced};
pub use record::Record;
pub use remote::{Hold, KeyLookup, NoRemoteKeys, ProviderLookup, RemoteKeys};
pub use ring::{Owner, Ring, SourceKeys, SourceTick};
pub use waiters::{SourceNow, Waiter, Waiters};

#[cfg(test)]
mod tests;
