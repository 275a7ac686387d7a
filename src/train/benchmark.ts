/**
 * Training throughput on real data: steady-state examples/s after warm-up steps, the same step the training
 * loop runs. Optionally a per-kernel profile of one step, to see where the time goes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { iterateBatches, loadDataset, type DatasetName } from '../data/index.js';
import { getModelSpec } from '../models/index.js';
import { useBackend, type BackendName } from './backends/index.js';
import { createNetwork } from './network.js';
import { createOptimizer } from './optimizer.js';
import { trainStep } from './train.js';

export interface TrainBenchmarkOptions {
  model: string;
  dataset?: DatasetName;
  /** Read the dataset from IDX files (raw or .gz) in this folder instead of its usual source. */
  idxDir?: string;
  batchSize: number;
  backend: BackendName;
  steps?: number;
  warmup?: number;
  profile?: boolean;
}

export interface TrainBenchmarkResult {
  model: string;
  backend: string;
  device: string;
  batch_size: number;
  steps: number;
  examples_per_sec: number;
  ms_per_step: number;
  peak_rss_mb: number;
  /** Milliseconds per kernel in one profiled step, largest first. */
  profile?: Record<string, number>;
}

export async function benchmarkTraining(options: TrainBenchmarkOptions): Promise<TrainBenchmarkResult> {
  const spec = getModelSpec(options.model);
  const backend = await useBackend(options.backend);
  const dataset = await loadDataset(options.dataset ?? spec.defaultDataset, {
    offline: true,
    idxDir: options.idxDir,
  });
  const network = createNetwork(spec, 0);
  const { optimizer } = createOptimizer(spec.defaults);
  const side = spec.input[1];
  const resize = side === dataset.train.rows ? undefined : side;
  const shape: [number, number, number] = [spec.input[1], spec.input[2], spec.input[0]];
  const warmup = options.warmup ?? 3;
  const steps = options.steps ?? 20;
  const batches = iterateBatches(dataset.train, { batchSize: options.batchSize, shuffle: true, seed: 1, resize });
  const nextBatch = () => {
    const next = batches.next();
    if (next.done) throw new Error('benchmark ran out of data; use fewer --steps');
    return next.value;
  };
  for (let i = 0; i < warmup; i++) await trainStep(network, optimizer, nextBatch(), shape, { dropoutSeed: i });
  let peakRss = process.memoryUsage().rss;
  let elapsed = 0;
  for (let i = 0; i < steps; i++) {
    const batch = nextBatch(); // data preparation (and AlexNet's resize) is not part of the step time
    const started = performance.now();
    await trainStep(network, optimizer, batch, shape, { dropoutSeed: warmup + i });
    elapsed += performance.now() - started;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  let profile: Record<string, number> | undefined;
  if (options.profile) {
    const info = await tf.profile(async () => {
      await trainStep(network, optimizer, nextBatch(), shape, { dropoutSeed: 0 });
    });
    const totals: Record<string, number> = {};
    for (const kernel of info.kernels) totals[kernel.name] = (totals[kernel.name] ?? 0) + Number(kernel.kernelTimeMs);
    profile = Object.fromEntries(
      Object.entries(totals)
        .sort((a, b) => b[1] - a[1])
        .map(([name, ms]) => [name, Math.round(ms * 100) / 100]),
    );
  }
  network.dispose();
  optimizer.dispose();
  return {
    model: spec.name,
    backend: backend.name,
    device: backend.device,
    batch_size: options.batchSize,
    steps,
    examples_per_sec: (steps * options.batchSize) / (elapsed / 1000),
    ms_per_step: elapsed / steps,
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
    profile,
  };
}
