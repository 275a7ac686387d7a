/**
 * Conv2DBackpropFilter for tfjs-backend-wasm, which ships the forward convolution but not this gradient:
 * dW[kh,kw,c,o] = sum_{b,i,j} x[b, i*s+kh-p, j*s+kw-p, c] * dy[b,i,j,o].
 *
 * The kernel swaps the batch and channel axes, which makes the gradient a convolution for the backend's own
 * (XNNPACK) Conv2D: input x as [C, H, W, b], filter dy as [OH, OW, b, O] dilated by the forward stride, giving
 * [C, KH, KW, O]. It does so per chunk of b images (imagesPerChunk: packed dy within 512 KiB, at least 16 images),
 * laying each chunk out with JS loops over the heap, and adds the chunks' gradients in batch order, so the result
 * is the same on every run. Measured on a loaded 2-core machine (bench/train-kernels.ts, median ms per call, one
 * call for the whole batch -> chunked): LeNet conv1 b256 72.6 -> 75.0 (chunks of 16: 49.7), conv2 b256
 * 55.8 -> 41.6, conv2 b128 16.1 -> 14.1; AlexNet conv1 b64 1376 -> 1049. im2col written in JS followed by one
 * BatchMatMul (bench/filter-grad-by-patches.ts) lost on every LeNet shape (0.6-0.9x): writing the patches costs
 * more than the product saves.
 */
import { backend_util, util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { heapOf, swapOuterAxes } from './heap.js';
import { disposeInfo, kernelOf, paddedConv2d, runKernel, type WasmBackendLike } from './kernel-utils.js';
import { fewChannelFilterGrad, singleChannelFilterGrad } from './simd-conv.js';

/** 512 KiB of packed dy per call, and never fewer than 16 images: see imagesPerChunk and the module header. */
const CHUNK_FLOATS = 1 << 17;
const MIN_IMAGES = 16;

interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/**
 * Filter gradient [KH, KW, C, O] of x [B, H, W, C] and dy [B, OH, OW, O] as transposed XNNPACK Conv2D calls, one
 * per chunk of `perChunk` images (partial gradients added in batch order). Each chunk's x is laid out as
 * [C, H, W, b] and its dy as [OH, OW, b, O] by JS loops over the heap.
 */
export function filterGradByConv(
  backendName: string,
  backend: unknown,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
  perChunk = info.batchSize,
): TensorInfo {
  const wasm = backend as WasmBackendLike;
  const [transpose, slice] = ['Transpose', 'Slice'].map((name) => kernelOf(name, backendName)) as [
    KernelFunc,
    KernelFunc,
  ];
  const { batchSize: B, inChannels: C, outChannels: O, filterHeight: KH, filterWidth: KW } = info;
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  // Pad the far edges just enough to produce all KH x KW taps; rows the forward pass never read are sliced off.
  const bottom = Math.max(0, KH - inHeight - top + strideHeight * (outHeight - 1));
  const right = Math.max(0, KW - inWidth - left + strideWidth * (outWidth - 1));
  const pixels = inHeight * inWidth;
  const outPixels = outHeight * outWidth;
  let sum: TensorInfo | undefined;
  for (let b0 = 0; b0 < B; b0 += perChunk) {
    const n = Math.min(B, b0 + perChunk) - b0;
    const xT = wasm.makeOutput([C, inHeight, inWidth, n], 'float32');
    const dyT = wasm.makeOutput([outHeight, outWidth, n, O], 'float32');
    const [heap, xAt] = heapOf(wasm.typedArrayFromHeap(x));
    const xTAt = heapOf(wasm.typedArrayFromHeap(xT))[1];
    const first = xAt + b0 * pixels * C;
    for (let c = 0; c < C; c++) {
      let to = xTAt + c * pixels * n;
      for (let p = 0; p < pixels; p++) {
        let from = first + p * C + c;
        for (let b = 0; b < n; b++, from += pixels * C) heap[to++] = heap[from]!;
      }
    }
    const dyAt = heapOf(wasm.typedArrayFromHeap(dy))[1] + b0 * outPixels * O;
    swapOuterAxes(heap, dyAt, heapOf(wasm.typedArrayFromHeap(dyT))[1], [n, outPixels, O]);
    let grad = paddedConv2d(backendName, backend, xT, dyT, [top, bottom, left, right], [strideHeight, strideWidth]);
    disposeInfo(backend, xT, dyT);
    const [, rows, cols] = grad.shape as [number, number, number, number];
    if (rows !== KH || cols !== KW) {
      const cropped = runKernel(slice, backend, { x: grad }, { begin: [0, 0, 0, 0], size: [C, KH, KW, O] });
      disposeInfo(backend, grad);
      grad = cropped;
    }
    if (sum === undefined) {
      sum = grad;
      continue;
    }
    const [all, sumAt] = heapOf(wasm.typedArrayFromHeap(sum));
    const gradAt = heapOf(wasm.typedArrayFromHeap(grad))[1];
    for (let i = 0; i < C * KH * KW * O; i++) all[sumAt + i]! += all[gradAt + i]!;
    disposeInfo(backend, grad);
  }
  const result = runKernel(transpose, backend, { x: sum! }, { perm: [1, 2, 0, 3] });
  disposeInfo(backend, sum!);
  return result;
}

/**
 * Images per Conv2D call: as many as keep one chunk of dy, as XNNPACK packs it (O rounded up to 8 lanes), within
 * CHUNK_FLOATS, so the packed weights the micro-kernel re-reads for every few output rows stay in cache; but at
 * least MIN_IMAGES, since the images are the product's inner (channel) dimension.
 */
export function imagesPerChunk(info: backend_util.Conv2DInfo): number {
  const packedPerImage = info.outHeight * info.outWidth * Math.ceil(info.outChannels / 8) * 8;
  return Math.min(info.batchSize, Math.max(MIN_IMAGES, Math.floor(CHUNK_FLOATS / packedPerImage)));
}

export function conv2dBackpropFilterKernel(backendName: string): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Attrs;
    if (dataFormat !== 'NHWC')
      throw new Error(`Error in conv2dBackpropFilter: only NHWC is supported, got ${dataFormat}`);
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filterShape,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    if (!util.arraysEqual(dy.shape, info.outShape)) {
      // tfjs's conv2d gradient passes no dimRoundingMode on, so a forward pass that rounded its output size up
      // gives a dy of another shape; the kernels would read it with the wrong strides, or past its end.
      throw new Error(
        `Error in conv2dBackpropFilter: dy has shape [${dy.shape}], but this convolution's output is ` +
          `[${info.outShape}] (tfjs's conv2d gradient supports no dimRoundingMode other than floor)`,
      );
    }
    return (
      singleChannelFilterGrad(backend, x, dy, info) ??
      fewChannelFilterGrad(backend, x, dy, info) ??
      filterGradByConv(backendName, backend, x, dy, info, imagesPerChunk(info))
    );
  };
  return { kernelName: 'Conv2DBackpropFilter', backendName, kernelFunc };
}
