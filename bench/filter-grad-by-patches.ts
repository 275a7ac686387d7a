/**
 * The filter gradient by im2col, the formulation bench/train-kernels.ts measures against the kernel's chunked
 * transposed convolution (src/train/backends/wasm/conv2d-backprop-filter.ts): patches written by JS loops over the
 * wasm heap, then one XNNPACK matrix product per chunk of images. It lost on every LeNet shape; on AlexNet's it won
 * the race by 1.1-2.8x, but in a whole training step it was within the noise of the kernel's (BENCHMARKS.md).
 */
import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import { heapOf } from '../src/train/backends/wasm/heap.js';
import {
  disposeInfo,
  kernelOf,
  runKernel,
  withShape,
  type WasmBackendLike,
} from '../src/train/backends/wasm/kernel-utils.js';

/** The geometry of an NHWC convolution that the loops need, taken from tfjs's Conv2DInfo. */
interface PatchGeometry {
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  top: number;
  left: number;
}

function patchGeometry(info: backend_util.Conv2DInfo): PatchGeometry {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  return {
    inHeight,
    inWidth,
    inChannels,
    outHeight,
    outWidth,
    filterHeight,
    filterWidth,
    strideHeight,
    strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

/**
 * Writes the patches of images [b0, b1) of x [B, H, W, C] transposed, as rows [(kh * KW + kw) * C + c] of
 * columns [(b - b0) * OH * OW + oy * OW + ox] at `outAt`; taps in the padding read 0.
 */
function writePatchColumns(heap: Float32Array, xAt: number, outAt: number, g: PatchGeometry, b0: number, b1: number) {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw, top, left } = g;
  const step = sw * C;
  let o = outAt;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      // Output columns whose tap lands inside the image: ox in [ox0, ox1).
      const ox0 = Math.min(OW, Math.max(0, Math.ceil((left - kw) / sw)));
      const ox1 = Math.max(ox0, Math.min(OW, Math.floor((W - 1 + left - kw) / sw) + 1));
      for (let c = 0; c < C; c++) {
        for (let b = b0; b < b1; b++) {
          const image = xAt + b * H * W * C + c;
          for (let oy = 0; oy < OH; oy++) {
            const iy = oy * sh - top + kh;
            if (iy < 0 || iy >= H) {
              heap.fill(0, o, o + OW);
              o += OW;
              continue;
            }
            if (ox0 > 0) heap.fill(0, o, o + ox0);
            let from = image + (iy * W + ox0 * sw - left + kw) * C;
            for (let ox = ox0; ox < ox1; ox++, from += step) heap[o + ox] = heap[from]!;
            if (ox1 < OW) heap.fill(0, o + ox1, o + OW);
            o += OW;
          }
        }
      }
    }
  }
}

/**
 * a [m, k] times b [k, n] as [1, m, n], through the backend's BatchMatMul with batch 1 and no transposes: the one
 * case it hands to XNNPACK's fully-connected operator (b is packed as its weights).
 */
function matMul(
  backendName: string,
  backend: unknown,
  a: TensorInfo,
  b: TensorInfo,
  [m, k, n]: [number, number, number],
): TensorInfo {
  const inputs = { a: withShape(a, [1, m, k]), b: withShape(b, [1, k, n]) };
  return runKernel(kernelOf('BatchMatMul', backendName), backend, inputs, { transposeA: false, transposeB: false });
}

/**
 * Filter gradient [KH, KW, C, O] of x [B, H, W, C] and dy [B, OH, OW, O] by im2col: per chunk of images, patches
 * [KH*KW*C, b*OH*OW] times dy [b*OH*OW, O]. A chunk holds as many images as keep its patch matrix within
 * `chunkFloats` (at least one); chunk results are added in batch order.
 */
export function filterGradByPatches(
  backendName: string,
  backend: unknown,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
  chunkFloats: number,
): TensorInfo {
  const wasm = backend as WasmBackendLike;
  const g = patchGeometry(info);
  const { batchSize: B, filterHeight: KH, filterWidth: KW, inChannels: C, outChannels: O } = info;
  const taps = KH * KW * C;
  const pixels = info.outHeight * info.outWidth;
  const perChunk = Math.max(1, Math.min(B, Math.floor(chunkFloats / (taps * pixels))));
  const filterShape = [KH, KW, C, O];
  const result = perChunk < B ? wasm.makeOutput(filterShape, 'float32') : undefined;
  for (let b0 = 0; b0 < B; b0 += perChunk) {
    const b1 = Math.min(B, b0 + perChunk);
    const n = (b1 - b0) * pixels;
    const patches = wasm.makeOutput([n * taps], 'float32');
    const dyPart = b1 - b0 < B ? wasm.makeOutput([n * O], 'float32') : dy;
    const [heap, xAt] = heapOf(wasm.typedArrayFromHeap(x));
    const patchesAt = heapOf(wasm.typedArrayFromHeap(patches))[1];
    const dyAt = heapOf(wasm.typedArrayFromHeap(dy))[1] + b0 * pixels * O;
    const partAt = heapOf(wasm.typedArrayFromHeap(dyPart))[1];
    writePatchColumns(heap, xAt, patchesAt, g, b0, b1);
    if (dyPart !== dy) heap.copyWithin(partAt, dyAt, dyAt + n * O);
    const product = matMul(backendName, backend, patches, dyPart, [taps, n, O]);
    disposeInfo(backend, patches);
    if (dyPart !== dy) disposeInfo(backend, dyPart);
    if (result === undefined) return withShape(product, filterShape);
    const [all, productAt] = heapOf(wasm.typedArrayFromHeap(product));
    const resultAt = heapOf(wasm.typedArrayFromHeap(result))[1];
    if (b0 === 0) all.copyWithin(resultAt, productAt, productAt + taps * O);
    else for (let i = 0; i < taps * O; i++) all[resultAt + i]! += all[productAt + i]!;
    disposeInfo(backend, product);
  }
  return result!;
}
