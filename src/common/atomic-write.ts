/**
 * Atomic file writes: write to a temporary file beside the target, fsync, then rename over it. A reader (or a
 * crash) sees the old file or the new one, never half of one; the temporary is removed if anything fails.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Temporary path beside `target`, unique per call; matches the `*.tmp-*` ignore pattern. */
export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${randomBytes(6).toString('hex')}`);
}

/** Writes `data` to `target` atomically, creating the parent directory. */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
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
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Runs `produce` with a temporary path beside `target` and renames it into place only if `produce` resolves.
 * For writers that stream into a path themselves (downloads, other libraries).
 */
export async function produceFileAtomic(target: string, produce: (temporary: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const temporary = temporaryPathFor(target);
  try {
    await produce(temporary);
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
