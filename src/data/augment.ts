/**
 * Training with distortions, as LeCun et al. trained LeNet-5 ("Gradient-based learning applied to document
 * recognition", 1998: 0.8% test error with distorted copies of the training set, 0.95% without) and as Simard,
 * Steinkraus & Platt recommend ("Best practices for convolutional neural networks applied to visual document
 * analysis", ICDAR 2003: affine and elastic distortions).
 *
 * Each distortion is applied to a training image with its own probability and a random strength. What example
 * `index` looks like in `epoch` depends on (seed, epoch, index) alone, so a resumed run sees bit-identical
 * batches and the order of a batch does not matter. Images are distorted at the source size (28x28), before any
 * resize (AlexNet's 224). Evaluation never goes through here.
 */
import { deriveSeed } from '../common/index.js';
import { iterateBatches, type Batch, type BatchOptions } from './batches.js';
import { bilinearResizer } from './resize.js';
import type { Split } from './split.js';

export const DISTORTION_NAMES = ['affine', 'elastic', 'thickness', 'blur', 'contrast', 'noise', 'flip'] as const;
export type DistortionName = (typeof DISTORTION_NAMES)[number];

/**
 * What `--augment` with no names turns on: every distortion made for handwriting, each at its own probability (not
 * `flip`: a mirrored digit is another glyph).
 */
export const DEFAULT_DISTORTIONS: readonly DistortionName[] = DISTORTION_NAMES.filter((name) => name !== 'flip');

/** A closed range [low, high] a strength is drawn from uniformly. */
type Range = readonly [number, number];

/** A distortion's settings: how often it applies, its strength ranges, and those in words. */
interface Distortion {
  readonly probability: number;
  readonly summary: string;
  readonly [strength: string]: number | string | Range;
}

/**
 * The distortions, in the order they are applied, with their probability and the ranges of their random
 * strengths. Lengths are in pixels of the 28x28 source image; intensities are on the [0,1] scale, ink bright.
 */
const DISTORTIONS = {
  /**
   * LeCun et al. 1998's planar affine distortions (translation, scaling, squeezing, horizontal shear) plus a
   * small rotation, about the image centre. Translations stay within the 4-pixel margin MNIST leaves around
   * its 20x20 digit box; rotations and shears of digits beyond ~15 degrees start to turn one digit into another.
   */
  affine: {
    probability: 0.5,
    rotationDegrees: [-10, 10],
    scale: [0.9, 1.1],
    /** Horizontal compression with vertical elongation, or the reverse: x scaled by 1+q, y by 1/(1+q). */
    squeeze: [-0.1, 0.1],
    /** Horizontal shear: x += shear * y. */
    shear: [-0.25, 0.25],
    translation: [-2, 2],
    summary: 'rotation +-10 deg, scale 0.9-1.1, squeeze +-10%, shear +-0.25, shift +-2 px',
  },
  /**
   * Simard et al. 2003, section 2: a displacement field of uniform noise in [-1,1] per pixel and axis, smoothed
   * by a Gaussian of standard deviation sigma and scaled by alpha. They use sigma 4 and alpha 34 for 29x29
   * images; at 28x28 the same values give displacements of ~1.4 px (standard deviation), which keep digits
   * legible. alpha is drawn per image, so some fields are gentler. See `ElasticField` for how it is drawn.
   */
  elastic: {
    probability: 0.5,
    sigma: 4,
    alpha: [17, 34],
    summary: 'Simard 2003 elastic field, sigma 4 px, alpha 17-34',
  },
  /**
   * Pen width: a grey dilation (thicker) or erosion (thinner) by the 3x3 cross, blended with the image. The
   * cross, not the full 3x3 square, so that dilation does not fill the small loops of 6, 8, 9 and 0; erosion is
   * held weaker: MNIST strokes are 2-3 px wide, and a full erosion erases the thin ones.
   */
  thickness: {
    probability: 0.3,
    dilateProbability: 0.5,
    dilate: [0.5, 1],
    erode: [0.3, 0.6],
    summary: 'grey dilation (half the time) or erosion by the 3x3 cross, blended 0.5-1 and 0.3-0.6',
  },
  /** A small Gaussian blur (5x5 taps), as a soft pen or an out-of-focus scan gives. */
  blur: {
    probability: 0.2,
    sigma: [0.4, 1],
    summary: 'Gaussian, sigma 0.4-1 px',
  },
  /** Ink intensity scaled by a factor (clipped to 1), half the time fainter, half the time heavier. */
  contrast: {
    probability: 0.3,
    fainter: [0.6, 0.85],
    heavier: [1.15, 1.4],
    summary: 'ink scaled by 0.6-0.85 or 1.15-1.4',
  },
  /** Additive Gaussian pixel noise, clipped to [0,1]. */
  noise: {
    probability: 0.2,
    std: [0.02, 0.1],
    summary: 'Gaussian, std 0.02-0.1',
  },
  /**
   * A left-right mirror, half the time: for objects that look the same mirrored (clothes, shoes, bags: the standard
   * augmentation for Fashion-MNIST and CIFAR, with a shift), never for digits. Applied with the affine map.
   */
  flip: {
    probability: 0.5,
    summary: 'left-right mirror (objects, not digits)',
  },
} as const satisfies { [K in DistortionName]: Distortion };

