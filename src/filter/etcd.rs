// The waiting half of the cluster-wide replay step (DESIGN.md section 15): dispatches the calls
// the core's `ClusterConsume` asks for (gRPC or the JSON gateway, through the Envoy cluster),
// keeps the request paused meanwhile, and feeds every answer back to the core. When the answer
// decides, everything time-dependent is checked again at the answer's `now`, so a slow etcd can
// never stretch a passport's life. Any failure refuses the request: fail closed.

use super::abi;
use super::store::HostStore;
use crate::config::replay::{ClusterConfig, Protocol};
use crate::replay::cluster::{Call, ClusterConsume, Reply, Step};
use crate::replay::etcd;
use crate::verify::Admitted;
use proxy_wasm::traits::Context;
use std::cell::Cell;
use std::time::Duration;

/// `proofgate.replay.cluster.*`, defined only when `replay.cluster` is configured, so that a
/// deployment without it exports exactly the metrics it did before.
pub struct ClusterMetrics {
    consumed: u32,
    replays: u32,
    errors: u32,
    rtt_ms: u32,
}

impl ClusterMetrics {
    pub fn define() -> Self {
        let counter = |name: &str| abi::define_metric(abi::METRIC_COUNTER, name).unwrap_or(0);
        ClusterMetrics {
            consumed: counter("proofgate.replay.cluster.consumed"),
            replays: counter("proofgate.replay.cluster.replays"),
            errors: counter("proofgate.replay.cluster.errors"),
            rtt_ms: abi::define_metric(abi::METRIC_HISTOGRAM, "proofgate.replay.cluster.rtt_ms")
                .unwrap_or(0),
        }
    }

    /// One step: `Some(true)` consumed, `Some(false)` a replay, `None` an error; with the round
    /// trip in milliseconds when etcd answered.
    pub fn record(&self, outcome: Option<bool>, rtt_ms: Option<u64>) {
        let id = match outcome {
            Some(true) => self.consumed,
            Some(false) => self.replays,
            None => self.errors,
        };
        abi::increment_metric(id, 1);
        if let Some(ms) = rtt_ms {
            abi::record_metric(self.rtt_ms, ms);
        }
    }
}

/// A request paused on etcd.
pub struct Waiting {
    pub consume: ClusterConsume,
    pub admitted: Admitted,
    /// Which of `admitted.cluster` is in flight; the ones before it are consumed in etcd.
    pub key: usize,
    pub token: u32,
    /// When the whole cluster step must be over (host nanoseconds).
    pub deadline_ns: u64,
    /// When the step started, for the round-trip metric.
    pub started_ns: u64,
}

/// How a cluster step ended.
pub enum Outcome {
    /// Paused on another call for the same key.
    Sent(u32),
    /// The key is consumed; paused on the first call for the next one.
    Next(u32),
    /// The last key is consumed: every key of the request is.
    Consumed,
    Replay,
    Unavailable(&'static str),
}

/// Sends `call` through the cluster, from the HTTP context `ctx`; the token or why not.
pub fn dispatch(
    ctx: &dyn Context,
    cfg: &ClusterConfig,
    call: &Call,
    deadline_ns: u64,
) -> Result<u32, &'static str> {
    let now = abi::now_nanos().map_err(|_| "no host clock")?;
    let left = deadline_ns.saturating_sub(now);
    if left < 1_000_000 {
        return Err("etcd timeout");
    }
    let timeout = Duration::from_nanos(left);
    match cfg.protocol {
        Protocol::Grpc => {
            let service = etcd::grpc_service(&cfg.cluster);
            let upstream = std::str::from_utf8(&service).map_err(|_| "cluster name")?;
            ctx.dispatch_grpc_call(
                upstream,
                call.service,
                call.method,
                Vec::new(),
                Some(&call.body),
                timeout,
            )
            .map_err(|_| "etcd gRPC call could not be dispatched")
        }
        Protocol::Http => ctx
            .dispatch_http_call(
                &cfg.cluster,
                vec![
                    (":method", "POST"),
                    (":path", call.path),
                    (":authority", &cfg.cluster),
                    ("content-type", "application/json"),
                ],
                Some(&call.body),
                Vec::new(),
                timeout,
            )
            .map_err(|_| "etcd HTTP call could not be dispatched"),
    }
}

