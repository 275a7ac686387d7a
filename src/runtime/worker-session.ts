/**
 * An onnxruntime-node session on its own thread. onnxruntime-node runs inference synchronously on the calling
 * thread; a server that did so on its event loop could not parse the next requests meanwhile. With the session
 * on a worker thread, HTTP work and inference overlap on two cores.
 */
import { Worker } from 'node:worker_threads';
import { CnnxError, ensureVulkanRuntimeDir, messageOf, spansWholeBuffer, workerEntry } from '../common/index.js';
import type { NodeSession, SessionOptions } from './node.js';
import type { Logits } from './session.js';
import type { WorkerData, WorkerReply, WorkerRequest } from './worker-session-thread.js';

export interface WorkerSessionOptions extends SessionOptions {
  /**
   * The inference thread's nice value (Linux; 0-19 lower its priority). A server sets 5 so that on a busy machine
   * its HTTP thread, which every request waits on, runs first; where cores are free it changes nothing.
   */
  nice?: number;
}

/**
 * Opens a session like `openSession`, on a worker thread; `run` and `release` message it.
 * @throws CnnxError as `openSession` does; WORKER_EXITED if the thread dies (then also from every later run).
 */
export async function openSessionInWorker(
  model: Uint8Array,
  { nice, ...options }: WorkerSessionOptions = {},
): Promise<NodeSession> {
  if (options.ep !== 'cpu') ensureVulkanRuntimeDir(); // here: the worker's environment is a copy
  const workerData: WorkerData = { model, options, nice };
  const { script, execArgv } = workerEntry('./worker-session-thread', import.meta.url);
  const worker = new Worker(script, { workerData, ...(execArgv ? { execArgv } : {}) });
  const pending = new Map<number, { resolve: (logits: Logits) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  let exited: Error | undefined;
  /** Set by release(): later runs are refused; those already asked for still run. */
  let stopping: Error | undefined;
  let idle: (() => void) | undefined;
  let released: (() => void) | undefined;
  let releasing: Promise<void> | undefined;

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
      await worker.terminate();
      throw error;
    })
    .finally(() => {
      // Only these: the Worker keeps listeners of its own (its message port starts and stops through them).
      worker.off('message', opening.onMessage).off('error', opening.onError).off('exit', opening.onExit);
    });

  worker.on('message', (reply: WorkerReply) => {
    if (reply.type === 'released') return released?.();
    if (reply.type !== 'result' && reply.type !== 'error') return;
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.type === 'result') waiter?.resolve({ data: reply.data, dims: reply.dims });
    else waiter?.reject(new CnnxError(reply.message, reply.code));
    if (pending.size === 0) idle?.();
  });
  // A thread that dies (out of memory, a native fault) fails what it held and every later run, clearly.
  const fail = (error: Error) => {
    exited = new CnnxError(`inference thread stopped: ${error.message}`, 'WORKER_EXITED');
    for (const waiter of pending.values()) waiter.reject(exited);
    pending.clear();
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
    run(data, dims, options) {
      if (exited ?? stopping) return Promise.reject(exited ?? stopping);
      const id = nextId++;
      return new Promise<Logits>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        const request: WorkerRequest = { type: 'run', id, data, dims };
        // Moved, not copied twice (serialised, then deserialised into new memory there); and this thread's heap
        // sees the memory go at once instead of at its next full collection (BENCHMARKS.md, "Serving protocols").
        try {
          worker.postMessage(request, options?.transfer && spansWholeBuffer(data) ? [data.buffer as ArrayBuffer] : []);
        } catch (error) {
          // Not sent (a detached buffer, a closed port): nothing will answer it.
          pending.delete(id);
          if (pending.size === 0) idle?.();
          reject(
            new CnnxError(
              `the input could not be sent to the inference thread: ${messageOf(error)}`,
              'INFERENCE_FAILED',
            ),
          );
        }
      });
    },
    release() {
      releasing ??= (async () => {
        stopping = new CnnxError('the inference session was released', 'SESSION_RELEASED');
        if (!exited && pending.size > 0) await new Promise<void>((resolve) => (idle = resolve));
        if (!exited) {
          const done = new Promise<void>((resolve) => (released = resolve));
          worker.postMessage({ type: 'release' } satisfies WorkerRequest);
          await done;
        }
        await worker.terminate();
      })();
      return releasing;
    },
  };
}
