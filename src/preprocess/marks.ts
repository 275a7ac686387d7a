/**
 * The marks of an ink map: its connected groups of ink (8-connected, ink above half of full level), each with its
 * bounding box, area and stroke width, sorted into what may be writing and what is not: specks, runs along the
 * picture's edge (a desk or a shadow at the border of a photo), and blobs (a filled shape, a dot, a bar: thicker
 * than any MNIST digit's strokes for its size). Labelling uses an explicit typed-array stack, so any picture, even
 * one of a million dots, takes linear time and constant stack.
 */
import type { GrayImage } from './gray-image.js';

/** Ink pixels are those above half of full ink, as MNIST's digits are binarised at 127 for their statistics. */
export const INK_LEVEL = 127.5;

/**
 * Marks shorter than this fraction of the picture's long side are specks whatever the other marks are (noise, a
 * grid of dots): a digit that small (15 px of a 512 px picture) is not read.
 */
const MIN_MARK_FRACTION = 0.03;

/**
 * A mark is a blob when its stroke width is more than this fraction of its box's long side. Measured on the 60,000
 * MNIST training digits (binarised at 127): the fraction has median 0.098, 99.9th percentile 0.228, maximum 0.332;
 * a filled square or disc has 0.5.
 */
export const MAX_STROKE_FRACTION = 0.3;

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Mark {
  box: Box;
  /** Pixel indices (y * width + x) of the mark's ink. */
  pixels: Int32Array;
  /** Ink pixels on the picture's outermost rows and columns. */
  edgePixels: number;
}

/** Why a mark is not writing, or `writing`. */
export type MarkKind = 'writing' | 'speck' | 'edge' | 'blob' | 'line';

/**
 * Stroke width of a set of ink pixels, in pixels: twice the area over the outline length (4-neighbour ink/background
 * boundaries). A stroke of width w and length L has area wL and outline about 2L.
 */
export function strokeWidth(isInk: (x: number, y: number) => boolean, box: Box): number {
  let area = 0;
  let outline = 0;
  for (let y = box.y; y < box.y + box.height; y++)
    for (let x = box.x; x < box.x + box.width; x++) {
      if (!isInk(x, y)) continue;
      area++;
      if (!isInk(x + 1, y)) outline++;
      if (!isInk(x - 1, y)) outline++;
      if (!isInk(x, y + 1)) outline++;
      if (!isInk(x, y - 1)) outline++;
    }
  return outline === 0 ? 0 : (2 * area) / outline;
}

/** Connected marks of `ink`, in the order of their first pixel (row-major). */
export function findMarks(ink: GrayImage): Mark[] {
  const { width, height, data } = ink;
  const n = width * height;
  const label = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  const order = new Int32Array(n);
  let ordered = 0;
  const marks: Mark[] = [];
  for (let start = 0; start < n; start++) {
    if (data[start]! <= INK_LEVEL || label[start] !== -1) continue;
    const id = marks.length;
    const first = ordered;
    let top = 0;
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    let edgePixels = 0;
    label[start] = id;
    stack[top++] = start;
    while (top > 0) {
      const p = stack[--top]!;
      order[ordered++] = p;
      const x = p % width;
      const y = (p - x) / width;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) edgePixels++;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (label[q] === -1 && data[q]! > INK_LEVEL) {
            label[q] = id;
            stack[top++] = q;
          }
        }
      }
    }
    marks.push({
      box: { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 },
      pixels: order.slice(first, ordered),
      edgePixels,
    });
  }
  return marks;
}

/** The box around all of `marks`. */
export function unionBox(marks: readonly Mark[]): Box {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const { box } of marks) {
    x0 = Math.min(x0, box.x);
    y0 = Math.min(y0, box.y);
    x1 = Math.max(x1, box.x + box.width - 1);
    y1 = Math.max(y1, box.y + box.height - 1);
  }
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** Stroke width of `marks` together over their box's long side (see MAX_STROKE_FRACTION). */
export function strokeFraction(marks: readonly Mark[], imageWidth: number): number {
  const box = unionBox(marks);
  const mask = new Uint8Array(box.width * box.height);
  for (const mark of marks)
    for (const p of mark.pixels) mask[(Math.floor(p / imageWidth) - box.y) * box.width + (p % imageWidth) - box.x] = 1;
  const isInk = (x: number, y: number) =>
    x >= box.x && y >= box.y && x < box.x + box.width && y < box.y + box.height
      ? mask[(y - box.y) * box.width + x - box.x] === 1
      : false;
  return strokeWidth(isInk, box) / Math.max(box.width, box.height);
}

/**
 * Sorts marks: edge runs (more ink on the picture's border than a quarter of its mean side: a digit touches the
 * edge at a point, a surround or shadow runs along it), blobs (MAX_STROKE_FRACTION), then specks among the rest
 * (under 4 pixels or 4% of the largest mark's area, or shorter than 15% of the longest mark's long side: a 5's flat
 * top bar is long, a dot is short, and under MIN_MARK_FRACTION of the picture), and lines (flat, more than four
 * times wider than tall and wider than 1.5 times the tallest mark: an underline, a ruling, a form's frame, which no
 * digit is); what is left is writing.
 */
export function classifyMarks(marks: readonly Mark[], ink: GrayImage): MarkKind[] {
  const edgeLimit = (ink.width + ink.height) / 8;
  const kinds: MarkKind[] = marks.map((mark) => {
    if (mark.edgePixels > edgeLimit) return 'edge';
    if (mark.pixels.length >= 4 && strokeFraction([mark], ink.width) > MAX_STROKE_FRACTION) return 'blob';
    return 'writing';
  });
  let tallest = 0;
  marks.forEach((mark, i) => {
    if (kinds[i] === 'writing') tallest = Math.max(tallest, mark.box.height);
  });
  marks.forEach(({ box }, i) => {
    if (kinds[i] === 'writing' && box.width > 4 * box.height && box.width > 1.5 * tallest) kinds[i] = 'line';
  });
  let largest = 0;
  let longest = 0;
  marks.forEach((mark, i) => {
    if (kinds[i] !== 'writing') return;
    largest = Math.max(largest, mark.pixels.length);
    longest = Math.max(longest, mark.box.width, mark.box.height);
  });
  const minimum = MIN_MARK_FRACTION * Math.max(ink.width, ink.height);
  return marks.map((mark, i) => {
    if (kinds[i] !== 'writing') return kinds[i]!;
    const small = mark.pixels.length < Math.max(4, largest * 0.04);
    const short = Math.max(mark.box.width, mark.box.height) < Math.max(longest * 0.15, minimum);
    return small || short ? 'speck' : 'writing';
  });
}
