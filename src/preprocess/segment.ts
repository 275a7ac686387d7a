/**
 * Segmentation of a handwritten digit string (a cheque amount, an ATM deposit slip) into single digits, each
 * prepared with MNIST's procedure. Connected components of the ink; specks ignored; pieces of one digit that
 * overlap horizontally (a 5's detached top bar) merged; touching digits split at the thinnest column when a
 * component is much wider than a digit is tall.
 */
import type { GrayImage } from './gray-image.js';
import { mnistFromInk, type Box } from './procedures.js';

export interface DigitSegment {
  box: Box;
  /** [28 * 28] in [0, 1], ink bright. */
  input: Float32Array;
}

const INK = 0.35 * 255;

interface Component {
  pixels: number[];
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

function components(ink: GrayImage): Component[] {
  const { width, height, data } = ink;
  const label = new Int32Array(width * height).fill(-1);
  const found: Component[] = [];
  const stack: number[] = [];
  for (let start = 0; start < data.length; start++) {
    if (data[start]! <= INK || label[start] !== -1) continue;
    const component: Component = { pixels: [], x0: width, y0: height, x1: -1, y1: -1 };
    label[start] = found.length;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop()!;
      component.pixels.push(p);
      const x = p % width;
      const y = (p - x) / width;
      component.x0 = Math.min(component.x0, x);
      component.x1 = Math.max(component.x1, x);
      component.y0 = Math.min(component.y0, y);
      component.y1 = Math.max(component.y1, y);
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const q = ny * width + nx;
          if (data[q]! > INK && label[q] === -1) {
            label[q] = found.length;
            stack.push(q);
          }
        }
    }
    found.push(component);
  }
  return found;
}

function merge(a: Component, b: Component): Component {
  return {
    pixels: a.pixels.concat(b.pixels),
    x0: Math.min(a.x0, b.x0),
    y0: Math.min(a.y0, b.y0),
    x1: Math.max(a.x1, b.x1),
    y1: Math.max(a.y1, b.y1),
  };
}

/** Splits a component into `parts` at the columns with the least ink near the ideal cut positions. */
function split(component: Component, parts: number, width: number): Component[] {
  const w = component.x1 - component.x0 + 1;
  const columnInk = new Float64Array(w);
  for (const p of component.pixels) columnInk[(p % width) - component.x0]! += 1;
  const cuts: number[] = [];
  for (let k = 1; k < parts; k++) {
    const ideal = Math.round((k * w) / parts);
    const radius = Math.max(1, Math.round(w / parts / 3));
    let best = ideal;
    for (let c = Math.max(1, ideal - radius); c <= Math.min(w - 1, ideal + radius); c++)
      if (columnInk[c]! < columnInk[best]!) best = c;
    cuts.push(component.x0 + best);
  }
  const bounds = [component.x0, ...cuts, component.x1 + 1];
  const pieces: Component[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const pixels = component.pixels.filter((p) => p % width >= bounds[i]! && p % width < bounds[i + 1]!);
    if (pixels.length === 0) continue;
    const ys = pixels.map((p) => Math.floor(p / width));
    pieces.push({ pixels, x0: bounds[i]!, x1: bounds[i + 1]! - 1, y0: Math.min(...ys), y1: Math.max(...ys) });
  }
  return pieces;
}

/** Digits of an ink-bright image (see `inkBright`), left to right. */
export function segmentDigits(ink: GrayImage): DigitSegment[] {
  let found = components(ink);
  if (found.length === 0) return [];
  const tallest = Math.max(...found.map((c) => c.y1 - c.y0 + 1));
  const largest = Math.max(...found.map((c) => c.pixels.length));
  // Specks: tiny next to the writing.
  found = found.filter((c) => c.pixels.length >= Math.max(4, largest * 0.04) && c.y1 - c.y0 + 1 >= tallest * 0.15);
  found.sort((a, b) => a.x0 - b.x0);
  // Pieces of one digit overlap horizontally by most of the narrower one.
  const merged: Component[] = [];
  for (const c of found) {
    const last = merged.at(-1);
    if (last) {
      const overlap = Math.min(last.x1, c.x1) - Math.max(last.x0, c.x0) + 1;
      const narrower = Math.min(last.x1 - last.x0 + 1, c.x1 - c.x0 + 1);
      if (overlap >= narrower * 0.6) {
        merged[merged.length - 1] = merge(last, c);
        continue;
      }
    }
    merged.push(c);
  }
  // Touching digits: a component much wider than the writing is tall holds several.
  const height = Math.max(...merged.map((c) => c.y1 - c.y0 + 1));
  const digits = merged.flatMap((c) => {
    const w = c.x1 - c.x0 + 1;
    const parts = Math.round(w / (height * 0.75));
    return w > height * 1.15 && parts >= 2 ? split(c, parts, ink.width) : [c];
  });
  return digits.map((c) => {
    const width = c.x1 - c.x0 + 1;
    const h = c.y1 - c.y0 + 1;
    // Only this digit's own ink (with its soft edge, one pixel around): a neighbour reaching into the box is left out.
    const data = new Float32Array(width * h);
    for (const p of c.pixels) {
      const x = p % ink.width;
      const y = (p - x) / ink.width;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const tx = x + dx - c.x0;
          const ty = y + dy - c.y0;
          if (tx >= 0 && ty >= 0 && tx < width && ty < h)
            data[ty * width + tx] = ink.data[(y + dy) * ink.width + x + dx]!;
        }
    }
    return { box: { x: c.x0, y: c.y0, width, height: h }, input: mnistFromInk({ width, height: h, data }) };
  });
}
