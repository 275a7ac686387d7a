/** `cnnx serve` options that cannot work are refused in one line, before a port is opened or a model loaded. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cnnxInProcess as cnnx } from '../helpers/main-in-process.js';

afterEach(() => vi.restoreAllMocks());

describe('cnnx serve options', () => {
  it.each([
    [['--instances', '2', '--no-inference-worker'], /--instances needs inference threads; drop --no-inference-worker/],
    [['--instances', '99999'], /--instances 99999 is more than this machine can use: at most \d+ \(4 a core\)/],
  ])('refuses %j', async (args, message) => {
    const { code, stderr } = await cnnx('serve', '--model', 'models/lenet5-relu-mnist.onnx', '--port', '0', ...args);
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});
