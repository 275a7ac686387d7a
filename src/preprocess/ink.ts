/**
 * From a picture as people send it to an ink map: how much ink each pixel holds, 0..255, ink bright on a zero
 * background, at a working size of at most WORKING_SIDE pixels. Handles transparency (the ink is what differs from
 * the transparent background, whatever its colour), either polarity (decided from the whole picture), uneven
 * lighting, shadows and a page on a darker surface (the background is estimated locally and removed), and blank
 * pages (below MIN_INK_CONTRAST there is no ink). Every step is linear in the pixels; nothing recurses.
 */
import { resample, type GrayImage } from './gray-image.js';
import { boxMean3, rankFilter } from './morphology.js';

/** Interleaved 8-bit pixels as decoders and canvases give them: gray, gray+alpha, RGB or RGBA, row-major. */
export interface PixelImage {
  width: number;
  height: number;
  /** 1: gray, 2: gray + alpha, 3: RGB, 4: RGBA. */
  channels: number;
  data: ArrayLike<number>;
}

/** The ink map of a picture; `peak` is the ink level (grey levels of contrast) that maps to 255. */
export interface InkImage extends GrayImage {
  /** Contrast of the strongest ink against its background, in grey levels (0-255) before scaling. */
  contrast: number;
}

/**
 * How the background is estimated: `local` (a morphological closing or opening whose window is a tenth of the
 * picture's long side: fills strokes, keeps shadows, gradients and a surround wider than a twentieth of the side; a
 * larger dark region away from the picture's edge is a blot of ink, not background; ink within EDGE_RADIUS of a
 * sharp change of the background, the page's edge, is left out) for writing; `global` (one level, the median of the
 * border) for an object that may fill the frame (Fashion-MNIST).
 */
export type BackgroundModel = 'local' | 'global';

/** Long side of the working image, in pixels: a digit 100 px tall with a 4 px pen still has strokes 1 px wide. */
export const WORKING_SIDE = 512;

/**
 * Below this contrast (grey levels, of a 3x3 mean) a picture holds no ink. Paper texture, sensor noise and JPEG
 * ringing stay under ~20 on paper photos; a pencil stroke is over 60.
 */
const MIN_INK_CONTRAST = 40;

/** Grey levels from the background beyond which a pixel counts as ink when deciding the polarity. */
const POLARITY_CONTRAST = 96;

/** Pixels this close (working pixels) to a sharp change of the background are not ink. */
const EDGE_RADIUS = 3;

/**
 * The noise floor subtracted from the ink: NOISE_MULTIPLE times the median ink (most of a picture is background, so
 * the median is the noise the background estimate leaves), at most NOISE_FLOOR of the peak.
 */
const NOISE_FLOOR = 0.2;
const NOISE_MULTIPLE = 4;

function checkPixels(image: PixelImage): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`image must have a positive integer size, got ${width}x${height}`);
  }
  if (![1, 2, 3, 4].includes(channels)) throw new RangeError(`channels must be 1, 2, 3 or 4, got ${channels}`);
  if (data.length !== width * height * channels) {
    throw new RangeError(
      `expected ${width * height * channels} values for ${width}x${height}x${channels}, got ${data.length}`,
    );
  }
}

/**
 * Luminance (ITU-R BT.601 weights, as JPEG and sharp's grayscale use) 0..255. Transparent pixels are composited
 * over the colour opposite to the opaque content (black under light strokes, white under dark ones), so ink on a
 * transparent canvas stands out whatever its colour.
 * @throws RangeError when `data` does not hold `width * height * channels` values
 */
