/** onnxruntime-node on a worker thread (what `cnnx serve` uses) answers exactly as on the calling thread. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { paritySet } from '../../src/export/index.js';
import { openSession, openSessionInWorker } from '../../src/runtime/index.js';

const MODEL = 'models/lenet5-relu-mnist.onnx';

describe('a session on a worker thread', () => {
  it('gives bit-identical logits to one on this thread, for concurrent batches', async () => {
    const bytes = await readFile(MODEL);
    const mnist = await loadDataset('mnist');
    const inputs = paritySet(mnist.test, 32, 28);
    const local = await openSession(bytes, { ep: 'cpu', threads: 1 });
    const worker = await openSessionInWorker(bytes, { ep: 'cpu', threads: 1 });
    try {
      expect(worker.ep).toBe('cpu');
      expect([worker.inputName, worker.outputName]).toEqual([local.inputName, local.outputName]);
      const expected = await local.run(inputs.data, inputs.dims);
      const halves = [inputs.data.subarray(0, 16 * 784), inputs.data.subarray(16 * 784)];
      const answers = await Promise.all(halves.map((half) => worker.run(half.slice(), [16, 1, 28, 28])));
      expect(answers.map((a) => a.dims)).toEqual([
        [16, 10],
        [16, 10],
      ]);
      expect(Float32Array.from([...answers[0]!.data, ...answers[1]!.data])).toEqual(expected.data);
    } finally {
      await local.release();
      await worker.release();
    }
  });

  it('reports a model ONNX Runtime cannot load, and a bad run, as errors', async () => {
    await expect(openSessionInWorker(new Uint8Array([1, 2, 3]), { ep: 'cpu' })).rejects.toThrow(
      /protobuf parsing failed/,
    );
    const worker = await openSessionInWorker(await readFile(MODEL), { ep: 'cpu' });
    try {
      await expect(worker.run(new Float32Array(10), [1, 1, 28, 28])).rejects.toThrow(/size|shape|dimension/i);
      // The thread survives a bad request.
      expect((await worker.run(new Float32Array(784), [1, 1, 28, 28])).dims).toEqual([1, 10]);
    } finally {
      await worker.release();
    }
  });
});
