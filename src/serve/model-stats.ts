/**
 * Per-model statistics in the shape of Triton's statistics extension (`GET /v2/models/{name}/stats`): request
 * counts and cumulative nanoseconds for successes, failures, time queued and the compute phases of each request's
 * batch, and per batch size the time each call spent preparing the batch (compute_input), running it
 * (compute_infer) and splitting the answers (compute_output).
 * Counts survive a model's reload: they describe the name a client calls.
 */

/** A count of events and their cumulative duration in nanoseconds. */
interface Duration {
  count: number;
  ns: number;
}

const zero = (): Duration => ({ count: 0, ns: 0 });
const add = (duration: Duration, ns: number) => {
  duration.count++;
  duration.ns += Math.round(ns);
};

/** Nanoseconds spent on one batch, phase by phase. */
export interface BatchTimes {
  inputNs: number;
  inferNs: number;
  outputNs: number;
}

export class ModelStats {
  /** Milliseconds since the epoch of the last inference; 0 before the first. */
  private lastInference = 0;
  private inferenceCount = 0;
  private executionCount = 0;
  private readonly success = zero();
  private readonly fail = zero();
  private readonly queue = zero();
  private readonly computeInput = zero();
  private readonly computeInfer = zero();
  private readonly computeOutput = zero();
  private readonly batches = new Map<number, { input: Duration; infer: Duration; output: Duration }>();

  /** A request of `images` answered after `ns` nanoseconds. */
  succeeded(images: number, ns: number): void {
    this.inferenceCount += images;
    this.lastInference = Date.now();
    add(this.success, ns);
  }

  /** A request refused or failed after `ns` nanoseconds. */
  failed(ns: number): void {
    add(this.fail, ns);
  }

  /** A request that waited `ns` nanoseconds for its batch to start. */
  queued(ns: number): void {
    add(this.queue, ns);
  }

  /**
   * One inference call of `size` images for `requests` requests. As Triton counts them, the batch statistics are per
   * call, and the inference statistics' compute times per request, each request counting its batch's times (so
   * that compute_infer.ns / compute_infer.count is the time a request's inference took, as perf_analyzer reads it).
   */
  executed(size: number, requests: number, times: BatchTimes): void {
    this.executionCount++;
    for (let i = 0; i < requests; i++) {
      add(this.computeInput, times.inputNs);
      add(this.computeInfer, times.inferNs);
      add(this.computeOutput, times.outputNs);
    }
    let batch = this.batches.get(size);
    if (!batch) this.batches.set(size, (batch = { input: zero(), infer: zero(), output: zero() }));
    add(batch.input, times.inputNs);
    add(batch.infer, times.inferNs);
    add(batch.output, times.outputNs);
  }

  /** One entry of `model_stats`, as Triton's HTTP statistics extension writes it. */
  toJSON(name: string, version: string) {
    return {
      name,
      version,
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: { ...this.success },
        fail: { ...this.fail },
        queue: { ...this.queue },
        compute_input: { ...this.computeInput },
        compute_infer: { ...this.computeInfer },
        compute_output: { ...this.computeOutput },
        cache_hit: zero(),
        cache_miss: zero(),
      },
      batch_stats: [...this.batches.entries()]
        .sort(([a], [b]) => a - b)
        .map(([size, batch]) => ({
          batch_size: size,
          compute_input: { ...batch.input },
          compute_infer: { ...batch.infer },
          compute_output: { ...batch.output },
        })),
    };
  }
}
