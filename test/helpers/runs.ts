import { join } from 'node:path';
import type { Dataset } from '../../src/data/index.js';
import { silentProgress, train, type TrainConfig } from '../../src/train/index.js';

/** A small real training run (seconds on wasm) for tests that need trained weights. */
export async function smallRun(root: string, dataset: Dataset, overrides: Partial<TrainConfig> = {}) {
  const config: TrainConfig = {
    model: 'lenet5-relu',
    dataset: 'mnist',
    epochs: 1,
    batchSize: 32,
    lr: 0.01,
    optimizer: 'adam',
    schedule: 'constant',
    seed: 3,
    limit: 1024,
    testLimit: 256,
    backend: 'wasm',
    ...overrides,
  };
  const runDir = join(root, `${config.model}-run`);
  const result = await train({ config, runDir, progress: silentProgress, dataset });
  return { runDir, config, result };
}
