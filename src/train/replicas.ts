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
 * The training loop asks for the next step before it awaits the one in flight; the replicas get it at once (two
 * batch buffers and two sum buffers alternate), so they go from one step to the next without waiting for the
 * training thread to take the step before, count it and report progress.
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
import { optimizerState, settingsOf, type Trainer } from './optimizer.js';
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
   * One optimizer step of `network` on `batch` at learning rate `lr`, its gradients computed by the replicas;
   * resolves to the batch's mean loss and number of correct predictions. The replicas keep copies of `network` and
   * `trainer`'s optimizer and step them alike, so `network` must change through this method only while they do
   * (another `network` or optimizer object gives them its state first).
   *
   * The next step may be asked for before this one resolves: when nothing has to travel first, it goes to the
   * replicas at once, so that they need not wait for this thread between steps (the steps still resolve, and are
   * applied to `network`, in order). The batch is copied before this returns.
   * @throws CnnxError TRAINING_WORKER_FAILED when a replica fails (the network keeps its weights from the last step
   * that resolved; a step sent after a failed one fails too).
   */
  step(
    network: Network,
    trainer: Trainer,
    batch: Batch,
    options: { dropoutSeed: number; lr: number },
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
  const pair = (make: () => SharedArrayBuffer) => [make(), make()] as const;
  const buffers = {
    weights: floats(layout.size),
    gradients: floats(layout.size * workers),
    summed: pair(() => floats(layout.size)),
    inputs: pair(() => floats(maxRows * exampleSize)),
    labels: pair(() => new SharedArrayBuffer(maxRows * Int32Array.BYTES_PER_ELEMENT)),
    reduce: createReduceBuffers(workers, reduceWidth(layout.slots)),
  };
  const weights = new Float32Array(buffers.weights);
  const gradients = new Float32Array(buffers.gradients);
  const summed = buffers.summed.map((buffer) => new Float32Array(buffer));
  const inputs = buffers.inputs.map((buffer) => new Float32Array(buffer));
  const labels = buffers.labels.map((buffer) => new Int32Array(buffer));

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
  type Waiter = { resolve: (reply: ReplicaReply) => void; reject: (error: Error) => void };
  /** Each replica's unanswered requests, oldest first (a replica answers in the order it was asked). */
  const waiting: Waiter[][] = threads.map(() => []);
  let failure: CnnxError | undefined;
  let closing = false;
  const fail = (index: number, message: string) => {
    const hint = /memory|OOM|alloc/i.test(message) ? ` (${MEMORY_HINT})` : '';
    failure ??= new CnnxError(
      `training worker ${index + 1} of ${workers} failed: ${message}${hint}`,
      'TRAINING_WORKER_FAILED',
    );
    abortGroup(buffers.reduce);
    for (const queue of waiting) for (const waiter of queue.splice(0)) waiter.reject(failure);
  };
  threads.forEach((thread, index) => {
    thread.on('message', (reply: ReplicaReply) => {
      if (reply.type === 'failed' || (reply.type === 'error' && !reply.aborted)) return fail(index, reply.message);
      const waiter = waiting[index]!.shift();
      if (reply.type === 'error') waiter?.reject(new CnnxError(reply.message, 'TRAINING_WORKER_FAILED'));
      else waiter?.resolve(reply);
    });
    thread.on('error', (error) => fail(index, error.message));
    thread.on('exit', (code) => {
      if (!closing) fail(index, `its thread exited (code ${code})`);
    });
  });

  /** Sends `request` to the replicas `indices` at once; resolves to their replies in that order. */
  const ask = async (request: ReplicaRequest, indices: readonly number[]): Promise<ReplicaReply[]> => {
    if (failure) throw failure;
    const replies = indices.map(
      (index) =>
        new Promise<ReplicaReply>((resolve, reject) => {
          waiting[index]!.push({ resolve, reject });
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
    threads.map(
      (_, index) => new Promise<ReplicaReply>((resolve, reject) => waiting[index]!.push({ resolve, reject })),
    ),
  );
  if (failure || ready.some((r) => r.status === 'rejected')) {
    closing = true;
    await Promise.all(threads.map((thread) => thread.terminate()));
    throw failure ?? new CnnxError('training workers could not start', 'TRAINING_WORKER_FAILED');
  }

  /**
   * What each replica's copy holds once the operations sent to it are done: the weights of `network` and, with
   * `optimizer`, that optimizer's state (a replica holding both steps in step with them). Undefined: nothing known
   * to be current.
   */
  const holds: ({ network: Network; optimizer?: tf.Optimizer } | undefined)[] = threads.map(() => undefined);
  const first = (count: number) => [...Array(count).keys()];
  const holdsAll = (network: Network, optimizer: tf.Optimizer | undefined, count: number) =>
    first(count).every(
      (i) => holds[i]?.network === network && (optimizer === undefined || holds[i]!.optimizer === optimizer),
    );

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
  const putBatch = (batch: Batch, buffer: 0 | 1) => {
    if (batch.size > maxRows) throw new RangeError(`batch of ${batch.size} rows, at most ${maxRows}`);
    inputs[buffer]!.set(batch.xs);
    labels[buffer]!.set(batch.labels);
  };

  /**
   * Operations run one after another, except that a training step may be sent while the step before it runs (see
   * `step`); either way they settle in the order they were submitted. `tail`: the last operation submitted,
   * settled (it never rejects); `last`: that operation's own promise and, for a step, what it steps.
   */
  interface StepEntry {
    network: Network;
    optimizer: tf.Optimizer;
    participants: number;
    /** Its request has gone to the replicas. */
    sent: boolean;
  }
  let tail: Promise<unknown> = Promise.resolve();
  let last: { done: Promise<unknown>; step?: StepEntry } = { done: tail };
  /** Operations submitted and not yet settled. */
  let unsettled = 0;
  let submittedSteps = 0;
  /** Makes `done` the last operation submitted. */
  const track = <T>(done: Promise<T>, step?: StepEntry): Promise<T> => {
    unsettled++;
    const settle = () => void unsettled--;
    done.then(settle, settle);
    tail = done.catch(() => undefined);
    last = { done, step };
    return done;
  };
  /** Runs `operation` once every operation submitted before it has settled. */
  const inTurn = <T>(operation: () => Promise<T>, step?: StepEntry): Promise<T> => track(tail.then(operation), step);

  /** Sends the replicas `batch` (in `buffer`), stepping them at `lr` if given; resolves to their replies. */
  const sendTrain = (batch: Batch, buffer: 0 | 1, dropoutSeed: number, lr?: number) => {
    putBatch(batch, buffer);
    const participants = Math.min(workers, batch.size);
    return ask(
      { type: 'train', buffer, rows: batch.size, participants, dropoutSeed, ...(lr === undefined ? {} : { lr }) },
      first(participants),
    ) as Promise<Extract<ReplicaReply, { type: 'trained' }>[]>;
  };
  /** The replies' summed losses and correct counts. */
  const totals = (replies: readonly Extract<ReplicaReply, { type: 'trained' }>[]): [number, number] => [
    replies.reduce((sum, reply) => sum + reply.loss, 0),
    replies.reduce((sum, reply) => sum + reply.correct, 0),
  ];

  return {
    workers,
    threads,
    step(network, trainer, batch, { dropoutSeed, lr }) {
      const { optimizer } = trainer;
      const participants = Math.min(workers, batch.size);
      const buffer = (submittedSteps++ % 2) as 0 | 1;
      /** The replies (sent now, or after the operations before), then the training thread's own step. */
      const finish = async (replies: ReturnType<typeof sendTrain>) => {
        let stepped: Extract<ReplicaReply, { type: 'trained' }>[];
        try {
          stepped = await replies;
        } catch (error) {
          holds.fill(undefined); // some may have stepped, some not
          throw error;
        }
        // Replicas that sat this step out are a step behind.
        for (let i = participants; i < workers; i++) holds[i] = undefined;
        // The replicas' step, from replica 0's sums, in network.trainable's order (the optimizer keeps its state so).
        trainer.setLearningRate(lr);
        const named: tf.NamedTensorMap = {};
        for (const slot of layout.slots.filter((s) => s.trainable)) {
          const variable = network.variables.get(slot.name)!;
          named[variable.name] = tf.tensor(summed[buffer]!.slice(slot.offset, slot.offset + slot.size), slot.shape);
        }
        optimizer.applyGradients(named);
        tf.dispose(Object.values(named));
        const { stats } = stepped[0]!;
        applyStatUpdates(stats.map(({ name, values }) => [network.variables.get(name)!, tf.tensor(values)]));
        return totals(stepped);
      };
      // Nothing runs, or only the step before, which has been sent and which every replica took part in (so the
      // other buffer is free): when the replicas hold this network and optimizer, this step goes to them now, so
      // that they go on to it without waiting for this thread, which applies the steps in order.
      const previous = last.step;
      const free =
        unsettled === 0 ||
        (unsettled === 1 &&
          previous !== undefined &&
          previous.sent &&
          previous.participants === workers &&
          previous.network === network &&
          previous.optimizer === optimizer);
      const entry: StepEntry = { network, optimizer, participants, sent: false };
      const send = () => {
        entry.sent = true;
        return sendTrain(batch, buffer, dropoutSeed, lr);
      };
      if (!free || !holdsAll(network, optimizer, participants)) {
        return inTurn(async () => {
          await bring(network, optimizer, participants);
          return finish(send());
        }, entry);
      }
      const before = unsettled === 0 ? undefined : last.done;
      const replies = send();
      replies.catch(() => undefined); // awaited after the step before
      return track(
        (async () => {
          await before?.catch((error: unknown) => {
            holds.fill(undefined); // the replicas went on without this thread
            throw error;
          });
          return finish(replies);
        })(),
        entry,
      );
    },
    gradients(network, batch, { dropoutSeed }) {
      return inTurn(async () => {
        await bring(network, undefined, Math.min(workers, batch.size));
        const replies = await sendTrain(batch, 0, dropoutSeed);
        const participants = replies.length;
        const grads = new Map<string, Float32Array>();
        for (const slot of layout.slots.filter((s) => s.trainable))
          grads.set(slot.name, sumRows(gradients, slot, participants, layout.size));
        return { loss: totals(replies)[0], grads };
      });
    },
    evaluate(network, split, { resize, shouldStop } = {}) {
      return inTurn(async () => {
        await bring(network, undefined, workers);
        let correct = 0;
        for (const batch of iterateBatches(split, { batchSize: evaluationRows(exampleSize), resize })) {
          if (shouldStop?.()) return undefined;
          putBatch(batch, 0);
          const participants = Math.min(workers, batch.size);
          const replies = await ask(
            { type: 'evaluate', buffer: 0, rows: batch.size, participants },
            first(participants),
          );
          for (const reply of replies) correct += (reply as Extract<ReplicaReply, { type: 'evaluated' }>).correct;
        }
        return correct / split.count;
      });
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
