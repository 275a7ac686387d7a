/**
 * Atomic file writes: write to a temporary file beside the target, fsync, then rename over it. A reader (or a
 * crash) sees the old file or the new one, never half of one; the temporary is removed if anything fails, or if
 * the process is ended (Ctrl-C) while it is written.
 */
import { randomBytes } from 'node:crypto';
import { constants, existsSync, rmSync, statSync } from 'node:fs';
import { access, mkdir, open, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { onExit } from 'signal-exit';
import { CnnxError } from './errors.js';

/** What a failed write means to the user, by Node's error code; other failures are bugs and keep their stack. */
const WRITE_FAILURES: Readonly<Record<string, string>> = Object.freeze({
  ENOSPC: 'the disk is full: free some space or choose another folder',
  EDQUOT: 'the disk quota is used up: free some space or choose another folder',
  EFBIG: 'the file is larger than this system allows',
  EACCES: 'permission denied: choose a folder you can write to',
  EPERM: 'permission denied: choose a folder you can write to',
  EROFS: 'the file system is read-only: choose another folder',
  EISDIR: 'that is a folder: name a file',
  ENOTDIR: 'part of the path is a file, not a folder',
  EEXIST: 'part of the path is a file, not a folder',
  ENOENT: 'that folder takes no new folders or files: choose another one',
});

/** `error` as a one-line CnnxError (WRITE_FAILED) naming `target` when the user can fix its cause; else itself. */
export function writeError(error: unknown, target: string): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const why = code === undefined ? undefined : WRITE_FAILURES[code];
  return why === undefined ? error : new CnnxError(`cannot write ${target}: ${why}`, 'WRITE_FAILED', { cause: error });
}

/** Temporary files being written now: removed if the process ends first (Ctrl-C during an export, say). */
const temporaries = new Set<string>();
let removeOnExit: (() => void) | undefined;

/**
 * Temporary path beside `target`, unique per call; matches the `*.tmp-*` ignore pattern. Until `settled` is called
 * with it, it is removed if the process ends (signal-exit: on exit, or on a signal that ends the process because
 * nothing else handles it; a command that handles its signals, as training does, settles its writes itself).
 */
function temporaryPathFor(target: string): string {
  removeOnExit ??= onExit(() => {
    for (const path of temporaries) rmSync(path, { force: true });
  });
  const path = join(dirname(target), `.${basename(target)}.tmp-${randomBytes(6).toString('hex')}`);
  temporaries.add(path);
  return path;
}

/** The temporary is gone (renamed into place or removed). */
function settled(temporary: string): void {
  temporaries.delete(temporary);
}

/**
 * Creates `dir` and its missing parents, one at a time from the first that exists: Node's recursive mkdir spins
 * forever at full CPU where a folder exists but takes no new folders (`/proc`, `/sys`: mkdir says ENOENT there),
 * and reports every failure as ENOENT. Resolves to the folders it made, outermost first.
 * @throws CnnxError WRITE_FAILED naming `target` (default `dir`) when the user can fix the cause: a read-only or
 *   forbidden folder, a file in the path, a folder that takes no new folders.
 */
export async function ensureDirectory(dir: string, target = dir): Promise<string[]> {
  const { existing, missing } = firstExisting(dir);
  if (statSync(existing, { throwIfNoEntry: false })?.isDirectory() === false) throw notAFolder(target);
  const made: string[] = [];
  for (const folder of missing) {
    const created = await mkdir(folder).then(
      () => true,
      (error: unknown) => {
        // Made meanwhile by another writer: fine, if it is a folder.
        if (
          (error as NodeJS.ErrnoException).code === 'EEXIST' &&
          statSync(folder, { throwIfNoEntry: false })?.isDirectory()
        )
          return false;
        throw writeError(error, target);
      },
    );
    if (created) made.push(folder);
  }
  return made;
}

/** The first of `dir` and its parents that exists (a file, possibly), and the missing ones below it, outermost first. */
function firstExisting(dir: string): { existing: string; missing: string[] } {
  const missing: string[] = [];
  let path = resolve(dir);
  for (; !existsSync(path) && dirname(path) !== path; path = dirname(path)) missing.unshift(path);
  return { existing: path, missing };
}

/** The error for a path through a file, as a write there would meet it. */
const notAFolder = (target: string) => writeError(Object.assign(new Error('ENOTDIR'), { code: 'ENOTDIR' }), target);

/**
 * Checks, without creating anything, that `dir` could be created and written: its first existing ancestor (itself,
 * if it exists) is a folder this process may write to. For checks before long work; the write itself still reports
 * what it meets.
 * @throws CnnxError WRITE_FAILED naming `target` (default `dir`).
 */
export async function checkDirectoryWritable(dir: string, target = dir): Promise<void> {
  const { existing } = firstExisting(dir);
  if (statSync(existing, { throwIfNoEntry: false })?.isDirectory() === false) throw notAFolder(target);
  await access(existing, constants.W_OK).catch((error: unknown) => {
    throw writeError(error, target);
  });
}

/**
 * Writes `data` to `target` atomically, creating the parent directory.
 * @throws CnnxError WRITE_FAILED for a full disk, a read-only or forbidden folder, or a folder in the file's place;
 *   `target` is then unchanged and no temporary file is left.
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await ensureDirectory(dirname(target), target);
  const temporary = temporaryPathFor(target);
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    // The first failure is what the user needs: a failed cleanup (the folder went away) must not replace it.
    await rm(temporary, { force: true }).catch(() => {});
    throw writeError(error, target);
  } finally {
    settled(temporary);
  }
}

/**
 * Runs `produce` with a temporary path beside `target` and renames it into place only if `produce` resolves.
 * For writers that stream into a path themselves (downloads, other libraries).
 */
export async function produceFileAtomic(target: string, produce: (temporary: string) => Promise<void>): Promise<void> {
  const made = await ensureDirectory(dirname(target), target);
  const temporary = temporaryPathFor(target);
  try {
    await produce(temporary);
    await rename(temporary, target);
  } catch (error) {
    // The first failure is what the user needs: a failed cleanup (the folder went away) must not replace it.
    await rm(temporary, { force: true }).catch(() => {});
    // Nothing is left of a write that failed: the folders made for it go too, innermost first, if still empty.
    for (const folder of made.reverse()) await rmdir(folder).catch(() => {});
    throw writeError(error, target);
  } finally {
    settled(temporary);
  }
}
