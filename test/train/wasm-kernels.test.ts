import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/train/index.js';
import { holdWasmHeap } from '../helpers/wasm-heap.js';

/**
 * Runs `f` on the cpu backend and on wasm (with cnnx's kernels) from the same inputs; returns the max abs diff.
 * Also checks the diff relative to the largest expected value, which does not depend on the inputs' scale.
 */
async function maxDiffCpuVsWasm(make: () => tf.Tensor[], f: (...inputs: tf.Tensor[]) => tf.Tensor[]): Promise<number> {
  const results: Float32Array[][] = [];
  for (const backend of ['cpu', 'wasm'] as const) {
    await useBackend(backend);
    const outputs = tf.tidy(() => f(...make()));
    results.push(await Promise.all(outputs.map(async (t) => (await t.data()) as Float32Array)));
    tf.dispose(outputs);
  }
  let worst = 0;
  let largest = 0;
  results[0]!.forEach((expected, i) => {
    const actual = results[1]![i]!;
    expect(actual.length).toBe(expected.length);
    for (let j = 0; j < expected.length; j++) {
      worst = Math.max(worst, Math.abs(expected[j]! - actual[j]!));
      largest = Math.max(largest, Math.abs(expected[j]!));
    }
  });
  expect(worst / largest).toBeLessThan(1e-5);
  return worst;
}

/** Values at the scale training sees: images in [0,1], Xavier-sized weights, mean-loss-sized gradients. */
const random = (shape: number[], seed: number, scale = 1) => tf.randomUniform(shape, -scale, scale, 'float32', seed);
const image = (shape: number[], seed: number) => tf.randomUniform(shape, 0, 1, 'float32', seed);

