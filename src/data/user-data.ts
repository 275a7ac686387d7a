/**
 * The user's own pictures as a Dataset: a folder of class folders (image-folder.ts) or a CSV of labels and pixels
 * (csv-dataset.ts), brought to one size and channel count with pictureToPixels (the `resize` procedure, which every
 * inference path applies too) and split into train and test.
 *
 * - Test part: `testPath` when given (a folder whose class folders are read directly, or a CSV); else the folder's
 *   own test/ (or testing/) folder; else TEST_FRACTION of each class of the training pictures held out
 *   (stratifiedSplit) with the fixed seed TEST_SEED, so the test part is the same in every run whatever the
 *   training seed. The test part's classes (matched by name) must be among the training data's; it may lack some.
 * - Channels: `channels`, else 3 when any picture (train or test) is in colour, else 1. A picture is in colour when
 *   at least 1 in 1,000 of its pixels (and at least one), transparent ones aside, has R, G and B more than
 *   COLOUR_SPREAD levels apart: a gray picture saved as an RGB JPEG keeps its chroma noise within a few levels and
 *   counts as gray. Without `channels`, the pictures are decoded as gray first; the first one found in colour has
 *   them all decoded again as RGB.
 * - Size: `size`, else the pictures' own size when all of them (train and test) share one: the first picture's,
 *   read from its header, and checked as each picture is decoded; pictures over MAX_OWN_SIDE on a side need
 *   `size`. (A picture over MAX_OWN_SIDE that decodeImage reduces to exactly the shared size passes.)
 * - Memory: the pictures are decoded into memory, once per process; datasets larger than memory are not streamed,
 *   and data that would take more than MEMORY_SHARE of this machine's memory is refused before any decoding, as is
 *   a part (train, or test) larger than one Uint8Array may be in this Node (buffer.constants.MAX_LENGTH, V8's limit:
 *   2^32 bytes in Node 20, 2^53 - 1 from Node 22), since each part's pictures are decoded into one.
 * - CSV: see csv-dataset.ts for how `size` and `channels` give a CSV's layout (RGB only with `channels` 3) and for
 *   its labels (all whole numbers 0-254, or all names).
 * - Cache: the decoded splits are kept in `<dataDir>/user-data/` (one file per data path and options, written
 *   atomically, replaced when the data changes) and read again while every file read keeps its path, size and
 *   modification time. Decoding costs about a millisecond a picture, reading the cache almost nothing. Without
 *   `dataDir`, loadDataset's cache folder is used, and only for data of CACHE_MIN_PICTURES pictures or more. Files
 *   of data that is gone stay until `<dataDir>/user-data/` is deleted.
 */
import { constants } from 'node:buffer';
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { CnnxError, messageOf, produceFileAtomic, whyUnreadable } from '../common/index.js';
import { WORKING_SIDE, type PixelImage } from '../preprocess/index.js';
import { csvClasses, csvGeometry, readCsvTable, renderCsv } from './csv-dataset.js';
import { defaultDataDir, type Dataset } from './datasets.js';
import {
  decodePictures,
  listClassFolders,
  testPartOf,
  openImageFolder,
  pictureSize,
  sizesDiffer,
  skippedNotes,
  type ClassFolders,
  type OwnSize,
  type RenderTarget,
} from './image-folder.js';
import { MAX_CLASSES, shuffleExamples, stratifiedSplit, type Split } from './split.js';

/** Share of the training pictures held out as the test part when the data has none. */
const TEST_FRACTION = 0.1;
/** Seed of the fixed order the pictures are put in after they are read (by class, then by path). */
const ORDER_SEED = 1990;
/** Seed of the held-out test part: fixed, so every run of every model tests on the same pictures. */
const TEST_SEED = 1989;
/** R, G and B of a gray pixel differ by at most this many levels (JPEG's chroma noise). */
const COLOUR_SPREAD = 16;
/** Largest own picture side accepted without `size` (the decoder's working size). */
const MAX_OWN_SIDE = WORKING_SIDE;
/** Share of this machine's memory the decoded pictures may take. */
const MEMORY_SHARE = 0.5;
/** Largest `size` side: pictures are decoded to at most WORKING_SIDE a side, so more would only stretch them. */
const MAX_SIDE = WORKING_SIDE;
/** The cache files' first line; a new number when decoding or conversion changes, so old files are not read. */
const CACHE_MAGIC = 'cnnx user data 2\n';
/** Largest cache header read (class names and sources): a larger length is damage. */
const MAX_CACHE_HEADER = 1 << 24;
/** Fewest pictures cached in the default cache folder (smaller data decodes in about a second). */
const CACHE_MIN_PICTURES = 1000;

