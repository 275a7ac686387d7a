/**
 * A replica thread of data-parallel training (replicas.ts): a copy of the network on its own tfjs backend, which
 * for each request takes its shard of the batch in shared memory, computes the shard's gradients (batch norm
 * synchronised with the other replicas) and writes them to its row of the shared gradient array. It holds no
 * optimizer: the training thread sums the rows, steps, and publishes the new weights.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { messageOf } from '../common/index.js';
import { abortGroup, GroupAborted, reduceMember } from './all-reduce.js';
import { useBackend } from './backends/index.js';
import { createNetwork } from './network.js';
import {
  parameterLayout,
  shardOf,
  type ReplicaData,
  type ReplicaReply,
  type ReplicaRequest,
} from './replica-protocol.js';
import { batchGradients, countCorrect } from './step.js';

const data = workerData as ReplicaData;
const port = parentPort!;
const post = (reply: ReplicaReply) => port.postMessage(reply);

try {
  await useBackend(data.backend);
  const network = createNetwork(data.spec, 0);
  const [channels, height, width] = data.spec.input;
  const shape: [number, number, number] = [height, width, channels];
  const exampleSize = channels * height * width;
  const layout = parameterLayout(network.parameters);
  const weights = new Float32Array(data.weights);
  const gradients = new Float32Array(data.gradients, data.index * layout.size * 4, layout.size);
  const inputs = new Float32Array(data.inputs);
  const labels = new Int32Array(data.labels);
  const paramOf = new Map([...network.variables].map(([param, variable]) => [variable.name, param]));
  const slotOf = new Map(layout.slots.map((slot) => [slot.name, slot]));
  let version = -1;

  /** Copies the published weights into the network (copies: a backend may keep the array it is given). */
  const loadWeights = (wanted: number) => {
    if (wanted === version) return;
    for (const slot of layout.slots) {
      const value = tf.tensor(weights.slice(slot.offset, slot.offset + slot.size), slot.shape);
      network.variables.get(slot.name)!.assign(value);
      value.dispose();
    }
    version = wanted;
  };

  /** This replica's shard of the batch in shared memory (copied out of it). */
  const shardBatch = (request: ReplicaRequest) => {
    const { offset, rows } = shardOf(data.index, request.participants, request.rows);
    return {
      offset,
      batch: {
        xs: inputs.slice(offset * exampleSize, (offset + rows) * exampleSize),
        labels: labels.slice(offset, offset + rows),
        size: rows,
      },
    };
  };

  const train = (request: Extract<ReplicaRequest, { type: 'train' }>): ReplicaReply => {
    loadWeights(request.version);
    const { offset, batch } = shardBatch(request);
    const { allReduce } = reduceMember(data.reduce, data.index, request.participants);
    const result = batchGradients(network, batch, shape, {
      dropoutSeed: request.dropoutSeed,
      shard: { offset, total: request.rows, allReduce },
    });
    for (const [name, grad] of Object.entries(result.grads)) {
      gradients.set(grad.dataSync() as Float32Array, slotOf.get(paramOf.get(name)!)!.offset);
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
    tf.dispose([result.loss, result.correct, ...Object.values(result.grads), ...result.updates.map(([, v]) => v)]);
    return reply;
  };

  const evaluate = (request: ReplicaRequest): ReplicaReply => {
    loadWeights(request.version);
    const { batch } = shardBatch(request);
    const hits = countCorrect(network, batch);
    const correct = hits.dataSync()[0]!;
    hits.dispose();
    return { type: 'evaluated', correct };
  };

  const handlers: { [K in ReplicaRequest['type']]: (request: Extract<ReplicaRequest, { type: K }>) => ReplicaReply } = {
    train,
    evaluate,
  };
  port.on('message', (request: ReplicaRequest) => {
    try {
      post((handlers[request.type] as (r: ReplicaRequest) => ReplicaReply)(request));
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
