/**
 * The training loop, as in the notebook: Xavier init, the configured optimizer, test accuracy after every
 * epoch, and the best weights kept (not the last). Everything else a long run needs (run directory files,
 * checkpoints, loss guards, progress, Ctrl-C) is a callback around the loop, called in list order.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, codeOf, deriveSeed, messageOf, readSafetensors, writeFileAtomic } from '../common/index.js';
import type { ParameterSpec } from '../models/index.js';
import {
  batchCount,
  createAugmenter,
  iterateAugmentedBatches,
  iterateBatches,
  type Augmenter,
  type Dataset,
  type Split,
} from '../data/index.js';
import { useBackend, type BackendInfo } from './backends/index.js';
import { CallbackList, type TrainingState } from './callbacks.js';
import { assignWeights, loadCheckpoint, type Position } from './checkpoint.js';
import { evaluateAccuracy, yieldToEventLoop } from './evaluate.js';
import { interruptionCallback } from './interruption.js';
import { divergenceGuard, nonFiniteLossGuard } from './loss-guards.js';
import { createNetwork, type Network } from './network.js';
import { createOptimizer, learningRateAt, type Trainer } from './optimizer.js';
import { consoleProgress, progressCallback, type ProgressReporter } from './progress.js';
import {
  bestWeightsCallback,
  checkpointCallback,
  curvesCallback,
  metricsFileCallback,
  summaryCallback,
} from './run-callbacks.js';
import { prepareRunDir, readMetrics, RUN_FILES, runPath, type EpochMetrics, type TrainConfig } from './run-dir.js';
import { batchSizeFor, loadRunDataset, recordDataset, runSplits, specForRun, type RunSplits } from './run-data.js';
import { checkWorkers, defaultWorkers, mostWorkers, startReplicas, STEPS_AHEAD } from './replicas.js';
import { trainStep, type Batch } from './step.js';

export interface TrainOptions {
  config: TrainConfig;
  runDir: string;
  /** Continue the run in `runDir` from its checkpoint (from the start if it was stopped before one). */
  resume?: boolean;
  /** Start afresh in a `runDir` that holds a run, removing that run's files (otherwise RUN_EXISTS). */
  replace?: boolean;
  progress?: ProgressReporter;
  /** Dataset cache folder (see the data stage's loadDataset). */
  dataDir?: string;
  /** A folder of the user's own four IDX files to train on instead. */
  idxDir?: string;
  offline?: boolean;
  /**
   * Stop after the batch in progress, saving a checkpoint, when this signal aborts. A string abort reason
   * (such as `SIGINT`) is reported back as `TrainResult.signal`.
   */
  signal?: AbortSignal;
  /** A loaded dataset to use instead of loading the config's (tests). */
  dataset?: Dataset;
  /**
   * `config.batchSize` is the model's default rather than the user's choice, on the user's pictures: a new run on a
   * small training part takes a smaller batch (batchSizeFor), so that its epochs have enough steps.
   */
  defaultBatchSize?: boolean;
  /**
   * Seconds between checkpoints within an epoch (default CHECKPOINT_EVERY_S), so that a killed or crashed run loses
   * at most this much of a long epoch; 0 saves only after each epoch (and on a stop). Either way a resumed run
   * continues bit-identically.
   */
  checkpointEvery?: number;
}

/** Default seconds between checkpoints within an epoch: 10 minutes, a few AlexNet steps on a CPU. */
export const CHECKPOINT_EVERY_S = 600;

export interface TrainResult {
  runDir: string;
  backend: BackendInfo;
  /** Accuracy of the best epoch on what it was chosen by (validation, or test as the notebook chooses). */
  bestAccuracy: number;
  bestEpoch: number;
  /** Test accuracy of the chosen weights, when they were chosen on validation and the run completed. */
  testAccuracy?: number;
  epochsCompleted: number;
  /** Training stopped early because `signal` aborted; the checkpoint holds where it stopped. */
  interrupted: boolean;
  /** The signal name that stopped it (the abort reason, when it is one such as `SIGINT` or `SIGTERM`). */
  signal?: string;
  final?: EpochMetrics;
}

