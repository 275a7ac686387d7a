/** `cnnx serve` options that cannot work are refused in one line, before a port is opened or a model loaded. */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cnnxInProcess as cnnx } from '../helpers/main-in-process.js';
import { tempDir } from '../helpers/temp-dir.js';

afterEach(() => vi.restoreAllMocks());

describe('cnnx serve options', () => {
  it.each([
    [['--instances', '2', '--no-inference-worker'], /--instances needs inference threads; drop --no-inference-worker/],
    [['--instances', '99999'], /--instances 99999 is more than this machine can use: at most \d+ \(4 a core\)/],
    [['--threads', '1000'], /--threads 1000 is more than this machine can use: at most \d+ \(4 a core\)/],
    [
      ['--max-batch', '2', '--preferred-batch', '100'],
      /--preferred-batch 100 is more than --max-batch 2: a batch never holds more than --max-batch images/,
    ],
    [['--timeout', '99999999999'], /--timeout.*expected at most 2147483647 ms \(about 24\.8 days\)/],
    [['--max-queue-delay', '99999999999'], /--max-queue-delay.*expected at most 2147483647 ms/],
  ])('refuses %j', async (args, message) => {
    const { code, stderr } = await cnnx('serve', '--model', 'models/lenet5-relu-mnist.onnx', '--port', '0', ...args);
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('serves every --model given, and refuses two files that name one model', async () => {
    const other = join(await tempDir(), 'lenet5-relu-mnist.onnx');
    await copyFile('models/lenet5-mnist.onnx', other);
    const { code, stderr } = await cnnx(
      'serve',
      '--model',
      'models/lenet5-relu-mnist.onnx',
      '--model',
      other,
      '--port',
      '0',
    );
    expect(code).toBe(1);
    expect(stderr.trim().split('\n').at(-1)).toBe(
      `cnnx: ${other} and models/lenet5-relu-mnist.onnx both name model 'lenet5-relu-mnist'; rename one (the model's name is its file's)`,
    );
  });

  it('refuses a --pin that names no served model, once the models are known, and ends', async () => {
    // After the model loaded: its inference threads are closed, so the command returns rather than hanging.
    const pin = `lenet5-relu-mnsit=${'0'.repeat(64)}`;
    const { code, stderr } = await cnnx(
      'serve',
      '--model',
      'models/lenet5-relu-mnist.onnx',
      '--port',
      '0',
      '--pin',
      pin,
    );
    expect(code).toBe(1);
    expect(stderr.trim().split('\n').at(-1)).toMatch(
      /^cnnx: --pin names lenet5-relu-mnsit, which is not served here \(served: lenet5-relu-mnist\)$/,
    );
  });

  it('names a Triton model repository as such, which it does not read', async () => {
    const repository = await tempDir();
    await mkdir(join(repository, 'lenet', '1'), { recursive: true });
    await copyFile('models/lenet5-mnist.onnx', join(repository, 'lenet', '1', 'model.onnx'));
    const { code, stderr } = await cnnx('serve', '--model', repository, '--port', '0');
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(
      `cnnx: ${repository}: no .onnx files to serve; it is a Triton model repository (lenet/1/model.onnx), which cnnx does not read: serve the .onnx file that \`cnnx export --out\` wrote beside it (its name is the model's)`,
    );
  });
});
