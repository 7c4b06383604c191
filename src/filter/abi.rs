// The proxy-wasm host calls proofgate uses, declared here so that every host status comes back
// as a value: the SDK's `hostcalls` panic on statuses they do not expect, and a panic traps the
// VM. Nothing here interprets data; the core does.

use std::ptr::{null, null_mut};

pub type Status = u32;
pub const OK: Status = 0;
pub const NOT_FOUND: Status = 1;
pub const CAS_MISMATCH: Status = 8;

pub const REQUEST_HEADERS: u32 = 0;
pub const REQUEST_BODY: u32 = 0;
pub const PLUGIN_CONFIGURATION: u32 = 7;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;
pub const METRIC_COUNTER: u32 = 0;
pub const METRIC_GAUGE: u32 = 1;
pub const METRIC_HISTOGRAM: u32 = 2;
pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
pub const GRPC_RECEIVE_BUFFER: u32 = 5;
pub const STREAM_REQUEST: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> Status;
    fn proxy_set_tick_period_milliseconds(period: u32) -> Status;
    fn proxy_get_current_time_nanoseconds(out: *mut u64) -> Status;
    fn proxy_get_buffer_bytes(
        kind: u32,
        start: usize,
        max: usize,
        out: *mut *mut u8,
        out_size: *mut usize,
    ) -> Status;
    fn proxy_get_header_map_pairs(kind: u32, out: *mut *mut u8, out_size: *mut usize) -> Status;
    fn proxy_set_header_map_pairs(kind: u32, data: *const u8, size: usize) -> Status;
    fn proxy_remove_header_map_value(kind: u32, k: *const u8, ks: usize) -> Status;
    fn proxy_get_shared_data(
        k: *const u8,
        ks: usize,
        out: *mut *mut u8,
        out_size: *mut usize,
        cas: *mut u32,
    ) -> Status;
    fn proxy_set_shared_data(k: *const u8, ks: usize, v: *const u8, vs: usize, cas: u32) -> Status;
    fn proxy_set_property(p: *const u8, ps: usize, v: *const u8, vs: usize) -> Status;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> Status;
    fn proxy_define_metric(
        kind: u32,
        name: *const u8,
        name_size: usize,
        out_id: *mut u32,
    ) -> Status;
    fn proxy_increment_metric(id: u32, offset: i64) -> Status;
    fn proxy_record_metric(id: u32, value: u64) -> Status;
    fn proxy_continue_stream(stream: u32) -> Status;
    fn proxy_get_status(code: *mut u32, message: *mut *mut u8, message_size: *mut usize) -> Status;
    fn proxy_set_effective_context(context_id: u32) -> Status;
}

fn check(status: Status) -> Result<(), Status> {
    if status == OK {
        Ok(())
    } else {
        Err(status)
    }
}

/// Takes ownership of a buffer the host allocated through the SDK's `proxy_on_memory_allocate`.
///
/// # Safety
/// `data` must be null or a host-returned allocation of exactly `size` bytes.
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

pub fn log(level: u32, message: &str) {
    // Nothing useful can be done if logging itself fails.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

pub fn set_tick_period_ms(period: u32) -> Result<(), Status> {
    check(unsafe { proxy_set_tick_period_milliseconds(period) })
}

/// The VM's linear memory in bytes (wasm pages are 64 KiB).
pub fn memory_bytes() -> usize {
    core::arch::wasm32::memory_size(0) * 65_536
}

pub fn now_nanos() -> Result<u64, Status> {
    let mut t = 0u64;
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

pub fn get_buffer(kind: u32, start: usize, max: usize) -> Result<Vec<u8>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    match unsafe { proxy_get_buffer_bytes(kind, start, max, &mut data, &mut size) } {
        OK => Ok(unsafe { owned(data, size) }),
        NOT_FOUND => Ok(Vec::new()),
        s => Err(s),
    }
}

pub fn header_map_bytes(kind: u32) -> Result<Vec<u8>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    check(unsafe { proxy_get_header_map_pairs(kind, &mut data, &mut size) })?;
    Ok(unsafe { owned(data, size) })
}

/// Replaces the whole header map with `map` (serialised as `headers::encode_map` does): one host
/// call for every removal and replacement of a decision.
pub fn set_header_map(kind: u32, map: &[u8]) -> Result<(), Status> {
    check(unsafe { proxy_set_header_map_pairs(kind, map.as_ptr(), map.len()) })
}

pub fn remove_header(kind: u32, name: &str) -> Result<(), Status> {
    check(unsafe { proxy_remove_header_map_value(kind, name.as_ptr(), name.len()) })
}

/// `(value, cas)`; `(None, None)` when the key does not exist.
pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), Status> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    match unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) }
    {
        OK => Ok((
            Some(unsafe { owned(data, size) }),
            (cas != 0).then_some(cas),
        )),
        NOT_FOUND => Ok((None, None)),
        s => Err(s),
    }
}

pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
    check(unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(0),
        )
    })
}

pub fn set_property(name: &str, value: &[u8]) -> Result<(), Status> {
    check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

pub fn send_local_response(status: u32, headers: &[u8], body: &[u8]) -> Result<(), Status> {
    check(unsafe {
        proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

pub fn define_metric(kind: u32, name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    check(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, by: i64) {
    // Metrics are best effort: a failed increment must not change a decision.
    let _ = unsafe { proxy_increment_metric(id, by) };
}

pub fn record_metric(id: u32, value: u64) {
    let _ = unsafe { proxy_record_metric(id, value) };
}

/// Resumes the paused request (after a callout decided to allow it).
pub fn continue_request() -> Result<(), Status> {
    check(unsafe { proxy_continue_stream(STREAM_REQUEST) })
}

/// The gRPC status code and message of the call whose answer is being handled.
pub fn grpc_status() -> Result<(u32, String), Status> {
    let (mut code, mut data, mut size) = (0u32, null_mut(), 0usize);
    check(unsafe { proxy_get_status(&mut code, &mut data, &mut size) })?;
    let message = unsafe { owned(data, size) };
    Ok((code, String::from_utf8_lossy(&message).into_owned()))
}

/// Makes `context_id` (an HTTP stream) the target of the following host calls, from a root
/// context's callback; fails when that stream is gone.
pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    check(unsafe { proxy_set_effective_context(context_id) })
}
