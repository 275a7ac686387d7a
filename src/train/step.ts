/**
 * One training step: the loss of a batch, its gradients and the optimizer's update; and the correct predictions on
 * a batch that evaluation counts. Each is one function for the whole batch on this thread and for one replica's
 * shard of it (replicas.ts), so the two paths cannot drift apart. Imports tfjs and the network only, so replica
 * threads load nothing else.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Network, Shard, StatUpdates } from './network.js';

/** A batch as the data stage gives it: xs [size, height, width, channels] in [0,1], labels [size]. */
export interface Batch {
  xs: Float32Array;
  labels: Int32Array;
  size: number;
}

/** Correct top-1 predictions of the network, in inference mode, on a batch (xs [size, height, width, channels]). */
export function countCorrect(network: Network, batch: Batch): tf.Scalar {
  const [channels, height, width] = network.spec.input;
  return tf.tidy(() => {
    const x = tf.tensor4d(batch.xs, [batch.size, height, width, channels]);
    const predicted = tf.argMax(network.apply(x, { training: false }), 1);
    return tf.sum(tf.cast(tf.equal(predicted, tf.tensor1d(batch.labels, 'int32')), 'int32'));
  });
}

export interface BatchGradients {
  /** Sum of this batch's (or shard's) softmax cross-entropy losses divided by the whole batch's size. */
  loss: tf.Scalar;
  /** Number of correct top-1 predictions. */
  correct: tf.Scalar;
  /** Gradient of `loss` for each trainable variable, by variable name, in `network.trainable` order. */
  grads: tf.NamedTensorMap;
  /** Batch-norm running-statistic updates, to apply after the optimizer step. */
  updates: StatUpdates;
}

/**
 * Loss, gradients and statistic updates of `batch` in training mode. With a `shard`, `batch` holds the shard's rows
 * only and the loss is divided by the whole batch's size, so the shards' gradients sum to the batch's.
 * `[height, width, channels]` is the network's input (NHWC).
 */
export function batchGradients(
  network: Network,
  batch: Batch,
  [height, width, channels]: [number, number, number],
  { dropoutSeed, shard }: { dropoutSeed: number; shard?: Shard },
): BatchGradients {
  const updates: StatUpdates = [];
  let correct: tf.Scalar | undefined;
  const total = shard?.total ?? batch.size;
  const { value, grads } = tf.tidy(() => {
    const x = tf.tensor4d(batch.xs, [batch.size, height, width, channels]);
    const labels = tf.tensor1d(batch.labels, 'int32');
    const oneHot = tf.oneHot(labels, network.spec.classes);
    return tf.variableGrads(() => {
      const logits = network.apply(x, { training: true, dropoutSeed, updates, shard });
      correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32'))) as tf.Scalar;
      const losses = tf.losses.softmaxCrossEntropy(oneHot, logits, undefined, undefined, tf.Reduction.NONE);
      return tf.div(tf.sum(losses), total) as tf.Scalar;
    }, network.trainable);
  });
  return { loss: value, correct: correct!, grads, updates };
}

/** Applies batch-norm running-statistic updates and disposes their values. */
export function applyStatUpdates(updates: StatUpdates): void {
  for (const [variable, value] of updates) {
    variable.assign(value);
    value.dispose();
  }
}

/** One optimizer step on this thread; resolves to the batch's mean loss and number of correct predictions. */
export async function trainStep(
  network: Network,
  optimizer: tf.Optimizer,
  batch: Batch,
  shape: [number, number, number],
  { dropoutSeed }: { dropoutSeed: number },
): Promise<[number, number]> {
  const { loss, correct, grads, updates } = batchGradients(network, batch, shape, { dropoutSeed });
  optimizer.applyGradients(grads);
  tf.dispose(grads);
  applyStatUpdates(updates);
  // Asynchronous reads: the webgpu backend cannot read synchronously in Node.
  const values = [(await loss.data())[0]!, (await correct.data())[0]!] as [number, number];
  tf.dispose([loss, correct]);
  return values;
}
