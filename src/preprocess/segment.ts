/**
 * Segmentation of a handwritten digit string (a cheque amount, an ATM deposit slip) into single digits, each
 * prepared with MNIST's procedure. The writing marks of the ink map (see marks.ts: specks, edge runs and blobs are
 * left out and counted); pieces of one digit that overlap horizontally (a 5's detached top bar) merged; touching
 * digits split at the thinnest column when a mark is much wider than the writing is tall; a piece that is then a
 * blob (a bar cut into squares) is left out too.
 */
import { extractInk, type PixelImage } from './ink.js';
import { classifyMarks, findMarks, MAX_STROKE_FRACTION, strokeFraction, type Box, type Mark } from './marks.js';
import { fitDigit, inkOfMarks } from './procedures.js';

interface DigitSegment {
  /** Where the digit is, in the working image's pixels (the picture scaled to a long side of at most 512). */
  box: Box;
  /** [28 * 28] in [0, 1], ink bright. */
  input: Float32Array;
}

export interface DigitReading {
  /** The digits, left to right. */
  digits: DigitSegment[];
  /** Marks that are not digits: specks, blobs, runs along the edge. */
  ignored: number;
}

function merge(a: Mark, b: Mark): Mark {
  const pixels = new Int32Array(a.pixels.length + b.pixels.length);
  pixels.set(a.pixels);
  pixels.set(b.pixels, a.pixels.length);
  const x0 = Math.min(a.box.x, b.box.x);
  const y0 = Math.min(a.box.y, b.box.y);
  const x1 = Math.max(a.box.x + a.box.width, b.box.x + b.box.width);
  const y1 = Math.max(a.box.y + a.box.height, b.box.y + b.box.height);
  return { box: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, pixels, edgePixels: a.edgePixels + b.edgePixels };
}

/** Splits a mark into `parts` at the columns with the least ink near the ideal cut positions. */
function split(mark: Mark, parts: number, imageWidth: number): Mark[] {
  const { x: x0, width: w } = mark.box;
  const columnInk = new Float64Array(w);
  for (const p of mark.pixels) columnInk[(p % imageWidth) - x0]! += 1;
  const cuts: number[] = [];
  for (let k = 1; k < parts; k++) {
    const ideal = Math.round((k * w) / parts);
    const radius = Math.max(1, Math.round(w / parts / 3));
    let best = ideal;
    for (let c = Math.max(1, ideal - radius); c <= Math.min(w - 1, ideal + radius); c++)
      if (columnInk[c]! < columnInk[best]!) best = c;
    cuts.push(x0 + best);
  }
  const bounds = [x0, ...cuts, x0 + w];
  const pieces: Mark[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const pixels = mark.pixels.filter((p) => p % imageWidth >= bounds[i]! && p % imageWidth < bounds[i + 1]!);
    if (pixels.length === 0) continue;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (const p of pixels) {
      const y = Math.floor(p / imageWidth);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
    const box = { x: bounds[i]!, y: y0, width: bounds[i + 1]! - bounds[i]!, height: y1 - y0 + 1 };
    pieces.push({ box, pixels, edgePixels: 0 });
  }
  return pieces;
}

/**
 * The digits written in a picture, left to right, each as a model input; none for a blank picture.
 * @throws RangeError when the pixel buffer does not match its size
 */
export function segmentDigits(image: PixelImage): DigitReading {
  const ink = extractInk(image, 'local');
  if (ink === undefined) return { digits: [], ignored: 0 };
  const marks = findMarks(ink);
  const kinds = classifyMarks(marks, ink);
  const writing = marks.filter((_, i) => kinds[i] === 'writing').sort((a, b) => a.box.x - b.box.x);
  let ignored = marks.length - writing.length;
  if (writing.length === 0) return { digits: [], ignored };
  // Pieces of one digit overlap horizontally by most of the narrower one.
  const merged: Mark[] = [];
  for (const mark of writing) {
    const last = merged.at(-1);
    if (last) {
      const overlap =
        Math.min(last.box.x + last.box.width, mark.box.x + mark.box.width) - Math.max(last.box.x, mark.box.x);
      if (overlap >= Math.min(last.box.width, mark.box.width) * 0.6) {
        merged[merged.length - 1] = merge(last, mark);
        continue;
      }
    }
    merged.push(mark);
  }
  // Touching digits: a mark much wider than the writing is tall holds several.
  let height = 0;
  for (const mark of merged) height = Math.max(height, mark.box.height);
  const pieces = merged.flatMap((mark) => {
    const parts = Math.round(mark.box.width / (height * 0.75));
    return mark.box.width > height * 1.15 && parts >= 2 ? split(mark, parts, ink.width) : [mark];
  });
  const digits: DigitSegment[] = [];
  for (const piece of pieces) {
    if (strokeFraction([piece], ink.width) > MAX_STROKE_FRACTION) {
      ignored++;
      continue;
    }
    digits.push({ box: piece.box, input: fitDigit(inkOfMarks(ink, [piece])) });
  }
  return { digits, ignored };
}
