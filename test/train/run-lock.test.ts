/**
 * A run folder's lock under contention: processes that take it, release it and leave it stale (as a killed run
 * does) while others race to take it over never hold it at the same time; and what a killed taker leaves behind
 * does not block the next one.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { prepareRunDir } from '../../src/train/run-dir.js';
import { tempDir } from '../helpers/temp-dir.js';

const CONTENDER = fileURLToPath(new URL('../helpers/lock-contender.ts', import.meta.url));

// A filesystem without hard links (FAT, exFAT, some network ones), where link() fails with EPERM, when asked.
const links = vi.hoisted(() => ({ refused: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...fs,
    link: (existing: string, target: string) =>
      links.refused
        ? Promise.reject(Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' }))
        : fs.link(existing, target),
  };
});

describe("a run folder's lock", () => {
  it('is held by one process at a time while several take it, release it and take stale ones over', async () => {
    const dir = join(await tempDir(), 'run');
    await mkdir(dir);
    const log = join(dir, '..', 'holds.log');
    await writeFile(log, '');
    const contenders = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['--import', 'tsx', CONTENDER, dir, log, '3'], { stdio: ['ignore', 'inherit', 'pipe'] }),
    );
    const codes = await Promise.all(contenders.map(async (child) => (await once(child, 'exit'))[0] as number));
    expect(codes).toEqual([0, 0, 0, 0]);
    const holds = (await readFile(log, 'utf8')).trim().split('\n');
    let holder: string | undefined;
    const overlaps: number[] = [];
    holds.forEach((line, i) => {
      const [kind, pid] = line.split(' ');
      if (kind === 'enter') {
        if (holder !== undefined) overlaps.push(i);
        holder = pid;
      } else if (holder === pid) {
        holder = undefined;
      }
    });
    expect(overlaps).toEqual([]);
    expect(new Set(holds.map((line) => line.split(' ')[1])).size).toBeGreaterThan(1); // contended for real
    expect((await readdir(dir)).filter((name) => name !== 'run.lock')).toEqual([]);
  }, 120_000);

  it('is taken past what a killed process left: a half-done takeover and its draft', async () => {
    const dir = await tempDir();
    const dead = '999999999 1\n'; // no process has this id
    await writeFile(join(dir, 'run.lock'), dead);
    await writeFile(join(dir, '.run.lock.takeover'), dead);
    await writeFile(join(dir, '.run.lock.999999999-0a1b2c3d.new'), dead);
    const { release } = await prepareRunDir(dir, { resume: true });
    expect((await readFile(join(dir, 'run.lock'), 'utf8')).split(' ')[0]).toBe(String(process.pid));
    expect(await readdir(dir)).toEqual(['run.lock']);
    await release();
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
  });

  it('is refused in one line, not waited on, where a folder or a link is in its place', async () => {
    const stale = await tempDir();
    await writeFile(join(stale, 'run.lock'), '999999999 1\n');
    await mkdir(join(stale, '.run.lock.takeover'));
    const dangling = await tempDir();
    await symlink(join(dangling, 'gone'), join(dangling, 'run.lock'));
    const folder = await tempDir();
    await mkdir(join(folder, 'run.lock'));
    for (const [dir, lock, why] of [
      [folder, 'run.lock', 'it is a folder'],
      [dangling, 'run.lock', 'it is not a plain file'],
      [stale, '.run.lock.takeover', 'it is a folder'],
    ] as const) {
      await expect(prepareRunDir(dir, { resume: true })).rejects.toMatchObject({
        code: 'BAD_RUN_DIR',
        message: `${join(dir, lock)} is no lock cnnx can read (${why}); if no cnnx train works in ${dir}, delete it`,
      });
    }
  });

  it('is taken, refused while held, and taken over when stale on a filesystem without hard links', async () => {
    links.refused = true;
    try {
      const dir = await tempDir();
      const { release } = await prepareRunDir(dir, { resume: true });
      expect((await readFile(join(dir, 'run.lock'), 'utf8')).split(' ')[0]).toBe(String(process.pid));
      await expect(prepareRunDir(dir, { resume: true })).rejects.toMatchObject({ code: 'RUN_IN_PROGRESS' });
      await release();
      await writeFile(join(dir, 'run.lock'), '999999999 1\n');
      const again = await prepareRunDir(dir, { resume: true });
      expect(await readdir(dir)).toEqual(['run.lock']);
      await again.release();
    } finally {
      links.refused = false;
    }
  });
});
