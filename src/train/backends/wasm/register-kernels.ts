/**
 * The training kernels cnnx adds to tfjs-backend-wasm: the one it lacks (Conv2DBackpropFilter) and faster
 * versions of ones it has (Conv2DBackpropInput, MaxPoolGrad, BatchMatMul with transposes, Identity, per-channel Add,
 * Sub and Multiply, FusedConv2D of a single-channel input, the bias gradient's Sum). Several run on cnnx's SIMD module
 * (simd-kernels.ts). Each is checked against the cpu backend in test/train/wasm-kernels.test.ts.
 */
import { getKernel, registerKernel, unregisterKernel, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';
import { batchMatMulKernel } from './batch-mat-mul.js';
import { channelBroadcastKernel, type ChannelBroadcastOp } from './channel-broadcast.js';
import { conv2dBackpropFilterKernel } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputKernel } from './conv2d-backprop-input.js';
import { fusedConv2dKernel } from './fused-conv2d.js';
import { identityKernel } from './identity.js';
import { maxPoolGradKernel } from './max-pool-grad.js';
import { sumKernel } from './sum.js';

const BACKEND = 'wasm';
let registered = false;
const replaced = new Map<string, KernelFunc>();

/** tfjs-backend-wasm's own kernel that cnnx replaced under `name` (bench/train-kernels.ts races the two). */
export function backendKernel(name: string): KernelFunc {
  const original = replaced.get(name);
  if (original === undefined) throw new Error(`cnnx did not replace the wasm kernel ${name}`);
  return original;
}

function replace(make: (original: KernelFunc) => KernelConfig, name: string): void {
  const original = getKernel(name, BACKEND);
  if (original === undefined) throw new Error(`tfjs-backend-wasm has no ${name} kernel to wrap`);
  replaced.set(name, original.kernelFunc);
  unregisterKernel(name, BACKEND);
  registerKernel({ ...make(original.kernelFunc), setupFunc: original.setupFunc, disposeFunc: original.disposeFunc });
}

/** Registers cnnx's wasm training kernels once; call before the wasm backend is initialised. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  registerKernel(conv2dBackpropFilterKernel(BACKEND));
  replace((original) => conv2dBackpropInputKernel(BACKEND, original), 'Conv2DBackpropInput');
  replace(() => maxPoolGradKernel(BACKEND), 'MaxPoolGrad');
  replace((original) => batchMatMulKernel(BACKEND, original), 'BatchMatMul');
  replace((original) => identityKernel(BACKEND, original), 'Identity');
  for (const op of ['Add', 'Sub', 'Multiply'] as ChannelBroadcastOp[]) {
    replace((original) => channelBroadcastKernel(op, BACKEND, original), op);
  }
  replace((original) => fusedConv2dKernel(BACKEND, original), 'FusedConv2D');
  replace((original) => sumKernel(BACKEND, original), 'Sum');
}
