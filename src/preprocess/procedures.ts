/**
 * How a picture becomes a model input, identical on the server and in the browser (this folder imports nothing
 * from Node or the DOM).
 *
 * - mnist: MNIST's own procedure (LeCun et al.): the ink's bounding box is scaled to fit 20x20 keeping its
 *   aspect ratio, then placed in 28x28 so that its centre of mass is at the centre.
 * - fit: the whole picture (an object on a plain background, as Fashion-MNIST) scaled into 28x28, centred.
 * The result is [28 * 28] floats in [0, 1], ink bright.
 */
import { crop, inkBright, resample, type GrayImage } from './gray-image.js';

/** How a picture becomes a model input: MNIST's own procedure, or a plain fit of the ink into the frame. */
export type Procedure = 'mnist' | 'fit';

/** Pixels below this fraction of full ink are background noise (paper texture, JPEG ringing). */
const NOISE = 0.12 * 255;

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The bounding box of pixels brighter than `threshold`, or undefined for an empty image. */
export function inkBox(image: GrayImage, threshold = NOISE): Box | undefined {
  let x0 = image.width;
  let y0 = image.height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < image.height; y++)
    for (let x = 0; x < image.width; x++) {
      if (image.data[y * image.width + x]! > threshold) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  return x1 < 0 ? undefined : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** Places `patch` into a `side x side` canvas so that its centre of mass lands at the centre. */
function centreByMass(patch: GrayImage, side: number): Float32Array {
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < patch.height; y++)
    for (let x = 0; x < patch.width; x++) {
      const v = patch.data[y * patch.width + x]!;
      mass += v;
      cx += v * (x + 0.5);
      cy += v * (y + 0.5);
    }
  // In pixel-index coordinates the centre of mass goes to (14, 14), as in the MNIST files.
  const ox = Math.round(side / 2 + 0.5 - (mass > 0 ? cx / mass : patch.width / 2));
  const oy = Math.round(side / 2 + 0.5 - (mass > 0 ? cy / mass : patch.height / 2));
  const out = new Float32Array(side * side);
  for (let y = 0; y < patch.height; y++)
    for (let x = 0; x < patch.width; x++) {
      const tx = x + ox;
      const ty = y + oy;
      if (tx >= 0 && ty >= 0 && tx < side && ty < side) out[ty * side + tx] = patch.data[y * patch.width + x]! / 255;
    }
  return out;
}

/** MNIST's procedure on an image already ink-bright (see `inkBright`). */
export function mnistFromInk(ink: GrayImage): Float32Array {
  const box = inkBox(ink);
  if (box === undefined) return new Float32Array(28 * 28);
  const digit = crop(ink, box.x, box.y, box.x + box.width, box.y + box.height);
  const scale = 20 / Math.max(box.width, box.height);
  const fitted = resample(
    digit,
    Math.max(1, Math.round(box.width * scale)),
    Math.max(1, Math.round(box.height * scale)),
  );
  for (let i = 0; i < fitted.data.length; i++) if (fitted.data[i]! < NOISE / 2) fitted.data[i] = 0;
  return centreByMass(fitted, 28);
}

/** The whole image, ink-bright, scaled to fit 28x28 keeping its aspect ratio, centred. */
function fitFromInk(ink: GrayImage): Float32Array {
  const scale = 28 / Math.max(ink.width, ink.height);
  const w = Math.max(1, Math.round(ink.width * scale));
  const h = Math.max(1, Math.round(ink.height * scale));
  const fitted = resample(ink, w, h);
  const out = new Float32Array(28 * 28);
  const ox = Math.floor((28 - w) / 2);
  const oy = Math.floor((28 - h) / 2);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[(y + oy) * 28 + x + ox] = fitted.data[y * w + x]! / 255;
  return out;
}

/** A grayscale picture (dark-on-light or light-on-dark) -> a 28x28 model input in [0, 1], ink bright. */
export function preprocess(image: GrayImage, procedure: Procedure): Float32Array {
  const ink = inkBright(image);
  return procedure === 'mnist' ? mnistFromInk(ink) : fitFromInk(ink);
}

/** The procedure a model's `cnnx.dataset` metadata implies. */
export function procedureFor(dataset: string | undefined): Procedure {
  return dataset === 'fashion-mnist' ? 'fit' : 'mnist';
}
