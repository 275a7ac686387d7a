/**
 * Bilinear resize of single-channel images, with half-pixel centres (as torchvision's Resize and tfjs's
 * resizeBilinear with halfPixelCenters). Tables are computed once per size pair; each image is resized straight
 * into the caller's batch buffer, so a resized dataset never exists in memory.
 */

interface AxisTable {
  low: Int32Array;
  high: Int32Array;
  weight: Float32Array;
}

function axisTable(source: number, target: number): AxisTable {
  const low = new Int32Array(target);
  const high = new Int32Array(target);
  const weight = new Float32Array(target);
  const scale = source / target;
  for (let i = 0; i < target; i++) {
    const position = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), source - 1);
    const lo = Math.floor(position);
    low[i] = lo;
    high[i] = Math.min(lo + 1, source - 1);
    weight[i] = position - lo;
  }
  return { low, high, weight };
}

/** A resizer from `rows x cols` bytes to `size x size` floats scaled by `scale` (1/255 gives [0,1]). */
export function bilinearResizer(
  rows: number,
  cols: number,
  size: number,
  scale = 1 / 255,
): (pixels: Uint8Array, sourceOffset: number, out: Float32Array, outOffset: number) => void {
  const ys = axisTable(rows, size);
  const xs = axisTable(cols, size);
  return (pixels, sourceOffset, out, outOffset) => {
    for (let y = 0; y < size; y++) {
      const top = sourceOffset + ys.low[y]! * cols;
      const bottom = sourceOffset + ys.high[y]! * cols;
      const wy = ys.weight[y]!;
      const row = outOffset + y * size;
      for (let x = 0; x < size; x++) {
        const left = xs.low[x]!;
        const right = xs.high[x]!;
        const wx = xs.weight[x]!;
        const upper = pixels[top + left]! + (pixels[top + right]! - pixels[top + left]!) * wx;
        const lower = pixels[bottom + left]! + (pixels[bottom + right]! - pixels[bottom + left]!) * wx;
        out[row + x] = (upper + (lower - upper) * wy) * scale;
      }
    }
  };
}
