/**
 * The user's pictures in class folders (torchvision's ImageFolder, Keras' `image_dataset_from_directory`): listing
 * the folders, reading the pictures' sizes from their headers, and decoding them to a split's bytes.
 *
 * - A class is a folder; its pictures are the PNG, JPEG and WebP files (by extension, any case) anywhere below it,
 *   subfolders included, as torchvision and Keras walk them. Skipped and counted, each kind with its own note:
 *   hidden files and folders (a leading `.`) and files of other extensions; pictures lying beside the class folders
 *   (in no class); symbolic links that lead nowhere, or to a folder already read (the folder of class folders, a
 *   class folder, or a folder above: a loop), told apart by real path (fs.realpath). A 0-byte picture is a fault.
 * - Order, as torchvision's ImageFolder sorts (Python compares strings by Unicode code point; JavaScript's default
 *   sort compares UTF-16 units instead): classes by folder name; within a class, folder by folder (the class folder
 *   first, then its subfolders by path), and by file name within each folder.
 * - Decoding: decodeImage (sharp), then pictureToPixels, several pictures in flight at once.
 */
import { open, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { CnnxError, messageOf, whyUnreadable } from '../common/index.js';
import { pictureToPixels, type PixelImage } from '../preprocess/index.js';
import { decodeImage } from './decode-image.js';

/** File extensions read as pictures (compared in lower case). */
const PICTURE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp'];

/** Pictures decoded (or headers read) at once; sharp decodes on its own threads. */
const IN_FLIGHT = Math.min(16, 2 * availableParallelism());

/** Milliseconds between progress messages on a large folder. */
const PROGRESS_EVERY_MS = 2000;

/** Orders strings by Unicode code point, as Python's `sorted` does. */
export function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** A picture file: its path and what the cache's fingerprint needs of it. */
interface PictureFile {
  path: string;
  /** Index into the folder's classes. */
  label: number;
  bytes: number;
  mtimeMs: number;
}

/** Files and folders of a folder of class folders that are not read, by why. */
export interface SkippedFiles {
  /** Hidden files and folders, files of other extensions, and entries that are neither file nor folder. */
  other: number;
  /** Pictures lying in the folder of class folders itself, in no class folder. */
  outside: number;
  /** Symbolic links to nothing, or to a folder already read (a loop, or a second name for a class folder). */
  links: number;
}

/** The pictures of one folder of class folders, listed but not read. */
export interface ClassFolders {
  /** The folder, absolute. */
  dir: string;
  /**
   * Class names: the folder names in composed Unicode (NFC; macOS writes names decomposed), sorted by code point.
   */
  classes: string[];
  /** Each class's folder name as it is on disk (the same as `classes` but for Unicode form). */
  folders: string[];
  /** Every picture, by class, then by path below its class folder (code point order). */
  files: PictureFile[];
  /** What was not read. */
  skipped: SkippedFiles;
}

const isHidden = (name: string) => name.startsWith('.');

function unreadable(path: string, error: unknown): CnnxError {
  return new CnnxError(`${path}: cannot read (${whyUnreadable(error)})`, 'DATA_UNREADABLE', { cause: error });
}

/** `n` things in words: 1 picture, 2 pictures. */
const count = (n: number, what: string) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;

/** The names in a folder, by what they are. */
interface Entries {
  folders: string[];
  files: string[];
  /** Hidden names, and names that are neither file nor folder. */
  other: number;
  /** Symbolic links that lead nowhere. */
  dangling: number;
}

/** Names in `dir` with what they are (symbolic links followed), in code point order. */
async function entriesOf(dir: string): Promise<Entries> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
    throw unreadable(dir, error);
  });
  const found: Entries = { folders: [], files: [], other: 0, dangling: 0 };
  for (const entry of entries) {
    if (isHidden(entry.name)) {
      found.other++;
      continue;
    }
    let isFolder = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const target = await stat(join(dir, entry.name)).catch(() => undefined);
      if (target === undefined) {
        found.dangling++;
        continue;
      }
      isFolder = target.isDirectory();
      isFile = target.isFile();
    }
    if (isFolder) found.folders.push(entry.name);
    else if (isFile) found.files.push(entry.name);
    else found.other++;
  }
  found.folders.sort(byCodePoint);
  found.files.sort(byCodePoint);
  return found;
}

/** Whether a file name is a picture's: .png, .jpg, .jpeg or .webp, in any case. */
export const isPicture = (name: string) => PICTURE_EXTENSIONS.includes(extname(name).toLowerCase());

