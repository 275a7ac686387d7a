import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/common/index.js';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import {
  NonFiniteLossError,
  readMetrics,
  runPath,
  silentProgress,
  train,
  type ProgressReporter,
  type TrainConfig,
} from '../../src/train/index.js';
import { tempDir } from '../helpers/temp-dir.js';

let mnist: Dataset;
let root: string;
beforeAll(async () => {
  mnist = await loadDataset('mnist');
  root = await tempDir();
});

const smallConfig = (overrides: Partial<TrainConfig> = {}): TrainConfig => ({
  model: 'lenet5-relu',
  dataset: 'mnist',
  epochs: 2,
  batchSize: 32,
  lr: 0.01,
  optimizer: 'adam',
  schedule: 'constant',
  seed: 7,
  limit: 512,
  testLimit: 256,
  backend: 'wasm',
  ...overrides,
});

/** Weights of a run's checkpoint, by parameter name. */
async function checkpointWeights(dir: string): Promise<Map<string, Float32Array>> {
  const { tensors } = await readSafetensors(runPath(dir, 'checkpoint'));
  return new Map([...tensors].filter(([name]) => !name.startsWith('optimizer')).map(([n, t]) => [n, t.data]));
}

describe('training on real MNIST', () => {
  it.each([
    ['wasm', 'lenet5', 0.9, 'sgd', 512],
    ['cpu', 'lenet5-relu', 0.01, 'adam', 128],
  ] as const)('loss falls on a small subset with the %s backend (%s)', async (backend, model, lr, optimizer, limit) => {
    const dir = join(root, `falls-${backend}`);
    const lenet5 = model === 'lenet5';
    const result = await train({
      config: smallConfig({
        backend,
        model,
        lr,
        optimizer,
        limit,
        epochs: lenet5 ? 5 : 2,
        batchSize: lenet5 ? 16 : 32,
      }),
      runDir: dir,
      progress: silentProgress,
      dataset: mnist,
    });
    const metrics = await readMetrics(dir);
    expect(metrics.length).toBe(result.epochsCompleted);
    expect(metrics.at(-1)!.loss).toBeLessThan(metrics[0]!.loss);
    expect(result.backend.name).toBe(backend);
    // The run directory holds what export and people need.
    for (const file of ['config', 'metrics', 'checkpoint', 'best', 'summary', 'plot'] as const) {
      await expect(readFile(runPath(dir, file))).resolves.toBeDefined();
    }
    expect(await readFile(runPath(dir, 'plot'), 'utf8')).toMatch(/^<svg/);
  });

  it('resumes after an interruption to exactly the weights of an uninterrupted run', async () => {
    const config = smallConfig();
    const whole = join(root, 'whole');
    await train({ config, runDir: whole, progress: silentProgress, dataset: mnist });

    const split = join(root, 'split');
    const controller = new AbortController();
    const stopMidway: ProgressReporter = {
      ...silentProgress,
      step: (batch) => {
        if (batch === 5) controller.abort(); // epoch 1 of 2, batch 5 of 16
      },
    };
    const first = await train({
      config,
      runDir: split,
      progress: stopMidway,
      dataset: mnist,
      signal: controller.signal,
    });
    expect(first.interrupted).toBe(true);
    expect(first.epochsCompleted).toBe(0);
    const resumed = await train({ config, runDir: split, resume: true, progress: silentProgress, dataset: mnist });
    expect(resumed.epochsCompleted).toBe(2);

    const expected = await checkpointWeights(whole);
    const actual = await checkpointWeights(split);
    expect([...actual.keys()]).toEqual([...expected.keys()]);
    const differing = [...expected].filter(
      ([name, values]) => Buffer.compare(Buffer.from(actual.get(name)!.buffer), Buffer.from(values.buffer)) !== 0,
    );
    expect(differing.map(([name]) => name)).toEqual([]);
    expect((await readMetrics(split)).map((m) => m.testAccuracy)).toEqual(
      (await readMetrics(whole)).map((m) => m.testAccuracy),
    );
  });

  it('stops on a non-finite loss without touching the best weights', async () => {
    const dir = join(root, 'nan');
    const sgd = smallConfig({ epochs: 1, optimizer: 'sgd', lr: 0.1 });
    await train({ config: sgd, runDir: dir, progress: silentProgress, dataset: mnist });
    const bestBefore = await readFile(runPath(dir, 'best'));
    // Continue with a learning rate that overflows the weights.
    const config = { ...smallConfig({ epochs: 2, optimizer: 'sgd', lr: 1e38, model: 'lenet5-relu' }) };
    await writeFile(runPath(dir, 'config'), JSON.stringify(config));
    const error = await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NonFiniteLossError);
    expect((error as Error).message).toMatch(
      /loss became (NaN|Infinity) at epoch 2, batch \d+; stopped\. The best weights \(epoch 1/,
    );
    expect(Buffer.compare(await readFile(runPath(dir, 'best')), bestBefore)).toBe(0);
  });

  it('keeps the best epoch, not the last, when a later epoch is worse', async () => {
    const dir = join(root, 'best');
    await train({ config: smallConfig({ epochs: 1 }), runDir: dir, progress: silentProgress, dataset: mnist });
    const bestBefore = await readFile(runPath(dir, 'best'));
    // A far too high Adam rate wrecks the second epoch's accuracy without overflowing.
    const config = smallConfig({ epochs: 2, lr: 5 });
    await writeFile(runPath(dir, 'config'), JSON.stringify(config));
    const result = await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist });
    const metrics = await readMetrics(dir);
    expect(metrics[1]!.testAccuracy).toBeLessThan(metrics[0]!.testAccuracy);
    expect(metrics.map((m) => m.best)).toEqual([true, false]);
    expect(result.bestEpoch).toBe(1);
    expect(Buffer.compare(await readFile(runPath(dir, 'best')), bestBefore)).toBe(0);
  });
});