/** Each distortion with its probability and strengths, one line each (for `--help`). */
export function describeDistortions(): string[] {
  return DISTORTION_NAMES.map((name) => {
    const { probability, summary } = DISTORTIONS[name];
    return `${name.padEnd(10)} p ${probability}, ${summary}`;
  });
}

/**
 * The distortions a comma-separated list names, in the order they are applied; `none` names none. Throws a
 * RangeError naming the accepted names for an unknown or empty name.
 */
export function parseDistortions(text: string): DistortionName[] {
  const words = text.split(',').map((word) => word.trim());
  if (words.length === 1 && words[0] === 'none') return [];
  const unknown = words.filter((word) => !(DISTORTION_NAMES as readonly string[]).includes(word));
  if (unknown.length > 0) {
    const named = unknown.map((word) =>
      word === 'none' ? 'none with others' : word === '' ? 'an empty name' : `"${word}"`,
    );
    throw new RangeError(
      `unknown distortion ${named.join(', ')}; name one or more of ${DISTORTION_NAMES.join(', ')} (comma-separated), or none`,
    );
  }
  return DISTORTION_NAMES.filter((name) => words.includes(name));
}

/** Seed stream of the distortions, apart from the streams of data order (epoch) and dropout (step + 1). */
const AUGMENT_STREAM = 0x61756700;

/** Standard deviation of the sum of four uniform bytes: sqrt(4 * (256^2 - 1) / 12). */
const IRWIN_HALL_STD = Math.sqrt((4 * (256 * 256 - 1)) / 12);

/**
 * A counter-based generator: the n-th draw is a hash of (seed, n), so each distortion of each example has a
 * stream of its own and enabling one distortion does not change what another draws.
 */
class Draws {
  private counter = 0;
  constructor(private readonly seed: number) {}

  /** Uniform in [0, 1). */
  next(): number {
    return deriveSeed(this.seed, this.counter++) / 4294967296;
  }

