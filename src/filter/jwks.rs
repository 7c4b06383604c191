// Remote keys in the shell (DESIGN.md section 12). The core (`crate::jwks`) decides who fetches,
// when, what a response becomes and which held requests to wake; this file only does what needs
// the host: dispatch the callout, read its response, keep a handle on each held request, and
// decide it again (then resume it or answer it) with the effective context set to it.

use super::{abi, internal, now_ms, store, Http};
use crate::decision::Denial;
use crate::jwks::waiters::MAX_HELD_HEADER_BYTES;
use crate::jwks::{Completion, Election, FetchError, Hold, Ring, Trigger, Waiter, Waiters};
use crate::reason::Reason;
use crate::request::RequestView;
use crate::verify::{Engine, HeadersVerdict};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

/// The root tick while remote keys are configured: how quickly another VM's fetch reaches this
/// VM's held requests.
pub const TICK_MS: u32 = 100;

/// One VM's remote keys, shared by its root context and its HTTP contexts.
pub type Keys = Rc<RefCell<VmKeys>>;

pub struct VmKeys {
    pub ring: Ring,
    waiters: Waiters,
    /// This VM's id in the shared fetch record's lease.
    owner: u64,
    /// Callouts this VM dispatched: token and source index.
    callouts: Vec<(u32, usize)>,
    /// Held requests by context id.
    held: Vec<(u32, Weak<RefCell<Http>>)>,
    metrics: Metrics,
}

struct Metrics {
    ok: u32,
    failed: u32,
    unknown_kid: u32,
    bad_signature: u32,
    age: u32,
}

impl Metrics {
    fn define() -> Metrics {
        let counter = |name: &str| abi::define_metric(abi::METRIC_COUNTER, name).unwrap_or(0);
        Metrics {
            ok: counter("proofgate.jwks.fetch.ok"),
            failed: counter("proofgate.jwks.fetch.failed"),
            unknown_kid: counter("proofgate.jwks.refetch.unknown_kid"),
            bad_signature: counter("proofgate.jwks.refetch.bad_signature"),
            age: abi::define_metric(abi::METRIC_GAUGE, "proofgate.jwks.age_seconds").unwrap_or(0),
        }
    }
}

/// The remote keys of `engine`'s configuration, with their shared values created; `None` when
/// every issuer's keys are inline.
pub fn load(engine: &Engine) -> Result<Option<Keys>, String> {
    let ring = Ring::new(&engine.config);
    if ring.is_empty() {
        return Ok(None);
    }
    ring.create(&mut store::HostStore)
        .map_err(|e| format!("cannot create the JWKS cache in shared data: {e:?}"))?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|_| "no randomness for the JWKS lease id".to_string())?;
    Ok(Some(Rc::new(RefCell::new(VmKeys {
        ring,
        waiters: Waiters::default(),
        owner: u64::from_le_bytes(id).max(1),
        callouts: Vec::new(),
        held: Vec::new(),
        metrics: Metrics::define(),
    }))))
}

/// The root's tick: elections (and dispatches), syncs, then the held requests to decide.
pub fn tick(keys: &Keys, root_id: u32) {
    let Some(now) = now_ms() else { return };
    let woken = match keys.try_borrow_mut() {
        Ok(mut k) => k.tick(now),
        Err(_) => return,
    };
    resume(woken, root_id);
}

/// A callout response for the root context.
pub fn on_response(keys: &Keys, root_id: u32, token: u32, body_size: usize) {
    let Some(now) = now_ms() else { return };
    let woken = match keys.try_borrow_mut() {
        Ok(mut k) => k.on_response(token, body_size, now),
        Err(_) => return,
    };
    resume(woken, root_id);
}