export function toGray(image: PixelImage): GrayImage {
  checkPixels(image);
  const { width, height, channels, data: pixels } = image;
  const n = width * height;
  const luminance = new Float32Array(n);
  const alphas = channels === 2 || channels === 4 ? new Float32Array(n) : undefined;
  let opaqueLight = 0;
  let opaqueWeight = 0;
  for (let i = 0; i < n; i++) {
    const p = i * channels;
    const v = channels >= 3 ? 0.299 * pixels[p]! + 0.587 * pixels[p + 1]! + 0.114 * pixels[p + 2]! : pixels[p]!;
    luminance[i] = v;
    if (alphas) {
      const alpha = pixels[p + channels - 1]! / 255;
      alphas[i] = alpha;
      opaqueLight += v * alpha;
      opaqueWeight += alpha;
    }
  }
  if (!alphas || opaqueWeight === n) return { width, height, data: luminance };
  const under = opaqueWeight > 0 && opaqueLight / opaqueWeight > 127.5 ? 0 : 255;
  for (let i = 0; i < n; i++) luminance[i] = luminance[i]! * alphas[i]! + under * (1 - alphas[i]!);
  return { width, height, data: luminance };
}

/**
 * A region the closing kept as background although it is far from the paper's level and does not reach the picture's
 * edge is a large blot of ink, not a surface (a desk or a shadow reaches the edge): its background is set to the
 * paper's level, so the blot is ink (and then a blob, not writing) instead of leaving slivers at its rim.
 * Flood fill from the edge over the far-from-paper pixels, with a typed-array stack.
 */
function keepEnclosedAsInk(level: Float32Array, width: number, height: number, paper: number, dark: boolean): void {
  const far = (i: number) => (dark ? level[i]! < paper - MIN_INK_CONTRAST : level[i]! > paper + MIN_INK_CONTRAST);
  const reached = new Uint8Array(level.length);
  const stack = new Int32Array(level.length);
  let top = 0;
  const visit = (i: number) => {
    if (reached[i] === 0 && far(i)) {
      reached[i] = 1;
      stack[top++] = i;
    }
  };
  for (let x = 0; x < width; x++) {
    visit(x);
    visit((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    visit(y * width);
    visit(y * width + width - 1);
  }
  while (top > 0) {
    const i = stack[--top]!;
    const x = i % width;
    if (x > 0) visit(i - 1);
    if (x < width - 1) visit(i + 1);
    if (i >= width) visit(i - width);
    if (i < level.length - width) visit(i + width);
  }
  for (let i = 0; i < level.length; i++) if (reached[i] === 0 && far(i)) level[i] = paper;
}

/** The level (0..255) below which a fraction `q` of the values lie: a histogram, linear time. */
function quantile(values: Float32Array, q: number): number {
  const histogram = new Uint32Array(256);
  for (let i = 0; i < values.length; i++) histogram[Math.min(255, Math.max(0, Math.round(values[i]!)))]!++;
  let seen = 0;
  for (let v = 0; v < 256; v++) {
    seen += histogram[v]!;
    if (seen >= q * values.length) return v;
  }
  return 255;
}

/** Median of the outermost pixels. */
function borderMedian(image: GrayImage): number {
  const { width, height, data } = image;
  const border = new Float32Array(2 * width + 2 * Math.max(0, height - 2));
  let k = 0;
  for (let x = 0; x < width; x++) {
    border[k++] = data[x]!;
    border[k++] = data[(height - 1) * width + x]!;
  }
  for (let y = 1; y < height - 1; y++) {
    border[k++] = data[y * width]!;
    border[k++] = data[y * width + width - 1]!;
  }
  return quantile(border.subarray(0, k), 0.5);
}

/** The size of a picture `width` x `height` at the working size: its long side at most WORKING_SIDE. */
export function workingSize(width: number, height: number): { width: number; height: number } {
  const long = Math.max(width, height);
  if (long <= WORKING_SIDE) return { width, height };
  const scale = WORKING_SIDE / long;
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** The picture reduced (area averaging) so that its long side is at most WORKING_SIDE. */
function toWorkingSize(gray: GrayImage): GrayImage {
  const size = workingSize(gray.width, gray.height);
  return size.width === gray.width ? gray : resample(gray, size.width, size.height);
}

/** Pixels of `values` more than POLARITY_CONTRAST below and above their median. */
function farFromMedian(values: Float32Array): { darker: number; lighter: number; fraction: number } {
  const middle = quantile(values, 0.5);
  let darker = 0;
  let lighter = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i]! < middle - POLARITY_CONTRAST) darker++;
    else if (values[i]! > middle + POLARITY_CONTRAST) lighter++;
  }
  return { darker, lighter, fraction: (darker + lighter) / values.length };
}

