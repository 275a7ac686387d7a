/**
 * The wasm heap as one Float32Array with absolute offsets, so loops over several tensors stay monomorphic and long
 * contiguous runs can be moved with copyWithin.
 */

/** Runs shorter than this are copied element by element; longer ones with copyWithin (a memmove). */
const MEMMOVE_FROM = 32;

/**
 * A view of the whole heap behind `view` and the element offset where `view` starts in it. The offset is divided,
 * not shifted: a wasm32 heap reaches 4 GiB, and `>> 2` turns a byte offset past 2 GiB negative (copyWithin then
 * counts it from the heap's end and writes over another tensor).
 */
export function heapOf(view: Float32Array): [Float32Array, number] {
  return [new Float32Array(view.buffer), view.byteOffset / 4];
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