/// Decides each woken request again, in its own context.
fn resume(woken: Vec<Weak<RefCell<Http>>>, root_id: u32) {
    for (id, http) in woken
        .into_iter()
        .filter_map(|w| w.upgrade())
        .filter_map(|h| h.try_borrow().ok().map(|b| b.id).map(|id| (id, h)))
    {
        // A request that ended meanwhile has no context left: nothing to answer.
        if abi::set_effective_context(id).is_err() {
            continue;
        }
        if let Ok(mut h) = http.try_borrow_mut() {
            h.wake();
        }
    }
    let _ = abi::set_effective_context(root_id);
}

impl VmKeys {
    fn tick(&mut self, now: i64) -> Vec<Weak<RefCell<Http>>> {
        let ticks = self
            .ring
            .tick(&mut store::HostStore, self.owner, now, &self.waiters);
        for t in &ticks {
            match t.election {
                Ok(Election::Claimed(trigger)) => self.dispatch(t.index, trigger, now),
                Ok(_) => {}
                Err(e) => {
                    self.log_failure(t.index, now, "store", &format!("shared data error {e:?}"))
                }
            }
            if let Ok(crate::jwks::Synced::Unparsable) = t.synced {
                self.log_failure(
                    t.index,
                    now,
                    "unparsable",
                    "the shared document does not parse here",
                );
            }
        }
        let age = self.ring.age_seconds(now).unwrap_or(0);
        abi::record_metric(self.metrics.age, u64::try_from(age).unwrap_or(0));
        let woken = self.ring.wake(&mut self.waiters, &ticks, now);
        self.take_held(&woken)
    }

    fn dispatch(&mut self, index: usize, trigger: Trigger, now: i64) {
        let Some(entry) = self.ring.entries.get(index) else {
            return;
        };
        let c = &entry.source.config;
        let timeout = Duration::from_millis(u64::try_from(c.timeout_ms).unwrap_or(2000));
        let headers = vec![
            (":method", "GET"),
            (":path", c.path.as_str()),
            (":authority", c.authority.as_str()),
            ("accept", "application/json"),
        ];
        match proxy_wasm::hostcalls::dispatch_http_call(&c.cluster, headers, None, vec![], timeout)
        {
            Ok(token) => {
                self.callouts.push((token, index));
                match trigger {
                    Trigger::UnknownKid => abi::increment_metric(self.metrics.unknown_kid, 1),
                    Trigger::BadSignature => abi::increment_metric(self.metrics.bad_signature, 1),
                    Trigger::Scheduled => {}
                }
            }
            Err(_) => self.complete(index, now, Err(FetchError::Dispatch)),
        }
    }

    fn on_response(&mut self, token: u32, body_size: usize, now: i64) -> Vec<Weak<RefCell<Http>>> {
        let Some(pos) = self.callouts.iter().position(|(t, _)| *t == token) else {
            return Vec::new();
        };
        let (_, index) = self.callouts.swap_remove(pos);
        let Some(source) = self.ring.entries.get(index).map(|e| e.source.clone()) else {
            return Vec::new();
        };
        let status = abi::header_map_bytes(abi::HTTP_CALL_RESPONSE_HEADERS)
            .ok()
            .and_then(|raw| crate::headers::decode_map(&raw))
            .map(RequestView::new);
        let status = status.as_ref().and_then(|h| h.text(":status"));
        let body = source.check_response(status, body_size).and_then(|()| {
            abi::get_buffer(abi::HTTP_CALL_RESPONSE_BODY, 0, body_size)
                .map_err(|_| FetchError::NoResponse)
        });
        match body {
            Ok(bytes) => self.complete(index, now, Ok(&bytes)),
            Err(e) => self.complete(index, now, Err(e)),
        }
        let woken = self.ring.wake(&mut self.waiters, &[], now);
        self.take_held(&woken)
    }

