/**
 * BatchMatMul in front of tfjs-backend-wasm's own: its transposed variants (used by every dense layer's
 * backward pass) take a slow path, ~10x slower than an explicit Transpose followed by a plain product.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { disposeInfo, kernelOf, runKernel } from './kernel-utils.js';

export function batchMatMulKernel(backendName: string, original: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return original(args);
    const transpose = kernelOf('Transpose', backendName);
    const flip = (t: TensorInfo) => {
      const rank = t.shape.length;
      const perm = [...Array(rank).keys()];
      [perm[rank - 2], perm[rank - 1]] = [rank - 1, rank - 2];
      return runKernel(transpose, backend, { x: t }, { perm });
    };
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const aT = transposeA ? flip(a) : a;
    const bT = transposeB ? flip(b) : b;
    const result = original({
      inputs: { a: aT, b: bT },
      backend,
      attrs: { ...attrs, transposeA: false, transposeB: false },
    });
    if (transposeA) disposeInfo(backend, aT);
    if (transposeB) disposeInfo(backend, bT);
    return result;
  };
  return { kernelName: 'BatchMatMul', backendName, kernelFunc };
}
