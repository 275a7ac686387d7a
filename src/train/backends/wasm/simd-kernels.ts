/**
 * cnnx's WebAssembly SIMD training kernels (simd/kernels.c), bound to a tfjs-backend-wasm instance: the module
 * imports the backend's own memory, so it reads and writes the backend's tensors in place, with no copies.
 */
import { readFileSync } from 'node:fs';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './kernel-utils.js';

/** The module's exports; pointers are byte addresses in the backend's heap (see simd/kernels.c for each). */
export interface SimdKernels {
  conv2d(...args: number[]): void;
  conv2d_filter_grad(...args: number[]): number;
  conv2d_filter_grad_multi(...args: number[]): void;
  conv2d_input_grad(...args: number[]): void;
  max_pool_grad_2x2(x: number, dy: number, dx: number, ...dims: number[]): void;
  sum_rows(x: number, out: number, rows: number, channels: number): void;
}

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WebAssembly.Memory, SimdKernels>();

/**
 * The kernels bound to `backend`'s memory, or undefined where that memory is not reachable (tfjs-backend-wasm's
 * threaded build keeps it elsewhere); callers then use the backend's own kernels.
 */
export function simdKernels(backend: unknown): SimdKernels | undefined {
  const memory = (backend as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return undefined;
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    compiled ??= new WebAssembly.Module(readFileSync(new URL('./simd/kernels.wasm', import.meta.url)));
    kernels = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as SimdKernels;
    instances.set(memory, kernels);
  }
  return kernels;
}

/** The byte address of a tensor's data in the backend's heap. */
export const addressOf = (backend: unknown, t: TensorInfo): number =>
  (backend as WasmBackendLike).typedArrayFromHeap(t).byteOffset;