    fn complete(&mut self, index: usize, now: i64, result: Result<&[u8], FetchError>) {
        let outcome = self
            .ring
            .complete(index, &mut store::HostStore, self.owner, now, result);
        let label = self
            .ring
            .entries
            .get(index)
            .map_or(String::new(), |e| e.source.label.clone());
        match outcome {
            Ok(Completion::Stored {
                generation,
                changed,
            }) => {
                abi::increment_metric(self.metrics.ok, 1);
                if changed {
                    abi::log(
                        abi::LOG_INFO,
                        &format!(
                            "proofgate: JWKS of {label:?}: new keys (generation {generation})"
                        ),
                    );
                }
            }
            Ok(Completion::Failed {
                error,
                failures,
                retry_in_ms,
            }) => {
                abi::increment_metric(self.metrics.failed, 1);
                self.log_failure(
                    index,
                    now,
                    &error.to_string(),
                    &format!("{error}; failure {failures} in a row, retry in {retry_in_ms} ms, last good keys kept"),
                );
            }
            Ok(Completion::LeaseLost) => self.log_failure(
                index,
                now,
                "lease",
                "response arrived after the fetch lease expired; ignored",
            ),
            Err(e) => self.log_failure(index, now, "store", &format!("shared data error {e:?}")),
        }
    }

    /// A rate-limited warning about source `index` (never key material: only the issuer, the
    /// URI and why).
    fn log_failure(&mut self, index: usize, now: i64, kind: &str, what: &str) {
        if !self.ring.may_log(index, kind, now) {
            return;
        }
        if let Some(e) = self.ring.entries.get(index) {
            let line = format!(
                "proofgate: JWKS of {:?} from {}: {what}",
                e.source.label, e.source.config.uri
            );
            abi::log(abi::LOG_WARN, &line);
        }
    }

    fn take_held(&mut self, woken: &[u32]) -> Vec<Weak<RefCell<Http>>> {
        let mut out = Vec::with_capacity(woken.len());
        self.held.retain(|(id, http)| {
            if woken.contains(id) {
                out.push(http.clone());
                false
            } else {
                true
            }
        });
        out
    }

    /// Holds request `id`; false when this VM holds too many already.
    fn hold(&mut self, id: u32, me: Weak<RefCell<Http>>, hold: Hold, now: i64) -> bool {
        if !self.waiters.hold(Waiter::new(id, &hold, now)) {
            return false;
        }
        self.held.retain(|(h, _)| *h != id);
        self.held.push((id, me));
        true
    }
}

/// A request held for keys, with what its body did meanwhile.
pub struct Held {
    request: RequestView,
    body_done: bool,
    body_size: usize,
    too_large: bool,
}

/// The host's HTTP context: the request state behind a shared handle, so that a root callback
/// can decide a held request again.
pub struct Stream {
    http: Rc<RefCell<Http>>,
}

impl Stream {
    pub fn new(make: impl FnOnce(Weak<RefCell<Http>>) -> Http) -> Stream {
        Stream {
            http: Rc::new_cyclic(|me| RefCell::new(make(me.clone()))),
        }
    }
}

// Every callback the request's own state handles goes through, callout answers included (the
// cluster replay store's etcd calls are dispatched by the request).
impl Context for Stream {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        if let Ok(mut h) = self.http.try_borrow_mut() {
            h.on_http_call_response(token, headers, body, trailers);
        }
    }

    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        if let Ok(mut h) = self.http.try_borrow_mut() {
            h.on_grpc_call_response(token, status, size);
        }
    }

    // A parked request frees its place and its jti when its stream ends. Were the state busy,
    // the place would still be freed at its body deadline (the stream is gone by then).
    fn on_done(&mut self) -> bool {
        match self.http.try_borrow_mut() {
            Ok(mut h) => h.on_done(),
            Err(_) => true,
        }
    }
}

// A busy handle can only mean a re-entrant call while the request is being decided: pausing is
// the closed answer.
impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, n: usize, end_of_stream: bool) -> Action {
        match self.http.try_borrow_mut() {
            Ok(mut h) => h.on_http_request_headers(n, end_of_stream),
            Err(_) => Action::Pause,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.http.try_borrow_mut() {
            Ok(mut h) => h.on_http_request_body(body_size, end_of_stream),
            Err(_) => Action::Pause,
        }
    }

    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        match self.http.try_borrow_mut() {
            Ok(mut h) => h.on_http_request_trailers(n),
            Err(_) => Action::Pause,
        }
    }
}

