/**
 * An onnxruntime-node session on its own thread. onnxruntime-node runs inference synchronously on the calling
 * thread; a server that did so on its event loop could not parse the next requests meanwhile. With the session
 * on a worker thread, HTTP work and inference overlap on two cores (BENCHMARKS.md, serving). Batches and logits
 * travel through shared memory with Atomics, not messages (run-slots.ts says why).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { CnnxError, ensureVulkanRuntimeDir, messageOf } from '../common/index.js';
import type { Logits, ModelSession, SessionOptions } from './node.js';
import {
  COMPLETED,
  createControl,
  createSlot,
  drainChannel,
  readSlot,
  SLOTS,
  STOPPED,
  SUBMITTED,
  writeSlot,
} from './run-slots.js';
import type { WorkerData, WorkerReply } from './worker-session-thread.js';

interface TsxManifest {
  exports: { './esm/api': { import: { default: string } } };
}

/**
 * The worker's entry. From source the worker is TypeScript: a small module registers tsx's loader (resolved from
 * here, not the cwd) and then imports it, as bin/cnnx.js does for the main thread.
 */
function workerEntry(): URL {
  const script = new URL(
    import.meta.url.endsWith('.ts') ? './worker-session-thread.ts' : './worker-session-thread.js',
    import.meta.url,
  );
  if (!script.pathname.endsWith('.ts')) return script;
  // tsx's ESM entry of its API, from its package exports (require.resolve would give the CommonJS one).
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const exports = (JSON.parse(readFileSync(manifest, 'utf8')) as TsxManifest).exports['./esm/api'].import.default;
  const tsx = pathToFileURL(join(dirname(manifest), exports)).href;
  const bootstrap = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(script.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`);
}

/** A first slot size that holds a typical MNIST batch; slots grow when a batch needs more. */
const INITIAL_SLOT_FLOATS = 64 * 28 * 28;

interface Job {
  data: Float32Array;
  dims: number[];
  resolve: (logits: Logits) => void;
  reject: (error: Error) => void;
}

export interface WorkerSessionOptions extends SessionOptions {
  /**
   * The inference thread's nice value (Linux; 0-19 lower its priority). A server sets 5 so that on a busy machine
   * its HTTP thread, which every request waits on, runs first; where cores are free it changes nothing.
   */
  nice?: number;
}

/**
 * Opens a session like `openSession`, on a worker thread. Batches go through shared memory (run-slots.ts): up to
 * `SLOTS` at once are with the thread, so it starts the next as soon as one is done; more wait here.
 */
export async function openSessionInWorker(
  model: Uint8Array,
  { nice, ...options }: WorkerSessionOptions = {},
): Promise<ModelSession> {
  if (options.ep !== 'cpu') ensureVulkanRuntimeDir(); // here: the worker's environment is a copy
  const control = createControl();
  const slots = Array.from({ length: SLOTS }, () => createSlot(INITIAL_SLOT_FLOATS));
  const { port1: port, port2 } = new MessageChannel();
  const workerData: WorkerData = { model, options, control, slots, port: port2, nice };
  const worker = new Worker(workerEntry(), { workerData, transferList: [port2] });

  let opening: { onMessage: (reply: WorkerReply) => void; onError: (error: Error) => void; onExit: () => void };
  const ready = await new Promise<Extract<WorkerReply, { type: 'ready' }>>((resolve, reject) => {
    opening = {
      onMessage: (reply) => {
        if (reply.type === 'ready') resolve(reply);
        else if (reply.type === 'failed') reject(new CnnxError(reply.message, reply.code));
      },
      onError: reject,
      onExit: () => reject(new CnnxError('inference thread exited while opening the model', 'WORKER_EXITED')),
    };
    worker.on('message', opening.onMessage).on('error', opening.onError).on('exit', opening.onExit);
  })
    .catch(async (error: unknown) => {
      port.close();
      await worker.terminate();
      throw error;
    })
    .finally(() => {
      // Only these: the Worker keeps listeners of its own (its message port starts and stops through them).
      worker.off('message', opening.onMessage).off('error', opening.onError).off('exit', opening.onExit);
    });

  const waiting: Job[] = [];
  /** Jobs in slots, oldest first: run number `completed` is the first. */
  const running: Job[] = [];
  const errors = new Map<number, { message: string; code: string }>();
  let submitted = 0;
  let completed = 0;
  let watching = false;
  let exited: Error | undefined;
  /** Set by release(): later runs are refused; those already asked for still run. */
  let stopping: Error | undefined;
  let idle: (() => void) | undefined;
  let released: (() => void) | undefined;
  let releasing: Promise<void> | undefined;

  const submit = () => {
    while (running.length < SLOTS && waiting.length > 0) {
      const job = waiting.shift()!;
      try {
        writeSlot(slots, submitted % SLOTS, port, job.data, job.dims);
      } catch (error) {
        job.reject(new CnnxError(messageOf(error), 'INFERENCE_FAILED'));
        continue;
      }
      running.push(job);
      Atomics.store(control, SUBMITTED, ++submitted);
      Atomics.notify(control, SUBMITTED);
    }
    watch();
  };
  // One waiter at a time on the completed count; it resolves on the event loop when the thread notifies.
  const watch = () => {
    if (watching || exited || running.length === 0) return;
    watching = true;
    const wait = Atomics.waitAsync(control, COMPLETED, completed);
    void (wait.async ? wait.value : Promise.resolve()).then(collect);
  };
  const collect = () => {
    watching = false;
    if (exited) return;
    const done = Atomics.load(control, COMPLETED);
    drainChannel(port, slots, errors);
    for (; completed < done; completed++) {
      const job = running.shift()!;
      const error = errors.get(completed);
      errors.delete(completed);
      if (error) job.reject(new CnnxError(error.message, error.code));
      else job.resolve(readSlot(slots, completed % SLOTS));
    }
    submit();
    if (running.length === 0 && waiting.length === 0) idle?.();
  };

  worker.on('message', (reply: WorkerReply) => reply.type === 'released' && released?.());
  // A thread that dies (out of memory, a native fault) fails what it held and every later run, clearly.
  const fail = (error: Error) => {
    exited = new CnnxError(`inference thread stopped: ${error.message}`, 'WORKER_EXITED');
    for (const job of [...running.splice(0), ...waiting.splice(0)]) job.reject(exited);
    idle?.();
    released?.();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));

  return {
    ep: ready.ep,
    skipped: ready.skipped,
    inputName: ready.inputName,
    outputName: ready.outputName,
    run(data, dims) {
      if (exited ?? stopping) return Promise.reject(exited ?? stopping);
      return new Promise<Logits>((resolve, reject) => {
        waiting.push({ data, dims, resolve, reject });
        submit();
      });
    },
    release() {
      releasing ??= (async () => {
        stopping = new CnnxError('the inference session was released', 'SESSION_RELEASED');
        if (!exited && (running.length > 0 || waiting.length > 0)) {
          await new Promise<void>((resolve) => (idle = resolve));
        }
        if (!exited) {
          const done = new Promise<void>((resolve) => (released = resolve));
          Atomics.store(control, SUBMITTED, STOPPED);
          Atomics.notify(control, SUBMITTED);
          await done;
        }
        port.close();
        await worker.terminate();
      })();
      return releasing;
    },
  };
}
