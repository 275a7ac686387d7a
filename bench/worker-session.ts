/**
 * `npx tsx bench/worker-session.ts`: what handing a batch to another thread costs. A bare message round trip
 * between two threads, then a model run on this thread and on a worker session
 * (src/runtime/worker-session.ts) at batch 1, 13 and 32: wall time and process CPU per run.
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { openSession, openSessionInWorker, type ModelSession } from '../src/runtime/index.js';

const MODEL = process.env.BENCH_MODEL ?? 'models/lenet5-relu-mnist.onnx';

async function measure(label: string, n: number, once: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(200, n); i++) await once();
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < n; i++) await once();
  const wall = ((performance.now() - started) * 1000) / n;
  const used = process.cpuUsage(cpu);
  console.log(
    `${label.padEnd(34)} ${wall.toFixed(1).padStart(7)} us wall ${((used.user + used.system) / n).toFixed(1).padStart(7)} us CPU`,
  );
}

// A bare round trip: the other thread answers at once.
const messages = new Worker(
  `const { parentPort } = require('node:worker_threads'); parentPort.on('message', (x) => parentPort.postMessage(x));`,
  { eval: true },
);
let answered: (() => void) | undefined;
messages.on('message', () => answered?.());
await measure(
  'message round trip',
  5000,
  () =>
    new Promise<void>((resolve) => {
      answered = resolve;
      messages.postMessage(new Float32Array(784));
    }),
);
await messages.terminate();

const model = new Uint8Array(readFileSync(MODEL));
const sessions: [string, ModelSession][] = [
  ['this thread', await openSession(model, { ep: 'cpu', threads: 1 })],
  ['worker session', await openSessionInWorker(model, { ep: 'cpu', threads: 1 })],
];
for (const [name, session] of sessions) {
  for (const batch of [1, 13, 32]) {
    const data = new Float32Array(batch * 784).fill(0.3);
    await measure(`${name}, batch ${batch}`, Math.round(20_000 / batch), () => session.run(data, [batch, 1, 28, 28]));
  }
  await session.release();
}
