import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { buildProgram, COMMANDS, type CommandName } from '../../src/cli/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', ['bin/cnnx.js', ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

describe('cnnx CLI', () => {
  it('lists each subcommand with the summary its module gives it', async () => {
    const names = Object.keys(COMMANDS) as CommandName[];
    const loaded = await buildProgram(names);
    for (const name of names) {
      expect([name, loaded.commands.find((c) => c.name() === name)?.description()]).toEqual([
        name,
        COMMANDS[name].summary,
      ]);
    }
  });

  it('lists every subcommand in --help', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(0);
    for (const name of ['train', 'export', 'eval', 'predict', 'serve', 'bench', 'demo', 'data']) {
      expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
  });

  it('prints data info for MNIST', async () => {
    const { code, stdout } = await run('data', 'info', '--dataset', 'mnist', '--json');
    expect(code).toBe(0);
    const info = JSON.parse(stdout) as { splits: { train: { count: number }; test: { count: number } } };
    expect([info.splits.train.count, info.splits.test.count]).toEqual([60000, 10000]);
  });

  it.each([
    [['data', 'info', '--dataset', 'cifar'], /should be one of: mnist, fashion-mnist/],
    [['data', 'info'], /required option '-d, --dataset <name>' not specified/],
    [['nonsense'], /unknown command 'nonsense'/],
    [
      ['data', 'info', '--dataset', 'mnist', '--idx-dir', '/nonexistent'],
      /\/nonexistent: missing train-images-idx3-ubyte/,
    ],
  ])('answers a mistake (%j) with one line and a non-zero exit', async (args, message) => {
    const { code, stderr } = await run(...args);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(message);
    expect(
      stderr
        .trim()
        .split('\n')
        .filter((line) => line && !line.startsWith('(Did you mean')),
    ).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('cnnx eval / predict / export on the command line', () => {
  it.each([
    [['eval', '--model', '/nonexistent.onnx'], /\/nonexistent.onnx: cannot read \(no such file\)/],
    [['eval', '--model', 'package.json'], /package.json: not a valid ONNX model/],
    [['predict', '--model', 'package.json', 'x.png'], /package.json: not a valid ONNX model/],
    [
      ['export', '--run', '/nonexistent', '--out', '/tmp/x.onnx'],
      /^cnnx: \/nonexistent does not exist \(give the folder that cnnx train wrote the run to, its --out\)/,
    ],
    [['export', '--run', '.', '--out', '/tmp/x.onnx', '--opset', 'seven'], /expected a positive integer, got "seven"/],
    [['train', '--model', 'resnet'], /should be one of: lenet5, lenet5-relu, alexnet/],
    [['train', '--batch-size', '0'], /expected a positive integer, got "0"/],
    [['train', '--resume', '/nonexistent'], /^cnnx: \/nonexistent does not exist/],
    [['bench', 'train', '--backend', 'tpu'], /should be one of: auto, tensorflow, webgpu, wasm, cpu/],
    [
      ['eval', '--model', 'models/lenet5-mnist.onnx', '--idx-dir', '/nonexistent'],
      /\/nonexistent: missing train-images-idx3-ubyte/,
    ],
    [
      ['data', 'info', '--dataset', 'mnist', '--idx-dir', 'package.json'],
      /package.json: not a folder; --idx-dir names the folder that holds the four IDX files/,
    ],
    [
      ['bench', 'train', '--batch-size', '4096'],
      /^cnnx: 23 steps \(--warmup 3 and --steps 20\) of 4096 examples need 94208; mnist has 60000: give fewer --steps or a smaller --batch-size\n$/,
    ],
    [
      ['demo', '--port', '8931', '--grpc-port', '8931'],
      /^cnnx: --grpc-port 8931 is the HTTP port too \(--port\): give gRPC a port of its own, e.g. --grpc-port 8932\n$/,
    ],
    [
      ['train', '--lr', '0x10'],
      /^error: option '--lr <rate>' argument '0x10' is invalid\. expected a positive number, got "0x10"\.\n$/,
    ],
    [
      ['train', '--lr', '1e-300'],
      /argument '1e-300' is invalid\. "1e-300" is 0 in float32, in which training runs\.\n$/,
    ],
    [
      ['predict', '--model', 'models/lenet5-mnist.onnx', 'models'],
      /^cnnx: models: no \.png, \.jpg, \.jpeg or \.webp files in this folder\n$/,
    ],
    // An unset shell variable: '' would be the working folder (a new run, the folder read as class folders).
    [['train', '--resume', ''], /^error: option '--resume <run>' is empty; give a value or leave the option out\n$/],
    [['train', '--data', ' '], /^error: option '--data <path>' is empty/],
    [['train', '--out', '', '--limit', '8'], /^error: option '-o, --out <dir>' is empty/],
    [['serve', '--model', 'models', '--host', ''], /^error: option '--host <address>' is empty/],
    [['predict', '--model', 'models/lenet5-mnist.onnx', ''], /^error: argument 1 is empty/],
  ])('answers %j with one line', async (args, message) => {
    const { code, stderr } = await run(...args);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('names --limit as the cause of an empty validation part', async () => {
    const out = join(await tempDir(), 'run');
    const { code, stderr } = await run('train', '--limit', '5', '--val-split', '0.1', '--backend', 'cpu', '--out', out);
    expect(code).toBe(1);
    expect(existsSync(out)).toBe(false); // a run that cannot start leaves no folder
    expect(stderr.trim().split('\n').at(-1)).toMatch(
      /^cnnx: the validation part of mnist is empty \(.*, --limit 5 of the training pictures\); raise --limit or --test-limit, /,
    );
  });

  it('trains on your own IDX folder (--idx-dir), and names what is missing there', async () => {
    const { code, stderr } = await run('train', '--idx-dir', '/nonexistent', '--limit', '8', '--backend', 'cpu');
    expect(code).toBe(1);
    expect(stderr.trim().split('\n').at(-1)).toBe(
      'cnnx: /nonexistent: missing train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)',
    );
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('prints layer shapes like the notebook', async () => {
    const { code, stdout } = await run('train', '--model', 'alexnet', '--print-shapes');
    expect(code).toBe(0);
    expect(stdout).toMatch(/Conv2d\s+output shape:\s+\[1, 96, 54, 54\]/);
    expect(stdout).toMatch(/Dense\s+output shape:\s+\[1, 10\]/);
  });

  it('refuses a picture that is not PNG, JPEG or WebP, naming its format', async () => {
    const gif = join(await tempDir(), 'digit.gif');
    await sharp({ create: { width: 28, height: 28, channels: 3, background: '#ffffff' } })
      .gif()
      .toFile(gif);
    const { code, stderr } = await run('predict', '--model', 'models/lenet5-mnist.onnx', gif);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`cnnx: ${gif} is GIF; use a PNG, JPEG or WebP image`);
  });

  it('answers every file it can when some cannot be read, and exits 1', async () => {
    const dir = await tempDir();
    const [gif, blank] = [join(dir, 'digit.gif'), join(dir, 'blank.png')];
    await sharp({ create: { width: 28, height: 28, channels: 3, background: '#ffffff' } })
      .gif()
      .toFile(gif);
    await sharp({ create: { width: 28, height: 28, channels: 3, background: '#ffffff' } })
      .png()
      .toFile(blank);
    const seven = 'test/preprocess/fixtures/thin-pen-7.png';
    const { code, stdout, stderr } = await run(
      'predict',
      '--model',
      'models/lenet5-mnist.onnx',
      '--json',
      seven,
      gif,
      blank,
    );
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`cnnx: ${gif} is GIF; use a PNG, JPEG or WebP image`);
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    // In the order given, the failure in its place.
    expect(lines).toEqual([
      expect.objectContaining({ file: seven, class: '7' }),
      { file: gif, error: `${gif} is GIF; use a PNG, JPEG or WebP image`, code: 'BAD_IMAGE' },
      { file: blank, nothing: expect.stringMatching(/^no ink/) },
    ]);
  });

  it('refuses a picture over the pixel budget with the reason, not as undecodable', async () => {
    const huge = join(await tempDir(), 'huge.png');
    await sharp({ create: { width: 8000, height: 8000, channels: 3, background: '#ffffff' } })
      .png()
      .toFile(huge);
    const { code, stderr } = await run('predict', '--model', 'models/lenet5-mnist.onnx', huge);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      `cnnx: ${huge} has more than 25 megapixels (the most cnnx decodes); scale it down (a picture for a CNN needs far fewer)`,
    );
  });
});
