/** Handwriting for tests: MNIST test digits written side by side on white paper, as a PNG. */
import sharp from 'sharp';
import type { Dataset } from '../../src/data/index.js';

/**
 * Test digits `indices` of `mnist`, each scaled to `side` px and placed `step` px after the one before (20 px from the
 * left, 16 from the top), dark on a white page `side + 32` px tall.
 */
export async function digitsOnPaper(
  mnist: Dataset,
  indices: number[],
  { side = 84, step = 80 }: { side?: number; step?: number } = {},
): Promise<Buffer> {
  const composites = await Promise.all(
    indices.map(async (i, k) => ({
      input: await sharp(Buffer.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784).map((v) => 255 - v)), {
        raw: { width: 28, height: 28, channels: 1 },
      })
        .resize(side, side)
        .png()
        .toBuffer(),
      left: 20 + k * step,
      top: 16,
      blend: 'multiply' as const,
    })),
  );
  const width = 40 + (indices.length - 1) * step + side;
  return sharp({ create: { width, height: side + 32, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png()
    .toBuffer();
}
