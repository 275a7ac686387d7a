/** The user's own pictures as a Dataset: image folders and CSVs built here from real MNIST and Fashion-MNIST. */
import { mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { CnnxError } from '../../src/common/index.js';
import {
  classCounts,
  decodeImage,
  limitSplit,
  loadUserDataset,
  stratifiedSplit,
  type Dataset,
  type Split,
} from '../../src/data/index.js';
import { shuffleExamples } from '../../src/data/split.js';
import { pictureToPixels } from '../../src/preprocess/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import {
  indicesOf,
  kaggleHeader,
  loadFashion,
  loadMnist,
  pictureOf,
  pixelsAt,
  tinted,
  writeClassFolders,
  writeCsv,
  writePicture,
  type Raw,
} from './user-data-fixtures.js';

/**
 * The largest Uint8Array this Node allows, as src/data reads it (buffer.constants.MAX_LENGTH, at each load): the real
 * one unless a test sets `bytes`.
 */
const arrayLimit = vi.hoisted(() => ({ bytes: undefined as number | undefined }));
vi.mock('node:buffer', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:buffer')>();
  const constants = {
    ...actual.constants,
    get MAX_LENGTH() {
      return arrayLimit.bytes ?? actual.constants.MAX_LENGTH;
    },
  };
  return { ...actual, constants };
});

let mnist: Dataset;
let fashion: Dataset;
let root: string;
/** A fresh folder under the file's temporary folder. */
const folder = async (name: string) => {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
};

beforeAll(async () => {
  [mnist, fashion] = await Promise.all([loadMnist(), loadFashion()]);
  root = await tempDir('cnnx-user-data-');
});

/** Awaits `promise`, expecting a CnnxError with `code` and a message matching `message`. */
async function expectFault(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(CnnxError);
  const { code: actual, message: text } = error as CnnxError;
  expect({ code: actual, message: text }).toEqual({ code, message: expect.stringMatching(message) });
}

/** Rows for a CSV: MNIST train pictures at `indices` with their labels. */
const mnistRows = (indices: readonly number[]) =>
  indices.map((index) => ({ label: String(mnist.train.labels[index]), pixels: pictureOf(mnist.train, index).data }));

/** A split of 1-channel pictures: `pixels` ([count, rows, cols]) and their `labels`. */
const graySplit = (pixels: Uint8Array, labels: ArrayLike<number>, rows = 28, cols = 28): Split => ({
  count: labels.length,
  rows,
  cols,
  channels: 1,
  pixels,
  labels: Uint8Array.from(labels),
});

/**
 * A copy of `split` (read in class order) in the order loadUserDataset gives each part: shuffleExamples with seed
 * 1990, user-data.ts's ORDER_SEED.
 */
function inLoadOrder(split: Split): Split {
  const copy = { ...split, pixels: split.pixels.slice(), labels: split.labels.slice() };
  shuffleExamples(copy, 1990);
  return copy;
}

/** The first `n` train indices of each of `labels`, class by class. */
const byClass = (split: Split, labels: readonly number[], n: number) =>
  labels.flatMap((label) => indicesOf(split, label, n));

