/**
 * `npx tsx bench/input-checks.ts`: what the server's per-request pass over an input tensor costs on the event loop
 * (the finite check and the largest magnitude, `inputValues` in src/serve/inference.ts) against a `Number.isFinite`
 * test per value, for one MNIST image and for 64 (medians of 7 runs of 2,000 passes, after warm-up).
 */
import { cpus } from 'node:os';
import { loadDataset } from '../src/data/index.js';
import { inputValues } from '../src/serve/inference.js';

const mnist = await loadDataset('mnist');
/** The per-value test the server used before (it stops at the first bad value, as the check did). */
const eachFinite = (data: Float32Array) => {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return i;
  return -1;
};
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const usPerPass = (pass: () => unknown) => {
  for (let i = 0; i < 500; i++) pass();
  return median(
    Array.from({ length: 7 }, () => {
      const started = performance.now();
      for (let i = 0; i < 2000; i++) pass();
      return ((performance.now() - started) * 1000) / 2000;
    }),
  );
};
const rows = [];
for (const images of [1, 64]) {
  const data = Float32Array.from(mnist.test.pixels.subarray(0, images * 784), (v) => v / 255);
  rows.push({
    images,
    values: data.length,
    each_is_finite_us: Number(usPerPass(() => eachFinite(data)).toFixed(2)),
    peak_and_finite_us: Number(usPerPass(() => inputValues(data)).toFixed(2)),
  });
}
console.log(`${cpus()[0]?.model ?? 'unknown CPU'}, Node.js ${process.version}`);
console.table(rows);
