/**
 * Data-parallel training on every core: N replica threads (replica-thread.ts), each with a copy of the network and
 * of the optimizer on its own tfjs backend, take contiguous shards of each batch. Batch and gradients travel
 * through shared memory. Each replica writes its gradient row, sums all rows in replica order and takes the
 * optimizer step on its copy; the training thread takes the same step on its own network from the sums replica 0
 * leaves in shared memory. Every copy does the same float operations in the same order, so all stay bit-identical
 * and weights (with the optimizer's state) travel only when a replica must start from another state: the first
 * step of a network, a step after another network was evaluated, and a step after a batch smaller than the worker
 * count left the replica out. Batch norm is synchronised (the whole batch's statistics) and dropout masks are the whole
 * batch's, so N replicas compute the gradients one network computes (up to float rounding), and a fixed N gives
 * the same bits every time.
 *
 * This is PyTorch DistributedDataParallel's scheme: an all-reduce of gradients, then identical optimizer steps on
 * every replica.
 */
import { availableParallelism, totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError } from '../common/index.js';
import { iterateBatches, type Split } from '../data/index.js';
import { parameterSpecs, type ModelSpec, type OptimizerName, type ParameterSpec } from '../models/index.js';
import { abortGroup, createReduceBuffers } from './all-reduce.js';
import type { Network } from './network.js';
import { learningRateOf, optimizerState, settingsOf } from './optimizer.js';
import {
  parameterLayout,
  type ParameterSlot,
  type ReplicaData,
  type ReplicaReply,
  type ReplicaRequest,
} from './replica-protocol.js';
import { applyStatUpdates, type Batch } from './step.js';

/**
 * Copies of the parameters a worker holds at its peak, measured on AlexNet with one row a worker (a worker's
 * WebAssembly heap after a step: 1.09 GiB with sgd, 1.67 GiB with adam, of 187 MB of parameters): its weights,
 * gradients, their sums, the copies a step makes and its shared gradient row; momentum keeps one more copy (its
 * velocities) and Adam three (two moments, and its temporaries).
 */
function copiesPerWorker(optimizer: OptimizerName): number {
  return 8 + (optimizer === 'adam' ? 3 : optimizer === 'momentum' ? 1 : 0);
}

/**
 * The worker count `--workers` defaults to: one per core the process may use, but no more than half the machine's
 * memory holds at copiesPerWorker copies of the parameters a worker: AlexNet's 187 MB of parameters take ~1.5 GB a
 * worker with sgd, ~2 GB with adam.
 */
export function defaultWorkers(parameters: readonly ParameterSpec[], optimizer: OptimizerName): number {
  return defaultWorkersWithin(parameters, optimizer, availableParallelism());
}

/** At most `most` workers, and no more than half the memory holds at copiesPerWorker copies of the parameters. */
function defaultWorkersWithin(parameters: readonly ParameterSpec[], optimizer: OptimizerName, most: number): number {
  const bytes = parameterLayout(parameters).size * Float32Array.BYTES_PER_ELEMENT;
  return Math.max(1, Math.min(most, Math.floor(totalmem() / 2 / (copiesPerWorker(optimizer) * bytes))));
}

const MEMORY_HINT =
  "if it ran out of memory: a worker's WebAssembly memory holds at most 4 GB, and a smaller --batch-size, or more --workers, gives each a smaller share of the batch; each worker also holds copies of the model (more with --optimizer adam)";

/**
 * Refuses a worker count that cannot help: more than 4 a core (the threads would only wait for each other, and each
 * takes about a second to start) or more copies of the model than half the memory holds (see defaultWorkers).
 * @throws CnnxError BAD_OPTION, naming the largest count that would do.
 */
export function checkWorkers(workers: number, parameters: readonly ParameterSpec[], optimizer: OptimizerName): void {
  const cores = availableParallelism();
  const most = Math.min(4 * cores, defaultWorkersWithin(parameters, optimizer, 4 * cores));
  if (workers <= most) return;
  throw new CnnxError(
    `--workers ${workers} is more than this machine can use: at most ${most} (4 a core, and copies of the model within half the memory); the default is one per core`,
    'BAD_OPTION',
  );
}