impl Http {
    /// The header checks with this VM's remote keys.
    pub(super) fn check_with_keys(
        &self,
        engine: &Engine,
        request: &RequestView,
        may_hold: bool,
    ) -> HeadersVerdict {
        match self.keys.as_ref().map(|k| k.try_borrow()) {
            Some(Ok(k)) => engine.check_headers_with(request, self.now, &k.ring, may_hold),
            // No remote keys configured (or the ring is busy: never while a request callback runs).
            _ => engine.check_headers(request, self.now),
        }
    }

    /// Pauses the request until keys arrive (or its deadline); the root decides it again.
    pub(super) fn hold_for_keys(
        &mut self,
        hold: Hold,
        request: RequestView,
        end_of_stream: bool,
    ) -> Action {
        let now = now_ms().unwrap_or(self.now.saturating_mul(1000));
        let small = request.byte_len() <= MAX_HELD_HEADER_BYTES;
        let held = match self.keys.as_ref().map(|k| k.try_borrow_mut()) {
            Some(Ok(mut k)) if small => k.hold(self.id, self.me.clone(), hold, now),
            _ => false,
        };
        if !held {
            let mut denial = Denial::new(Reason::KeysUnavailable, true, Default::default());
            denial.retry_after = Some(1);
            return self.deny(denial, Some(&request));
        }
        self.held = Some(Held {
            request,
            body_done: end_of_stream,
            body_size: 0,
            too_large: false,
        });
        Action::Pause
    }

    /// Body data while held: buffered (paused), never passed on.
    pub(super) fn held_body(&mut self, body_size: usize, end_of_stream: bool) -> Option<Action> {
        let max = self.engine.as_ref().map(|e| e.config.max_body_bytes);
        let held = self.held.as_mut()?;
        held.body_size = body_size;
        held.body_done |= end_of_stream;
        held.too_large |= max.is_some_and(|m| body_size > m);
        Some(Action::Pause)
    }

    pub(super) fn held_trailers(&mut self) -> Option<Action> {
        let held = self.held.as_mut()?;
        held.body_done = true;
        Some(Action::Pause)
    }

    /// Decides a held request again, from the start, with the keys and the clock of now; then
    /// answers it, resumes it, or leaves it waiting for the rest of its body.
    fn wake(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let Some(engine) = self.engine.clone() else {
            self.deny(internal(), Some(&held.request));
            return;
        };
        if !self.read_clock() {
            self.deny(internal(), Some(&held.request));
            return;
        }
        let request = held.request;
        let action = match self.check_with_keys(&engine, &request, false) {
            HeadersVerdict::Exempt(facts) => self.allow(&facts, Some(&request), true),
            HeadersVerdict::Deny(denial) => self.deny(denial, Some(&request)),
            HeadersVerdict::AwaitKeys(_) => self.deny(internal(), Some(&request)),
            HeadersVerdict::NeedBody(pending) if held.too_large => {
                let denial = Denial::new(Reason::BodyTooLarge, true, pending.facts);
                self.deny(denial, Some(&request))
            }
            HeadersVerdict::NeedBody(pending) if held.body_done => {
                match abi::get_buffer(abi::REQUEST_BODY, 0, held.body_size) {
                    Ok(body) => self.finish(*pending, Some(&request), &body),
                    Err(_) => {
                        let denial = Denial::new(Reason::InternalError, true, pending.facts);
                        self.deny(denial, Some(&request))
                    }
                }
            }
            // The rest of the body arrives through the usual callbacks.
            HeadersVerdict::NeedBody(pending) => self.park(pending, &engine, &request),
        };
        if action == Action::Continue && abi::continue_request().is_err() {
            abi::log(
                abi::LOG_ERROR,
                "proofgate: could not resume a request held for keys",
            );
        }
    }
}
