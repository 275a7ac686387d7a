/**
 * The training loop, as in the notebook: Xavier init, the configured optimizer, test accuracy after every
 * epoch, and the best weights kept (not the last). Everything else a long run needs (run directory files,
 * checkpoints, loss guards, progress, Ctrl-C) is a callback around the loop, called in list order.
 */
import { existsSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, deriveSeed, readSafetensors, writeFileAtomic } from '../common/index.js';
import {
  batchCount,
  createAugmenter,
  iterateAugmentedBatches,
  iterateBatches,
  type Augmenter,
  type Dataset,
} from '../data/index.js';
import { useBackend, type BackendInfo } from './backends/index.js';
import { CallbackList, type TrainingState } from './callbacks.js';
import { assignWeights, loadCheckpoint, type Position } from './checkpoint.js';
import { evaluateAccuracy, yieldToEventLoop } from './evaluate.js';
import { interruptionCallback } from './interruption.js';
import { divergenceGuard, nonFiniteLossGuard } from './loss-guards.js';
import { createNetwork, type Network, type StatUpdates } from './network.js';
import { createOptimizer, learningRateAt } from './optimizer.js';
import { consoleProgress, progressCallback, type ProgressReporter } from './progress.js';
import {
  bestWeightsCallback,
  checkpointCallback,
  curvesCallback,
  metricsFileCallback,
  summaryCallback,
} from './run-callbacks.js';
import { prepareRunDir, readMetrics, runPath, type EpochMetrics, type TrainConfig } from './run-dir.js';
import { loadRunDataset, recordDataset, runSplits, specForRun, type RunSplits } from './run-data.js';

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
}

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

const startOfRun = (): Position => ({
  epoch: 0,
  batch: 0,
  bestAccuracy: -1,
  bestEpoch: 0,
  partial: { loss: 0, correct: 0, seen: 0, seconds: 0 },
});

/**
 * Trains `config.model` on `config.dataset` into `runDir` (see run-dir.ts for its files). Rejects with a
 * CnnxError for a `runDir` that already holds a run (RUN_EXISTS, unless `resume` or `replace`), a non-finite
 * loss (NON_FINITE_LOSS) or a diverging one (LOSS_DIVERGED); the best weights are kept in every case.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { config, runDir } = options;
  const resume = Boolean(options.resume);
  const progress = options.progress ?? consoleProgress();
  const created = await prepareRunDir(runDir, { resume, replace: options.replace });
  // A run that cannot start (no backend, bad data, an unknown distortion) leaves no empty folder behind.
  const { backend, dataset, spec, augmenter } = await loadBackendAndData(options, progress).catch(
    async (error: unknown) => {
      if (created) await rmdir(runDir).catch(() => undefined);
      throw error;
    },
  );
  const splits = runSplits(dataset, config);
  if (splits.selectOn === 'val') {
    progress.log(
      `best epoch chosen on validation: ${splits.selection.count} training examples held out (stratified, seed ${config.seed}); the test set is evaluated once, for the chosen weights`,
    );
  }

  const network = createNetwork(spec, config.seed);
  const { optimizer, setLearningRate } = createOptimizer(config);
  try {
    const { position, history } = resume
      ? await restore(network, optimizer, runDir, progress)
      : { position: startOfRun(), history: [] };
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
    await fit(state, callbacks, { splits, augmenter, setLearningRate });
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
    network.dispose();
    optimizer.dispose();
  }
}

/** Loads the run's checkpoint; the completed epochs' metrics come from it (from metrics.jsonl for old ones). */
async function restore(
  network: Network,
  optimizer: tf.Optimizer,
  runDir: string,
  progress: ProgressReporter,
): Promise<{ position: Position; history: EpochMetrics[] }> {
  const file = runPath(runDir, 'checkpoint');
  if (!existsSync(file)) {
    progress.log(`resuming ${runDir}: it stopped before its first checkpoint, so it starts from the beginning`);
    return { position: startOfRun(), history: [] };
  }
  const { position, metrics } = await loadCheckpoint(network, optimizer, file);
  // Said as the interruption says it: the epoch in progress, counted from 1, and the batches of it done.
  progress.log(
    position.batch === 0
      ? `resuming ${runDir} after epoch ${position.epoch}`
      : `resuming ${runDir} at epoch ${position.epoch + 1}, batch ${position.batch}`,
  );
  return { position, history: metrics ?? (await readMetrics(runDir)).slice(0, position.epoch) };
}

/**
 * The loop: epochs of shuffled batches (distorted by `augmenter`, if any), then test accuracy on undistorted
 * images; it stops early when a callback sets stopTraining.
 */
