/** Grayscale images as the preprocessing works on them: one value per pixel, 0..255, row-major. */

export interface GrayImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** Resamples `src` (width x height) to `outWidth x outHeight`: area averaging when shrinking, bilinear when growing. */
export function resample(image: GrayImage, outWidth: number, outHeight: number): GrayImage {
  const { width, height, data } = image;
  const out = new Float32Array(outWidth * outHeight);
  const sx = width / outWidth;
  const sy = height / outHeight;
  if (sx >= 1 && sy >= 1) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * sy;
      const y1 = y0 + sy;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * sx;
        const x1 = x0 + sx;
        let sum = 0;
        for (let y = Math.floor(y0); y < Math.min(Math.ceil(y1), height); y++) {
          const wy = Math.min(y + 1, y1) - Math.max(y, y0);
          for (let x = Math.floor(x0); x < Math.min(Math.ceil(x1), width); x++) {
            const wx = Math.min(x + 1, x1) - Math.max(x, x0);
            sum += data[y * width + x]! * wx * wy;
          }
        }
        out[oy * outWidth + ox] = sum / (sx * sy);
      }
    }
    return { width: outWidth, height: outHeight, data: out };
  }
  for (let oy = 0; oy < outHeight; oy++) {
    const fy = Math.min(Math.max((oy + 0.5) * sy - 0.5, 0), height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, height - 1);
    const wy = fy - y0;
    for (let ox = 0; ox < outWidth; ox++) {
      const fx = Math.min(Math.max((ox + 0.5) * sx - 0.5, 0), width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, width - 1);
      const wx = fx - x0;
      const top = data[y0 * width + x0]! * (1 - wx) + data[y0 * width + x1]! * wx;
      const bottom = data[y1 * width + x0]! * (1 - wx) + data[y1 * width + x1]! * wx;
      out[oy * outWidth + ox] = top * (1 - wy) + bottom * wy;
    }
  }
  return { width: outWidth, height: outHeight, data: out };
}

/** The sub-image inside [x0, x1) x [y0, y1). */
export function crop(image: GrayImage, x0: number, y0: number, x1: number, y1: number): GrayImage {
  const width = x1 - x0;
  const height = y1 - y0;
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++)
    data.set(image.data.subarray((y0 + y) * image.width + x0, (y0 + y) * image.width + x1), y * width);
  return { width, height, data };
}
