/**
 * Sum over every axis but the last (a bias gradient: dy [..., C] -> [C]), which the wasm backend's own kernel
 * computes by transposing the whole input to [C, rows] first: with 4 to 16 channels, cnnx's SIMD kernel
 * (simd/kernels.c, sum_rows) adds the rows in one pass per 4 channels instead. Other reductions, dtypes and channel
 * counts take the backend's kernel.
 */
import { util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './kernel-utils.js';
import { addressOf, simdKernels } from './simd-kernels.js';

/**
 * The kernel sums 4 channels per pass over the rows: with more channels than this the passes cost more than the
 * backend's one transpose (AlexNet's [128, 54, 54, 96] went from about 0.7x to 0.4x PyTorch's whole step).
 */
const MOST_CHANNELS = 16;

export function sumKernel(backendName: string, original: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const { x } = inputs as { x: TensorInfo };
    const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = util.parseAxisParam(axis, x.shape);
    const allButLast = axes.length === rank - 1 && [...axes].sort((a, b) => a - b).every((a, i) => a === i);
    const C = x.shape[rank - 1]!;
    const simd =
      x.dtype === 'float32' && rank >= 2 && allButLast && C >= 4 && C <= MOST_CHANNELS
        ? simdKernels(backend)
        : undefined;
    if (simd === undefined) return original(args);
    const out = (backend as WasmBackendLike).makeOutput(
      keepDims ? [...x.shape.slice(0, -1).map(() => 1), C] : [C],
      'float32',
    );
    simd.sum_rows(addressOf(backend, x), addressOf(backend, out), util.sizeFromShape(x.shape) / C, C);
    return out;
  };
  return { kernelName: 'Sum', backendName, kernelFunc };
}
