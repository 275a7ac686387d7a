/**
 * Small datasets of the user's kind (image folders and CSVs) built from real MNIST and Fashion-MNIST pictures, for
 * the user-data tests and `cnnx data info --data`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { loadDataset, type Dataset, type Split } from '../../src/data/index.js';

let mnist: Promise<Dataset> | undefined;
let fashion: Promise<Dataset> | undefined;

/** MNIST, loaded once per test file. */
export const loadMnist = () => (mnist ??= loadDataset('mnist'));
/** Fashion-MNIST (official files: Debian's package here), loaded once per test file. */
export const loadFashion = () => (fashion ??= loadDataset('fashion-mnist', { offline: true }));

/** A picture as raw bytes: [height, width, channels]. */
export interface Raw {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

/** Example `index` of a 1-channel split, as a 28x28 gray picture. */
export function pictureOf(split: Split, index: number): Raw {
  const size = split.rows * split.cols;
  return {
    width: split.cols,
    height: split.rows,
    channels: 1,
    data: new Uint8Array(split.pixels.subarray(index * size, (index + 1) * size)),
  };
}

/** The first `n` indices of `split` whose label is `label`, in order. */
export function indicesOf(split: Split, label: number, n: number): number[] {
  const found: number[] = [];
  for (let i = 0; i < split.count && found.length < n; i++) if (split.labels[i] === label) found.push(i);
  return found;
}

/** A gray picture as RGB, each pixel's gray value times `tint` (r, g, b factors), so it is in colour unless 1,1,1. */
export function tinted(picture: Raw, tint: [number, number, number] = [1, 0.5, 0.2]): Raw {
  const data = new Uint8Array(picture.width * picture.height * 3);
  for (let i = 0; i < picture.width * picture.height; i++) {
    for (let k = 0; k < 3; k++) data[i * 3 + k] = Math.round(picture.data[i]! * tint[k]!);
  }
  return { ...picture, channels: 3, data };
}

/** Writes `picture` as a PNG or JPEG file (creating its folder). */
export async function writePicture(path: string, picture: Raw, format: 'png' | 'jpeg' = 'png'): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const image = sharp(picture.data, {
    raw: { width: picture.width, height: picture.height, channels: picture.channels },
  });
  await (format === 'png' ? image.png() : image.jpeg({ quality: 90 })).toFile(path);
}

/**
 * Writes `perClass` pictures of each of `labels` from `split` under `dir/<name>/NNN.png`, class names from `names`
 * (default: the label); returns the pictures' indices in the folder's order (class by class, file by file).
 */
export async function writeClassFolders(
  dir: string,
  split: Split,
  labels: readonly number[],
  perClass: number,
  options: { names?: readonly string[]; format?: 'png' | 'jpeg'; first?: number } = {},
): Promise<number[]> {
  const written: number[] = [];
  for (const [k, label] of labels.entries()) {
    const name = options.names?.[k] ?? String(label);
    const indices = indicesOf(split, label, (options.first ?? 0) + perClass).slice(options.first ?? 0);
    await Promise.all(
      indices.map((index, n) =>
        writePicture(
          join(dir, name, `${String(n).padStart(3, '0')}.${options.format ?? 'png'}`),
          pictureOf(split, index),
          options.format,
        ),
      ),
    );
    written.push(...indices);
  }
  return written;
}

/** The pixels of `indices` of a split, concatenated. */
export function pixelsAt(split: Split, indices: readonly number[]): Uint8Array {
  const size = split.rows * split.cols * split.channels;
  const out = new Uint8Array(indices.length * size);
  indices.forEach((index, i) => out.set(split.pixels.subarray(index * size, (index + 1) * size), i * size));
  return out;
}

/** A CSV of rows `label, pixels...`, with an optional header line. */
export async function writeCsv(
  path: string,
  rows: readonly { label: string; pixels: ArrayLike<number> }[],
  header?: string,
): Promise<void> {
  const lines = rows.map((row) => `${row.label},${Array.from(row.pixels).join(',')}`);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${header === undefined ? '' : `${header}\n`}${lines.join('\n')}\n`);
}

/** Kaggle's header: `label,pixel0,...,pixel<n-1>`. */
export const kaggleHeader = (n: number) => ['label', ...Array.from({ length: n }, (_, i) => `pixel${i}`)].join(',');
