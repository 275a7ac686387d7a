/** Test-split accuracy of an ONNX model on an ONNX Runtime session, batch by batch. */
import { CnnxError } from '../common/errors.js';
import { iterateBatches, type Split } from '../data/index.js';
import type { InputShape } from './classify.js';
import type { ModelSession } from './session.js';

export interface OnnxEvaluation {
  accuracy: number;
  correct: number;
  count: number;
  seconds: number;
  imagesPerSec: number;
}

/** NHWC batch values -> NCHW (planar), in `out`. */
function toPlanar(nhwc: Float32Array, size: number, channels: number, out: Float32Array): Float32Array {
  const pixels = nhwc.length / (size * channels);
  for (let n = 0; n < size; n++) {
    const at = n * pixels * channels;
    for (let p = 0; p < pixels; p++)
      for (let c = 0; c < channels; c++) out[at + c * pixels + p] = nhwc[at + p * channels + c]!;
  }
  return out;
}

/**
 * Runs `split` (HWC bytes) through `session` as [N, C, H, W] inputs of pixel / 255. `input` is the model's
 * [C, H, W], or a side for [1, side, side]. A 1-channel split of square pictures is resized to a square model's side
 * on the fly (MNIST's 28x28 for AlexNet's 224), and given to a 3-channel model as R = G = B = gray; otherwise the
 * split must have the model's channels and size.
 * @throws CnnxError DATASET_MISMATCH when the split's pictures do not fit the model's input
 */
export async function evaluateSession(
  session: ModelSession,
  split: Split,
  input: number | InputShape,
  batchSize = 256,
): Promise<OnnxEvaluation> {
  const [channels, height, width] = typeof input === 'number' ? [1, input, input] : input;
  // Gray pictures for a colour model: the gray value in R, G and B, as predict and serve prepare a gray picture.
  const grayForRgb = split.channels === 1 && channels === 3;
  const same = (split.channels === channels || grayForRgb) && split.rows === height && split.cols === width;
  const resizable =
    split.channels === 1 && (channels === 1 || grayForRgb) && split.rows === split.cols && height === width;
  if (!same && !resizable) {
    throw new CnnxError(
      `the model takes ${channels}x${height}x${width} inputs (channels x height x width) but the pictures are ` +
        `${split.channels}x${split.rows}x${split.cols}; evaluate it on pictures of its own channels and size`,
      'DATASET_MISMATCH',
    );
  }
  const resize = same ? undefined : height;
  let correct = 0;
  let inferenceMs = 0;
  let planar = new Float32Array(0);
  for (const batch of iterateBatches(split, { batchSize, resize })) {
    let xs = batch.xs;
    if (grayForRgb) {
      const plane = height * width;
      if (planar.length !== 3 * xs.length) planar = new Float32Array(3 * xs.length);
      for (let n = 0; n < batch.size; n++) {
        const gray = xs.subarray(n * plane, (n + 1) * plane);
        for (let c = 0; c < 3; c++) planar.set(gray, (3 * n + c) * plane);
      }
      xs = planar;
    } else if (channels > 1) {
      if (planar.length !== xs.length) planar = new Float32Array(xs.length);
      xs = toPlanar(xs, batch.size, channels, planar);
    }
    const started = performance.now();
    const { data, dims } = await session.run(xs, [batch.size, channels, height, width]);
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
