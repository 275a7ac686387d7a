/**
 * `cnnx train` and `cnnx bench train` options, through the CLI's `main` in this process: options that would
 * silently do nothing are refused in one line, and the benchmark prints only what it measured.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cnnxInProcess } from '../helpers/main-in-process.js';
import { tempDir } from '../helpers/temp-dir.js';

const cnnx = cnnxInProcess;

afterEach(() => vi.restoreAllMocks());

describe('cnnx train options', () => {
  it.each([
    [['--momentum', '0.5'], /--momentum applies only to --optimizer momentum \(the optimizer here is sgd\)/],
    [['--optimizer', 'adam', '--momentum', '0.5'], /the optimizer here is adam/],
  ])('refuses %j, which would do nothing', async (args, message) => {
    const { code, stderr } = await cnnx('train', ...args, '--out', join(await tempDir(), 'run'));
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses more workers than the machine can use, in one line, leaving no run folder', async () => {
    const out = join(await tempDir(), 'run');
    const { code, stderr } = await cnnx('train', '--workers', '99999', '--limit', '64', '--out', out);
    expect(code).toBe(1);
    expect(stderr).toMatch(/--workers 99999 is more than this machine can use: at most \d+/);
    expect(stderr.trim().split('\n').at(-1)).toMatch(/^cnnx: /);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses --resume with settings that belong to the run, naming them', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'config.json'), '{}');
    const { code, stderr } = await cnnx('train', '--resume', dir, '--lr', '0.1', '--batch-size', '8', '--epochs', '3');
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      'cnnx: --resume continues a run with its own settings, so --batch-size, --lr cannot be given (only --epochs, ' +
        '--backend and --workers can change, and --data or --test-data name where moved data is); start a new run ' +
        'with --out to change them',
    );
  });

  it.each([
    ['--dataset', 'fashion-mnist'],
    ['--optimizer', 'momentum'],
    ['--model', 'alexnet'],
    ['--seed', '1'],
    ['--augment', 'none'],
  ])('refuses --resume with %s', async (flag, value) => {
    const { code, stderr } = await cnnx('train', '--resume', await tempDir(), flag, value);
    expect(code).toBe(1);
    expect(stderr).toContain(`so ${flag} cannot be given`);
  });

  it('refuses an unknown distortion in --augment with one line that lists the names', async () => {
    const { code, stderr } = await cnnx('train', '--augment', 'affine,rotate', '--out', join(await tempDir(), 'run'));
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      `error: option '--augment [names]' argument 'affine,rotate' is invalid. unknown distortion "rotate"; name one ` +
        'or more of affine, elastic, thickness, blur, contrast, noise, flip (comma-separated), or none.',
    );
  });

  it('answers --out naming a file with one line', async () => {
    const file = join(await tempDir(), 'file');
    await writeFile(file, 'x');
    const { code, stderr } = await cnnx('train', '--out', file, '--backend', 'cpu');
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`cnnx: ${file} is a file, not a run folder; choose another --out`);
  });

  it('answers --out naming a folder that holds a run with one line', async () => {
    const dir = join(await tempDir(), 'run');
    await mkdir(dir);
    await writeFile(join(dir, 'metrics.jsonl'), '');
    const { code, stderr } = await cnnx('train', '--out', dir, '--backend', 'cpu');
    expect(code).toBe(1);
    expect(stderr.trim()).toMatch(
      new RegExp(
        `^cnnx: ${dir} already holds a run .*use --resume ${dir} to continue it, or another --out for a new run$`,
      ),
    );
  });
});

describe('cnnx bench train', () => {
  it.each([
    ['1', []],
    ['2', ['one_worker', 'scaling']],
  ])(
    'prints only what it measured, with --workers %s',
    async (workers, scaling) => {
      const { code, stdout } = await cnnx(
        'bench',
        'train',
        '--json',
        '--backend',
        'wasm',
        '--batch-size',
        '8',
        '--steps',
        '1',
        '--warmup',
        '1',
        '--workers',
        workers,
      );
      expect(code).toBe(0);
      const result = JSON.parse(stdout) as Record<string, unknown>;
      const measured = ['backend', 'batch_size', 'device', 'examples_per_sec', 'model', 'ms_per_step', 'peak_rss_mb'];
      expect(Object.keys(result).sort()).toEqual([...measured, 'steps', 'steps_per_sec', 'workers', ...scaling].sort());
      expect(result.workers).toBe(Number(workers));
    },
    120_000,
  );
});
