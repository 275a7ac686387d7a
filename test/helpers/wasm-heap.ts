import * as tf from '@tensorflow/tfjs-core';

/** The allocator of the wasm backend's heap (tfjs-backend-wasm keeps its Emscripten module as `backend.wasm`). */
function wasmHeap(): { _malloc(bytes: number): number; _free(address: number): void } {
  return (tf.backend() as unknown as { wasm: { _malloc(n: number): number; _free(p: number): void } }).wasm;
}

/**
 * Holds `bytes` of the current wasm backend's heap, or, without `bytes`, fills it to within a MiB in blocks (the
 * allocation guard refuses what does not fit). Address space only: nothing is written to it. Returns the release.
 * @throws CnnxError OUT_OF_MEMORY when `bytes` do not fit.
 */
export function holdWasmHeap(bytes?: number): () => void {
  const heap = wasmHeap();
  const held: number[] = [];
  if (bytes !== undefined) {
    held.push(heap._malloc(bytes));
  } else {
    for (let block = 2 ** 30; block >= 2 ** 20; block /= 2) {
      for (;;) {
        try {
          held.push(heap._malloc(block));
        } catch {
          break; // the guard refuses it: try a smaller block
        }
      }
    }
  }
  return () => {
    for (const address of held.splice(0)) heap._free(address);
  };
}
