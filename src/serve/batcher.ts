/**
 * Dynamic micro-batching for one model: concurrent requests are concatenated into one inference call of up to
 * `maxBatch` images. While a batch runs, the next one gathers; an idle batcher waits at most `maxDelayMs` for
 * company (0: only for the requests already read in the same turn of the event loop). The queue is bounded: past `maxQueue` images a request is refused at once (503 with Retry-After).
 */
import { HttpError } from './errors.js';

export interface BatcherOptions {
  maxBatch: number;
  maxDelayMs: number;
  /** Images waiting, at most. */
  maxQueue: number;
  /** Floats per image (1 * H * W). */
  imageSize: number;
  /** Input dims after the batch dimension, e.g. [1, 28, 28]. */
  imageDims: number[];
  run: (data: Float32Array, dims: number[]) => Promise<{ data: Float32Array; dims: number[] }>;
  /** A request not answered within this many milliseconds is rejected with 503 TIMEOUT. */
  timeoutMs?: number;
  /** Called with each batch's size (metrics). */
  onBatch?: (size: number) => void;
}

interface Pending {
  data: Float32Array;
  count: number;
  resolve: (logits: Float32Array) => void;
  reject: (error: unknown) => void;
}

export class Batcher {
  private queue: Pending[] = [];
  private queued = 0;
  private running = false;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private idle: (() => void)[] = [];

  constructor(private readonly options: BatcherOptions) {}

  /** Images waiting for a batch. */
  get depth(): number {
    return this.queued;
  }

  /** Queues `count` images (`data` holds count * imageSize floats); resolves to their logits. */
  submit(data: Float32Array, count: number): Promise<Float32Array> {
    if (this.queued + count > this.options.maxQueue) {
      return Promise.reject(new HttpError('QUEUE_FULL', `inference queue is full (${this.queued} images waiting)`, 1));
    }
    const answer = new Promise<Float32Array>((resolve, reject) => {
      this.queue.push({ data, count, resolve, reject });
      this.queued += count;
      if (this.running) return;
      if (this.queued >= this.options.maxBatch) this.flush();
      else if (this.timer === undefined) {
        // With no delay, requests parsed in the same turn of the event loop still share a batch.
        this.timer =
          this.options.maxDelayMs > 0
            ? setTimeout(() => this.flush(), this.options.maxDelayMs)
            : setImmediate(() => this.flush());
      }
    });
    const timeoutMs = this.options.timeoutMs;
    if (timeoutMs === undefined) return answer;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HttpError('TIMEOUT', `inference took longer than ${timeoutMs} ms`, 1)),
        timeoutMs,
      );
    });
    return Promise.race([answer, expired]).finally(() => clearTimeout(timer));
  }

  /** Resolves when nothing is queued or running. */
  drained(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.timer = undefined;
    if (this.running || this.queue.length === 0) return;
    const items: Pending[] = [];
    let images = 0;
    while (this.queue.length > 0 && (items.length === 0 || images + this.queue[0]!.count <= this.options.maxBatch)) {
      const item = this.queue.shift()!;
      items.push(item);
      images += item.count;
    }
    this.queued -= images;
    this.running = true;
    void this.runBatch(items, images);
  }

  private async runBatch(items: Pending[], images: number): Promise<void> {
    try {
      const { imageSize, imageDims } = this.options;
      const data = items.length === 1 ? items[0]!.data : new Float32Array(images * imageSize);
      if (items.length > 1) {
        let offset = 0;
        for (const item of items) {
          data.set(item.data, offset);
          offset += item.data.length;
        }
      }
      this.options.onBatch?.(images);
      const result = await this.options.run(data, [images, ...imageDims]);
      const classes = result.dims[1]!;
      let at = 0;
      for (const item of items) {
        item.resolve(result.data.slice(at * classes, (at + item.count) * classes));
        at += item.count;
      }
    } catch (error) {
      for (const item of items) item.reject(error);
    } finally {
      this.running = false;
      if (this.queue.length > 0) this.flush();
      else for (const resolve of this.idle.splice(0)) resolve();
    }
  }
}
