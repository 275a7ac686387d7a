import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { getModelSpec } from '../../src/models/index.js';
import { createNetwork, useBackend } from '../../src/train/index.js';
import { createOptimizer, optimizerState, restoreOptimizerState } from '../../src/train/optimizer.js';

describe("an optimizer's state moved between optimizers (checkpoints, replica threads)", () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it.each(['sgd', 'momentum', 'adam'] as const)(
    '%s: restores to the same values, and reading or restoring it again and again holds no more memory',
    async (name) => {
      const network = createNetwork(getModelSpec('lenet5-relu'), 1);
      const settings = { optimizer: name, lr: 0.01, momentum: 0.9 };
      const source = createOptimizer(settings).optimizer;
      for (let step = 0; step < 2; step++) {
        const grads = tf.tidy(() => Object.fromEntries(network.trainable.map((v) => [v.name, tf.onesLike(v)])));
        source.applyGradients(grads);
        tf.dispose(Object.values(grads));
      }
      const state = await optimizerState(source);
      let target = createOptimizer(settings).optimizer;
      const reload = async () => {
        target.dispose();
        target = createOptimizer(settings).optimizer;
        await restoreOptimizerState(network, target, state.order, state.tensors, 'the test');
      };
      await reload();
      const held = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) {
        await reload();
        await optimizerState(target);
      }
      expect(tf.memory().numTensors).toBe(held);
      const restored = await optimizerState(target);
      expect(restored.order).toEqual(state.order);
      for (const [key, tensor] of state.tensors) expect(restored.tensors.get(key)).toEqual(tensor);
      network.dispose();
      source.dispose();
      target.dispose();
    },
  );

  it("adam takes tfjs's Adam steps to the bit, holding one variable's temporaries at a time", async () => {
    const spec = getModelSpec('lenet5-relu');
    const [ours, theirs] = [createNetwork(spec, 3), createNetwork(spec, 3)];
    const optimizers = [createOptimizer({ optimizer: 'adam', lr: 0.01 }).optimizer, tf.train.adam(0.01)];
    const peaks: number[] = [0, 0];
    for (let step = 0; step < 3; step++) {
      for (const [k, network] of [ours, theirs].entries()) {
        const grads = tf.tidy(() =>
          Object.fromEntries(
            network.trainable.map((v, i) => [v.name, tf.randomNormal(v.shape, 0, 1, 'float32', step * 50 + i + 1)]),
          ),
        );
        const before = tf.memory().numBytes;
        const info = await tf.profile(() => optimizers[k]!.applyGradients(grads));
        peaks[k] = Math.max(peaks[k]!, info.peakBytes - before);
        tf.dispose(Object.values(grads));
      }
    }
    for (const param of ours.parameters) {
      expect(ours.variables.get(param.name)!.dataSync()).toEqual(theirs.variables.get(param.name)!.dataSync());
    }
    // tfjs's keeps every variable's temporaries to the end: about ten copies of the parameters at the peak.
    expect(peaks[0]).toBeLessThan(peaks[1]! / 3);
    for (const network of [ours, theirs]) network.dispose();
    for (const optimizer of optimizers) optimizer.dispose();
  });
});
