/** The wasm backend: tfjs-backend-wasm (XNNPACK, SIMD where the engine has it) plus cnnx's training kernels. */
import * as tf from '@tensorflow/tfjs-core';
import { registerWasmTrainingKernels } from './wasm/register-kernels.js';

export async function loadWasm() {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  registerWasmTrainingKernels();
  // The Emscripten module installs process-wide handlers that rethrow with its whole minified source; cnnx
  // reports its own errors, so they are removed again.
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = new Set(events.flatMap((event) => process.listeners(event as 'uncaughtException')));
  const ok = await tf.setBackend('wasm');
  for (const event of events) {
    for (const listener of process.listeners(event as 'uncaughtException')) {
      if (!before.has(listener)) process.removeListener(event, listener);
    }
  }
  if (!ok) throw new Error('wasm: tfjs-backend-wasm failed to initialise');
  const features = await wasm.getThreadsCount?.();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return {
    name: 'wasm' as const,
    device: `wasm (XNNPACK${simd ? ', SIMD' : ''}, ${features ?? 1} thread${features === 1 || !features ? '' : 's'})`,
  };
}
