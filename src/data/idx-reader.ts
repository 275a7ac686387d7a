/**
 * Reader for the IDX format of MNIST and Fashion-MNIST (raw or gzip). Every structural fault is reported as an
 * `IdxFormatError` naming the file and what was wrong, so a bad download fails before any training starts.
 *
 * Layout: magic (2 zero bytes, dtype 0x08 = unsigned byte, rank), then `rank` big-endian uint32 dimensions,
 * then the items. Images: magic 2051, dims [count, rows, cols]. Labels: magic 2049, dims [count].
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CnnxError, whyUnreadable, type ErrorCode } from '../common/index.js';

const IMAGES_MAGIC = 2051;
const LABELS_MAGIC = 2049;

export class IdxFormatError extends CnnxError {
  override name = 'IdxFormatError';
  constructor(
    readonly file: string,
    readonly reason: string,
    code: ErrorCode,
  ) {
    super(`${file}: ${reason}`, code);
  }
}

/** Images as stored: `pixels` is [count, rows, cols] row-major, one byte per pixel, ink bright. */
export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

export interface IdxLabels {
  count: number;
  labels: Uint8Array;
}

const GZIP_MAGIC = [0x1f, 0x8b];

/** Decompresses gzip bytes, leaves raw bytes as they are. */
export function gunzipIfNeeded(bytes: Uint8Array, file: string): Uint8Array {
  if (bytes[0] !== GZIP_MAGIC[0] || bytes[1] !== GZIP_MAGIC[1]) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (error) {
    throw new IdxFormatError(file, `not a valid gzip stream (${(error as Error).message})`, 'IDX_BAD_GZIP');
  }
}

function parseHeader(bytes: Uint8Array, file: string, magic: number, kind: string): number[] {
  if (bytes.length < 4) {
    throw new IdxFormatError(file, `truncated: ${bytes.length} bytes, too short for an IDX header`, 'IDX_TRUNCATED');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = view.getUint32(0);
  if (found !== magic) {
    throw new IdxFormatError(
      file,
      `bad magic number ${found} (0x${found.toString(16).padStart(8, '0')}), expected ${magic} for an IDX ${kind} file`,
      'IDX_BAD_MAGIC',
    );
  }
  const rank = bytes[3]!;
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw new IdxFormatError(
      file,
      `truncated: ${bytes.length} bytes, the header of a rank-${rank} file needs ${headerLength}`,
      'IDX_TRUNCATED',
    );
  }
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d));
  return dims;
}

function checkLength(bytes: Uint8Array, file: string, headerLength: number, dims: number[]): void {
  const expected = headerLength + dims.reduce((a, b) => a * b, 1);
  if (bytes.length < expected) {
    throw new IdxFormatError(
      file,
      `truncated: header declares ${dims.join('x')} items (${expected} bytes) but the file has ${bytes.length} bytes`,
      'IDX_TRUNCATED',
    );
  }
  if (bytes.length > expected) {
    throw new IdxFormatError(
      file,
      `count mismatch: header declares ${dims.join('x')} items (${expected} bytes) but the file has ${bytes.length} bytes`,
      'IDX_COUNT_MISMATCH',
    );
  }
}

/** Parses an image file's bytes (raw or gzip). `file` names it in errors. */
export function parseIdxImages(input: Uint8Array, file: string): IdxImages {
  const bytes = gunzipIfNeeded(input, file);
  const dims = parseHeader(bytes, file, IMAGES_MAGIC, 'images');
  if (dims.length !== 3) throw new IdxFormatError(file, `rank ${dims.length}, expected 3`, 'IDX_BAD_RANK');
  const [count, rows, cols] = dims as [number, number, number];
  if (rows === 0 || cols === 0) {
    throw new IdxFormatError(file, `image size ${rows}x${cols} is empty`, 'IDX_BAD_DIMS');
  }
  const headerLength = 16;
  checkLength(bytes, file, headerLength, dims);
  return { count, rows, cols, pixels: bytes.subarray(headerLength) };
}

/** Parses a label file's bytes (raw or gzip); labels must lie in [0, classes). */
export function parseIdxLabels(input: Uint8Array, file: string, classes = 10): IdxLabels {
  const bytes = gunzipIfNeeded(input, file);
  const dims = parseHeader(bytes, file, LABELS_MAGIC, 'labels');
  if (dims.length !== 1) throw new IdxFormatError(file, `rank ${dims.length}, expected 1`, 'IDX_BAD_RANK');
  const headerLength = 8;
  checkLength(bytes, file, headerLength, dims);
  const labels = bytes.subarray(headerLength);
  const bad = labels.findIndex((label) => label >= classes);
  if (bad >= 0) {
    throw new IdxFormatError(
      file,
      `label ${labels[bad]} at item ${bad} is not a class in 0..${classes - 1}`,
      'IDX_BAD_LABEL',
    );
  }
  return { count: dims[0]!, labels };
}

/** Reads and validates an image file from disk. */
export async function readIdxImages(path: string): Promise<IdxImages> {
  return parseIdxImages(await readFileNamed(path), path);
}

/** Reads and validates a label file from disk. */
export async function readIdxLabels(path: string): Promise<IdxLabels> {
  return parseIdxLabels(await readFileNamed(path), path);
}

/** Checks that an image file and a label file describe the same items. */
export function checkPairAgrees(images: IdxImages, imagesFile: string, labels: IdxLabels, labelsFile: string): void {
  if (images.count !== labels.count) {
    throw new IdxFormatError(
      imagesFile,
      `images/labels disagree: ${images.count} images but ${basename(labelsFile)} has ${labels.count} labels`,
      'IDX_PAIR_MISMATCH',
    );
  }
}

async function readFileNamed(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new CnnxError(`${path}: cannot read (${whyUnreadable(error)})`, 'IDX_UNREADABLE');
  }
}

/** Serialises images back to raw IDX bytes (used to cache datasets built from other formats). */
export function encodeIdxImages(images: IdxImages): Uint8Array {
  const out = new Uint8Array(16 + images.pixels.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, IMAGES_MAGIC);
  view.setUint32(4, images.count);
  view.setUint32(8, images.rows);
  view.setUint32(12, images.cols);
  out.set(images.pixels, 16);
  return out;
}

/** Serialises labels back to raw IDX bytes. */
export function encodeIdxLabels(labels: IdxLabels): Uint8Array {
  const out = new Uint8Array(8 + labels.labels.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, LABELS_MAGIC);
  view.setUint32(4, labels.count);
  out.set(labels.labels, 8);
  return out;
}
