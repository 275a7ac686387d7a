/**
 * Training throughput on real data: steady-state examples/s after warm-up steps, the same step the training
 * loop runs (each step asked for before the one before ends), on this thread and, with more than one worker, split
 * over replica threads, on the same batches, a few steps each in turn (the scaling). Optionally a per-kernel profile of one step on this thread.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError } from '../common/index.js';
import { iterateBatches, loadDataset, type DatasetName } from '../data/index.js';
import { getModelSpec, parameterSpecs } from '../models/index.js';
import { useBackend, type BackendName } from './backends/index.js';
import { createNetwork, type Network } from './network.js';
import { createOptimizer, type Trainer } from './optimizer.js';
import { checkWorkers, defaultWorkers, startReplicas, STEPS_AHEAD } from './replicas.js';
import { trainStep, type Batch } from './step.js';

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
  /** Replica threads (replicas.ts); default one per core on the wasm and cpu backends, 1 on the others. */
  workers?: number;
}

export interface TrainBenchmarkResult {
  model: string;
  backend: string;
  device: string;
  batch_size: number;
  steps: number;
  /** Threads the batch was split over for `examples_per_sec`. */
  workers: number;
  examples_per_sec: number;
  steps_per_sec: number;
  ms_per_step: number;
  /** With more than one worker: the same steps on this thread alone, and `examples_per_sec` over it. */
  one_worker?: { examples_per_sec: number; ms_per_step: number };
  scaling?: number;
  peak_rss_mb: number;
  /** Milliseconds per kernel and input shapes (`Conv2D [[256,28,28,1],...]`) in one profiled step, largest first. */
  profile?: Record<string, number>;
}

/** Consecutive steps each way takes before the other's turn (as the training loop runs them, one asked ahead). */
const STEPS_PER_TURN = 5;