  /** Uniform in [low, high). */
  in([low, high]: Range): number {
    return low + (high - low) * this.next();
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /**
   * Roughly standard normal from one draw: the sum of its four bytes (Irwin-Hall), centred and scaled to unit
   * variance; within +-3.5. Pixel noise needs many values, and no tails.
   */
  roughNormal(): number {
    const bits = deriveSeed(this.seed, this.counter++);
    return ((bits & 255) + ((bits >>> 8) & 255) + ((bits >>> 16) & 255) + (bits >>> 24) - 510) / IRWIN_HALL_STD;
  }

  /** Fills `out[0 .. count)` with standard normal values (Box-Muller, both values of each pair). */
  normals(out: Float64Array, count: number): void {
    for (let i = 0; i < count; i += 2) {
      const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
      const angle = 2 * Math.PI * this.next();
      out[i] = radius * Math.cos(angle);
      if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
    }
  }
}

/** A normalised 1-D Gaussian kernel of `2 * radius + 1` taps. */
function gaussianKernel(sigma: number, radius: number, out = new Float64Array(2 * radius + 1)): Float64Array {
  let sum = 0;
  for (let k = -radius; k <= radius; k++) sum += out[k + radius] = Math.exp((-k * k) / (2 * sigma * sigma));
  for (let k = 0; k < out.length; k++) out[k]! /= sum;
  return out;
}

/** Grid spacing, in pixels, of the elastic field's draw (see ElasticField). */
const ELASTIC_GRID_STEP = 3;

/** One axis of the elastic field's grid: the Cholesky factor of its covariance and the interpolation table. */
interface FieldAxis {
  /** Grid points (pixel positions 0, step, 2 * step, ..., n - 1). */
  points: number;
  /** Lower-triangular [points, points], row-major: factor * factor^T is the axis covariance. */
  factor: Float64Array;
  /** For each pixel, the grid point at or before it, and the weight of the one after it. */
  low: Int32Array;
  weight: Float64Array;
}

/**
 * The axis of `n` pixels of a field made of white noise of variance `variance` smoothed by the normalised
 * `kernel` (zero outside the image): the covariance of two grid points is variance * sum_p k(a - p) k(b - p).
 */
function fieldAxis(n: number, kernel: Float64Array, variance: number): FieldAxis {
  const radius = (kernel.length - 1) >> 1;
  const points = Math.ceil((n - 1) / ELASTIC_GRID_STEP) + 1;
  const position = (i: number) => Math.min(i * ELASTIC_GRID_STEP, n - 1);
  const tap = (offset: number) => (Math.abs(offset) <= radius ? kernel[offset + radius]! : 0);
  const covariance = new Float64Array(points * points);
  for (let i = 0; i < points; i++) {
    for (let j = 0; j < points; j++) {
      let sum = 0;
      for (let p = 0; p < n; p++) sum += tap(position(i) - p) * tap(position(j) - p);
      covariance[i * points + j] = variance * sum;
    }
  }
  const factor = new Float64Array(points * points);
  for (let i = 0; i < points; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = covariance[i * points + j]!;
      for (let k = 0; k < j; k++) sum -= factor[i * points + k]! * factor[j * points + k]!;
      factor[i * points + j] = i === j ? Math.sqrt(sum) : sum / factor[j * points + j]!;
    }
  }
  const low = new Int32Array(n);
  const weight = new Float64Array(n);
  for (let x = 0; x < n; x++) {
    const i = Math.min(Math.floor(x / ELASTIC_GRID_STEP), points - 2);
    low[x] = i;
    weight[x] = (x - position(i)) / (position(i + 1) - position(i));
  }
  return { points, factor, low, weight };
}

/**
 * Simard's elastic displacement fields, drawn cheaply. Uniform noise smoothed by a Gaussian is, by the central
 * limit theorem (each value sums ~200 noise values), a Gaussian random field, and its covariance is known and
 * separable: Cov = Cy (x) Cx. So the field is drawn directly on a grid every ELASTIC_GRID_STEP pixels as
 * Ly Z Lx^T (Z standard normal, L the Cholesky factors of each axis' covariance), then interpolated bilinearly:
 * the field varies over ~6 px (correlation length sigma * sqrt 2), so interpolation changes it by a few
 * percent, and a draw costs a tenth of smoothing full-size noise.
 */
class ElasticField {
  private readonly ys: FieldAxis;
  private readonly xs: FieldAxis;
  private readonly normals: Float64Array;
  private readonly product: Float64Array;
  private readonly grid: Float64Array;
  private readonly across: Float64Array;

