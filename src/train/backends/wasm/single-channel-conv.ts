/**
 * cnnx's WebAssembly SIMD kernels for convolutions of a single-channel input (simd/single-channel-conv.c): the
 * forward pass and the filter gradient of a grayscale network's first layer, which XNNPACK computes slowly (one
 * input channel per output pixel). The module imports tfjs-backend-wasm's own memory, so it reads and writes the
 * backend's tensors in place, with no copies.
 */
import { readFileSync } from 'node:fs';
import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './kernel-utils.js';

interface Exports {
  conv2d(...args: number[]): void;
  conv2d_filter_grad(...args: number[]): number;
}

/** Kernel widths conv2d_filter_grad has a version for (its accumulators are registers). */
const FILTER_GRAD_WIDTHS = new Set([3, 5, 7, 11]);

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WebAssembly.Memory, Exports>();

/** The kernels bound to `backend`'s memory, or undefined where its memory is not reachable (a threaded build). */
function kernelsOf(backend: unknown): Exports | undefined {
  const memory = (backend as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return undefined;
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    compiled ??= new WebAssembly.Module(readFileSync(new URL('./simd/single-channel-conv.wasm', import.meta.url)));
    kernels = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as Exports;
    instances.set(memory, kernels);
  }
  return kernels;
}

/** Whether the single-channel kernels compute this convolution: NHWC, one input channel, >= 4 output channels. */
function fits(info: backend_util.Conv2DInfo): boolean {
  return (
    info.dataFormat === 'channelsLast' &&
    info.inChannels === 1 &&
    info.outChannels >= 4 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    info.strideHeight === info.strideWidth
  );
}

const addressOf = (wasm: WasmBackendLike, t: TensorInfo) => wasm.typedArrayFromHeap(t).byteOffset;

/**
 * y [B, OH, OW, O] = conv(x [B, H, W, 1], filter [KH, KW, 1, O]) + bias [O], or undefined when the kernels do not
 * fit the convolution (see fits) and the caller should use the backend's own.
 */
export function singleChannelConv2d(
  backend: unknown,
  x: TensorInfo,
  filter: TensorInfo,
  bias: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo | undefined {
  const kernels = fits(info) ? kernelsOf(backend) : undefined;
  if (kernels === undefined) return undefined;
  const wasm = backend as WasmBackendLike;
  const y = wasm.makeOutput(info.outShape, 'float32');
  kernels.conv2d(
    addressOf(wasm, x),
    addressOf(wasm, filter),
    addressOf(wasm, bias),
    addressOf(wasm, y),
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.filterHeight,
    info.filterWidth,
    info.outHeight,
    info.outWidth,
    info.outChannels,
    info.strideHeight,
    info.padInfo.top,
    info.padInfo.left,
  );
  return y;
}

/**
 * The filter gradient [KH, KW, 1, O] of x [B, H, W, 1] and dy [B, OH, OW, O], or undefined when the kernels do not
 * fit (see fits; also a kernel width other than 3, 5, 7 or 11).
 */
export function singleChannelFilterGrad(
  backend: unknown,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo | undefined {
  const kernels = fits(info) && FILTER_GRAD_WIDTHS.has(info.filterWidth) ? kernelsOf(backend) : undefined;
  if (kernels === undefined) return undefined;
  const wasm = backend as WasmBackendLike;
  const dw = wasm.makeOutput([info.filterHeight, info.filterWidth, 1, info.outChannels], 'float32');
  wasm.typedArrayFromHeap(dw).fill(0);
  kernels.conv2d_filter_grad(
    addressOf(wasm, x),
    addressOf(wasm, dy),
    addressOf(wasm, dw),
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.filterHeight,
    info.filterWidth,
    info.outHeight,
    info.outWidth,
    info.outChannels,
    info.strideHeight,
    info.padInfo.top,
    info.padInfo.left,
  );
  return dw;
}