export interface UserDataOptions {
  /**
   * 1 (gray) or 3 (RGB); default: 3 when any picture is in colour, else 1 (see the module's comment for how colour
   * is decided).
   */
  channels?: 1 | 3;
  /** [height, width] every picture is resized to; default: the pictures' own size when they all share one. */
  size?: [number, number];
  /** A separate test set (a folder of class folders, or a CSV); overrides the data's own test part. */
  testPath?: string;
  /**
   * Cache folder for the decoded pictures, as loadDataset's; default `$CNNX_DATA_DIR`, else `$XDG_CACHE_HOME/cnnx`,
   * else `~/.cache/cnnx`, used only for data of 1,000 pictures or more.
   */
  dataDir?: string;
  /** Progress and notes (files skipped, folders not read, the cache). */
  log?: (message: string) => void;
}

/** The user's data as a Dataset, with where each part came from. */
export interface UserDataset extends Dataset {
  path: string;
  /** Where the training pictures came from, in words. */
  trainSource: string;
  /** Where the test pictures came from, in words (a folder, a CSV, or the share held out of the training data). */
  testSource: string;
}

/** One part (train or test) read and checked, not yet brought to the dataset's channels and size. */
interface Part {
  count: number;
  /** This part's class names; `labels` index them. */
  classes: readonly string[];
  labels: Uint8Array;
  /** Where a class's pictures are (a folder, or a CSV file and line), for messages. */
  whereClass(index: number): string;
  /** In words, for `source`, with `note` inside its parentheses. */
  describe(note?: string): string;
  /** The size of its first picture (from the file's header), which all must have when no size is asked for. */
  ownSize(): Promise<OwnSize>;
  /**
   * [count, height, width, channels] bytes; undefined as soon as `stop` is true of a picture. With `own`, every
   * picture must have that size.
   */
  render(target: RenderTarget, options: RenderOptions): Promise<Uint8Array | undefined>;
}

interface RenderOptions {
  stop?: ((picture: PixelImage) => boolean) | undefined;
  own?: OwnSize | undefined;
}

/** A part's files, listed (cheaply) but not read. */
interface Listed {
  /** Each file the part reads, with its size and modification time: the cache's fingerprint. */
  stamps: string[];
  /** A file read directly (a CSV), for `Dataset.files`. */
  file?: string;
  /** Files and folders not read (hidden, other extensions, outside class folders, links in a loop or to nothing). */
  skipped: number;
  /** What was skipped, in words, one note a kind. */
  skippedNotes: string[];
  open(role: 'train' | 'test'): Promise<Part>;
}

const count = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;
/** Class names for a message, the first dozen. */
const listed12 = (names: readonly string[]) =>
  names.length > 12 ? `${names.slice(0, 12).join(', ')}, ...` : names.join(', ');

function folderListed(folders: ClassFolders, label: string, log: (message: string) => void): Listed {
  return {
    stamps: folders.files.map((file) => `${file.path}\t${file.bytes}\t${file.mtimeMs}`),
    skipped: folders.skipped.other + folders.skipped.outside + folders.skipped.links,
    skippedNotes: skippedNotes(folders.skipped, folders.dir),
    open: async () => ({
      count: folders.files.length,
      classes: folders.classes,
      labels: Uint8Array.from(folders.files, (file) => file.label),
      whereClass: (index) => join(folders.dir, folders.folders[index]!),
      describe: (note) => `${label} (${count(folders.files.length, 'picture')}${note ?? ''})`,
      ownSize: () => pictureSize(folders.files[0]!.path),
      render: (target, { stop, own }) => decodePictures(folders.files, target, { dir: folders.dir, stop, own, log }),
    }),
  };
}

