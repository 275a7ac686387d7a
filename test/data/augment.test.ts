/**
 * Training with distortions: each example's distortion is a function of (seed, epoch, index) alone, values stay
 * in [0,1], a distorted digit is still the same digit, every distortion does something, and `cnnx train
 * --augment` trains with them and keeps them in the run's settings, on `--resume` too.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createAugmenter,
  DEFAULT_DISTORTIONS,
  DISTORTION_NAMES,
  iterateAugmentedBatches,
  iterateBatches,
  limitSplit,
  loadDataset,
  parseDistortions,
  type DistortionName,
  type Split,
} from '../../src/data/index.js';
import { readMetrics } from '../../src/train/index.js';
import { spawnCnnx } from '../helpers/spawn-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SIZE = 28 * 28;

let digits: Split;
beforeAll(async () => {
  digits = limitSplit((await loadDataset('mnist')).train, 300);
});

/** Example `index` of `digits` as `augmenter` distorts it in `epoch`. */
function distorted(distortions: readonly DistortionName[], seed: number, epoch: number, index: number): Float32Array {
  const out = new Float32Array(SIZE);
  createAugmenter(28, 28, { distortions, seed }).distort(digits.pixels, index * SIZE, epoch, index, out, 0);
  return out;
}

/** Example `index` of `digits` undistorted, in [0,1]. */
const original = (index: number) =>
  Float32Array.from(digits.pixels.subarray(index * SIZE, (index + 1) * SIZE), (v) => v / 255);

const bytesOf = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);

/** Total ink and its centre of mass (x, y), in pixels. */
function inkOf(image: Float32Array): { mass: number; x: number; y: number } {
  let mass = 0;
  let x = 0;
  let y = 0;
  image.forEach((value, p) => {
    mass += value;
    x += value * (p % 28);
    y += value * Math.floor(p / 28);
  });
  return { mass, x: x / mass, y: y / mass };
}

describe('parseDistortions', () => {
  it('reads names in the order they are applied, and none', () => {
    expect(parseDistortions('noise,affine')).toEqual(['affine', 'noise']);
    expect(parseDistortions(DISTORTION_NAMES.join(','))).toEqual([...DISTORTION_NAMES]);
    expect(parseDistortions('none')).toEqual([]);
  });

  it.each(['rotate', 'affine,', 'affine,none', ''])('refuses %j, listing the names', (text) => {
    expect(() => parseDistortions(text)).toThrow(RangeError);
    expect(() => parseDistortions(text)).toThrow(
      'name one or more of affine, elastic, thickness, blur, contrast, noise, flip (comma-separated), or none',
    );
  });

  it('refuses an unknown name in createAugmenter', () => {
    expect(() => createAugmenter(28, 28, { distortions: ['rotate' as DistortionName], seed: 1 })).toThrow(
      /unknown distortion "rotate"/,
    );
  });
});

describe('createAugmenter', () => {
  it('distorts example index in epoch e the same way every time, whatever was distorted before', () => {
    const augmenter = createAugmenter(28, 28, { distortions: DISTORTION_NAMES, seed: 42 });
    const out = new Float32Array(SIZE);
    for (let index = 0; index < 20; index++) {
      augmenter.distort(digits.pixels, index * SIZE, 1, index, out, 0);
      expect(bytesOf(out).equals(bytesOf(distorted(DISTORTION_NAMES, 42, 1, index)))).toBe(true);
    }
  });

  it('distorts differently in another epoch and with another seed', () => {
    const changed = (other: Float32Array, index: number) =>
      !bytesOf(other).equals(bytesOf(distorted(DISTORTION_NAMES, 42, 0, index)));
    const indices = Array.from({ length: 20 }, (_, i) => i);
    // Each image is left alone with probability ~9% in a given epoch, so most (not all) differ.
    expect(indices.filter((i) => changed(distorted(DISTORTION_NAMES, 42, 1, i), i)).length).toBeGreaterThan(15);
    expect(indices.filter((i) => changed(distorted(DISTORTION_NAMES, 43, 0, i), i)).length).toBeGreaterThan(15);
  });

  it('keeps values in [0, 1]', () => {
    for (const distortions of [...DISTORTION_NAMES.map((name) => [name]), DISTORTION_NAMES]) {
      const augmenter = createAugmenter(28, 28, { distortions, seed: 3 });
      const out = new Float32Array(digits.count * SIZE);
      for (let index = 0; index < digits.count; index++) {
        augmenter.distort(digits.pixels, index * SIZE, 0, index, out, index * SIZE);
      }
      expect(out.every((value) => value >= 0 && value <= 1)).toBe(true);
    }
  });

  it('keeps a digit where it was, with about as much ink', () => {
    for (let index = 0; index < digits.count; index++) {
      const before = inkOf(original(index));
      const after = inkOf(distorted(DISTORTION_NAMES, 5, 2, index));
      expect(Math.hypot(after.x - before.x, after.y - before.y)).toBeLessThan(6);
      expect(after.mass / before.mass).toBeGreaterThan(0.25);
      expect(after.mass / before.mass).toBeLessThan(3);
    }
  });

  it.each(DISTORTION_NAMES)('applies %s to some images and leaves the others as they are', (name) => {
    let applied = 0;
    for (let index = 0; index < 100; index++) {
      const plain = original(index);
      const image = distorted([name], 11, 0, index);
      const difference = Math.max(...image.map((value, p) => Math.abs(value - plain[p]!)));
      if (difference === 0) continue;
      applied++;
      expect(difference).toBeGreaterThan(0.02);
    }
    // Probabilities are 0.2 to 0.5.
    expect(applied).toBeGreaterThan(8);
    expect(applied).toBeLessThan(70);
  });
});