describe('image folders', () => {
  it('reads train/ and test/ class folders byte for byte, by class then file name, then in the fixed order', async () => {
    const dir = await folder('digits');
    const trainIndices = await writeClassFolders(join(dir, 'train'), mnist.train, [0, 1, 2], 10);
    const testIndices = await writeClassFolders(join(dir, 'test'), mnist.test, [0, 1, 2], 3);
    const data = await loadUserDataset(dir);
    expect([data.name, data.path, data.procedure, data.classes]).toEqual(['digits', dir, 'resize', ['0', '1', '2']]);
    const { count, rows, cols, channels } = data.train;
    expect([count, data.test.count, rows, cols, channels]).toEqual([30, 9, 28, 28, 1]);
    const listed = (split: Split, indices: number[]) =>
      graySplit(
        pixelsAt(split, indices),
        indices.map((i) => split.labels[i]!),
      );
    expect(data.train).toEqual(inLoadOrder(listed(mnist.train, trainIndices)));
    expect(data.test).toEqual(inLoadOrder(listed(mnist.test, testIndices)));
    expect(data.source).toBe(
      `image folder ${dir}: train/ (30 pictures); test: image folder ${dir}: test/ (9 pictures)`,
    );
    expect(data.files).toEqual([]);
  });

  it('holds out 10% of each class (seed 1989) when there is no test folder, the same part on every load', async () => {
    const dir = await folder('clothes');
    const labels = [0, 1, 8, 9];
    const names = ['T-shirt_top', 'trouser', 'Bag', 'Ankle boot'];
    const indices = await writeClassFolders(dir, fashion.train, labels, 20, { names });
    const first = await loadUserDataset(dir);
    expect(first.classes).toEqual(['Ankle boot', 'Bag', 'T-shirt_top', 'trouser']);
    expect(classCounts(first.train.labels, 4)).toEqual([18, 18, 18, 18]);
    expect(classCounts(first.test.labels, 4)).toEqual([2, 2, 2, 2]);
    expect(first.testSource).toBe('10% of each class of the training data, held out (stratified, seed 1989)');
    expect(first.trainSource).toBe(`image folder ${dir} (80 pictures; 8 pictures held out as the test part)`);
    // The folder's order is class by class in code point order: Ankle boot (9), Bag (8), T-shirt_top (0), trouser (1).
    const ordered = [9, 8, 0, 1].flatMap((label) =>
      indices.slice(labels.indexOf(label) * 20, labels.indexOf(label) * 20 + 20),
    );
    const all = graySplit(
      pixelsAt(fashion.train, ordered),
      Array.from({ length: 80 }, (_, i) => Math.floor(i / 20)),
    );
    // Put in the fixed order, then held out.
    const { kept, held } = stratifiedSplit(inLoadOrder(all), 0.1, 1989);
    expect([first.train, first.test]).toEqual([kept, held]);
    const second = await loadUserDataset(dir);
    expect([second.train, second.test]).toEqual([first.train, first.test]);
  });

  it('orders classes by code point, as Python sorts them', async () => {
    const dir = await folder('order');
    const names = ['b', 'B', 'é', '\u{1F600}', '\uFF5E'];
    await writeClassFolders(dir, mnist.train, [0, 1, 2, 3, 4], 2, { names });
    const data = await loadUserDataset(dir);
    // UTF-16 order (JavaScript's default sort) would put U+1F600 before U+FF5E.
    expect(data.classes).toEqual(['B', 'b', 'é', '\uFF5E', '\u{1F600}']);
  });

  it("orders a class's pictures folder by folder, as torchvision does", async () => {
    const dir = await folder('nested');
    const files = ['b.png', 'a/x.png', 'a-b/y.png', 'a/c/z.png'];
    const picked = indicesOf(mnist.train, 5, files.length);
    for (const [k, file] of files.entries()) {
      await writePicture(join(dir, 'train', 'five', file), pictureOf(mnist.train, picked[k]!));
    }
    await writeClassFolders(join(dir, 'train'), mnist.train, [6], 1);
    await writeClassFolders(join(dir, 'test'), mnist.test, [6], 1);
    const data = await loadUserDataset(dir);
    expect(data.classes).toEqual(['6', 'five']);
    const six = indicesOf(mnist.train, 6, 1);
    const listed = graySplit(pixelsAt(mnist.train, [...six, ...picked]), [0, 1, 1, 1, 1]);
    expect(data.train).toEqual(inLoadOrder(listed));
  });

  it('reads pictures in subfolders of a class folder, and skips hidden and other files, saying how many', async () => {
    const dir = await folder('skips');
    await writeClassFolders(dir, mnist.train, [3, 4], 3);
    await writePicture(join(dir, '3', 'more', 'extra.png'), pictureOf(mnist.train, indicesOf(mnist.train, 3, 4)[3]!));
    await writeFile(join(dir, '3', 'notes.txt'), 'not a picture');
    await writeFile(join(dir, '3', '.DS_Store'), 'hidden');
    await writePicture(join(dir, '4', '.thumbs', 'x.png'), pictureOf(mnist.train, 0));
    await mkdir(join(dir, '.git'));
    const messages: string[] = [];
    const data = await loadUserDataset(dir, { log: (m) => messages.push(m) });
    expect(classCounts(data.train.labels, 2).map((n, c) => n + classCounts(data.test.labels, 2)[c]!)).toEqual([4, 3]);
    expect(messages).toContain(`skipped 4 files of ${dir} (hidden, or not .png, .jpg, .jpeg or .webp)`);
    expect(data.source).toMatch(/\(4 other files skipped\)$/);
  });

  it('puts the pictures in a fixed mixed order, so that a short prefix (--limit) of 3 classes has every class', async () => {
    const dir = await folder('prefix');
    await writeClassFolders(join(dir, 'train'), mnist.train, [0, 1, 2], 10);
    await writeClassFolders(join(dir, 'test'), mnist.test, [0, 1, 2], 5);
    const data = await loadUserDataset(dir);
    // Read in class order, these prefixes would hold class 0 alone.
    expect(classCounts(limitSplit(data.train, 6).labels, 3).every((n) => n > 0)).toBe(true);
    expect(classCounts(limitSplit(data.test, 3).labels, 3).every((n) => n > 0)).toBe(true);
  });

  it('skips symbolic links that loop back to a folder already read or lead nowhere, saying how many', async () => {
    const dir = await folder('links');
    await writeClassFolders(dir, mnist.train, [0, 1], 3);
    await writePicture(join(dir, '0', 'sub', 'x.png'), pictureOf(mnist.train, indicesOf(mnist.train, 0, 4)[3]!));
    await symlink('..', join(dir, '0', 'sub', 'up')); // to its folder's parent, 0/: a loop
    await symlink(dir, join(dir, '1', 'all')); // to the folder of class folders
    await symlink(join(dir, '0'), join(dir, 'zero')); // a second name for class 0, not a class
    await symlink(join(dir, 'nothing.png'), join(dir, '1', 'gone.png')); // leads nowhere
    const messages: string[] = [];
    const data = await loadUserDataset(dir, { log: (m) => messages.push(m) });
    expect(data.classes).toEqual(['0', '1']);
    const counts = classCounts(data.train.labels, 2).map((n, c) => n + classCounts(data.test.labels, 2)[c]!);
    expect(counts).toEqual([4, 3]);
    expect(messages).toEqual([
      `skipped 4 symbolic links in ${dir}: each leads nowhere, or to a folder already read (a loop)`,
    ]);
    expect(data.source).toMatch(/\(4 other files skipped\)$/);
  });

  it('says that pictures outside class folders are skipped, and names an empty picture file', async () => {
    const dir = await folder('outside');
    await writeClassFolders(join(dir, 'train'), mnist.train, [0, 1], 2);
    await writePicture(join(dir, 'train', 'loose.png'), pictureOf(mnist.train, 0));
    await writeFile(join(dir, 'train', 'notes.txt'), 'not a picture');
    const messages: string[] = [];
    const data = await loadUserDataset(dir, { log: (m) => messages.push(m) });
    expect(data.train.count + data.test.count).toBe(4);
    expect(messages).toEqual([
      `skipped 1 file of ${dir}/train (hidden, or not .png, .jpg, .jpeg or .webp)`,
      `skipped 1 picture outside class folders in ${dir}/train: a picture must be inside its class's folder (${dir}/train/<class>/)`,
    ]);
    await writeFile(join(dir, 'train', '1', 'empty.png'), '');
    await expectFault(
      loadUserDataset(dir),
      'BAD_IMAGE',
      new RegExp(`^${dir}/train/1/empty.png: empty file \\(0 bytes\\), not a picture`),
    );
  });
});