function csvListed(file: string, info: { size: number; mtimeMs: number }, options: UserDataOptions): Listed {
  return {
    stamps: [`${file}\t${info.size}\t${info.mtimeMs}`],
    file,
    skipped: 0,
    skippedNotes: [],
    open: async (role) => {
      const table = await readCsvTable(file);
      const { classes, labels, lines } = csvClasses(table, role === 'train');
      const own = csvGeometry(table, options.size, options.channels);
      const header = table.labelName === undefined ? 'no header' : `label column "${table.labelName}"`;
      return {
        count: table.count,
        classes,
        labels,
        whereClass: (index) => `${file} line ${lines[index]}`,
        describe: (note) => `CSV ${file} (${count(table.count, 'row')}, ${header}${note ?? ''})`,
        ownSize: async () => ({ height: own.height, width: own.width, example: file }),
        render: async (target, { stop }) => renderCsv(table, own, target, stop),
      };
    },
  };
}

/** What `path` is: a folder, a CSV file, or a fault. */
async function kindOf(path: string, what: string): Promise<{ folder: boolean; size: number; mtimeMs: number }> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new CnnxError(`${path}: no such file or folder (${what})`, 'DATA_NOT_FOUND');
    throw new CnnxError(`${path}: cannot read (${whyUnreadable(error)})`, 'DATA_UNREADABLE');
  });
  if (info.isDirectory()) return { folder: true, size: info.size, mtimeMs: info.mtimeMs };
  if (info.isFile() && /\.csv$/i.test(path)) return { folder: false, size: info.size, mtimeMs: info.mtimeMs };
  throw new CnnxError(
    `${path}: neither a folder nor a .csv file; ${what} is a folder of class folders (train/<class>/*.png ...) or a CSV (label, pixels)`,
    'DATA_BAD_KIND',
  );
}

/** The data at `path`: its training part and, for a folder with a test/ folder, its own test part. */
async function listData(
  path: string,
  options: UserDataOptions,
  log: (message: string) => void,
): Promise<{ train: Listed; test?: Listed; testFolder?: string }> {
  const kind = await kindOf(path, 'the data');
  if (!kind.folder) return { train: csvListed(path, kind, options) };
  const layout = await openImageFolder(path);
  const read = `${layout.trainName}/ and ${layout.testName ?? 'test'}/`;
  for (const name of layout.ignored) log(`not read: ${join(path, name)} (only ${read} are)`);
  const trainLabel = layout.trainName === undefined ? '' : `: ${layout.trainName}/`;
  return {
    train: folderListed(layout.train, `image folder ${path}${trainLabel}`, log),
    ...(layout.test && {
      test: folderListed(layout.test, `image folder ${path}: ${layout.testName}/`, log),
      testFolder: join(path, layout.testName!),
    }),
  };
}

/** A separate test set: a folder of class folders, or a CSV. */
async function listTestData(path: string, options: UserDataOptions, log: (message: string) => void): Promise<Listed> {
  const kind = await kindOf(path, 'the test data');
  if (!kind.folder) return csvListed(path, kind, options);
  // A folder split into train/ and test/ (a dataset as downloaded): its test part.
  const testPart = await testPartOf(path);
  if (testPart !== undefined) log(`test data: ${testPart}, the test part of ${path}`);
  const folder = testPart ?? path;
  return folderListed(await listClassFolders(folder), `image folder ${folder}`, log);
}

function checkOptions(options: UserDataOptions): void {
  if (options.channels !== undefined && options.channels !== 1 && options.channels !== 3) {
    throw new RangeError(`channels must be 1 or 3, got ${String(options.channels)}`);
  }
  const size = options.size;
  if (
    size !== undefined &&
    !(size.length === 2 && size.every((side) => Number.isInteger(side) && side >= 1 && side <= MAX_SIDE))
  ) {
    throw new RangeError(`size must be [height, width], integers from 1 to ${MAX_SIDE}, got ${JSON.stringify(size)}`);
  }
}

/** True when the picture is in colour (see the module's comment). */
function isColour(picture: PixelImage): boolean {
  const { channels, data } = picture;
  if (channels < 3) return false;
  const pixels = data.length / channels;
  const needed = Math.max(1, Math.ceil(pixels / 1000));
  let found = 0;
  for (let p = 0; p < data.length; p += channels) {
    if (channels === 4 && data[p + 3] === 0) continue;
    const r = data[p]!;
    const g = data[p + 1]!;
    const b = data[p + 2]!;
    if (Math.max(r, g, b) - Math.min(r, g, b) > COLOUR_SPREAD && ++found >= needed) return true;
  }
  return false;
}

