/**
 * The session contract both ONNX Runtime adapters implement: onnxruntime-node (node.ts, worker-session.ts) and
 * onnxruntime-web (web/). Isomorphic: imports nothing from Node, the DOM or either runtime.
 */
import { CnnxError } from '../common/errors.js';

/** Output of one run: float32 logits laid out as `dims` ([N, classes]). */
export interface Logits {
  data: Float32Array;
  dims: number[];
}

/** A faster provider that `auto` tried and did not use, with a one-line reason. */
export interface SkippedProvider {
  ep: 'cuda' | 'webgpu';
  /** One line, e.g. "CUDA provider libraries not installed", "no WebGPU adapter". */
  reason: string;
}

/** How a run may treat its input. */
interface RunOptions {
  /**
   * The caller gives the input up: a session on another thread takes its ArrayBuffer without copying it when the
   * array spans all of it (the array is then detached, length 0, here). Sessions on the calling thread ignore it.
   */
  transfer?: boolean;
}

/** An open model on one execution provider. `Ep` is the adapter's provider names. */
export interface ModelSession<Ep extends string = string> {
  /** The execution provider that runs the model. */
  ep: Ep;
  /** Faster providers `auto` skipped, in the order tried; empty when one was asked for by name. */
  skipped: SkippedProvider[];
  inputName: string;
  outputName: string;
  /** Runs one batch: `data` laid out as `dims` ([N, C, H, W]); resolves to [N, classes] logits. */
  run(data: Float32Array, dims: number[], options?: RunOptions): Promise<Logits>;
  /** Frees the session; runs asked for before finish first, later ones are refused (SESSION_RELEASED). */
  release(): Promise<void>;
}

/**
 * `session` with its runs one at a time, in call order: each starts when the previous one has settled. Release
 * waits for the runs already asked for; runs asked for after it reject with SESSION_RELEASED.
 */
export function oneRunAtATime<S extends ModelSession>(session: S): S {
  let previous: Promise<unknown> = Promise.resolve();
  let releasing: Promise<void> | undefined;
  return {
    ...session,
    run(data: Float32Array, dims: number[], options?: RunOptions): Promise<Logits> {
      if (releasing) return Promise.reject(new CnnxError('the inference session was released', 'SESSION_RELEASED'));
      const result = previous.then(() => session.run(data, dims, options));
      previous = result.catch(() => undefined);
      return result;
    },
    release(): Promise<void> {
      releasing ??= previous.then(() => session.release());
      return releasing;
    },
  };
}

/**
 * Several sessions of one model as one, as Triton's `instance_group` count runs a model: each run goes to the
 * session with the fewest runs in flight (the first of those on a tie), so that with sessions on their own threads
 * batches run side by side. A session whose thread has died (WORKER_EXITED) gets no more runs while another lives.
 * Its provider is the first session's; release frees them all.
 * @throws Error when `sessions` is empty.
 */
export function instancesOf<S extends ModelSession>(sessions: S[]): S {
  if (sessions.length === 0) throw new Error('instancesOf needs at least one session');
  if (sessions.length === 1) return sessions[0]!;
  const inFlight = sessions.map(() => 0);
  const dead = sessions.map(() => false);
  const pick = () => {
    let best = -1;
    for (let i = 0; i < sessions.length; i++) {
      if (!dead[i] && (best < 0 || inFlight[i]! < inFlight[best]!)) best = i;
    }
    return best < 0 ? 0 : best; // all dead: the first answers with why
  };
  return {
    ...sessions[0]!,
    async run(data: Float32Array, dims: number[], options?: RunOptions): Promise<Logits> {
      const index = pick();
      inFlight[index]!++;
      try {
        return await sessions[index]!.run(data, dims, options);
      } catch (error) {
        if (error instanceof CnnxError && error.code === 'WORKER_EXITED') dead[index] = true;
        throw error;
      } finally {
        inFlight[index]!--;
      }
    },
    async release(): Promise<void> {
      await Promise.all(sessions.map((session) => session.release()));
    },
  };
}

/**
 * `run` for a model whose batch dimension is fixed at `batch` (a PyTorch export without dynamic axes): any number
 * of images N is run in ceil(N / batch) calls of exactly `batch` images, the last one padded with zeros, and the
 * logits are put back together as [N, classes] with the padding's rows dropped.
 */
export function inBatchesOf(batch: number, run: ModelSession['run']): ModelSession['run'] {
  // Its runs are views into `data`, so run options (a transfer) are not passed on.
  return async (data, dims) => {
    const count = dims[0]!;
    if (count === batch) return run(data, dims);
    const imageSize = data.length / count;
    const chunk = batch * imageSize;
    const parts: Float32Array[] = [];
    let classes = 0;
    for (let first = 0; first < count; first += batch) {
      let input = data.subarray(first * imageSize, Math.min(count, first + batch) * imageSize);
      if (input.length < chunk) {
        const padded = new Float32Array(chunk);
        padded.set(input);
        input = padded;
      }
      const result = await run(input, [batch, ...dims.slice(1)]);
      classes = result.dims[1]!;
      parts.push(result.data.subarray(0, Math.min(batch, count - first) * classes));
    }
    const logits = new Float32Array(count * classes);
    let at = 0;
    for (const part of parts) {
      logits.set(part, at);
      at += part.length;
    }
    return { data: logits, dims: [count, classes] };
  };
}
