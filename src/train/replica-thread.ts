/**
 * A replica thread of data-parallel training (replicas.ts): a copy of the network and of the optimizer on its own
 * tfjs backend. For each step it takes its shard of the batch in shared memory and does replica-step.ts's part, as
 * the training thread does for replica 0: the shard's gradients (batch norm synchronised with the other replicas)
 * to its row of shared memory, then, once every row is written, the rows summed in replica order and the optimizer
 * step taken on its copy, so the copies stay equal without weights travelling between steps.
 */
import { readlinkSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { codeOf, messageOf } from '../common/index.js';
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
import { stepFromRows, writeShardGradients, type ReplicaShared } from './replica-step.js';
import { applyStatUpdates, countCorrect } from './step.js';

const data = workerData as ReplicaData;
const port = parentPort!;
const post = (reply: ReplicaReply) => port.postMessage(reply);

try {
  await useBackend(data.backend);
  const network = createNetwork(data.spec, 0);
  /** The optimizer, from the training thread's settings and state (the first `load` that carries them). */
  let trainer: Trainer | undefined;
  const [channels, height, width] = data.spec.input;
  const exampleSize = channels * height * width;
  const layout = parameterLayout(network.parameters);
  const weights = new Float32Array(data.weights);
  const inputs = new Float32Array(data.inputs);
  const labels = new Int32Array(data.labels);
  const slotByParameter = new Map(layout.slots.map((slot) => [slot.name, slot]));
  const shared: ReplicaShared = {
    network,
    index: data.index,
    replicas: data.results.byteLength / (4 * Float64Array.BYTES_PER_ELEMENT),
    rowSize: layout.size,
    slotOf: new Map([...network.variables].map(([param, variable]) => [variable.name, slotByParameter.get(param)!])),
    rows: new Float32Array(data.gradients),
    results: new Float64Array(data.results),
  };

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
        xs: inputs.slice(offset * exampleSize, (offset + count) * exampleSize),
        labels: labels.slice(offset, offset + count),
        size: count,
      },
    };
  };

  const train = (request: Extract<ReplicaRequest, { type: 'train' }>): undefined => {
    if (request.lr !== undefined && trainer === undefined) {
      throw new Error('a training step before any optimizer was loaded');
    }
    const { offset, batch } = shardBatch(request);
    const { set, participants, lr } = request;
    const member = reduceMember(data.reduce, data.index, participants);
    const step = { shard: batch, offset, total: request.rows, set, dropoutSeed: request.dropoutSeed };
    const updates = writeShardGradients(shared, step, member);
    try {
      member.barrier(); // every row written
      if (lr === undefined) return undefined;
      stepFromRows(shared, trainer!, { set, participants, lr });
      applyStatUpdates(updates.splice(0));
      return undefined;
    } finally {
      tf.dispose(updates.map(([, value]) => value));
    }
  };

  const evaluate = (request: Extract<ReplicaRequest, { type: 'evaluate' }>): ReplicaReply => {
    const { batch } = shardBatch(request);
    const hits = countCorrect(network, batch);
    const correct = hits.dataSync()[0]!;
    hits.dispose();
    return { type: 'evaluated', correct };
  };

  type Handler = (request: ReplicaRequest) => ReplicaReply | undefined | Promise<ReplicaReply>;
  const handlers: {
    [K in ReplicaRequest['type']]: (
      request: Extract<ReplicaRequest, { type: K }>,
    ) => ReplicaReply | undefined | Promise<ReplicaReply>;
  } = { load, train, evaluate };
  port.on('message', async (request: ReplicaRequest) => {
    try {
      const reply = await (handlers[request.type] as Handler)(request);
      if (reply !== undefined) post(reply);
    } catch (error) {
      const aborted = error instanceof GroupAborted;
      // The others may be waiting for this replica in an all-reduce: release them.
      if (!aborted) abortGroup(data.reduce);
      post({ type: 'error', message: messageOf(error), code: codeOf(error), aborted });
    }
  });
  post({ type: 'ready', tid: threadId() });
} catch (error) {
  post({ type: 'failed', message: messageOf(error), code: codeOf(error) });
}

/** This thread's Linux thread id (the last part of /proc/thread-self's target); undefined elsewhere. */
function threadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
    return Number.isInteger(tid) ? tid : undefined;
  } catch {
    return undefined;
  }
}