/**
 * Whether the ink is darker than its background. Ink is the few pixels far (POLARITY_CONTRAST: more than a shadow or
 * the paper's own variation) from the background, on one side of it. Two readings of the background: the median of
 * the whole picture (a canvas, a crop, a board), and that of its central part (a photo's page is in the middle; a
 * desk or a shadow may be most of the frame, and then the whole picture's median is the desk). The central reading
 * is the background when it leaves under three quarters as many far pixels (a thick digit fills half of a crop's
 * centre), and the ink is on the side of it with more of them; so a thin stroke covering 0.1% of the picture decides as well
 * as a thick one. No far pixels at all: dark ink, the common case.
 */
function darkInk(gray: GrayImage): boolean {
  const { width, height, data } = gray;
  const x0 = Math.floor(width / 4);
  const y0 = Math.floor(height / 4);
  const x1 = Math.max(x0 + 1, Math.ceil((3 * width) / 4));
  const y1 = Math.max(y0 + 1, Math.ceil((3 * height) / 4));
  const centre = new Float32Array((x1 - x0) * (y1 - y0));
  let k = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) centre[k++] = data[y * width + x]!;
  const whole = farFromMedian(data);
  const middle = farFromMedian(centre);
  const background =
    whole.fraction === 0 || (middle.fraction > 0 && middle.fraction < whole.fraction * 0.75) ? middle : whole;
  return background.darker >= background.lighter;
}

/**
 * The ink of a picture, or undefined when it holds none (its strongest ink has less than MIN_INK_CONTRAST).
 * @throws RangeError when the pixel buffer does not match its size
 */
export function extractInk(image: PixelImage, background: BackgroundModel = 'local'): InkImage | undefined {
  const gray = toWorkingSize(toGray(image));
  const { width, height } = gray;
  const dark = darkInk(gray);
  const ink = new Float32Array(width * height);
  if (background === 'local') {
    const radius = Math.max(8, Math.round(Math.max(width, height) / 20));
    // Closing (max then min) removes dark strokes narrower than the window and keeps larger dark regions; the
    // opening does the same for bright strokes.
    const first = rankFilter(gray.data, width, height, radius, dark ? 'max' : 'min');
    const level = rankFilter(first, width, height, radius, dark ? 'min' : 'max');
    keepEnclosedAsInk(level, width, height, quantile(gray.data, 0.5), dark);
    // Where the background itself changes sharply (the page's edge against the desk), differences are the edge's
    // blur and JPEG ringing, not ink.
    const levelHigh = rankFilter(level, width, height, EDGE_RADIUS, 'max');
    const levelLow = rankFilter(level, width, height, EDGE_RADIUS, 'min');
    for (let i = 0; i < ink.length; i++) {
      const onEdge = levelHigh[i]! - levelLow[i]! > MIN_INK_CONTRAST;
      ink[i] = onEdge ? 0 : Math.max(0, dark ? level[i]! - gray.data[i]! : gray.data[i]! - level[i]!);
    }
  } else {
    const level = borderMedian(gray);
    for (let i = 0; i < ink.length; i++) ink[i] = Math.max(0, dark ? level - gray.data[i]! : gray.data[i]! - level);
  }
  const smooth = boxMean3(ink, width, height);
  let contrast = 0;
  for (let i = 0; i < smooth.length; i++) if (smooth[i]! > contrast) contrast = smooth[i]!;
  if (contrast < MIN_INK_CONTRAST) return undefined;
  // Stretch so that stroke cores reach 255: the top 0.1% of the ink (at least the 3x3 peak), above the noise floor.
  const top = Math.max(contrast, quantile(ink, 0.999));
  const floor = Math.min(NOISE_FLOOR * top, NOISE_MULTIPLE * quantile(ink, 0.5));
  for (let i = 0; i < ink.length; i++) ink[i] = Math.min(255, (Math.max(0, ink[i]! - floor) * 255) / (top - floor));
  return { width, height, data: ink, contrast };
}
