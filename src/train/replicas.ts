/**
 * Data-parallel training on every core: N replicas, the training thread (replica 0) and N - 1 replica threads
 * (replica-thread.ts), each with a copy of the network and of the optimizer on its own tfjs backend, take contiguous
 * shards of each batch. Batch and gradients travel through shared memory. Each replica writes its gradient row, and
 * once every row is written, sums all rows in replica order and takes the optimizer step on its copy
 * (replica-step.ts, the same code everywhere). Every copy does the same float operations in the same order, so all
 * stay bit-identical and weights (with the optimizer's state) travel only when a replica thread must start from
 * another state: the first step of a network, a step after another network was evaluated, and a step after a batch
 * smaller than the worker count left the thread out. Batch norm is synchronised (the whole batch's statistics) and
 * dropout masks are the whole batch's, so N replicas compute the gradients one network computes (up to float
 * rounding), and a fixed N gives the same bits every time.
 *
 * The training thread computes a shard itself rather than waiting on the threads: on N cores, N busy threads and no
 * more, so no thread is taken off a core to make room for the one that only coordinates (measured in BENCHMARKS.md:
 * a third thread that applied the steps and waited lost 10-15% of the step time on 2 cores).
 *
 * This is PyTorch DistributedDataParallel's scheme: an all-reduce of gradients, then identical optimizer steps on
 * every replica.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, codeOf, messageOf, workerEntry, type ErrorCode } from '../common/index.js';
import { iterateBatches, type Split } from '../data/index.js';
import { parameterSpecs, type ModelSpec, type OptimizerName, type ParameterSpec } from '../models/index.js';
import { abortGroup, createReduceBuffers, GroupAborted, reduceMember } from './all-reduce.js';
import type { Network, StatUpdates } from './network.js';
import { optimizerState, settingsOf, type Trainer } from './optimizer.js';
import {
  parameterLayout,
  shardOf,
  type ParameterSlot,
  type ReplicaData,
  type ReplicaReply,
  type ReplicaRequest,
} from './replica-protocol.js';
import {
  applySums,
  stepTotals,
  summedGradients,
  sumRows,
  writeShardGradients,
  type ReplicaShared,
} from './replica-step.js';
import { applyStatUpdates, countCorrect, type Batch } from './step.js';

/**
 * Copies of the parameters a worker holds at its peak, measured on AlexNet with one row a worker (a worker's
 * WebAssembly heap after a step: 1.09 GiB with sgd, 1.67 GiB with adam, of 187 MB of parameters): its weights,
 * gradients, their sums, the copies a step makes and its two shared gradient rows; momentum keeps one more copy (its
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

/**
 * Steps a caller asks for before it awaits the first of them: with two, the next step is already asked for when a
 * step ends, even while the caller counts the one before (progress, callbacks, a turn of the event loop), so that
 * it starts at once and the threads are sent it while this thread takes the step before (ReplicaGroup.step).
 */
export const STEPS_AHEAD = 2;

/** How long a replica that saw the group aborted waits for the failed replica's report (ms). */
const REPORT_WAIT_MS = 5000;

const MEMORY_HINT =
  "if it ran out of memory: a worker's WebAssembly memory holds at most 4 GB, and a smaller --batch-size, or more --workers, gives each a smaller share of the batch; each worker also holds copies of the model (more with --optimizer adam)";

/**
 * Refuses a worker count that cannot help: more than 4 a core (the threads would only wait for each other, and each
 * takes about a second to start) or more copies of the model than half the memory holds (see defaultWorkers).
 * @throws CnnxError BAD_OPTION, naming the largest count that would do.
 */
export function checkWorkers(workers: number, parameters: readonly ParameterSpec[], optimizer: OptimizerName): void {
  const most = mostWorkers(parameters, optimizer);
  if (workers <= most) return;
  throw new CnnxError(
    `--workers ${workers} is more than this machine can use: at most ${most} (4 a core, and copies of the model within half the memory); the default is one per core`,
    'BAD_OPTION',
  );
}