  constructor(rows: number, cols: number, sigma: number) {
    const kernel = gaussianKernel(sigma, Math.ceil(3 * sigma));
    this.ys = fieldAxis(rows, kernel, 1 / 3); // the variance of uniform noise in [-1, 1]
    this.xs = fieldAxis(cols, kernel, 1);
    this.normals = new Float64Array(this.ys.points * this.xs.points);
    this.product = new Float64Array(this.normals.length);
    this.grid = new Float64Array(this.normals.length);
    this.across = new Float64Array(this.ys.points * cols);
  }

  /** Writes one axis of a field scaled by `alpha` into `out` (`rows x cols`, pixels). */
  draw(draws: Draws, alpha: number, out: Float32Array): void {
    const { ys, xs, normals, product, grid, across } = this;
    const gy = ys.points;
    const gx = xs.points;
    draws.normals(normals, gy * gx);
    // product = Ly Z; grid = product Lx^T
    product.fill(0);
    for (let i = 0; i < gy; i++) {
      for (let k = 0; k <= i; k++) {
        const l = ys.factor[i * gy + k]!;
        for (let j = 0; j < gx; j++) product[i * gx + j]! += l * normals[k * gx + j]!;
      }
    }
    grid.fill(0);
    for (let i = 0; i < gy; i++) {
      for (let j = 0; j < gx; j++) {
        let sum = 0;
        for (let k = 0; k <= j; k++) sum += product[i * gx + k]! * xs.factor[j * gx + k]!;
        grid[i * gx + j] = alpha * sum;
      }
    }
    interpolateGrid(grid, gy, gx, ys, xs, across, out);
  }
}

/**
 * Bilinear interpolation of a [gy, gx] grid to pixels by the axes' tables: along x for each grid row into
 * `across` ([gy, cols]), then along y.
 */
function interpolateGrid(
  grid: Float64Array,
  gy: number,
  gx: number,
  ys: FieldAxis,
  xs: FieldAxis,
  across: Float64Array,
  out: Float32Array,
): void {
  const rows = ys.low.length;
  const cols = xs.low.length;
  for (let i = 0; i < gy; i++) {
    for (let x = 0; x < cols; x++) {
      const left = i * gx + xs.low[x]!;
      across[i * cols + x] = grid[left]! + xs.weight[x]! * (grid[left + 1]! - grid[left]!);
    }
  }
  for (let y = 0; y < rows; y++) {
    const top = ys.low[y]! * cols;
    const weight = ys.weight[y]!;
    for (let x = 0; x < cols; x++) {
      const upper = across[top + x]!;
      out[y * cols + x] = upper + weight * (across[top + cols + x]! - upper);
    }
  }
}

/*
 * The image kernels below are plain functions of their arguments (no captured variables in the loops), on
 * row-major `rows x cols` float images.
 */

/**
 * Separable convolution of `values` in place with the symmetric `kernel`, zero outside; `temp` is scratch. Each
 * tap is added to whole rows at a time, so the additions are independent of one another.
 */
function convolveSeparable(
  values: Float32Array,
  temp: Float32Array,
  rows: number,
  cols: number,
  kernel: Float64Array,
): void {
  const radius = (kernel.length - 1) >> 1;
  temp.fill(0);
  for (let y = 0; y < rows; y++) {
    const row = y * cols;
    for (let k = -radius; k <= radius; k++) {
      const weight = kernel[k + radius]!;
      const end = Math.min(cols, cols - k);
      for (let x = Math.max(0, -k); x < end; x++) temp[row + x]! += weight * values[row + x + k]!;
    }
  }
  values.fill(0);
  for (let y = 0; y < rows; y++) {
    const row = y * cols;
    const end = Math.min(radius, rows - 1 - y);
    for (let k = Math.max(-radius, -y); k <= end; k++) {
      const weight = kernel[k + radius]!;
      const source = (y + k) * cols;
      for (let x = 0; x < cols; x++) values[row + x]! += weight * temp[source + x]!;
    }
  }
}

