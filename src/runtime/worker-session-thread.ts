/**
 * The thread side of `openSessionInWorker` (worker-session.ts): opens an onnxruntime-node session with the same
 * rules as `openSession`, then runs the batches it finds in shared memory (run-slots.ts) until told to stop. ORT's
 * run is synchronous native code; here it blocks this thread only, and between runs the thread sleeps on a futex.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { CnnxError, messageOf } from '../common/index.js';
import { openSession, type ModelSession, type SessionOptions } from './node.js';
import {
  COMPLETED,
  drainChannel,
  readSlot,
  SLOTS,
  STOPPED,
  SUBMITTED,
  writeSlot,
  type ChannelMessage,
} from './run-slots.js';

export interface WorkerData {
  model: Uint8Array;
  options: SessionOptions;
  control: Int32Array;
  slots: SharedArrayBuffer[];
  port: MessagePort;
  /** This thread's nice value, where the OS has one per thread (Linux). */
  nice?: number;
}

/** Lifecycle messages on the worker's own port; runs go through shared memory. */
export type WorkerReply =
  | { type: 'ready'; ep: 'cpu' | 'cuda' | 'webgpu'; skipped: string[]; inputName: string; outputName: string }
  | { type: 'failed'; message: string; code: string }
  | { type: 'released' };

const post = (reply: WorkerReply) => parentPort!.postMessage(reply);
const codeOf = (error: unknown) => (error instanceof CnnxError ? error.code : 'INFERENCE_FAILED');

async function serve(session: ModelSession, { control, slots, port }: WorkerData): Promise<void> {
  for (let seq = 0; ; seq++) {
    let submitted: number;
    while ((submitted = Atomics.load(control, SUBMITTED)) === seq) Atomics.wait(control, SUBMITTED, seq);
    if (submitted === STOPPED) return;
    drainChannel(port, slots);
    const index = seq % SLOTS;
    try {
      const { data, dims } = readSlot(slots, index);
      const logits = await session.run(data, dims);
      writeSlot(slots, index, port, logits.data, logits.dims);
    } catch (error) {
      port.postMessage({ type: 'error', seq, message: messageOf(error), code: codeOf(error) } satisfies ChannelMessage);
    }
    Atomics.store(control, COMPLETED, seq + 1);
    Atomics.notify(control, COMPLETED);
  }
}

/**
 * Sets this thread's nice value. On Linux each thread has its own, and setpriority() takes the thread's id; other
 * systems would apply it to the whole process, so there the thread keeps the process's priority.
 */
function setThreadNice(nice: number): void {
  try {
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), nice);
  } catch {
    // Not Linux, or not permitted.
  }
}

const data = workerData as WorkerData;
if (data.nice !== undefined) setThreadNice(data.nice);
const session = await openSession(data.model, data.options).catch((error: unknown) => {
  post({ type: 'failed', message: messageOf(error), code: codeOf(error) });
});
if (session) {
  const { ep, skipped, inputName, outputName } = session;
  post({ type: 'ready', ep, skipped, inputName, outputName });
  await serve(session, data);
  await session.release();
  post({ type: 'released' });
}
