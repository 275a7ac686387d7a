/**
 * The onnxruntime-web adapter (what the page runs), here on its WASM backend in Node: one run at a time per
 * session, release after the runs asked for, and `auto` saying why it did not use WebGPU.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-web';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { paritySet } from '../../src/export/index.js';
import { openWebSession } from '../../src/runtime/web/index.js';

const MODEL = 'models/lenet5-relu-mnist.onnx';

/** Counts how many onnxruntime-web runs are in progress at once, at most. */
function watchConcurrentRuns(): { most: () => number } {
  // The declared type is a factory; at run time InferenceSession is a class whose instances share this `run`.
  const prototype = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;
  const run = prototype.run;
  let now = 0;
  let most = 0;
  vi.spyOn(prototype, 'run').mockImplementation(async function (
    this: ort.InferenceSession,
    ...args: Parameters<typeof run>
  ) {
    most = Math.max(most, ++now);
    try {
      return await run.apply(this, args);
    } finally {
      now--;
    }
  });
  return { most: () => most };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('onnxruntime-web sessions', () => {
  it('run one at a time, in call order, when asked at once (a second stroke while the first is read)', async () => {
    const mnist = await loadDataset('mnist');
    const inputs = paritySet(mnist.test, 12, 28);
    const session = await openWebSession(await readFile(MODEL));
    try {
      const batches = [0, 1, 2].map((i) => inputs.data.slice(i * 4 * 784, (i + 1) * 4 * 784));
      const alone = [];
      for (const batch of batches) alone.push((await session.run(batch, [4, 1, 28, 28])).data);
      const runs = watchConcurrentRuns();
      const together = await Promise.all(batches.map((batch) => session.run(batch, [4, 1, 28, 28])));
      expect(runs.most()).toBe(1);
      expect(together.map((logits) => logits.data)).toEqual(alone);
    } finally {
      await session.release();
    }
  });

  it('finish the runs asked for before release, and refuse later ones', async () => {
    const session = await openWebSession(await readFile(MODEL));
    const asked = [1, 2, 3].map((n) => session.run(new Float32Array(n * 784), [n, 1, 28, 28]));
    const released = session.release();
    await expect(session.run(new Float32Array(784), [1, 1, 28, 28])).rejects.toMatchObject({
      code: 'SESSION_RELEASED',
    });
    expect((await Promise.all(asked)).map((logits) => logits.dims)).toEqual([
      [1, 10],
      [2, 10],
      [3, 10],
    ]);
    await released;
  });

  it('a failed run does not stop the ones after it', async () => {
    const session = await openWebSession(await readFile(MODEL));
    try {
      const bad = session.run(new Float32Array(10), [1, 1, 28, 28]);
      const good = session.run(new Float32Array(784), [1, 1, 28, 28]);
      await expect(bad).rejects.toThrow();
      expect((await good).dims).toEqual([1, 10]);
    } finally {
      await session.release();
    }
  });

  it('auto: WASM where there is no WebGPU, with the reason in one line', async () => {
    const session = await openWebSession(await readFile(MODEL), { ep: 'auto' });
    await session.release();
    expect(session.ep).toBe('wasm');
    expect(session.skipped).toEqual([{ ep: 'webgpu', reason: 'no WebGPU in this environment' }]);
  });

  it('refuses WebGPU by name where there is none, and an unknown provider', async () => {
    const bytes = await readFile(MODEL);
    await expect(openWebSession(bytes, { ep: 'webgpu' })).rejects.toMatchObject({
      code: 'EP_UNAVAILABLE',
      message: 'webgpu: no WebGPU in this environment',
    });
    await expect(openWebSession(bytes, { ep: 'cuda' as 'wasm' })).rejects.toMatchObject({
      code: 'BAD_EP',
      message: 'Unsupported execution provider: "cuda". Should be one of: auto, wasm, webgpu.',
    });
  });
});
