/**
 * Convolutions on cnnx's SIMD kernels (simd/kernels.c) where XNNPACK is slow: the forward pass and the filter
 * gradient of a single-channel input (a grayscale network's first layer: XNNPACK computes it with one input channel
 * per output pixel), the filter gradient of few channels (XNNPACK's transposed convolution has a tiny output and a
 * huge kernel there) and the input gradient of few input channels (XNNPACK's full convolution has only those few
 * output channels).
 */
import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './kernel-utils.js';
import { addressOf, simdKernels } from './simd-kernels.js';

/** Channels up to which cnnx's kernels beat XNNPACK's (LeNet's 6 and 16; AlexNet's 96 and more are XNNPACK's). */
const FEW_CHANNELS = 16;

/**
 * Input channels below which the gathered input gradient beats XNNPACK's full convolution: 1.8-2.0x faster at
 * LeNet's 6, 1.5x at 8, 1.1x at 12, 0.96x at 16 (BENCHMARKS.md, `npx tsx bench/train-kernels.ts --model
 * few-channels --only input`).
 */
const FEW_INPUT_CHANNELS = 16;

/** Kernel widths conv2d_filter_grad has a version for (its accumulators are registers). */
const FILTER_GRAD_WIDTHS = new Set([3, 5, 7, 11]);

/** NHWC, no dilation, one stride for rows and columns: what every kernel here computes. */
function sameStrides(info: backend_util.Conv2DInfo): boolean {
  return (
    info.dataFormat === 'channelsLast' &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    info.strideHeight === info.strideWidth
  );
}

/**
 * Whether the single-channel kernels compute this convolution: one input channel, 4 to 16 output channels (with
 * more, as AlexNet's 96, XNNPACK fills its vectors and keeps them).
 */
function fits(info: backend_util.Conv2DInfo): boolean {
  return sameStrides(info) && info.inChannels === 1 && info.outChannels >= 4 && info.outChannels <= FEW_CHANNELS;
}

/** What every convolution kernel takes after its pointers: B, H, W, C, KH, KW, OH, OW, O, stride, top, left. */
export function geometry(info: backend_util.Conv2DInfo): number[] {
  const { batchSize, inHeight, inWidth, inChannels, filterHeight, filterWidth, outHeight, outWidth } = info;
  return [
    batchSize,
    inHeight,
    inWidth,
    inChannels,
    filterHeight,
    filterWidth,
    outHeight,
    outWidth,
    info.outChannels,
    info.strideHeight,
    info.padInfo.top,
    info.padInfo.left,
  ];
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
    ...geometry(info),
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
  kernels.conv2d_filter_grad(addressOf(backend, x), addressOf(backend, dy), addressOf(backend, dw), ...geometry(info));
  return dw;
}

/**
 * The filter gradient [KH, KW, C, O] of x [B, H, W, C] and dy [B, OH, OW, O] for few channels (2 <= C <= 16, O a
 * multiple of 16 up to 64), or undefined when the kernel does not fit.
 */
export function fewChannelFilterGrad(
  backend: unknown,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo | undefined {
  const { inChannels: C, outChannels: O } = info;
  const few = C >= 2 && C <= FEW_CHANNELS && O % 16 === 0 && O <= 4 * FEW_CHANNELS;
  const kernels = few && sameStrides(info) ? simdKernels(backend) : undefined;
  if (kernels === undefined) return undefined;
  const wasm = backend as WasmBackendLike;
  const dw = wasm.makeOutput([info.filterHeight, info.filterWidth, C, O], 'float32');
  wasm.typedArrayFromHeap(dw).fill(0);
  kernels.conv2d_filter_grad_multi(
    addressOf(backend, x),
    addressOf(backend, dy),
    addressOf(backend, dw),
    ...geometry(info),
  );
  return dw;
}

/**
 * The input gradient dx [B, H, W, C] of a stride-1 convolution from dy [B, OH, OW, O] and filter [KH, KW, C, O], for
 * few input channels (C < FEW_INPUT_CHANNELS) and O a multiple of 4, or undefined when the kernel does not fit. dy
 * must have `info.outShape` (the caller checks): the kernel reads it with info's geometry.
 */
export function fewChannelInputGrad(
  backend: unknown,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo | undefined {
  const { inChannels: C, outChannels: O } = info;
  const few = C < FEW_INPUT_CHANNELS && O % 4 === 0 && info.strideHeight === 1;
  const kernels = few && sameStrides(info) ? simdKernels(backend) : undefined;
  if (kernels === undefined) return undefined;
  const dx = (backend as WasmBackendLike).makeOutput(info.inShape, 'float32');
  kernels.conv2d_input_grad(
    addressOf(backend, dy),
    addressOf(backend, filter),
    addressOf(backend, dx),
    ...geometry(info),
  );
  return dx;
}
