/** onnxruntime-node on a worker thread (what `cnnx serve` uses) answers exactly as on the calling thread. */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { paritySet } from '../../src/export/index.js';
import { CnnxError } from '../../src/common/index.js';
import { instancesOf, openSession, openSessionInWorker, type ModelSession } from '../../src/runtime/index.js';

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

  it('moves an input it is given up, whole, without a copy, and copies one that shares its memory', async () => {
    const bytes = await readFile(MODEL);
    const mnist = await loadDataset('mnist');
    const inputs = paritySet(mnist.test, 8, 28);
    const local = await openSession(bytes, { ep: 'cpu', threads: 1 });
    const worker = await openSessionInWorker(bytes, { ep: 'cpu', threads: 1 });
    try {
      const expected = await local.run(inputs.data, inputs.dims);
      const own = inputs.data.slice();
      const moved = await worker.run(own, inputs.dims, { transfer: true });
      expect(own.length).toBe(0); // detached here: the thread has its memory
      expect(moved.data).toEqual(expected.data);
      // A view into a larger buffer (a request body, Node's Buffer pool) is copied, never detached.
      const shared = new Float32Array(inputs.data.length + 4);
      shared.set(inputs.data);
      const view = shared.subarray(0, inputs.data.length);
      expect((await worker.run(view, inputs.dims, { transfer: true })).data).toEqual(expected.data);
      expect(shared.length).toBe(inputs.data.length + 4);
      const kept = inputs.data.slice();
      expect((await worker.run(kept, inputs.dims)).data).toEqual(expected.data);
      expect(kept.length).toBe(inputs.data.length);
    } finally {
      await local.release();
      await worker.release();
    }
  });

  it('spreads batches over instances on their own threads, with the same answers, and releases them all', async () => {
    const bytes = await readFile(MODEL);
    const mnist = await loadDataset('mnist');
    const inputs = paritySet(mnist.test, 64, 28);
    const local = await openSession(bytes, { ep: 'cpu', threads: 1 });
    const threads = await Promise.all([1, 2].map(() => openSessionInWorker(bytes, { ep: 'cpu', threads: 1 })));
    const used = threads.map(() => 0);
    const counted = threads.map((session, i) => ({
      ...session,
      run: (...args: Parameters<typeof session.run>) => (used[i]!++, session.run(...args)),
    }));
    const pool = instancesOf(counted);
    try {
      const expected = await local.run(inputs.data, inputs.dims);
      const answers = await Promise.all(
        [0, 1, 2, 3].map((q) => pool.run(inputs.data.slice(q * 16 * 784, (q + 1) * 16 * 784), [16, 1, 28, 28])),
      );
      expect(Float32Array.from(answers.flatMap((a) => [...a.data]))).toEqual(expected.data);
      expect(used).toEqual([2, 2]); // four at once: each goes to the instance with the fewest in flight
      await pool.release();
      await expect(threads[1]!.run(new Float32Array(784), [1, 1, 28, 28])).rejects.toMatchObject({
        code: expect.stringMatching(/^(SESSION_RELEASED|WORKER_EXITED)$/),
      });
    } finally {
      await local.release();
      await Promise.all(threads.map((session) => session.release()));
    }
  });

  it('sends no more runs to an instance whose thread died while another lives', async () => {
    const calls = [0, 0];
    const session = (i: number, fails: boolean): ModelSession => ({
      ep: 'cpu',
      skipped: [],
      inputName: 'input',
      outputName: 'logits',
      run: async (_data, dims) => {
        calls[i]!++;
        if (fails) throw new CnnxError('inference thread stopped: exit code 1', 'WORKER_EXITED');
        return { data: new Float32Array(dims[0]! * 10), dims: [dims[0]!, 10] };
      },
      release: async () => {},
    });
    const pool = instancesOf([session(0, true), session(1, false)]);
    await expect(pool.run(new Float32Array(784), [1, 1, 28, 28])).rejects.toMatchObject({ code: 'WORKER_EXITED' });
    for (let i = 0; i < 5; i++) expect((await pool.run(new Float32Array(784), [1, 1, 28, 28])).dims).toEqual([1, 10]);
    expect(calls).toEqual([1, 5]);
  });

  it('keeps answers in order for many batches of different sizes at once', async () => {
    const bytes = await readFile(MODEL);
    const mnist = await loadDataset('mnist');
    const inputs = paritySet(mnist.test, 160, 28);
    const local = await openSession(bytes, { ep: 'cpu', threads: 1 });
    const worker = await openSessionInWorker(bytes, { ep: 'cpu', threads: 1 });
    try {
      const expected = await local.run(inputs.data, inputs.dims);
      // Five batches at once, one of 100 images.
      const sizes = [1, 100, 7, 32, 20];
      const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
      const answers = await Promise.all(
        sizes.map((n, i) => worker.run(inputs.data.slice(starts[i]! * 784, (starts[i]! + n) * 784), [n, 1, 28, 28])),
      );
      expect(answers.map((a) => a.dims[0])).toEqual(sizes);
      expect(Float32Array.from(answers.flatMap((a) => [...a.data]))).toEqual(expected.data);
    } finally {
      await local.release();
      await worker.release();
    }
  });

  it('finishes what it was asked before release, refuses what comes after, and releases once', async () => {
    const worker = await openSessionInWorker(await readFile(MODEL), { ep: 'cpu', threads: 1 });
    const asked = [1, 2, 3, 4, 5].map((n) => worker.run(new Float32Array(n * 784), [n, 1, 28, 28]));
    const releases = [worker.release(), worker.release()];
    await expect(worker.run(new Float32Array(784), [1, 1, 28, 28])).rejects.toMatchObject({
      code: 'SESSION_RELEASED',
    });
    expect((await Promise.all(asked)).map((a) => a.dims)).toEqual([1, 2, 3, 4, 5].map((n) => [n, 10]));
    await Promise.all(releases);
  });

  it.runIf(process.platform === 'linux')('lowers only its own thread’s priority when asked', async () => {
    const niceOf = (task: string) => {
      const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    };
    const before = new Set(readdirSync('/proc/self/task'));
    const worker = await openSessionInWorker(await readFile(MODEL), { ep: 'cpu', threads: 1, nice: 10 });
    try {
      const added = readdirSync('/proc/self/task').filter((task) => !before.has(task));
      expect(added.map(niceOf)).toContain(10);
      expect(niceOf(String(process.pid))).toBe(0);
    } finally {
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
