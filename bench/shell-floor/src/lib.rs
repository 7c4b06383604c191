//! A proxy-wasm HTTP filter with proofgate's host calls and none of its work, for `make bench`'s
//! shell ladder (issue 12): how much of proofgate's cost inside Envoy is the price of any wasm
//! filter, and how much is the host calls an allowed passport + proof request makes.
//!
//! The plugin configuration is the mode:
//! - `noop`: answers Continue to request headers (the fixed cost of a wasm filter per request:
//!   context creation, the callbacks Envoy makes, context deletion);
//! - `read`: also reads the whole request header map once (as proofgate does);
//! - `read_write`: also writes the whole map back once (proofgate's one header-map write);
//! - `read_edit`: instead of that write, the edits one host call each: three headers removed (the
//!   passport, the proof, the nonce) and seven set (the identity and decision headers);
//! - `shell`: also proofgate's other host calls on an allowed GET: the clock, two shared-data
//!   reads (the replay secret, 32 bytes, and the bucket) and a compare-and-swap write (the
//!   bucket), six filter-state properties, one 500-byte info log line and one counter.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

/// Seven identity and decision headers, as many as proofgate sets on an allowed passport request.
const IDENTITY: [&str; 7] = [
    "x-trustplane-subject",
    "x-trustplane-issuer",
    "x-trustplane-trust-domain",
    "x-trustplane-route-id",
    "x-trustplane-decision",
    "x-trustplane-event-id",
    "x-trustplane-jti",
];

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Mode {
    Noop,
    Read,
    ReadWrite,
    ReadEdit,
    Shell,
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { mode: Mode::Noop, counter: 0 })
    });
}}

struct Root {
    mode: Mode,
    counter: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.mode = match config.as_slice() {
            b"noop" => Mode::Noop,
            b"read" => Mode::Read,
            b"read_write" => Mode::ReadWrite,
            b"read_edit" => Mode::ReadEdit,
            b"shell" => Mode::Shell,
            _ => return false,
        };
        // The secret proofgate's replay store reads on every consume (32 bytes, made once).
        if let Ok((None, _)) = hostcalls::get_shared_data("shell_floor.secret") {
            let _ = hostcalls::set_shared_data("shell_floor.secret", Some(&[9u8; 32]), None);
        }
        match hostcalls::define_metric(MetricType::Counter, "shell_floor.allow") {
            Ok(id) => self.counter = id,
            Err(_) => return false,
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            mode: self.mode,
            counter: self.counter,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    mode: Mode,
    counter: u32,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.mode == Mode::Noop {
            return Action::Continue;
        }
        let map = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        if self.mode == Mode::ReadEdit {
            for name in ["authorization", "x-trustplane-proof", "x-trustplane-nonce"] {
                let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
            }
            for name in IDENTITY {
                let _ = hostcalls::set_map_value(
                    MapType::HttpRequestHeaders,
                    name,
                    Some("0123456789abcdef0123456789abcdef"),
                );
            }
            return Action::Continue;
        }
        if self.mode >= Mode::ReadWrite {
            let pairs = map
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            let _ = hostcalls::set_map_bytes(MapType::HttpRequestHeaders, pairs);
        }
        if self.mode == Mode::Shell {
            let _ = hostcalls::get_current_time();
            let _ = hostcalls::get_shared_data("shell_floor.secret");
            let (_, cas) = hostcalls::get_shared_data("shell_floor.bucket").unwrap_or((None, None));
            let _ = hostcalls::set_shared_data("shell_floor.bucket", Some(&[7u8; 64]), cas);
            for name in [
                "decision", "reason", "event_id", "route_id", "subject", "issuer",
            ] {
                let _ = hostcalls::set_property(
                    vec!["shell_floor", name],
                    Some(b"0123456789abcdef0123456789abcdef"),
                );
            }
            let _ = hostcalls::log(LogLevel::Info, &"a".repeat(500));
            let _ = hostcalls::increment_metric(self.counter, 1);
        }
        Action::Continue
    }
}
