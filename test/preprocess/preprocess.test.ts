import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { decodeImage } from '../../src/data/index.js';
import { inkBox, preprocess, toGray, type GrayImage } from '../../src/preprocess/index.js';

let mnist: Dataset;
beforeAll(async () => {
  mnist = await loadDataset('mnist');
});

const digit = (i: number): GrayImage => ({
  width: 28,
  height: 28,
  data: Float32Array.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784)),
});

/** A test digit as a person would photograph it: dark ink on white paper, bigger, off-centre, as PNG. */
async function asPaperPng(i: number, scale = 5): Promise<Uint8Array> {
  const inverted = Buffer.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784).map((v) => 255 - v));
  return sharp(inverted, { raw: { width: 28, height: 28, channels: 1 } })
    .resize(28 * scale, 28 * scale)
    .extend({ top: 10, bottom: 50, left: 70, right: 20, background: '#ffffff' })
    .png()
    .toBuffer();
}

function correlation(a: Float32Array, b: Float32Array): number {
  const mean = (x: Float32Array) => x.reduce((s, v) => s + v, 0) / x.length;
  const [ma, mb] = [mean(a), mean(b)];
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - ma) * (b[i]! - mb);
    da += (a[i]! - ma) ** 2;
    db += (b[i]! - mb) ** 2;
  }
  return num / Math.sqrt(da * db);
}

describe('MNIST procedure', () => {
  it('leaves an MNIST digit (already so processed) nearly as it is', () => {
    for (let i = 0; i < 20; i++) {
      const original = Float32Array.from(digit(i).data, (v) => v / 255);
      expect(correlation(preprocess(digit(i), 'mnist'), original)).toBeGreaterThan(0.97);
    }
  });

  it('fits the ink into 20x20 inside 28x28', () => {
    const input = preprocess(digit(0), 'mnist');
    const box = inkBox({ width: 28, height: 28, data: input.map((v) => v * 255) })!;
    expect(Math.max(box.width, box.height)).toBeLessThanOrEqual(21);
    expect(box.x).toBeGreaterThanOrEqual(2);
  });

  it('gives the same input for dark-on-light and light-on-dark pictures', async () => {
    const paper = await decodeImage(await asPaperPng(3));
    const inverted = { ...paper, data: paper.data.map((v) => 255 - v) };
    const a = preprocess(paper, 'mnist');
    const b = preprocess(inverted, 'mnist');
    expect(correlation(a, b)).toBeGreaterThan(0.99);
    expect(correlation(a, preprocess(digit(3), 'mnist'))).toBeGreaterThan(0.85);
  });

  it('returns an empty input for a blank picture', () => {
    const blank = toGray(new Uint8Array(50 * 40).fill(255), 50, 40, 1);
    expect(preprocess(blank, 'mnist').every((v) => v === 0)).toBe(true);
  });

  it('composites transparency over white paper', () => {
    const rgba = new Uint8Array(2 * 1 * 4);
    rgba.set([0, 0, 0, 0, 0, 0, 0, 255]); // transparent, then opaque black
    expect(Array.from(toGray(rgba, 2, 1, 4).data)).toEqual([255, 0]);
  });

  it('rejects pixel buffers that do not match their size', () => {
    expect(() => toGray(new Uint8Array(10), 4, 4, 1)).toThrow('expected 16 values for 4x4x1, got 10');
  });
});

export { asPaperPng };
