/** Test-split accuracy of an ONNX model on an ONNX Runtime session, batch by batch. */
import { iterateBatches, type Split } from '../data/index.js';
import type { ModelSession } from './session.js';

export interface OnnxEvaluation {
  accuracy: number;
  correct: number;
  count: number;
  seconds: number;
  imagesPerSec: number;
}

/** Runs `split` through `session` ([N, 1, side, side] inputs, resized when side differs from the images). */
export async function evaluateSession(
  session: ModelSession,
  split: Split,
  side: number,
  batchSize = 256,
): Promise<OnnxEvaluation> {
  const resize = side === split.rows ? undefined : side;
  let correct = 0;
  let inferenceMs = 0;
  for (const batch of iterateBatches(split, { batchSize, resize })) {
    const started = performance.now();
    const { data, dims } = await session.run(batch.xs, [batch.size, 1, side, side]);
    inferenceMs += performance.now() - started;
    const classes = dims[1]!;
    for (let n = 0; n < batch.size; n++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (data[n * classes + c]! > data[n * classes + best]!) best = c;
      if (best === batch.labels[n]) correct++;
    }
  }
  return {
    accuracy: correct / split.count,
    correct,
    count: split.count,
    seconds: inferenceMs / 1000,
    imagesPerSec: split.count / (inferenceMs / 1000),
  };
}
