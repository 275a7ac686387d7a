/**
 * How a picture becomes a model input, identical on the server and in the browser (this folder imports nothing
 * from Node or the DOM).
 *
 * - mnist: MNIST's own procedure (LeCun et al. 1998; the MNIST page): the ink's bounding box is scaled to fit 20x20
 *   keeping its aspect ratio, then placed in 28x28 so that its centre of mass is at the centre. Before the fit the
 *   strokes are brought to MNIST's proportions (a 4 px pen on a 600 px canvas and a thick marker both look like an
 *   MNIST digit), and marks that are not writing (specks, a surround at the edge, blobs) are left out.
 * - fit: the whole picture (an object on a plain background, as Fashion-MNIST) scaled into 28x28, centred.
 * The result is [28 * 28] floats in [0, 1], ink bright, or the reason there is nothing to classify.
 */
import { crop, resample, type GrayImage } from './gray-image.js';
import { extractInk, type InkImage, type PixelImage } from './ink.js';
import {
  findWriting,
  INK_LEVEL,
  MAX_STROKE_FRACTION,
  strokeFraction,
  strokeWidth,
  unionBox,
  type Box,
  type Mark,
} from './marks.js';
import { rankFilter } from './morphology.js';
import { pictureToPixels, pixelsToInput } from './picture-input.js';

/**
 * How a picture becomes a model input: MNIST's own procedure (the ink found, cropped, fitted into 20x20 and centred
 * by its centre of mass in 28x28), a plain fit of the ink into the 28x28 frame (Fashion-MNIST), or the picture
 * resized as it is to the model's channels and size (models trained on the user's own pictures; picture-input.ts).
 */
export type Procedure = 'mnist' | 'fit' | 'resize';

export const PROCEDURES: readonly Procedure[] = ['mnist', 'fit', 'resize'];

/** A model input, or why the picture gives none (no ink; ink that is not a digit). */
export type Prepared = { input: Float32Array } | { nothing: string };

/** Pixels below this fraction of full ink are background noise (paper texture, JPEG ringing). */
const NOISE = 0.12 * 255;

/**
 * Stroke width over the digit box's long side that MNIST digits have: the median over the 60,000 training digits
 * (0.098; 1st percentile 0.053, 99.9th 0.228). Strokes under THIN or over THICK are brought to the median.
 */
const MNIST_STROKE_FRACTION = 0.098;
const THIN = 0.05;
const THICK = 0.23;
/** Long side at which strokes are measured and adjusted: four times the 20 px of the MNIST fit. */
const CANONICAL_SIDE = 80;
/**
 * Most separate marks one digit is written with (a broken stroke, a 5's top bar, a 4 in two strokes); more is noise,
 * a texture or a number, not one digit.
 */
const MAX_MARKS = 6;

/** Widest digit box, width over height: MNIST's widest is 2.5 (99.9th percentile 1.8). */
const MAX_ASPECT = 3;

const NO_INK = 'no ink: the picture is blank (or its marks are too faint to read)';

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

/** The ink of `marks` only (with its soft edge, one pixel around), cropped to their box plus that pixel. */
export function inkOfMarks(ink: GrayImage, marks: readonly Mark[]): GrayImage {
  const box = unionBox(marks);
  const x0 = Math.max(0, box.x - 1);
  const y0 = Math.max(0, box.y - 1);
  const width = Math.min(ink.width, box.x + box.width + 1) - x0;
  const height = Math.min(ink.height, box.y + box.height + 1) - y0;
  const data = new Float32Array(width * height);
  for (const mark of marks)
    for (const p of mark.pixels) {
      const x = p % ink.width;
      const y = (p - x) / ink.width;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const tx = x + dx - x0;
          const ty = y + dy - y0;
          if (tx >= 0 && ty >= 0 && tx < width && ty < height)
            data[ty * width + tx] = ink.data[(y + dy) * ink.width + x + dx]!;
        }
    }
  return { width, height, data };
}

/** Stroke width (pixels) of an image's ink above INK_LEVEL (see `strokeWidth`). */
function measuredStroke(image: GrayImage): number {
  const { width, height, data } = image;
  const on = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && data[y * width + x]! > INK_LEVEL;
  return strokeWidth(on, { x: 0, y: 0, width, height });
}

/**
 * The digit at CANONICAL_SIDE with its strokes brought to MNIST's proportions: dilated (grey max) when thinner
 * than THIN, eroded (grey min, never below a 2 px stroke) when thicker than THICK.
 */
function normaliseStrokes(digit: GrayImage): GrayImage {
  const scale = CANONICAL_SIDE / Math.max(digit.width, digit.height);
  const canonical = resample(
    digit,
    Math.max(1, Math.round(digit.width * scale)),
    Math.max(1, Math.round(digit.height * scale)),
  );
  let peak = 0;
  for (const v of canonical.data) peak = Math.max(peak, v);
  if (peak <= 0) return canonical;
  for (let i = 0; i < canonical.data.length; i++) canonical.data[i] = (canonical.data[i]! * 255) / peak;
  const stroke = measuredStroke(canonical);
  const target = MNIST_STROKE_FRACTION * CANONICAL_SIDE;
  if (stroke < THIN * CANONICAL_SIDE) {
    const radius = Math.max(1, Math.round((target - stroke) / 2));
    const padded = pad(canonical, radius);
    return { ...padded, data: rankFilter(padded.data, padded.width, padded.height, radius, 'max') };
  }
  if (stroke > THICK * CANONICAL_SIDE) {
    const radius = Math.min(Math.round((stroke - target) / 2), Math.floor(stroke / 2) - 1);
    if (radius >= 1)
      return { ...canonical, data: rankFilter(canonical.data, canonical.width, canonical.height, radius, 'min') };
  }
  return canonical;
}

