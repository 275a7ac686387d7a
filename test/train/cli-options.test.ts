/**
 * `cnnx train` and `cnnx bench train` options, through the CLI's `main` in this process: options that would
 * silently do nothing are refused in one line, and the benchmark prints only what it measured.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeSafetensors, readSafetensors } from '../../src/common/index.js';
import { cnnxInProcess } from '../helpers/main-in-process.js';
import { tempDir } from '../helpers/temp-dir.js';

const cnnx = cnnxInProcess;

afterEach(() => vi.restoreAllMocks());

describe('cnnx train options', () => {
  it.each([
    [['--momentum', '0.5'], /--momentum applies only to --optimizer momentum \(the optimizer here is sgd\)/],
    [['--optimizer', 'adam', '--momentum', '0.5'], /the optimizer here is adam/],
    [
      ['--data', 'pics', '--idx-dir', '/tmp'],
      /--idx-dir reads MNIST-format files for --dataset; --data trains on your own pictures: give one/,
    ],
    [
      ['--optimizer', 'momentum', '--momentum', '1.5'],
      /--momentum <m>' argument '1.5' is invalid\. expected a number from 0 to below 1/,
    ],
    [['--checkpoint-every', '-1'], /--checkpoint-every <minutes>' argument '-1' is invalid\. expected a number >= 0/],
    [['--checkpoint-every', 'often'], /--checkpoint-every <minutes>' argument 'often' is invalid/],
    [['--checkpoint-every', '1e-400'], /argument '1e-400' is invalid\. "1e-400" is 0 as a number, which turns/],
    [
      ['--seed', '4294967296'],
      /--seed <n>' argument '4294967296' is invalid\. expected a whole number from 0 to 4294967295/,
    ],
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
        '--backend, --workers and --checkpoint-every can change, and --data or --test-data name where moved data ' +
        'is); start a new run with --out to change them',
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
        `^cnnx: ${dir} already holds a run .*; continue it with cnnx train --resume ${dir}, or give another --out for a new run$`,
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

describe('a batch larger than the data', () => {
  it('trains one batch of all the examples on every worker count', async () => {
    const out = join(await tempDir(), 'huge-batch');
    const args = [
      '--model',
      'lenet5',
      '--limit',
      '64',
      '--test-limit',
      '32',
      '--epochs',
      '1',
      '--batch-size',
      '99999999',
    ];
    const { code, stderr } = await cnnx('train', ...args, '--workers', '2', '--out', out);
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/Error|\n\s+at /);
  }, 120_000);
});

describe('cnnx train on run folders', () => {
  /** A finished 2-epoch run (a few seconds), through the CLI. */
  const finishedRun = async () => {
    const out = join(await tempDir(), 'run');
    const args = ['--model', 'lenet5', '--limit', '128', '--test-limit', '64', '--batch-size', '32', '--epochs', '2'];
    const { code } = await cnnx('train', ...args, '--workers', '1', '--out', out);
    expect(code).toBe(0);
    return out;
  };

  it.each([
    ['{}', /its config.json has no valid model, dataset, backend, optimizer, schedule, epochs, batchSize, lr, seed\)$/],
    ['null', /its config.json has no valid model, dataset/],
    ['{"model":"lenet5","dataset":"mnist","backend":7}', /its config.json has no valid backend, optimizer/],
    [
      '{"model":"lenet5","dataset":"mnist","backend":"wasm","optimizer":"sgd","schedule":"constant","epochs":2,"batchSize":0,"lr":0.1,"seed":1,"workers":-5}',
      /its config.json has no valid batchSize, workers\)$/,
    ],
  ])("refuses a config.json that is not a cnnx run's (%s) in one line, for train and export", async (text, message) => {
    const dir = await tempDir();
    await writeFile(join(dir, 'config.json'), text);
    for (const args of [
      ['train', '--resume', dir],
      ['export', '--run', dir, '--out', join(dir, 'model.onnx')],
    ]) {
      const { code, stderr } = await cnnx(...args);
      expect(code).toBe(1);
      expect(stderr.trim()).toMatch(new RegExp(`^cnnx: ${dir}: not a cnnx run directory \\(`));
      expect(stderr.trim()).toMatch(message);
    }
  });

  it('refuses a folder another cnnx train works in, takes over a lock its process left, and checks --epochs', async () => {
    const out = await finishedRun();
    expect(existsSync(join(out, 'run.lock'))).toBe(false);
    // A live process's lock (this one's).
    await writeFile(join(out, 'run.lock'), `${process.pid}\n`);
    const busy = await cnnx('train', '--resume', out, '--epochs', '3');
    expect(busy.code).toBe(1);
    expect(busy.stderr.trim()).toBe(
      `cnnx: ${out}: another cnnx train (process ${process.pid}) is working in this folder; wait for it to end, or choose another --out ` +
        `(if no cnnx train runs there, delete ${join(out, 'run.lock')})`,
    );
    // A lock whose process id now belongs to another process (its start time differs) is stale, as is the lock of
    // a process that has ended: each is taken over.
    await writeFile(join(out, 'run.lock'), `${process.pid} 1\n`);
    expect((await cnnx('train', '--resume', out)).code).toBe(0);
    await writeFile(join(out, 'run.lock'), `${spawnSync('true').pid}\n`);
    const below = await cnnx('train', '--resume', out, '--epochs', '1');
    expect(below.code).toBe(1);
    expect(below.stderr).toMatch(/has completed 2 epochs: --epochs must be at least 2/);
    const complete = await cnnx('train', '--resume', out);
    expect(complete.code).toBe(0);
    expect(complete.stdout).toMatch(
      /is complete \(2 of 2 epochs\); to train it further give the new total: cnnx train --resume .* --epochs 3/,
    );
    const more = await cnnx('train', '--resume', out, '--epochs', '3');
    expect(more.code).toBe(0);
    expect(existsSync(join(out, 'run.lock'))).toBe(false);
  }, 120_000);

  it('refuses to scatter a new run among other files (--out . in a project)', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'package.json'), '{}');
    await writeFile(join(dir, '.gitkeep'), '');
    const { code, stderr } = await cnnx('train', '--limit', '64', '--out', dir);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      `cnnx: ${dir} holds other files (package.json); a run gets a folder of its own: give --out a new or empty folder`,
    );
  });

  it('says what to do with a damaged checkpoint', async () => {
    const out = await finishedRun();
    await writeFile(join(out, 'checkpoint.safetensors'), 'garbage');
    const { code, stderr } = await cnnx('train', '--resume', out, '--epochs', '3');
    expect(code).toBe(1);
    expect(stderr.trim().split('\n').at(-1)).toMatch(
      /checkpoint.safetensors: not a valid weights file \(.*\): the run cannot continue from a damaged checkpoint; restore the file from a backup, or start a new run with another --out \(best.safetensors can still be exported\)$/,
    );
  }, 120_000);

  it('refuses a checkpoint holding a value that is not a number, which would spread through training', async () => {
    const out = await finishedRun();
    const file = join(out, 'checkpoint.safetensors');
    const { tensors, metadata } = await readSafetensors(file);
    const [name, first] = [...tensors][0]!;
    first.data[0] = Number.NaN;
    await writeFile(file, encodeSafetensors(tensors, metadata));
    const { code, stderr } = await cnnx('train', '--resume', out, '--epochs', '3');
    expect(code).toBe(1);
    expect(stderr.trim().split('\n').at(-1)).toBe(
      `cnnx: ${file}: '${name}' holds a value that is not a finite number (at 0): the run cannot continue from a ` +
        'damaged checkpoint; restore the file from a backup, or start a new run with another --out ' +
        '(best.safetensors can still be exported)',
    );
  }, 120_000);

  it('refuses a config.json edited away from the settings the checkpoint was trained with', async () => {
    const out = await finishedRun();
    const file = join(out, 'config.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...config, batchSize: 16, lr: 0.5 }));
    const { code, stderr } = await cnnx('train', '--resume', out, '--epochs', '3');
    expect(code).toBe(1);
    expect(stderr.trim().split('\n').at(-1)).toBe(
      `cnnx: ${file} differs from the settings its checkpoint was trained with: batchSize 16 (trained with 32), ` +
        `lr 0.5 (trained with ${JSON.stringify(config.lr)}); restore it, or start a new run with another --out to ` +
        'train with other settings',
    );
    // Restored, the run goes on.
    await writeFile(file, JSON.stringify(config));
    expect((await cnnx('train', '--resume', out, '--epochs', '3')).code).toBe(0);
  }, 120_000);

  it('keeps the best of the coming epochs when the best weights are gone or damaged, and says so', async () => {
    for (const damage of ['remove', 'truncate'] as const) {
      const out = await finishedRun();
      const best = join(out, 'best.safetensors');
      if (damage === 'remove') await rm(best);
      else await writeFile(best, (await readFile(best)).subarray(0, 100));
      const { code, stderr } = await cnnx('train', '--resume', out, '--epochs', '3');
      expect(code).toBe(0);
      expect(stderr).toMatch(
        new RegExp(
          `warning: .*best.safetensors(:)? (is missing|not a valid weights file .*): the best weights of epoch \\d are lost, so the best of the epochs from here on will be kept`,
        ),
      );
      const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as { bestEpoch: number };
      expect(summary.bestEpoch).toBe(3);
      expect((await readSafetensors(best)).tensors.size).toBeGreaterThan(0);
    }
  }, 240_000);

  it('refuses to end a run stopped within an epoch at the epochs it completed, which would drop that epoch', async () => {
    const out = await finishedRun();
    // As a stop in epoch 3 after its batch 2 leaves the checkpoint.
    const file = join(out, 'checkpoint.safetensors');
    const { tensors, metadata } = await readSafetensors(file);
    const position = { ...(JSON.parse(metadata.position!) as object), epoch: 2, batch: 2 };
    await writeFile(file, encodeSafetensors(tensors, { ...metadata, position: JSON.stringify(position) }));
    const { code, stderr } = await cnnx('train', '--resume', out, '--epochs', '2');
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      `cnnx: ${out} stopped in epoch 3 (after batch 2): --epochs must be at least 3 to finish it; its best weights so ` +
        `far are ready to export as they are (cnnx export --run ${out})`,
    );
  }, 120_000);

  it('resumes a run whose metrics file was damaged, and rewrites it from the checkpoint', async () => {
    const out = await finishedRun();
    await appendFile(join(out, 'metrics.jsonl'), '{"epo\n');
    const more = await cnnx('train', '--resume', out, '--epochs', '3');
    expect([more.code, more.stderr]).toEqual([0, expect.not.stringMatching(/not JSON/)]);
    const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as { epoch: number }).epoch)).toEqual([1, 2, 3]);
  }, 120_000);

  it('refuses to start a run over again when its checkpoint is gone but its work is there', async () => {
    const out = await finishedRun();
    await rm(join(out, 'checkpoint.safetensors'));
    const before = await readFile(join(out, 'best.safetensors'));
    const { code, stderr } = await cnnx('train', '--resume', out, '--epochs', '3');
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /has no checkpoint.safetensors but holds 2 completed epochs.*start a new run with another --out/,
    );
    expect(await readFile(join(out, 'best.safetensors'))).toEqual(before);
  }, 120_000);

  it('refuses --batch-size 1 for a model with batch norm (a batch of one is all zeros after it)', async () => {
    const out = join(await tempDir(), 'run');
    const { code, stderr } = await cnnx('train', '--model', 'lenet5-relu', '--batch-size', '1', '--out', out);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      'cnnx: lenet5-relu has batch norm, which needs at least 2 examples in a batch: give --batch-size 2 or more (or a model without batch norm, e.g. lenet5)',
    );
    expect(existsSync(out)).toBe(false);
  });
});
