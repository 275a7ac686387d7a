/**
 * The user's own data trains as the built-in data does: the same MNIST images as IDX files, as a folder of PNGs and
 * as a CSV train to bit-identical weights with the same seed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/common/index.js';
import { loadDataset, loadUserDataset, selectExamples, type Dataset, type Split } from '../../src/data/index.js';
import { encodeIdxImages, encodeIdxLabels } from '../../src/data/idx-reader.js';
import { shuffleExamples } from '../../src/data/split.js';
import { runPath, silentProgress, train, type TrainConfig } from '../../src/train/index.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The first `count` examples of `split`, ordered by class (stable): the order a folder of class folders lists. */
function byClass(split: Split, count: number): Split {
  const indices = Array.from({ length: count }, (_, i) => i);
  indices.sort((a, b) => split.labels[a]! - split.labels[b]! || a - b);
  return selectExamples(split, indices);
}

function inLoaderOrder(split: Split): Split {
  const copy = { ...split, pixels: split.pixels.slice(), labels: split.labels.slice() };
  shuffleExamples(copy, 1990);
  return copy;
}

async function writeIdx(dir: string, prefix: 'train' | 't10k', split: Split): Promise<void> {
  await writeFile(join(dir, `${prefix}-images-idx3-ubyte`), encodeIdxImages(split));
  await writeFile(join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdxLabels(split));
}

async function writeFolder(dir: string, split: Split): Promise<void> {
  for (let i = 0; i < split.count; i++) {
    const classDir = join(dir, String(split.labels[i]));
    await mkdir(classDir, { recursive: true });
    const pixels = split.pixels.subarray(i * 784, (i + 1) * 784);
    const png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    await writeFile(join(classDir, `${String(i).padStart(5, '0')}.png`), png);
  }
}

async function writeCsv(file: string, split: Split): Promise<void> {
  const header = ['label', ...Array.from({ length: 784 }, (_, p) => `pixel${p}`)].join(',');
  const rows = Array.from({ length: split.count }, (_, i) =>
    [split.labels[i], ...split.pixels.subarray(i * 784, (i + 1) * 784)].join(','),
  );
  await writeFile(file, `${header}\n${rows.join('\n')}\n`);
}

let root: string;
let idx: Dataset;
let folder: Dataset;
let csv: Dataset;
beforeAll(async () => {
  root = await tempDir();
  const mnist = await loadDataset('mnist');
  const trainPart = byClass(mnist.train, 2000);
  const testPart = byClass(mnist.test, 300);
  // The IDX files hold the pictures in the order the loader puts a folder's or a CSV's in: read by class, then the
  // fixed seeded order (user-data.ts's ORDER_SEED, 1990).
  await mkdir(join(root, 'idx'));
  await writeIdx(join(root, 'idx'), 'train', inLoaderOrder(trainPart));
  await writeIdx(join(root, 'idx'), 't10k', inLoaderOrder(testPart));
  await writeFolder(join(root, 'pics', 'train'), trainPart);
  await writeFolder(join(root, 'pics', 'test'), testPart);
  await writeCsv(join(root, 'digits.csv'), trainPart);
  await writeCsv(join(root, 'digits-test.csv'), testPart);
  idx = await loadDataset('mnist', { idxDir: join(root, 'idx') });
  folder = await loadUserDataset(join(root, 'pics'));
  csv = await loadUserDataset(join(root, 'digits.csv'), { testPath: join(root, 'digits-test.csv') });
}, 300_000);

const config = (overrides: Partial<TrainConfig>): TrainConfig => ({
  model: 'lenet5-relu',
  dataset: 'mnist',
  epochs: 1,
  batchSize: 64,
  lr: 0.01,
  optimizer: 'adam',
  schedule: 'constant',
  seed: 11,
  backend: 'wasm',
  selectOn: 'val',
  valSplit: 0.1,
  ...overrides,
});

async function trainedWeights(name: string, dataset: Dataset, overrides: Partial<TrainConfig>) {
  const runDir = join(root, `run-${name}`);
  const result = await train({ config: config(overrides), runDir, progress: silentProgress, dataset });
  const { tensors } = await readSafetensors(runPath(runDir, 'best'));
  return {
    result,
    weights: new Map(
      [...tensors].map(([key, t]) => [key, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]),
    ),
  };
}

describe('the same images as IDX, a folder of PNGs and a CSV', () => {
  it('load to the same pixels and labels', () => {
    for (const dataset of [folder, csv]) {
      expect(dataset.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      expect(dataset.train.channels).toBe(1);
      expect(Buffer.compare(dataset.train.pixels, idx.train.pixels)).toBe(0);
      expect(Buffer.compare(dataset.train.labels, idx.train.labels)).toBe(0);
      expect(Buffer.compare(dataset.test.pixels, idx.test.pixels)).toBe(0);
    }
  });

  it('train to bit-identical weights with the same seed', async () => {
    const fromIdx = await trainedWeights('idx', idx, {});
    const fromFolder = await trainedWeights('folder', folder, {
      dataset: 'pics',
      data: { path: join(root, 'pics') },
    });
    const fromCsv = await trainedWeights('csv', csv, {
      dataset: 'digits',
      data: { path: join(root, 'digits.csv'), testPath: join(root, 'digits-test.csv') },
    });
    expect(fromIdx.result.testAccuracy).toBeGreaterThan(0.8);
    for (const other of [fromFolder, fromCsv]) {
      expect(other.result.testAccuracy).toBe(fromIdx.result.testAccuracy);
      expect([...other.weights.keys()]).toEqual([...fromIdx.weights.keys()]);
      for (const [key, bytes] of fromIdx.weights) expect(Buffer.compare(other.weights.get(key)!, bytes), key).toBe(0);
    }
  }, 600_000);
});