function pad(image: GrayImage, by: number): GrayImage {
  const width = image.width + 2 * by;
  const height = image.height + 2 * by;
  const data = new Float32Array(width * height);
  for (let y = 0; y < image.height; y++)
    data.set(image.data.subarray(y * image.width, (y + 1) * image.width), (y + by) * width + by);
  return { width, height, data };
}

/** MNIST's 20x20 fit and centring of one digit's ink (an ink image holding only that digit). */
export function fitDigit(digit: GrayImage): Float32Array {
  const normalised = normaliseStrokes(digit);
  const box = inkBox(normalised, NOISE);
  if (box === undefined) return new Float32Array(28 * 28);
  const scale = 20 / Math.max(box.width, box.height);
  const fitted = resample(
    crop(normalised, box.x, box.y, box.x + box.width, box.y + box.height),
    Math.max(1, Math.round(box.width * scale)),
    Math.max(1, Math.round(box.height * scale)),
  );
  for (let i = 0; i < fitted.data.length; i++) if (fitted.data[i]! < NOISE / 2) fitted.data[i] = 0;
  return centreByMass(fitted, 28);
}

/**
 * Why `marks` (the writing of a picture, together) are not one digit, or undefined when they may be one: wider
 * than any digit, or strokes as thick as a blob.
 */
function notADigit(marks: readonly Mark[], imageWidth: number): string | undefined {
  const box = unionBox(marks);
  if (box.width > MAX_ASPECT * box.height) {
    return `the ink is ${(box.width / box.height).toFixed(1)} times wider than tall, wider than one digit (a digit string is read by read-digits)`;
  }
  const fraction = strokeFraction(marks, imageWidth);
  if (fraction > MAX_STROKE_FRACTION) return 'the ink is a filled shape, not the strokes of a digit';
  return undefined;
}

/** Input of the mnist procedure for the writing of an ink map, or why there is none. */
function mnistInput(ink: InkImage): Prepared {
  const { marks, kinds, rules } = findWriting(ink);
  const writing = marks.filter((_, i) => kinds[i] === 'writing');
  if (writing.length === 0) {
    if (marks.length > 0) return { nothing: 'the marks are not digits: specks, blobs or a border' };
    return { nothing: rules > 0 ? 'the ink is straight lines (a rule or a box), not a digit' : NO_INK };
  }
  if (writing.length > MAX_MARKS) {
    return {
      nothing: `the ink is ${writing.length} separate marks (noise, a texture or several digits), not one digit`,
    };
  }
  const why = notADigit(writing, ink.width);
  if (why !== undefined) return { nothing: why };
  return { input: fitDigit(cropAround(ink, writing)) };
}

/**
 * The ink inside the box of `marks` and two pixels around it: with the faint ink between and around them (an MNIST
 * digit's soft edges and light strokes), which the model has seen in training.
 */
function cropAround(ink: GrayImage, marks: readonly Mark[]): GrayImage {
  const box = unionBox(marks);
  const x0 = Math.max(0, box.x - 2);
  const y0 = Math.max(0, box.y - 2);
  return crop(ink, x0, y0, Math.min(ink.width, box.x + box.width + 2), Math.min(ink.height, box.y + box.height + 2));
}

/** The whole image, ink-bright, scaled to fit 28x28 keeping its aspect ratio, centred. */
function fitInput(ink: GrayImage): Float32Array {
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

/**
 * A picture -> a model input in [0, 1], or why it has none. `mnist` and `fit` give [28 * 28] (row-major), ink bright;
 * `resize` gives [channels, height, width] of `input` (planar, as the ONNX input lays it out) and always has one.
 * @throws RangeError when the pixel buffer does not match its size, or `input` is not 1 or 3 channels
 */
export function prepareInput(
  image: PixelImage,
  procedure: Procedure,
  input: readonly [number, number, number] = [1, 28, 28],
): Prepared {
  if (procedure === 'resize') {
    const [channels, height, width] = input;
    return { input: pixelsToInput(pictureToPixels(image, channels, height, width), channels) };
  }
  const ink = extractInk(image, procedure === 'mnist' ? 'local' : 'global');
  if (ink === undefined) return { nothing: NO_INK };
  return procedure === 'mnist' ? mnistInput(ink) : { input: fitInput(ink) };
}

/**
 * The procedure a model was trained for: its `cnnx.preprocess` metadata's `method` when it names one; else, for a
 * colour model (`channels` 3), the picture resized as it is; else what its `cnnx.dataset` implies (models exported
 * before `method` existed, and gray models from elsewhere: MNIST's).
 */
export function procedureFor(dataset: string | undefined, method?: unknown, channels = 1): Procedure {
  if (typeof method === 'string' && (PROCEDURES as readonly string[]).includes(method)) return method as Procedure;
  if (channels === 3) return 'resize';
  return dataset === 'fashion-mnist' ? 'fit' : 'mnist';
}
