import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { getModelSpec } from '../../src/models/index.js';
import { createNetwork, useBackend } from '../../src/train/index.js';
import { batchGradients } from '../../src/train/step.js';

/**
 * LeNet-5 written out with plain tfjs ops (unfused conv, bias Add, sigmoid), whose gradients tfjs derives op by op:
 * the reference for the network's training step, which fuses the bias and computes the first convolution's
 * gradient itself (it skips the images' gradient).
 */
function referenceLoss(x: tf.Tensor4D, oneHot: tf.Tensor, params: tf.Tensor[]): tf.Scalar {
  const [w0, b0, w3, b3, w7, b7, w9, b9, w11, b11] = params as [
    tf.Tensor4D,
    tf.Tensor,
    tf.Tensor4D,
    tf.Tensor,
    ...tf.Tensor2D[],
  ];
  let h: tf.Tensor = tf.maxPool(tf.sigmoid(tf.add(tf.conv2d(x, w0, 1, 2), b0)) as tf.Tensor4D, 2, 2, 'valid');
  h = tf.maxPool(tf.sigmoid(tf.add(tf.conv2d(h as tf.Tensor4D, w3, 1, 0), b3)) as tf.Tensor4D, 2, 2, 'valid');
  h = tf.reshape(h, [x.shape[0], -1]);
  h = tf.sigmoid(tf.add(tf.matMul(h as tf.Tensor2D, w7!), b7!));
  h = tf.sigmoid(tf.add(tf.matMul(h as tf.Tensor2D, w9!), b9!));
  const logits = tf.add(tf.matMul(h as tf.Tensor2D, w11!), b11!);
  const losses = tf.losses.softmaxCrossEntropy(oneHot, logits, undefined, undefined, tf.Reduction.NONE);
  return tf.div(tf.sum(losses), x.shape[0]);
}

describe('training gradients of the network', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('equal those of LeNet-5 written with plain ops, the first convolution included', () => {
    const spec = getModelSpec('lenet5');
    const network = createNetwork(spec, 7);
    const size = 6;
    const xs = tf.randomUniform([size, 28, 28, 1], 0, 1, 'float32', 11);
    const batch = { xs: xs.dataSync() as Float32Array, labels: Int32Array.from([3, 1, 4, 1, 5, 9]), size };
    const names = ['0', '3', '7', '9', '11'].flatMap((i) => [`${i}.weight`, `${i}.bias`]);
    const values = names.map((name) => network.variables.get(name)!);

    const result = batchGradients(network, batch, [28, 28, 1], { dropoutSeed: 0 });
    const expected = tf.tidy(() => {
      const oneHot = tf.oneHot(tf.tensor1d(batch.labels, 'int32'), 10);
      return tf.grads((...params: tf.Tensor[]) => referenceLoss(xs as tf.Tensor4D, oneHot, params))(values);
    });
    names.forEach((name, i) => {
      const actual = result.grads[network.variables.get(name)!.name]!.dataSync();
      const wanted = expected[i]!.dataSync() as Float32Array;
      expect(actual.length, name).toBe(wanted.length);
      const largest = wanted.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const worst = wanted.reduce((m, v, j) => Math.max(m, Math.abs(v - actual[j]!)), 0);
      expect(largest, name).toBeGreaterThan(0);
      expect(worst / largest, name).toBeLessThan(1e-5);
    });
    tf.dispose([xs, ...expected, result.loss, result.correct, ...Object.values(result.grads)]);
    network.dispose();
  });
});

describe('batch norm on a batch of one', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('updates the running statistics where it sees several values a feature, not after a dense layer', () => {
    const network = createNetwork(getModelSpec('lenet5-relu'), 7);
    const xs = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 5);
    const batch = { xs: xs.dataSync() as Float32Array, labels: Int32Array.from([3]), size: 1 };
    const result = batchGradients(network, batch, [28, 28, 1], { dropoutSeed: 0 });
    const updated = new Set(result.updates.map(([variable]) => variable));
    const names = [...network.variables.keys()].filter((name) => name.endsWith('.running_var'));
    // After a convolution a feature has 28 x 28 (or 10 x 10) values in one picture; after a dense layer it has one,
    // and no variance to learn from: a variance of 0 would pull the running one down.
    const convolutional = names.filter((name) => updated.has(network.variables.get(name)!));
    expect(convolutional.length).toBe(2);
    expect(names.length).toBe(4);
    for (const [, value] of result.updates) value.dispose();
    tf.dispose([xs, result.loss, result.correct, ...Object.values(result.grads)]);
    network.dispose();
  });
});
