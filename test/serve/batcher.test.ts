/**
 * The dynamic batcher's shape of batches: what a burst of single-image requests, read in one turn of the event
 * loop, becomes with and without a preferred batch size.
 */
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/serve/index.js';

/** A batcher whose runtime records each batch's size and answers when `finish` is called. */
function recordingBatcher(options: { maxBatch: number; preferredBatch?: number; concurrency?: number }) {
  const sizes: number[] = [];
  const waiting: (() => void)[] = [];
  const batcher = new Batcher({
    ...options,
    maxDelayMs: 0,
    maxQueue: 1024,
    imageSize: 4,
    imageDims: [1, 2, 2],
    run: (data, dims) => {
      sizes.push(dims[0]!);
      return new Promise((resolve) =>
        // Two logits per image: twice its first value, twice.
        waiting.push(() =>
          resolve({
            data: Float32Array.from({ length: dims[0]! * 2 }, (_, i) => 2 * data[(i >> 1) * 4]!),
            dims: [dims[0]!, 2],
          }),
        ),
      );
    },
  });
  const finish = () => waiting.splice(0).forEach((answer) => answer());
  return { batcher, sizes, finish };
}

const burst = (batcher: Batcher, count: number) =>
  Array.from({ length: count }, (_, i) => batcher.submit(Float32Array.of(i, i, i, i), 1));

describe('batcher', () => {
  it('sends a burst as one batch at the end of the turn without a preferred size', async () => {
    const { batcher, sizes, finish } = recordingBatcher({ maxBatch: 64, concurrency: 2 });
    const answers = burst(batcher, 20);
    expect(sizes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sizes).toEqual([20]);
    finish();
    expect((await Promise.all(answers)).map((logits) => logits[0])).toEqual(
      Array.from({ length: 20 }, (_, i) => 2 * i),
    );
  });

  it('sends each preferred batch at once while the runtime can take it, and the rest in preferred batches', async () => {
    const { batcher, sizes, finish } = recordingBatcher({ maxBatch: 64, preferredBatch: 8, concurrency: 2 });
    const answers = burst(batcher, 28);
    // Handed over during the burst, before the event loop's turn ends; the runtime holds two batches at most.
    expect(sizes).toEqual([8, 8]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sizes).toEqual([8, 8]);
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    // 12 waiting: a preferred batch, then the 4 left, as two batches can run at once.
    expect(sizes).toEqual([8, 8, 8, 4]);
    finish();
    const logits = await Promise.all(answers);
    expect(logits.map((l) => [l.length, l[0]])).toEqual(Array.from({ length: 28 }, (_, i) => [2, 2 * i]));
    await batcher.drained();
  });

  it('keeps taking requests until a batch holds the preferred size, within maxBatch', async () => {
    const { batcher, sizes, finish } = recordingBatcher({ maxBatch: 10, preferredBatch: 8, concurrency: 4 });
    const submit = (count: number) => batcher.submit(new Float32Array(count * 4), count);
    const answers = [3, 3, 3, 4, 5, 2, 6].map(submit);
    // 3+3+3 passes 8 at the third request: one batch of 9; then 4+5 = 9; 2+6 = 8 goes at once as well.
    expect(sizes).toEqual([9, 9, 8]);
    const more = [7, 4].map(submit);
    // 7 + 4 reach the preferred size but would pass maxBatch: 7 goes at once, and 4 waits for a free slot.
    expect(sizes).toEqual([9, 9, 8, 7]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sizes).toEqual([9, 9, 8, 7]);
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sizes).toEqual([9, 9, 8, 7, 4]);
    finish();
    await Promise.all([...answers, ...more]);
  });

  it('never makes a batch larger than maxBatch, whatever the preferred size', async () => {
    const { batcher, sizes, finish } = recordingBatcher({ maxBatch: 4, preferredBatch: 8 });
    const answers = burst(batcher, 10);
    expect(sizes).toEqual([4]);
    for (let i = 0; i < 3; i++) {
      finish();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sizes).toEqual([4, 4, 2]);
    await Promise.all(answers);
  });
});