/**
 * A stop signal that arrived before training began (while the data was read or decoded, or the workers started):
 * nothing was trained or written, and a new run's folder is removed. `signal` is the abort reason (`SIGINT`...).
 */
export class StoppedBeforeTraining extends Error {
  override name = 'StoppedBeforeTraining';
  constructor(readonly signal: string | undefined) {
    super(`stopped by ${signal ?? 'a stop request'} before training began`);
  }
}

/** `work`, or StoppedBeforeTraining as soon as `signal` aborts (the work goes on, unwatched, until the process ends). */
function unlessStopped<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  work.catch(() => undefined); // a failure after the stop is nobody's to report
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(new StoppedBeforeTraining(typeof signal.reason === 'string' ? signal.reason : undefined));
    if (signal.aborted) return stop();
    signal.addEventListener('abort', stop, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

const startOfRun = (): Position => ({
  epoch: 0,
  batch: 0,
  bestAccuracy: -1,
  bestEpoch: 0,
  partial: { loss: 0, correct: 0, seen: 0, seconds: 0 },
});

/** Where steps and evaluations run: on this thread, or split over replica threads (replicas.ts). */
interface StepRunner {
  /** Replica threads; 1 when everything runs on this thread. */
  workers: number;
  /**
   * One optimizer step at learning rate `lr`: the batch's mean loss and correct count. The next step may be asked
   * for before this one resolves (replica threads then go on to it without waiting for this thread); steps resolve,
   * and change the network, in the order they were asked for.
   */
  step(batch: Batch, options: { dropoutSeed: number; lr: number }): Promise<[number, number]>;
  evaluate(
    network: Network,
    split: Split,
    options: { resize?: number; shouldStop?: () => boolean },
  ): Promise<number | undefined>;
  close(): Promise<void>;
}

/**
 * The runner for `config.workers` (absent: one per core, within the memory, where the backend runs on the CPU),
 * which a new run records. A GPU backend trains on its device: a recorded count (a run that `auto` put on the CPU
 * before) is kept for later and said to be unused.
 */
async function startRunner(
  config: TrainConfig,
  backend: BackendInfo,
  network: Network,
  trainer: Trainer,
  progress: ProgressReporter,
  resumed: boolean,
  /** Examples in the training part: no batch is larger (a --batch-size past it makes one batch of them all). */
  trainingExamples: number,
): Promise<StepRunner> {
  const cpuBackend = backend.name === 'wasm' || backend.name === 'cpu' ? backend.name : undefined;
  const [channels, height, width] = network.spec.input;
  if (cpuBackend === undefined && (config.workers ?? 1) > 1) {
    progress.log(`workers: ${config.workers} asked for, unused: the ${backend.name} backend trains on its own device`);
  }
  // A run resumed from before --workers existed trained on this thread: it keeps doing so, bit-identically.
  const workers =
    cpuBackend === undefined
      ? 1
      : (config.workers ?? (resumed ? 1 : defaultWorkers(network.parameters, config.optimizer)));
  if (cpuBackend !== undefined) {
    checkWorkers(workers, network.parameters, config.optimizer);
    config.workers = workers;
  }
  if (workers === 1 || cpuBackend === undefined) {
    return {
      workers: 1,
      step: (batch, { dropoutSeed, lr }) => {
        trainer.setLearningRate(lr);
        return trainStep(network, trainer.optimizer, batch, [height, width, channels], { dropoutSeed });
      },
      evaluate: (net, split, options) => evaluateAccuracy(net, split, options),
      close: async () => undefined,
    };
  }
  const group = await startReplicas({
    spec: network.spec,
    backend: cpuBackend,
    workers,
    batchSize: Math.min(config.batchSize, trainingExamples),
  });
  return {
    workers,
    step: (batch, options) => group.step(network, trainer, batch, options),
    evaluate: (net, split, options) => group.evaluate(net, split, options),
    close: () => group.close(),
  };
}

/**
 * Trains `config.model` on `config.dataset` into `runDir` (see run-dir.ts for its files). Rejects with a
 * CnnxError for a `runDir` that already holds a run (RUN_EXISTS, unless `resume` or `replace`) or that another
 * process trains in (RUN_IN_PROGRESS), a non-finite
 * loss (NON_FINITE_LOSS) or a diverging one (LOSS_DIVERGED); the best weights are kept in every case.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { release } = await prepareRunDir(options.runDir, {
    resume: Boolean(options.resume),
    replace: options.replace,
  });
  try {
    return await trainIn(options, release);
  } finally {
    await release();
  }
}

/** The run of `train`, in its prepared and locked folder; `release({ abandon })` removes a folder made for it. */
async function trainIn(
  options: TrainOptions,
  release: (options: { abandon: boolean }) => Promise<void>,
): Promise<TrainResult> {
  const { config, runDir } = options;
  const resume = Boolean(options.resume);
  const progress = options.progress ?? consoleProgress();
  // A run that cannot start (no backend, bad data, an unknown distortion) leaves no empty folder behind.
  const { backend, dataset, spec, augmenter } = await unlessStopped(
    loadBackendAndData(options, progress),
    options.signal,
  ).catch(async (error: unknown) => {
    await release({ abandon: true });
    throw error;
  });
  let splits: RunSplits;
  try {
    splits = runSplits(dataset, config);
  } catch (error) {
    await release({ abandon: true }); // an empty part: the run never starts, and leaves no folder behind
    throw error;
  }
  if (options.defaultBatchSize && !resume) {
    const fitted = batchSizeFor(splits.train.count, config.batchSize);
    if (fitted !== config.batchSize) {
      progress.log(
        `batch size ${fitted}: the default ${config.batchSize} would give ${batchCount(splits.train.count, config.batchSize)} step${batchCount(splits.train.count, config.batchSize) === 1 ? '' : 's'} an epoch on ${splits.train.count} training examples, too few to train on (--batch-size sets it)`,
      );
      config.batchSize = fitted;
    }
  }
  if (splits.selectOn === 'val') {
    progress.log(
      `best epoch chosen on validation: ${splits.selection.count} training examples held out (stratified, seed ${config.seed}); the test set is evaluated once, for the chosen weights`,
    );
  }

  const network = createNetwork(spec, config.seed);
  const trainer = createOptimizer(config);
  const { optimizer } = trainer;
  let runner: StepRunner | undefined;
  try {
    const { position, history } = resume
      ? await restore(network, optimizer, runDir, progress, config)
      : { position: startOfRun(), history: [] };
    runner = await startRunner(config, backend, network, trainer, progress, resume, splits.train.count).catch(
      async (error: unknown) => {
        await release({ abandon: true }); // a run that cannot start leaves no empty folder
        throw error;
      },
    );
    if (runner.workers > 1) {
      progress.log(
        `workers: ${runner.workers} threads, each training on its share of every batch (--workers 1 trains on this thread)`,
      );
    }
    if (options.signal?.aborted && position.epoch === 0 && position.batch === 0 && !resume) {
      // Stopped while the workers started: no step was taken, so there is nothing to keep.
      await release({ abandon: true });
      throw new StoppedBeforeTraining(typeof options.signal.reason === 'string' ? options.signal.reason : undefined);
    }
    await writeFileAtomic(runPath(runDir, 'config'), `${JSON.stringify(config, null, 2)}\n`);
    const state: TrainingState = {
      config,
      spec,
      runDir,
      backend,
      dataset,
      network,
      optimizer,
      batchesPerEpoch: batchCount(splits.train.count, config.batchSize),
      workers: runner.workers,
      position,
      history,
      stopTraining: false,
      selectOn: splits.selectOn,
    };
    const callbacks = new CallbackList([
      nonFiniteLossGuard(),
      divergenceGuard(),
      bestWeightsCallback(),
      checkpointCallback(),
      metricsFileCallback(),
      curvesCallback(),
      progressCallback(progress),
      summaryCallback(progress),
      ...(options.signal ? [interruptionCallback(options.signal, progress)] : []),
    ]);
    const checkpointEvery = options.checkpointEvery ?? CHECKPOINT_EVERY_S;
    await fit(state, callbacks, runner, { splits, augmenter, checkpointEvery });
    if (state.failure) {
      throw new CnnxError(
        `${state.failure.message}. The checkpoint holds the last completed step; ${continuation(state.failure, config, network.parameters, runDir)}`,
        'TRAINING_WORKER_FAILED',
      );
    }
    return {
      runDir,
      backend,
      bestAccuracy: state.position.bestAccuracy,
      bestEpoch: state.position.bestEpoch,
      testAccuracy: state.finalTest?.accuracy,
      epochsCompleted: state.position.epoch,
      interrupted: state.stopTraining,
      signal: state.stopTraining && state.stopReason?.startsWith('SIG') ? state.stopReason : undefined,
      final: state.history.at(-1),
    };
  } finally {
    await runner?.close();
    network.dispose();
    optimizer.dispose();
  }
}

/**
 * How a run that `failure` stopped goes on: as it was, or, when a worker ran out of memory (the same batch would
 * again), with more workers to split each batch, while this machine allows more (mostWorkers).
 */
export function continuation(
  failure: Error,
  config: Pick<TrainConfig, 'workers' | 'batchSize' | 'optimizer'>,
  parameters: readonly ParameterSpec[],
  runDir: string,
): string {
  const again = `cnnx train --resume ${runDir}`;
  if (codeOf(failure.cause) !== 'OUT_OF_MEMORY') return `continue with: ${again}`;
  const workers = config.workers ?? 1;
  if (workers >= config.batchSize) {
    return "every worker already takes a single example: the model does not fit in a worker's WebAssembly memory; train it on a GPU (--backend webgpu or tensorflow)";
  }
  const most = mostWorkers(parameters, config.optimizer);
  const more = Math.min(2 * workers, most, config.batchSize);
  if (more > workers) {
    return `continue with more workers, each taking a smaller share of every batch: ${again} --workers ${more}`;
  }
  return `this machine runs at most ${most} workers, so more cannot split the batch further: start a new run with a smaller --batch-size`;
}

/** Loads the run's checkpoint; the completed epochs' metrics come from it (from metrics.jsonl for old ones). */
async function restore(
  network: Network,
  optimizer: tf.Optimizer,
  runDir: string,
  progress: ProgressReporter,
  config: TrainConfig,
): Promise<{ position: Position; history: EpochMetrics[] }> {
  const file = runPath(runDir, 'checkpoint');
  if (!existsSync(file)) {
    const epochs = (await readMetrics(runDir)).length;
    if (epochs > 0 || existsSync(runPath(runDir, 'best'))) {
      // Starting over would overwrite what it holds.
      throw new CnnxError(
        `${runDir} has no ${basename(file)} but holds ${epochs} completed epochs' metrics and best weights: it cannot continue without its checkpoint; start a new run with another --out (best.safetensors can still be exported)`,
        'BAD_RUN',
      );
    }
    progress.log(`resuming ${runDir}: it stopped before its first checkpoint, so it starts from the beginning`);
    return { position: startOfRun(), history: [] };
  }
  const {
    position,
    metrics,
    config: saved,
  } = await loadCheckpoint(network, optimizer, file).catch((error: unknown) => {
    if (!(error instanceof CnnxError && error.code === 'BAD_WEIGHTS')) throw error;
    throw new CnnxError(
      `${error.message}: the run cannot continue from a damaged checkpoint; restore the file from a backup, or start a new run with another --out (${RUN_FILES.best} can still be exported)`,
      'BAD_CHECKPOINT',
      { cause: error },
    );
  });
  if (saved !== undefined) checkSameRun(runDir, config, saved);
  if (position.bestEpoch > 0) {
    // The best weights are written beside the checkpoint; a run whose copy is gone or damaged keeps the best of the
    // epochs still to come, rather than report a file that cannot be exported.
    const best = runPath(runDir, 'best');
    const why = await readSafetensors(best).then(
      ({ tensors }) =>
        [...tensors.values()].some((tensor) => tensor.data.some((value) => !Number.isFinite(value)))
          ? `${best} holds values that are not finite numbers`
          : undefined,
      (error: unknown) => (existsSync(best) ? messageOf(error) : `${best} is missing`),
    );
    if (why !== undefined) {
      progress.log(
        `warning: ${why}: the best weights of epoch ${position.bestEpoch} are lost, so the best of the ` +
          'epochs from here on will be kept',
      );
      position.bestAccuracy = -1;
      position.bestEpoch = 0;
    }
  }
  // Said as the interruption says it: the epoch in progress, counted from 1, and the batches of it done.
  progress.log(
    position.batch === 0
      ? `resuming ${runDir} after epoch ${position.epoch}`
      : `resuming ${runDir} at epoch ${position.epoch + 1}, batch ${position.batch}`,
  );
  return { position, history: metrics ?? (await readMetrics(runDir)).slice(0, position.epoch) };
}

/**
 * Settings a resumed run may change: how long it runs, where (backend, workers), and where its data is now. Every
 * other setting shapes the steps already taken.
 */
const RESUMABLE_SETTINGS = new Set([
  'epochs',
  'backend',
  'workers',
  'idxDir',
  'dataFingerprint',
  'dataSource',
  'classes',
]);

/**
 * Refuses a config.json that differs from the settings the checkpoint was trained with (a hand edit: a batch of 64
 * where the checkpoint's position counts batches of 128), naming each setting that differs.
 * @throws CnnxError BAD_RUN
 */
function checkSameRun(runDir: string, config: TrainConfig, saved: Record<string, unknown>): void {
  const comparable = (settings: Record<string, unknown>) => {
    const { data, ...rest } = settings as { data?: Record<string, unknown> };
    const kept = Object.fromEntries(Object.entries(rest).filter(([key]) => !RESUMABLE_SETTINGS.has(key)));
    // Moved data is named anew (--data, --test-data); what it is read as is the run's.
    if (data !== undefined) kept.data = { ...data, path: undefined, testPath: undefined };
    return kept;
  };
  const now = comparable(config as unknown as Record<string, unknown>);
  const before = comparable(saved);
  const differing = [...new Set([...Object.keys(now), ...Object.keys(before)])].filter(
    (key) => JSON.stringify(now[key]) !== JSON.stringify(before[key]),
  );
  if (differing.length === 0) return;
  const said = differing
    .map(
      (key) => `${key} ${JSON.stringify(now[key]) ?? 'absent'} (trained with ${JSON.stringify(before[key]) ?? 'none'})`,
    )
    .join(', ');
  throw new CnnxError(
    `${runPath(runDir, 'config')} differs from the settings its checkpoint was trained with: ${said}; restore it, or ` +
      'start a new run with another --out to train with other settings',
    'BAD_RUN',
  );
}

/**
 * The loop: epochs of shuffled batches (distorted by `augmenter`, if any), then test accuracy on undistorted
 * images; it stops early when a callback sets stopTraining.
 */
async function fit(
  state: TrainingState,
  callbacks: CallbackList,
  runner: StepRunner,
  data: { splits: RunSplits; augmenter?: Augmenter; checkpointEvery: number },
): Promise<void> {
  const { config, network } = state;
  const { train: trainSplit, test, selectOn } = data.splits;
  const side = network.spec.input[1];
  const resize = side === trainSplit.rows ? undefined : side; // e.g. AlexNet's 224 from 28x28 images
  await callbacks.call('onTrainBegin', state);
  try {
    await epochs(state, callbacks, runner, { ...data, resize });
    if (state.position.epoch >= config.epochs) state.stopTraining = false; // a stop that came too late to matter
    if (!state.stopTraining && selectOn === 'val' && state.position.bestEpoch > 0) {
      // The test set, once, for the chosen weights, on a network of its own: the training network keeps the last
      // epoch's weights, which a checkpoint written after a stop must hold.
      const file = runPath(state.runDir, 'best');
      const chosen = createNetwork(network.spec, 0);
      try {
        assignWeights(chosen, (await readSafetensors(file)).tensors, file);
        const accuracy = await runner.evaluate(chosen, test, { resize, shouldStop: () => state.stopTraining });
        if (accuracy !== undefined) state.finalTest = { accuracy, epoch: state.position.bestEpoch };
      } finally {
        chosen.dispose();
      }
    }
  } catch (error) {
    if (codeOf(error) === 'TRAINING_STEP_FAILED') {
      // The weights are part-stepped: the checkpoint on disk is left as it is.
      const how = continuation(error as Error, config, network.parameters, state.runDir);
      throw new CnnxError(
        existsSync(runPath(state.runDir, 'checkpoint'))
          ? `${messageOf(error)}. The run keeps its last checkpoint; ${how}`
          : `${messageOf(error)}. No checkpoint was written yet, so --resume starts the run again; ${how}`,
        'TRAINING_STEP_FAILED',
        { cause: error },
      );
    }
    // A failed worker stops the run as a signal would: the checkpoint saves the last completed step.
    if (codeOf(error) !== 'TRAINING_WORKER_FAILED') throw error;
    state.stopTraining = true;
    state.stopReason = 'a training worker failed';
    state.failure = error as CnnxError;
  }
  await callbacks.call('onTrainEnd', state);
}

/** A step longer than this (ms) is asked for one ahead of the one counted, not STEPS_AHEAD (see `epochs`). */
const LONG_STEP_MS = 250;

/** The epochs of `fit`, from where `state.position` stands. */
async function epochs(
  state: TrainingState,
  callbacks: CallbackList,
  runner: StepRunner,
  data: { splits: RunSplits; augmenter?: Augmenter; resize?: number; checkpointEvery: number },
): Promise<void> {
  const { config, network, batchesPerEpoch } = state;
  const { train: trainSplit, selection, selectOn } = data.splits;
  const { resize } = data;
  const totalSteps = batchesPerEpoch * config.epochs;
  const saveEveryMs = data.checkpointEvery > 0 ? data.checkpointEvery * 1000 : Number.POSITIVE_INFINITY;
  let lastSaved = performance.now();
  for (let epoch = state.position.epoch; epoch < config.epochs && !state.stopTraining; epoch++) {
    const position = state.position;
    const startBatch = position.batch;
    await callbacks.call('onEpochBegin', state, epoch + 1, startBatch);
    const started = performance.now();
    // A resumed epoch's steps before the stop count in its seconds (the checkpoint keeps their time).
    const secondsBefore = position.partial.seconds;
    let batchIndex = 0;
    const order = { batchSize: config.batchSize, shuffle: true, seed: config.seed, epoch, resize };
    const batches = data.augmenter
      ? iterateAugmentedBatches(trainSplit, order, data.augmenter)
      : iterateBatches(trainSplit, order);
    interface Pending {
      done: Promise<[number, number]>;
      batch: Batch;
      index: number;
      lr: number;
      asked: number;
    }
    let lastCounted = performance.now();
    /** How long the last step counted took (ms); until one is counted, as long as a long one. */
    let stepMs = Number.POSITIVE_INFINITY;
    /** Waits for a step and counts it: totals, position, callbacks (which may stop the run, or throw). */
    const count = async ({ done, batch, index, lr, asked }: Pending) => {
      const [loss, correct] = await done;
      const now = performance.now();
      const partial = position.partial;
      partial.loss += loss * batch.size;
      partial.correct += correct;
      partial.seen += batch.size;
      stepMs = now - Math.max(asked, lastCounted);
      partial.seconds += stepMs / 1000;
      lastCounted = now;
      position.batch = index;
      const examplesPerSec = partial.seen / Math.max(partial.seconds, 1e-9);
      await callbacks.call('onBatchEnd', state, {
        epoch: epoch + 1,
        batch: index,
        loss,
        epochLoss: partial.loss / partial.seen,
        examplesPerSec,
        lr,
      });
      await yieldToEventLoop(); // lets signal handlers run between steps
    };
    // Steps are asked for STEPS_AHEAD before they are counted, so that each starts as soon as the one before ends,
    // and the counting (progress, callbacks) runs while this thread waits for the threads. A step asked for is
    // counted even after a stop (the network has taken it), so steps longer than LONG_STEP_MS, where a millisecond
    // saved a step is worth nothing, are asked for one ahead only: a stop then waits for two steps at most.
    const pending: Pending[] = [];
    for (const batch of batches) {
      if (batchIndex++ < startBatch) continue;
      if (state.stopTraining) break;
      const step = epoch * batchesPerEpoch + batchIndex - 1;
      const lr = learningRateAt(config.schedule, config.lr, step, totalSteps);
      const asked = performance.now();
      const done = runner.step(batch, { dropoutSeed: deriveSeed(config.seed, step + 1), lr });
      done.catch(() => undefined); // left unawaited when counting a step before it throws
      pending.push({ done, batch, index: batchIndex, lr, asked });
      const ahead = stepMs > LONG_STEP_MS ? 1 : STEPS_AHEAD;
      while (pending.length > ahead) await count(pending.shift()!);
      if (performance.now() - lastSaved >= saveEveryMs && !state.stopTraining) {
        // A checkpoint must hold the steps its position counts, and no more: none may be in flight.
        for (const step of pending.splice(0)) await count(step);
        if (state.stopTraining) break; // the stop's checkpoint follows
        await callbacks.call('onSaveDue', state);
        lastSaved = performance.now();
      }
    }
    for (const step of pending.splice(0)) await count(step);
    if (state.stopTraining) break;
    const accuracy = await runner.evaluate(network, selection, {
      resize,
      shouldStop: () => state.stopTraining,
    });
    if (accuracy === undefined) break;
    const { partial } = position;
    const metrics: EpochMetrics = {
      epoch: epoch + 1,
      loss: partial.loss / partial.seen,
      trainAccuracy: partial.correct / partial.seen,
      ...(selectOn === 'val' ? { valAccuracy: accuracy } : { testAccuracy: accuracy }),
      lr: learningRateAt(config.schedule, config.lr, (epoch + 1) * batchesPerEpoch - 1, totalSteps),
      examplesPerSec: partial.seen / Math.max(partial.seconds, 1e-9),
      seconds: secondsBefore + (performance.now() - started) / 1000,
      best: accuracy > position.bestAccuracy,
    };
    state.position = {
      epoch: epoch + 1,
      batch: 0,
      bestAccuracy: metrics.best ? accuracy : position.bestAccuracy,
      bestEpoch: metrics.best ? epoch + 1 : position.bestEpoch,
      partial: { loss: 0, correct: 0, seen: 0, seconds: 0 },
    };
    state.history.push(metrics);
    await callbacks.call('onEpochEnd', state, metrics);
    lastSaved = performance.now(); // the epoch's checkpoint
  }
}

/**
 * The tfjs backend in use, the dataset to train on, the model fitted to it and, when the run distorts its training
 * images, their augmenter; each reported on `progress`. A new run records the data's class names in its config.
 */
async function loadBackendAndData(options: TrainOptions, progress: ProgressReporter) {
  const { config } = options;
  const backend = await useBackend(config.backend);
  progress.log(
    `backend: ${backend.device}${backend.skipped.length ? ` (skipped: ${backend.skipped.join('; ')})` : ''}`,
  );

  const dataset =
    options.dataset ??
    (await loadRunDataset(config, {
      dataDir: options.dataDir,
      idxDir: options.idxDir,
      offline: options.offline,
      log: progress.log,
    }));
  progress.log(`data: ${dataset.name} from ${dataset.source}`);
  if (options.dataset !== undefined) recordDataset(config, options.dataset);
  const spec = specForRun(config);
  const { augment, seed } = config;
  if (augment?.length && config.data !== undefined) {
    // The distortions assume MNIST's bright ink (or object) on a black background, which pictures need not have.
    throw new CnnxError(
      `--augment distorts pictures drawn bright on black, as MNIST and Fashion-MNIST are; it is not available for --data yet: drop --augment`,
      'OPTION_CONFLICT',
    );
  }
  const augmenter = augment?.length
    ? createAugmenter(dataset.train.rows, dataset.train.cols, { distortions: augment, seed })
    : undefined;
  if (augmenter) progress.log(`augment: ${augmenter.distortions.join(', ')} (training images only)`);
  return { backend, dataset, spec, augmenter };
}
