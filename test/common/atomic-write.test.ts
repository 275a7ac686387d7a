/** Atomic writes when the disk says no: a full disk or a folder in the file's place is a one-line user error. */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkDirectoryWritable,
  CnnxError,
  ensureDirectory,
  produceFileAtomic,
  writeFileAtomic,
} from '../../src/common/index.js';
import { tempDir } from '../helpers/temp-dir.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

describe('writeFileAtomic', () => {
  it('names a folder found where the file should be', async () => {
    const target = join(dir, 'model.onnx');
    await mkdir(target);
    const error = await writeFileAtomic(target, 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CnnxError);
    expect(error).toMatchObject({
      code: 'WRITE_FAILED',
      message: `cannot write ${target}: that is a folder: name a file`,
    });
    expect(await readdir(dir)).toEqual(['model.onnx']);
  });

  it('names a file found where a folder of the path should be, whichever writer meets it', async () => {
    const file = join(dir, 'not-a-folder');
    await writeFile(file, '');
    const message = `cannot write ${join(file, 'model.onnx')}: part of the path is a file, not a folder`;
    await expect(writeFileAtomic(join(file, 'model.onnx'), 'x')).rejects.toMatchObject({
      code: 'WRITE_FAILED',
      message,
    });
    await expect(produceFileAtomic(join(file, 'model.onnx'), async () => {})).rejects.toMatchObject({ message });
    await expect(checkDirectoryWritable(join(file, 'sub'), join(file, 'model.onnx'))).rejects.toMatchObject({
      message,
    });
    await expect(checkDirectoryWritable(join(dir, 'new', 'deeper'))).resolves.toBeUndefined();
    expect(existsSync(join(dir, 'new'))).toBe(false);
  });
});

describe('a write the process does not live to finish', () => {
  it('leaves no temporary file when Ctrl-C ends the process in the middle of it', async () => {
    const out = await tempDir();
    const module = new URL('../../src/common/atomic-write.ts', import.meta.url).href;
    // A writer that writes part of its file, then never finishes: Ctrl-C comes while the temporary exists.
    const script = `import { produceFileAtomic } from ${JSON.stringify(module)};
      import { writeFileSync } from 'node:fs';
      await produceFileAtomic(${JSON.stringify(join(out, 'model.onnx'))}, async (temporary) => {
        writeFileSync(temporary, 'part of a model');
        console.log('writing');
        await new Promise(() => setInterval(() => {}, 1000));
      });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'pipe' });
    child.stderr.resume();
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    expect((await readdir(out)).filter((name) => name.includes('.tmp-'))).toHaveLength(1);
    child.kill('SIGINT');
    const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
    expect(signal).toBe('SIGINT');
    expect(await readdir(out)).toEqual([]);
  }, 60_000);
});

/** A 64 KiB tmpfs: a real full disk. Mounting needs root (CI runs as root); elsewhere the test says why it skips. */
const full = { dir: '', mounted: false, why: '' };
beforeAll(async () => {
  full.dir = join(await tempDir(), 'full');
  await mkdir(full.dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full.dir], { stdio: 'pipe' });
    full.mounted = true;
  } catch (error) {
    full.why = `cannot mount a small tmpfs here (${String((error as Error).message).split('\n')[0]})`;
  }
});
afterAll(() => {
  if (full.mounted) execFileSync('umount', [full.dir]);
});

describe('writeFileAtomic on a full disk', () => {
  it('fails with one line, keeps the previous file and leaves no temporary', async (context) => {
    if (!full.mounted) return context.skip(full.why);
    const target = join(full.dir, 'checkpoint.safetensors');
    await writeFile(target, 'previous');
    const error = await writeFileAtomic(target, new Uint8Array(256 * 1024)).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'WRITE_FAILED',
      message: `cannot write ${target}: the disk is full: free some space or choose another folder`,
    });
    expect(await readFile(target, 'utf8')).toBe('previous');
    expect(await readdir(full.dir)).toEqual(['checkpoint.safetensors']);
  });
});

describe('ensureDirectory on a read-only file system', () => {
  it('names the real reason (Node reports it as ENOENT)', async (context) => {
    const dir = join(await tempDir(), 'ro');
    await mkdir(dir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,ro', 'tmpfs', dir], { stdio: 'pipe' });
    } catch (error) {
      return context.skip(`cannot mount a read-only tmpfs here (${String((error as Error).message).split('\n')[0]})`);
    }
    try {
      const run = join(dir, 'runs', 'first');
      await expect(ensureDirectory(run)).rejects.toMatchObject({
        code: 'WRITE_FAILED',
        message: `cannot write ${run}: the file system is read-only: choose another folder`,
      });
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe('ensureDirectory where folders cannot be made', () => {
  it.each([
    ['/proc/cnnx-run', 'that folder takes no new folders or files: choose another one'],
    ['/proc/cnnx-runs/first', 'that folder takes no new folders or files: choose another one'],
  ])("refuses %s at once (Node's recursive mkdir spins there forever)", async (dir, why) => {
    await expect(ensureDirectory(dir)).rejects.toMatchObject({
      code: 'WRITE_FAILED',
      message: `cannot write ${dir}: ${why}`,
    });
  });

  it('makes every missing parent, and takes a folder made meanwhile', async () => {
    const root = await tempDir();
    const dir = join(root, 'a', 'b', 'c');
    await Promise.all([ensureDirectory(dir), ensureDirectory(dir), ensureDirectory(join(root, 'a', 'b'))]);
    expect(await readdir(join(root, 'a', 'b'))).toEqual(['c']);
    await writeFile(join(root, 'file'), 'x');
    await expect(ensureDirectory(join(root, 'file', 'run'))).rejects.toMatchObject({ code: 'WRITE_FAILED' });
  });
});
