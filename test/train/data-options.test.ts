/**
 * `cnnx train` with your own pictures, through the CLI's `main` in this process: the shapes of a model fitted to a
 * folder, the default model and selection, and the option combinations that are refused before any training.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { batchSizeFor } from '../../src/train/run-data.js';
import { cnnxInProcess } from '../helpers/main-in-process.js';
import { tempDir } from '../helpers/temp-dir.js';

const cnnx = cnnxInProcess;

afterEach(() => vi.restoreAllMocks());

let pics: string;
beforeAll(async () => {
  pics = join(await tempDir(), 'shapes');
  // Two classes of 20x16 colour pictures, named with non-ASCII letters.
  for (const [name, colour] of [
    ['carré', { r: 200, g: 30, b: 30 }],
    ['cercle', { r: 30, g: 30, b: 200 }],
  ] as const) {
    await mkdir(join(pics, name), { recursive: true });
    for (let i = 0; i < 12; i++) {
      const png = await sharp({ create: { width: 16, height: 20, channels: 3, background: { ...colour, g: i * 10 } } })
        .png()
        .toBuffer();
      await writeFile(join(pics, name, `${i}.png`), png);
    }
  }
});

describe('cnnx train --data', () => {
  it('--print-shapes fits the model to the pictures: their channels, size and classes', async () => {
    const { code, stdout, stderr } = await cnnx('train', '--print-shapes', '--data', pics);
    expect(code, stderr).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toMatch(/^input\s+shape:\s+\[1, 3, 20, 16\]$/);
    expect(lines.at(-2)).toMatch(/^Dense\s+output shape:\s+\[1, 2\]$/);
    expect(lines.at(-1)).toMatch(/^parameters: [\d,]+$/);
  });

  it('trains lenet5-relu by default, chooses on validation, and names classes with any letters', async () => {
    const out = join(await tempDir(), 'run');
    const { code, stdout, stderr } = await cnnx(
      'train',
      ...['--data', pics, '--epochs', '1', '--backend', 'wasm', '--out', out],
    );
    expect(code, stderr).toBe(0);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      model: 'lenet5-relu',
      dataset: 'shapes',
      data: { path: pics, channels: 3, size: [20, 16] },
      classes: ['carré', 'cercle'],
      selectOn: 'val',
      valSplit: 0.1,
      // 24 pictures: 2 held out for test and 2 for validation, 20 to train on, in batches of 8, not 1 batch of 128.
      batchSize: 8,
    });
    expect(stderr).toMatch(
      /batch size 8: the default 128 would give 1 step an epoch on 20 training examples, too few to train on \(--batch-size sets it\)/,
    );
    // The result is the command's output; its progress and notes are on stderr.
    expect(stdout).toMatch(/test acc of the chosen weights/);
    // The data moved: --resume is told where it is now.
    const resumed = await cnnx('train', '--resume', out, '--epochs', '2', '--data', pics);
    expect(resumed.code, resumed.stderr).toBe(0);
  }, 120_000);

  it.each([
    [['--data', 'x', '--dataset', 'mnist'], /--data and --dataset both name what to train on/],
    [['--channels', '3'], /--channels applies to your own pictures: add --data/],
    [['--image-size', '32', '--test-data', 't'], /--test-data, --image-size apply to your own pictures/],
    [['--select-on', 'test', '--val-split', '0.2'], /--val-split holds out data .* --select-on test/],
    [['--val-split', '1'], /expected a fraction between 0 and 1/],
  ])('refuses %j before any training', async (args, message) => {
    const { code, stderr } = await cnnx('train', ...args);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(message);
  });

  it('refuses --augment for --data, saying why', async () => {
    const out = join(await tempDir(), 'augment');
    const { code, stderr } = await cnnx(
      'train',
      '--data',
      pics,
      '--augment',
      'flip',
      '--backend',
      'wasm',
      '--out',
      out,
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/--augment distorts pictures drawn bright on black, .* drop --augment/);
  });
});

describe('the default batch size on a small training part', () => {
  it('keeps the model default while an epoch has 8 steps of it, else halves it until it has (down to 8)', () => {
    expect([60_000, 1_024, 1_000, 500, 48, 3].map((n) => batchSizeFor(n, 128))).toEqual([128, 128, 128, 64, 8, 8]);
    expect(batchSizeFor(500, 16)).toBe(16);
  });
});