/**
 * Resamples the source image (bytes at `pixels[offset]`) into `out` in [0,1]: output pixel (x, y) reads the
 * source at `inverse` applied to (x + dx, y + dy) about the image centre, where (dx, dy) is the displacement
 * field; `inverse` is [m00, m01, m10, m11, tx, ty], the inverse linear map and the translation it undoes.
 * Bilinear, zero outside the image.
 */
function warpBilinear(
  pixels: Uint8Array,
  offset: number,
  rows: number,
  cols: number,
  inverse: Float64Array,
  fieldX: Float32Array,
  fieldY: Float32Array,
  out: Float32Array,
): void {
  const cx = (cols - 1) / 2;
  const cy = (rows - 1) / 2;
  const m00 = inverse[0]!;
  const m01 = inverse[1]!;
  const m10 = inverse[2]!;
  const m11 = inverse[3]!;
  const tx = inverse[4]!;
  const ty = inverse[5]!;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const p = y * cols + x;
      const u = x - cx - tx + fieldX[p]!;
      const v = y - cy - ty + fieldY[p]!;
      const sx = m00 * u + m01 * v + cx;
      const sy = m10 * u + m11 * v + cy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      let value = 0;
      if (x0 >= -1 && x0 < cols && y0 >= -1 && y0 < rows) {
        const fx = sx - x0;
        const fy = sy - y0;
        const top = offset + y0 * cols + x0;
        const left = x0 >= 0;
        const right = x0 + 1 < cols;
        if (y0 >= 0) {
          if (left) value += (1 - fx) * (1 - fy) * pixels[top]!;
          if (right) value += fx * (1 - fy) * pixels[top + 1]!;
        }
        if (y0 + 1 < rows) {
          if (left) value += (1 - fx) * fy * pixels[top + cols]!;
          if (right) value += fx * fy * pixels[top + cols + 1]!;
        }
      }
      out[p] = value / 255;
    }
  }
}

/**
 * Grey dilation (`sign` 1) or erosion (`sign` -1, the dilation of the negative) of `image` by the 3x3 cross
 * (the pixel and its four neighbours), blended in by `amount`; neighbours outside the image are ignored.
 * `temp` is scratch.
 */
function morphologyCross(
  image: Float32Array,
  temp: Float32Array,
  rows: number,
  cols: number,
  sign: number,
  amount: number,
): void {
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const p = y * cols + x;
      let value = sign * image[p]!;
      if (x > 0) value = Math.max(value, sign * image[p - 1]!);
      if (x + 1 < cols) value = Math.max(value, sign * image[p + 1]!);
      if (y > 0) value = Math.max(value, sign * image[p - cols]!);
      if (y + 1 < rows) value = Math.max(value, sign * image[p + cols]!);
      temp[p] = sign * value;
    }
  }
  for (let p = 0; p < rows * cols; p++) image[p] = image[p]! + amount * (temp[p]! - image[p]!);
}

/** Distorts single images of one size. */
export interface Augmenter {
  readonly rows: number;
  readonly cols: number;
  readonly distortions: readonly DistortionName[];
  /**
   * Writes image `index` of a split (`rows x cols` bytes at `pixels[offset]`, ink bright) as distorted for
   * `epoch` into `out[outOffset ...]`: `rows x cols` float32 values in [0, 1].
   */
  distort(pixels: Uint8Array, offset: number, epoch: number, index: number, out: Float32Array, outOffset: number): void;
}

/** Sub-streams of an example's seed, one per distortion (their index in DISTORTION_NAMES). */
const STREAM = Object.fromEntries(DISTORTION_NAMES.map((name, index) => [name, index])) as {
  readonly [K in DistortionName]: number;
};