/** The real path of a folder (symbolic links resolved). @throws CnnxError DATA_UNREADABLE */
const realFolder = (path: string) =>
  realpath(path).catch((error: unknown) => {
    throw unreadable(path, error);
  });

/**
 * Paths of the pictures below `dir` (relative to it) in torchvision's order: folder by folder, the folders' paths in
 * code point order (`dir` itself first), the file names within each in code point order. A subfolder whose real path
 * is in `visited` is not read (a loop of symbolic links); each one read is added to it. `skipped` counts what is not
 * read.
 */
async function picturesBelow(dir: string, visited: Set<string>, skipped: SkippedFiles): Promise<string[]> {
  const groups: { folder: string; pictures: string[] }[] = [];
  const walk = async (folder: string) => {
    const { folders, files, other, dangling } = await entriesOf(join(dir, folder));
    const prefix = folder === '' ? '' : `${folder}/`;
    skipped.other += other;
    skipped.links += dangling;
    const pictures: string[] = [];
    for (const name of files) {
      if (isPicture(name)) pictures.push(prefix + name);
      else skipped.other++;
    }
    groups.push({ folder, pictures });
    for (const below of folders) {
      const real = await realFolder(join(dir, prefix + below));
      if (visited.has(real)) {
        skipped.links++;
        continue;
      }
      visited.add(real);
      await walk(prefix + below);
    }
  };
  await walk('');
  groups.sort((a, b) => byCodePoint(a.folder, b.folder));
  return groups.flatMap((group) => group.pictures);
}

/**
 * `work(item, index)` for every item, at most `limit` at once; resolves true when `work` resolved true for one (the
 * rest are then not started). The first failure stops the others starting new items, and rejects once they finish.
 */
