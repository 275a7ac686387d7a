/**
 * The user's pictures in class folders (torchvision's ImageFolder, Keras' `image_dataset_from_directory`): listing
 * the folders, reading the pictures' sizes from their headers, and decoding them to a split's bytes.
 *
 * - A class is a folder; its pictures are the PNG, JPEG and WebP files (by extension, any case) anywhere below it,
 *   subfolders included, as torchvision and Keras walk them. Hidden files and folders (a leading `.`) and files of
 *   other extensions are skipped and counted.
 * - Order, as torchvision's ImageFolder sorts (Python compares strings by Unicode code point; JavaScript's default
 *   sort compares UTF-16 units instead): classes by folder name; within a class, folder by folder (the class folder
 *   first, then its subfolders by path), and by file name within each folder.
 * - Decoding: decodeImage (sharp), then pictureToPixels, several pictures in flight at once.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { CnnxError, messageOf } from '../common/index.js';
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

/** The pictures of one folder of class folders, listed but not read. */
export interface ClassFolders {
  /** The folder, absolute. */
  dir: string;
  /** Class folder names, sorted by code point. */
  classes: string[];
  /** Every picture, by class, then by path below its class folder (code point order). */
  files: PictureFile[];
  /** Hidden files and files of other extensions, not read. */
  skipped: number;
}

const isHidden = (name: string) => name.startsWith('.');

function unreadable(path: string, error: unknown): CnnxError {
  const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new CnnxError(`${path}: cannot read (${code})`, 'DATA_UNREADABLE', { cause: error });
}

/** Names in `dir` with what they are (symbolic links followed); hidden names are left out and counted. */
async function entriesOf(dir: string): Promise<{ folders: string[]; files: string[]; hidden: number }> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
    throw unreadable(dir, error);
  });
  const folders: string[] = [];
  const files: string[] = [];
  let hidden = 0;
  for (const entry of entries) {
    if (isHidden(entry.name)) {
      hidden++;
      continue;
    }
    let isFolder = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const target = await stat(join(dir, entry.name)).catch(() => undefined);
      isFolder = target?.isDirectory() ?? false;
      isFile = target?.isFile() ?? false;
    }
    if (isFolder) folders.push(entry.name);
    else if (isFile) files.push(entry.name);
  }
  return { folders: folders.sort(byCodePoint), files: files.sort(byCodePoint), hidden };
}

/**
 * Paths of the pictures below `dir` (relative to it) in torchvision's order: folder by folder, the folders' paths in
 * code point order (`dir` itself first), the file names within each in code point order; and how many files were
 * skipped.
 */
async function picturesBelow(dir: string): Promise<{ pictures: string[]; skipped: number }> {
  const groups: { folder: string; pictures: string[] }[] = [];
  let skipped = 0;
  const walk = async (folder: string) => {
    const { folders, files, hidden } = await entriesOf(join(dir, folder));
    const prefix = folder === '' ? '' : `${folder}/`;
    skipped += hidden;
    const pictures: string[] = [];
    for (const name of files) {
      if (PICTURE_EXTENSIONS.includes(extname(name).toLowerCase())) pictures.push(prefix + name);
      else skipped++;
    }
    groups.push({ folder, pictures });
    for (const below of folders) await walk(prefix + below);
  };
  await walk('');
  groups.sort((a, b) => byCodePoint(a.folder, b.folder));
  return { pictures: groups.flatMap((group) => group.pictures), skipped };
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

/**
 * Lists the class folders in `dir` and the pictures below each.
 * @throws CnnxError DATA_UNREADABLE for a folder that cannot be read, DATA_EMPTY_CLASS for a class folder with no
 *   pictures (naming it), DATA_CLASS_COUNT when `dir` has no class folders.
 */
export async function listClassFolders(dir: string): Promise<ClassFolders> {
  const { folders, files, hidden } = await entriesOf(dir);
  if (folders.length === 0) {
    const loose = files.length > 0 ? ` (${files.length} files lie in it directly)` : '';
    throw new CnnxError(
      `${dir}: no class folders${loose}; put each class's pictures in a folder named for the class (${join(dir, '<class>', '*.png')})`,
      'DATA_CLASS_COUNT',
    );
  }
  const listed: { path: string; label: number }[] = [];
  let skipped = hidden + files.length;
  for (const [label, name] of folders.entries()) {
    const classDir = join(dir, name);
    const { pictures, skipped: skippedHere } = await picturesBelow(classDir);
    skipped += skippedHere;
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
  return { dir, classes: folders, files: stamped, skipped };
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
      const found = { height: picture.height, width: picture.width, example: file.path };
      throw new CnnxError(sizesDiffer(own, found), 'DATA_NEEDS_SIZE');
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
 * Reads an image folder's layout: `<dir>/train/<class>/...` (or `training/`) with an optional `<dir>/test/<class>/...`
 * (or `testing/`), else `<dir>/<class>/...`. A folder with a train/ folder is always read the first way.
 * @throws CnnxError as listClassFolders
 */
export async function openImageFolder(dir: string): Promise<ImageFolderLayout> {
  const { folders } = await entriesOf(dir);
  const trainName = TRAIN_FOLDERS.find((name) => folders.includes(name));
  if (trainName === undefined) return { train: await listClassFolders(dir), ignored: [] };
  const testName = TEST_FOLDERS.find((name) => folders.includes(name));
  const train = await listClassFolders(join(dir, trainName));
  const test = testName === undefined ? undefined : await listClassFolders(join(dir, testName));
  const ignored = folders.filter((name) => name !== trainName && name !== testName);
  return { train, ...(test && { test, testName }), trainName, ignored };
}