/**
 * The size all pictures must share when none is asked for: the first picture's (decoding checks the others).
 * @throws CnnxError DATA_NEEDS_SIZE when the parts' first pictures differ, or the size is over MAX_OWN_SIDE
 */
async function commonSize(parts: readonly Part[]): Promise<OwnSize> {
  const [first, ...others] = await Promise.all(parts.map((part) => part.ownSize()));
  const other = others.find((size) => size.height !== first!.height || size.width !== first!.width);
  if (other !== undefined) throw new CnnxError(sizesDiffer(first!, other), 'DATA_NEEDS_SIZE');
  if (Math.max(first!.height, first!.width) > MAX_OWN_SIDE) {
    throw new CnnxError(
      `${first!.example}: the pictures are ${first!.height}x${first!.width}, over ${MAX_OWN_SIDE} pixels on a side; give --image-size HxW (e.g. 224x224) to resize them`,
      'DATA_NEEDS_SIZE',
    );
  }
  return first!;
}

/** A number of bytes in words: 4.3 GB, 3.1 MB, 900 bytes. */
function bytesInWords(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return count(n, 'byte');
}

/**
 * @throws CnnxError DATA_TOO_LARGE when the decoded pictures of all `parts` would take more than the memory budget,
 *   or one part's more than one Uint8Array may hold (each part is decoded into one)
 */
function checkMemory(path: string, parts: readonly { role: string; count: number }[], target: RenderTarget): void {
  const each = target.height * target.width * target.channels;
  const shape = `${target.height}x${target.width}x${target.channels}`;
  const pictures = parts.reduce((sum, part) => sum + part.count, 0);
  const bytes = pictures * each;
  const budget = totalmem() * MEMORY_SHARE;
  if (bytes > budget) {
    throw new CnnxError(
      `${path}: ${count(pictures, 'picture')} of ${shape} take ${bytesInWords(bytes)} decoded, over the ${bytesInWords(budget)} allowed (half of this machine's memory); give a smaller --image-size (data larger than memory is not streamed)`,
      'DATA_TOO_LARGE',
    );
  }
  // Read at each call, not once: V8's limit (2^32 bytes in Node 20, 2^53 - 1 from Node 22).
  const largest = constants.MAX_LENGTH;
  const over = parts.find((part) => part.count * each > largest);
  if (over !== undefined) {
    throw new CnnxError(
      `${path}: the ${over.role} part's ${count(over.count, 'picture')} of ${shape} take ${bytesInWords(over.count * each)} decoded, more than one array may hold in Node ${process.version} (${bytesInWords(largest)}); give a smaller --image-size, or use fewer pictures`,
      'DATA_TOO_LARGE',
    );
  }
}

/** The test part's labels as indices into the training classes. @throws CnnxError DATA_UNKNOWN_CLASS */
function testLabelsIn(test: Part, trainClasses: readonly string[]): Uint8Array {
  const index = new Map(trainClasses.map((name, i) => [name, i]));
  const mapping = test.classes.map((name, i) => {
    const found = index.get(name);
    if (found === undefined) {
      throw new CnnxError(
        `${test.whereClass(i)}: test class "${name}" is not a class of the training data (${listed12(trainClasses)})`,
        'DATA_UNKNOWN_CLASS',
      );
    }
    return found;
  });
  return Uint8Array.from(test.labels, (label) => mapping[label]!);
}

/** Renders every part at `target`; undefined when `stop` is true of a picture. */
async function renderParts(parts: readonly Part[], target: RenderTarget, options: RenderOptions) {
  const rendered: Uint8Array[] = [];
  for (const part of parts) {
    const pixels = await part.render(target, options);
    if (pixels === undefined) return undefined;
    rendered.push(pixels);
  }
  return rendered;
}

