/**
 * Grey-level morphology on row-major single-channel images: running maximum and minimum over square windows,
 * separable (rows, then columns), in O(1) per pixel whatever the window (van Herk 1992; Gil & Werman 1993). Windows
 * are clipped at the image's edges, so a dark region touching the edge keeps its extent under a closing.
 */

/**
 * Running max (or min, when `sign` is -1: the max of negated values) of `length` values read with `stride` from
 * `offset`, over windows of `radius` either side, written negated back when `sign` is -1.
 */
function runLine(
  source: Float32Array,
  target: Float32Array,
  offset: number,
  stride: number,
  length: number,
  radius: number,
  sign: number,
  forward: Float32Array,
  backward: Float32Array,
): void {
  const size = 2 * radius + 1;
  // Block-wise prefix (forward) and suffix (backward) maxima over blocks of `size` values.
  let running = -Infinity;
  for (let i = 0, k = offset; i < length; i++, k += stride) {
    const v = sign * source[k]!;
    running = i % size === 0 || v > running ? v : running;
    forward[i] = running;
  }
  running = -Infinity;
  for (let i = length - 1, k = offset + (length - 1) * stride; i >= 0; i--, k -= stride) {
    const v = sign * source[k]!;
    running = i === length - 1 || (i + 1) % size === 0 || v > running ? v : running;
    backward[i] = running;
  }
  for (let i = 0, k = offset; i < length; i++, k += stride) {
    const lo = i - radius < 0 ? 0 : i - radius;
    const hi = i + radius > length - 1 ? length - 1 : i + radius;
    // [lo, hi] spans at most two blocks: the suffix of lo's block and the prefix of hi's block.
    const a = backward[lo]!;
    const b = forward[hi]!;
    target[k] = sign * (a > b ? a : b);
  }
}

/**
 * Running max (dilation of bright values) or min (erosion) over `(2 * radius + 1)^2` windows.
 * @param data row-major [height, width] values
 * @returns a new array; `data` is not changed
 */
export function rankFilter(
  data: Float32Array,
  width: number,
  height: number,
  radius: number,
  kind: 'max' | 'min',
): Float32Array {
  if (radius < 1) return data.slice();
  const sign = kind === 'max' ? 1 : -1;
  const forward = new Float32Array(Math.max(width, height));
  const backward = new Float32Array(Math.max(width, height));
  const rows = new Float32Array(data.length);
  for (let y = 0; y < height; y++) runLine(data, rows, y * width, 1, width, radius, sign, forward, backward);
  const out = new Float32Array(data.length);
  for (let x = 0; x < width; x++) runLine(rows, out, x, width, height, radius, sign, forward, backward);
  return out;
}

/** Mean over 3x3 windows (clipped at the edges): takes the peak of a stroke, not of one noisy pixel. */
export function boxMean3(data: Float32Array, width: number, height: number): Float32Array {
  const rows = new Float32Array(data.length);
  const counts = new Float32Array(width);
  for (let x = 0; x < width; x++) counts[x] = (x > 0 ? 1 : 0) + 1 + (x < width - 1 ? 1 : 0);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      let sum = data[row + x]!;
      if (x > 0) sum += data[row + x - 1]!;
      if (x < width - 1) sum += data[row + x + 1]!;
      rows[row + x] = sum / counts[x]!;
    }
  }
  const out = new Float32Array(data.length);
  for (let y = 0; y < height; y++) {
    const above = y > 0 ? (y - 1) * width : -1;
    const below = y < height - 1 ? (y + 1) * width : -1;
    const count = (above >= 0 ? 1 : 0) + 1 + (below >= 0 ? 1 : 0);
    for (let x = 0; x < width; x++) {
      let sum = rows[y * width + x]!;
      if (above >= 0) sum += rows[above + x]!;
      if (below >= 0) sum += rows[below + x]!;
      out[y * width + x] = sum / count;
    }
  }
  return out;
}
