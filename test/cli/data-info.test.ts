/** `cnnx data info --data`: the user's own pictures on the command line, and the shared user-data options. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/index.js';
import { addUserDataOptions, type UserDataFlags } from '../../src/cli/options.js';
import type { Dataset } from '../../src/data/index.js';
import {
  indicesOf,
  kaggleHeader,
  loadMnist,
  pictureOf,
  tinted,
  writeClassFolders,
  writeCsv,
} from '../data/user-data-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';

const ENTRY = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));

/** `cnnx ...args` from the sources (so dist/ need not be built), with its exit code and output. */
const run = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', ENTRY, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

let mnist: Dataset;
let digits: string;
let csvDir: string;
let noTrain: string;

beforeAll(async () => {
  mnist = await loadMnist();
  const root = await tempDir('cnnx-data-info-');
  digits = join(root, 'digits');
  await writeClassFolders(join(digits, 'train'), mnist.train, [0, 1, 2], 6);
  await writeClassFolders(join(digits, 'test'), mnist.test, [1, 2], 2);
  csvDir = join(root, 'csv');
  const rows = (split: Dataset['train'], labels: number[], n: number) =>
    labels.flatMap((label) =>
      indicesOf(split, label, n).map((i) => ({ label: String(label), pixels: tinted(pictureOf(split, i)).data })),
    );
  await writeCsv(join(csvDir, 'train.csv'), rows(mnist.train, [0, 1], 5), kaggleHeader(28 * 28 * 3));
  await writeCsv(join(csvDir, 'test.csv'), rows(mnist.test, [0, 1], 2));
  noTrain = join(root, 'no-train');
  await writeClassFolders(noTrain, mnist.train, [0, 1], 1);
  await writeClassFolders(join(noTrain, 'test'), mnist.test, [0, 1], 1);
});

describe('cnnx data info --data', () => {
  it('prints counts per class and split, size, channels and where each part came from, as JSON', async () => {
    const { code, stdout } = await run('data', 'info', '--data', digits, '--json');
    expect(code).toBe(0);
    const info = JSON.parse(stdout) as Record<string, unknown>;
    expect(info).toMatchObject({
      dataset: 'digits',
      image: [28, 28],
      channels: 1,
      classes: ['0', '1', '2'],
      splits: { train: { count: 18, perClass: [6, 6, 6] }, test: { count: 4, perClass: [0, 2, 2] } },
      files: [],
      path: digits,
      trainSource: `image folder ${digits}: train/ (18 pictures)`,
      testSource: `image folder ${digits}: test/ (4 pictures)`,
    });
  });

  it('prints a table, the test part held out of an RGB CSV, resized to --image-size', async () => {
    const csv = join(csvDir, 'train.csv');
    const { code, stdout, stderr } = await run(
      'data',
      'info',
      '--data',
      csv,
      '--image-size',
      '14x12',
      '--channels',
      '3',
    );
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout).toContain('dataset   train (14x12, 3 channels, 2 classes)');
    expect(stdout).toContain(
      `train     8 examples from CSV ${csv} (10 rows, label column "label"; 2 pictures held out as the test part)`,
    );
    expect(stdout).toContain(
      'test      2 examples from 10% of each class of the training data, held out (stratified, seed 1989)',
    );
    expect(stdout).toMatch(/^ 0 {2}0 +4 +1$/m);
    expect(stdout).toContain(`not checked  ${csv}`);
  });

  it('takes --test-data, and RGB CSVs with --channels 3', async () => {
    const { code, stdout } = await run(
      'data',
      'info',
      '--data',
      join(csvDir, 'train.csv'),
      '--test-data',
      join(csvDir, 'test.csv'),
      '--channels',
      '3',
      '--json',
    );
    expect(code).toBe(0);
    const info = JSON.parse(stdout) as { image: number[]; channels: number; splits: { test: { count: number } } };
    expect([info.image, info.channels, info.splits.test.count]).toEqual([[28, 28], 3, 4]);
  });
});

/** `cnnx ...args` in this process (quicker than a process of its own), with its exit code and stderr. */
const runHere = async (...args: string[]) => {
  const lines: string[] = [];
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => lines.push(String(chunk)) > 0);
  const error = vi.spyOn(console, 'error').mockImplementation((...parts) => lines.push(`${parts.join(' ')}\n`));
  try {
    const code = await main(['node', 'cnnx', ...args]);
    return { code, stderr: lines.join('') };
  } finally {
    write.mockRestore();
    error.mockRestore();
  }
};

describe('cnnx data info mistakes: one line and a non-zero exit', () => {
  it.each([
    [['data', 'info'], /required option '-d, --dataset <name>' not specified \(or give --data <folder or CSV>\)/],
    [['data', 'info', '--dataset', 'mnist', '--data', '.'], /--dataset and --data both name a dataset; give one/],
    [
      ['data', 'info', '--dataset', 'mnist', '--image-size', '28'],
      /--image-size applies to your own pictures: add --data/,
    ],
    [['data', 'info', '--data', '.', '--idx-dir', '.'], /--idx-dir applies to --dataset/],
    [['data', 'info', '--data', '/nonexistent'], /cnnx: \/nonexistent: no such file or folder \(the data\)/],
    [['data', 'info', '--data', '.', '--image-size', '0x5'], /expected N or HxW .* got "0x5"/],
    [['data', 'info', '--data', '.', '--channels', '2'], /expected 1 \(gray\) or 3 \(RGB\), got "2"/],
  ])('%j', async (args, message) => {
    const { code, stderr } = await runHere(...args);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('an RGB CSV without --channels 3, and a folder with test/ but no train/', async () => {
    for (const [args, message] of [
      [
        ['--data', join(csvDir, 'train.csv')],
        /2352 pixel columns are not a square gray picture .*if the pictures are RGB 28x28, give --channels 3/,
      ],
      [['--data', noTrain], /a test\/ folder but no train\/ folder, .*put the class folders under .*\/train\//],
    ] as const) {
      const { code, stderr } = await runHere('data', 'info', ...args);
      expect(code).not.toBe(0);
      expect(stderr).toMatch(message);
      expect(stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('addUserDataOptions', () => {
  const parse = (...args: string[]) => {
    const command = addUserDataOptions(new Command().exitOverride().configureOutput({ writeErr: () => {} }));
    return command.parse(args, { from: 'user' }).opts<UserDataFlags>();
  };

  it('parses --image-size N or HxW to [height, width], and --channels', () => {
    expect(parse('--image-size', '28').imageSize).toEqual([28, 28]);
    expect(parse('--image-size', '32x48').imageSize).toEqual([32, 48]);
    expect(parse('--image-size', '512X1').imageSize).toEqual([512, 1]);
    expect(parse('--data', 'pics', '--test-data', 'more', '--channels', '3')).toEqual({
      data: 'pics',
      testData: 'more',
      channels: 3,
    });
  });

  it.each(['0', '28x', 'x28', '513', '2.5', '28x28x3', '-1'])('refuses --image-size %s', (value) => {
    expect(() => parse('--image-size', value)).toThrow(/expected N or HxW/);
  });
});