async function fit(
  state: TrainingState,
  callbacks: CallbackList,
  data: { splits: RunSplits; augmenter?: Augmenter; setLearningRate: (lr: number) => void },
): Promise<void> {
  const { config, network, optimizer, batchesPerEpoch } = state;
  const { train: trainSplit, selection, test, selectOn } = data.splits;
  const totalSteps = batchesPerEpoch * config.epochs;
  const side = network.spec.input[1];
  const resize = side === trainSplit.rows ? undefined : side; // e.g. AlexNet's 224 from 28x28 images
  const [channels, height, width] = network.spec.input;
  await callbacks.call('onTrainBegin', state);
  for (let epoch = state.position.epoch; epoch < config.epochs && !state.stopTraining; epoch++) {
    const position = state.position;
    const startBatch = position.batch;
    await callbacks.call('onEpochBegin', state, epoch + 1, startBatch);
    const started = performance.now();
    let batchIndex = 0;
    const order = { batchSize: config.batchSize, shuffle: true, seed: config.seed, epoch, resize };
    const batches = data.augmenter
      ? iterateAugmentedBatches(trainSplit, order, data.augmenter)
      : iterateBatches(trainSplit, order);
    for (const batch of batches) {
      if (batchIndex++ < startBatch) continue;
      if (state.stopTraining) break;
      const step = epoch * batchesPerEpoch + batchIndex - 1;
      const lr = learningRateAt(config.schedule, config.lr, step, totalSteps);
      data.setLearningRate(lr);
      const stepStarted = performance.now();
      const [loss, correct] = await trainStep(network, optimizer, batch, [height, width, channels], {
        dropoutSeed: deriveSeed(config.seed, step + 1),
      });
      const partial = position.partial;
      partial.loss += loss * batch.size;
      partial.correct += correct;
      partial.seen += batch.size;
      partial.seconds += (performance.now() - stepStarted) / 1000;
      position.batch = batchIndex;
      const examplesPerSec = partial.seen / Math.max(partial.seconds, 1e-9);
      await callbacks.call('onBatchEnd', state, {
        epoch: epoch + 1,
        batch: batchIndex,
        loss,
        epochLoss: partial.loss / partial.seen,
        examplesPerSec,
        lr,
      });
      await yieldToEventLoop(); // lets signal handlers run between steps
    }
    if (state.stopTraining) break;
    const accuracy = await evaluateAccuracy(network, selection, {
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
      seconds: (performance.now() - started) / 1000,
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
  }
  if (state.position.epoch >= config.epochs) state.stopTraining = false; // a stop that came too late to matter
  if (!state.stopTraining && selectOn === 'val' && state.position.bestEpoch > 0) {
    // The test set, once, for the chosen weights, on a network of its own: the training network keeps the last
    // epoch's weights, which a checkpoint written after a stop must hold.
    const file = runPath(state.runDir, 'best');
    const chosen = createNetwork(network.spec, 0);
    try {
      assignWeights(chosen, (await readSafetensors(file)).tensors, file);
      const accuracy = await evaluateAccuracy(chosen, test, { resize, shouldStop: () => state.stopTraining });
      if (accuracy !== undefined) state.finalTest = { accuracy, epoch: state.position.bestEpoch };
    } finally {
      chosen.dispose();
    }
  }
  await callbacks.call('onTrainEnd', state);
}

/** One optimizer step; resolves to the batch's mean loss and number of correct predictions. */
export async function trainStep(
  network: Network,
  optimizer: tf.Optimizer,
  batch: { xs: Float32Array; labels: Int32Array; size: number },
  [height, width, channels]: [number, number, number],
  { dropoutSeed }: { dropoutSeed: number },
): Promise<[number, number]> {
  const updates: StatUpdates = [];
  let correct: tf.Tensor | undefined;
  const x = tf.tensor4d(batch.xs, [batch.size, height, width, channels]);
  const labels = tf.tensor1d(batch.labels, 'int32');
  const oneHot = tf.oneHot(labels, network.spec.classes);
  const loss = optimizer.minimize(
    () => {
      const logits = network.apply(x, { training: true, dropoutSeed, updates });
      correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32')));
      return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
    },
    true,
    network.trainable,
  )!;
  for (const [variable, value] of updates) {
    variable.assign(value);
    value.dispose();
  }
  // Asynchronous reads: the webgpu backend cannot read synchronously in Node.
  const values = [(await loss.data())[0]!, (await correct!.data())[0]!] as [number, number];
  tf.dispose([x, labels, oneHot, loss, correct!]);
  return values;
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