/// Starts the cluster step for `admitted` (its keys already consumed in shared data), with its
/// first key; on failure `admitted` comes back for the denial's facts.
// Once per request and never on a hot loop: boxing the error buys nothing.
#[allow(clippy::result_large_err)]
pub fn start(
    ctx: &dyn Context,
    cfg: &ClusterConfig,
    admitted: Admitted,
    now: i64,
) -> Result<Box<Waiting>, (Admitted, &'static str)> {
    let started_ns = abi::now_nanos().unwrap_or(0);
    let deadline_ns = started_ns.saturating_add(u64::from(cfg.timeout_ms) * 1_000_000);
    let Some(key) = admitted.cluster.first() else {
        return Err((admitted, "no replay key"));
    };
    let (consume, step) = ClusterConsume::start(cfg, &key.claim(), &mut HostStore, now);
    let Step::Send(call) = step else {
        return Err((admitted, "etcd step did not start"));
    };
    match dispatch(ctx, cfg, &call, deadline_ns) {
        Ok(token) => Ok(Box::new(Waiting {
            consume,
            admitted,
            key: 0,
            token,
            deadline_ns,
            started_ns,
        })),
        Err(why) => Err((admitted, why)),
    }
}

/// The answer of the HTTP call in flight, as the core reads it.
pub fn http_reply(num_headers: usize, body_size: usize) -> Option<(u32, Vec<u8>)> {
    if num_headers == 0 {
        return None;
    }
    let raw = abi::header_map_bytes(abi::HTTP_CALL_RESPONSE_HEADERS).ok()?;
    let status = crate::headers::decode_map(&raw)?
        .into_iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| std::str::from_utf8(&v).ok()?.parse().ok())?;
    let body = abi::get_buffer(abi::HTTP_CALL_RESPONSE_BODY, 0, body_size).ok()?;
    Some((status, body))
}

/// Feeds one answer to the core and sends the next call if it asks for one; once a key is
/// consumed, starts the request's next key, within the same deadline.
pub fn advance(
    ctx: &dyn Context,
    cfg: &ClusterConfig,
    waiting: &mut Waiting,
    reply: Reply<'_>,
    now: i64,
) -> Outcome {
    match waiting.consume.on_reply(reply, &mut HostStore, now) {
        Step::Send(call) => send(ctx, cfg, &call, waiting.deadline_ns, Outcome::Sent),
        Step::Consumed => {
            let Some(next) = waiting.admitted.cluster.get(waiting.key + 1) else {
                return Outcome::Consumed;
            };
            let (consume, step) = ClusterConsume::start(cfg, &next.claim(), &mut HostStore, now);
            waiting.consume = consume;
            waiting.key += 1;
            match step {
                Step::Send(call) => send(ctx, cfg, &call, waiting.deadline_ns, Outcome::Next),
                _ => Outcome::Unavailable("etcd step did not start"),
            }
        }
        Step::Replay => Outcome::Replay,
        Step::Unavailable(why) => Outcome::Unavailable(why),
    }
}

fn send(
    ctx: &dyn Context,
    cfg: &ClusterConfig,
    call: &Call,
    deadline_ns: u64,
    sent: fn(u32) -> Outcome,
) -> Outcome {
    match dispatch(ctx, cfg, call, deadline_ns) {
        Ok(token) => sent(token),
        Err(why) => Outcome::Unavailable(why),
    }
}

thread_local! {
    static LAST_LOG_NS: Cell<u64> = const { Cell::new(0) };
    static SUPPRESSED: Cell<u64> = const { Cell::new(0) };
}

/// Warning lines at most every 10 s per VM, each saying how many were left out: an etcd outage
/// refuses every request, and one line per request would flood the log.
pub fn log_unavailable(why: &str) {
    const EVERY_NS: u64 = 10_000_000_000;
    let now = abi::now_nanos().unwrap_or(0);
    let last = LAST_LOG_NS.with(Cell::get);
    if last != 0 && now.saturating_sub(last) < EVERY_NS {
        SUPPRESSED.with(|s| s.set(s.get() + 1));
        return;
    }
    LAST_LOG_NS.with(|l| l.set(now.max(1)));
    let left_out = SUPPRESSED.with(|s| s.replace(0));
    abi::log(
        abi::LOG_WARN,
        &format!(
            "proofgate: etcd replay store unavailable: {why} ({left_out} more since the last line)"
        ),
    );
}
