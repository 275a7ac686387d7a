/**
 * The thread side of `openSessionInWorker` (worker-session.ts): opens an onnxruntime-node session with the same
 * rules as `openSession` and answers run requests. ORT's run is synchronous native code; here it blocks this thread
 * only.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CnnxError, messageOf } from '../common/index.js';
import { openSession, type SessionOptions } from './node.js';

export type WorkerRequest = { type: 'run'; id: number; data: Float32Array; dims: number[] } | { type: 'release' };

export type WorkerReply =
  | { type: 'ready'; ep: 'cpu' | 'cuda' | 'webgpu'; skipped: string[]; inputName: string; outputName: string }
  | { type: 'failed'; message: string; code: string }
  | { type: 'result'; id: number; data: Float32Array; dims: number[] }
  | { type: 'error'; id: number; message: string; code: string }
  | { type: 'released' };

const port = parentPort!;
const post = (reply: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);
const codeOf = (error: unknown) => (error instanceof CnnxError ? error.code : 'INFERENCE_FAILED');

const { model, options } = workerData as { model: Uint8Array; options: SessionOptions };
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