/**
 * Loads the user's pictures: a folder of class folders (`<dir>/train/<class>/*.png` with an optional
 * `<dir>/test/<class>/...`, or `<dir>/<class>/*.png`) or a CSV (a label column, then pixel values 0-255), as a
 * Dataset with the `resize` procedure. Pictures are read by class, then by file path (code point order), and a CSV's
 * rows in their order; each part is then put in a fixed seeded order (ORDER_SEED), so any prefix mixes the classes.
 * See the module's comment for the test part, channels, size, memory and the cache.
 * @throws CnnxError naming the file or folder and the fault: DATA_NOT_FOUND, DATA_BAD_KIND (also a folder with a
 *   test/ folder but no train/), DATA_UNREADABLE, BAD_IMAGE (a picture that cannot be decoded, or an empty file),
 *   DATA_CLASS_COUNT, DATA_EMPTY_CLASS, DATA_UNKNOWN_CLASS, DATA_NEEDS_SIZE, DATA_BAD_CSV, DATA_TOO_LARGE
 * @throws RangeError for `channels` other than 1 or 3, or a `size` that is not two integers from 1 to WORKING_SIDE
 *   (512)
 */
export async function loadUserDataset(path: string, options: UserDataOptions = {}): Promise<UserDataset> {
  checkOptions(options);
  const log = options.log ?? (() => {});
  const abs = resolve(path);
  const name = basename(abs).replace(/\.csv$/i, '');
  const data = await listData(abs, options, log);
  let test = data.test;
  const testPath = options.testPath === undefined ? undefined : resolve(options.testPath);
  if (testPath !== undefined) {
    if (data.testFolder !== undefined) log(`not read: ${data.testFolder} (the test data is ${testPath})`);
    test = await listTestData(testPath, options, log);
  }
  const listed = test === undefined ? [data.train] : [data.train, test];
  const skipped = listed.reduce((sum, part) => sum + part.skipped, 0);
  for (const note of listed.flatMap((part) => part.skippedNotes)) log(note);

  const cache = cacheFiles(options.dataDir ?? defaultDataDir(), name, abs, testPath, options, listed);
  const cached = await readCache(cache.file, cache.fingerprint);
  if (cached !== undefined) {
    log(`decoded pictures read from the cache ${cache.file}`);
    return cached;
  }

  const train = await data.train.open('train');
  if (train.classes.length < 2 || train.classes.length > MAX_CLASSES) {
    throw new CnnxError(
      `${abs}: ${count(train.classes.length, 'class')} (${listed12(train.classes)}); a classifier needs 2 to ${MAX_CLASSES}`,
      'DATA_CLASS_COUNT',
    );
  }
  const testPart = await test?.open('test');
  const testLabels = testPart === undefined ? undefined : testLabelsIn(testPart, train.classes);
  const parts = testPart === undefined ? [train] : [train, testPart];
  const own = options.size === undefined ? await commonSize(parts) : undefined;
  const [height, width] = options.size ?? [own!.height, own!.width];
  const pictures = train.count + (testPart?.count ?? 0);
  const counts = [
    { role: 'training', count: train.count },
    ...(testPart === undefined ? [] : [{ role: 'test', count: testPart.count }]),
  ];
  let channels = options.channels ?? 1;
  checkMemory(abs, counts, { channels, height, width });
  const stop = options.channels === undefined ? isColour : undefined;
  let rendered = await renderParts(parts, { channels, height, width }, { stop, own });
  if (rendered === undefined) {
    channels = 3;
    log('the pictures are in colour: reading them as RGB');
    checkMemory(abs, counts, { channels, height, width });
    rendered = (await renderParts(parts, { channels, height, width }, { own }))!;
  }
  const split = (pixels: Uint8Array, labels: Uint8Array): Split => ({
    count: labels.length,
    rows: height,
    cols: width,
    channels,
    pixels,
    labels,
  });
  // Listed by class, put in a fixed mixed order, so that any prefix (--limit, the exporter's check) has every class.
  let trainSplit = split(rendered[0]!, train.labels);
  shuffleExamples(trainSplit, ORDER_SEED);
  let testSplit: Split;
  let testSource: string;
  let heldNote = '';
  if (testPart !== undefined) {
    testSplit = split(rendered[1]!, testLabels!);
    shuffleExamples(testSplit, ORDER_SEED);
    testSource = testPart.describe();
  } else {
    const { kept, held } = stratifiedSplit(trainSplit, TEST_FRACTION, TEST_SEED);
    trainSplit = kept;
    testSplit = held;
    testSource = `${TEST_FRACTION * 100}% of each class of the training data, held out (stratified, seed ${TEST_SEED})`;
    heldNote = `; ${count(held.count, 'picture')} held out as the test part`;
  }
  const skippedNote = skipped > 0 ? ` (${count(skipped, 'other file')} skipped)` : '';
  const dataset: UserDataset = {
    name,
    classes: train.classes,
    train: trainSplit,
    test: testSplit,
    source: `${train.describe(heldNote)}; test: ${testSource}${skippedNote}`,
    trainSource: train.describe(heldNote),
    testSource,
    files: listed.flatMap((part) => (part.file === undefined ? [] : [{ file: part.file, checksum: 'not checked' }])),
    procedure: 'resize',
    path: abs,
  };
  if (options.dataDir !== undefined || pictures >= CACHE_MIN_PICTURES) {
    await writeCache(cache.file, cache.fingerprint, dataset).catch((error: unknown) =>
      log(`the decoded pictures were not cached: ${messageOf(error)}`),
    );
  }
  return dataset;
}

