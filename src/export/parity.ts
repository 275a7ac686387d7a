/**
 * The exporter's own check: the same real test images through the trained tfjs network and through the written
 * ONNX file in onnxruntime-node, logits compared against the tolerance table.
 */
import * as tf from '@tensorflow/tfjs-core';
import { iterateBatches, type Split } from '../data/index.js';
import { openSession } from '../runtime/index.js';
import type { Network } from '../train/index.js';
import { compareLogits, type ParityReport, type Tolerance } from './tolerances.js';

/** The first `count` examples of `split` as NCHW float32 in [0,1] (resized to the model's input). */
export function paritySet(split: Split, count: number, side: number): { data: Float32Array; dims: number[] } {
  const n = Math.min(count, split.count);
  const resize = side === split.rows ? undefined : side;
  const [batch] = [...iterateBatches({ ...split, count: n }, { batchSize: n, resize })];
  // With one channel, NHWC and NCHW hold the same bytes.
  return { data: batch!.xs, dims: [n, 1, side, side] };
}

export async function tfjsLogits(network: Network, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const [n, c, h, w] = dims as [number, number, number, number];
  const chunk = 64;
  const out = new Float32Array(n * network.spec.classes);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const logits = tf.tidy(() =>
      network.apply(tf.tensor4d(data.subarray(start * h * w * c, (start + size) * h * w * c), [size, h, w, c]), {
        training: false,
      }),
    );
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
