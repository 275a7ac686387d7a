/** Loads a train/test pair of IDX files from a directory, verifying structure and (where pinned) checksums. */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CnnxError } from '../common/index.js';
import { IDX_FILE_NAMES, PINNED_MD5, verifyChecksum, type IdxFileRole } from './checksums.js';
import { checkPairAgrees, parseIdxImages, parseIdxLabels } from './idx-reader.js';
import type { Split } from './split.js';

export interface FileCheck {
  file: string;
  checksum: string;
}

export interface LoadedPair {
  train: Split;
  test: Split;
  files: FileCheck[];
}

/** Path of a role's file in `dir`, raw or `.gz`, or undefined when neither exists. */
export async function findIdxFile(dir: string, role: IdxFileRole): Promise<string | undefined> {
  for (const name of [IDX_FILE_NAMES[role], `${IDX_FILE_NAMES[role]}.gz`]) {
    const path = join(dir, name);
    try {
      await access(path);
      return path;
    } catch {
      // try the next spelling
    }
  }
  return undefined;
}

/** True when `dir` holds all four files. */
export async function hasIdxFiles(dir: string): Promise<boolean> {
  const roles = Object.keys(IDX_FILE_NAMES) as IdxFileRole[];
  const found = await Promise.all(roles.map((role) => findIdxFile(dir, role)));
  return found.every((path) => path !== undefined);
}

async function loadSplit(
  dir: string,
  split: 'train' | 'test',
  dataset: keyof typeof PINNED_MD5 | undefined,
  files: FileCheck[],
): Promise<Split> {
  const read = async (role: IdxFileRole) => {
    const path = await findIdxFile(dir, role);
    if (path === undefined) {
      throw new CnnxError(`${dir}: missing ${IDX_FILE_NAMES[role]} (or ${IDX_FILE_NAMES[role]}.gz)`, 'IDX_MISSING');
    }
    const bytes = await readFile(path);
    const checksum = dataset === undefined ? 'not checked' : verifyChecksum(dataset, role, path, bytes);
    files.push({ file: path, checksum });
    return { path, bytes };
  };
  const imagesFile = await read(`${split}-images`);
  const labelsFile = await read(`${split}-labels`);
  const images = parseIdxImages(imagesFile.bytes, imagesFile.path);
  const labels = parseIdxLabels(labelsFile.bytes, labelsFile.path);
  checkPairAgrees(images, imagesFile.path, labels, labelsFile.path);
  return { count: images.count, rows: images.rows, cols: images.cols, pixels: images.pixels, labels: labels.labels };
}

/**
 * Reads the four standard IDX files from `dir`. With `dataset`, each file is checked against the pinned md5s
 * (a mismatch throws); without, checksums are not checked (e.g. a cache this program wrote itself).
 */
export async function loadIdxPair(dir: string, dataset?: keyof typeof PINNED_MD5): Promise<LoadedPair> {
  const files: FileCheck[] = [];
  const train = await loadSplit(dir, 'train', dataset, files);
  const test = await loadSplit(dir, 'test', dataset, files);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new CnnxError(
      `${dir}: train images are ${train.rows}x${train.cols} but test images are ${test.rows}x${test.cols}`,
      'IDX_PAIR_MISMATCH',
    );
  }
  return { train, test, files };
}
