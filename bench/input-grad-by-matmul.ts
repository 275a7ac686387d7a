/**
 * The input gradient by one matrix product and col2im, the formulation bench/train-kernels.ts measures against the
 * kernel's: the "full" convolution for 16 or more input channels, cnnx's SIMD gather below
 * (src/train/backends/wasm/conv2d-backprop-input.ts). It lost on LeNet's conv2 (0.65x
 * at batch 128 and 256, BENCHMARKS.md): the product does half the multiply-adds, but the scatter-add of the columns
 * in JavaScript costs more than that saves.
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

/**
 * Input gradient dx [B, H, W, C] of dy [B, OH, OW, O] and filter [KH, KW, C, O], any stride and padding, as one
 * XNNPACK matrix product per chunk of `perChunk` images, cols [b*OH*OW, KH*KW*C] = dy [b*OH*OW, O] x W^T
 * [O, KH*KW*C], then col2im: each column block is added into dx at the window it came from, in a fixed order.
 */
export function inputGradByMatMul(
  backendName: string,
  backend: unknown,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
  perChunk = info.batchSize,
): TensorInfo {
  const wasm = backend as WasmBackendLike;
  const matMul = kernelOf('BatchMatMul', backendName);
  const { batchSize: B, inChannels: C, outChannels: O, filterHeight: KH, filterWidth: KW } = info;
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, strideHeight: SH, strideWidth: SW } = info;
  const { top, left } = info.padInfo;
  const taps = KH * KW * C;
  const filterT = wasm.makeOutput([1, O, taps], 'float32');
  const dx = wasm.makeOutput([B, H, W, C], 'float32');
  {
    const [heap, fAt] = heapOf(wasm.typedArrayFromHeap(filter));
    const tAt = heapOf(wasm.typedArrayFromHeap(filterT))[1];
    for (let t = 0; t < taps; t++) for (let o = 0; o < O; o++) heap[tAt + o * taps + t] = heap[fAt + t * O + o]!;
    wasm.typedArrayFromHeap(dx).fill(0);
  }
  const outPixels = OH * OW;
  const rowLength = W * C;
  for (let b0 = 0; b0 < B; b0 += perChunk) {
    const n = Math.min(B, b0 + perChunk) - b0;
    let dyChunk: TensorInfo;
    if (n === B) dyChunk = withShape(dy, [1, B * outPixels, O]);
    else {
      dyChunk = wasm.makeOutput([1, n * outPixels, O], 'float32');
      const [heap, dyAt] = heapOf(wasm.typedArrayFromHeap(dy));
      const from = dyAt + b0 * outPixels * O;
      heap.copyWithin(heapOf(wasm.typedArrayFromHeap(dyChunk))[1], from, from + n * outPixels * O);
    }
    const cols = runKernel(matMul, backend, { a: dyChunk, b: filterT }, { transposeA: false, transposeB: false });
    if (n !== B) disposeInfo(backend, dyChunk);
    const [heap, colsAt] = heapOf(wasm.typedArrayFromHeap(cols));
    const dxAt = heapOf(wasm.typedArrayFromHeap(dx))[1];
    let col = colsAt;
    for (let b = b0; b < b0 + n; b++) {
      const image = dxAt + b * H * rowLength;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++, col += taps) {
          const iw0 = ow * SW - left;
          const kw0 = Math.max(0, -iw0);
          const kw1 = Math.min(KW, W - iw0);
          if (kw1 <= kw0) continue;
          const run = (kw1 - kw0) * C;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * SH + kh - top;
            if (ih < 0 || ih >= H) continue;
            let to = image + ih * rowLength + (iw0 + kw0) * C;
            let from = col + (kh * KW + kw0) * C;
            for (let i = 0; i < run; i++) heap[to++]! += heap[from++]!;
          }
        }
      }
    }
    disposeInfo(backend, cols);
  }
  disposeInfo(backend, filterT);
  return dx;
}