/**
 * An augmenter of `rows x cols` images applying `distortions` (any subset of DISTORTION_NAMES; applied in the
 * order of that list), seeded by `seed` (a run's seed). Its scratch buffers are allocated here, once.
 */
export function createAugmenter(
  rows: number,
  cols: number,
  { distortions, seed }: { distortions: readonly DistortionName[]; seed: number },
): Augmenter {
  const enabled = new Set(distortions);
  for (const name of enabled) {
    if (!(DISTORTION_NAMES as readonly string[]).includes(name)) {
      throw new RangeError(`unknown distortion "${name}"; should be one of: ${DISTORTION_NAMES.join(', ')}`);
    }
  }
  const on = Object.fromEntries(DISTORTION_NAMES.map((name) => [name, enabled.has(name)])) as {
    readonly [K in DistortionName]: boolean;
  };
  const size = rows * cols;
  const image = new Float32Array(size);
  const temp = new Float32Array(size);
  const fieldX = new Float32Array(size);
  const fieldY = new Float32Array(size);
  const inverse = new Float64Array(6);
  const elasticField = new ElasticField(rows, cols, DISTORTIONS.elastic.sigma);
  const blurKernel = new Float64Array(5);
  const runSeed = deriveSeed(seed, AUGMENT_STREAM);

  /** Draws the affine map into `inverse` (identity when it does not apply); true when it applies. */
  function drawAffine(exampleSeed: number): boolean {
    inverse.set([1, 0, 0, 1, 0, 0]);
    const settings = DISTORTIONS.affine;
    const draws = new Draws(deriveSeed(exampleSeed, STREAM.affine));
    if (!on.affine || !draws.chance(settings.probability)) return false;
    const angle = (draws.in(settings.rotationDegrees) * Math.PI) / 180;
    const scale = draws.in(settings.scale);
    const squeeze = 1 + draws.in(settings.squeeze);
    const shear = draws.in(settings.shear);
    // Forward map: rotation . shear . scale (x by scale * squeeze, y by scale / squeeze); the sampler inverts it.
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const a = cos * scale * squeeze;
    const b = ((cos * shear - sin) * scale) / squeeze;
    const c = sin * scale * squeeze;
    const d = ((sin * shear + cos) * scale) / squeeze;
    const det = a * d - b * c;
    inverse.set([d / det, -b / det, -c / det, a / det, draws.in(settings.translation), draws.in(settings.translation)]);
    return true;
  }

  /** Mirrors the affine map in `inverse` left-right when the flip applies; true when it applies. */
  function drawFlip(exampleSeed: number): boolean {
    if (!on.flip || !new Draws(deriveSeed(exampleSeed, STREAM.flip)).chance(DISTORTIONS.flip.probability)) return false;
    inverse[0] = -inverse[0]!;
    inverse[2] = -inverse[2]!;
    return true;
  }

  /** Draws the elastic displacement field into fieldX, fieldY (zero when it does not apply); true when it applies. */
  function drawElastic(exampleSeed: number): boolean {
    const settings = DISTORTIONS.elastic;
    const draws = new Draws(deriveSeed(exampleSeed, STREAM.elastic));
    if (!on.elastic || !draws.chance(settings.probability)) {
      fieldX.fill(0);
      fieldY.fill(0);
      return false;
    }
    const alpha = draws.in(settings.alpha);
    elasticField.draw(draws, alpha, fieldX);
    elasticField.draw(draws, alpha, fieldY);
    return true;
  }

  /** The pixel-value distortions of `image`, in DISTORTION_NAMES order. */
  function appearance(exampleSeed: number): void {
    if (on.thickness) {
      const settings = DISTORTIONS.thickness;
      const draws = new Draws(deriveSeed(exampleSeed, STREAM.thickness));
      if (draws.chance(settings.probability)) {
        const thicker = draws.chance(settings.dilateProbability);
        morphologyCross(
          image,
          temp,
          rows,
          cols,
          thicker ? 1 : -1,
          draws.in(thicker ? settings.dilate : settings.erode),
        );
      }
    }
    if (on.blur) {
      const draws = new Draws(deriveSeed(exampleSeed, STREAM.blur));
      if (draws.chance(DISTORTIONS.blur.probability)) {
        gaussianKernel(draws.in(DISTORTIONS.blur.sigma), 2, blurKernel);
        convolveSeparable(image, temp, rows, cols, blurKernel);
      }
    }
    if (on.contrast) {
      const draws = new Draws(deriveSeed(exampleSeed, STREAM.contrast));
      if (draws.chance(DISTORTIONS.contrast.probability)) {
        const { fainter, heavier } = DISTORTIONS.contrast;
        const factor = draws.in(draws.chance(0.5) ? heavier : fainter);
        for (let p = 0; p < size; p++) image[p]! *= factor;
      }
    }
    if (on.noise) {
      const draws = new Draws(deriveSeed(exampleSeed, STREAM.noise));
      if (draws.chance(DISTORTIONS.noise.probability)) {
        const std = draws.in(DISTORTIONS.noise.std);
        for (let p = 0; p < size; p++) image[p]! += std * draws.roughNormal();
      }
    }
  }

  return {
    rows,
    cols,
    distortions: DISTORTION_NAMES.filter((name) => on[name]),
    distort(pixels, offset, epoch, index, out, outOffset) {
      const exampleSeed = deriveSeed(deriveSeed(runSeed, epoch), index);
      const affine = drawAffine(exampleSeed);
      const warped = drawFlip(exampleSeed) || affine;
      if (drawElastic(exampleSeed) || warped) {
        warpBilinear(pixels, offset, rows, cols, inverse, fieldX, fieldY, image);
      } else {
        for (let p = 0; p < size; p++) image[p] = pixels[offset + p]! / 255;
      }
      appearance(exampleSeed);
      for (let p = 0; p < size; p++) out[outOffset + p] = Math.min(Math.max(image[p]!, 0), 1);
    },
  };
}

