/** Loads a train/test pair of IDX files from a directory, verifying structure and (where pinned) checksums. */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CnnxError, whyUnreadable } from '../common/index.js';
import { IDX_FILE_NAMES, PINNED_MD5, verifyChecksum, type ChecksumPolicy, type IdxFileRole } from './checksums.js';
import { checkPairAgrees, gunzipIfNeeded, parseIdxImages, parseIdxLabels } from './idx-reader.js';
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

/**
 * Path of a role's file in `dir`, raw or `.gz`, or undefined when neither exists.
 * @throws CnnxError (IDX_NOT_A_FILE) when the name exists but is not a file (a folder in its place).
 */
async function findIdxFile(dir: string, role: IdxFileRole): Promise<string | undefined> {
  for (const name of [IDX_FILE_NAMES[role], `${IDX_FILE_NAMES[role]}.gz`]) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) continue;
    if (!info.isFile()) {
      throw new CnnxError(
        `${path}: is ${info.isDirectory() ? 'a folder' : 'not a regular file'}, expected an IDX file`,
        'IDX_NOT_A_FILE',
      );
    }
    return path;
  }
  return undefined;
}

/** True when `dir` holds all four files. */
export async function hasIdxFiles(dir: string): Promise<boolean> {
  const roles = Object.keys(IDX_FILE_NAMES) as IdxFileRole[];
  const found = await Promise.all(roles.map((role) => findIdxFile(dir, role)));
  return found.every((path) => path !== undefined);
}

/** Which official files to compare against, and what a mismatch means. */
export interface PairChecksums {
  dataset: keyof typeof PINNED_MD5;
  policy: ChecksumPolicy;
}

async function loadSplit(
  dir: string,
  split: 'train' | 'test',
  checksums: PairChecksums | undefined,
  files: FileCheck[],
): Promise<Split> {
  const read = async (role: IdxFileRole) => {
    const path = await findIdxFile(dir, role);
    if (path === undefined) {
      throw new CnnxError(`${dir}: missing ${IDX_FILE_NAMES[role]} (or ${IDX_FILE_NAMES[role]}.gz)`, 'IDX_MISSING');
    }
    const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
      throw new CnnxError(`${path}: cannot read (${whyUnreadable(error)})`, 'IDX_UNREADABLE');
    });
    const content = gunzipIfNeeded(bytes, path);
    const checksum =
      checksums === undefined
        ? 'not checked'
        : verifyChecksum(checksums.dataset, role, path, { stored: bytes, content }, checksums.policy);
    files.push({ file: path, checksum });
    return { path, bytes: content };
  };
  const imagesFile = await read(`${split}-images`);
  const labelsFile = await read(`${split}-labels`);
  const images = parseIdxImages(imagesFile.bytes, imagesFile.path);
  const labels = parseIdxLabels(labelsFile.bytes, labelsFile.path);
  checkPairAgrees(images, imagesFile.path, labels, labelsFile.path);
  return {
    count: images.count,
    rows: images.rows,
    cols: images.cols,
    channels: 1,
    pixels: images.pixels,
    labels: labels.labels,
  };
}

/**
 * Reads the four standard IDX files from `dir`. With `checksums`, each file is compared with the official md5s
 * under its policy; without, checksums are not checked (e.g. a cache this program wrote itself).
 * @throws CnnxError naming the file for a missing, unreadable or malformed file, or a refused checksum.
 */
export async function loadIdxPair(dir: string, checksums?: PairChecksums): Promise<LoadedPair> {
  const files: FileCheck[] = [];
  const train = await loadSplit(dir, 'train', checksums, files);
  const test = await loadSplit(dir, 'test', checksums, files);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new CnnxError(
      `${dir}: train images are ${train.rows}x${train.cols} but test images are ${test.rows}x${test.cols}`,
      'IDX_PAIR_MISMATCH',
    );
  }
  return { train, test, files };
}