export async function benchmarkTraining(options: TrainBenchmarkOptions): Promise<TrainBenchmarkResult> {
  const spec = getModelSpec(options.model);
  const backend = await useBackend(options.backend);
  const onCpu = backend.name === 'wasm' || backend.name === 'cpu' ? backend.name : undefined;
  const { optimizer } = spec.defaults;
  const workers = onCpu ? (options.workers ?? defaultWorkers(parameterSpecs(spec), optimizer)) : 1;
  if (onCpu) checkWorkers(workers, parameterSpecs(spec), optimizer);
  const dataset = await loadDataset(options.dataset ?? spec.defaultDataset, {
    offline: true,
    idxDir: options.idxDir,
  });
  const side = spec.input[1];
  const resize = side === dataset.train.rows ? undefined : side;
  const shape: [number, number, number] = [spec.input[1], spec.input[2], spec.input[0]];
  const warmup = options.warmup ?? 3;
  const steps = options.steps ?? 20;
  // The same batches for every measurement, prepared before any is timed (so is AlexNet's resize).
  const batches: Batch[] = [];
  for (const batch of iterateBatches(dataset.train, { batchSize: options.batchSize, shuffle: true, seed: 1, resize })) {
    if (batches.length === warmup + steps) break;
    batches.push(batch);
  }
  if (batches.length < warmup + steps) {
    throw new CnnxError(
      `${warmup + steps} steps (--warmup ${warmup} and --steps ${steps}) of ${options.batchSize} examples need ` +
        `${(warmup + steps) * options.batchSize}; ${dataset.name} has ${dataset.train.count}: give fewer --steps or a smaller --batch-size`,
      'BAD_OPTION',
    );
  }
  let peakRss = process.memoryUsage.rss();

  type Step = (network: Network, trainer: Trainer, batch: Batch, seed: number) => Promise<unknown>;
  /** Steps batches [from, to) (seed: the index) as the training loop does: STEPS_AHEAD asked for before awaited. */
  const runSteps = async (step: Step, network: Network, trainer: Trainer, from: number, to: number) => {
    const pending: Promise<unknown>[] = [];
    for (let i = from; i < to; i++) {
      const done = step(network, trainer, batches[i]!, i);
      done.catch(() => undefined); // awaited in turn
      pending.push(done);
      if (pending.length > STEPS_AHEAD) await pending.shift();
      peakRss = Math.max(peakRss, process.memoryUsage.rss()); // rss() alone: memoryUsage() costs ~90 us
    }
    for (const done of pending) await done;
  };
  /**
   * Milliseconds per timed step of each of `steppers`, each with a fresh network and optimizer (seed 0). They take
   * turns, STEPS_PER_TURN steps each, so that a machine whose speed drifts (a shared one) slows them alike. Each turn
   * starts with an untimed step (the turn's batch before, again): a training run never switches between the two, and
   * the first step after a switch pays for it (caches, and threads that sat idle through the other's turn).
   */
  const timeSteps = async (steppers: Step[]): Promise<number[]> => {
    const states = steppers.map(() => ({ network: createNetwork(spec, 0), trainer: createOptimizer(spec.defaults) }));
    try {
      const elapsed = steppers.map(() => 0);
      for (const [k, step] of steppers.entries())
        await runSteps(step, states[k]!.network, states[k]!.trainer, 0, warmup);
      for (let from = warmup; from < batches.length; from += STEPS_PER_TURN) {
        const to = Math.min(from + STEPS_PER_TURN, batches.length);
        for (const [k, step] of steppers.entries()) {
          if (from > 0) await runSteps(step, states[k]!.network, states[k]!.trainer, from - 1, from);
          const started = performance.now();
          await runSteps(step, states[k]!.network, states[k]!.trainer, from, to);
          elapsed[k]! += performance.now() - started;
        }
      }
      return elapsed.map((ms) => ms / steps);
    } finally {
      for (const { network, trainer } of states) {
        network.dispose();
        trainer.optimizer.dispose();
      }
    }
  };
  const onThisThread: Step = (network, trainer, batch, seed) =>
    trainStep(network, trainer.optimizer, batch, shape, { dropoutSeed: seed });

  let single: number;
  let parallel: number | undefined;
  if (workers > 1 && onCpu) {
    const group = await startReplicas({
      spec,
      backend: onCpu,
      workers,
      batchSize: options.batchSize,
    });
    try {
      [single, parallel] = (await timeSteps([
        onThisThread,
        (network, trainer, batch, seed) =>
          group.step(network, trainer, batch, { dropoutSeed: seed, lr: spec.defaults.lr }),
      ])) as [number, number];
    } finally {
      await group.close();
    }
  } else {
    [single] = (await timeSteps([onThisThread])) as [number];
  }
  let profile: Record<string, number> | undefined;
  if (options.profile) {
    const network = createNetwork(spec, 0);
    const trainer = createOptimizer(spec.defaults);
    // Two unprofiled steps first: the first creates XNNPACK operators and grows the heap, which no later step does.
    for (let step = 0; step < 2; step++) await onThisThread(network, trainer, batches[step % batches.length]!, step);
    const info = await tf.profile(async () => {
      await onThisThread(network, trainer, batches[0]!, 0);
    });
    network.dispose();
    trainer.optimizer.dispose();
    const totals: Record<string, number> = {};
    // By kernel and input shapes, so each layer's share shows; ops that only wrap kernels (`*__op`, and
    // tf.customGrad's `forward`) are left out, their kernels are counted.
    for (const kernel of info.kernels) {
      if (kernel.name.endsWith('__op') || kernel.name === 'forward') continue;
      const key = `${kernel.name} ${JSON.stringify(kernel.inputShapes)}`;
      totals[key] = (totals[key] ?? 0) + Number(kernel.kernelTimeMs);
    }
    profile = Object.fromEntries(
      Object.entries(totals)
        .sort((a, b) => b[1] - a[1])
        .map(([name, ms]) => [name, Math.round(ms * 100) / 100]),
    );
  }
  const msPerStep = parallel ?? single;
  const perSec = (ms: number) => (options.batchSize * 1000) / ms;
  return {
    model: spec.name,
    backend: backend.name,
    device: backend.device,
    batch_size: options.batchSize,
    steps,
    workers: parallel === undefined ? 1 : workers,
    examples_per_sec: perSec(msPerStep),
    steps_per_sec: 1000 / msPerStep,
    ms_per_step: msPerStep,
    ...(parallel === undefined
      ? {}
      : { one_worker: { examples_per_sec: perSec(single), ms_per_step: single }, scaling: single / parallel }),
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
    profile,
  };
}
