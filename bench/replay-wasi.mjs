// Runs a wasm32-wasip1 build of benches/replay.rs under node (V8); REPLAY_SIZES and REPLAY_ITERS pass through.
import './v8-envoy.mjs';
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env } from 'node:process';
const pass = Object.fromEntries(['REPLAY_SIZES', 'REPLAY_ITERS'].filter((k) => env[k]).map((k) => [k, env[k]]));
const wasi = new WASI({ version: 'preview1', args: [], env: pass });
const module = await WebAssembly.compile(await readFile(argv[2]));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
wasi.start(instance);
