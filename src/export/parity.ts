/**
 * The exporter's own check: the same real test images through the trained tfjs network and through the written
 * ONNX file in onnxruntime-node, logits compared against the tolerance table.
 */
import * as tf from '@tensorflow/tfjs-core';
import { iterateBatches, type Split } from '../data/index.js';
import { openSession } from '../runtime/index.js';
import type { Network } from '../train/index.js';
import { compareLogits, type ParityReport, type Tolerance } from './tolerances.js';

/**
 * The first `count` examples of `split` as NCHW float32 in [0,1], [n, channels, height, width]; a 1-channel split
 * whose rows differ from `side` is resized to side x side (AlexNet's 224 from 28x28 digits).
 */
export function paritySet(split: Split, count: number, side = split.rows): { data: Float32Array; dims: number[] } {
  const n = Math.min(count, split.count);
  const resize = side === split.rows ? undefined : side;
  const [batch] = [...iterateBatches({ ...split, count: n }, { batchSize: n, resize })];
  const [height, width] = resize === undefined ? [split.rows, split.cols] : [side, side];
  const c = split.channels;
  if (c === 1) return { data: batch!.xs, dims: [n, 1, height, width] }; // one channel: NHWC and NCHW agree
  const plane = height * width;
  const data = new Float32Array(batch!.xs.length);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < plane; p++) {
      for (let k = 0; k < c; k++) data[(i * c + k) * plane + p] = batch!.xs[(i * plane + p) * c + k]!;
    }
  }
  return { data, dims: [n, c, height, width] };
}

/** Logits of the tfjs network for NCHW `data` ([n, c, h, w] `dims`), as [n, classes]. */
export async function tfjsLogits(network: Network, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const [n, c, h, w] = dims as [number, number, number, number];
  const chunk = 64;
  const out = new Float32Array(n * network.spec.classes);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const logits = tf.tidy(() => {
      const nchw = tf.tensor4d(data.subarray(start * h * w * c, (start + size) * h * w * c), [size, c, h, w]);
      return network.apply(tf.transpose(nchw, [0, 2, 3, 1]), { training: false });
    });
    out.set((await logits.data()) as Float32Array, start * network.spec.classes);
    logits.dispose();
  }
  return out;
}

/** Compares tfjs and ORT (CPU EP) logits for the parity set. */
export async function checkParity(
  network: Network,
  onnxBytes: Uint8Array,
  inputs: { data: Float32Array; dims: number[] },
  tolerance: Tolerance,
): Promise<ParityReport> {
  const expected = await tfjsLogits(network, inputs.data, inputs.dims);
  const session = await openSession(onnxBytes, { ep: 'cpu' });
  try {
    const { data } = await session.run(inputs.data, inputs.dims);
    return compareLogits(expected, data, network.spec.classes, tolerance);
  } finally {
    await session.release();
  }
}
