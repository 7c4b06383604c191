// Runs a wasm32-wasip1 build of benches/pipeline.rs under node (V8); PIPELINE_ITERS passes through.
import './v8-envoy.mjs';
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env } from 'node:process';
const wasi = new WASI({ version: 'preview1', args: [], env: { PIPELINE_ITERS: env.PIPELINE_ITERS || '300' } });
const module = await WebAssembly.compile(await readFile(argv[2]));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
wasi.start(instance);
