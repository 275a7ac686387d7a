/**
 * `npx tsx bench/health-under-load.ts`: how long a health check waits while the server reads large JSON infer
 * bodies. `cnnx serve` runs in its own process on a real port; BENCH_CLIENTS (default 12) clients each post, one
 * after another for BENCH_SECONDS (default 10), a JSON infer request of BENCH_IMAGES MNIST test digits (default
 * 1,024, the most one request may carry: 2.3 MB with 4-decimal values, 6.1 MB as tritonclient writes them), while one more client asks `GET /v2/health/live` every 20 ms. Three bodies,
 * one after another: 4-decimal JSON (what the fast reader takes), JSON as Python's `json.dumps` writes it
 * (tritonclient), and the same 4-decimal request with one key written with an escape (what only `JSON.parse`
 * reads). Reports, per body, the health checks' p50, p99 and longest wait (ms) and the images inferred per second.
 * BENCH_SERVER_ARGS adds `cnnx serve` flags.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadDataset } from '../src/data/index.js';
import { startServe, wordsOf } from './serve-process.js';

const PORT = Number(process.env.BENCH_PORT ?? 8799);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 12);
const IMAGES = Number(process.env.BENCH_IMAGES ?? 1024);
const SERVER_ARGS = wordsOf(process.env.BENCH_SERVER_ARGS);
const base = `http://127.0.0.1:${PORT}`;

const mnist = await loadDataset('mnist');
const pixels = mnist.test.pixels.subarray(0, IMAGES * 784);
const shape = `[${IMAGES}, 1, 28, 28]`;
const fourDecimals = Array.from(pixels, (v) => Math.round((v / 255) * 1e4) / 1e4).join(',');
const python = Array.from(pixels, (v) => {
  const value = Math.fround(v / 255);
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}).join(', ');
const bodies = {
  'JSON, 4 decimals': `{"inputs":[{"name":"input","shape":${shape},"datatype":"FP32","data":[${fourDecimals}]}]}`,
  'JSON as tritonclient writes it': `{"inputs": [{"name": "input", "shape": ${shape}, "datatype": "FP32", "data": [${python}]}]}`,
  'JSON, an escaped key (JSON.parse)': `{"inputs":[{"n\\u0061me":"input","shape":${shape},"datatype":"FP32","data":[${fourDecimals}]}]}`,
};

// Room in the queue for every client's images at once: the bench measures waits, not refusals.
const server = await startServe([
  ...['--model', 'models/lenet5-relu-mnist.onnx', '--port', String(PORT)],
  ...['--max-queue', String(CLIENTS * IMAGES), ...SERVER_ARGS],
]);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
const rows: Record<string, unknown>[] = [];
for (const [label, body] of Object.entries(bodies)) {
  const until = performance.now() + SECONDS * 1000;
  let inferred = 0;
  let failed = 0;
  const client = async () => {
    while (performance.now() < until) {
      const response = await fetch(`${base}/v2/models/lenet5-relu-mnist/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const answer = await response.text();
      if (response.ok) inferred += IMAGES;
      else if (failed++ === 0) console.error(`${response.status}: ${answer}`);
    }
  };
  const waits: number[] = [];
  const health = async () => {
    await sleep(200); // the bodies are on their way
    while (performance.now() < until) {
      const started = performance.now();
      const response = await fetch(`${base}/v2/health/live`);
      await response.arrayBuffer();
      waits.push(performance.now() - started);
      await sleep(20);
    }
  };
  const started = performance.now();
  await Promise.all([...Array.from({ length: CLIENTS }, client), health()]);
  const seconds = (performance.now() - started) / 1000;
  waits.sort((a, b) => a - b);
  const row = {
    body: label,
    megabytes: +(Buffer.byteLength(body) / 1e6).toFixed(1),
    healthP50Ms: +percentile(waits, 0.5).toFixed(1),
    healthP99Ms: +percentile(waits, 0.99).toFixed(1),
    healthMaxMs: +waits.at(-1)!.toFixed(1),
    checks: waits.length,
    imagesPerSec: Math.round(inferred / seconds),
    failed,
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
await server.stop();
