/**
 * A replica thread of data-parallel training (replicas.ts): a copy of the network and of the optimizer on its own
 * tfjs backend. For each step it takes its shard of the batch in shared memory, computes the shard's gradients
 * (batch norm synchronised with the other replicas) and writes them to its row of the shared gradient array; then
 * it sums every replica's row, in replica order, and takes the optimizer step itself, as every other replica and
 * the training thread do with the same sums, so the copies stay equal without weights travelling between steps.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { messageOf } from '../common/index.js';
import { abortGroup, GroupAborted, reduceMember } from './all-reduce.js';
import { useBackend } from './backends/index.js';
import { createNetwork } from './network.js';
import { createOptimizer, restoreOptimizerState, type Trainer } from './optimizer.js';
import {
  parameterLayout,
  shardOf,
  type ReplicaData,
  type ReplicaReply,
  type ReplicaRequest,
} from './replica-protocol.js';
import { applyStatUpdates, batchGradients, countCorrect } from './step.js';

const data = workerData as ReplicaData;
const port = parentPort!;
const post = (reply: ReplicaReply) => port.postMessage(reply);

try {
  await useBackend(data.backend);
  const network = createNetwork(data.spec, 0);
  /** The optimizer, from the training thread's settings and state (the first `load` that carries them). */
  let trainer: Trainer | undefined;
  let learningRate = NaN;
  const [channels, height, width] = data.spec.input;
  const shape: [number, number, number] = [height, width, channels];
  const exampleSize = channels * height * width;
  const layout = parameterLayout(network.parameters);
  const weights = new Float32Array(data.weights);
  const rows = new Float32Array(data.gradients);
  const ownRow = rows.subarray(data.index * layout.size, (data.index + 1) * layout.size);
  const summed = data.summed.map((buffer) => new Float32Array(buffer));
  const inputs = data.inputs.map((buffer) => new Float32Array(buffer));
  const labels = data.labels.map((buffer) => new Int32Array(buffer));
  const paramOf = new Map([...network.variables].map(([param, variable]) => [variable.name, param]));
  const slotOf = new Map(layout.slots.map((slot) => [slot.name, slot]));

  /** Takes the published weights and, when given, a new optimizer started from the training thread's state. */
  const load = async (request: Extract<ReplicaRequest, { type: 'load' }>): Promise<ReplicaReply> => {
    for (const slot of layout.slots) {
      // A copy: a backend may keep the array it is given.
      const value = tf.tensor(weights.slice(slot.offset, slot.offset + slot.size), slot.shape);
      network.variables.get(slot.name)!.assign(value);
      value.dispose();
    }
    if (request.optimizer) {
      const { settings, order, tensors } = request.optimizer;
      trainer?.optimizer.dispose();
      trainer = createOptimizer(settings);
      learningRate = settings.lr;
      await restoreOptimizerState(network, trainer.optimizer, order, tensors, 'the training thread');
    }
    return { type: 'loaded' };
  };

  /** This replica's shard of the batch in shared memory (copied out of it). */
  const shardBatch = (request: Extract<ReplicaRequest, { rows: number }>) => {
    const { offset, rows: count } = shardOf(data.index, request.participants, request.rows);
    return {
      offset,
      batch: {
        xs: inputs[request.buffer]!.slice(offset * exampleSize, (offset + count) * exampleSize),
        labels: labels[request.buffer]!.slice(offset, offset + count),
        size: count,
      },
    };
  };

  /**
   * The gradients summed over the `participants` rows, row 0 first, by variable name in `network.trainable`'s order
   * (the order the optimizer's state is kept in). This replica's own row is its gradient tensor itself, disposed
   * once summed; each partial sum and each other row is freed once added. So a few tensors of one variable at a time
   * are in memory, and a replica holds one extra copy of the parameters (the sums) whatever the replica count.
   */
  const sumRows = (own: tf.NamedTensorMap, participants: number): tf.NamedTensorMap => {
    const sums: tf.NamedTensorMap = {};
    try {
      for (const variable of network.trainable) {
        const slot = slotOf.get(paramOf.get(variable.name)!)!;
        const mine = own[variable.name]!;
        let sum: tf.Tensor | undefined;
        for (let r = 0; r < participants; r++) {
          const start = r * layout.size + slot.offset;
          const row = r === data.index ? mine : tf.tensor(rows.slice(start, start + slot.size), slot.shape);
          if (sum === undefined) {
            sum = row;
            continue;
          }
          const next = tf.add(sum, row);
          for (const added of [sum, row]) if (added !== mine) added.dispose();
          sum = next;
        }
        // A tensor of its own even with one participant, so that disposing `own` leaves the sum alone.
        sums[variable.name] = sum === mine ? mine.clone() : sum!;
        mine.dispose();
      }
    } catch (error) {
      tf.dispose(Object.values(sums));
      throw error;
    }
    return sums;
  };

  const train = (request: Extract<ReplicaRequest, { type: 'train' }>): ReplicaReply => {
    const { offset, batch } = shardBatch(request);
    const member = reduceMember(data.reduce, data.index, request.participants);
    const result = batchGradients(network, batch, shape, {
      dropoutSeed: request.dropoutSeed,
      shard: { offset, total: request.rows, allReduce: member.allReduce },
    });
    for (const [name, grad] of Object.entries(result.grads)) {
      ownRow.set(grad.dataSync() as Float32Array, slotOf.get(paramOf.get(name)!)!.offset);
    }
    // Every replica computes the same statistics from the same all-reduced sums; replica 0 reports them.
    const stats =
      data.index === 0
        ? result.updates.map(([variable, value]) => ({
            name: paramOf.get(variable.name)!,
            values: value.dataSync() as Float32Array,
          }))
        : [];
    const reply: ReplicaReply = {
      type: 'trained',
      loss: result.loss.dataSync()[0]!,
      correct: result.correct.dataSync()[0]!,
      stats,
    };
    try {
      if (request.lr === undefined) return reply;
      if (trainer === undefined) throw new Error('a training step before any optimizer was loaded');
      member.barrier(); // every row written
      const sums = sumRows(result.grads, request.participants);
      try {
        if (request.lr !== learningRate) trainer.setLearningRate((learningRate = request.lr));
        trainer.optimizer.applyGradients(sums);
        if (data.index === 0) {
          for (const [name, sum] of Object.entries(sums)) {
            summed[request.buffer]!.set(sum.dataSync() as Float32Array, slotOf.get(paramOf.get(name)!)!.offset);
          }
        }
      } finally {
        tf.dispose(Object.values(sums));
      }
      applyStatUpdates(result.updates.splice(0));
      return reply;
    } finally {
      tf.dispose([result.loss, result.correct, ...Object.values(result.grads), ...result.updates.map(([, v]) => v)]);
    }
  };

  const evaluate = (request: Extract<ReplicaRequest, { type: 'evaluate' }>): ReplicaReply => {
    const { batch } = shardBatch(request);
    const hits = countCorrect(network, batch);
    const correct = hits.dataSync()[0]!;
    hits.dispose();
    return { type: 'evaluated', correct };
  };

  const handlers: {
    [K in ReplicaRequest['type']]: (
      request: Extract<ReplicaRequest, { type: K }>,
    ) => ReplicaReply | Promise<ReplicaReply>;
  } = { load, train, evaluate };
  port.on('message', async (request: ReplicaRequest) => {
    try {
      post(await (handlers[request.type] as (r: ReplicaRequest) => ReplicaReply | Promise<ReplicaReply>)(request));
    } catch (error) {
      const aborted = error instanceof GroupAborted;
      // The others may be waiting for this replica in an all-reduce: release them.
      if (!aborted) abortGroup(data.reduce);
      post({ type: 'error', message: messageOf(error), aborted });
    }
  });
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'failed', message: messageOf(error) });
}
