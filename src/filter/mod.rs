// The shell: the only code that talks to the proxy-wasm host. It turns host state into plain
// values for the core (`RequestView`, body bytes, `now`), and applies the core's decision:
// local reply, header edits, shared-data writes, audit line, metrics, filter state. Any host
// failure becomes a denial; nothing here can let a request through on an error.

mod abi;
mod etcd;
mod jwks;
mod metrics;
mod store;
#[cfg(feature = "test-hooks")]
mod test_hooks;

use crate::audit;
use crate::config::Config;
use crate::decision::{self, Denial, Facts};
use crate::event_id::EventId;
use crate::headers;
use crate::log_budget::LogBudget;
use crate::log_text;
use crate::parking::{ParkingLot, Refusal};
use crate::reason::Reason;
use crate::replay::cluster::Reply;
use crate::replay::LiveCounter;
use crate::request::RequestView;
use crate::verify::{Admitted, Engine, HeadersVerdict, Pending};
use crate::vm_gauges::{self, VmSample};
use metrics::{Metrics, ProviderMetrics};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Gauge timer: each tick records the VM's memory and, in the one VM that counts replay entries
/// (`vm_gauges`), re-reads one slice of the replay buckets (a full pass takes
/// `LiveCounter::STEPS_PER_PASS` ticks, 32 s).
const GAUGE_PERIOD_MS: u32 = 500;

/// A request parked until its body completes: the decision's inputs, never the header map.
struct Waiting {
    pending: Box<Pending>,
    engine: Rc<Engine>,
    metrics: Option<Rc<Metrics>>,
    providers: Option<Rc<ProviderMetrics>>,
    /// `x-request-id`, for the audit event of a decision made after the headers are gone.
    request_id: Option<String>,
    /// Body bytes Envoy has buffered so far (the audit event of a `body_timeout` says if any).
    body_bytes: usize,
}

thread_local! {
    // Per VM (one VM runs on one thread, whatever root contexts it holds): the audit-line budget
    // for unauthenticated denies, and this VM's slot for the worst-VM gauges.
    static AUDIT_BUDGET: RefCell<LogBudget> = RefCell::new(LogBudget::default());
    static VM_SLOT: Cell<Option<u32>> = const { Cell::new(None) };
    /// This VM's parked requests (a wasm VM is one thread): shared by every root context in the
    /// VM, so `max_parked_requests` bounds the VM, by the HTTP contexts that park and take
    /// them, and by the roots' ticks that expire them after `body_timeout_ms`.
    static LOT: RefCell<ParkingLot<Waiting>> = RefCell::new(ParkingLot::new(1024));
}

fn park(
    context: u32,
    key: Option<(String, String)>,
    deadline_ms: u64,
    waiting: Waiting,
) -> Result<(), (Refusal, Waiting)> {
    let metrics = waiting.metrics.clone();
    LOT.with(|lot| lot.borrow_mut().park(context, key, deadline_ms, waiting))?;
    if let Some(m) = metrics {
        m.parked(1);
    }
    Ok(())
}

/// Takes `context` out of the lot; `None` if it is not there (expired, or never parked).
fn unpark(context: u32) -> Option<Waiting> {
    let waiting = LOT.with(|lot| lot.borrow_mut().take(context))?;
    if let Some(m) = &waiting.metrics {
        m.parked(-1);
    }
    Some(waiting)
}

pub fn install() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> {
        Box::new(Root {
            id,
            ..Root::default()
        })
    });
}

