/**
 * Large JSON infer bodies read on a worker thread (piscina), so that the event loop goes on answering health checks
 * and other requests meanwhile: on the event loop, a dozen 2-6 MB bodies at once held health checks for up to half a
 * second (BENCHMARKS.md, `bench/health-under-load.ts`). Small bodies (under OFF_LOOP_BYTES) are read on the event
 * loop, where handing them to a thread would cost more than it saves.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { CnnxError, spansWholeBuffer, workerEntry } from '../common/index.js';
import { JsonTensor, RefusedData } from './inference.js';
import type { JsonPart, JsonPartRead } from './json-worker.js';
import { parseJson, readJsonPart } from './routes/infer-json.js';

/** JSON parts of this many bytes or more are read on the pool's thread (1 MiB: about 450 MNIST images as JSON). */
export const OFF_LOOP_BYTES = 2 ** 20;

export class JsonPool {
  readonly #pool: Piscina<JsonPart, JsonPartRead>;

  /** `threads`: default half the cores, at least one; started on the first large body, stopped after a minute idle. */
  constructor(options: { threads?: number } = {}) {
    const threads = options.threads ?? Math.max(1, Math.floor(availableParallelism() / 2));
    const { script, execArgv } = workerEntry('./json-worker', import.meta.url);
    this.#pool = new Piscina({
      filename: script.href,
      ...(execArgv ? { execArgv } : {}),
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 60_000,
    });
  }

  /**
   * A JSON part read: a whole JSON `body` by readJsonPart, the `header` before binary tensors (which carries no data)
   * by parseJson; on a pool thread for OFF_LOOP_BYTES or more, else here. Bytes the caller can `give` (nothing reads
   * them after) move to the thread when they fill memory of their own; others are copied. The first input's data, when the thread read it, is a JsonTensor,
   * or a RefusedData that valuesFromJson refuses with the message the thread found.
   * @throws CnnxError INVALID_JSON as parseJson
   */
  async read(bytes: Buffer, part: JsonPart['part'], { give = false } = {}): Promise<unknown> {
    if (bytes.length < OFF_LOOP_BYTES) return part === 'body' ? readJsonPart(bytes) : parseJson(bytes);
    const own = give && spansWholeBuffer(bytes) ? bytes : new Uint8Array(bytes);
    const read = await this.#pool.run({ bytes: own, part }, { transferList: [own.buffer as ArrayBuffer] });
    if ('error' in read) throw new CnnxError(read.error.message, read.error.code);
    const { request, data } = read;
    if (data !== undefined) {
      const input = (request as { inputs: Record<string, unknown>[] }).inputs[0]!;
      input.data = 'refused' in data ? new RefusedData(data.refused) : new JsonTensor(data.values, data.depth);
    }
    return request;
  }

  /** Stops the threads once the bodies already given are read. */
  async close(): Promise<void> {
    await this.#pool.close();
  }
}
