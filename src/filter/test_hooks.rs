// Test-only hooks, compiled only with the cargo feature `test-hooks` (`make wasm-test-hooks`,
// a separate wasm in its own target directory): the production wasm has no code for them, so no
// caller can reach them there. The real-Envoy tests use them to crash one VM (Envoy's
// `failure_policy`) and to grow one VM's memory (the worst-VM gauges).

use crate::request::RequestView;

/// `x-proofgate-test-trap` traps the VM; `x-proofgate-test-grow-mib: N` leaks N MiB (≤ 256).
pub fn run(request: &RequestView) {
    if request.first("x-proofgate-test-trap").is_some() {
        core::arch::wasm32::unreachable();
    }
    if let Some(mib) = request
        .text("x-proofgate-test-grow-mib")
        .and_then(|v| v.parse::<usize>().ok())
    {
        std::mem::forget(vec![1u8; mib.min(256) << 20]);
    }
}
