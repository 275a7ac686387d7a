/**
 * `npx tsx bench/heap-guard.ts [--model alexnet] [--batch-size 128] [--workers 1] [--steps 2] [--warmup 1]`: runs
 * `cnnx bench train` on the wasm backend with guard bytes around every tensor of this thread's heap, and stops at
 * the first write past a tensor's ends, naming the last kernel that ran, the tensor's size and the kernel that made
 * it. For "memory access out of bounds" crashes that surface far from their cause (a kernel that writes past its
 * output corrupts the allocator's bookkeeping, and a later free fails). Replica threads (`--workers` >= 2) run
 * unguarded; the training thread's heap is the one checked. Slow: every kernel checks every live tensor's guards.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/train/backends/index.js';
import { benchmarkTraining } from '../src/train/benchmark.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'alexnet' },
    'batch-size': { type: 'string', default: '128' },
    workers: { type: 'string', default: '1' },
    steps: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '1' },
  },
});

/** Bytes of guard before and after each allocation, and the byte they hold. */
const GUARD = 64;
const PATTERN = 0xa5;

interface Module {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(address: number): void;
  asm: { malloc(bytes: number): number; free(address: number): void };
}

await useBackend('wasm');
const backend = tf.backend() as unknown as {
  wasm: Module;
  makeOutput(...args: unknown[]): { dataId: object };
};
const wasm = backend.wasm;
/** Live allocations: address -> bytes and what made them. */
const live = new Map<number, { bytes: number; madeBy: string }>();
let lastKernel = '(none yet)';

function check(address: number, bytes: number, madeBy: string, when: string): void {
  const heap = wasm.HEAPU8;
  for (let at = address - GUARD; at < address + bytes + GUARD; at = at === address - 1 ? address + bytes : at + 1) {
    if (heap[at] !== PATTERN) {
      const side = at < address ? `${address - at} bytes before` : `${at - address - bytes} bytes after`;
      throw new Error(`guard ${side} a ${bytes}-byte tensor (made by ${madeBy}) broken, found ${when}`);
    }
  }
}

// The module's malloc and free exports, not its _malloc/_free (the training backend's guard wraps _malloc again).
const { malloc, free } = wasm.asm;
wasm._malloc = (bytes: number) => {
  const start = malloc(bytes + 2 * GUARD) >>> 0;
  if (start === 0) throw new RangeError(`wasm: out of memory allocating ${bytes} bytes`);
  wasm.HEAPU8.fill(PATTERN, start, start + GUARD);
  wasm.HEAPU8.fill(PATTERN, start + GUARD + bytes, start + 2 * GUARD + bytes);
  live.set(start + GUARD, { bytes, madeBy: lastKernel });
  return start + GUARD;
};
wasm._free = (address: number) => {
  address >>>= 0;
  const entry = live.get(address);
  if (entry === undefined) throw new Error(`free of ${address}, which no guarded malloc returned, after ${lastKernel}`);
  check(address, entry.bytes, entry.madeBy, `when it was freed, after ${lastKernel}`);
  live.delete(address);
  free(address - GUARD);
};
for (const config of tf.getKernelsForBackend('wasm')) {
  const kernelFunc = config.kernelFunc;
  tf.unregisterKernel(config.kernelName, 'wasm');
  tf.registerKernel({
    ...config,
    kernelFunc: (args) => {
      const shapes = Object.values(args.inputs).map((t) => t?.shape);
      lastKernel = `${config.kernelName} ${JSON.stringify(shapes)}`;
      const out = kernelFunc(args);
      for (const [address, { bytes, madeBy }] of live) check(address, bytes, madeBy, `after ${lastKernel}`);
      return out;
    },
  });
}

const result = await benchmarkTraining({
  model: values.model,
  batchSize: Number(values['batch-size']),
  backend: 'wasm',
  workers: Number(values.workers),
  steps: Number(values.steps),
  warmup: Number(values.warmup),
});
console.log(`no guard broken; ${result.examples_per_sec} examples/s under the guards`);
