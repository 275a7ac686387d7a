/**
 * The training kernels cnnx adds to tfjs-backend-wasm: the one it lacks (Conv2DBackpropFilter) and faster
 * versions of three it has (Conv2DBackpropInput, MaxPoolGrad, BatchMatMul with transposes). Each is checked
 * against the cpu backend in test/train/wasm-kernels.test.ts.
 */
import { getKernel, registerKernel, unregisterKernel, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';
import { batchMatMulKernel } from './batch-mat-mul.js';
import { conv2dBackpropFilterKernel } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputKernel } from './conv2d-backprop-input.js';
import { maxPoolGradKernel } from './max-pool-grad.js';

const BACKEND = 'wasm';
let registered = false;

function replace(make: (original: KernelFunc) => KernelConfig, name: string): void {
  const original = getKernel(name, BACKEND);
  if (original === undefined) throw new Error(`tfjs-backend-wasm has no ${name} kernel to wrap`);
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
}