#[derive(Default)]
struct Root {
    id: u32,
    engine: Option<Rc<Engine>>,
    metrics: Option<Rc<Metrics>>,
    providers: Option<Rc<ProviderMetrics>>,
    live: Option<LiveCounter>,
    /// The slot of the VM that counts replay entries, as of this root's last publish.
    replay_counter: Option<u32>,
    cluster_metrics: Option<Rc<etcd::ClusterMetrics>>,
    /// Remote keys (DESIGN.md section 12), when some issuer has a `jwks`.
    keys: Option<jwks::Keys>,
    last_gauges_ms: i64,
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        // Envoy's tick handler re-arms a root context's timer while its period is non-zero, even
        // when the context is gone. Envoy 1.40 no longer leaks it through ECDS updates without
        // this line (measured, test_200_config_updates_leave_the_tick_rate_flat), but other
        // proxy-wasm hosts may: a done root context asks for no more ticks.
        let _ = abi::set_tick_period_ms(0);
        true
    }

    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body: usize,
        _trailers: usize,
    ) {
        if let Some(keys) = &self.keys {
            jwks::on_response(keys, self.id, token, body);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let metrics = Rc::clone(
            self.metrics
                .get_or_insert_with(|| Rc::new(Metrics::define())),
        );
        match load() {
            Ok((engine, keys)) => {
                abi::increment_metric(metrics.config_loads, 1);
                let max = engine.config.max_parked_requests;
                LOT.with(|lot| lot.borrow_mut().set_max(max));
                self.live = Some(LiveCounter::new(&engine.replay));
                self.providers = Some(Rc::new(ProviderMetrics::define(
                    engine.config.jwt_providers.iter().map(|p| p.name.as_str()),
                )));
                if engine.config.replay.cluster.is_some() && self.cluster_metrics.is_none() {
                    self.cluster_metrics = Some(Rc::new(etcd::ClusterMetrics::define()));
                }
                self.engine = Some(Rc::new(engine));
                self.keys = keys;
                self.refresh_gauges();
                self.last_gauges_ms = now_ms().unwrap_or(0);
                // Remote keys are fetched from the first timer tick on, never from on_configure:
                // a callout dispatched before the cluster manager is initialised hangs until its
                // timeout (test_a_request_arriving_during_the_first_fetch_is_held_then_allowed).
                // Without remote keys the tick is for gauges only, and a host without timers
                // still enforces everything.
                let period = if self.keys.is_some() {
                    jwks::TICK_MS
                } else {
                    GAUGE_PERIOD_MS
                };
                let _ = abi::set_tick_period_ms(period);
                true
            }
            Err(message) => {
                if self.engine.is_none() {
                    // Nothing for a timer to report on.
                    let _ = abi::set_tick_period_ms(0);
                }
                abi::increment_metric(metrics.config_rejections, 1);
                abi::log(
                    abi::LOG_ERROR,
                    &format!("proofgate: configuration rejected: {message}"),
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(keys) = &self.keys {
            jwks::tick(keys, self.id);
        }
        // With remote keys the timer runs faster (jwks::TICK_MS); gauges, the tick counter and
        // the suppressed-lines report keep their own period.
        if self.keys.is_some() {
            let Some(ms) = now_ms() else { return };
            if ms.saturating_sub(self.last_gauges_ms) < i64::from(GAUGE_PERIOD_MS) {
                return;
            }
            self.last_gauges_ms = ms;
        }
        if let Some(metrics) = &self.metrics {
            metrics.ticked();
        }
        self.refresh_gauges();
        let suppressed = AUDIT_BUDGET.with(|b| b.borrow_mut().take_suppressed());
        if suppressed > 0 {
            abi::log(
                abi::LOG_INFO,
                &format!(
                    "proofgate: {suppressed} audit lines of unauthenticated denies suppressed \
                     (per VM: {} at once, then {}/s; proofgate.audit.suppressed counts them)",
                    crate::log_budget::BURST,
                    crate::log_budget::PER_SECOND
                ),
            );
        }
        // Last: it switches the effective context to each stream it answers.
        expire_parked();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(jwks::Stream::new(|me| Http {
            id: context_id,
            me,
            engine: self.engine.clone(),
            metrics: self.metrics.clone(),
            providers: self.providers.clone(),
            keys: self.keys.clone(),
            parked: false,
            request_id: None,
            held: None,
            now: 0,
            cluster: None,
            cluster_metrics: self.cluster_metrics.clone(),
        })))
    }
}

impl Root {
    /// Publishes this VM's memory and live replay entries, and sets the gauges to the worst VM's.
    fn refresh_gauges(&mut self) {
        if let (Some(engine), Some(metrics), Some(live), Some(now)) =
            (&self.engine, &self.metrics, &mut self.live, now_seconds())
        {
            let slot = vm_slot();
            // Only the counting VM reads the buckets: a pass is 65,536 shared-data reads, the
            // same total in every VM (issue 12: it cost each worker ~16 ms a tick).
            let entries = if slot.is_some() && self.replay_counter == slot {
                live.step(&engine.replay, &mut store::HostStore, now)
            } else {
                0
            };
            let sample = VmSample {
                memory_bytes: u64::try_from(abi::memory_bytes()).unwrap_or(u64::MAX),
                replay_entries: u64::try_from(entries).unwrap_or(u64::MAX),
            };
            // A shared-data failure leaves the gauges as they were rather than set them to this
            // VM's own values, which is what made them lie.
            if let Some(worst) = slot
                .and_then(|slot| vm_gauges::publish(&mut store::HostStore, slot, sample, now).ok())
            {
                self.replay_counter = worst.counter;
                metrics.gauges(&worst);
            }
        }
    }
}

/// This VM's gauge slot, taken on first use.
fn vm_slot() -> Option<u32> {
    VM_SLOT.with(|cell| {
        if cell.get().is_none() {
            cell.set(vm_gauges::allocate_slot(&mut store::HostStore).ok());
        }
        cell.get()
    })
}

/// Answers `body_timeout` for every parked request past its deadline (run on each root's
/// tick, so within `GAUGE_PERIOD_MS` of the deadline), on that request's own stream.
fn expire_parked() {
    let Ok(now_nanos) = abi::now_nanos() else {
        return;
    };
    let now_ms = now_nanos / 1_000_000;
    let due = LOT.with(|lot| lot.borrow_mut().expire(now_ms));
    for (context, waiting) in due {
        if let Some(m) = &waiting.metrics {
            m.parked(-1);
        }
        // A stream that is already gone has nobody to answer.
        if abi::set_effective_context(context).is_err() {
            continue;
        }
        let mut facts = waiting.pending.facts;
        facts.deny_detail = Some(if waiting.body_bytes == 0 {
            "body_timeout_no_body_bytes"
        } else {
            "body_timeout_partial_body"
        });
        let out = Out {
            engine: Some(&waiting.engine),
            metrics: waiting.metrics.as_deref(),
            providers: waiting.providers.as_deref(),
            request_id: waiting.request_id.as_deref(),
            now: i64::try_from(now_nanos / 1_000_000_000).unwrap_or(0),
        };
        send_deny(&out, Denial::new(Reason::BodyTimeout, true, facts));
    }
}

fn load() -> Result<(Engine, Option<jwks::Keys>), String> {
    let bytes = abi::get_buffer(abi::PLUGIN_CONFIGURATION, 0, usize::MAX)
        .map_err(|s| format!("cannot read the plugin configuration (status {s})"))?;
    let config = Config::parse(&bytes).map_err(|e| e.to_string())?;
    let now = now_seconds().ok_or("cannot read the host clock")?;
    let engine = Engine::new(config, now);
    engine
        .replay
        .open(&mut store::HostStore)
        .map_err(|e| format!("cannot create the replay store in shared data: {e:?}"))?;
    let keys = jwks::load(&engine)?;
    Ok((engine, keys))
}

fn now_ms() -> Option<i64> {
    abi::now_nanos()
        .ok()
        .and_then(|n| i64::try_from(n / 1_000_000).ok())
}

fn now_seconds() -> Option<i64> {
    abi::now_nanos()
        .ok()
        .and_then(|n| i64::try_from(n / 1_000_000_000).ok())
}

struct Http {
    /// The host's context id, and a handle on this request for the root to wake it by.
    id: u32,
    me: std::rc::Weak<std::cell::RefCell<Http>>,
    engine: Option<Rc<Engine>>,
    metrics: Option<Rc<Metrics>>,
    providers: Option<Rc<ProviderMetrics>>,
    keys: Option<jwks::Keys>,
    /// A request held (paused) while the keys it needs are on their way.
    held: Option<jwks::Held>,
    /// This request went to the lot to wait for its body (only what the decision still needs,
    /// never the header map). If it is no longer there, it was answered (`body_timeout`): it
    /// must never continue.
    parked: bool,
    /// `x-request-id`, for the audit event of a decision made after the headers are gone.
    request_id: Option<String>,
    /// The host clock, read once at the start of the callback that decides.
    now: i64,
    /// A request paused on the cluster-wide replay store (`replay.cluster`).
    cluster: Option<Box<etcd::Waiting>>,
    cluster_metrics: Option<Rc<etcd::ClusterMetrics>>,
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        let answer = etcd::http_reply(headers, body);
        let reply = match &answer {
            Some((status, body)) => Reply::Http {
                status: *status,
                body,
            },
            None => Reply::Failed,
        };
        self.on_cluster_answer(token, reply);
    }

    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        let body = abi::get_buffer(abi::GRPC_RECEIVE_BUFFER, 0, size).unwrap_or_default();
        let message = abi::grpc_status().map(|(_, m)| m).unwrap_or_default();
        self.on_cluster_answer(
            token,
            Reply::Grpc {
                status,
                message: &message,
                body: &body,
            },
        );
    }

    fn on_done(&mut self) -> bool {
        // A stream that ends (reset, closed) while parked frees its place and its jti.
        if self.parked {
            unpark(self.id);
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let clock = self.read_clock();
        let Some(request) = read_request() else {
            return self.deny(internal(), None);
        };
        #[cfg(feature = "test-hooks")]
        test_hooks::run(&request);
        // Identity and decision headers are proofgate's alone, on every request.
        for name in headers::IDENTITY_AND_DECISION {
            if request.first(name).is_some()
                && abi::remove_header(abi::REQUEST_HEADERS, name).is_err()
            {
                return self.deny(internal(), Some(&request));
            }
        }
        let (Some(engine), true) = (self.engine.clone(), clock) else {
            return self.deny(internal(), Some(&request));
        };
        // So are the providers' claim_to_headers (DESIGN.md section 13).
        for name in engine.claim_header_names() {
            if request.first(name).is_some()
                && abi::remove_header(abi::REQUEST_HEADERS, name).is_err()
            {
                return self.deny(internal(), Some(&request));
            }
        }
        // The DPoP nonce secret, read through on each request that may need it (section 14).
        if engine.uses_dpop_nonces() {
            *engine.dpop_nonce_key.borrow_mut() =
                crate::dpop::nonce::shared_key(&mut store::HostStore);
        }
        match self.check_with_keys(&engine, &request, true) {
            HeadersVerdict::Exempt(facts) => self.allow(&facts, Some(&request), true),
            HeadersVerdict::Deny(denial) => self.deny(denial, Some(&request)),
            HeadersVerdict::NeedBody(pending) if end_of_stream => {
                self.finish(*pending, Some(&request), &[])
            }
            HeadersVerdict::NeedBody(pending) => self.park(pending, &engine, &request),
            HeadersVerdict::AwaitKeys(hold) => self.hold_for_keys(hold, request, end_of_stream),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(action) = self.held_body(body_size, end_of_stream) {
            return action;
        }
        if !self.parked {
            return Action::Continue;
        }
        let Some(engine) = self.engine.clone() else {
            return self.deny(internal(), None);
        };
        if engine.body_too_large(body_size) {
            return match self.unpark() {
                Some(w) => self.deny(
                    Denial::new(Reason::BodyTooLarge, true, w.pending.facts),
                    None,
                ),
                None => Action::Pause,
            };
        }
        if !end_of_stream {
            // Envoy buffers the body while the filter pauses.
            let id = self.id;
            LOT.with(|lot| {
                if let Some(w) = lot.borrow_mut().get_mut(id) {
                    w.body_bytes = body_size;
                }
            });
            return Action::Pause;
        }
        self.finish_buffered(body_size)
    }

    fn on_http_request_trailers(&mut self, _n: usize) -> Action {
        if let Some(action) = self.held_trailers() {
            return action;
        }
        if !self.parked {
            return Action::Continue;
        }
        // Trailers end the stream: the whole buffered body is there.
        self.finish_buffered(usize::MAX)
    }
}

impl Http {
    /// Reads the host clock into `self.now`; false if the host has none.
    fn read_clock(&mut self) -> bool {
        match now_seconds() {
            Some(now) => {
                self.now = now;
                true
            }
            None => false,
        }
    }

    /// Parks a request whose headers passed until its body completes, or refuses it at once:
    /// a copy of a jti already waiting (`jti_in_flight`), or a full lot
    /// (`too_many_parked_requests`).
    fn park(
        &mut self,
        pending: Box<Pending>,
        engine: &Rc<Engine>,
        request: &RequestView,
    ) -> Action {
        let Some(now_ms) = abi::now_nanos().ok().map(|n| n / 1_000_000) else {
            return self.deny(
                Denial::new(Reason::InternalError, true, pending.facts),
                Some(request),
            );
        };
        let deadline_ms = now_ms.saturating_add(engine.config.body_timeout_ms);
        let key = pending
            .replay
            .as_ref()
            .map(|k| (k.issuer.clone(), k.jti.clone()));
        let waiting = Waiting {
            pending,
            engine: Rc::clone(engine),
            metrics: self.metrics.clone(),
            providers: self.providers.clone(),
            request_id: request.text("x-request-id").map(str::to_string),
            body_bytes: 0,
        };
        match park(self.id, key, deadline_ms, waiting) {
            Ok(()) => {
                self.parked = true;
                Action::Pause
            }
            Err((refusal, waiting)) => {
                let reason = match refusal {
                    Refusal::KeyInFlight => Reason::JtiInFlight,
                    Refusal::Full => Reason::TooManyParkedRequests,
                };
                self.deny(
                    Denial::new(reason, true, waiting.pending.facts),
                    Some(request),
                )
            }
        }
    }

    fn unpark(&mut self) -> Option<Waiting> {
        let waiting = unpark(self.id)?;
        self.request_id = waiting.request_id.clone();
        Some(waiting)
    }

    /// Decides with the buffered body (at most `max` bytes: the size Envoy reported), at the
    /// `now` of this callback. A parked request that is no longer in the lot was answered
    /// already (`body_timeout`) and stays paused.
    fn finish_buffered(&mut self, max: usize) -> Action {
        let Some(waiting) = self.unpark() else {
            return Action::Pause;
        };
        let pending = waiting.pending;
        if !self.read_clock() {
            return self.deny(
                Denial::new(Reason::InternalError, true, pending.facts),
                None,
            );
        }
        match abi::get_buffer(abi::REQUEST_BODY, 0, max) {
            Ok(body) => self.finish(*pending, None, &body),
            Err(_) => self.deny(
                Denial::new(Reason::InternalError, true, pending.facts),
                None,
            ),
        }
    }

    /// The body steps and the replay step, at `self.now`. `request` is there only when the
    /// decision is made in the headers callback.
    fn finish(&mut self, pending: Pending, request: Option<&RequestView>, body: &[u8]) -> Action {
        let Some(engine) = self.engine.clone() else {
            return self.deny(internal(), request);
        };
        match engine.check_body(pending, body, &mut store::HostStore, self.now) {
            Ok(admitted) => {
                if let Some(m) = &self.metrics {
                    m.replay(&admitted.pressure);
                }
                match &engine.config.replay.cluster {
                    Some(cfg) if !admitted.cluster.is_empty() => {
                        self.start_cluster(cfg, admitted, request)
                    }
                    _ => self.allow(&admitted.facts, request, false),
                }
            }
            Err(denial) => self.deny(denial, request),
        }
    }

    /// Pauses the request on the cluster-wide replay store; its answer decides.
    fn start_cluster(
        &mut self,
        cfg: &crate::config::replay::ClusterConfig,
        admitted: Admitted,
        request: Option<&RequestView>,
    ) -> Action {
        match etcd::start(self, cfg, admitted, self.now) {
            Ok(waiting) => {
                self.cluster = Some(waiting);
                Action::Pause
            }
            Err((admitted, why)) => {
                self.cluster_unavailable(why, None);
                self.deny(
                    admitted.refused(Reason::ReplayStoreUnavailable, None),
                    request,
                )
            }
        }
    }

    fn cluster_unavailable(&self, why: &str, rtt_ms: Option<u64>) {
        etcd::log_unavailable(why);
        if let Some(m) = &self.cluster_metrics {
            m.record(None, rtt_ms);
        }
    }

    /// An answer from etcd: the next call, or the decision at this callback's `now`.
    fn on_cluster_answer(&mut self, token: u32, reply: Reply<'_>) {
        let (Some(mut waiting), Some(engine)) = (self.cluster.take(), self.engine.clone()) else {
            return;
        };
        if waiting.token != token {
            self.cluster = Some(waiting);
            return;
        }
        let Some(cfg) = engine.config.replay.cluster.as_ref() else {
            return;
        };
        if !self.read_clock() {
            let facts = waiting.admitted.facts;
            self.deny(Denial::new(Reason::InternalError, true, facts), None);
            return;
        }
        let rtt_ms = abi::now_nanos()
            .ok()
            .map(|n| n.saturating_sub(waiting.started_ns) / 1_000_000);
        // Time moved on while etcd answered: decided again before anything else.
        if let Err(reason) = waiting.admitted.recheck(self.now) {
            self.deny(waiting.admitted.refused(reason, None), None);
            return;
        }
        let decided = match etcd::advance(self, cfg, &mut waiting, reply, self.now) {
            etcd::Outcome::Sent(next) => {
                waiting.token = next;
                self.cluster = Some(waiting);
                return;
            }
            etcd::Outcome::Next(next) => {
                if let Some(m) = &self.cluster_metrics {
                    m.record(Some(true), rtt_ms);
                }
                // Each key's round trip is measured on its own.
                waiting.started_ns = abi::now_nanos().unwrap_or(waiting.started_ns);
                waiting.token = next;
                self.cluster = Some(waiting);
                return;
            }
            etcd::Outcome::Consumed => {
                if let Some(m) = &self.cluster_metrics {
                    m.record(Some(true), rtt_ms);
                }
                None
            }
            etcd::Outcome::Replay => {
                if let Some(m) = &self.cluster_metrics {
                    m.record(Some(false), rtt_ms);
                }
                // A passport's `jti_replay`, a DPoP proof's `dpop_replay` with its challenge.
                let key = waiting.admitted.cluster.get(waiting.key);
                Some((
                    key.map_or(Reason::JtiReplay, |k| k.replay),
                    Some(waiting.key),
                ))
            }
            etcd::Outcome::Unavailable(why) => {
                self.cluster_unavailable(why, rtt_ms);
                Some((Reason::ReplayStoreUnavailable, None))
            }
        };
        match decided {
            None => {
                let facts = waiting.admitted.facts;
                if self.allow(&facts, None, false) == Action::Continue
                    && abi::continue_request().is_err()
                {
                    abi::log(abi::LOG_ERROR, "proofgate: could not resume the request");
                }
            }
            Some((reason, key)) => {
                self.deny(waiting.admitted.refused(reason, key), None);
            }
        }
    }

    fn allow(&mut self, facts: &Facts, request: Option<&RequestView>, exempt: bool) -> Action {
        let Some(event_id) = EventId::random() else {
            return self.deny(
                Denial::new(Reason::InternalError, false, facts.clone()),
                request,
            );
        };
        let engine = self.engine.clone();
        let forward = engine
            .as_ref()
            .is_some_and(|e| e.config.forward_credentials);
        // Every edit of the decision in one write of the whole map (issue 12): the header map
        // read at the start of this callback, or read again for a decision after the body.
        let drop = |name: &str| {
            // proofgate's own headers and the providers' claim headers (removed on arrival),
            names(headers::IDENTITY_AND_DECISION, name)
                || engine
                    .as_ref()
                    .is_some_and(|e| names(e.claim_header_names(), name))
                // the credentials unless forwarded or kept, and a provider's token header
                // unless the provider forwards it (section 13).
                || (!forward
                    && names(headers::CREDENTIALS, name)
                    && !names(facts.keep_headers.iter().map(String::as_str), name))
                || names(facts.strip_headers.iter().map(String::as_str), name)
        };
        let identity = if exempt {
            Vec::new()
        } else {
            decision::identity_headers(facts, &event_id)
        };
        let mut set: Vec<(&str, &str)> = identity.iter().map(|(n, v)| (*n, v.as_str())).collect();
        if !exempt {
            set.extend(
                facts
                    .claim_headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            );
        }
        let reread;
        let current = match request {
            Some(r) => Some(&r.headers),
            None => {
                reread = read_request();
                reread.as_ref().map(|r| &r.headers)
            }
        };
        let edits_ok = match current {
            Some(current) => headers::rewrite_map(current, drop, &set)
                .is_none_or(|map| abi::set_header_map(abi::REQUEST_HEADERS, &map).is_ok()),
            None => false,
        };
        if !edits_ok {
            return self.deny(
                Denial::new(Reason::InternalError, true, facts.clone()),
                request,
            );
        }
        self.record(None, facts, &event_id, request);
        if let Some(m) = &self.metrics {
            m.allowed(exempt);
        }
        Action::Continue
    }

    fn deny(&mut self, denial: Denial, request: Option<&RequestView>) -> Action {
        let out = self.out(request);
        send_deny(&out, denial)
    }

    fn record(
        &self,
        reason: Option<Reason>,
        facts: &Facts,
        event_id: &EventId,
        request: Option<&RequestView>,
    ) {
        record(&self.out(request), reason, facts, event_id);
    }

    fn out<'a>(&'a self, request: Option<&'a RequestView>) -> Out<'a> {
        Out {
            engine: self.engine.as_deref(),
            metrics: self.metrics.as_deref(),
            providers: self.providers.as_deref(),
            request_id: match request {
                Some(r) => r.text("x-request-id"),
                None => self.request_id.as_deref(),
            },
            now: self.now,
        }
    }
}

/// What writing a decision needs: the configuration it was made under, the metrics, the
/// request id for the audit event, and the time of the decision.
struct Out<'a> {
    engine: Option<&'a Engine>,
    metrics: Option<&'a Metrics>,
    providers: Option<&'a ProviderMetrics>,
    request_id: Option<&'a str>,
    now: i64,
}

/// Sends the deny response on the current (effective) stream, with its audit line, filter
/// state and metrics. The request stays paused.
fn send_deny(out: &Out<'_>, denial: Denial) -> Action {
    let event_id = EventId::random().unwrap_or(EventId::from_bytes([0; 16]));
    let response = decision::deny_response(&denial, &event_id);
    let pairs: Vec<(&str, &[u8])> = response
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_bytes()))
        .collect();
    if abi::send_local_response(
        response.status,
        &headers::encode_map(&pairs),
        response.body.as_bytes(),
    )
    .is_err()
    {
        abi::log(
            abi::LOG_ERROR,
            "proofgate: could not send the deny response; the request stays paused",
        );
    }
    record(out, Some(denial.reason), &denial.facts, &event_id);
    if let Some(m) = out.metrics {
        m.denied(denial.reason);
        if let Some(p) = denial.replay {
            m.replay(&p);
        }
    }
    Action::Pause
}

