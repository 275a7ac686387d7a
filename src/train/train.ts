/**
 * The training loop, as in the notebook: Xavier init, the configured optimizer, test accuracy after every
 * epoch, and the best weights kept (not the last). Around it, what a long run needs: a run directory with
 * metrics and curves, atomic checkpoints after every epoch and on Ctrl-C, exact resume, and a stop with the best
 * weights untouched when the loss becomes NaN or infinite.
 */
import { mkdir } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, deriveSeed, writeFileAtomic } from '../common/index.js';
import { batchCount, iterateBatches, limitSplit, loadDataset, type Dataset } from '../data/index.js';
import { getModelSpec } from '../models/index.js';
import { useBackend, type BackendInfo } from './backends/index.js';
import { loadCheckpoint, saveCheckpoint, saveWeights, type Position } from './checkpoint.js';
import { evaluateAccuracy } from './evaluate.js';
import { createNetwork, type Network, type StatUpdates } from './network.js';
import { createOptimizer, learningRateAt } from './optimizer.js';
import { writeCurves } from './plot.js';
import { consoleProgress, type ProgressReporter } from './progress.js';
import { appendMetrics, readMetrics, runPath, type EpochMetrics, type TrainConfig } from './run-dir.js';

export interface TrainOptions {
  config: TrainConfig;
  runDir: string;
  /** Continue the run in `runDir` from its checkpoint. */
  resume?: boolean;
  progress?: ProgressReporter;
  dataDir?: string;
  offline?: boolean;
  /** Stop (saving a checkpoint) when this signal aborts, as on Ctrl-C. */
  signal?: AbortSignal;
  /** A loaded dataset to use instead of loading `config.dataset` (tests). */
  dataset?: Dataset;
}

export interface TrainResult {
  runDir: string;
  backend: BackendInfo;
  bestAccuracy: number;
  bestEpoch: number;
  epochsCompleted: number;
  interrupted: boolean;
  final?: EpochMetrics;
}

export class NonFiniteLossError extends CnnxError {
  override name = 'NonFiniteLossError';
}

