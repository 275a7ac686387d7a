/**
 * Dynamic micro-batching for one model: concurrent requests are concatenated into inference calls of
 * `preferredBatch` images or more (up to `maxBatch`; a request is never split). While batches run, the next ones
 * gather; a gathering batch goes as soon as it reaches `preferredBatch` images (as Triton's dynamic batcher does
 * with its `preferred_batch_size`), else at the end of the event loop's turn (or after `maxDelayMs`), or when a
 * running batch returns. The queue is bounded: past `maxQueue` images a request is refused at once (503 with
 * Retry-After), and a request of more than `maxQueue` images, which could never enter, with 400.
 */
import { CnnxError } from '../common/index.js';
import type { BatchTimes } from './model-stats.js';

export interface BatcherOptions {
  maxBatch: number;
  /**
   * Images at which a gathering batch goes at once, while the runtime can take it, instead of at the end of the
   * event loop's turn or `maxDelayMs` (default `maxBatch`); a queue that holds more is taken a batch of at least
   * this size at a time. A burst of requests read in one turn then becomes several batches: the runtime starts on
   * the first while the event loop still parses the rest, rather than the two taking turns (BENCHMARKS.md,
   * "Serving protocols").
   */
  preferredBatch?: number;
  maxDelayMs: number;
  /** Images waiting, at most. */
  maxQueue: number;
  /** Floats per image (C * H * W). */
  imageSize: number;
  /** Input dims after the batch dimension ([C, H, W]), e.g. [1, 28, 28] or [3, 32, 32]. */
  imageDims: number[];
  /**
   * Runs a batch. The batcher gives `data` up (a runtime on another thread may take its memory): it is either a
   * request's own array, given up at `submit`, or one the batcher filled.
   */
  run: (data: Float32Array, dims: number[]) => Promise<{ data: Float32Array; dims: number[] }>;
  /** A request not answered within this many milliseconds is rejected with 503 TIMEOUT. */
  timeoutMs?: number;
  /**
   * Batches handed to the runtime at once (default 1). A runtime on another thread can take the next batch while
   * one runs, so the event loop never waits on it.
   */
  concurrency?: number;
  /** Called with each batch's size (metrics). */
  onBatch?: (size: number) => void;
  /** Called for each request when its batch starts, with the nanoseconds it waited. */
  onQueued?: (ns: number) => void;
  /** Called after each batch with its size, its requests and the nanoseconds of each phase (statistics). */
  onExecuted?: (size: number, requests: number, times: BatchTimes) => void;
}

interface Pending {
  data: Float32Array;
  count: number;
  /** performance.now() past which the request is answered with TIMEOUT. */
  deadline: number;
  /** performance.now() when it was queued. */
  queuedAt: number;
  settled: boolean;
  resolve: (logits: Float32Array) => void;
  reject: (error: unknown) => void;
}

export class Batcher {
  private queue: Pending[] = [];
  private queued = 0;
  /** Batches handed to the runtime and not yet answered. */
  private running = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private idle: (() => void)[] = [];
  /** Requests not yet answered (queued or in the running batch), for the timeout sweep. */
  private open = new Set<Pending>();
  private sweeper: NodeJS.Timeout | undefined;

  private readonly concurrency: number;
  /** The preferred batch in use: the option, at most `maxBatch` (what the model configuration reports). */
  readonly preferredBatch: number;
  private closed = false;

  constructor(private readonly options: BatcherOptions) {
    this.concurrency = options.concurrency ?? 1;
    this.preferredBatch = Math.min(options.preferredBatch ?? options.maxBatch, options.maxBatch);
  }

  /** Images waiting for a batch. */
  get depth(): number {
    return this.queued;
  }

  /** The most images one request may bring (`maxQueue`). */
  get capacity(): number {
    return this.options.maxQueue;
  }

  /**
   * Queues `count` images (`data` holds count * imageSize floats); resolves to their logits. The caller gives
   * `data` up: it may be detached once its batch starts.
   */
  submit(data: Float32Array, count: number): Promise<Float32Array> {
    if (this.closed) {
      return Promise.reject(
        new CnnxError('this model is unloading (server stopping or a new version loaded)', 'SHUTTING_DOWN', {
          retryAfter: 1,
        }),
      );
    }
    if (count > this.options.maxQueue) {
      // No wait would let it in: a client's mistake, not a busy server.
      return Promise.reject(
        new CnnxError(
          `a request of ${count} images is more than this model's queue holds (${this.options.maxQueue}, --max-queue); send at most ${this.options.maxQueue} in one request`,
          'INVALID_INPUT',
        ),
      );
    }
    if (this.queued + count > this.options.maxQueue) {
      return Promise.reject(
        new CnnxError(`inference queue is full (${this.queued} images waiting)`, 'QUEUE_FULL', { retryAfter: 1 }),
      );
    }
    return new Promise<Float32Array>((resolve, reject) => {
      const item: Pending = {
        data,
        count,
        queuedAt: performance.now(),
        deadline: performance.now() + (this.options.timeoutMs ?? Infinity),
        settled: false,
        resolve: (logits) => this.settle(item) && resolve(logits),
        reject: (error) => this.settle(item) && reject(error),
      };
      this.queue.push(item);
      this.queued += count;
      if (this.options.timeoutMs !== undefined) {
        this.open.add(item);
        this.sweeper ??= setTimeout(() => this.sweep(), this.options.timeoutMs).unref();
      }
      if (this.running >= this.concurrency) return;
      if (this.queued >= this.preferredBatch) this.flush(false);
      else this.flushAtTurnEnd();
    });
  }