/** Rows of an evaluation batch: 500 (as on one thread), fewer for large inputs (at most 64 MiB of floats). */
const evaluationRows = (exampleSize: number) => Math.max(1, Math.min(500, Math.floor(2 ** 24 / exampleSize)));

export interface ReplicaGroupOptions {
  spec: ModelSpec;
  /** The backend the calling thread trains on; the replicas load the same one. */
  backend: 'wasm' | 'cpu';
  /** Replica threads, at least 2. */
  workers: number;
  /** The training batch size (the largest batch a step is given). */
  batchSize: number;
}

export interface ReplicaGroup {
  readonly workers: number;
  /** The replica threads, in replica order (to watch their resource use; terminating one fails the group). */
  readonly threads: readonly Worker[];
  /**
   * One optimizer step of `network` on `batch`, its gradients computed by the replicas; resolves to the batch's
   * mean loss and number of correct predictions. The replicas keep copies of `network` and `optimizer` and step them
   * alike, so `network` must change through this method only while they do (another `network` or `optimizer`
   * object gives them its state first).
   * @throws CnnxError TRAINING_WORKER_FAILED when a replica fails (the network keeps its weights from before).
   */
  step(
    network: Network,
    optimizer: tf.Optimizer,
    batch: Batch,
    options: { dropoutSeed: number },
  ): Promise<[number, number]>;
  /** The batch's mean loss and its gradients by parameter name, summed over the replicas, without a step. */
  gradients(
    network: Network,
    batch: Batch,
    options: { dropoutSeed: number },
  ): Promise<{ loss: number; grads: Map<string, Float32Array> }>;
  /** As evaluateAccuracy (evaluate.ts), each batch split over the replicas. */
  evaluate(
    network: Network,
    split: Split,
    options?: { resize?: number; shouldStop?: () => boolean },
  ): Promise<number | undefined>;
  /** Stops the replica threads. */
  close(): Promise<void>;
}

/** The thread's module: compiled JavaScript in the package, TypeScript (through tsx) from the sources. */
function threadEntry(): { script: URL; execArgv?: string[] } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./replica-thread.js', import.meta.url) };
  return {
    script: new URL('./replica-thread.ts', import.meta.url),
    execArgv: [...process.execArgv, '--import', new URL('../common/tsx-worker-loader.mjs', import.meta.url).href],
  };
}

/**
 * Starts `workers` replica threads for `spec` and resolves when each has its backend and network.
 * @throws CnnxError TRAINING_WORKER_FAILED when a thread cannot start.
 */