describe('channels', () => {
  it('are 1 for gray PNGs, 3 when any picture is in colour (gray ones repeated in R, G, B)', async () => {
    const dir = await folder('colour');
    const [gray, coloured] = [indicesOf(mnist.train, 5, 1)[0]!, indicesOf(mnist.train, 6, 1)[0]!];
    await writePicture(join(dir, 'train', 'five', 'a.png'), pictureOf(mnist.train, gray));
    await writePicture(join(dir, 'train', 'five', 'b.png'), pictureOf(mnist.train, gray));
    await writePicture(join(dir, 'train', 'six', 'a.png'), tinted(pictureOf(mnist.train, coloured)));
    await writePicture(join(dir, 'test', 'six', 'a.png'), tinted(pictureOf(mnist.train, coloured)));
    const messages: string[] = [];
    const data = await loadUserDataset(dir, { log: (m) => messages.push(m) });
    expect(data.train.channels).toBe(3);
    expect(messages).toContain('the pictures are in colour: reading them as RGB');
    const digit = pictureOf(mnist.train, gray).data;
    expect(data.train.pixels.subarray(0, 784 * 3)).toEqual(
      Uint8Array.from({ length: 784 * 3 }, (_, i) => digit[Math.floor(i / 3)]!),
    );
    expect(data.train.pixels.subarray(784 * 6)).toEqual(tinted(pictureOf(mnist.train, coloured)).data);
    expect(data.test.pixels).toEqual(tinted(pictureOf(mnist.train, coloured)).data);
    const gray1 = await loadUserDataset(dir, { channels: 1 });
    expect(gray1.train.channels).toBe(1);
    expect(gray1.train.pixels.subarray(0, 784)).toEqual(digit);
  });

  it('are 1 for gray pictures saved as RGB JPEGs with a few levels of chroma noise', async () => {
    const dir = await folder('gray-jpeg');
    for (const [k, label] of [7, 8].entries()) {
      for (const [n, index] of indicesOf(mnist.train, label, 3).entries()) {
        const picture = tinted(pictureOf(mnist.train, index), [1, 1, 1]);
        // Chroma noise of up to 3 levels, as a camera or a colour scanner leaves on a gray page.
        picture.data.forEach((v, i) => (picture.data[i] = Math.min(255, Math.max(0, v + (((i * 7 + n) % 7) - 3)))));
        await writePicture(join(dir, `class${k}`, `${n}.jpg`), picture, 'jpeg');
      }
    }
    expect((await sharp(join(dir, 'class0', '0.jpg')).metadata()).channels).toBe(3);
    const data = await loadUserDataset(dir);
    expect(data.train.channels).toBe(1);
    const rgb = await loadUserDataset(dir, { channels: 3 });
    expect(rgb.train.channels).toBe(3);
  });
});

describe('picture sizes', () => {
  /** MNIST picture `index` stretched to `width` x `height` by sharp. */
  const stretched = async (index: number, width: number, height: number): Promise<Raw> => {
    const { data } = pictureOf(mnist.train, index);
    const out = await sharp(data, { raw: { width: 28, height: 28, channels: 1 } })
      .resize(width, height, { fit: 'fill' })
      .extractChannel(0)
      .raw()
      .toBuffer();
    return { width, height, channels: 1, data: new Uint8Array(out) };
  };

  it("keep the pictures' own odd size, or resize every picture to `size` as pictureToPixels does", async () => {
    const dir = await folder('odd');
    for (const label of [1, 2]) {
      const [first, second] = indicesOf(mnist.train, label, 2);
      await writePicture(join(dir, 'train', `c${label}`, '0.png'), await stretched(first!, 26, 30));
      await writePicture(join(dir, 'test', `c${label}`, '0.png'), await stretched(second!, 26, 30));
    }
    const own = await loadUserDataset(dir);
    expect([own.train.rows, own.train.cols, own.train.pixels.length]).toEqual([30, 26, 2 * 30 * 26]);
    const sized = await loadUserDataset(dir, { size: [20, 24] });
    expect([sized.train.rows, sized.train.cols, sized.train.channels]).toEqual([20, 24, 1]);
    const picture = await decodeImage(await readFile(join(dir, 'train', 'c1', '0.png')));
    expect(sized.train.pixels.subarray(0, 480)).toEqual(pictureToPixels(picture, 1, 20, 24));
  });

  it('that differ need --image-size, naming two files of different sizes', async () => {
    const dir = await folder('mixed');
    await writePicture(join(dir, 'a', '0.png'), pictureOf(mnist.train, 0));
    await writePicture(join(dir, 'a', '1.png'), pictureOf(mnist.train, 1));
    await writePicture(join(dir, 'b', '0.png'), await stretched(2, 26, 30));
    await expectFault(
      loadUserDataset(dir),
      'DATA_NEEDS_SIZE',
      new RegExp(`pictures differ in size: ${dir}/a/0.png is 28x28, ${dir}/b/0.png is 30x26; give --image-size HxW`),
    );
    const data = await loadUserDataset(dir, { size: [28, 28] });
    expect(data.train.count + data.test.count).toBe(3);
  });

  it('over 512 pixels on a side need --image-size', async () => {
    const dir = await folder('large');
    const big: Raw = { width: 20, height: 600, channels: 1, data: new Uint8Array(12000).fill(200) };
    await writePicture(join(dir, 'a', '0.png'), big);
    await writePicture(join(dir, 'b', '0.png'), big);
    await expectFault(
      loadUserDataset(dir),
      'DATA_NEEDS_SIZE',
      /a\/0.png: the pictures are 600x20, over 512 pixels on a side; give --image-size/,
    );
    expect((await loadUserDataset(dir, { size: [60, 2] })).train.pixels.every((v) => v === 200)).toBe(true);
  });
});

