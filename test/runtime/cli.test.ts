/** `cnnx eval` and `cnnx predict` answering user mistakes in-process: one line on stderr, a non-zero exit. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/index.js';
import { tinyClassifier } from '../helpers/tiny-onnx.js';

const MNIST_MODEL = 'models/lenet5-mnist.onnx';

/** Runs the CLI in this process; what it printed, by stream. */
async function cnnx(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void stdout.push(parts.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void stderr.push(parts.join(' ')));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => stdout.push(String(chunk)) > 0);
  const code = await main(['node', 'cnnx', ...args]);
  vi.restoreAllMocks();
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('cnnx eval and predict: user mistakes', () => {
  it.each([[['eval', '--model', 'models']], [['predict', '--model', 'models', 'picture.png']]])(
    '%j: a directory as the model is one line, no stack',
    async (args) => {
      const { code, stderr } = await cnnx(...args);
      expect(code).toBe(1);
      expect(stderr).toBe('cnnx: models: is a directory; give the path of a .onnx file');
    },
  );

  it('refuses to evaluate an MNIST model on Fashion-MNIST without --force', async () => {
    const { code, stderr } = await cnnx('eval', '--model', MNIST_MODEL, '--dataset', 'fashion-mnist');
    expect(code).toBe(1);
    expect(stderr).toBe(
      `cnnx: ${MNIST_MODEL} was trained on mnist, not fashion-mnist: its accuracy there means nothing; ` +
        'evaluate it on mnist, or add --force',
    );
  });

  it('with --force, evaluates it and warns on stderr', async () => {
    const { code, stdout, stderr } = await cnnx(
      'eval',
      '--model',
      MNIST_MODEL,
      '--dataset',
      'fashion-mnist',
      '--force',
      '--offline',
      '--limit',
      '64',
      '--json',
    );
    expect(code).toBe(0);
    expect(stderr.split('\n')[0]).toBe('cnnx: warning: model was trained on mnist; evaluating on fashion-mnist');
    expect(JSON.parse(stdout)).toMatchObject({ dataset: 'fashion-mnist', count: 64 });
  });

  it('refuses a model whose class count differs from the dataset, even with --force', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cnnx-eval-'));
    const file = join(dir, 'three-classes.onnx');
    const model = tinyClassifier({
      classes: 3,
      output: 'logits',
      nodes: [
        { opType: 'Flatten', input: ['input'], output: ['flat'] },
        { opType: 'MatMul', input: ['flat', 'w'], output: ['logits'] },
      ],
      initializers: { w: { dims: [784, 3], data: new Array(784 * 3).fill(0.01) } },
    });
    await writeFile(file, model);
    try {
      const { code, stderr } = await cnnx('eval', '--model', file, '--dataset', 'mnist', '--force', '--limit', '8');
      expect(code).toBe(1);
      expect(stderr).toBe(
        `cnnx: ${file} has 3 outputs but mnist has 10 classes: its accuracy there would mean nothing; evaluate it on a dataset with 3 classes`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('documents --force in --help', async () => {
    const { code, stdout } = await cnnx('eval', '--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/--force\s+evaluate on a dataset other than the one the model\s+was trained on/);
  });
});
