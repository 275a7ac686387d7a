/**
 * Straight rules taken out before the marks are read (findWriting): a line under the writing whose edges a scan cut
 * ragged, and a row of boxes with a digit touching one of its sides. Ink maps drawn pixel by pixel.
 */
import { describe, expect, it } from 'vitest';
import { findWriting } from '../../src/preprocess/marks.js';

function inkMap(width: number, height: number) {
  const data = new Float32Array(width * height);
  const set = (x: number, y: number) => {
    if (x >= 0 && y >= 0 && x < width && y < height) data[y * width + x] = 255;
  };
  const inked = (x: number, y: number) => data[y * width + x]! > 127;
  return { ink: { width, height, data }, set, inked };
}

describe('rules and boxes', () => {
  it('takes out a line with ragged edges under the digits, and keeps the strokes that stand on it', () => {
    const { ink, set, inked } = inkMap(300, 100);
    let seed = 1;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    for (let x = 10; x < 290; x++) {
      set(x, 70);
      set(x, 71);
      if (random() < 0.6) set(x, 69);
      if (random() < 0.6) set(x, 72);
    }
    const stems = [50, 100, 150, 200];
    for (const x of stems) for (let y = 30; y < 69; y++) for (let t = 0; t < 3; t++) set(x + t, y);
    const { marks, kinds } = findWriting(ink);
    expect(marks.map((mark, i) => [kinds[i], mark.box.x, mark.box.width])).toEqual(stems.map((x) => ['writing', x, 3]));
    // Nothing of the line is left beside the stems.
    let left = 0;
    for (let y = 66; y < 76; y++)
      for (let x = 0; x < 300; x++) if (inked(x, y) && !stems.some((s) => x >= s && x < s + 3)) left++;
    expect(left).toBe(0);
  });

  it('takes out a row of boxes, and keeps a digit that touches a side', () => {
    const { ink, set, inked } = inkMap(200, 80);
    const [x0, y0, side] = [20, 15, 50];
    for (let x = x0; x < x0 + 3 * side + 2; x++)
      for (let t = 0; t < 2; t++) {
        set(x, y0 + t);
        set(x, y0 + side + t);
      }
    for (let k = 0; k <= 3; k++)
      for (let y = y0; y < y0 + side + 2; y++) for (let t = 0; t < 2; t++) set(x0 + k * side + t, y);
    // A 1 standing on the first box's bottom side, and a 0 in the second box.
    for (let y = 25; y < y0 + side; y++) for (let t = 0; t < 3; t++) set(45 + t, y);
    for (let a = 0; a < 360; a++)
      for (let t = 0; t < 3; t++)
        set(
          Math.round(95 + (14 + t / 2) * 0.7 * Math.cos((a * Math.PI) / 180)),
          Math.round(40 + (14 + t / 2) * Math.sin((a * Math.PI) / 180)),
        );
    const { marks, kinds } = findWriting(ink);
    expect(marks.filter((_, i) => kinds[i] === 'writing').map((mark) => mark.box.x)).toEqual([45, 85]);
    let stem = 0;
    for (let y = 25; y < y0 + side; y++) for (let t = 0; t < 3; t++) if (inked(45 + t, y)) stem++;
    expect(stem).toBe(3 * (y0 + side - 25));
  });
});
