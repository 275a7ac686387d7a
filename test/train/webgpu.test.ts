import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { readMetrics, silentProgress, train, useBackend } from '../../src/train/index.js';
import { messageOf } from '../../src/common/index.js';
import { announceSkip, INSTALL_WEBGPU, WEBGPU_REQUIRED } from '../helpers/environment.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Why this machine has no WebGPU adapter for tfjs (Dawn); undefined when it has one, or CI requires it. */
const noAdapter = await useBackend('webgpu').then(
  () => undefined,
  (error: unknown) =>
    WEBGPU_REQUIRED ? undefined : announceSkip(`no WebGPU adapter for tfjs (${messageOf(error)}): ${INSTALL_WEBGPU}`),
);

describe('webgpu backend (Dawn; SwiftShader without a GPU)', () => {
  it('trains lenet5-relu: loss falls on a small real subset', async (context) => {
    if (noAdapter) return context.skip(noAdapter);
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