describe('CSV files', () => {
  const indices = () => byClass(mnist.train, [0, 1, 2], 10);

  it('read with a Kaggle header or without one, to the same bytes', async () => {
    const dir = await folder('csv');
    const rows = mnistRows(indices());
    await writeCsv(join(dir, 'header.csv'), rows, kaggleHeader(784));
    await writeCsv(join(dir, 'plain.csv'), rows);
    const withHeader = await loadUserDataset(join(dir, 'header.csv'));
    const plain = await loadUserDataset(join(dir, 'plain.csv'));
    expect([withHeader.name, withHeader.classes, withHeader.train.channels]).toEqual(['header', ['0', '1', '2'], 1]);
    expect([plain.train, plain.test]).toEqual([withHeader.train, withHeader.test]);
    const rowsInOrder = graySplit(
      pixelsAt(mnist.train, indices()),
      indices().map((i) => mnist.train.labels[i]!),
    );
    const all = stratifiedSplit(inLoadOrder(rowsInOrder), 0.1, 1989);
    expect([withHeader.train, withHeader.test]).toEqual([all.kept, all.held]);
    expect(withHeader.trainSource).toBe(
      `CSV ${join(dir, 'header.csv')} (30 rows, label column "label"; 3 pictures held out as the test part)`,
    );
    expect(plain.trainSource).toMatch(/\(30 rows, no header; 3 pictures held out as the test part\)$/);
    expect(withHeader.files).toEqual([{ file: join(dir, 'header.csv'), checksum: 'not checked' }]);
  });

  it('take the label from the column named label wherever it is, and names as labels (code point order)', async () => {
    const dir = await folder('csv-named');
    const labels = [0, 8, 9];
    const picked = byClass(fashion.train, labels, 4);
    const names = ['T-shirt/top', 'Bag', 'Ankle boot'];
    const lines = picked.map(
      (i) => `${pictureOf(fashion.train, i).data.join(',')},"${names[labels.indexOf(fashion.train.labels[i]!)]}"`,
    );
    const header = [...Array.from({ length: 784 }, (_, i) => `p${i}`), 'Label'].join(',');
    await writeFile(join(dir, 'clothes.csv'), `${header}\r\n${lines.join('\r\n')}\r\n`);
    const data = await loadUserDataset(join(dir, 'clothes.csv'));
    expect(data.classes).toEqual(['Ankle boot', 'Bag', 'T-shirt/top']);
    expect(data.train.count + data.test.count).toBe(12);
    // The same rows with the label first (no quotes, no header) load to the same dataset.
    const rows = picked.map((i) => ({
      label: names[labels.indexOf(fashion.train.labels[i]!)]!,
      pixels: pictureOf(fashion.train, i).data,
    }));
    await writeCsv(join(dir, 'first.csv'), rows);
    const first = await loadUserDataset(join(dir, 'first.csv'));
    expect([first.classes, first.train, first.test]).toEqual([data.classes, data.train, data.test]);
    expect(data.trainSource).toMatch(/\(12 rows, label column "Label"; /);
  });

  it('read RGB rows (r, g, b per pixel) with channels 3, and without it say to give --channels 3', async () => {
    const dir = await folder('csv-rgb');
    const rows = indices().map((i) => ({
      label: String(mnist.train.labels[i]),
      pixels: tinted(pictureOf(mnist.train, i)).data,
    }));
    await writeCsv(join(dir, 'rgb.csv'), rows);
    const data = await loadUserDataset(join(dir, 'rgb.csv'), { channels: 3 });
    const listed: Split = {
      count: 30,
      rows: 28,
      cols: 28,
      channels: 3,
      pixels: Uint8Array.from(rows.flatMap((row) => [...row.pixels])),
      labels: Uint8Array.from(rows, (row) => Number(row.label)),
    };
    const { kept, held } = stratifiedSplit(inLoadOrder(listed), 0.1, 1989);
    expect([data.train, data.test]).toEqual([kept, held]);
    // 2352 columns are also a gray picture of some other size: never read as RGB unasked.
    for (const channels of [undefined, 1] as const) {
      await expectFault(
        loadUserDataset(join(dir, 'rgb.csv'), channels === undefined ? {} : { channels }),
        'DATA_BAD_CSV',
        /rgb.csv: 2352 pixel columns are not a square gray picture .*; 2352 = 3 x 28 x 28: if the pictures are RGB 28x28, give --channels 3$/,
      );
    }
  });

  it('read a gray 24x32 CSV (768 = 3 x 16 x 16 columns) as RGB 16x16 only with channels 3', async () => {
    const dir = await folder('csv-768');
    const rows = [0, 1, 0, 1].map((label, n) => ({
      label: String(label),
      pixels: Uint8Array.from({ length: 768 }, (_, i) => (i * 7 + n * 50) % 256),
    }));
    await writeCsv(join(dir, 'wide.csv'), rows);
    const file = join(dir, 'wide.csv');
    await expectFault(
      loadUserDataset(file),
      'DATA_BAD_CSV',
      /wide.csv: 768 pixel columns are not a square gray picture \(side x side values, e.g. 784 for 28x28\); give the pictures' own size with --image-size HxW; 768 = 3 x 16 x 16: if the pictures are RGB 16x16, give --channels 3$/,
    );
    // A size that is not the CSV's own does not make it RGB 16x16 either.
    await expectFault(
      loadUserDataset(file, { size: [28, 28] }),
      'DATA_BAD_CSV',
      /768 pixel columns are not a square gray picture \(.*\), nor a 28x28 one \(784 values\); give/,
    );
    const gray = await loadUserDataset(file, { size: [24, 32] });
    expect([gray.train.rows, gray.train.cols, gray.train.channels]).toEqual([24, 32, 1]);
    const all = [...gray.train.pixels, ...gray.test.pixels].sort((a, b) => a - b);
    expect(all).toEqual(rows.flatMap((row) => [...row.pixels]).sort((a, b) => a - b));
    const rgb = await loadUserDataset(file, { channels: 3 });
    expect([rgb.train.rows, rgb.train.cols, rgb.train.channels]).toEqual([16, 16, 3]);
  });

  it('take a separate test CSV, its classes matched by name, and resize to `size`', async () => {
    const dir = await folder('csv-test');
    await writeCsv(join(dir, 'train.csv'), mnistRows(indices()), kaggleHeader(784));
    const testIndices = byClass(mnist.test, [1, 2], 2);
    const testRows = testIndices.map((i) => ({
      label: String(mnist.test.labels[i]),
      pixels: pictureOf(mnist.test, i).data,
    }));
    await writeCsv(join(dir, 'test.csv'), testRows);
    const data = await loadUserDataset(join(dir, 'train.csv'), { testPath: join(dir, 'test.csv') });
    expect([data.train.count, data.test.count]).toEqual([30, 4]);
    // Test labels "1" and "2" are the training classes 1 and 2; the rows are put in the fixed order too.
    expect(data.test).toEqual(inLoadOrder(graySplit(pixelsAt(mnist.test, testIndices), [1, 1, 2, 2])));
    expect(data.testSource).toBe(`CSV ${join(dir, 'test.csv')} (4 rows, no header)`);
    const small = await loadUserDataset(join(dir, 'train.csv'), { testPath: join(dir, 'test.csv'), size: [14, 14] });
    expect([small.train.rows, small.train.cols]).toEqual([14, 14]);
    const resized = testRows.flatMap((row) => [
      ...pictureToPixels({ width: 28, height: 28, channels: 1, data: row.pixels }, 1, 14, 14),
    ]);
    expect(small.test).toEqual(inLoadOrder(graySplit(Uint8Array.from(resized), [1, 1, 2, 2], 14, 14)));
  });

  it('read a non-square picture with its size given', async () => {
    const dir = await folder('csv-wide');
    const rows = [0, 1, 2, 3].map((n) => ({ label: String(n % 2), pixels: new Uint8Array(780).fill(n * 10) }));
    await writeCsv(join(dir, 'wide.csv'), rows);
    const data = await loadUserDataset(join(dir, 'wide.csv'), { size: [30, 26] });
    expect([data.train.rows, data.train.cols, data.train.count + data.test.count]).toEqual([30, 26, 4]);
    await expectFault(
      loadUserDataset(join(dir, 'wide.csv')),
      'DATA_BAD_CSV',
      /wide.csv: 780 pixel columns are not a square gray picture \(side x side values, e.g. 784 for 28x28\); give the pictures' own size with --image-size HxW$/,
    );
  });
});

it('loads the same 200 MNIST pictures as a folder of PNGs and as a CSV to the same bytes', async () => {
  const dir = await folder('same');
  const picked = byClass(mnist.train, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 20);
  await writeClassFolders(join(dir, 'pngs'), mnist.train, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 20);
  await writeCsv(join(dir, 'digits.csv'), mnistRows(picked), kaggleHeader(784));
  const pngs = await loadUserDataset(join(dir, 'pngs'));
  const csv = await loadUserDataset(join(dir, 'digits.csv'));
  expect(pngs.classes).toEqual(csv.classes);
  expect([pngs.train, pngs.test]).toEqual([csv.train, csv.test]);
  expect(pngs.train.count).toBe(180);
});

describe('faults, each naming the file', () => {
  it('a picture that is not one, or is damaged', async () => {
    const dir = await folder('bad-picture');
    await writeClassFolders(dir, mnist.train, [0, 1], 2);
    await writeFile(join(dir, '1', 'text.png'), 'this is text, not a PNG');
    const text = `${dir}/1/text.png is not an image format cnnx knows; use a PNG, JPEG or WebP image`;
    await expectFault(loadUserDataset(dir), 'BAD_IMAGE', new RegExp(text));
    await expectFault(loadUserDataset(dir, { size: [14, 14] }), 'BAD_IMAGE', new RegExp(text));
    // The first picture's header is read alone (for the size): a text file there is named too.
    await writeFile(join(dir, '0', '!first.png'), 'this is text, not a PNG');
    await expectFault(loadUserDataset(dir), 'BAD_IMAGE', new RegExp(`${dir}/0/!first.png: not a decodable PNG`));
    await rm(join(dir, '0', '!first.png'));
    await rm(join(dir, '1', 'text.png'));
    const png = await readFile(join(dir, '1', '001.png'));
    await writeFile(join(dir, '1', '001.png'), png.subarray(0, png.length - 30));
    await expectFault(
      loadUserDataset(dir),
      'BAD_IMAGE',
      new RegExp(`${dir}/1/001.png: not a decodable PNG, JPEG or WebP image`),
    );
  });

  it('no class folders, an empty class folder, a single class', async () => {
    const flat = await folder('flat');
    await writePicture(join(flat, 'a.png'), pictureOf(mnist.train, 0));
    await expectFault(
      loadUserDataset(flat),
      'DATA_CLASS_COUNT',
      new RegExp(`${flat}: no class folders \\(1 file lies in it directly\\)`),
    );
    const empty = await folder('empty-class');
    await writeClassFolders(empty, mnist.train, [0, 1], 2);
    await mkdir(join(empty, '2'));
    await writeFile(join(empty, '2', 'readme.txt'), 'no pictures here');
    await expectFault(
      loadUserDataset(empty),
      'DATA_EMPTY_CLASS',
      new RegExp(`${empty}/2: class folder with no pictures`),
    );
    const single = await folder('single');
    await writeClassFolders(join(single, 'train'), mnist.train, [4], 3);
    await expectFault(
      loadUserDataset(single),
      'DATA_CLASS_COUNT',
      new RegExp(`${single}: 1 class \\(4\\); a classifier needs 2 to 255`),
    );
  });

  it('a test class the training data lacks', async () => {
    const dir = await folder('unknown-test-class');
    await writeClassFolders(join(dir, 'train'), mnist.train, [0, 1], 2);
    await writeClassFolders(join(dir, 'test'), mnist.test, [1, 7], 1);
    await expectFault(
      loadUserDataset(dir),
      'DATA_UNKNOWN_CLASS',
      new RegExp(`${dir}/test/7: test class "7" is not a class of the training data \\(0, 1\\)`),
    );
  });

  it('Train/ and Test/ in another case, and class names in decomposed Unicode (as macOS writes them)', async () => {
    const dir = await folder('capitalised');
    // Composed, "école" sorts after "fleur" (U+00E9 > f); decomposed, before it (e + U+0301).
    const nfc = '\u00e9cole';
    const nfd = 'e\u0301cole';
    await writeClassFolders(join(dir, 'Train'), mnist.train, [0, 1], 2, { names: [nfd, 'fleur'] });
    await writeClassFolders(join(dir, 'TEST'), mnist.test, [0, 1], 1, { names: [nfc, 'fleur'] });
    const data = await loadUserDataset(dir);
    expect(data.classes).toEqual(['fleur', nfc]);
    expect([data.train.count, data.test.count]).toEqual([4, 2]);
    // The same classes in the same order, whichever form the names are written in on disk.
    const composed = await folder('composed');
    await writeClassFolders(composed, mnist.train, [0, 1], 2, { names: [nfc, 'fleur'] });
    const decomposed = await folder('decomposed');
    await writeClassFolders(decomposed, mnist.train, [0, 1], 2, { names: [nfd, 'fleur'] });
    const [a, b] = [await loadUserDataset(composed), await loadUserDataset(decomposed)];
    expect(b.classes).toEqual(a.classes);
    expect(b.train).toEqual(a.train);
    // A class folder named Train (buses, cars, trains) that holds pictures is a class, not the training part.
    const vehicles = await folder('vehicles');
    await writeClassFolders(vehicles, mnist.train, [0, 1, 2], 2, { names: ['Bus', 'Car', 'Train'] });
    expect((await loadUserDataset(vehicles)).classes).toEqual(['Bus', 'Car', 'Train']);
    // One folder under each spelling of the same name is one class twice.
    const twice = await folder('twice');
    await writeClassFolders(twice, mnist.train, [0, 1], 2, { names: [nfc, nfd] });
    await expectFault(
      loadUserDataset(twice),
      'DATA_BAD_KIND',
      new RegExp(`${twice}: two class folders are named "${nfc}", written with different Unicode characters`),
    );
  });

  it("a CSV header that names no label column, as Kaggle's unlabelled test.csv", async () => {
    const dir = await folder('csv-no-label');
    const rows = [0, 1, 2].map((i) => ({
      label: String(mnist.train.labels[i]),
      pixels: pictureOf(mnist.train, i).data,
    }));
    const header = Array.from({ length: 784 }, (_, i) => `pixel${i}`).join(',');
    await writeFile(
      join(dir, 'test.csv'),
      `${header}\n${rows.map((row) => Array.from(row.pixels).join(',')).join('\n')}\n`,
    );
    await expectFault(
      loadUserDataset(join(dir, 'test.csv')),
      'DATA_BAD_CSV',
      /test\.csv line 1: a header that names no label column \(pixel0,pixel1,pixel2,\.\.\.\): name the column of class labels "label"/,
    );
  });

  it('a folder of class folders with a test/ (or testing/) folder but no train/', async () => {
    const dir = await folder('no-train');
    await writeClassFolders(dir, mnist.train, [0, 1], 2);
    await writeClassFolders(join(dir, 'testing'), mnist.test, [0, 1], 1);
    await expectFault(
      loadUserDataset(dir),
      'DATA_BAD_KIND',
      new RegExp(
        `^${dir}: a testing/ folder but no train/ folder, so testing/ would be taken for a class; put the class folders under ${dir}/train/ `,
      ),
    );
  });

  it('a path that does not exist, or is neither a folder nor a CSV', async () => {
    const dir = await folder('kinds');
    await expectFault(
      loadUserDataset(join(dir, 'nothing')),
      'DATA_NOT_FOUND',
      new RegExp(`${dir}/nothing: no such file or folder`),
    );
    await writeFile(join(dir, 'pictures.txt'), '0,1,2');
    await expectFault(
      loadUserDataset(join(dir, 'pictures.txt')),
      'DATA_BAD_KIND',
      /pictures.txt: neither a folder nor a .csv file/,
    );
    await writeClassFolders(dir, mnist.train, [0, 1], 2);
    await expectFault(
      loadUserDataset(dir, { testPath: join(dir, 'none.csv') }),
      'DATA_NOT_FOUND',
      /none.csv: no such file or folder \(the test data\)/,
    );
  });

  it.each([
    ['ragged.csv', `0,${'1,'.repeat(783)}1\n1,2,3\n`, /ragged.csv line 2: 3 fields, expected 785/],
    [
      'fraction.csv',
      `0,12.5,${'0,'.repeat(782)}0\n`,
      /fraction.csv line 1: field 2 is "12.5", not a pixel value \(an integer 0-255\)/,
    ],
    [
      'range.csv',
      `${kaggleHeader(784)}\n0,${'0,'.repeat(783)}0\n1,${'0,'.repeat(300)}256,${'0,'.repeat(482)}0\n`,
      /range.csv line 3: field 302 is "256"/,
    ],
    ['negative.csv', `0,-1,${'0,'.repeat(782)}0\n`, /negative.csv line 1: field 2 is "-1"/],
    ['label.csv', `0,${'0,'.repeat(783)}0\n ,${'0,'.repeat(783)}0\n`, /label.csv line 2: empty label/],
    ['empty.csv', '\n\n', /empty.csv: empty file/],
    ['header.csv', `${kaggleHeader(784)}\n`, /header.csv: a header and no rows/],
    ['columns.csv', '0,1,2,3,4,5\n1,1,2,3,4,5\n', /columns.csv: 5 pixel columns are not a square gray picture/],
  ])('a CSV with a fault: %s', async (name, text, message) => {
    const dir = await folder('csv-faults');
    await writeFile(join(dir, name), text);
    await expectFault(loadUserDataset(join(dir, name)), 'DATA_BAD_CSV', message);
  });

  it('CSV labels: a skipped integer, too many classes, a test label unknown to train', async () => {
    const dir = await folder('csv-labels');
    const row = (label: string) => `${label},${'0,'.repeat(3)}0`;
    await writeFile(join(dir, 'gap.csv'), [0, 0, 2, 2].map(String).map(row).join('\n'));
    await expectFault(
      loadUserDataset(join(dir, 'gap.csv')),
      'DATA_EMPTY_CLASS',
      /gap.csv: no row has label 1, but labels run from 0 to 2/,
    );
    await writeFile(join(dir, 'big.csv'), ['0', '300'].map(row).join('\n'));
    await expectFault(
      loadUserDataset(join(dir, 'big.csv')),
      'DATA_CLASS_COUNT',
      /big.csv line 2: label 300; integer labels run from 0 to 254/,
    );
    await writeFile(join(dir, 'train.csv'), ['0', '1', '0', '1'].map(row).join('\n'));
    await writeFile(join(dir, 'test.csv'), ['1', '1', '5'].map(row).join('\n'));
    await expectFault(
      loadUserDataset(join(dir, 'train.csv'), { testPath: join(dir, 'test.csv') }),
      'DATA_UNKNOWN_CLASS',
      /test.csv line 3: test class "5" is not a class of the training data \(0, 1\)/,
    );
  });

  it.each([
    [
      'decimal.csv',
      ['0', '1', '1.0', '2'],
      /decimal.csv line 3: label "1.0" is a number but not a whole number from 0 to 254; labels must be whole numbers from 0 to 254 \(the class index\) or names, not both/,
    ],
    [
      'minus.csv',
      ['-1', '0', '1', '2'],
      /minus.csv line 1: label "-1" is a number but not a whole number from 0 to 254/,
    ],
    [
      'mixed.csv',
      ['0', '1', 'cat', '1'],
      /mixed.csv line 3: label "cat" is a name, but line 1's label "0" is a number; labels must/,
    ],
    [
      'named.csv',
      ['cat', 'dog', '7', 'cat'],
      /named.csv line 3: label "7" is a number, but line 1's label "cat" is a name/,
    ],
  ])('CSV labels that would shift class indices: %s', async (name, labels, message) => {
    const dir = await folder('csv-shift');
    await writeFile(join(dir, name), labels.map((label) => `${label},0,0,0,0`).join('\n'));
    await expectFault(loadUserDataset(join(dir, name)), 'DATA_BAD_CSV', message);
  });

  it('CSV labels that are all whole numbers (leading zeros dropped) or all names load', async () => {
    const dir = await folder('csv-good-labels');
    await writeFile(join(dir, 'zeros.csv'), ['00', '01', '2', '1', '0', '2'].map((l) => `${l},0,0,0,0`).join('\n'));
    expect((await loadUserDataset(join(dir, 'zeros.csv'))).classes).toEqual(['0', '1', '2']);
    await writeFile(join(dir, 'names.csv'), ['2nd', '1st', 'NaN', '1st'].map((l) => `${l},0,0,0,0`).join('\n'));
    expect((await loadUserDataset(join(dir, 'names.csv'))).classes).toEqual(['1st', '2nd', 'NaN']);
  });

  it('a part larger than one array may hold in this Node (made 3,000 bytes here), from a folder or a CSV', async () => {
    const dir = await folder('one-array');
    await writeClassFolders(join(dir, 'pics'), mnist.train, [0, 1], 2);
    await writeFile(join(dir, 'small.csv'), ['0', '1', '0', '1'].map((l) => `${l},1,2,3,4`).join('\n'));
    await writeCsv(join(dir, 'big.csv'), mnistRows(byClass(mnist.train, [0, 1], 2)));
    arrayLimit.bytes = 3000;
    try {
      await expectFault(
        loadUserDataset(join(dir, 'pics')),
        'DATA_TOO_LARGE',
        /pics: the training part's 4 pictures of 28x28x1 take 3,136 bytes decoded, more than one array may hold in Node v[\d.]+ \(3,000 bytes\); give a smaller --image-size, or use fewer pictures$/,
      );
      expect((await loadUserDataset(join(dir, 'pics'), { size: [27, 27] })).train.count).toBe(2);
      await expectFault(
        loadUserDataset(join(dir, 'small.csv'), { size: [28, 28] }),
        'DATA_TOO_LARGE',
        /small.csv: the training part's 4 pictures of 28x28x1 take 3,136 bytes decoded, more than one array/,
      );
      // A CSV's own pixels are one array too, refused at the row that would not fit.
      await expectFault(
        loadUserDataset(join(dir, 'big.csv')),
        'DATA_TOO_LARGE',
        /big.csv line 4: the pixel values up to this row take 3,136 bytes, more than one array may hold in Node v[\d.]+ \(3,000 bytes\)/,
      );
    } finally {
      arrayLimit.bytes = undefined;
    }
  });

  it('data that would not fit in memory', async () => {
    const dir = await folder('memory');
    const { totalmem } = await import('node:os');
    const rows = Math.ceil(totalmem() / 2 / (512 * 512)) + 2;
    await writeFile(join(dir, 'many.csv'), Array.from({ length: rows }, (_, i) => `${i % 2},1,2,3,4`).join('\n'));
    await expectFault(
      loadUserDataset(join(dir, 'many.csv'), { size: [512, 512] }),
      'DATA_TOO_LARGE',
      /many.csv: [\d,]+ pictures of 512x512x1 take [\d.]+ GB decoded, over the [\d.]+ GB allowed .*smaller --image-size/,
    );
  });

  it('options out of range', async () => {
    await expect(loadUserDataset(root, { channels: 2 as 1 })).rejects.toThrow(RangeError);
    await expect(loadUserDataset(root, { size: [0, 28] })).rejects.toThrow(
      /size must be \[height, width\], integers from 1 to 512/,
    );
  });
});

describe('the test data and the cache', () => {
  it("a separate test folder replaces the folder's own test/, which is not read; other folders are named", async () => {
    const dir = await folder('replaced');
    await writeClassFolders(join(dir, 'train'), mnist.train, [0, 1], 3);
    await writeClassFolders(join(dir, 'test'), mnist.test, [0, 1], 1);
    await writeClassFolders(join(dir, 'val'), mnist.test, [0, 1], 1);
    const other = await folder('replacement');
    await writeClassFolders(other, mnist.test, [1], 2, { first: 5 });
    const messages: string[] = [];
    const data = await loadUserDataset(dir, { testPath: other, log: (m) => messages.push(m) });
    expect(Array.from(data.test.labels)).toEqual([1, 1]);
    expect(data.testSource).toBe(`image folder ${other} (2 pictures)`);
    expect(messages).toEqual([
      `not read: ${dir}/val (only train/ and test/ are)`,
      `not read: ${dir}/test (the test data is ${other})`,
    ]);
  });

  it('reads the test part of a split folder given as the test data (a dataset as downloaded, train/ and Test/)', async () => {
    const dir = await folder('own-train');
    await writeClassFolders(dir, mnist.train, [0, 1], 3);
    const other = await folder('downloaded');
    await writeClassFolders(join(other, 'train'), mnist.train, [0, 1], 2, { first: 10 });
    await writeClassFolders(join(other, 'Test'), mnist.test, [1], 2, { first: 5 });
    const messages: string[] = [];
    const data = await loadUserDataset(dir, { testPath: other, log: (m) => messages.push(m) });
    expect(Array.from(data.test.labels)).toEqual([1, 1]);
    expect(data.testSource).toBe(`image folder ${join(other, 'Test')} (2 pictures)`);
    expect(messages).toContain(`test data: ${join(other, 'Test')}, the test part of ${other}`);
  });

  it('keeps decoded pictures under dataDir, read again until a file changes', async () => {
    const dir = await folder('cached');
    await writeClassFolders(dir, mnist.train, [0, 1], 5);
    const dataDir = await folder('cache');
    const messages: string[] = [];
    const log = (m: string) => messages.push(m);
    const first = await loadUserDataset(dir, { dataDir, log });
    expect(messages).toEqual([]);
    const second = await loadUserDataset(dir, { dataDir, log });
    expect(messages).toEqual([
      expect.stringMatching(
        new RegExp(`decoded pictures read from the cache ${dataDir}/user-data/cached-[0-9a-f]{16}\\.bin`),
      ),
    ]);
    expect(second).toEqual(first);
    // A damaged cache file is made again.
    const [cacheFile] = await readdir(join(dataDir, 'user-data'));
    const bytes = await readFile(join(dataDir, 'user-data', cacheFile!));
    await writeFile(join(dataDir, 'user-data', cacheFile!), bytes.subarray(0, bytes.length - 1));
    expect(await loadUserDataset(dir, { dataDir, log })).toEqual(first);
    expect(messages).toHaveLength(1);
    expect((await readFile(join(dataDir, 'user-data', cacheFile!))).length).toBe(bytes.length);
    // A different picture in place of one (new content, new modification time) is decoded again.
    await writePicture(join(dir, '0', '000.png'), pictureOf(mnist.train, indicesOf(mnist.train, 0, 10)[9]!));
    await utimes(join(dir, '0', '000.png'), new Date(), new Date(Date.now() + 5000));
    const third = await loadUserDataset(dir, { dataDir, log });
    expect(messages).toHaveLength(1);
    expect(third.train.pixels).not.toEqual(first.train.pixels);
    expect(resolve(third.path)).toBe(dir);
  });

  it("uses loadDataset's cache folder by default, for data of 1,000 pictures or more", async () => {
    const dir = await folder('default-cache');
    const cacheDir = await folder('default-cache-dir');
    const rows = (n: number) => Array.from({ length: n }, (_, i) => `${i % 2},${i % 256},1,2,3`).join('\n');
    await writeFile(join(dir, 'small.csv'), rows(999));
    await writeFile(join(dir, 'large.csv'), rows(1000));
    const saved = process.env.CNNX_DATA_DIR;
    process.env.CNNX_DATA_DIR = cacheDir;
    try {
      await loadUserDataset(join(dir, 'small.csv'));
      expect(await readdir(cacheDir)).toEqual([]);
      const messages: string[] = [];
      const first = await loadUserDataset(join(dir, 'large.csv'), { log: (m) => messages.push(m) });
      expect((await readdir(join(cacheDir, 'user-data'))).map((f) => f.replace(/-\w+\.bin$/, ''))).toEqual(['large']);
      expect(await loadUserDataset(join(dir, 'large.csv'), { log: (m) => messages.push(m) })).toEqual(first);
      expect(messages).toEqual([expect.stringMatching(/decoded pictures read from the cache/)]);
    } finally {
      if (saved === undefined) delete process.env.CNNX_DATA_DIR;
      else process.env.CNNX_DATA_DIR = saved;
    }
  });
});

describe('files a user might hand over by mistake', () => {
  it('an empty picture, and a UTF-16 CSV, each named for what it is', async () => {
    const dir = await folder('mistakes');
    await expect(decodeImage(new Uint8Array(0), 'digit.png')).rejects.toMatchObject({
      code: 'BAD_IMAGE',
      message: 'digit.png is empty (0 bytes), not a picture',
    });
    const rows = `label,p0,p1,p2,p3\n0,1,2,3,4\n1,5,6,7,8\n`;
    await writeFile(join(dir, 'excel.csv'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(rows, 'utf16le')]));
    await expectFault(
      loadUserDataset(join(dir, 'excel.csv')),
      'DATA_BAD_CSV',
      /excel\.csv: the text is UTF-16 \(or holds zero bytes\), not UTF-8: save the CSV as UTF-8/,
    );
  });
});
