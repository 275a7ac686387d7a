import { describe, expect, it } from 'vitest';
import { batchCount, bilinearResizer, iterateBatches, type Split } from '../../src/data/index.js';

function syntheticSplit(count: number): Split {
  const pixels = new Uint8Array(count * 4 * 4);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 10;
    pixels[i * 16] = i % 256; // the first pixel identifies the example
  }
  return { count, rows: 4, cols: 4, channels: 1, pixels, labels };
}

describe('iterateBatches', () => {
  it.each([
    [100, 1],
    [100, 7],
    [100, 32],
    [100, 100],
    [100, 256],
    [1000, 64],
  ])('covers every example exactly once per epoch (%i examples, batch %i)', (count, batchSize) => {
    const split = syntheticSplit(count);
    for (const epoch of [0, 1]) {
      const seen = new Uint8Array(count);
      const sizes: number[] = [];
      for (const batch of iterateBatches(split, { batchSize, shuffle: true, seed: 42, epoch })) {
        sizes.push(batch.size);
        expect(batch.xs.length).toBe(batch.size * 16);
        batch.indices.forEach((index, b) => {
          seen[index]! += 1;
          expect(batch.labels[b]).toBe(index % 10);
          expect(batch.xs[b * 16]).toBeCloseTo((index % 256) / 255, 6);
        });
      }
      expect(Array.from(seen).every((n) => n === 1)).toBe(true);
      expect(sizes.length).toBe(batchCount(count, batchSize));
      expect(sizes.slice(0, -1).every((s) => s === batchSize)).toBe(true);
      expect(sizes.at(-1)).toBe(count - batchSize * (sizes.length - 1));
    }
  });

  it('orders epochs by seed and epoch alone', () => {
    const split = syntheticSplit(50);
    const order = (seed: number, epoch: number) =>
      [...iterateBatches(split, { batchSize: 50, shuffle: true, seed, epoch })][0]!.indices.join();
    expect(order(1, 0)).toBe(order(1, 0));
    expect(order(1, 0)).not.toBe(order(1, 1));
    expect(order(1, 0)).not.toBe(order(2, 0));
    const unshuffled = [...iterateBatches(split, { batchSize: 50 })][0]!.indices;
    expect(Array.from(unshuffled)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('rejects a batch size that is not a positive integer', () => {
    expect(() => iterateBatches(syntheticSplit(4), { batchSize: 0 }).next()).toThrow(RangeError);
  });

  it('resizes on the fly to 224x224 within [0,1]', () => {
    const split: Split = {
      count: 3,
      rows: 28,
      cols: 28,
      channels: 1,
      pixels: new Uint8Array(3 * 784).fill(255),
      labels: new Uint8Array(3),
    };
    const [batch] = [...iterateBatches(split, { batchSize: 3, resize: 224 })];
    expect(batch!.xs.length).toBe(3 * 224 * 224);
    expect(batch!.xs.reduce((low, v) => Math.min(low, v), Infinity)).toBeCloseTo(1, 6);
  });
});

describe('bilinearResizer', () => {
  it('keeps a constant image constant and interpolates a ramp', () => {
    const ramp = Uint8Array.from([0, 100, 0, 100]); // 2x2: columns 0 and 100
    const out = new Float32Array(16);
    bilinearResizer(2, 2, 4, 1)(ramp, 0, out, 0);
    // half-pixel centres: x=0 -> 0, x=1 -> 25, x=2 -> 75, x=3 -> 100 on every row
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 25, 75, 100]);
    expect(Array.from(out.subarray(12, 16))).toEqual([0, 25, 75, 100]);
  });
});
