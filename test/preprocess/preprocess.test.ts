import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { decodeImage } from '../../src/data/index.js';
import { COMMITTED_MODELS } from '../../src/common/index.js';
import { openSession, readOnnxModel } from '../../src/runtime/index.js';
import { inkBox, prepareInput, segmentDigits, toGray, type PixelImage } from '../../src/preprocess/index.js';

let mnist: Dataset;
beforeAll(async () => {
  mnist = await loadDataset('mnist');
});

/** Test digit `i` as its IDX pixels: ink bright on black, 28x28, one channel. */
const digit = (i: number): PixelImage => ({
  width: 28,
  height: 28,
  channels: 1,
  data: mnist.test.pixels.subarray(i * 784, (i + 1) * 784),
});

const inputOf = (image: PixelImage, procedure: 'mnist' | 'fit' = 'mnist'): Float32Array => {
  const prepared = prepareInput(image, procedure);
  if (!('input' in prepared)) throw new Error(`expected an input, got nothing: ${prepared.nothing}`);
  return prepared.input;
};

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
    const correlations = Array.from({ length: 200 }, (_, i) =>
      correlation(
        inputOf(digit(i)),
        Float32Array.from(digit(i).data, (v) => v / 255),
      ),
    ).sort((a, b) => a - b);
    expect(correlations[100]).toBeGreaterThan(0.94);
  });

  it('reads MNIST digits as well as their own IDX pixels are read', async () => {
    const { bytes } = await readOnnxModel(COMMITTED_MODELS.digits);
    const session = await openSession(bytes, { ep: 'cpu' });
    const n = 1000;
    const accuracy = async (inputs: Float32Array[]) => {
      const batch = new Float32Array(n * 784);
      inputs.forEach((input, i) => batch.set(input, i * 784));
      const { data } = await session.run(batch, [n, 1, 28, 28]);
      let right = 0;
      for (let i = 0; i < n; i++) {
        const row = Array.from(data.subarray(i * 10, i * 10 + 10));
        if (row.indexOf(Math.max(...row)) === mnist.test.labels[i]) right++;
      }
      return right / n;
    };
    const raw = await accuracy(Array.from({ length: n }, (_, i) => Float32Array.from(digit(i).data, (v) => v / 255)));
    const prepared = await accuracy(Array.from({ length: n }, (_, i) => inputOf(digit(i))));
    await session.release();
    expect(prepared).toBeGreaterThanOrEqual(raw - 0.006);
  });

  it('fits the ink into 20x20 inside 28x28', () => {
    const input = inputOf(digit(0));
    const box = inkBox({ width: 28, height: 28, data: input.map((v) => v * 255) })!;
    expect(Math.max(box.width, box.height)).toBeLessThanOrEqual(21);
    expect(box.x).toBeGreaterThanOrEqual(2);
  });

  it('gives the same input for dark-on-light and light-on-dark pictures', async () => {
    const paper = await decodeImage(await asPaperPng(3));
    const inverted = { ...paper, data: Uint8Array.from(paper.data, (v) => 255 - v) };
    const a = inputOf(paper);
    expect(correlation(a, inputOf(inverted))).toBeGreaterThan(0.99);
    expect(correlation(a, inputOf(digit(3)))).toBeGreaterThan(0.85);
  });

  it('answers "no ink" for blank, noisy-blank and faint pictures, whatever their size', () => {
    const seeded = (seed: number) => () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const random = seeded(7);
    for (const [width, height] of [
      [1, 1],
      [50, 40],
      [640, 200],
      [3000, 20],
    ] as const) {
      const white = { width, height, channels: 1, data: new Uint8Array(width * height).fill(255) };
      const noisy = { ...white, data: white.data.map(() => 249 + Math.floor(random() * 7)) };
      const black = { ...white, data: new Uint8Array(width * height) };
      for (const image of [white, noisy, black]) {
        expect(prepareInput(image, 'mnist')).toEqual({ nothing: expect.stringMatching(/^no ink/) });
        expect(prepareInput(image, 'fit')).toEqual({ nothing: expect.stringMatching(/^no ink/) });
        expect(segmentDigits(image).candidates).toEqual([]);
      }
    }
  });

  it('takes transparent pixels as background, whatever the colour of the ink', () => {
    const rgba = new Uint8Array(3 * 4);
    rgba.set([0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0]); // transparent, opaque black, transparent white
    expect(Array.from(toGray({ width: 3, height: 1, channels: 4, data: rgba }).data)).toEqual([255, 0, 255]);
    rgba.set([255, 255, 255, 255], 4); // white ink: the transparent background goes under it as black
    expect(Array.from(toGray({ width: 3, height: 1, channels: 4, data: rgba }).data)).toEqual([0, 255, 0]);
  });

  it('rejects pixel buffers that do not match their size', () => {
    expect(() => prepareInput({ width: 4, height: 4, channels: 1, data: new Uint8Array(10) }, 'mnist')).toThrow(
      'expected 16 values for 4x4x1, got 10',
    );
  });
});
