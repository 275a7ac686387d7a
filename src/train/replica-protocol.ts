/**
 * What the training thread and its replica threads share (replicas.ts, replica-thread.ts): the thread's start-up
 * data, the messages, how the parameters lie in the shared weight and gradient arrays, and which rows of a batch
 * each replica takes. Imports nothing heavy, so a replica thread starts with tfjs and the model code only.
 */
import type { TensorMap } from '../common/index.js';
import type { ModelSpec, ParameterSpec } from '../models/index.js';
import type { ReduceBuffers } from './all-reduce.js';
import type { OptimizerSettings } from './optimizer.js';

type BufferPair = readonly [SharedArrayBuffer, SharedArrayBuffer];

/** Start-up data of replica `index`. */
export interface ReplicaData {
  spec: ModelSpec;
  /** The tfjs backend the training thread uses (one that runs on the CPU). */
  backend: 'wasm' | 'cpu';
  index: number;
  /** Float32 weights of every parameter, laid out by `parameterLayout` (written by the training thread). */
  weights: SharedArrayBuffer;
  /** Float32 gradients, one `parameterLayout` row per replica (each written by its replica). */
  gradients: SharedArrayBuffer;
  /**
   * Two of each of the following, so that the training thread can hand over the next step while one runs: a request
   * names the pair's member (`buffer`) it uses.
   * - Float32 gradients summed over the replicas, one `parameterLayout` row (written by replica 0 as it steps).
   * - Float32 examples [rows, height, width, channels] of a batch, and its Int32 labels [rows].
   */
  summed: BufferPair;
  inputs: BufferPair;
  labels: BufferPair;
  reduce: ReduceBuffers;
}

/**
 * - `load`: copy the weights in the shared array into the network and, when `optimizer` is given, start a new
 *   optimizer of those settings from that state (optimizer.ts's settingsOf and optimizerState).
 * - `train`: the batch is in `inputs[buffer]` and `labels[buffer]`; `rows` is its size (the replicas with index <
 *   `participants` each take a shard of it). A replica takes the requests in the order they were sent, so the next
 *   step can be sent before this one ends.
 *   Each writes its gradient row; with `lr`, each then sums the rows in replica order and takes the optimizer step
 *   itself at that learning rate, as the training thread does from `summed[buffer]`, so weights never travel between
 *   steps.
 * - `evaluate`: count the correct predictions on its shard.
 */
export type ReplicaRequest =
  | { type: 'load'; optimizer?: { settings: OptimizerSettings; order: string[]; tensors: TensorMap } }
  | { type: 'train'; buffer: 0 | 1; rows: number; participants: number; dropoutSeed: number; lr?: number }
  | { type: 'evaluate'; buffer: 0 | 1; rows: number; participants: number };

export type ReplicaReply =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'loaded' }
  /** `loss`: this shard's part of the batch's mean loss; `stats`: new batch-norm running statistics (replica 0). */
  | { type: 'trained'; loss: number; correct: number; stats: { name: string; values: Float32Array }[] }
  | { type: 'evaluated'; correct: number }
  /** `aborted`: it stopped because another replica failed. */
  | { type: 'error'; message: string; aborted: boolean };

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