export async function startReplicas(options: ReplicaGroupOptions): Promise<ReplicaGroup> {
  const { spec, workers } = options;
  if (!Number.isInteger(workers) || workers < 2)
    throw new RangeError(`workers must be an integer >= 2, got ${workers}`);
  const [channels, height, width] = spec.input;
  const exampleSize = channels * height * width;
  const maxRows = Math.max(options.batchSize, evaluationRows(exampleSize));
  const layout = parameterLayout(parameterSpecs(spec));
  const floats = (n: number) => new SharedArrayBuffer(n * Float32Array.BYTES_PER_ELEMENT);
  const buffers = {
    weights: floats(layout.size),
    gradients: floats(layout.size * workers),
    summed: floats(layout.size),
    inputs: floats(maxRows * exampleSize),
    labels: new SharedArrayBuffer(maxRows * Int32Array.BYTES_PER_ELEMENT),
    reduce: createReduceBuffers(workers, reduceWidth(layout.slots)),
  };
  const weights = new Float32Array(buffers.weights);
  const gradients = new Float32Array(buffers.gradients);
  const summed = new Float32Array(buffers.summed);
  const inputs = new Float32Array(buffers.inputs);
  const labels = new Int32Array(buffers.labels);

  const { script, execArgv } = threadEntry();
  const threads: Worker[] = [];
  try {
    for (let index = 0; index < workers; index++) {
      const workerData: ReplicaData = { spec, backend: options.backend, index, ...buffers };
      threads.push(new Worker(script, { workerData, ...(execArgv ? { execArgv } : {}) }));
    }
  } catch (error) {
    await Promise.all(threads.map((thread) => thread.terminate()));
    throw error;
  }
  const waiting: ({ resolve: (reply: ReplicaReply) => void; reject: (error: Error) => void } | undefined)[] = [];
  let failure: CnnxError | undefined;
  let closing = false;
  const fail = (index: number, message: string) => {
    const hint = /memory|OOM|alloc/i.test(message) ? ` (${MEMORY_HINT})` : '';
    failure ??= new CnnxError(
      `training worker ${index + 1} of ${workers} failed: ${message}${hint}`,
      'TRAINING_WORKER_FAILED',
    );
    abortGroup(buffers.reduce);
    for (const waiter of waiting.splice(0)) waiter?.reject(failure);
  };
  threads.forEach((thread, index) => {
    thread.on('message', (reply: ReplicaReply) => {
      if (reply.type === 'failed' || (reply.type === 'error' && !reply.aborted)) return fail(index, reply.message);
      const waiter = waiting[index];
      waiting[index] = undefined;
      if (reply.type === 'error') waiter?.reject(new CnnxError(reply.message, 'TRAINING_WORKER_FAILED'));
      else waiter?.resolve(reply);
    });
    thread.on('error', (error) => fail(index, error.message));
    thread.on('exit', (code) => {
      if (!closing) fail(index, `its thread exited (code ${code})`);
    });
  });

  /** Sends `request` to the replicas `indices`; resolves to their replies in that order. */
  const ask = async (request: ReplicaRequest, indices: readonly number[]): Promise<ReplicaReply[]> => {
    if (failure) throw failure;
    const replies = indices.map(
      (index) =>
        new Promise<ReplicaReply>((resolve, reject) => {
          waiting[index] = { resolve, reject };
          threads[index]!.postMessage(request);
        }),
    );
    const settled = await Promise.allSettled(replies);
    if (failure) throw failure;
    const rejected = settled.find((s) => s.status === 'rejected');
    if (rejected) throw rejected.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<ReplicaReply>).value);
  };

  const ready = await Promise.allSettled(
    threads.map((_, index) => new Promise<ReplicaReply>((resolve, reject) => (waiting[index] = { resolve, reject }))),
  );
  if (failure || ready.some((r) => r.status === 'rejected')) {
    closing = true;
    await Promise.all(threads.map((thread) => thread.terminate()));
    throw failure ?? new CnnxError('training workers could not start', 'TRAINING_WORKER_FAILED');
  }

  /**
   * What each replica's copy holds: the weights of `network` and, with `optimizer`, that optimizer's state (a
   * replica holding both steps in step with them). Undefined: nothing known to be current.
   */
  const holds: ({ network: Network; optimizer?: tf.Optimizer } | undefined)[] = threads.map(() => undefined);
  const first = (count: number) => [...Array(count).keys()];

  /** Gives the first `count` replicas that lack them `network`'s weights and, if given, `optimizer`'s state. */
  const bring = async (network: Network, optimizer: tf.Optimizer | undefined, count: number) => {
    const stale = first(count).filter(
      (i) => holds[i]?.network !== network || (optimizer !== undefined && holds[i]!.optimizer !== optimizer),
    );
    if (stale.length === 0) return;
    for (const slot of layout.slots) {
      weights.set((await network.variables.get(slot.name)!.data()) as Float32Array, slot.offset);
    }
    const state =
      optimizer === undefined ? undefined : { settings: settingsOf(optimizer), ...(await optimizerState(optimizer)) };
    for (const i of stale) holds[i] = undefined;
    await ask({ type: 'load', ...(state ? { optimizer: state } : {}) }, stale);
    for (const i of stale) holds[i] = { network, optimizer };
  };
  const putBatch = (batch: Batch) => {
    if (batch.size > maxRows) throw new RangeError(`batch of ${batch.size} rows, at most ${maxRows}`);
    inputs.set(batch.xs);
    labels.set(batch.labels);
  };

  /** Runs the replicas on `batch` (stepping them at `lr`, if given); sums their losses and correct counts. */
  const train = async (network: Network, batch: Batch, dropoutSeed: number, optimizer?: tf.Optimizer) => {
    const participants = Math.min(workers, batch.size);
    await bring(network, optimizer, participants);
    putBatch(batch);
    const lr = optimizer === undefined ? undefined : learningRateOf(optimizer);
    let replies: Extract<ReplicaReply, { type: 'trained' }>[];
    try {
      replies = (await ask(
        { type: 'train', rows: batch.size, participants, dropoutSeed, ...(lr === undefined ? {} : { lr }) },
        first(participants),
      )) as Extract<ReplicaReply, { type: 'trained' }>[];
    } catch (error) {
      holds.fill(undefined); // some may have stepped, some not
      throw error;
    }
    // Replicas that sat this step out are a step behind.
    if (optimizer !== undefined) for (let i = participants; i < workers; i++) holds[i] = undefined;
    let loss = 0;
    let correct = 0;
    for (const reply of replies) {
      loss += reply.loss;
      correct += reply.correct;
    }
    return { loss, correct, participants, stats: replies[0]!.stats };
  };

  return {
    workers,
    threads,
    async step(network, optimizer, batch, { dropoutSeed }) {
      const { loss, correct, stats } = await train(network, batch, dropoutSeed, optimizer);
      // The replicas' step, from replica 0's sums, in network.trainable's order (the optimizer keeps its state so).
      const named: tf.NamedTensorMap = {};
      for (const slot of layout.slots.filter((s) => s.trainable)) {
        const variable = network.variables.get(slot.name)!;
        named[variable.name] = tf.tensor(summed.slice(slot.offset, slot.offset + slot.size), slot.shape);
      }
      optimizer.applyGradients(named);
      tf.dispose(Object.values(named));
      applyStatUpdates(stats.map(({ name, values }) => [network.variables.get(name)!, tf.tensor(values)]));
      return [loss, correct];
    },
    async gradients(network, batch, { dropoutSeed }) {
      const { loss, participants } = await train(network, batch, dropoutSeed);
      const grads = new Map<string, Float32Array>();
      for (const slot of layout.slots.filter((s) => s.trainable))
        grads.set(slot.name, sumRows(gradients, slot, participants, layout.size));
      return { loss, grads };
    },
    async evaluate(network, split, { resize, shouldStop } = {}) {
      await bring(network, undefined, workers);
      let correct = 0;
      for (const batch of iterateBatches(split, { batchSize: evaluationRows(exampleSize), resize })) {
        if (shouldStop?.()) return undefined;
        putBatch(batch);
        const participants = Math.min(workers, batch.size);
        const replies = await ask({ type: 'evaluate', rows: batch.size, participants }, first(participants));
        for (const reply of replies) correct += (reply as Extract<ReplicaReply, { type: 'evaluated' }>).correct;
      }
      return correct / split.count;
    },
    async close() {
      closing = true;
      await Promise.all(threads.map((thread) => thread.terminate()));
    },
  };
}

/** Floats one all-reduce carries at most: batch norm's two per-channel sums of its widest layer. */
function reduceWidth(slots: readonly ParameterSlot[]): number {
  return Math.max(1, ...slots.filter((s) => s.name.endsWith('.running_mean')).map((s) => 2 * s.size));
}

/** Sum of one parameter's gradient over the first `count` replica rows, row 0 first. */
function sumRows(rows: Float32Array, slot: ParameterSlot, count: number, rowSize: number): Float32Array {
  const sum = rows.slice(slot.offset, slot.offset + slot.size);
  for (let r = 1; r < count; r++) {
    const start = r * rowSize + slot.offset;
    for (let i = 0; i < slot.size; i++) sum[i]! += rows[start + i]!;
  }
  return sum;
}