describe('wasm training kernels against the cpu backend', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it.each([
    // [input, kernel, stride, pad]: LeNet's two convolutions, AlexNet's first (stride 4) and a padded 3x3
    [[4, 28, 28, 1], [5, 5, 1, 6], 1, 2],
    [[4, 14, 14, 6], [5, 5, 6, 16], 1, 0],
    [[2, 64, 64, 1], [11, 11, 1, 8], 4, 1],
    [[3, 12, 12, 5], [3, 3, 5, 7], 1, 1],
    [[3, 13, 13, 4], [3, 3, 4, 5], 2, 0],
    // Filter gradient in chunks of images (imagesPerChunk): 20, 20, 5 for the first; 16, 16, 2 with stride 2
    [[45, 28, 28, 1], [5, 5, 1, 6], 1, 2],
    [[34, 20, 20, 3], [3, 3, 3, 96], 2, 1],
    // One input channel (cnnx's SIMD kernel): 5 and 7 channels (overlapping groups), a 4-wide kernel (the
    // backend's), a wide image and a stride that skips columns
    [[3, 9, 13, 1], [3, 3, 1, 5], 2, 1],
    [[2, 17, 11, 1], [7, 7, 1, 7], 1, 3],
    [[2, 12, 12, 1], [4, 4, 1, 6], 1, 1],
    // Few channels (cnnx's SIMD filter gradient): an odd channel count, a stride and padding, two blocks of 16
    [[3, 13, 11, 3], [3, 3, 3, 16], 2, 1],
    [[2, 9, 9, 5], [5, 5, 5, 32], 1, 2],
    [[2, 8, 10, 7], [3, 3, 7, 16], 1, 1],
    // Few channels (cnnx's SIMD input gradient, two images at a time): an odd batch (its last image alone), blocks
    // of 6 channels and a remainder of 1, a padding wider than the kernel reaches (the full convolution refuses
    // it), an even kernel and a remainder of 3
    [[3, 14, 14, 6], [5, 5, 6, 16], 1, 0],
    [[3, 7, 9, 13], [3, 3, 13, 8], 1, 1],
    [[1, 6, 6, 2], [3, 3, 2, 4], 1, 3],
    [[2, 9, 7, 9], [4, 4, 9, 12], 1, 2],
  ] as [number[], number[], number, number][])(
    'Conv2DBackpropFilter and Conv2DBackpropInput for input %j, kernel %j, stride %i, pad %i',
    async (inputShape, filterShape, stride, pad) => {
      const diff = await maxDiffCpuVsWasm(
        () => [image(inputShape, 1), random(filterShape, 2, 0.2)],
        (x, w) => {
          const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
          const upstream = random(conv(x!, w!).shape, 3, 0.01);
          const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), upstream)))([x!, w!]);
          return [dx!, dw!];
        },
      );
      expect(diff).toBeLessThanOrEqual(1e-5);
    },
  );

  it.each([
    // [input, kernel, stride, pad, activation]: LeNet's conv1, a channel count that is not a multiple of 4 or 8,
    // exactly 4 (cnnx's SIMD kernel); fewer, AlexNet's 96 (11x11/4) and two input channels (the backend's kernel)
    [[3, 28, 28, 1], [5, 5, 1, 6], 1, 2, 'linear'],
    [[2, 64, 64, 1], [11, 11, 1, 96], 4, 1, 'relu'],
    [[2, 15, 16, 1], [3, 3, 1, 7], 2, 1, 'sigmoid'],
    [[2, 10, 9, 1], [5, 5, 1, 4], 1, 2, 'linear'],
    [[2, 10, 9, 1], [5, 5, 1, 3], 1, 2, 'linear'],
    [[2, 10, 9, 2], [5, 5, 2, 6], 1, 2, 'linear'],
  ] as [number[], number[], number, number, 'linear' | 'relu' | 'sigmoid'][])(
    'FusedConv2D with bias for input %j, kernel %j, stride %i, pad %i, %s',
    async (inputShape, filterShape, stride, pad, activation) => {
      const diff = await maxDiffCpuVsWasm(
        () => [image(inputShape, 1), random(filterShape, 2, 0.2), random([filterShape[3]!], 3, 0.1)],
        (x, w, b) => [
          tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, bias: b, strides: stride, pad, activation }),
        ],
      );
      expect(diff).toBeLessThanOrEqual(1e-5);
    },
  );

  it('refuses, in words, an input gradient whose dy is smaller than the convolution output', async () => {
    await useBackend('wasm');
    // tfjs checks only dy's rank: a conv2dTranspose output of 6x6 (or 2000x2000) from a 2x2 dy. cnnx's kernel read
    // past dy's end there (garbage, or "memory access out of bounds"), and so does the backend's own.
    const dy = tf.ones([1, 2, 2, 8]) as tf.Tensor4D;
    const filter = tf.ones([3, 3, 2, 8]) as tf.Tensor4D;
    for (const side of [6, 2000]) {
      expect(() => tf.conv2dTranspose(dy, filter, [1, side, side, 2], 1, 'same')).toThrow(
        new RegExp(`dy has shape \\[1,2,2,8\\], but .* gives \\[1,${side},${side},8\\]`),
      );
    }
    tf.dispose([dy, filter]);
  });

  it('refuses, in words, a filter gradient whose dy is not the convolution output (a rounded-up output size)', async () => {
    await useBackend('wasm');
    // tfjs's conv2d gradient drops dimRoundingMode: 'ceil' makes dy 5 wide where the gradient expects 4. The
    // kernels read dy with the wrong strides and returned a wrong dw without a word.
    const x = image([2, 9, 8, 6], 1) as tf.Tensor4D;
    const w = random([3, 3, 6, 8], 2, 0.2) as tf.Tensor4D;
    const grad = () => tf.grad((f: tf.Tensor) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 2, 1, 'NHWC', 1, 'ceil')))(w);
    expect(grad).toThrow(/dy has shape \[2,5,5,8\].*output is \[2,5,4,8\].*dimRoundingMode/);
    tf.dispose([x, w]);
  });

  it('Conv2DBackpropFilter gives bit-identical results on every run, chunked or not', async () => {
    await useBackend('wasm');
    for (const [inputShape, filterShape] of [
      [
        [45, 28, 28, 1],
        [5, 5, 1, 6],
      ],
      [
        [4, 14, 14, 6],
        [5, 5, 6, 16],
      ],
    ]) {
      const x = image(inputShape!, 1) as tf.Tensor4D;
      const w = random(filterShape!, 2, 0.2) as tf.Tensor4D;
      const dy = random(tf.conv2d(x, w, 1, 'same').shape, 3, 0.01) as tf.Tensor4D;
      const runs = [0, 1, 2].map(() =>
        tf
          .grad((f: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, f as tf.Tensor4D, 1, 'same'), dy)))(w)
          .dataSync(),
      );
      expect(runs[1]).toEqual(runs[0]);
      expect(runs[2]).toEqual(runs[0]);
      tf.dispose([x, w, dy]);
    }
  });

  it.each([
    // [input, window, stride, pad]: disjoint 2x2 windows covering the input, and leaving a row and column out
    // (cnnx's SIMD kernel), and with fewer than 4 channels (the JavaScript loop)
    [[4, 28, 28, 6], 2, 2, 'valid'],
    [[3, 11, 9, 5], 2, 2, 'valid'],
    [[2, 8, 8, 3], 2, 2, 'valid'],
    // disjoint 3x3 windows, and 2x2 windows with gaps between them
    [[2, 9, 9, 2], 3, 3, 'valid'],
    [[2, 11, 10, 3], 2, 3, 'valid'],
    // overlapping or padded windows: the generic loop
    [[2, 54, 54, 3], 3, 2, 'valid'],
    [[2, 9, 9, 2], 2, 2, 'same'],
  ] as [number[], number, number, 'valid' | 'same'][])(
    'MaxPoolGrad for input %j, window %i, stride %i, pad %s',
    async (shape, size, stride, pad) => {
      const diff = await maxDiffCpuVsWasm(
        () => [random(shape, 3)],
        (x) => [tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, size, stride, pad), 3)))(x!)],
      );
      expect(diff).toBeLessThanOrEqual(1e-5);
    },
  );

  it('MaxPoolGrad sends dy to the first maximum of each window, with ties, NaN and -0, on every path', async () => {
    // One 2x2 window per channel: a tie (first wins), a NaN first (it wins), a NaN later (ignored), -0 in dy.
    const x = [1, 5, 7, 0, 2, 5, 4, 9, 5, 1, NaN, 1, 0, 0, 3, 2, 3, NaN, 9, 1];
    const input = tf.tensor4d(x, [1, 2, 2, 5]);
    for (const [size, stride, pad] of [
      [2, 2, 'valid'],
      [2, 1, 'valid'],
    ] as const) {
      const dy = tf.tensor4d([1, 2, -0, 4, 5], [1, 1, 1, 5]);
      const results: Float32Array[] = [];
      for (const backend of ['cpu', 'wasm'] as const) {
        await useBackend(backend);
        const y = tf.maxPool(tf.clone(input), size, stride, pad);
        const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, size, stride, pad), dy)))(
          tf.clone(input),
        );
        results.push((await grad.data()) as Float32Array);
        tf.dispose([y, grad]);
      }
      expect(Array.from(results[1]!)).toEqual(Array.from(results[0]!));
      dy.dispose();
    }
    input.dispose();
  });

  it.each([
    // [a, b]: bias rows short and long, vector first, and shapes the backend's own kernel keeps
    [[4, 28, 28, 6], [6]],
    [[7, 120], [120]],
    [[5], [3, 5]],
    [
      [3, 1, 7],
      [2, 7],
    ],
    [[6], [6]],
    [[], [4, 3]],
  ])('Add, Sub and Multiply of %j and %j, bit for bit, either order', async (aShape, bShape) => {
    const diff = await maxDiffCpuVsWasm(
      () => [random(aShape, 6), random(bShape, 7)],
      (a, b) => [tf.add(a!, b!), tf.sub(a!, b!), tf.sub(b!, a!), tf.mul(a!, b!), tf.mul(b!, a!)],
    );
    expect(diff).toBe(0);
  });

  it.each([
    // [shape, axis, keepDims]: LeNet's bias gradients (cnnx's SIMD kernel), and reductions the backend keeps
    [[4, 28, 28, 6], [0, 1, 2], false],
    [[3, 10, 10, 16], [2, 0, 1], true],
    [[7, 5], 0, false],
    [[9, 3], 0, false],
    [[6, 40], 0, false],
    [[3, 4, 5], [0, 2], false],
    [[3, 4, 5], -1, true],
  ] as [number[], number | number[], boolean][])(
    'Sum of %j over axis %j, keepDims %s',
    async (shape, axis, keepDims) => {
      const diff = await maxDiffCpuVsWasm(
        () => [random(shape, 8, 0.01)], // a mean loss's gradient: small values
        (x) => [tf.sum(x!, axis, keepDims)],
      );
      expect(diff).toBeLessThanOrEqual(1e-5);
    },
  );

  it('Identity shares data: clones and saved tensors outlive their source', async () => {
    await useBackend('wasm');
    const x = tf.tensor1d([1, 2, 3]);
    const copy = tf.clone(x);
    x.dispose();
    expect(Array.from(copy.dataSync())).toEqual([1, 2, 3]);
    copy.dispose();
  });

  it.each([
    [false, true],
    [true, false],
    [true, true],
  ])('BatchMatMul with transposeA=%s, transposeB=%s', async (transposeA, transposeB) => {
    const diff = await maxDiffCpuVsWasm(
      () => [random(transposeA ? [40, 32] : [32, 40], 4), random(transposeB ? [24, 40] : [40, 24], 5)],
      (a, b) => [tf.matMul(a!, b!, transposeA, transposeB)],
    );
    expect(diff).toBeLessThanOrEqual(1e-5);
  });
});

