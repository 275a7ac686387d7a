/**
 * Convolutions of a single-channel input on cnnx's SIMD kernels (simd/kernels.c): the forward pass and the filter
 * gradient of a grayscale network's first layer, which XNNPACK computes slowly (one input channel per output
 * pixel).
 */
import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './kernel-utils.js';
import { addressOf, simdKernels } from './simd-kernels.js';

/** Kernel widths conv2d_filter_grad has a version for (its accumulators are registers). */
const FILTER_GRAD_WIDTHS = new Set([3, 5, 7, 11]);

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
  const kernels = fits(info) ? simdKernels(backend) : undefined;
  if (kernels === undefined) return undefined;
  const wasm = backend as WasmBackendLike;
  const y = wasm.makeOutput(info.outShape, 'float32');
  kernels.conv2d(
    addressOf(backend, x),
    addressOf(backend, filter),
    addressOf(backend, bias),
    addressOf(backend, y),
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
  const kernels = fits(info) && FILTER_GRAD_WIDTHS.has(info.filterWidth) ? simdKernels(backend) : undefined;
  if (kernels === undefined) return undefined;
  const wasm = backend as WasmBackendLike;
  const dw = wasm.makeOutput([info.filterHeight, info.filterWidth, 1, info.outChannels], 'float32');
  wasm.typedArrayFromHeap(dw).fill(0);
  kernels.conv2d_filter_grad(
    addressOf(backend, x),
    addressOf(backend, dy),
    addressOf(backend, dw),
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
