/**
 * `npm run bench:serve`: load on a real port with autocannon. The server runs in its own process (`cnnx serve`);
 * the same run measures a no-inference echo route that parses the same KServe JSON (the HTTP ceiling), single-
 * image inference, classify with a PNG, and batch-64 requests. Prints a table and one JSON line.
 */
import autocannon from 'autocannon';
import sharp from 'sharp';
import { loadDataset } from '../src/data/index.js';
import { startServe, wordsOf } from './serve-process.js';

const PORT = Number(process.env.BENCH_PORT ?? 8787);
const MODEL = process.env.BENCH_MODEL ?? 'models/lenet5-relu-mnist.onnx';
const NAME = MODEL.split('/')
  .pop()!
  .replace(/\.onnx$/, '');
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
// Echo and infer alternate in short rounds; the ratio is the median of the rounds' ratios.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const ROUND_SECONDS = Number(process.env.BENCH_ROUND_SECONDS ?? 3);
const base = `http://127.0.0.1:${PORT}`;

const mnist = await loadDataset('mnist');
const image = (i: number) =>
  Array.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784), (v) => Math.round((v / 255) * 1e4) / 1e4);
const inferBody = (count: number) =>
  JSON.stringify({
    inputs: [
      {
        name: 'input',
        shape: [count, 1, 28, 28],
        datatype: 'FP32',
        data: Array.from({ length: count }, (_, i) => image(i)).flat(),
      },
    ],
  });
const png = await sharp(Buffer.from(mnist.test.pixels.subarray(0, 784).map((v) => 255 - v)), {
  raw: { width: 28, height: 28, channels: 1 },
})
  .resize(112, 112)
  .png()
  .toBuffer();

const server = await startServe(
  ['--model', MODEL, '--port', String(PORT), '--ep', 'cpu', '--echo', '--no-watch'].concat(
    wordsOf(process.env.BENCH_SERVER_ARGS),
  ),
  { nodeArgs: wordsOf(process.env.BENCH_NODE_ARGS) },
);

interface Row {
  name: string;
  requests_per_sec: number;
  images_per_sec: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
}

async function load(
  name: string,
  path: string,
  body: Buffer | string,
  contentType: string,
  images: number,
  duration = DURATION,
): Promise<Row> {
  const result = await autocannon({
    url: `${base}${path}`,
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
    connections: CONNECTIONS,
    duration,
  });
  return {
    name,
    requests_per_sec: Math.round(result.requests.average),
    images_per_sec: Math.round(result.requests.average * images),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

const rows: Row[] = [];
const ratios: number[] = [];
try {
  const single = inferBody(1);
  const echo = (round: number) =>
    load(
      `echo (parse only, 1 image JSON) #${round}`,
      `/debug/echo/${NAME}`,
      single,
      'application/json',
      1,
      ROUND_SECONDS,
    );
  const infer = (round: number) =>
    load(`infer (1 image JSON) #${round}`, `/v2/models/${NAME}/infer`, single, 'application/json', 1, ROUND_SECONDS);
  await load('warm-up', `/v2/models/${NAME}/infer`, single, 'application/json', 1, 2);
  // The machine's load drifts; alternating the two routes (and their order) measures each ratio under the same load.
  for (let round = 1; round <= ROUNDS; round++) {
    const pair = round % 2 === 1 ? [await echo(round), await infer(round)] : [await infer(round), await echo(round)];
    const [e, i] = round % 2 === 1 ? pair : [pair[1]!, pair[0]!];
    rows.push(e!, i!);
    ratios.push(i!.requests_per_sec / e!.requests_per_sec);
  }
  if (!process.env.BENCH_QUICK) {
    rows.push(await load('infer (64 images JSON)', `/v2/models/${NAME}/infer`, inferBody(64), 'application/json', 64));
    rows.push(await load('classify (112x112 PNG)', `/v1/models/${NAME}/classify`, png, 'image/png', 1));
  }
} finally {
  await server.stop();
}
console.log(
  `model ${NAME}, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_SECONDS} s per route, ${DURATION} s for the other rows; server and autocannon on this machine`,
);
for (const r of rows) {
  console.log(
    `${r.name.padEnd(36)} ${String(r.requests_per_sec).padStart(7)} req/s ${String(r.images_per_sec).padStart(8)} img/s  p50 ${r.p50_ms} ms  p99 ${r.p99_ms} ms  errors ${r.errors} non-2xx ${r.non2xx}`,
  );
}
const middle = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const median = middle(ratios);
const p99s = (route: string) => rows.filter((r) => r.name.startsWith(route)).map((r) => r.p99_ms);
console.log(
  `infer / echo per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}; median ${median.toFixed(2)} (target >= 0.85)`,
);
console.log(
  `p99 per round, median (worst): infer ${middle(p99s('infer (1'))} ms (${Math.max(...p99s('infer (1'))}), ` +
    `echo ${middle(p99s('echo'))} ms (${Math.max(...p99s('echo'))}); target for infer <= 10 ms`,
);
console.log(
  JSON.stringify({
    model: NAME,
    connections: CONNECTIONS,
    rounds: ROUNDS,
    round_seconds: ROUND_SECONDS,
    infer_over_echo: median,
    ratios,
    rows,
  }),
);