/** Runs `body` while `bytes` of the wasm backend's heap are held (address space only: nothing is written to it). */
async function whileHolding(bytes: number, body: () => Promise<void> | void): Promise<void> {
  await useBackend('wasm');
  const release = holdWasmHeap(bytes);
  try {
    await body();
  } finally {
    release();
  }
}

describe('the wasm heap', () => {
  it('refuses an allocation it cannot hold at once, instead of writing the tensor over the start of the heap', async () => {
    // 2.5 GiB held, so 1.75 GiB more cannot fit in a wasm32 memory.
    await whileHolding(2.5 * 2 ** 30, () => {
      expect(() => tf.zeros([(1.75 * 2 ** 30) / 4])).toThrow(
        /wasm: out of memory allocating 1792\.0 MiB .*--batch-size/,
      );
    });
    // The backend still works.
    const sum = tf.tidy(() => tf.ones([1000]).sum());
    expect(await sum.data()).toEqual(Float32Array.of(1000));
    sum.dispose();
  });

  it('runs every cnnx kernel correctly on tensors that lie past 2 GiB (heap offsets are unsigned)', async () => {
    // 2.1 GiB held first, so the tensors below are allocated at addresses of 2^31 and above.
    await whileHolding(2.1 * 2 ** 30, async () => {
      // A filter gradient whose dy rows are moved with copyWithin (96 channels), an input gradient, max pooling's
      // gradient, a transposed product and a bias gradient: each of cnnx's kernels that reads or writes the heap.
      // maxDiffCpuVsWasm checks the difference relative to the largest value (these sums of squares are large).
      await maxDiffCpuVsWasm(
        () => [image([4, 20, 20, 3], 1), random([3, 3, 3, 96], 2, 0.2), random([96], 3, 0.1)],
        (x, w, b) => {
          const f = (a: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => {
            const y = tf.relu(tf.add(tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, 1, 1), c));
            const pooled = tf.maxPool(y as tf.Tensor4D, 2, 2, 0);
            const flat = tf.reshape(pooled, [4, -1]);
            return tf.sum(tf.matMul(flat, flat, false, true));
          };
          return tf.grads(f)([x!, w!, b!]);
        },
      );
      // LeNet's first layers on cnnx's SIMD kernels (addresses passed into WebAssembly): a fused single-channel
      // convolution with its filter gradient, then a few-channel filter gradient (6 -> 16).
      await maxDiffCpuVsWasm(
        () => [image([4, 12, 12, 1], 4), random([5, 5, 1, 6], 5, 0.2), random([6], 6, 0.1), random([3, 3, 6, 16], 7)],
        (x, w1, b1, w2) => {
          const f = (a: tf.Tensor, k1: tf.Tensor, c1: tf.Tensor, k2: tf.Tensor) => {
            const y = tf.fused.conv2d({ x: a as tf.Tensor4D, filter: k1 as tf.Tensor4D, bias: c1, strides: 1, pad: 2 });
            return tf.sum(tf.square(tf.conv2d(tf.relu(y) as tf.Tensor4D, k2 as tf.Tensor4D, 1, 1)));
          };
          return tf.grads(f)([x!, w1!, b1!, w2!]);
        },
      );
    });
  });
});