/** The cache file of this data and these options, and the fingerprint of the files it was made from. */
function cacheFiles(
  dataDir: string,
  name: string,
  path: string,
  testPath: string | undefined,
  options: UserDataOptions,
  listed: readonly Listed[],
): { file: string; fingerprint: string } {
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
  const key = JSON.stringify([path, testPath ?? null, options.channels ?? null, options.size ?? null]);
  const hash = createHash('sha256').update(CACHE_MAGIC).update(key);
  for (const part of listed) for (const stamp of part.stamps) hash.update(`${stamp}\n`);
  const safeName = name.replace(/[^\w.-]/g, '_');
  return {
    file: join(dataDir, 'user-data', `${safeName}-${sha256(key).slice(0, 16)}.bin`),
    fingerprint: hash.digest('hex'),
  };
}

type SplitShape = Omit<Split, 'pixels' | 'labels'>;

/**
 * Layout: CACHE_MAGIC, a uint32 (LE) header length, the JSON header, then train pixels, train labels, test pixels,
 * test labels. Written piece by piece (no copy of the pixels; a file may exceed a Buffer's or readFile's limits).
 */
async function writeCache(file: string, fingerprint: string, dataset: UserDataset): Promise<void> {
  const shape = ({ count, rows, cols, channels }: Split): SplitShape => ({ count, rows, cols, channels });
  const { train, test, ...described } = dataset;
  const header = Buffer.from(
    JSON.stringify({ fingerprint, dataset: described, train: shape(train), test: shape(test) }),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length);
  const pieces = [Buffer.from(CACHE_MAGIC), length, header, train.pixels, train.labels, test.pixels, test.labels];
  await produceFileAtomic(file, async (temporary) => {
    const handle = await open(temporary, 'w');
    try {
      for (const piece of pieces) await handle.writeFile(piece);
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

interface CacheHeader {
  fingerprint: string;
  dataset: Omit<UserDataset, 'train' | 'test'>;
  train: SplitShape;
  test: SplitShape;
}

/** The cached dataset, or undefined when there is none, it was made from other files, or it is damaged. */
async function readCache(file: string, fingerprint: string): Promise<UserDataset | undefined> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (handle === undefined) return undefined;
  try {
    let at = 0;
    /** The next `n` bytes of the file. @throws RangeError when the file ends first */
    const take = async (n: number) => {
      const bytes = new Uint8Array(n);
      for (let done = 0; done < n;) {
        const { bytesRead } = await handle.read(bytes, done, Math.min(n - done, 1 << 30), at + done);
        if (bytesRead === 0) throw new RangeError('truncated');
        done += bytesRead;
      }
      at += n;
      return bytes;
    };
    if (Buffer.from(await take(CACHE_MAGIC.length)).toString() !== CACHE_MAGIC) return undefined;
    const length = Buffer.from(await take(4)).readUInt32LE(0);
    if (length > MAX_CACHE_HEADER) return undefined;
    const header = JSON.parse(Buffer.from(await take(length)).toString()) as CacheHeader;
    if (header.fingerprint !== fingerprint) return undefined;
    const split = async (shape: SplitShape): Promise<Split> => ({
      ...shape,
      pixels: await take(shape.count * shape.rows * shape.cols * shape.channels),
      labels: await take(shape.count),
    });
    const train = await split(header.train);
    const test = await split(header.test);
    return at === (await handle.stat()).size ? { ...header.dataset, train, test } : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}
