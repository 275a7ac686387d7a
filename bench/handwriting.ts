/**
 * `npx tsx bench/handwriting.ts [--url http://host:port] [--count N] [--models a,b] [--seed S] [--json out.json]`
 * (`npm run bench:handwriting`): how well a cnnx server reads handwriting as users send it, end to end over HTTP,
 * so the same script measures any version of the server. Without `--url` it starts `cnnx serve --model models`
 * from this checkout on a free port and stops it at the end.
 *
 * The pictures are made from the first `--count` MNIST test digits (default 1000), seeded, one kind at a time and
 * encoded with sharp as a user's program would send them:
 *
 * - `mnist`: the 28x28 digit as a PNG, black on white (the control);
 * - `thin-pen`: the digit's skeleton (Zhang-Suen thinning of the digit upscaled to ~400 px) drawn with a ~4 px
 *   antialiased pen on a 600x600 RGBA canvas, opaque white or transparent;
 * - `marker`: the same skeleton with a 16-20 px marker;
 * - `photo`: dark ink on paper under uneven light (gradient and vignette, up to +-25%), a darker desk on one or two
 *   sides, Gaussian noise, 1600x1200 JPEG quality 85;
 * - `white-on-transparent`: white strokes on a fully transparent 280x280 canvas (a canvas on a dark page);
 * - `small-off-centre`: the digit at 10-15% of a 400x400 white canvas, anywhere on it;
 * - `blank`: white pages of 200-1000 px; `noisy-blank`: paper with +-3 grey levels of noise, and photos of paper
 *   (light, desk, noise, JPEG) with no ink. The right answer for both is "no digit".
 *
 * Each picture goes to `POST /v1/models/{name}/classify` of every model (default: the MNIST models `GET /v2`
 * lists), three requests in flight. A 422 `NOTHING_TO_CLASSIFY` is the "no digit" answer (a server without it
 * answers a digit, counted wrong on blank pages); 5xx answers are counted apart. Blank pages also go to
 * `read-digits`, right when `text` is "". Then: the reject option (error among accepted digits against the
 * rejection rate, thresholding `top[0].probability`), and latency: classify of a 4000x3000 photo, and
 * `/v2/health/live` polled every 10 ms while 8 such photos are classified at once. Prints markdown tables (and
 * `--json`); progress goes to stderr. A --count 1000 run takes about 11 minutes on 2 busy cores.
 *
 * Also: `--first N` starts at test digit N (calibrate the reject threshold on one range, report on another),
 * `--blanks N` pages per blank kind (default count/4, at least 20), `--kinds a,b` a subset of the kinds,
 * `--no-latency`, and `--dump <dir>` to write the pictures there (--count of each kind) and stop, to look at them.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { startServe, type ServeProcess } from './serve-process.js';
import { loadDataset } from '../src/data/index.js';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    count: { type: 'string', default: '1000' },
    first: { type: 'string', default: '0' },
    blanks: { type: 'string' },
    models: { type: 'string' },
    kinds: { type: 'string' },
    seed: { type: 'string', default: '1998' },
    json: { type: 'string' },
    'no-latency': { type: 'boolean', default: false },
    dump: { type: 'string' },
  },
});

const KINDS = [
  'mnist',
  'thin-pen',
  'marker',
  'photo',
  'white-on-transparent',
  'small-off-centre',
  'blank',
  'noisy-blank',
] as const;
type Kind = (typeof KINDS)[number];
const BLANK_KINDS: readonly Kind[] = ['blank', 'noisy-blank'];
/** Every digit kind but the control: the pictures users send that MNIST does not look like. */
const HARD_KINDS: readonly Kind[] = ['thin-pen', 'marker', 'photo', 'white-on-transparent', 'small-off-centre'];
const REJECTION_RATES = [0, 0.005, 0.01, 0.02, 0.05, 0.1];
const TARGET_ERROR = 0.005;
const CONCURRENCY = 3;
const TIMEOUT_MS = 120_000;

const COUNT = positive(args.count!, '--count');
/** Index of the first test digit used: a range apart from the reported one calibrates the reject threshold. */
const FIRST = positive(args.first!, '--first', 0);
const BLANKS = args.blanks === undefined ? Math.max(20, Math.round(COUNT / 4)) : positive(args.blanks, '--blanks');
const SEED = positive(args.seed!, '--seed', 0);
const kinds = (args.kinds?.split(',') ?? [...KINDS]) as Kind[];
for (const kind of kinds) {
  if (!KINDS.includes(kind)) throw new Error(`unknown kind ${kind}: one of ${KINDS.join(', ')}`);
}

