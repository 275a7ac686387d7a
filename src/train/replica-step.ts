/**
 * One replica's part of a data-parallel step (replicas.ts), the same code on the training thread (replica 0) and
 * on every replica thread (replica-thread.ts), so that the copies cannot drift apart: the shard's gradients written
 * to the replica's row of shared memory, then, once every row is written, the rows summed in replica order and the
 * optimizer's step taken on the replica's own copy. Every replica sums the same floats in the same order, so every
 * copy takes the same step, to the bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ReduceMember } from './all-reduce.js';
import type { Network, StatUpdates } from './network.js';
import type { Trainer } from './optimizer.js';
import type { ParameterSlot } from './replica-protocol.js';
import { batchGradients, type Batch } from './step.js';

/** What a replica's steps read and write: its network and the shared gradient rows and results. */
export interface ReplicaShared {
  network: Network;
  /** This replica's index, 0 (the training thread) to `replicas` - 1. */
  index: number;
  replicas: number;
  /** Floats a gradient row holds (parameterLayout's size). */
  rowSize: number;
  /** Each trainable variable's slot in a row, by tfjs variable name. */
  slotOf: Map<string, ParameterSlot>;
  /** Two sets of `replicas` gradient rows (ReplicaData.gradients). */
  rows: Float32Array;
  /** [set, replica, 2]: loss part and correct count (ReplicaData.results). */
  results: Float64Array;
}

/** The step a shard belongs to: its rows of the batch, the gradient set it writes and its dropout seed. */
export interface ShardStep {
  /** The shard: rows [offset, offset + shard.size) of a batch of `total`. */
  shard: Batch;
  offset: number;
  total: number;
  set: 0 | 1;
  dropoutSeed: number;
}

/**
 * Computes the shard's gradients (batch norm synchronised through `member`), writes them to this replica's row of
 * `step.set` and its loss part and correct count to its results; returns the batch-norm statistic updates, to
 * apply after the optimizer step (every replica computes the same ones from the all-reduced sums).
 * @throws GroupAborted (all-reduce.ts) when the group is aborted while this replica waits in batch norm.
 */
export function writeShardGradients(shared: ReplicaShared, step: ShardStep, member: ReduceMember): StatUpdates {
  const { network } = shared;
  const [channels, height, width] = network.spec.input;
  const result = batchGradients(network, step.shard, [height, width, channels], {
    dropoutSeed: step.dropoutSeed,
    shard: { offset: step.offset, total: step.total, allReduce: member.allReduce },
  });
  try {
    const row = (step.set * shared.replicas + shared.index) * shared.rowSize;
    for (const [name, grad] of Object.entries(result.grads)) {
      shared.rows.set(grad.dataSync() as Float32Array, row + shared.slotOf.get(name)!.offset);
    }
    const at = 2 * (step.set * shared.replicas + shared.index);
    shared.results[at] = result.loss.dataSync()[0]!;
    shared.results[at + 1] = result.correct.dataSync()[0]!;
    return result.updates;
  } catch (error) {
    tf.dispose(result.updates.map(([, value]) => value));
    throw error;
  } finally {
    tf.dispose([result.loss, result.correct, ...Object.values(result.grads)]);
  }
}

/**
 * One parameter's gradient summed over the first `participants` rows of set `set`, row 0 first (float32 additions,
 * as a tfjs add makes them).
 */
export function sumRows(shared: ReplicaShared, slot: ParameterSlot, set: 0 | 1, participants: number): Float32Array {
  const first = set * shared.replicas * shared.rowSize + slot.offset;
  const sum = shared.rows.slice(first, first + slot.size);
  for (let r = 1; r < participants; r++) {
    const start = first + r * shared.rowSize;
    for (let i = 0; i < slot.size; i++) sum[i]! += shared.rows[start + i]!;
  }
  return sum;
}

/**
 * Once every participant's row of `set` is written: each trainable parameter's gradient summed over the rows, keyed
 * by its name and shaped as it is. The caller disposes them.
 */
export function summedGradients(shared: ReplicaShared, set: 0 | 1, participants: number): tf.NamedTensorMap {
  const sums: tf.NamedTensorMap = {};
  try {
    for (const variable of shared.network.trainable) {
      const slot = shared.slotOf.get(variable.name)!;
      sums[variable.name] = tf.tensor(sumRows(shared, slot, set, participants), slot.shape);
    }
    return sums;
  } catch (error) {
    tf.dispose(Object.values(sums));
    throw error;
  }
}

/**
 * The optimizer's step on this replica's network from `sums` (summedGradients), in `network.trainable`'s order (the
 * order the optimizer keeps its state in), at learning rate `lr`. A failure part-way leaves some weights stepped.
 */
export function applySums(trainer: Trainer, sums: tf.NamedTensorMap, lr: number): void {
  trainer.setLearningRate(lr);
  trainer.optimizer.applyGradients(sums);
}

/**
 * Once every participant's row of `set` is written: the optimizer's step on this replica's network from the summed
 * rows (summedGradients, then applySums).
 */
export function stepFromRows(
  shared: ReplicaShared,
  trainer: Trainer,
  { set, participants, lr }: { set: 0 | 1; participants: number; lr: number },
): void {
  const sums = summedGradients(shared, set, participants);
  try {
    applySums(trainer, sums, lr);
  } finally {
    tf.dispose(Object.values(sums));
  }
}

/** The participants' summed loss parts (the batch's mean loss) and correct counts in set `set`, in replica order. */
export function stepTotals(shared: ReplicaShared, set: 0 | 1, participants: number): [number, number] {
  let loss = 0;
  let correct = 0;
  for (let r = 0; r < participants; r++) {
    const at = 2 * (set * shared.replicas + r);
    loss += shared.results[at]!;
    correct += shared.results[at + 1]!;
  }
  return [loss, correct];
}
