// Counters proofgate exports through proxy-wasm metrics; Envoy shows them as
// `wasmcustom.proofgate.*` in /stats and /stats/prometheus.

use super::abi;
use crate::reason::Reason;
use crate::replay::Pressure;
use crate::vm_gauges::Worst;

pub struct Metrics {
    allow: u32,
    deny: u32,
    exempt: u32,
    by_reason: Vec<(Reason, u32)>,
    cas_retries: u32,
    refused_store_full: u32,
    share_full: u32,
    entries: u32,
    memory: u32,
    vms: u32,
    ticks: u32,
    audit_suppressed: u32,
    parked: u32,
    pub config_loads: u32,
    pub config_rejections: u32,
}

impl Metrics {
    /// Defines every metric once; a definition the host refuses leaves that metric id 0, which
    /// the host then ignores, so metrics never decide anything.
    pub fn define() -> Metrics {
        let counter = |name: &str| abi::define_metric(abi::METRIC_COUNTER, name).unwrap_or(0);
        let gauge = |name: &str| abi::define_metric(abi::METRIC_GAUGE, name).unwrap_or(0);
        Metrics {
            allow: counter("proofgate.decisions.allow"),
            deny: counter("proofgate.decisions.deny"),
            exempt: counter("proofgate.decisions.exempt"),
            by_reason: Reason::ALL
                .iter()
                .map(|r| (*r, counter(&format!("proofgate.deny.{}", r.code()))))
                .collect(),
            cas_retries: counter("proofgate.replay.cas_retries"),
            refused_store_full: counter("proofgate.replay.refused_store_full"),
            share_full: counter("proofgate.replay.share_full"),
            entries: gauge("proofgate.replay.entries"),
            memory: gauge("proofgate.vm.memory_bytes"),
            vms: gauge("proofgate.vm.count"),
            ticks: counter("proofgate.vm.ticks"),
            audit_suppressed: counter("proofgate.audit.suppressed"),
            parked: gauge("proofgate.parked_requests"),
            config_loads: counter("proofgate.config.loads"),
            config_rejections: counter("proofgate.config.rejections"),
        }
    }

    pub fn allowed(&self, exempt: bool) {
        abi::increment_metric(if exempt { self.exempt } else { self.allow }, 1);
    }

    pub fn denied(&self, reason: Reason) {
        abi::increment_metric(self.deny, 1);
        if let Some((_, id)) = self.by_reason.iter().find(|(r, _)| *r == reason) {
            abi::increment_metric(*id, 1);
        }
    }

    pub fn replay(&self, pressure: &Pressure) {
        if pressure.cas_retries > 0 {
            abi::increment_metric(self.cas_retries, i64::from(pressure.cas_retries));
        }
        if pressure.bucket_full {
            abi::increment_metric(self.refused_store_full, 1);
        }
        if pressure.share_full {
            abi::increment_metric(self.share_full, 1);
        }
    }

    /// Requests parked waiting for their bodies: added to and taken from, never set, so with
    /// several VMs the gauge is their sum (no VM overwrites another's count).
    pub fn parked(&self, delta: i64) {
        abi::increment_metric(self.parked, delta);
    }

    /// Gauges refreshed on the root context's tick: the worst live VM's values, so every VM
    /// writes the same numbers (see `vm_gauges`).
    pub fn gauges(&self, worst: &Worst) {
        abi::record_metric(self.entries, worst.replay_entries);
        abi::record_metric(self.memory, worst.memory_bytes);
        abi::record_metric(self.vms, u64::from(worst.vms));
    }

    /// One timer tick of one root context (a leaked timer would show up as a growing rate).
    pub fn ticked(&self) {
        abi::increment_metric(self.ticks, 1);
    }

    /// Audit lines of unauthenticated denies that the log budget dropped.
    pub fn audit_suppressed(&self, lines: u64) {
        abi::increment_metric(
            self.audit_suppressed,
            i64::try_from(lines).unwrap_or(i64::MAX),
        );
    }
}

/// Decisions per JWT provider (DESIGN.md section 13): `proofgate.provider.<name>.allow`,
/// `.deny`, and `.cache_hit` (allows whose signature check the verified-token cache skipped).
/// Defined when a configuration loads, since the names come from it; provider names are
/// restricted at load to letters, digits, `-`, `_` and `.`, so each is one stat name segment.
pub struct ProviderMetrics {
    by_name: Vec<(String, [u32; 3])>,
}

impl ProviderMetrics {
    pub fn define<'a>(names: impl Iterator<Item = &'a str>) -> ProviderMetrics {
        let counter = |name: String| abi::define_metric(abi::METRIC_COUNTER, &name).unwrap_or(0);
        ProviderMetrics {
            by_name: names
                .map(|n| {
                    let ids = [
                        counter(format!("proofgate.provider.{n}.allow")),
                        counter(format!("proofgate.provider.{n}.deny")),
                        counter(format!("proofgate.provider.{n}.cache_hit")),
                    ];
                    (n.to_string(), ids)
                })
                .collect(),
        }
    }

    /// Counts a decision for every provider named in `providers` (space-separated: an `all`
    /// rule can involve several).
    pub fn record(&self, providers: Option<&str>, allowed: bool, cache_hit: bool) {
        for name in providers.unwrap_or_default().split(' ') {
            if let Some((_, ids)) = self.by_name.iter().find(|(n, _)| n == name) {
                abi::increment_metric(if allowed { ids[0] } else { ids[1] }, 1);
                if allowed && cache_hit {
                    abi::increment_metric(ids[2], 1);
                }
            }
        }
    }
}