function positive(text: string, flag: string, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}, got ${text}`);
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Seeded randomness: one generator per (kind, picture), so a picture does not depend on what was made before it.

function rngFor(...keys: number[]): () => number {
  let state = 0x2545f491 ^ SEED;
  for (const key of keys) state = Math.imul(state ^ (key + 0x9e3779b9), 0x85ebca6b) ^ (state >>> 15);
  return () => {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const uniform = (rand: () => number, lo: number, hi: number) => lo + (hi - lo) * rand();
const integer = (rand: () => number, lo: number, hi: number) => Math.floor(uniform(rand, lo, hi + 1));

/** 64 Ki standard normal samples (Box-Muller), indexed per pixel: Gaussian noise at the cost of a table look-up. */
const NORMALS = (() => {
  const rand = rngFor(0xfeed);
  const table = new Float32Array(65536);
  for (let i = 0; i < table.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const a = 2 * Math.PI * rand();
    table[i] = r * Math.cos(a);
    table[i + 1] = r * Math.sin(a);
  }
  return table;
})();

// ---------------------------------------------------------------------------------------------------------------
// Digits as pen strokes: the MNIST digit upscaled so its longer side is SKELETON_SIDE px, binarised, thinned to a
// one-pixel skeleton. The skeleton is kept as points (a few KB a digit) and drawn at any size with any pen.

const SKELETON_SIDE = 400;
const mnist = await loadDataset('mnist');
const test = mnist.test;
if (FIRST + COUNT > test.count)
  throw new Error(`--first ${FIRST} --count ${COUNT}: MNIST has ${test.count} test digits`);
const digitPixels = (i: number) => test.pixels.subarray(i * 784, (i + 1) * 784);

interface Skeleton {
  /** x, y pairs in the skeleton's frame. */
  points: Int16Array;
  width: number;
  height: number;
}
const skeletons = new Map<number, Skeleton>();

function skeletonOf(i: number): Skeleton {
  const cached = skeletons.get(i);
  if (cached) return cached;
  const src = digitPixels(i);
  let [x0, y0, x1, y1] = [28, 28, -1, -1];
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      if (src[y * 28 + x]! > 64)
        [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  }
  // Upscale the ink box (with a pixel of margin) bilinearly and binarise; a 1 px empty border for the thinning.
  const scale = SKELETON_SIDE / (Math.max(x1 - x0, y1 - y0) + 1);
  const w = Math.ceil((x1 - x0 + 3) * scale) + 2;
  const h = Math.ceil((y1 - y0 + 3) * scale) + 2;
  const at = (x: number, y: number) => (x < 0 || y < 0 || x > 27 || y > 27 ? 0 : src[y * 28 + x]!);
  const bits = new Uint8Array(w * h);
  for (let y = 1; y < h - 1; y++) {
    const sy = (y - 1 + 0.5) / scale + y0 - 1 - 0.5;
    const iy = Math.floor(sy);
    const fy = sy - iy;
    for (let x = 1; x < w - 1; x++) {
      const sx = (x - 1 + 0.5) / scale + x0 - 1 - 0.5;
      const ix = Math.floor(sx);
      const fx = sx - ix;
      const top = at(ix, iy) * (1 - fx) + at(ix + 1, iy) * fx;
      const bottom = at(ix, iy + 1) * (1 - fx) + at(ix + 1, iy + 1) * fx;
      bits[y * w + x] = top * (1 - fy) + bottom * fy >= 128 ? 1 : 0;
    }
  }
  thin(bits, w, h);
  const points: number[] = [];
  let [px0, py0, px1, py1] = [w, h, 0, 0];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!bits[y * w + x]) continue;
      points.push(x, y);
      [px0, py0, px1, py1] = [Math.min(px0, x), Math.min(py0, y), Math.max(px1, x), Math.max(py1, y)];
    }
  }
  for (let k = 0; k < points.length; k += 2) {
    points[k]! -= px0;
    points[k + 1]! -= py0;
  }
  const skeleton = { points: Int16Array.from(points), width: px1 - px0 + 1, height: py1 - py0 + 1 };
  skeletons.set(i, skeleton);
  return skeleton;
}

/** Zhang-Suen thinning in place (values 0/1, an empty border), visiting only the pixels still set. */
function thin(bits: Uint8Array, w: number, h: number): void {
  let live: number[] = [];
  for (let p = 0; p < w * h; p++) if (bits[p]) live.push(p);
  const remove: number[] = [];
  for (let changed = true; changed;) {
    changed = false;
    for (const step of [0, 1]) {
      remove.length = 0;
      for (const p of live) {
        const n = bits[p - w]!; // p2, then clockwise
        const ne = bits[p - w + 1]!;
        const e = bits[p + 1]!;
        const se = bits[p + w + 1]!;
        const s = bits[p + w]!;
        const sw = bits[p + w - 1]!;
        const west = bits[p - 1]!;
        const nw = bits[p - w - 1]!;
        const count = n + ne + e + se + s + sw + west + nw;
        if (count < 2 || count > 6) continue;
        const transitions =
          (!n && ne ? 1 : 0) +
          (!ne && e ? 1 : 0) +
          (!e && se ? 1 : 0) +
          (!se && s ? 1 : 0) +
          (!s && sw ? 1 : 0) +
          (!sw && west ? 1 : 0) +
          (!west && nw ? 1 : 0) +
          (!nw && n ? 1 : 0);
        if (transitions !== 1) continue;
        if (step === 0 ? (n && e && s) || (e && s && west) : (n && e && west) || (n && s && west)) continue;
        remove.push(p);
      }
      for (const p of remove) bits[p] = 0;
      if (remove.length > 0) changed = true;
    }
    live = live.filter((p) => bits[p]);
  }
}

/**
 * Draws the skeleton with a round pen of `radius` px into `ink` (coverage 0-1, width `w`), scaled by `scale` with
 * its top-left corner at (ox, oy). The pen's edge is antialiased over one pixel.
 */
function drawPen(
  ink: Float32Array,
  w: number,
  h: number,
  skeleton: Skeleton,
  scale: number,
  ox: number,
  oy: number,
  radius: number,
): void {
  const { points } = skeleton;
  const reach = Math.ceil(radius + 1);
  for (let k = 0; k < points.length; k += 2) {
    const cx = ox + (points[k]! + 0.5) * scale;
    const cy = oy + (points[k + 1]! + 0.5) * scale;
    const ya = Math.max(0, Math.floor(cy) - reach);
    const yb = Math.min(h - 1, Math.floor(cy) + reach);
    const xa = Math.max(0, Math.floor(cx) - reach);
    const xb = Math.min(w - 1, Math.floor(cx) + reach);
    for (let y = ya; y <= yb; y++) {
      const dy = y + 0.5 - cy;
      for (let x = xa; x <= xb; x++) {
        const dx = x + 0.5 - cx;
        const cover = radius + 0.5 - Math.sqrt(dx * dx + dy * dy);
        if (cover <= 0) continue;
        const c = cover >= 1 ? 1 : cover;
        if (c > ink[y * w + x]!) ink[y * w + x] = c;
      }
    }
  }
}

/** The skeleton drawn with its longer side `side` px, centred at (cx, cy) on a w x h coverage map. */
function penDigit(
  i: number,
  w: number,
  h: number,
  side: number,
  cx: number,
  cy: number,
  radius: number,
  ink = new Float32Array(w * h),
): Float32Array {
  const skeleton = skeletonOf(i);
  const scale = side / Math.max(skeleton.width, skeleton.height);
  drawPen(ink, w, h, skeleton, scale, cx - (skeleton.width * scale) / 2, cy - (skeleton.height * scale) / 2, radius);
  return ink;
}

/** A centre for a `side`-px digit in [lo, hi] on each axis with `jitter` px of random play, kept inside. */
const place = (rand: () => number, lo: number, hi: number, side: number, jitter: number) =>
  Math.min(hi - side / 2, Math.max(lo + side / 2, (lo + hi) / 2 + uniform(rand, -jitter, jitter)));

/** RGBA canvas: `ink` coverage in `color` over opaque white, or over transparency (the ink's alpha). */
function canvasPng(ink: Float32Array, w: number, h: number, color: number, transparent: boolean): Promise<Buffer> {
  const rgba = new Uint8Array(w * h * 4);
  for (let p = 0, q = 0; p < w * h; p++, q += 4) {
    const c = ink[p]!;
    if (transparent) {
      rgba[q] = rgba[q + 1] = rgba[q + 2] = c > 0 ? color : 0;
      rgba[q + 3] = Math.round(c * 255);
    } else {
      rgba[q] = rgba[q + 1] = rgba[q + 2] = Math.round(255 + (color - 255) * c);
      rgba[q + 3] = 255;
    }
  }
  return sharp(rgba, { raw: { width: w, height: h, channels: 4 } })
    .png()
    .toBuffer();
}

/**
 * A phone photo of paper with `ink` (coverage over the whole frame, or none): paper ~rgb(215,212,205), ink
 * ~rgb(40,40,60), light that varies smoothly by up to +-25% (a gradient and a vignette), a darker desk beyond the
 * page's edge on one or two sides (10-25% of the frame each), Gaussian noise, JPEG quality 85. Returns the page's
 * area too, so the digit can be placed on it before drawing.
 */
function photoLayout(rand: () => number, w: number, h: number) {
  // The page's edges: 1-2 sides cut by the desk, each edge slightly tilted.
  const all = ['left', 'right', 'top', 'bottom'];
  const first = integer(rand, 0, 3);
  const sides = rand() < 0.5 ? [all[first]] : [all[first], all[(first + integer(rand, 1, 3)) % 4]];
  const edge = (side: string) => {
    if (!sides.includes(side)) return { at: side === 'left' || side === 'top' ? -1e9 : 1e9, tilt: 0 };
    const along = side === 'left' || side === 'right' ? w : h;
    const depth = uniform(rand, 0.1, 0.25) * along;
    return { at: side === 'left' || side === 'top' ? depth : along - depth, tilt: uniform(rand, -0.03, 0.03) };
  };
  const page = { left: edge('left'), right: edge('right'), top: edge('top'), bottom: edge('bottom') };
  const inner = {
    x0: Math.max(0, page.left.at) + 0.05 * w,
    x1: Math.min(w, page.right.at) - 0.05 * w,
    y0: Math.max(0, page.top.at) + 0.05 * h,
    y1: Math.min(h, page.bottom.at) - 0.05 * h,
  };
  return { page, inner, sides: sides.length };
}

function photoJpeg(
  rand: () => number,
  w: number,
  h: number,
  layout: ReturnType<typeof photoLayout>,
  ink: Float32Array | undefined,
): Promise<Buffer> {
  const { page } = layout;
  const bright = uniform(rand, 0.95, 1.04);
  const paper = [215, 212, 205].map((v) => v * bright);
  const dark = uniform(rand, -8, 12);
  const inkRgb = [40 + dark, 40 + dark, 60 + dark];
  const desk = [
    [95, 72, 52],
    [58, 58, 64],
    [120, 110, 100],
  ][integer(rand, 0, 2)]!.map((v) => v * uniform(rand, 0.85, 1.1));
  // Light: 1 + a linear gradient in a random direction - a vignette around a random centre; within about +-25%.
  const angle = uniform(rand, 0, 2 * Math.PI);
  const slope = uniform(rand, 0.1, 0.2);
  const [gx, gy] = [Math.cos(angle) * slope * 2, Math.sin(angle) * slope * 2];
  const [vx, vy] = [uniform(rand, 0.3, 0.7) * w, uniform(rand, 0.3, 0.7) * h];
  const vignette = uniform(rand, 0.05, 0.12) / ((w * w + h * h) / 4);
  const sigma = uniform(rand, 1.5, 3);
  let noise = integer(rand, 0, 65535);
  const rgb = new Uint8Array(w * h * 3);
  const [p0, p1, p2] = paper as [number, number, number];
  const [d0, d1, d2] = desk as [number, number, number];
  const [i0, i1, i2] = inkRgb as [number, number, number];
  const tops = Float32Array.from({ length: w }, (_, x) => page.top.at + page.top.tilt * (x - w / 2));
  const bottoms = Float32Array.from({ length: w }, (_, x) => page.bottom.at + page.bottom.tilt * (x - w / 2));
  const lightX = Float32Array.from({ length: w }, (_, x) => gx * (x / w - 0.5) - vignette * (x - vx) * (x - vx));
  for (let y = 0; y < h; y++) {
    const left = page.left.at + page.left.tilt * (y - h / 2);
    const right = page.right.at + page.right.tilt * (y - h / 2);
    const lightY = 1 + gy * (y / h - 0.5) - vignette * (y - vy) * (y - vy);
    for (let x = 0, p = y * w, q = p * 3; x < w; x++, p++, q += 3) {
      // Distance inside the page (negative: on the desk), antialiased over a pixel.
      const inside = Math.min(x - left, right - x, y - tops[x]!, bottoms[x]! - y);
      const onPage = inside >= 0.5 ? 1 : inside <= -0.5 ? 0 : inside + 0.5;
      const light = lightY + lightX[x]!;
      const c = ink === undefined ? 0 : ink[p]! * onPage;
      noise = (noise + 40503) & 65535;
      const n = NORMALS[noise]! * sigma;
      let b0 = p0;
      let b1 = p1;
      let b2 = p2;
      if (onPage < 1) {
        b0 += (d0 - p0) * (1 - onPage);
        b1 += (d1 - p1) * (1 - onPage);
        b2 += (d2 - p2) * (1 - onPage);
      }
      const v0 = (b0 + (i0 - b0) * c) * light + n;
      const v1 = (b1 + (i1 - b1) * c) * light + n;
      const v2 = (b2 + (i2 - b2) * c) * light + n;
      rgb[q] = v0 < 0 ? 0 : v0 > 255 ? 255 : v0 | 0;
      rgb[q + 1] = v1 < 0 ? 0 : v1 > 255 ? 255 : v1 | 0;
      rgb[q + 2] = v2 < 0 ? 0 : v2 > 255 ? 255 : v2 | 0;
    }
  }
  return sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** A photo of digit `i` (or of blank paper): the digit's longer side 40-60% of the frame's height. */
async function photo(rand: () => number, i: number | undefined, w: number, h: number) {
  const layout = photoLayout(rand, w, h);
  let ink: Float32Array | undefined;
  if (i !== undefined) {
    const { inner } = layout;
    const side = Math.min(uniform(rand, 0.4, 0.6) * h, inner.x1 - inner.x0, inner.y1 - inner.y0);
    const cx = place(rand, inner.x0, inner.x1, side, w / 10);
    const cy = place(rand, inner.y0, inner.y1, side, h / 10);
    ink = penDigit(i, w, h, side, cx, cy, uniform(rand, 6, 15) * (w / 1600));
  }
  const body = await photoJpeg(rand, w, h, layout, ink);
  return { body, variant: `desk on ${layout.sides} side${layout.sides > 1 ? 's' : ''}` };
}

interface Picture {
  body: Buffer;
  type: string;
  /** The digit, or null for "no digit". */
  truth: number | null;
  /** How this one was made, where a kind has more than one way. */
  variant?: string;
}

/** Picture `index` of `kind`, made from test digit `--first` + `index`. */
async function makePicture(kind: Kind, index: number): Promise<Picture> {
  const i = FIRST + index;
  const rand = rngFor(KINDS.indexOf(kind), i);
  const truth = BLANK_KINDS.includes(kind) ? null : test.labels[i]!;
  const png = (body: Buffer, variant?: string): Picture => ({ body, type: 'image/png', truth, variant });
  switch (kind) {
    case 'mnist': {
      const gray = Uint8Array.from(digitPixels(i), (v) => 255 - v);
      return png(
        await sharp(gray, { raw: { width: 28, height: 28, channels: 1 } })
          .png()
          .toBuffer(),
      );
    }
    case 'thin-pen':
    case 'marker': {
      const side = uniform(rand, 340, 440);
      const ink = penDigit(
        i,
        600,
        600,
        side,
        place(rand, 0, 600, side, 50),
        place(rand, 0, 600, side, 50),
        kind === 'thin-pen' ? uniform(rand, 1.6, 2.4) : uniform(rand, 8, 10),
      );
      const transparent = rand() < 0.5;
      return png(await canvasPng(ink, 600, 600, 0, transparent), transparent ? 'transparent' : 'opaque white');
    }
    case 'photo':
      return { ...(await photo(rand, i, 1600, 1200)), type: 'image/jpeg', truth };
    case 'white-on-transparent': {
      const side = uniform(rand, 170, 220);
      const ink = penDigit(
        i,
        280,
        280,
        side,
        place(rand, 0, 280, side, 20),
        place(rand, 0, 280, side, 20),
        uniform(rand, 7, 10),
      );
      return png(await canvasPng(ink, 280, 280, 255, true));
    }
    case 'small-off-centre': {
      const side = uniform(rand, 40, 60);
      const cx = uniform(rand, side / 2 + 2, 398 - side / 2);
      const cy = uniform(rand, side / 2 + 2, 398 - side / 2);
      const ink = penDigit(i, 400, 400, side, cx, cy, uniform(rand, 1.5, 2.5));
      return png(await canvasPng(ink, 400, 400, 0, false));
    }
    case 'blank': {
      const [w, h] = [integer(rand, 200, 1000), integer(rand, 200, 1000)];
      const channels = [1, 3, 4][integer(rand, 0, 2)] as 1 | 3 | 4;
      const body = await sharp(new Uint8Array(w * h * channels).fill(255), { raw: { width: w, height: h, channels } })
        .png()
        .toBuffer();
      return png(body, `white ${channels === 1 ? 'grey' : channels === 3 ? 'RGB' : 'RGBA'}`);
    }
    case 'noisy-blank': {
      if (i % 2 === 1) {
        const { body, variant } = await photo(rand, undefined, 1600, 1200);
        return { body, type: 'image/jpeg', truth, variant: `paper photo (${variant})` };
      }
      const [w, h] = [integer(rand, 200, 1000), integer(rand, 200, 1000)];
      const paper = integer(rand, 228, 252);
      const gray = new Uint8Array(w * h);
      for (let p = 0; p < gray.length; p++) gray[p] = paper + Math.floor(rand() * 7) - 3;
      return png(
        await sharp(gray, { raw: { width: w, height: h, channels: 1 } })
          .png()
          .toBuffer(),
        'paper +-3 levels',
      );
    }
  }
}

// `--dump <dir>`: write the first --count pictures of each kind there to look at, and stop.
if (args.dump) {
  await mkdir(args.dump, { recursive: true });
  for (const kind of kinds) {
    for (let i = 0; i < (BLANK_KINDS.includes(kind) ? BLANKS : COUNT); i++) {
      const picture = await makePicture(kind, i);
      const name = `${kind}-${i}-${picture.truth ?? 'none'}.${picture.type === 'image/jpeg' ? 'jpg' : 'png'}`;
      await writeFile(join(args.dump, name), picture.body);
    }
  }
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------------------
// The server: the one at --url, or `cnnx serve` from this checkout on a free port.

let server: ServeProcess | undefined;
let base = args.url?.replace(/\/$/, '');
let serverSource = `the server at ${base}`;
if (!base) {
  server = await startServe(['--model', 'models', '--port', '0', '--ep', 'cpu', '--no-watch']);
  base = server.base;
  let commit = '?';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin'], { encoding: 'utf8' }).trim()) {
      commit += ', with uncommitted changes in src/ or bin/: the server runs dist/, `npm run build` first';
    }
  } catch {
    // not a git checkout
  }
  serverSource = `\`cnnx serve --model models --ep cpu\` started by the bench from this checkout (${commit})`;
}

