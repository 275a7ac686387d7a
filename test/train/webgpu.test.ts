import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { readMetrics, silentProgress, train, useBackend } from '../../src/train/index.js';
import { tempDir } from '../helpers/temp-dir.js';

/** CI installs SwiftShader (.ci/run) and requires this path; elsewhere it runs where an adapter exists. */
const available = await useBackend('webgpu').then(
  () => true,
  () => false,
);
const required = process.env.CNNX_REQUIRE_WEBGPU === '1';

describe.runIf(available || required)('webgpu backend (Dawn; SwiftShader without a GPU)', () => {
  it('trains lenet5-relu: loss falls on a small real subset', async () => {
    const dir = await tempDir();
    const mnist = await loadDataset('mnist');
    const result = await train({
      config: {
        model: 'lenet5-relu',
        dataset: 'mnist',
        epochs: 3,
        batchSize: 16,
        lr: 0.01,
        optimizer: 'adam',
        schedule: 'constant',
        seed: 5,
        limit: 48,
        testLimit: 64,
        backend: 'webgpu',
      },
      runDir: dir,
      progress: silentProgress,
      dataset: mnist,
    });
    expect(result.backend.name).toBe('webgpu');
    const metrics = await readMetrics(dir);
    expect(metrics.at(-1)!.loss).toBeLessThan(metrics[0]!.loss);
  }, 120_000);
});
