// V8 configured as Envoy's wasm runtime configures it, for every bench that runs wasm under node.
// proxy-wasm-cpp-host (src/v8/v8.cc) turns Liftoff off, so Envoy runs TurboFan code only; node's
// default instead starts every function in Liftoff and tiers hot ones up while the bench is timing,
// which put JIT warm-up into the measured requests (issue 12: about 100 µs of the "rest" per
// request in a 1,000-request run). Eager compilation keeps TurboFan's compile time outside the
// timed loops as well: Envoy pays it once per VM, not per request.
// Imported first by each bench/*-wasi.mjs and bench/*/run.mjs, before any module is compiled.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-liftoff');
setFlagsFromString('--no-wasm-lazy-compilation');