/**
 * The training batches of `iterateBatches` (same order, labels and indices) with every image distorted by
 * `augmenter` for `options.epoch` first, at the source size; with `options.resize`, the distorted image is
 * rounded to bytes, as the source images are, and resized.
 */
export function* iterateAugmentedBatches(split: Split, options: BatchOptions, augmenter: Augmenter): Generator<Batch> {
  if (split.channels !== 1) {
    throw new RangeError(`distortions are made for 1-channel images; this split has ${split.channels} channels`);
  }
  if (augmenter.rows !== split.rows || augmenter.cols !== split.cols) {
    throw new RangeError(
      `augmenter must distort ${split.rows}x${split.cols} images, as the split holds, got ${augmenter.rows}x${augmenter.cols}`,
    );
  }
  const sourceSize = split.rows * split.cols;
  const epoch = options.epoch ?? 0;
  const side = options.resize;
  const resize = side === undefined ? undefined : bilinearResizer(split.rows, split.cols, side);
  const distorted = new Float32Array(sourceSize);
  const bytes = new Uint8Array(sourceSize);
  for (const batch of iterateBatches(split, { ...options, resize: undefined })) {
    const { indices, size } = batch;
    if (resize === undefined) {
      for (let b = 0; b < size; b++) {
        augmenter.distort(split.pixels, indices[b]! * sourceSize, epoch, indices[b]!, batch.xs, b * sourceSize);
      }
      yield batch;
      continue;
    }
    const outSize = side! * side!;
    const xs = new Float32Array(size * outSize);
    for (let b = 0; b < size; b++) {
      augmenter.distort(split.pixels, indices[b]! * sourceSize, epoch, indices[b]!, distorted, 0);
      for (let p = 0; p < sourceSize; p++) bytes[p] = Math.round(distorted[p]! * 255);
      resize(bytes, 0, xs, b * outSize);
    }
    yield { ...batch, xs };
  }
}
