/**
 * The thread side of `openSessionInWorker` (worker-session.ts): opens an onnxruntime-node session with the same
 * rules as `openSession` and answers run requests. ORT's run is synchronous native code; here it blocks this thread
 * only.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { CnnxError, messageOf, type ErrorCode } from '../common/index.js';
import { openSession, type SessionOptions } from './node.js';
import type { SkippedProvider } from './session.js';

export interface WorkerData {
  model: Uint8Array;
  options: SessionOptions;
  /** This thread's nice value, where the OS has one per thread (Linux). */
  nice?: number;
}

export type WorkerRequest = { type: 'run'; id: number; data: Float32Array; dims: number[] } | { type: 'release' };

export type WorkerReply =
  | { type: 'ready'; ep: 'cpu' | 'cuda' | 'webgpu'; skipped: SkippedProvider[]; inputName: string; outputName: string }
  | { type: 'failed'; message: string; code: ErrorCode }
  | { type: 'result'; id: number; data: Float32Array; dims: number[] }
  | { type: 'error'; id: number; message: string; code: ErrorCode }
  | { type: 'released' };

const port = parentPort!;
const post = (reply: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);
const codeOf = (error: unknown) => (error instanceof CnnxError ? error.code : 'INFERENCE_FAILED');

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

const { model, options, nice } = workerData as WorkerData;
// Before the session opens: ONNX Runtime's own threads, started with it, inherit the value.
if (nice !== undefined) setThreadNice(nice);
try {
  const session = await openSession(model, options);
  port.on('message', (request: WorkerRequest) => {
    if (request.type === 'release') {
      void session.release().finally(() => post({ type: 'released' }));
      return;
    }
    session
      .run(request.data, request.dims)
      .then(({ data, dims }) => post({ type: 'result', id: request.id, data, dims }))
      .catch((error: unknown) =>
        post({ type: 'error', id: request.id, message: messageOf(error), code: codeOf(error) }),
      );
  });
  const { ep, skipped, inputName, outputName } = session;
  post({ type: 'ready', ep, skipped, inputName, outputName });
} catch (error) {
  post({ type: 'failed', message: messageOf(error), code: codeOf(error) });
}
