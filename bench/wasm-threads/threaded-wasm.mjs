/**
 * Start tfjs-backend-wasm's threaded XNNPACK build (tfjs-backend-wasm-threaded-simd.wasm) in Node.
 *
 * Why tfjs does not do it itself (tfjs-backend-wasm 4.22, Node 20):
 *  1. flags_wasm.js: WASM_HAS_MULTITHREAD_SUPPORT returns false whenever IS_NODE (tensorflow/tfjs#3830).
 *  2. Forcing the flag true (tf.env().set(...)) gets into backend_wasm.js init(), whose locateFile returns
 *     URL.createObjectURL(new Blob([worker source])) for '*.worker.js'. In Node the Emscripten glue sets
 *     global.Worker = require('worker_threads').Worker, and `new Worker('blob:nodedata:...')` throws
 *     ERR_WORKER_PATH ("must be an absolute path or a relative path starting with './' or '../'").
 *  3. Even past that, init() passes mainScriptUrlOrBlob as a Blob; the worker script hands it to
 *     importScripts(), which in Node is fs.readFileSync(path) and cannot read a blob: URL.
 *
 * What this module does instead (no patching of node_modules, no Node flags needed):
 *  - writes the pthread worker source (the string exported by wasm-out/tfjs-backend-wasm-threaded-simd.worker.js)
 *    to a temp .cjs file, so locateFile('*.worker.js') can return a real absolute path;
 *  - calls the threaded Emscripten factory (wasm-out/tfjs-backend-wasm-threaded-simd.js) itself with
 *    locateFile -> absolute paths and mainScriptUrlOrBlob -> the absolute path of that same glue file
 *    (the worker importScripts()es it with fs + indirect eval);
 *  - adds the `module.tfjs` cwraps that backend_wasm.js init() would add, and re-registers the 'wasm' backend
 *    with a factory that returns `new BackendWasm(module)` (so every kernel registered for 'wasm',
 *    including cnnx's, runs unchanged on the threaded module);
 *  - setThreadsCount(n) before the backend is built sets XNNPACK's pthreadpool size (n includes the calling
 *    thread). The glue pre-spawns 8 pthread workers (PTHREAD_POOL_SIZE baked into the build) regardless.
 *
 * Use:
 *   import { useThreadedWasm } from './threaded-wasm.mjs';
 *   await useThreadedWasm(2);          // instead of tf.setBackend('wasm')
 *   ... tf work ...
 *   tf.removeBackend('wasm');          // BackendWasm.dispose(): terminates the pthread workers
 * The pool threads are ref'd worker_threads: the process will not exit on its own until the backend is
 * disposed (BackendWasm.dispose -> PThread.terminateAllThreads) or process.exit() is called.
 *
 * (tested: Node 20.20, tfjs 4.22, on the main thread and inside a worker_threads Worker; no Node flags.)
 * The pthread worker file is written once per process to os.tmpdir()/tfjs-wasm-pthread-XXXX/ and not removed.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
const gluePath = join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
const wasmPath = join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.wasm');

let workerPath;
function workerScript() {
  if (workerPath) return workerPath;
  const { wasmWorkerContents } = require(join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js'));
  const dir = mkdtempSync(join(tmpdir(), 'tfjs-wasm-pthread-'));
  // .cjs: the worker source uses require/__filename, so it must load as CommonJS whatever package.json says.
  workerPath = join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  // The source is a template literal in which the original "\\n" escapes became real newlines (inside string
  // literals); tfjs's own locateFile undoes that the same way before making its Blob.
  writeFileSync(workerPath, wasmWorkerContents.replace(/\n/g, '\\n'));
  return workerPath;
}

/** Instantiates the threaded Emscripten module in this process (its pthreads are worker_threads). */
export async function createThreadedModule(logicalCores = 2 * Math.max(1, cpus().length)) {
  const factory = require(gluePath);
  const before = new Set(['uncaughtException', 'unhandledRejection'].flatMap((e) => process.listeners(e)));
  let failed;
  const failure = new Promise((_, reject) => (failed = reject));
  const module = await Promise.race([
    failure,
    factory({
      // backend.cc caps the pool at emscripten_num_logical_cores() / 2, and that import is
      // require('os').cpus().length in Node, so a 2-core machine gets 1 thread whatever setThreadsCount says.
      // Report `logicalCores` instead (this only changes the cap; the count itself comes from setThreadsCount).
      instantiateWasm: (info, receiveInstance) => {
        const env = info.env;
        const key = Object.keys(env).find(
          (k) => typeof env[k] === 'function' && /\.cpus\(\)\.length/.test(String(env[k])),
        );
        if (key === undefined) throw new Error('emscripten_num_logical_cores import not found in the threaded glue');
        env[key] = () => logicalCores;
        WebAssembly.instantiate(readFileSync(wasmPath), info).then(
          ({ instance, module: compiled }) => receiveInstance(instance, compiled),
          failed,
        );
        return {};
      },
      locateFile: (path) => {
        if (path.endsWith('.worker.js')) return workerScript();
        if (path.endsWith('.wasm')) return wasmPath;
        return join(dirname(gluePath), path);
      },
      mainScriptUrlOrBlob: gluePath,
      onAbort: (what) => failed(new Error(`threaded wasm aborted: ${what}`)),
    }),
  ]);
  // The glue installs process-wide handlers that rethrow; cnnx removes them (as src/train/backends/wasm.ts does).
  for (const event of ['uncaughtException', 'unhandledRejection']) {
    for (const l of process.listeners(event)) if (!before.has(l)) process.removeListener(event, l);
  }
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  return module;
}

/**
 * Makes 'wasm' the threaded build with `threads` XNNPACK threads and selects it.
 * Must run before the stock 'wasm' backend was initialised in this process (kernels keep module-level
 * cwraps, so only one wasm module can be live per process).
 */
export async function useThreadedWasm(threads = 2) {
  wasmBackend.setThreadsCount(threads);
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => new wasmBackend.BackendWasm(await createThreadedModule(2 * Math.max(threads, 1))),
    2,
  );
  if (!(await tf.setBackend('wasm'))) throw new Error('threaded wasm backend failed to initialise');
  return { threads: wasmBackend.getThreadsCount(), threaded: 'PThread' in tf.backend().wasm };
}