interface Answer {
  status: number;
  json?: Record<string, unknown>;
  /** Client-side failure (connection refused, timeout): no HTTP status. */
  failure?: string;
  ms: number;
}

async function request(path: string, body?: Buffer, type?: string): Promise<Answer> {
  const started = performance.now();
  try {
    const response = await fetch(`${base}${path}`, {
      method: body ? 'POST' : 'GET',
      headers: type ? { 'content-type': type } : {},
      body: body ? new Uint8Array(body) : undefined,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await response.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { error: text.slice(0, 200) };
    }
    return { status: response.status, json, ms: performance.now() - started };
  } catch (error) {
    return { status: 0, failure: (error as Error).message, ms: performance.now() - started };
  }
}

const v2 = (await request('/v2')).json as { name?: string; version?: string; models?: string[] };
let models = args.models?.split(',');
if (!models) {
  models = [];
  for (const name of v2.models ?? []) {
    const meta = (await request(`/v2/models/${name}`)).json as { parameters?: { dataset?: string } };
    if (meta.parameters?.dataset === 'mnist') models.push(name);
  }
}
if (models.length === 0) throw new Error(`no MNIST model at ${base} (GET /v2 lists ${v2.models?.join(', ')})`);

// ---------------------------------------------------------------------------------------------------------------
// Accuracy: every picture of every kind to every model.

interface Tally {
  n: number;
  correct: number;
  wrong: number;
  noDigit: number;
  /** 4xx answers other than "no digit", by status and code. */
  otherClientErrors: Record<string, number>;
  serverErrors: number;
  failures: number;
  /** What was answered instead of the truth: a digit, or `no digit`. */
  wrongAnswers: Record<string, number>;
  /** top[0].probability and whether the answer was right, for each 200 answer (the reject option). */
  confidences: { p: number; ok: boolean }[];
  readDigits?: { n: number; empty: number; texts: Record<string, number>; serverErrors: number; other: number };
  /** A few 5xx answers (classify and read-digits), as the server gave them. */
  serverErrorSamples: string[];
  byVariant: Record<string, { n: number; right: number }>;
  ms: number[];
}
const newTally = (): Tally => ({
  n: 0,
  correct: 0,
  wrong: 0,
  noDigit: 0,
  otherClientErrors: {},
  serverErrors: 0,
  failures: 0,
  wrongAnswers: {},
  confidences: [],
  serverErrorSamples: [],
  byVariant: {},
  ms: [],
});
const bump = (record: Record<string, number>, key: string) => (record[key] = (record[key] ?? 0) + 1);
const tallies = new Map<string, Tally>(); // `${model} ${kind}`
const tallyOf = (model: string, kind: Kind) => {
  const key = `${model} ${kind}`;
  if (!tallies.has(key)) tallies.set(key, newTally());
  return tallies.get(key)!;
};

function record(tally: Tally, picture: Picture, answer: Answer): void {
  tally.n++;
  tally.ms.push(answer.ms);
  let right = false;
  const code = answer.json?.code;
  if (answer.status === 0) {
    tally.failures++;
  } else if (answer.status >= 500) {
    tally.serverErrors++;
    if (tally.serverErrorSamples.length < 3)
      tally.serverErrorSamples.push(`${answer.status} ${JSON.stringify(answer.json)}`);
  } else if (answer.status === 422 && code === 'NOTHING_TO_CLASSIFY') {
    tally.noDigit++;
    right = picture.truth === null;
    if (!right) bump(tally.wrongAnswers, 'no digit');
  } else if (answer.status === 200) {
    const label = answer.json!.label as number;
    const top = answer.json!.top as { probability: number }[] | undefined;
    right = label === picture.truth;
    if (!right) bump(tally.wrongAnswers, String(answer.json!.class ?? label));
    if (picture.truth !== null) tally.confidences.push({ p: top?.[0]?.probability ?? 0, ok: right });
  } else {
    bump(tally.otherClientErrors, `${answer.status} ${typeof code === 'string' ? code : ''}`.trim());
  }
  if (right) tally.correct++;
  else if (answer.status === 200 || (answer.status === 422 && code === 'NOTHING_TO_CLASSIFY')) tally.wrong++;
  if (picture.variant) {
    const v = (tally.byVariant[picture.variant] ??= { n: 0, right: 0 });
    v.n++;
    if (right) v.right++;
  }
}

function recordReadDigits(tally: Tally, answer: Answer): void {
  const r = (tally.readDigits ??= { n: 0, empty: 0, texts: {}, serverErrors: 0, other: 0 });
  if (answer.status >= 500 && tally.serverErrorSamples.length < 3) {
    tally.serverErrorSamples.push(`read-digits: ${answer.status} ${JSON.stringify(answer.json)}`);
  }
  r.n++;
  if (answer.status === 200 && typeof answer.json?.text === 'string') {
    if (answer.json.text === '') r.empty++;
    else bump(r.texts, answer.json.text);
  } else if (answer.status >= 500) {
    r.serverErrors++;
  } else {
    r.other++;
  }
}

const loads: number[][] = [loadavg()];
const loadTimer = setInterval(() => loads.push(loadavg()), 10_000);
const started = performance.now();
const kindSeconds: Partial<Record<Kind, number>> = {};
const generationMs: Partial<Record<Kind, number>> = {};
console.error(`bench: ${base}, models ${models.join(', ')}, ${COUNT} digits and ${BLANKS} blank pages per kind`);

for (const kind of kinds) {
  const kindStarted = performance.now();
  const total = BLANK_KINDS.includes(kind) ? BLANKS : COUNT;
  let next = 0;
  let generation = 0;
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const made = performance.now();
      const picture = await makePicture(kind, i);
      generation += performance.now() - made;
      for (const model of models) {
        const tally = tallyOf(model, kind);
        record(tally, picture, await request(`/v1/models/${model}/classify`, picture.body, picture.type));
        if (picture.truth === null) {
          recordReadDigits(tally, await request(`/v1/models/${model}/read-digits`, picture.body, picture.type));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  kindSeconds[kind] = (performance.now() - kindStarted) / 1000;
  generationMs[kind] = generation / total;
  const summary = models
    .map((m) => {
      const t = tallyOf(m, kind);
      return `${m} ${pct(t.correct, t.n)}`;
    })
    .join(', ');
  console.error(`  ${kind}: ${total} pictures in ${kindSeconds[kind]!.toFixed(1)} s; right: ${summary}`);
}
const accuracySeconds = (performance.now() - started) / 1000;

// ---------------------------------------------------------------------------------------------------------------
// The reject option: refuse answers whose top probability is below a threshold; "no digit" is always a refusal.

interface RejectPoint {
  target: number;
  rejected: number;
  threshold: number;
  errorAccepted: number;
}

function rejectCurve(confidences: { p: number; ok: boolean }[], refused: number) {
  const sorted = [...confidences].sort((a, b) => a.p - b.p);
  const total = sorted.length + refused;
  // wrongFrom[j]: wrong answers among sorted[j..].
  const wrongFrom = new Int32Array(sorted.length + 1);
  for (let j = sorted.length - 1; j >= 0; j--) wrongFrom[j] = wrongFrom[j + 1]! + (sorted[j]!.ok ? 0 : 1);
  const at = (j: number) => ({
    rejected: (refused + j) / total,
    threshold: sorted[j]?.p ?? 1,
    errorAccepted: j < sorted.length ? wrongFrom[j]! / (sorted.length - j) : 0,
  });
  // Cut only between different probabilities: a threshold accepts all of one value or none.
  const cuts = [0];
  for (let j = 1; j <= sorted.length; j++) if (j === sorted.length || sorted[j]!.p > sorted[j - 1]!.p) cuts.push(j);
  const points: RejectPoint[] = REJECTION_RATES.map((target) => {
    const j = cuts.find((c) => refused + c >= Math.ceil(target * total - 1e-9)) ?? sorted.length;
    return { target, ...at(j) };
  });
  const grid = Array.from({ length: 100 }, (_, k) => {
    const threshold = k / 100;
    const j = sorted.findIndex((s) => s.p >= threshold);
    return { ...at(j === -1 ? sorted.length : j), threshold };
  });
  const meets = cuts.find((c) => at(c).errorAccepted <= TARGET_ERROR);
  const forTarget = meets === undefined ? undefined : at(meets);
  return { total, points, grid, forTarget, errorWithoutReject: at(0).errorAccepted };
}

const rejection = models.map((model) => {
  const pool = (list: readonly Kind[]) => {
    const ts = list.filter((k) => kinds.includes(k)).map((k) => tallyOf(model, k));
    return rejectCurve(
      ts.flatMap((t) => t.confidences),
      ts.reduce((sum, t) => sum + t.noDigit, 0),
    );
  };
  return { model, mnist: pool(['mnist']), hard: pool(HARD_KINDS) };
});

// ---------------------------------------------------------------------------------------------------------------
// Latency: 4000x3000 photos, one at a time; then the liveness probe while 8 are classified at once.

interface Latency {
  model: string;
  photoBytes: number[];
  classify: { p50: number; p99: number; max: number; statuses: Record<string, number> };
  healthIdle: { p50: number; p99: number; max: number; polls: number };
  healthUnderLoad: { p50: number; p99: number; max: number; polls: number; failures: number };
  classifyUnderLoad: { p50: number; max: number; statuses: Record<string, number> };
}

const percentile = (values: number[], q: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls /v2/health/live every 10 ms until `stop` resolves; latency of each poll. */
async function pollHealth(stop: Promise<unknown>) {
  let done = false;
  void stop.finally(() => (done = true));
  const ms: number[] = [];
  let failures = 0;
  while (!done) {
    const answer = await request('/v2/health/live');
    if (answer.status === 200) ms.push(answer.ms);
    else failures++;
    await sleep(Math.max(0, 10 - answer.ms));
  }
  return { ms, failures };
}

let latency: Latency | undefined;
if (!args['no-latency']) {
  const model = models.includes('lenet5-relu-mnist') ? 'lenet5-relu-mnist' : models[0]!;
  console.error(`latency: 4000x3000 JPEG photos on ${model}`);
  const photos = await Promise.all([0, 1, 2].map(async (i) => (await photo(rngFor(100, i), i, 4000, 3000)).body));
  const classify = (k: number) => request(`/v1/models/${model}/classify`, photos[k % photos.length], 'image/jpeg');
  await classify(0);
  await classify(1);
  const sequential: Answer[] = [];
  for (let k = 0; k < 20; k++) sequential.push(await classify(k));
  const idle = await pollHealth(sleep(1000));
  const health: number[] = [];
  const underLoad: Answer[] = [];
  let healthFailures = 0;
  for (let round = 0; round < 3; round++) {
    const batch = Promise.all(Array.from({ length: 8 }, (_, k) => classify(k)));
    const polled = await pollHealth(batch);
    underLoad.push(...(await batch));
    health.push(...polled.ms);
    healthFailures += polled.failures;
  }
  const statuses = (answers: Answer[]) => {
    const out: Record<string, number> = {};
    for (const a of answers) bump(out, String(a.status || a.failure));
    return out;
  };
  const stats = (ms: number[]) => ({ p50: percentile(ms, 0.5), p99: percentile(ms, 0.99), max: Math.max(...ms) });
  latency = {
    model,
    photoBytes: photos.map((p) => p.length),
    classify: { ...stats(sequential.map((a) => a.ms)), statuses: statuses(sequential) },
    healthIdle: { ...stats(idle.ms), polls: idle.ms.length },
    healthUnderLoad: { ...stats(health), polls: health.length, failures: healthFailures },
    classifyUnderLoad: {
      p50: percentile(
        underLoad.map((a) => a.ms),
        0.5,
      ),
      max: Math.max(...underLoad.map((a) => a.ms)),
      statuses: statuses(underLoad),
    },
  };
}
clearInterval(loadTimer);
loads.push(loadavg());
const totalSeconds = (performance.now() - started) / 1000;
if (server) {
  await server.stop();
}

// ---------------------------------------------------------------------------------------------------------------
// Report.

function pct(part: number, whole: number, digits = 1): string {
  return whole === 0 ? '—' : `${((100 * part) / whole).toFixed(digits)}%`;
}
const ms = (value: number) =>
  Number.isFinite(value) ? `${value < 10 ? value.toFixed(1) : Math.round(value)} ms` : '—';
const commonest = (record: Record<string, number>, n = 3) =>
  Object.entries(record)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([answer, count]) => `${answer} ×${count}`)
    .join(', ');
/** A probability with enough decimals to tell it from 1 (0.9999997, not 1.000000). */
const prob = (p: number) => (p >= 1 ? '1' : p.toFixed(Math.min(12, Math.max(2, Math.ceil(-Math.log10(1 - p)) + 1))));
const table = (header: string[], rows: string[][]) =>
  [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
const cpu = cpus();
const loadText = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
const maxLoad = Math.max(...loads.map((l) => l[0]!));

/** Share of "" answers, 5xx and other failures, and the commonest texts read instead (long ones cut). */
function readDigitsCell(r: NonNullable<Tally['readDigits']>): string {
  const texts: Record<string, number> = {};
  for (const [text, n] of Object.entries(r.texts)) {
    const key = text.length > 10 ? `${text.slice(0, 6)}… (${text.length})` : text;
    texts[key] = (texts[key] ?? 0) + n;
  }
  const read = commonest(texts, 2);
  return (
    pct(r.empty, r.n) +
    (r.serverErrors ? `, ${r.serverErrors} 5xx` : '') +
    (r.other ? `, ${r.other} other` : '') +
    (read ? `; read ${read.replaceAll('|', '\\|')}` : '')
  );
}

const out: string[] = [];
out.push(`# Handwriting benchmark (\`npx tsx bench/handwriting.ts\`)`);
out.push('');
out.push(
  `${new Date().toISOString()}; ${cpu[0]?.model ?? 'unknown CPU'} (${cpu.length} cores); Node.js ${process.version}. ` +
    `Server: ${serverSource}, ${v2.name ?? '?'} ${v2.version ?? '?'}. Load average (1, 5, 15 min) at the start ` +
    `${loadText(loads[0]!)}, at the end ${loadText(loads.at(-1)!)}, highest 1-min ${maxLoad.toFixed(2)} ` +
    `(server, bench and any other work share the machine). ${COUNT} MNIST test digits per digit kind (from index ${FIRST}), ` +
    `${BLANKS} pages per blank kind, seed ${SEED}, ${CONCURRENCY} requests in flight. ` +
    `Run took ${totalSeconds.toFixed(0)} s ` +
    `(accuracy ${accuracySeconds.toFixed(0)} s).`,
);
out.push('');
out.push(
  'Kinds: `mnist` the 28x28 test digit as a PNG (control); `thin-pen` its skeleton drawn with a 3-5 px pen on a ' +
    '600x600 RGBA canvas (opaque white or transparent); `marker` the same with a 16-20 px marker; `photo` dark ink ' +
    'on paper, uneven light, a desk on 1-2 sides, noise, 1600x1200 JPEG q85; `white-on-transparent` white strokes ' +
    'on a transparent 280x280 canvas; `small-off-centre` the digit at 10-15% of a 400x400 canvas, anywhere; ' +
    '`blank` white pages of 200-1000 px; `noisy-blank` paper with +-3 grey levels of noise, and paper photos.',
);
out.push('');
out.push('## Accuracy (`POST /v1/models/{name}/classify`)');
out.push('');
out.push(
  'right: the digit read right (blank kinds: answered "no digit"). no digit: 422 `NOTHING_TO_CLASSIFY`. ' +
    'Targets: >= 97% right on every digit kind, 100% of blank pages read as no digit, no 5xx.',
);
out.push('');
const accuracyRows: string[][] = [];
for (const model of models) {
  for (const kind of kinds) {
    const t = tallyOf(model, kind);
    const blank = BLANK_KINDS.includes(kind);
    const target = blank ? t.correct === t.n : t.correct / t.n >= 0.97;
    const other = commonest(t.otherClientErrors);
    const r = t.readDigits;
    accuracyRows.push([
      model,
      kind,
      String(t.n),
      `**${pct(t.correct, t.n)}**${target && t.serverErrors === 0 ? '' : ' ✗'}`,
      pct(t.noDigit, t.n),
      String(t.serverErrors + t.failures) + (t.failures ? ` (${t.failures} no answer)` : ''),
      other || '—',
      commonest(t.wrongAnswers) || '—',
      r ? readDigitsCell(r) : '',
      ms(percentile(t.ms, 0.5)),
    ]);
  }
}
out.push(
  table(
    [
      'model',
      'kind',
      'n',
      'right',
      'no digit',
      '5xx',
      'other 4xx',
      'commonest wrong answers',
      'read-digits `""`',
      'classify p50',
    ],
    accuracyRows,
  ),
);
const variantLines: string[] = [];
for (const model of models) {
  for (const kind of kinds) {
    const variants = Object.entries(tallyOf(model, kind).byVariant).sort(([a], [b]) => a.localeCompare(b));
    if (variants.length > 1) {
      variantLines.push(
        `- ${model} ${kind}: ` + variants.map(([name, v]) => `${name} ${pct(v.right, v.n)} of ${v.n}`).join(', '),
      );
    }
  }
}
if (variantLines.length) out.push('', 'Right, by how the picture was made:', '', ...variantLines);
const samples = [...tallies.entries()].filter(([, t]) => t.serverErrorSamples.length > 0);
if (samples.length) {
  out.push('', '5xx answers (first of each):', '');
  for (const [key, t] of samples) out.push(`- ${key}: ${t.serverErrorSamples[0]}`);
}
out.push('');
out.push(
  `Picture generation in the bench, ms per picture: ` +
    kinds.map((k) => `${k} ${generationMs[k]!.toFixed(1)}`).join(', ') +
    `. Seconds per kind (all models): ` +
    kinds.map((k) => `${k} ${kindSeconds[k]!.toFixed(0)}`).join(', ') +
    '.',
);

out.push('');
out.push('## Reject option (`top[0].probability` below a threshold, or "no digit", is a refusal)');
out.push('');
out.push(
  `Error among accepted digits at each rejection rate (threshold: the lowest top probability accepted). ` +
    `hard: ${HARD_KINDS.filter((k) => kinds.includes(k)).join(', ')} pooled.`,
);
out.push('');
const rejectRows: string[][] = [];
for (const r of rejection) {
  for (const [name, curve] of [
    ['mnist', r.mnist],
    ['hard', r.hard],
  ] as const) {
    if (curve.total === 0) continue;
    rejectRows.push([
      r.model,
      name,
      ...curve.points.map(
        (p) =>
          `${pct(p.errorAccepted * 1e4, 1e4, 2)}` +
          (Math.abs(p.rejected - p.target) > 0.002 ? ` (rej. ${pct(p.rejected * 1e4, 1e4)})` : '') +
          ` @${prob(p.threshold)}`,
      ),
      curve.forTarget
        ? `${prob(curve.forTarget.threshold)}, rejects ${pct(curve.forTarget.rejected * 1e4, 1e4, 1)}`
        : 'none',
    ]);
  }
}
out.push(
  table(
    [
      'model',
      'kinds',
      ...REJECTION_RATES.map((r) => `reject ${r * 100}%`),
      `threshold for error <= ${TARGET_ERROR * 100}%`,
    ],
    rejectRows,
  ),
);

if (latency) {
  const l = latency;
  out.push('');
  out.push(
    `## Latency (${l.model}, 4000x3000 JPEG photos of ` +
      `${l.photoBytes.map((b) => (b / 1e6).toFixed(1)).join(', ')} MB)`,
  );
  out.push('');
  out.push(
    table(
      ['what', 'p50', 'p99', 'max', 'answers', 'target'],
      [
        [
          'classify, 20 sequential requests',
          ms(l.classify.p50),
          ms(l.classify.p99),
          ms(l.classify.max),
          commonest(l.classify.statuses),
          `p50 <= 150 ms${l.classify.p50 <= 150 ? '' : ' ✗'}`,
        ],
        [
          `/v2/health/live, idle (${l.healthIdle.polls} polls)`,
          ms(l.healthIdle.p50),
          ms(l.healthIdle.p99),
          ms(l.healthIdle.max),
          '',
          '',
        ],
        [
          '/v2/health/live every 10 ms while 8 photos are classified at once, 3 times ' +
            `(${l.healthUnderLoad.polls} polls)`,
          ms(l.healthUnderLoad.p50),
          ms(l.healthUnderLoad.p99),
          ms(l.healthUnderLoad.max),
          l.healthUnderLoad.failures ? `${l.healthUnderLoad.failures} failed` : 'all 200',
          `p99 < 50 ms${l.healthUnderLoad.p99 < 50 ? '' : ' ✗'}`,
        ],
        [
          'classify, those 8 at once',
          ms(l.classifyUnderLoad.p50),
          '',
          ms(l.classifyUnderLoad.max),
          commonest(l.classifyUnderLoad.statuses),
          '',
        ],
      ],
    ),
  );
}

// The targets, one line each.
const digitKinds = kinds.filter((k) => !BLANK_KINDS.includes(k));
const blankKinds = kinds.filter((k) => BLANK_KINDS.includes(k));
const verdict = (misses: string[]) => (misses.length === 0 ? 'met' : `**not met**: ${misses.join('; ')}`);
const perModel = (miss: (model: string) => string[]) =>
  verdict(
    models.flatMap((model) => {
      const misses = miss(model);
      return misses.length ? [`${model} ${misses.join(', ')}`] : [];
    }),
  );
const all = [...tallies.values()];
const classify5xx = all.reduce((sum, t) => sum + t.serverErrors, 0);
const read5xx = all.reduce((sum, t) => sum + (t.readDigits?.serverErrors ?? 0), 0);
const noAnswer = all.reduce((sum, t) => sum + t.failures, 0);
out.push('', '## Targets', '');
out.push(
  `- >= 97% right on every digit kind: ` +
    perModel((model) =>
      digitKinds
        .map((k) => [k, tallyOf(model, k)] as const)
        .filter(([, t]) => t.correct < 0.97 * t.n)
        .map(([k, t]) => `${k} ${pct(t.correct, t.n)}`),
    ),
  `- 100% of blank pages answered "no digit" by classify: ` +
    perModel((model) =>
      blankKinds
        .map((k) => [k, tallyOf(model, k)] as const)
        .filter(([, t]) => t.correct < t.n)
        .map(([k, t]) => `${k} ${pct(t.correct, t.n)}`),
    ),
  `- 100% of blank pages read as "" by read-digits: ` +
    perModel((model) =>
      blankKinds
        .map((k) => [k, tallyOf(model, k).readDigits] as const)
        .filter(([, r]) => r && r.empty < r.n)
        .map(([k, r]) => `${k} ${pct(r!.empty, r!.n)}`),
    ),
  `- no 5xx: ` +
    verdict([
      ...(classify5xx ? [`${classify5xx} from classify`] : []),
      ...(read5xx ? [`${read5xx} from read-digits`] : []),
      ...(noAnswer ? [`and ${noAnswer} requests without an answer`] : []),
    ]),
);
if (latency) {
  out.push(
    `- classify of a 4000x3000 photo p50 <= 150 ms: ` +
      verdict(latency.classify.p50 <= 150 ? [] : [ms(latency.classify.p50)]),
    `- /v2/health/live p99 < 50 ms while 8 photos are classified: ` +
      verdict(latency.healthUnderLoad.p99 < 50 ? [] : [`${ms(latency.healthUnderLoad.p99)}`]),
  );
}
console.log(out.join('\n'));

if (args.json) {
  const jsonTallies = Object.fromEntries(
    [...tallies.entries()].map(([key, t]) => {
      const { confidences, ms: times, ...rest } = t;
      return [key, { ...rest, accepted: confidences.length, p50_ms: percentile(times, 0.5) }];
    }),
  );
  await writeFile(
    args.json,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        cpu: cpu[0]?.model,
        cores: cpu.length,
        loadavg: loads,
        server: { url: base, source: serverSource, name: v2.name, version: v2.version },
        count: COUNT,
        blanks: BLANKS,
        seed: SEED,
        kinds,
        models,
        seconds: { total: totalSeconds, accuracy: accuracySeconds, perKind: kindSeconds },
        generation_ms_per_picture: generationMs,
        tallies: jsonTallies,
        rejection,
        latency,
      },
      null,
      2,
    ),
  );
}