  /** Sends what is queued at the end of this turn of the event loop, or after `maxDelayMs` (once). */
  private flushAtTurnEnd(): void {
    if (this.timer !== undefined) return;
    // With no delay, requests parsed in the same turn of the event loop still share a batch.
    this.timer =
      this.options.maxDelayMs > 0
        ? setTimeout(() => this.flush(true), this.options.maxDelayMs)
        : setImmediate(() => this.flush(true));
  }

  /** Marks a request answered; false if it already was (a timed-out request whose batch finished later). */
  private settle(item: Pending): boolean {
    if (item.settled) return false;
    item.settled = true;
    this.open.delete(item);
    return true;
  }

  /**
   * One timer for all requests, not one each: answers those past their deadline with TIMEOUT (a queued one leaves
   * the queue; one in a running batch has its late answer dropped), then waits for the next deadline.
   */
  private sweep(): void {
    this.sweeper = undefined;
    const now = performance.now();
    let next = Infinity;
    for (const item of this.open) {
      if (item.deadline <= now) {
        item.reject(
          new CnnxError(`inference took longer than ${this.options.timeoutMs} ms`, 'TIMEOUT', { retryAfter: 1 }),
        );
      } else next = Math.min(next, item.deadline);
    }
    const before = this.queue.length;
    this.queue = this.queue.filter((item) => !item.settled);
    if (this.queue.length !== before) this.queued = this.queue.reduce((sum, item) => sum + item.count, 0);
    if (next !== Infinity) this.sweeper = setTimeout(() => this.sweep(), next - now).unref();
  }

  /** Refuses new requests (503), then resolves when those already queued or running are answered. */
  close(): Promise<void> {
    this.closed = true;
    return this.drained();
  }

  /** Resolves when nothing is queued or running. */
  drained(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * Starts batches while the runtime can take them: each takes requests in order until it holds `preferredBatch`
   * images, never passing `maxBatch` (but always at least one request). With `all` false (a preferred batch has just
   * formed) a remainder smaller than a preferred batch waits for the end of the turn, to gather company.
   */
  private flush(all: boolean): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.timer = undefined;
    if (this.running >= this.concurrency) return;
    if (this.queue.length === 0) {
      if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
      return;
    }
    const items: Pending[] = [];
    let images = 0;
    while (
      this.queue.length > 0 &&
      (items.length === 0 || (images < this.preferredBatch && images + this.queue[0]!.count <= this.options.maxBatch))
    ) {
      const item = this.queue.shift()!;
      items.push(item);
      images += item.count;
    }
    this.queued -= images;
    this.running++;
    void this.runBatch(items, images);
    if (this.queue.length === 0 || this.running >= this.concurrency) return;
    if (all || this.queued >= this.preferredBatch) this.flush(all);
    else this.flushAtTurnEnd();
  }

  private async runBatch(items: Pending[], images: number): Promise<void> {
    try {
      const { imageSize, imageDims, onQueued, onExecuted } = this.options;
      const started = performance.now();
      if (onQueued) for (const item of items) onQueued((started - item.queuedAt) * 1e6);
      const data = items.length === 1 ? items[0]!.data : new Float32Array(images * imageSize);
      if (items.length > 1) {
        let offset = 0;
        for (const item of items) {
          data.set(item.data, offset);
          offset += item.data.length;
        }
      }
      this.options.onBatch?.(images);
      const prepared = performance.now();
      const result = await this.options.run(data, [images, ...imageDims]);
      const ran = performance.now();
      const classes = result.dims[1]!;
      let at = 0;
      for (const item of items) {
        item.resolve(result.data.slice(at * classes, (at + item.count) * classes));
        at += item.count;
      }
      onExecuted?.(images, items.length, {
        inputNs: (prepared - started) * 1e6,
        inferNs: (ran - prepared) * 1e6,
        outputNs: (performance.now() - ran) * 1e6,
      });
    } catch (error) {
      for (const item of items) item.reject(error);
    } finally {
      this.running--;
      if (this.queue.length > 0) this.flush(true);
      else if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }
}