/** Inputs are resized on the fly when the model's input differs from the images'. */
function resizeFor(network: Network, dataset: Dataset): number | undefined {
  const side = network.spec.input[1];
  return side === dataset.train.rows ? undefined : side;
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const { config, runDir } = options;
  const progress = options.progress ?? consoleProgress();
  const spec = getModelSpec(config.model);
  const backend = await useBackend(config.backend);
  progress.log(
    `backend: ${backend.device}${backend.skipped.length ? ` (skipped: ${backend.skipped.join('; ')})` : ''}`,
  );

  const dataset =
    options.dataset ??
    (await loadDataset(config.dataset, { dataDir: options.dataDir, offline: options.offline, log: progress.log }));
  progress.log(`data: ${dataset.name} from ${dataset.source}`);
  const trainSplit = limitSplit(dataset.train, config.limit);
  const testSplit = limitSplit(dataset.test, config.testLimit);

  await mkdir(runDir, { recursive: true });
  const network = createNetwork(spec, config.seed);
  const { optimizer, setLearningRate } = createOptimizer(config);
  let position: Position = {
    epoch: 0,
    batch: 0,
    bestAccuracy: -1,
    bestEpoch: 0,
    partial: { loss: 0, correct: 0, seen: 0, seconds: 0 },
  };
  if (options.resume) {
    position = await loadCheckpoint(network, optimizer, runPath(runDir, 'checkpoint'));
    progress.log(
      `resuming ${runDir} after epoch ${position.epoch}${position.batch ? `, batch ${position.batch}` : ''}`,
    );
  } else {
    await writeFileAtomic(runPath(runDir, 'config'), `${JSON.stringify(config, null, 2)}\n`);
  }
  const metrics = options.resume ? (await readMetrics(runDir)).slice(0, position.epoch) : [];

  const resize = resizeFor(network, dataset);
  const [channels, height, width] = spec.input;
  const batchesPerEpoch = batchCount(trainSplit.count, config.batchSize);
  const totalSteps = batchesPerEpoch * config.epochs;
  const bestFile = runPath(runDir, 'best');
  const checkpointFile = runPath(runDir, 'checkpoint');
  const title = `${spec.name} on ${dataset.name}`;
  const bestMetadata = (epoch: number, accuracy: number) => ({
    format: 'cnnx-weights',
    model: spec.name,
    dataset: dataset.name,
    dataSource: dataset.source,
    epoch: String(epoch),
    testAccuracy: String(accuracy),
    config: JSON.stringify(config),
  });
  let interrupted = false;

  try {
    for (let epoch = position.epoch; epoch < config.epochs; epoch++) {
      const startBatch = position.batch;
      const partial = { ...position.partial };
      progress.startEpoch(epoch + 1, config.epochs, batchesPerEpoch, startBatch);
      let batchIndex = 0;
      const started = performance.now();
      let lr = config.lr;
      for (const batch of iterateBatches(trainSplit, {
        batchSize: config.batchSize,
        shuffle: true,
        seed: config.seed,
        epoch,
        resize,
      })) {
        if (batchIndex++ < startBatch) continue;
        if (options.signal?.aborted) {
          interrupted = true;
          break;
        }
        lr = learningRateAt(config.schedule, config.lr, epoch * batchesPerEpoch + batchIndex - 1, totalSteps);
        setLearningRate(lr);
        const stepStarted = performance.now();
        const [loss, correct] = await trainStep(network, optimizer, batch, [height, width, channels], {
          dropoutSeed: deriveSeed(config.seed, epoch * batchesPerEpoch + batchIndex),
        });
        if (!Number.isFinite(loss)) {
          throw new NonFiniteLossError(
            `loss became ${loss} at epoch ${epoch + 1}, batch ${batchIndex}; stopped. ` +
              (position.bestAccuracy >= 0
                ? `The best weights (epoch ${position.bestEpoch}, test acc ${position.bestAccuracy.toFixed(4)}) are kept in ${bestFile}. `
                : 'No epoch completed, so no best weights were written. ') +
              `Try a lower --lr (now ${config.lr}).`,
            'NON_FINITE_LOSS',
          );
        }
        partial.loss += loss * batch.size;
        partial.correct += correct;
        partial.seen += batch.size;
        partial.seconds += (performance.now() - stepStarted) / 1000;
        progress.step(batchIndex, partial.loss / partial.seen, partial.seen / Math.max(partial.seconds, 1e-9));
      }
      if (interrupted) {
        position = { ...position, epoch, batch: batchIndex - 1, partial };
        await saveCheckpoint(network, optimizer, position, checkpointFile);
        progress.log(
          `interrupted: checkpoint saved at epoch ${epoch + 1}, batch ${position.batch}; continue with: cnnx train --resume ${runDir}`,
        );
        break;
      }
      const testAccuracy = await evaluateAccuracy(network, testSplit, { resize });
      const best = testAccuracy > position.bestAccuracy;
      const epochMetrics: EpochMetrics = {
        epoch: epoch + 1,
        loss: partial.loss / partial.seen,
        trainAccuracy: partial.correct / partial.seen,
        testAccuracy,
        lr,
        examplesPerSec: partial.seen / Math.max(partial.seconds, 1e-9),
        seconds: (performance.now() - started) / 1000,
        best,
      };
      if (best) {
        await saveWeights(network, bestFile, bestMetadata(epoch + 1, testAccuracy));
        position.bestAccuracy = testAccuracy;
        position.bestEpoch = epoch + 1;
      }
      position = { ...position, epoch: epoch + 1, batch: 0, partial: { loss: 0, correct: 0, seen: 0, seconds: 0 } };
      await saveCheckpoint(network, optimizer, position, checkpointFile);
      await appendMetrics(runDir, epochMetrics);
      metrics.push(epochMetrics);
      await writeCurves(runPath(runDir, 'plot'), title, metrics);
      progress.endEpoch(epochMetrics);
    }
  } finally {
    network.dispose();
    optimizer.dispose();
  }

  const final = metrics.at(-1);
  const result: TrainResult = {
    runDir,
    backend,
    bestAccuracy: position.bestAccuracy,
    bestEpoch: position.bestEpoch,
    epochsCompleted: position.epoch,
    interrupted,
    final,
  };
  if (final && !interrupted) {
    const meanSpeed = metrics.reduce((s, m) => s + m.examplesPerSec, 0) / metrics.length;
    await writeFileAtomic(
      runPath(runDir, 'summary'),
      `${JSON.stringify(
        {
          model: spec.name,
          dataset: dataset.name,
          dataSource: dataset.source,
          backend: backend.device,
          epochs: metrics.length,
          bestEpoch: position.bestEpoch,
          bestTestAccuracy: position.bestAccuracy,
          final: { loss: final.loss, trainAccuracy: final.trainAccuracy, testAccuracy: final.testAccuracy },
          examplesPerSec: meanSpeed,
          trainSeconds: metrics.reduce((s, m) => s + m.seconds, 0),
        },
        null,
        2,
      )}\n`,
    );
    progress.log(
      `loss ${final.loss.toFixed(3)}, train acc ${final.trainAccuracy.toFixed(3)}, test acc ${final.testAccuracy.toFixed(3)}\n` +
        `${Math.round(meanSpeed)} examples/s on ${backend.device}\n` +
        `best test acc ${position.bestAccuracy.toFixed(4)} (epoch ${position.bestEpoch}) -> ${bestFile}\n` +
        `curves: ${runPath(runDir, 'plot')}`,
    );
  }
  return result;
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