/// The audit line and filter state for access logs.
fn record(out: &Out<'_>, reason: Option<Reason>, facts: &Facts, event_id: &EventId) {
    if let Some(p) = out.providers {
        p.record(
            facts.provider.as_deref(),
            reason.is_none(),
            facts.token_cache_hit,
        );
    }
    let engine = out.engine;
    let log_it = match reason {
        // Unauthenticated denies are rate-limited per VM (anyone can send them); the rest and
        // every allow are not.
        Some(reason) => AUDIT_BUDGET.with(|b| b.borrow_mut().admit(reason, out.now)),
        None => engine.is_none_or(|e| e.config.audit_log_allow),
    };
    if reason.is_some() && !log_it {
        if let Some(m) = out.metrics {
            m.audit_suppressed(1);
        }
    }
    if log_it {
        let policy_version = engine
            .and_then(|e| e.config.bundle.as_ref())
            .and_then(|b| b.policy_version.as_deref());
        let line = audit::line(
            reason,
            facts,
            event_id,
            out.request_id,
            policy_version,
            out.now,
        );
        abi::log(abi::LOG_INFO, &line);
    }
    let event = event_id.to_string();
    let state = [
        (
            "proofgate.decision",
            Some(if reason.is_none() { "allow" } else { "deny" }),
        ),
        (
            "proofgate.reason",
            Some(reason.map_or("allowed", Reason::code)),
        ),
        ("proofgate.event_id", Some(event.as_str())),
        ("proofgate.route_id", facts.route_id.as_deref()),
        ("proofgate.subject", facts.subject.as_deref()),
        ("proofgate.issuer", facts.issuer.as_deref()),
    ];
    for (name, value) in state {
        if let Some(value) = value {
            // Printed as PLAIN by access logs: escaped so no value can forge or split a line.
            // Filter state is for logs only; failing to set it must not change the decision.
            let _ = abi::set_property(name, log_text::escape(value).as_bytes());
        }
    }
}

/// Whether `list` holds `name`, ASCII case-insensitively (header names).
fn names<'a>(list: impl IntoIterator<Item = &'a str>, name: &str) -> bool {
    list.into_iter().any(|n| n.eq_ignore_ascii_case(name))
}

fn internal() -> Denial {
    Denial::new(Reason::InternalError, false, Facts::default())
}

fn read_request() -> Option<RequestView> {
    let raw = abi::header_map_bytes(abi::REQUEST_HEADERS).ok()?;
    Some(RequestView::new(headers::decode_map(&raw)?))
}