async function forEachInFlight<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<boolean | void>,
): Promise<boolean> {
  let next = 0;
  let stopped = false;
  let failed = false;
  const worker = async () => {
    while (!stopped && !failed && next < items.length) {
      const index = next++;
      try {
        if ((await work(items[index]!, index)) === true) stopped = true;
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = results.find((result) => result.status === 'rejected');
  if (rejected) throw (rejected as PromiseRejectedResult).reason;
  return stopped;
}

/** Logs "<verb> 12,000 / 60,000 pictures of <dir>" at most every PROGRESS_EVERY_MS while work goes on. */
function progress(verb: string, total: number, dir: string, log: ((message: string) => void) | undefined) {
  let last = Date.now();
  let done = 0;
  return () => {
    done++;
    if (log === undefined || Date.now() - last < PROGRESS_EVERY_MS || done === total) return;
    last = Date.now();
    log(`${verb} ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} pictures of ${dir}`);
  };
}

/** A 0-byte picture file, as a fault. */
const emptyPicture = (path: string) =>
  new CnnxError(`${path}: empty file (0 bytes), not a picture; remove it or write the picture again`, 'BAD_IMAGE');

/** The notes on what was not read of the folder of class folders `dir`, one a kind. */
export function skippedNotes(skipped: SkippedFiles, dir: string): string[] {
  const notes: string[] = [];
  if (skipped.other > 0) {
    notes.push(`skipped ${count(skipped.other, 'file')} of ${dir} (hidden, or not .png, .jpg, .jpeg or .webp)`);
  }
  if (skipped.outside > 0) {
    notes.push(
      `skipped ${count(skipped.outside, 'picture')} outside class folders in ${dir}: a picture must be inside its class's folder (${join(dir, '<class>')}/)`,
    );
  }
  if (skipped.links > 0) {
    notes.push(
      `skipped ${count(skipped.links, 'symbolic link')} in ${dir}: each leads nowhere, or to a folder already read (a loop)`,
    );
  }
  return notes;
}

/**
 * Lists the class folders in `dir` and the pictures below each.
 * @throws CnnxError DATA_UNREADABLE for a folder that cannot be read, DATA_EMPTY_CLASS for a class folder with no
 *   pictures (naming it), DATA_CLASS_COUNT when `dir` has no class folders, BAD_IMAGE for a 0-byte picture,
 *   DATA_BAD_KIND for two class folders whose names differ only in Unicode form.
 */
export async function listClassFolders(dir: string): Promise<ClassFolders> {
  const entries = await entriesOf(dir);
  const outside = entries.files.filter(isPicture).length;
  const skipped: SkippedFiles = {
    other: entries.other + entries.files.length - outside,
    outside,
    links: entries.dangling,
  };
  // Class folders by real path: a second name for one (a symbolic link to it, or to `dir`) is not a class.
  const visited = new Set([await realFolder(dir)]);
  const folders: string[] = [];
  for (const name of entries.folders) {
    const real = await realFolder(join(dir, name));
    if (visited.has(real)) skipped.links++;
    else {
      visited.add(real);
      folders.push(name);
    }
  }
  // Labels follow the class names' code point order in composed form, however the names are written on disk.
  folders.sort((a, b) => byCodePoint(a.normalize('NFC'), b.normalize('NFC')));
  if (folders.length === 0) {
    const files = entries.files.length;
    const loose = files > 0 ? ` (${count(files, 'file')} ${files === 1 ? 'lies' : 'lie'} in it directly)` : '';
    throw new CnnxError(
      `${dir}: no class folders${loose}; put each class's pictures in a folder named for the class (${join(dir, '<class>', '*.png')})`,
      'DATA_CLASS_COUNT',
    );
  }
  const listed: { path: string; label: number }[] = [];
  for (const [label, name] of folders.entries()) {
    const classDir = join(dir, name);
    const pictures = await picturesBelow(classDir, visited, skipped);
    if (pictures.length === 0) {
      throw new CnnxError(
        `${classDir}: class folder with no pictures (${PICTURE_EXTENSIONS.join(', ')}); add pictures or remove it`,
        'DATA_EMPTY_CLASS',
      );
    }
    for (const picture of pictures) listed.push({ path: join(classDir, picture), label });
  }
  const stamped = new Array<PictureFile>(listed.length);
  await forEachInFlight(listed, 64, async (file, index) => {
    const info = await stat(file.path).catch((error: unknown) => {
      throw unreadable(file.path, error);
    });
    stamped[index] = { ...file, bytes: info.size, mtimeMs: info.mtimeMs };
  });
  const empty = stamped.find((file) => file.bytes === 0);
  if (empty !== undefined) throw emptyPicture(empty.path);
  // Class names in Unicode's composed form (NFC): macOS writes folder names decomposed (NFD), so the same name typed
  // on two systems names one class.
  const classes = folders.map((name) => name.normalize('NFC'));
  const twice = classes.find((name, i) => classes.indexOf(name) !== i);
  if (twice !== undefined) {
    throw new CnnxError(
      `${dir}: two class folders are named "${twice}", written with different Unicode characters (composed and decomposed accents); merge them into one folder`,
      'DATA_BAD_KIND',
    );
  }
  return { dir, classes, folders, files: stamped, skipped };
}

/** The formats sharp may report that decodeImage accepts. */
const DECODED_FORMATS: readonly string[] = ['png', 'jpeg', 'webp'];

/** A picture's size as decoded, and a file that has it. */
export interface OwnSize {
  height: number;
  width: number;
  /** A file (or file and line) of that size, for messages. */
  example: string;
}

/**
 * A picture's size (EXIF rotation applied, as decodeImage shows it) from its header, without decoding it.
 * @throws CnnxError naming the file: BAD_IMAGE for a file that is not a PNG, JPEG or WebP image, DATA_UNREADABLE
 */
export async function pictureSize(path: string): Promise<OwnSize> {
  const meta = await sharp(path)
    .metadata()
    .catch(async (error: unknown) => {
      // sharp reports a file it cannot open as an unsupported format too: tell the two apart.
      const handle = await open(path, 'r').catch((cause: unknown) => {
        throw unreadable(path, cause);
      });
      await handle.close();
      throw new CnnxError(`${path}: not a decodable PNG, JPEG or WebP image (${messageOf(error)})`, 'BAD_IMAGE');
    });
  if (!DECODED_FORMATS.includes(meta.format)) {
    throw new CnnxError(`${path} is ${meta.format.toUpperCase()}; use a PNG, JPEG or WebP image`, 'BAD_IMAGE');
  }
  return { height: meta.autoOrient?.height ?? meta.height, width: meta.autoOrient?.width ?? meta.width, example: path };
}

/** `a is HxW, b is HxW`, for the message that pictures differ in size. */
export const sizesDiffer = (a: OwnSize, b: OwnSize) =>
  `pictures differ in size: ${a.example} is ${a.height}x${a.width}, ${b.example} is ${b.height}x${b.width}; give --image-size HxW to resize them all to one size`;

/** What the pictures are brought to: [height, width, channels] bytes each. */
export interface RenderTarget {
  channels: 1 | 3;
  height: number;
  width: number;
}

/**
 * Decodes `files` into [count, height, width, channels] bytes at `target`, in their order. With `stop`, resolves
 * undefined as soon as `stop` is true of a decoded picture (before it is converted). With `own`, every picture must
 * decode to that size (the target size was taken from it; no size was asked for).
 * @throws CnnxError naming the file: BAD_IMAGE for a picture that cannot be decoded, DATA_UNREADABLE,
 *   DATA_NEEDS_SIZE for a picture whose size differs from `own`
 */
export async function decodePictures(
  files: readonly { path: string }[],
  target: RenderTarget,
  options: { dir: string; stop?: (picture: PixelImage) => boolean; own?: OwnSize; log?: (message: string) => void },
): Promise<Uint8Array | undefined> {
  const { channels, height, width } = target;
  const { own } = options;
  const size = height * width * channels;
  const pixels = new Uint8Array(files.length * size);
  const tick = progress('decoded', files.length, options.dir, options.log);
  const stopped = await forEachInFlight(files, IN_FLIGHT, async (file, index) => {
    const bytes = await readFile(file.path).catch((error: unknown) => {
      throw unreadable(file.path, error);
    });
    const picture = await decodeImage(bytes, file.path);
    if (own !== undefined && (picture.height !== own.height || picture.width !== own.width)) {
      // Its size as the file has it: decoding shrinks a large picture to the working size.
      throw new CnnxError(sizesDiffer(own, await pictureSize(file.path)), 'DATA_NEEDS_SIZE');
    }
    if (options.stop?.(picture)) return true;
    pixels.set(pictureToPixels(picture, channels, height, width), index * size);
    tick();
    return false;
  });
  return stopped ? undefined : pixels;
}

/** Folder names read as the training and the test part, in order of preference. */
const TRAIN_FOLDERS: readonly string[] = ['train', 'training'];
const TEST_FOLDERS: readonly string[] = ['test', 'testing'];

/** An image folder's layout: its training part, its own test part if any, and what was not read. */
export interface ImageFolderLayout {
  train: ClassFolders;
  test?: ClassFolders;
  /** `train` (or `training`) when the classes are in that folder; undefined when they are in the folder itself. */
  trainName?: string;
  testName?: string;
  /** Folders beside train/ and test/ that were not read (e.g. `val`). */
  ignored: string[];
}

/**
 * Reads an image folder's layout: `<dir>/train/<class>/...` (or `training/`, in any case, holding folders) with an
 * optional `<dir>/test/<class>/...` (or `testing/`), else `<dir>/<class>/...`. A folder with
 * such a train/ folder is always read the first way; one with such a test/ folder but no train/ is refused rather
 * than test/ taken for a class.
 * @throws CnnxError as listClassFolders; DATA_BAD_KIND for a test/ folder without a train/ folder
 */
/**
 * The test part of a folder split into train/ and test/ (in any case; `testing` too), when `dir` is one: what
 * `--test-data` reads of it. Undefined for a folder of class folders.
 */
export async function testPartOf(dir: string): Promise<string | undefined> {
  const { folders } = await entriesOf(dir);
  for (const name of TEST_FOLDERS) {
    const folder = folders.find((found) => found.toLowerCase() === name);
    if (folder !== undefined && (await entriesOf(join(dir, folder))).folders.length > 0) return join(dir, folder);
  }
  return undefined;
}

export async function openImageFolder(dir: string): Promise<ImageFolderLayout> {
  const { folders } = await entriesOf(dir);
  // In any case (archives made on Windows or downloaded from Kaggle often have Train/ and Test/), and only a folder
  // that holds folders: a class named Train (buses, cars, trains) holds its pictures itself.
  const splits = new Set<string>();
  for (const folder of folders) {
    if (![...TRAIN_FOLDERS, ...TEST_FOLDERS].includes(folder.toLowerCase())) continue;
    if ((await entriesOf(join(dir, folder))).folders.length > 0) splits.add(folder);
  }
  const named = (names: readonly string[]) =>
    names
      .map((name) => folders.find((folder) => splits.has(folder) && folder.toLowerCase() === name))
      .find((found) => found !== undefined);
  const trainName = named(TRAIN_FOLDERS);
  if (trainName === undefined) {
    const lone = named(TEST_FOLDERS);
    if (lone !== undefined) {
      throw new CnnxError(
        `${dir}: a ${lone}/ folder but no train/ folder, so ${lone}/ would be taken for a class; put the class folders under ${join(dir, 'train')}/ (train/<class>/*.png) beside ${lone}/, or rename ${lone}/ if it is a class`,
        'DATA_BAD_KIND',
      );
    }
    return { train: await listClassFolders(dir), ignored: [] };
  }
  const testName = named(TEST_FOLDERS);
  const train = await listClassFolders(join(dir, trainName));
  const test = testName === undefined ? undefined : await listClassFolders(join(dir, testName));
  const ignored = folders.filter((name) => name !== trainName && name !== testName);
  return { train, ...(test && { test, testName }), trainName, ignored };
}
