/**
 * im2col and col2im over the wasm heap: the patches a convolution reads, laid out so that one XNNPACK matrix
 * product (BatchMatMul with batch 1, a fully-connected operator) does the arithmetic. Everything indexes one
 * Float32Array over the whole heap, with absolute offsets, so the loops stay monomorphic and long contiguous runs
 * can be moved with copyWithin.
 */
import type { backend_util } from '@tensorflow/tfjs-core';

/** Runs shorter than this are copied element by element; longer ones with copyWithin (a memmove). */
const MEMMOVE_FROM = 32;

/** The geometry of an NHWC convolution that the loops need, taken from tfjs's Conv2DInfo. */
export interface PatchGeometry {
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

export function patchGeometry(info: backend_util.Conv2DInfo): PatchGeometry {
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

/** A view of the whole heap behind `view` and the element offset where `view` starts in it. */
export function heapOf(view: Float32Array): [Float32Array, number] {
  return [new Float32Array(view.buffer), view.byteOffset >> 2];
}

/**
 * Writes the patches of images [b0, b1) of x [B, H, W, C] transposed, as rows [(kh * KW + kw) * C + c] of
 * columns [(b - b0) * OH * OW + oy * OW + ox] at `outAt`; taps in the padding read 0.
 */
export function writePatchColumns(
  heap: Float32Array,
  xAt: number,
  outAt: number,
  g: PatchGeometry,
  b0: number,
  b1: number,
) {
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
 * Copies [A, B, R] at `from` to [B, A, R] at `to` (swaps the two outer axes, keeping runs of R contiguous):
 * what tfjs's generic Transpose does an element at a time, about 8x slower for dy's [B, OH*OW, O] of LeNet.
 */
export function swapOuterAxes(heap: Float32Array, from: number, to: number, [A, B, R]: [number, number, number]) {
  for (let a = 0; a < A; a++) {
    let src = from + a * B * R;
    let dst = to + a * R;
    const stride = A * R;
    if (R >= MEMMOVE_FROM) {
      for (let b = 0; b < B; b++, src += R, dst += stride) heap.copyWithin(dst, src, src + R);
    } else {
      for (let b = 0; b < B; b++, dst += stride) for (let r = 0; r < R; r++) heap[dst + r] = heap[src++]!;
    }
  }
}
