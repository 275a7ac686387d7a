/**
 * tfjs <-> ONNX layouts, both directions in one place. tfjs is channels-last: feature maps [N, H, W, C], conv
 * kernels [kh, kw, in, out], depthwise kernels [kh, kw, in, multiplier], dense kernels [in, out] whose rows follow
 * the NHWC flatten order. ONNX graphs here are channels-first like a PyTorch export: maps [N, C, H, W], conv
 * kernels [out, in / group, kh, kw], and a flattened map in NCHW order. Weights are moved once, at export, so the
 * graph needs no Transpose node; reading a cnnx ONNX file back into tfjs applies the inverse permutations.
 */

/**
 * `data` laid out as `shape`, with its axes reordered: axis `i` of the result is axis `perm[i]` of the input (as
 * numpy's transpose). Works on any typed array of numbers.
 */
function transpose<T extends Float32Array | Int32Array>(data: T, shape: readonly number[], perm: readonly number[]): T {
  const rank = shape.length;
  if (perm.length !== rank) throw new RangeError(`transpose: perm [${perm.join(', ')}] does not fit rank ${rank}`);
  const outShape = perm.map((axis) => shape[axis]!);
  const inStrides = new Array<number>(rank);
  for (let axis = rank - 1, stride = 1; axis >= 0; axis--) {
    inStrides[axis] = stride;
    stride *= shape[axis]!;
  }
  const strides = perm.map((axis) => inStrides[axis]!);
  const out = new (data.constructor as new (length: number) => T)(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < data.length; i++) {
    let from = 0;
    for (let axis = 0; axis < rank; axis++) from += index[axis]! * strides[axis]!;
    out[i] = data[from]!;
    for (let axis = rank - 1; axis >= 0; axis--) {
      if (++index[axis]! < outShape[axis]!) break;
      index[axis] = 0;
    }
  }
  return out;
}

/** Conv kernel, tfjs [kh, kw, in, out] -> ONNX [out, in, kh, kw]. */
export function convKernelToOnnx(data: Float32Array, tfjsShape: readonly number[]): Float32Array {
  return transpose(data, tfjsShape, [3, 2, 0, 1]);
}

/** Conv kernel, ONNX [out, in, kh, kw] -> tfjs [kh, kw, in, out]; `tfjsShape` is the result's shape. */
export function convKernelToTfjs(data: Float32Array, [kh, kw, inC, outC]: readonly number[]): Float32Array {
  return transpose(data, [outC!, inC!, kh!, kw!], [2, 3, 1, 0]);
}

/**
 * Depthwise kernel, tfjs [kh, kw, in, multiplier] -> ONNX [in * multiplier, 1, kh, kw] for a Conv with
 * group = in: output channel c * multiplier + m reads input channel c, in both.
 */
export function depthwiseKernelToOnnx(data: Float32Array, tfjsShape: readonly number[]): Float32Array {
  return transpose(data, tfjsShape, [2, 3, 0, 1]);
}

/**
 * The feature order of a flattened [C, H, W] map: position `i` of the ONNX (NCHW) flattening holds the feature at
 * position `order[i]` of the tfjs (NHWC) flattening. With `channelsFirst`, of tfjs's Flatten with data_format
 * channels_first, which (as Keras's) takes its input for [N, C, H, W] and moves axis 1 last before flattening: on
 * tfjs's [N, H, W, C] map that flattens [N, W, C, H].
 */
export function flattenOrder([c, h, w]: readonly number[], channelsFirst = false): Int32Array {
  const tfjs = Int32Array.from({ length: c! * h! * w! }, (_, i) => i);
  return channelsFirst ? transpose(tfjs, [w!, c!, h!], [1, 2, 0]) : transpose(tfjs, [h!, w!, c!], [2, 0, 1]);
}

/** `values` (one per tfjs feature) in ONNX feature order: result[i] = values[order[i]]. */
export function toOnnxOrder(values: Float32Array, order: Int32Array): Float32Array {
  return Float32Array.from(order, (from) => values[from]!);
}

/** Rows of a [rows, units] kernel in tfjs feature order -> ONNX feature order. */
export function rowsToOnnx(kernel: Float32Array, units: number, order: Int32Array): Float32Array {
  const out = new Float32Array(kernel.length);
  order.forEach((from, to) => out.set(kernel.subarray(from * units, (from + 1) * units), to * units));
  return out;
}

/** Rows of a [rows, units] kernel in ONNX feature order -> tfjs feature order (the inverse of `rowsToOnnx`). */
export function rowsToTfjs(kernel: Float32Array, units: number, order: Int32Array): Float32Array {
  const out = new Float32Array(kernel.length);
  order.forEach((to, from) => out.set(kernel.subarray(from * units, (from + 1) * units), to * units));
  return out;
}

/** The ONNX axis of tfjs axis `axis` (negative counts from the end) of a rank-`rank` tensor. */
export function onnxAxis(axis: number, rank: number): number {
  const positive = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(positive) || positive < 0 || positive >= rank) {
    throw new RangeError(`axis ${axis} is out of range for rank ${rank}`);
  }
  // NHWC -> NCHW: batch stays, channels go to 1, spatial axes move one right.
  if (rank !== 4 || positive === 0) return positive;
  return positive === 3 ? 1 : positive + 1;
}

/** A batch of maps, tfjs [N, H, W, C] -> ONNX [N, C, H, W]. */
export function nhwcToNchw(data: Float32Array, [n, h, w, c]: readonly number[]): Float32Array {
  return transpose(data, [n!, h!, w!, c!], [0, 3, 1, 2]);
}
