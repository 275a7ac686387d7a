/** The wasm backend: tfjs-backend-wasm (XNNPACK, SIMD where the engine has it) plus cnnx's training kernels. */
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError } from '../../common/index.js';
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
  guardAllocations((tf.backend() as unknown as { wasm: EmscriptenModule }).wasm);
  const features = await wasm.getThreadsCount?.();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return {
    name: 'wasm' as const,
    device: `wasm (XNNPACK${simd ? ', SIMD' : ''}, ${features ?? 1} thread${features === 1 || !features ? '' : 's'})`,
  };
}

interface EmscriptenModule {
  _malloc(bytes: number): number;
  _free(address: number): void;
  HEAPU8: Uint8Array;
}

/** Marks a malloc that guardAllocations made, so that a backend loaded again is not guarded twice. */
const GUARDED = Symbol('cnnx.guardedMalloc');

/**
 * tfjs-backend-wasm takes the address malloc returns without a check: once the heap cannot grow (a wasm32 memory
 * holds 4 GiB at most), malloc returns 0, the tensor is written over the start of the heap, and the run crashes
 * later, elsewhere, with "memory access out of bounds". The guard throws at the allocation instead, as it does for
 * a block that does not lie within the memory.
 * @throws CnnxError OUT_OF_MEMORY naming the bytes asked for and the heap's size, with what to do.
 */
function guardAllocations(module: EmscriptenModule): void {
  if (GUARDED in module._malloc) return;
  // Emscripten's _malloc starts as a stub that puts the module's export in its place on its first call: called
  // once, what is wrapped stays wrapped (and a wrapper someone else put there is kept).
  module._free(module._malloc(8));
  const malloc = module._malloc;
  const guarded = (bytes: number) => {
    const address = malloc(bytes) >>> 0;
    // Near the 4 GiB, malloc has also been seen to return a block that ends past the memory.
    if (bytes > 0 && (address === 0 || address + bytes > module.HEAPU8.length)) {
      const heap = (module.HEAPU8.length / 2 ** 30).toFixed(2);
      throw new CnnxError(
        `wasm: out of memory allocating ${(bytes / 2 ** 20).toFixed(1)} MiB (the heap holds ${heap} GiB of the ` +
          '4 GiB a WebAssembly memory can have): use a smaller --batch-size in a new run, or more workers to split ' +
          'each batch (--resume <run> --workers N)',
        'OUT_OF_MEMORY',
      );
    }
    return address;
  };
  module._malloc = Object.assign(guarded, { [GUARDED]: true });
}