/** The most workers checkWorkers lets a run have on this machine. */
export function mostWorkers(parameters: readonly ParameterSpec[], optimizer: OptimizerName): number {
  return defaultWorkersWithin(parameters, optimizer, 4 * availableParallelism());
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
  /** Replicas: the training thread and `threads`. */
  readonly workers: number;
  /**
   * The replica threads, replicas 1 to N - 1 in order (to watch their resource use; terminating one fails the
   * group).
   */
  readonly threads: readonly Worker[];
  /**
   * One optimizer step of `network` on `batch` at learning rate `lr`, its gradients computed by the replicas (this
   * thread computes the first shard, blocking its event loop for that long); resolves to the batch's mean loss and
   * number of correct predictions. The replica threads keep copies of `network` and `trainer`'s optimizer and step
   * them alike, so `network` must change through this method only while they do (another `network` or optimizer
   * object gives them its state first).
   *
   * The next step may be asked for before this one resolves: steps (and every other operation) run in the order
   * asked for, and a step asked for ahead is sent to the threads as soon as every shard of the one before is
   * computed, while this thread takes that one's optimizer step (when the threads it needs took part in that one,
   * and so hold what it leaves). `batch` must not change until its step resolves.
   * @throws CnnxError TRAINING_WORKER_FAILED when a replica fails (the network keeps its weights from the last step
   * that resolved; a step asked for after a failed one fails too).
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

/**
 * Starts the `workers` - 1 replica threads for `spec` and resolves when each has its backend and network; this
 * thread is replica 0, on the backend it already uses.
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
    gradients: floats(2 * workers * layout.size),
    inputs: floats(maxRows * exampleSize),
    labels: new SharedArrayBuffer(maxRows * Int32Array.BYTES_PER_ELEMENT),
    results: new SharedArrayBuffer(4 * workers * Float64Array.BYTES_PER_ELEMENT),
    reduce: createReduceBuffers(workers, reduceWidth(layout.slots)),
  };
  const weights = new Float32Array(buffers.weights);
  const inputs = new Float32Array(buffers.inputs);
  const labels = new Int32Array(buffers.labels);
  const rows = new Float32Array(buffers.gradients);
  const results = new Float64Array(buffers.results);

  const { script, execArgv } = workerEntry('./replica-thread', import.meta.url);
  const threads: Worker[] = [];
  try {
    for (let index = 1; index < workers; index++) {
      const workerData: ReplicaData = { spec, backend: options.backend, index, ...buffers };
      threads.push(new Worker(script, { workerData, ...(execArgv ? { execArgv } : {}) }));
    }
  } catch (error) {
    await Promise.all(threads.map((thread) => thread.terminate()));
    throw error;
  }
  type Waiter = { resolve: (reply: ReplicaReply) => void; reject: (error: Error) => void };
  /** Each thread's unanswered requests, oldest first (a thread answers in the order it was asked). */
  const waiting: Waiter[][] = threads.map(() => []);
  /** Each thread's Linux thread id, where it told it: its exit shows while this thread waits blocked. */
  const threadIds: (number | undefined)[] = threads.map(() => undefined);
  const peersAlive = () => threadIds.every((tid) => tid === undefined || existsSync(`/proc/self/task/${tid}`));
  let failure: CnnxError | undefined;
  let reportFailure = () => {};
  const failed = new Promise<void>((resolve) => (reportFailure = resolve));
  let closing = false;
  const nameOf = (index: number) =>
    index === 0 ? `the training thread (worker 1 of ${workers})` : `training worker ${index + 1} of ${workers}`;
  /**
   * Fails the group for good: replica `index` failed with `message` (and the CnnxError `code` it had, which the
   * failure keeps as its `cause`).
   */
  const fail = (index: number, message: string, code?: ErrorCode) => {
    // Out of memory in words other than the guard's own (which says what to do): a hint.
    const hint = code !== 'OUT_OF_MEMORY' && /memory|OOM|alloc/i.test(message) ? ` (${MEMORY_HINT})` : '';
    failure ??= new CnnxError(
      `${nameOf(index)} failed: ${message}${hint}`,
      'TRAINING_WORKER_FAILED',
      code === undefined ? {} : { cause: new CnnxError(message, code) },
    );
    abortGroup(buffers.reduce);
    for (const queue of waiting) for (const waiter of queue.splice(0)) waiter.reject(failure);
    reportFailure();
    return failure;
  };
  threads.forEach((thread, t) => {
    thread.on('message', (reply: ReplicaReply) => {
      // A step is answered only when it fails; a thread that stopped because another failed (`aborted`) adds nothing
      // to that one's report.
      if (reply.type === 'error' && reply.aborted) return;
      if (reply.type === 'failed' || reply.type === 'error') return void fail(t + 1, reply.message, reply.code);
      if (reply.type === 'ready') threadIds[t] = reply.tid;
      waiting[t]!.shift()?.resolve(reply);
    });
    thread.on('error', (error) => fail(t + 1, error.message));
    thread.on('exit', (code) => {
      if (!closing) fail(t + 1, `its thread exited (code ${code})`);
    });
  });

  /** Sends `request` to the threads `indices` at once; resolves to their replies in that order. */
  const ask = async (request: ReplicaRequest, indices: readonly number[]): Promise<ReplicaReply[]> => {
    if (failure) throw failure;
    const replies = indices.map(
      (t) =>
        new Promise<ReplicaReply>((resolve, reject) => {
          waiting[t]!.push({ resolve, reject });
          threads[t]!.postMessage(request);
        }),
    );
    const settled = await Promise.allSettled(replies);
    if (failure) throw failure;
    return settled.map((s) => (s as PromiseFulfilledResult<ReplicaReply>).value);
  };

  const ready = await Promise.allSettled(
    threads.map((_, t) => new Promise<ReplicaReply>((resolve, reject) => waiting[t]!.push({ resolve, reject }))),
  );
  if (failure || ready.some((r) => r.status === 'rejected')) {
    closing = true;
    await Promise.all(threads.map((thread) => thread.terminate()));
    throw failure ?? new CnnxError('training workers could not start', 'TRAINING_WORKER_FAILED');
  }

  /**
   * What each thread's copy holds once the requests sent to it are done: the weights of `network` and, with
   * `optimizer`, that optimizer's state (a thread holding both steps in step with them). Undefined: nothing known
   * to be current.
   */
  const holds: ({ network: Network; optimizer?: tf.Optimizer } | undefined)[] = threads.map(() => undefined);
  /** The threads that take part with this thread when `participants` replicas share a batch. */
  const threadsOf = (participants: number) => [...Array(participants - 1).keys()];

  /** The threads of `participants` that lack `network`'s weights or, if given, `optimizer`'s state. */
  const staleThreads = (network: Network, optimizer: tf.Optimizer | undefined, participants: number) =>
    threadsOf(participants).filter(
      (t) => holds[t]?.network !== network || (optimizer !== undefined && holds[t]!.optimizer !== optimizer),
    );
  /**
   * Gives the stale threads (staleThreads) their state. Awaited only when there are some, so that a step whose
   * threads are current starts at once.
   */
  const bring = async (network: Network, optimizer: tf.Optimizer | undefined, participants: number) => {
    const stale = staleThreads(network, optimizer, participants);
    if (stale.length === 0) return;
    for (const slot of layout.slots) {
      weights.set((await network.variables.get(slot.name)!.data()) as Float32Array, slot.offset);
    }
    const state =
      optimizer === undefined ? undefined : { settings: settingsOf(optimizer), ...(await optimizerState(optimizer)) };
    for (const t of stale) holds[t] = undefined;
    await ask({ type: 'load', ...(state ? { optimizer: state } : {}) }, stale);
    for (const t of stale) holds[t] = { network, optimizer };
  };

  /** Replica 0's view of the shared rows, for `network` (whose variables it names). */
  const sharedFor = new WeakMap<Network, ReplicaShared>();
  const sharedOf = (network: Network): ReplicaShared => {
    let shared = sharedFor.get(network);
    if (shared === undefined) {
      const slotByParameter = new Map(layout.slots.map((slot) => [slot.name, slot]));
      const slotOf = new Map([...network.variables].map(([param, v]) => [v.name, slotByParameter.get(param)!]));
      shared = { network, index: 0, replicas: workers, rowSize: layout.size, slotOf, rows, results };
      sharedFor.set(network, shared);
    }
    return shared;
  };
  /** Rows [0, rows) of `batch`: replica 0's shard. */
  const head = (batch: Batch, rows: number): Batch => ({
    xs: batch.xs.subarray(0, rows * exampleSize),
    labels: batch.labels.subarray(0, rows),
    size: rows,
  });
  const putBatch = (batch: Batch) => {
    if (batch.size > maxRows) throw new RangeError(`batch of ${batch.size} rows, at most ${maxRows}`);
    inputs.set(batch.xs);
    labels.set(batch.labels);
  };

  /**
   * Operations waiting their turn, oldest first. `ahead`, for a step: sends the threads their part of it while the
   * step before it ends on this thread, when it can go ahead.
   */
  const queue: { run: () => void; ahead?: () => void }[] = [];
  let running = false;
  const runNext = () => {
    running = queue.length > 0;
    queue.shift()?.run();
  };
  /**
   * Runs operations one after another, in the order they were asked for. The next starts as the one before settles,
   * before whoever awaits that one hears of it, so that a step asked for ahead keeps the threads busy.
   */
  const inTurn = <T>(operation: () => Promise<T>, ahead?: () => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({
        ahead,
        run: () =>
          void operation().then(
            (value) => {
              runNext();
              resolve(value);
            },
            (error: unknown) => {
              runNext();
              reject(error);
            },
          ),
      });
      if (!running) runNext();
    });
  let stepCount = 0;

  /**
   * Sends the participating threads their shards of `batch` (a step's gradients and, with `lr`, its optimizer step
   * on their copies); returns the gradient set the step uses.
   */
  const sendShards = (
    batch: Batch,
    { participants, dropoutSeed, lr }: { participants: number; dropoutSeed: number; lr?: number },
  ): 0 | 1 => {
    if (failure) throw failure;
    putBatch(batch);
    const set = (stepCount++ % 2) as 0 | 1;
    const request: ReplicaRequest = {
      type: 'train',
      set,
      rows: batch.size,
      participants,
      dropoutSeed,
      ...(lr === undefined ? {} : { lr }),
    };
    for (const t of threadsOf(participants)) threads[t]!.postMessage(request);
    // A thread that sits this out falls a step behind, and may still be summing this set's rows of an earlier step:
    // before it takes part again it is given the state, a request it reads only once that earlier work is done.
    for (let t = participants - 1; t < threads.length; t++) holds[t] = undefined;
    return set;
  };

  /**
   * Once the threads were sent their shards (sendShards): this thread's shard computed here and every
   * participant's gradient row written; resolves to this thread's batch-norm statistic updates.
   */
  const shardStep = async (
    network: Network,
    batch: Batch,
    { set, participants, dropoutSeed }: { set: 0 | 1; participants: number; dropoutSeed: number },
  ): Promise<StatUpdates> => {
    if (failure) throw failure;
    const member = reduceMember(buffers.reduce, 0, participants, { peersAlive });
    const { rows: count } = shardOf(0, participants, batch.size);
    const step = { shard: head(batch, count), offset: 0, total: batch.size, set, dropoutSeed };
    let updates: StatUpdates = [];
    try {
      updates = writeShardGradients(sharedOf(network), step, member);
      await member.barrierAsync(); // every row written
      return updates;
    } catch (error) {
      tf.dispose(updates.map(([, value]) => value));
      holds.fill(undefined); // some threads may have stepped, some not
      if (!(error instanceof GroupAborted)) throw fail(0, messageOf(error), codeOf(error));
      // Another replica failed: its report (an error message, or its thread's exit) follows.
      await Promise.race([failed, new Promise((resolve) => setTimeout(resolve, REPORT_WAIT_MS).unref())]);
      throw failure ?? fail(0, 'another training worker stopped without a report');
    }
  };

  return {
    workers,
    threads,
    step(network, trainer, batch, { dropoutSeed, lr }) {
      const participants = Math.min(workers, batch.size);
      /** The gradient set, once the threads were sent their shards. */
      let sent: 0 | 1 | undefined;
      // Sent ahead only to threads that hold what the step before leaves (they took part in it).
      const ahead = () => {
        if (failure || staleThreads(network, trainer.optimizer, participants).length > 0) return;
        try {
          sent = sendShards(batch, { participants, dropoutSeed, lr });
        } catch {
          // Not sent: the step sends it in its turn, and fails there.
        }
      };
      return inTurn(async () => {
        let set = sent;
        if (set === undefined) {
          if (staleThreads(network, trainer.optimizer, participants).length > 0) {
            await bring(network, trainer.optimizer, participants);
          }
          set = sendShards(batch, { participants, dropoutSeed, lr });
        }
        const updates = await shardStep(network, batch, { set, participants, dropoutSeed });
        // Every shard is computed: the threads can go on to the next step while this thread takes this one's.
        queue[0]?.ahead?.();
        let sums: tf.NamedTensorMap = {};
        try {
          try {
            sums = summedGradients(sharedOf(network), set, participants);
          } catch (error) {
            // The weights are as the last step left them, which the checkpoint then saves.
            throw fail(0, messageOf(error), codeOf(error));
          }
          try {
            applySums(trainer, sums, lr);
            applyStatUpdates(updates.splice(0));
          } catch (error) {
            fail(0, messageOf(error), codeOf(error));
            throw new CnnxError(
              `${nameOf(0)} failed part-way through the optimizer step, which left its weights part-updated: ${messageOf(error)}`,
              'TRAINING_STEP_FAILED',
              { cause: error },
            );
          }
        } catch (error) {
          holds.fill(undefined); // the threads may have taken the step this thread could not
          throw error;
        } finally {
          tf.dispose([...Object.values(sums), ...updates.map(([, value]) => value)]);
        }
        return stepTotals(sharedOf(network), set, participants);
      }, ahead);
    },
    gradients(network, batch, { dropoutSeed }) {
      return inTurn(async () => {
        const participants = Math.min(workers, batch.size);
        await bring(network, undefined, participants);
        const set = sendShards(batch, { participants, dropoutSeed });
        tf.dispose((await shardStep(network, batch, { set, participants, dropoutSeed })).map(([, value]) => value));
        const shared = sharedOf(network);
        const grads = new Map<string, Float32Array>();
        for (const slot of layout.slots.filter((s) => s.trainable))
          grads.set(slot.name, sumRows(shared, slot, set, participants));
        return { loss: stepTotals(shared, set, participants)[0], grads };
      });
    },
    evaluate(network, split, { resize, shouldStop } = {}) {
      return inTurn(async () => {
        await bring(network, undefined, workers);
        let correct = 0;
        for (const batch of iterateBatches(split, { batchSize: evaluationRows(exampleSize), resize })) {
          if (shouldStop?.()) return undefined;
          if (failure) throw failure;
          putBatch(batch);
          const participants = Math.min(workers, batch.size);
          const replies = ask({ type: 'evaluate', rows: batch.size, participants }, threadsOf(participants));
          replies.catch(() => undefined); // awaited below
          const hits = countCorrect(network, head(batch, shardOf(0, participants, batch.size).rows));
          correct += hits.dataSync()[0]!;
          hits.dispose();
          for (const reply of await replies) correct += (reply as Extract<ReplicaReply, { type: 'evaluated' }>).correct;
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
