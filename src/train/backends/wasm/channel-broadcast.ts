/**
 * Add, Sub and Multiply of a vector along the last axis ([..., C] op [C], either order: a bias, or batch norm's
 * per-channel mean and scale), which the wasm backend's own kernels broadcast one C-long row at a time. The vector is
 * tiled d times (d * C <= TILE_FLOATS, d dividing the rows) and combined with the input viewed as [rows / d, d * C],
 * so each broadcast row is long. Every element is the same float32 operation on the same operands in the same
 * order, so the result has the same bits. Measured (bench/train-kernels.ts --only add, median ms per call, two
 * runs, backend -> tiled): [128,28,28,6] + [6] 2.13 -> 0.34 and 1.62 -> 0.28; [128,10,10,16] + [16] 0.42 -> 0.16
 * and 0.21 -> 0.07; in a lenet5-relu step (batch norm after every layer) Multiply and Sub on [256,28,28,6] and [6]
 * took 11.1 and 4.8 ms of 58 (BENCHMARKS.md). Other shapes and dtypes take the backend's kernel.
 */
import { util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { disposeInfo, withShape, type WasmBackendLike } from './kernel-utils.js';

const TILE_FLOATS = 1024;

/** The largest divisor of `n` not above `max` (at least 1). */
function largestDivisorUpTo(n: number, max: number): number {
  for (let d = Math.min(n, Math.floor(max)); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/** The kernels channelBroadcastKernel wraps. */
export type ChannelBroadcastOp = 'Add' | 'Sub' | 'Multiply';

export function channelBroadcastKernel(
  kernelName: ChannelBroadcastOp,
  backendName: string,
  original: KernelFunc,
): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend } = args;
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const [big, vector] = b.shape.length === 1 ? [a, b] : [b, a];
    const C = vector.shape.length === 1 ? vector.shape[0]! : 0;
    const rows = util.sizeFromShape(big.shape) / C;
    if (
      vector.shape.length !== 1 ||
      big.shape.length < 2 ||
      big.shape[big.shape.length - 1] !== C ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      rows < 2
    )
      return original(args);
    const wasm = backend as unknown as WasmBackendLike;
    const d = largestDivisorUpTo(rows, TILE_FLOATS / C);
    const tile = wasm.makeOutput([d * C], 'float32');
    const tiled = wasm.typedArrayFromHeap(tile);
    tiled.set(wasm.typedArrayFromHeap(vector));
    for (let filled = C; filled < d * C; filled *= 2) tiled.copyWithin(filled, 0, Math.min(filled, d * C - filled));
    const flat = withShape(big, [rows / d, d * C]);
    // Operand order is kept: Sub needs it, and NaN payloads of Add and Multiply need not commute.
    const result = original({ ...args, inputs: big === a ? { a: flat, b: tile } : { a: tile, b: flat } }) as TensorInfo;
    disposeInfo(backend, tile);
    return withShape(result, big.shape);
  };
  return { kernelName, backendName, kernelFunc };
}