describe('iterateAugmentedBatches', () => {
  const options = { batchSize: 64, shuffle: true, seed: 9, epoch: 4 };

  it("gives iterateBatches' batches with each image distorted by (seed, epoch, index)", () => {
    const augmenter = createAugmenter(28, 28, { distortions: DISTORTION_NAMES, seed: 9 });
    const plain = [...iterateBatches(digits, options)];
    const augmented = [...iterateAugmentedBatches(digits, options, augmenter)];
    expect(augmented.map((b) => Array.from(b.indices))).toEqual(plain.map((b) => Array.from(b.indices)));
    for (const batch of augmented) {
      batch.indices.forEach((index, b) => {
        expect(batch.labels[b]).toBe(digits.labels[index]);
        const image = batch.xs.subarray(b * SIZE, (b + 1) * SIZE);
        expect(bytesOf(image).equals(bytesOf(distorted(DISTORTION_NAMES, 9, 4, index)))).toBe(true);
      });
    }
  });

  it('refuses an augmenter made for another image size', () => {
    const augmenter = createAugmenter(14, 14, { distortions: ['affine'], seed: 9 });
    expect(() => iterateAugmentedBatches(digits, options, augmenter).next()).toThrow(
      'augmenter must distort 28x28 images, as the split holds, got 14x14',
    );
  });

  it('distorts at the source size, then resizes', () => {
    const augmenter = createAugmenter(28, 28, { distortions: ['affine'], seed: 9 });
    const [plain] = iterateBatches(digits, { ...options, resize: 56 });
    const [batch] = iterateAugmentedBatches(digits, { ...options, resize: 56 }, augmenter);
    expect(batch!.xs.length).toBe(batch!.size * 56 * 56);
    expect(batch!.xs.every((value) => value >= 0 && value <= 1)).toBe(true);
    expect(bytesOf(batch!.xs).equals(bytesOf(plain!.xs))).toBe(false);
  });
});

describe('cnnx train --augment', () => {
  /** Runs `cnnx ...args` as a process; resolves to its exit code and stderr. */
  function cnnx(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const child = spawnCnnx(args, { cwd: ROOT, env: { ...process.env, CNNX_OFFLINE: '1' } });
    child.stdout.resume();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
  }

  it('trains with distortions, stores them in the run and keeps them on --resume', async () => {
    const dir = join(await tempDir(), 'run');
    const common = ['--backend', 'wasm', '--limit', '512', '--test-limit', '256'];
    const first = await cnnx([
      'train',
      '--model',
      'lenet5-relu',
      '--augment',
      '--epochs',
      '1',
      ...common,
      '--out',
      dir,
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`augment: ${DEFAULT_DISTORTIONS.join(', ')} (training images only)`);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { augment?: string[] };
    expect(config.augment).toEqual([...DEFAULT_DISTORTIONS]);

    const resumed = await cnnx(['train', '--resume', dir, '--epochs', '2', '--backend', 'wasm']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`augment: ${DEFAULT_DISTORTIONS.join(', ')} (training images only)`);
    expect((await readMetrics(dir)).map((m) => m.epoch)).toEqual([1, 2]);
  }, 60_000);
});

describe('flip', () => {
  it('mirrors about half the images left-right, exactly, and is not among the defaults', () => {
    expect(DEFAULT_DISTORTIONS).not.toContain('flip');
    const augmenter = createAugmenter(28, 28, { distortions: ['flip'], seed: 3 });
    const pixels = Uint8Array.from({ length: 784 }, (_, i) => (i * 37) % 256);
    const out = new Float32Array(784);
    let mirrored = 0;
    for (let index = 0; index < 200; index++) {
      augmenter.distort(pixels, 0, 0, index, out, 0);
      const same = out.every((v, i) => Math.abs(v - pixels[i]! / 255) < 1e-6);
      const mirror = out.every((v, i) => Math.abs(v - pixels[Math.floor(i / 28) * 28 + 27 - (i % 28)]! / 255) < 1e-6);
      expect(same !== mirror).toBe(true);
      if (mirror) mirrored++;
    }
    expect(mirrored).toBeGreaterThan(70);
    expect(mirrored).toBeLessThan(130);
  });
});
