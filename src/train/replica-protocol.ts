/**
 * What the training thread and its replica threads share (replicas.ts, replica-thread.ts): a thread's start-up
 * data, the messages, how the parameters lie in the shared weight and gradient arrays, and which rows of a batch
 * each replica takes. Imports nothing heavy, so a replica thread starts with tfjs and the model code only.
 */
import type { ErrorCode, TensorMap } from '../common/index.js';
import type { ModelSpec, ParameterSpec } from '../models/index.js';
import type { ReduceBuffers } from './all-reduce.js';
import type { OptimizerSettings } from './optimizer.js';

/** Start-up data of replica thread `index` (1 to N - 1: the training thread is replica 0). */
export interface ReplicaData {
  spec: ModelSpec;
  /** The tfjs backend the training thread uses (one that runs on the CPU). */
  backend: 'wasm' | 'cpu';
  index: number;
  /** Float32 weights of every parameter, laid out by `parameterLayout` (written by the training thread). */
  weights: SharedArrayBuffer;
  /**
   * Float32 gradients: two sets (a step uses set `step % 2`, so that a replica still summing a step's rows never
   * sees the next step's) of one `parameterLayout` row per replica, each written by its replica.
   */
  gradients: SharedArrayBuffer;
  /** Float32 examples [rows, height, width, channels] of the batch, and its Int32 labels [rows]. */
  inputs: SharedArrayBuffer;
  labels: SharedArrayBuffer;
  /**
   * Float64 [set, replica, 2]: each replica's part of the step's mean loss and its correct predictions, in set
   * `step % 2` as the gradients.
   */
  results: SharedArrayBuffer;
  reduce: ReduceBuffers;
}

/**
 * - `load`: copy the weights in the shared array into the network and, when `optimizer` is given, start a new
 *   optimizer of those settings from that state (optimizer.ts's settingsOf and optimizerState).
 * - `train`: the batch is in `inputs` and `labels`; `rows` is its size (the replicas with index < `participants`
 *   each take a shard of it). Each writes its gradient row of set `set` and its results, then meets the others at
 *   the barrier; with `lr`, each then sums the rows in replica order and takes the optimizer step itself at that
 *   learning rate, as the training thread does, so weights never travel between steps. No reply, but an error.
 * - `evaluate`: count the correct predictions on its shard.
 */
export type ReplicaRequest =
  | { type: 'load'; optimizer?: { settings: OptimizerSettings; order: string[]; tensors: TensorMap } }
  | { type: 'train'; set: 0 | 1; rows: number; participants: number; dropoutSeed: number; lr?: number }
  | { type: 'evaluate'; rows: number; participants: number };

export type ReplicaReply =
  /** `tid`: the thread's Linux thread id, where /proc/thread-self tells it (so that its exit can be seen). */
  | { type: 'ready'; tid?: number }
  /** `code`: the failure's CnnxError code, when it has one (`OUT_OF_MEMORY` changes the advice the run ends with). */
  | { type: 'failed'; message: string; code?: ErrorCode }
  | { type: 'loaded' }
  | { type: 'evaluated'; correct: number }
  /** `aborted`: it stopped because another replica failed. */
  | { type: 'error'; message: string; code?: ErrorCode; aborted: boolean };

export interface ParameterSlot {
  name: string;
  shape: number[];
  trainable: boolean;
  /** First float of the parameter in a layout row. */
  offset: number;
  size: number;
}

/** Every parameter, in the network's order, one after another in a row of floats. */
export function parameterLayout(parameters: readonly ParameterSpec[]): { slots: ParameterSlot[]; size: number } {
  let offset = 0;
  const slots = parameters.map(({ name, shape, trainable }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slot = { name, shape, trainable, offset, size };
    offset += size;
    return slot;
  });
  return { slots, size: offset };
}

/**
 * Rows [offset, offset + rows) of a batch of `total` that replica `index` of `participants` takes: contiguous
 * shards, the first `total % participants` one row larger.
 */
export function shardOf(index: number, participants: number, total: number): { offset: number; rows: number } {
  const base = Math.floor(total / participants);
  const extra = total % participants;
  return { offset: index * base + Math.min(index, extra), rows: base + (index < extra ? 1 : 0) };
}
