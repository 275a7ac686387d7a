/**
 * The `resize` procedure, for models trained on the user's own pictures (an image folder or a CSV): a picture is
 * brought to the model's channels and size as it is, with no ink finding and no polarity change. The dataset
 * loader and every inference path (server, `cnnx predict`, the page) call the same function, so a picture served
 * is prepared exactly as the training pictures were.
 *
 * - Transparency: composited over white (a transparent background reads as white paper, as browsers show it).
 * - Channels: 3 keeps R, G, B; 1 is the luma of ITU-R BT.601 (0.299 R + 0.587 G + 0.114 B), as PIL's `convert('L')`
 *   and tfjs's grayscale conversion compute it; a gray picture given to a 3-channel model is repeated in R, G, B.
 * - Size: stretched to height x width (no crop, no padding, as torchvision's `Resize((h, w))` and Keras'
 *   `image_dataset_from_directory` default) by `resample`: area averaging when both sides shrink, else bilinear
 *   (half-pixel centres); each value is then rounded to a byte, as the training pictures are stored.
 */
import { resample } from './gray-image.js';
import type { PixelImage } from './ink.js';

/**
 * A picture -> [height, width, channels] bytes (row-major, interleaved), as described above.
 * @throws RangeError for a pixel buffer that does not match its size, or an output size or channel count that is not
 *   1 or 3 channels of at least 1x1
 */
export function pictureToPixels(image: PixelImage, channels: number, height: number, width: number): Uint8Array {
  const { width: w, height: h, channels: c, data } = image;
  if (![1, 2, 3, 4].includes(c)) throw new RangeError(`channels must be 1, 2, 3 or 4, got ${c}`);
  if (data.length !== w * h * c)
    throw new RangeError(`expected ${w * h * c} values for ${w}x${h}x${c}, got ${data.length}`);
  if (channels !== 1 && channels !== 3) throw new RangeError(`a model input has 1 or 3 channels, got ${channels}`);
  if (!(Number.isInteger(height) && Number.isInteger(width) && height >= 1 && width >= 1)) {
    throw new RangeError(`output size must be positive integers, got ${width}x${height}`);
  }
  const colour = c >= 3;
  const alpha = c === 2 || c === 4;
  const n = w * h;
  const planes = Array.from({ length: channels }, () => new Float32Array(n));
  for (let i = 0; i < n; i++) {
    const p = i * c;
    const a = alpha ? data[p + c - 1]! / 255 : 1;
    const under = 255 * (1 - a);
    if (colour) {
      const r = data[p]! * a + under;
      const g = data[p + 1]! * a + under;
      const b = data[p + 2]! * a + under;
      if (channels === 3) {
        planes[0]![i] = r;
        planes[1]![i] = g;
        planes[2]![i] = b;
      } else {
        planes[0]![i] = 0.299 * r + 0.587 * g + 0.114 * b;
      }
    } else {
      const v = data[p]! * a + under;
      for (const plane of planes) plane[i] = v;
    }
  }
  const out = new Uint8Array(height * width * channels);
  planes.forEach((plane, k) => {
    const sized =
      w === width && h === height ? plane : resample({ width: w, height: h, data: plane }, width, height).data;
    for (let i = 0; i < sized.length; i++) out[i * channels + k] = Math.min(255, Math.max(0, Math.round(sized[i]!)));
  });
  return out;
}

/**
 * [height, width, channels] bytes -> a model input: float32 [channels, height, width] (NCHW's planes, as the ONNX
 * input lays them out), each value / 255.
 */
export function pixelsToInput(pixels: Uint8Array, channels: number): Float32Array {
  const n = pixels.length / channels;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < channels; k++) out[k * n + i] = pixels[i * channels + k]! / 255;
  return out;
}
