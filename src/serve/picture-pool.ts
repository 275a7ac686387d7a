/**
 * Picture preprocessing on a pool of worker threads (piscina), so that a large photo never holds the event loop:
 * health checks and other requests are answered while pictures are prepared. Decoding happens before, in sharp's
 * own threads; the pool gets the decoded pixels (at most the preprocessing's working size) and returns model inputs.
 * The queue is bounded: when it is full, a request is refused at once with 503 QUEUE_FULL and Retry-After.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { CnnxError, workerEntry } from '../common/index.js';
import type { DigitReading, PixelImage, Prepared, Procedure } from '../preprocess/index.js';
import type { PictureTask } from './picture-worker.js';

export interface PicturePoolOptions {
  /** Threads; default half the cores, at least one (inference and HTTP need the rest). */
  threads?: number;
  /** Pictures waiting for a thread before new ones are refused with 503; default 16 per thread. */
  maxQueue?: number;
}

export class PicturePool {
  readonly #pool: Piscina<PictureTask, Prepared | DigitReading>;

  constructor(options: PicturePoolOptions = {}) {
    const threads = options.threads ?? Math.max(1, Math.floor(availableParallelism() / 2));
    const { script, execArgv } = workerEntry('./picture-worker', import.meta.url);
    this.#pool = new Piscina({
      filename: script.href,
      ...(execArgv ? { execArgv } : {}),
      minThreads: threads,
      maxThreads: threads,
      maxQueue: options.maxQueue ?? 16 * threads,
      idleTimeout: Infinity,
    });
  }

  /**
   * `prepareInput` on a pool thread: `input` is the model's [C, H, W] (used by the `resize` procedure; `mnist` and
   * `fit` give 28x28).
   * @throws CnnxError QUEUE_FULL when the pool's queue is full
   */
  async prepareInput(
    image: PixelImage,
    procedure: Procedure,
    input: readonly [number, number, number],
  ): Promise<Prepared> {
    return (await this.#run({ kind: 'classify', image, procedure, input })) as Prepared;
  }

  /**
   * `segmentDigits` on a pool thread.
   * @throws CnnxError QUEUE_FULL when the pool's queue is full
   */
  async segmentDigits(image: PixelImage): Promise<DigitReading> {
    return (await this.#run({ kind: 'read-digits', image })) as DigitReading;
  }

  async #run(task: PictureTask): Promise<Prepared | DigitReading> {
    if (this.#pool.queueSize >= this.#pool.options.maxQueue) {
      throw new CnnxError(
        `picture queue is full (${this.#pool.queueSize} pictures waiting); retry shortly`,
        'QUEUE_FULL',
        { retryAfter: 1 },
      );
    }
    // A copy of its own to transfer: decoders hand out views of shared, pooled memory.
    const { data } = task.image;
    const pixels = ArrayBuffer.isView(data) ? new Uint8Array(data as Uint8Array) : Uint8Array.from(data);
    return this.#pool.run({ ...task, image: { ...task.image, data: pixels } }, { transferList: [pixels.buffer] });
  }

  /** Stops the threads once the pictures already given are prepared. */
  async close(): Promise<void> {
    await this.#pool.close();
  }
}
