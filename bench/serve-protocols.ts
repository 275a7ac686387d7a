/**
 * `npx tsx bench/serve-protocols.ts`: the serving protocols side by side in one run, on a real port (`cnnx serve`
 * in its own process): JSON and binary-tensor REST for one image and for 64, each next to an echo of the same body
 * (parse only, no inference), and JSON exactly as tritonclient.http writes it (17-digit floats, spaces), with
 * autocannon and with Debian's `wrk` (lighter: it leaves the server more of a 2-core machine); and gRPC ModelInfer
 * with raw_input_contents, from Debian's `h2load` (nghttp2-client: the request's bytes on HTTP/2 from C, as ghz
 * would send them) in the same rounds, and from a @grpc/grpc-js client once at the end (a Node client takes a core
 * itself). One JSON line at the end.
 *
 * This machine's speed drifts within a minute, so the REST rows alternate in BENCH_ROUNDS rounds (default 5) of
 * BENCH_SECONDS each (default 3): each ratio is computed within a round, and the median of the rounds is reported
 * with its range. Rows give the median of the rounds. BENCH_SERVER_ARGS adds `cnnx serve` flags (an A/B of one).
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import autocannon from 'autocannon';
import { loadDataset } from '../src/data/index.js';
import { startServe, wordsOf } from './serve-process.js';

const PORT = Number(process.env.BENCH_PORT ?? 8797);
const GRPC_PORT = PORT + 1;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SERVER_ARGS = wordsOf(process.env.BENCH_SERVER_ARGS);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MODEL = 'models/lenet5-relu-mnist.onnx';
const NAME = 'lenet5-relu-mnist';
const base = `http://127.0.0.1:${PORT}`;

for (const [tool, debian] of [
  ['wrk', 'wrk'],
  ['h2load', 'nghttp2-client'],
]) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`this bench runs ${tool}: apt-get install ${debian}`);
  }
}

const mnist = await loadDataset('mnist');
const images = (count: number) =>
  Float32Array.from(mnist.test.pixels.subarray(0, count * 784), (v) => Math.round((v / 255) * 1e4) / 1e4);
const jsonBody = (count: number) =>
  JSON.stringify({
    inputs: [{ name: 'input', shape: [count, 1, 28, 28], datatype: 'FP32', data: Array.from(images(count)) }],
  });
/**
 * A JSON request exactly as tritonclient.http writes one for `set_data_from_numpy(x, binary_data=False)` and a JSON
 * output: Python's `json.dumps` (", " and ": " between items) of each float32 as a Python float, shortest repr of
 * the double ("0.0" for 0, "0.20392157137393951" for float32(52/255)): 5.8 KB for the first MNIST test digit
 * against the 4-decimal body's 3.6 KB, 379 KB for 64 digits against 245 KB.
 */
const pythonFloat = (value: number) => (Number.isInteger(value) ? value.toFixed(1) : String(value));
const tritonJsonBody = (count: number) => {
  const data = Array.from(mnist.test.pixels.subarray(0, count * 784), (v) => pythonFloat(Math.fround(v / 255)));
  return (
    `{"inputs": [{"name": "input", "shape": [${count}, 1, 28, 28], "datatype": "FP32", "data": [${data.join(', ')}]}], ` +
    `"outputs": [{"name": "logits", "parameters": {"binary_data": false}}]}`
  );
};
/** A binary tensor request as tritonclient.http sends it: JSON header, then the float32 bytes. */
const binaryBody = (count: number) => {
  const values = Buffer.from(images(count).buffer);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        { name: 'input', shape: [count, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: values.length } },
      ],
      parameters: { binary_data_output: true },
    }),
  );
  return { body: Buffer.concat([header, values]), headerLength: header.length };
};

/** The load generators' bodies, scripts and logs; removed at the end. */
const scratch = await mkdtemp(join(tmpdir(), 'cnnx-serve-protocols-'));
const server = await startServe([
  ...['--model', MODEL, '--port', String(PORT), '--grpc-port', String(GRPC_PORT)],
  ...['--ep', 'cpu', '--echo', '--no-watch', ...SERVER_ARGS],
]);

interface Row {
  tool: string;
  name: string;
  requests_per_sec: number;
  images_per_sec: number;
  p99_ms: number;
  errors: number;
}

async function cannon(
  name: string,
  path: string,
  body: Buffer | string,
  headers: Record<string, string>,
  count: number,
) {
  const result = await autocannon({
    url: `${base}${path}`,
    method: 'POST',
    headers,
    body,
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  const rps = Math.round(result.requests.average);
  return {
    tool: 'autocannon',
    name,
    requests_per_sec: rps,
    images_per_sec: rps * count,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

/** wrk with a Lua script that posts `body` (written to a file, so binary bytes pass unchanged). */
async function wrk(name: string, path: string, body: Buffer | string, headers: Record<string, string>, count: number) {
  const dir = await mkdtemp(join(scratch, 'wrk-'));
  await writeFile(join(dir, 'body'), body);
  const script = [
    `local f = io.open("${join(dir, 'body')}", "rb"); wrk.body = f:read("*all"); f:close()`,
    'wrk.method = "POST"',
    ...Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`),
    'done = function(summary, latency, requests)',
    '  io.write(string.format("JSON %d %d %.3f\\n", summary.requests, summary.errors.status + summary.errors.timeout, latency:percentile(99) / 1000))',
    'end',
  ].join('\n');
  await writeFile(join(dir, 'script.lua'), script);
  const { stdout } = await promisify(execFile)('wrk', [
    '-t1',
    `-c${CONNECTIONS}`,
    `-d${SECONDS}s`,
    '-s',
    join(dir, 'script.lua'),
    `${base}${path}`,
  ]);
  const [requests, errors, p99] = /JSON (\d+) (\d+) ([\d.]+)/.exec(stdout)!.slice(1).map(Number) as [
    number,
    number,
    number,
  ];
  const rps = Math.round(requests / SECONDS);
  return { tool: 'wrk', name, requests_per_sec: rps, images_per_sec: rps * count, p99_ms: p99, errors };
}

const definition = protoLoader.loadSync('src/serve/grpc/grpc_service.proto', { keepCase: true, longs: Number });
/** A ModelInfer request as Triton's gRPC client sends one: the tensor's bytes in raw_input_contents. */
const grpcRequest = (count: number) => ({
  model_name: NAME,
  inputs: [{ name: 'input', datatype: 'FP32', shape: [count, 1, 28, 28] }],
  raw_input_contents: [Buffer.from(images(count).buffer)],
});

/**
 * h2load posting one ModelInfer message (a gRPC frame: flag byte, big-endian length, the protobuf) on one HTTP/2
 * connection with CONNECTIONS streams in flight, for SECONDS. h2load sees HTTP statuses only, and a gRPC error is an
 * HTTP 200 with a grpc-status trailer: the grpc-js rows at the end count those.
 */
async function h2load(name: string, count: number): Promise<Row> {
  const method = definition['inference.GRPCInferenceService'] as Record<
    string,
    protoLoader.MethodDefinition<object, object>
  >;
  const message = method.ModelInfer!.requestSerialize(grpcRequest(count));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  const dir = await mkdtemp(join(scratch, 'h2load-'));
  await writeFile(join(dir, 'body'), frame);
  // prettier-ignore
  const { stdout } = await promisify(execFile)('h2load', [
    '-D', String(SECONDS), '-c1', `-m${CONNECTIONS}`, '-t1', '-d', join(dir, 'body'), '--log-file', join(dir, 'log'),
    '-H', 'content-type: application/grpc', '-H', 'te: trailers',
    `http://127.0.0.1:${GRPC_PORT}/inference.GRPCInferenceService/ModelInfer`,
  ]);
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(stdout);
  if (!finished) throw new Error(`h2load printed no rate:\n${stdout}`);
  // The log: one line per request, "start (us since the run began)\tHTTP status\tduration (us)".
  const log = (await readFile(join(dir, 'log'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => line.split('\t').map(Number));
  const latencies = log.map((fields) => fields[2]! / 1000).sort((a, b) => a - b);
  const rps = Math.round(Number(finished[2]));
  return {
    tool: 'h2load',
    name,
    requests_per_sec: rps,
    images_per_sec: rps * count,
    p99_ms: Math.round(latencies[Math.floor(latencies.length * 0.99)]! * 100) / 100,
    errors: log.filter((fields) => fields[1] !== 200).length,
  };
}

/** gRPC ModelInfer with raw_input_contents, CONNECTIONS calls in flight on one channel, for SECONDS. */
async function grpcLoad(count: number): Promise<Row> {
  const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
  const Service = inference.GRPCInferenceService as grpc.ServiceClientConstructor;
  const client = new Service(`127.0.0.1:${GRPC_PORT}`, grpc.credentials.createInsecure()) as grpc.Client &
    Record<string, (request: unknown, done: (error: grpc.ServiceError | null) => void) => void>;
  const request = grpcRequest(count);
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const started = performance.now();
      await new Promise<void>((resolve) =>
        client.ModelInfer!(request, (error) => {
          if (error) errors++;
          else latencies.push(performance.now() - started);
          resolve();
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  client.close();
  latencies.sort((a, b) => a - b);
  const rps = Math.round(latencies.length / SECONDS);
  return {
    tool: 'grpc-js',
    name: `gRPC raw (${count} image${count > 1 ? 's' : ''})`,
    requests_per_sec: rps,
    images_per_sec: rps * count,
    p99_ms: Math.round(latencies[Math.floor(latencies.length * 0.99)]! * 100) / 100,
    errors,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Every round's rows, by tool and then by case name. */
const rounds: Record<string, Row>[] = [];
const grpcRows: Row[] = [];
try {
  const json = { 'content-type': 'application/json' };
  const bin1 = binaryBody(1);
  const bin64 = binaryBody(64);
  const binary = (length: number) => ({ 'inference-header-content-length': String(length) });
  const cases: [string, string, Buffer | string, Record<string, string>, number][] = [
    ['echo JSON (1 image)', `/debug/echo/${NAME}`, jsonBody(1), json, 1],
    ['infer JSON (1 image)', `/v2/models/${NAME}/infer`, jsonBody(1), json, 1],
    ['echo binary (1 image)', `/debug/echo-binary/${NAME}`, bin1.body, binary(bin1.headerLength), 1],
    ['infer binary (1 image)', `/v2/models/${NAME}/infer`, bin1.body, binary(bin1.headerLength), 1],
    ['infer JSON (64 images)', `/v2/models/${NAME}/infer`, jsonBody(64), json, 64],
    ['infer tritonclient JSON (1 image)', `/v2/models/${NAME}/infer`, tritonJsonBody(1), json, 1],
    ['infer tritonclient JSON (64 images)', `/v2/models/${NAME}/infer`, tritonJsonBody(64), json, 64],
    ['infer binary (64 images)', `/v2/models/${NAME}/infer`, bin64.body, binary(bin64.headerLength), 64],
  ];
  const grpcCases: [string, number][] = [
    ['gRPC raw (1 image)', 1],
    ['gRPC raw (64 images)', 64],
  ];
  await cannon('warm-up', cases[1]![1], cases[1]![2], cases[1]![3], 1);
  for (let round = 0; round < ROUNDS; round++) {
    const rows: Record<string, Row> = {};
    for (const run of [cannon, wrk]) for (const c of cases) rows[`${run.name} ${c[0]}`] = await run(...c);
    for (const [name, count] of grpcCases) rows[`h2load ${name}`] = await h2load(name, count);
    rounds.push(rows);
    console.error(`round ${round + 1}/${ROUNDS} done`);
  }
  grpcRows.push(await grpcLoad(1), await grpcLoad(64));
} finally {
  await server.stop();
  await rm(scratch, { recursive: true, force: true });
}

const tools = { autocannon: 'cannon', wrk: 'wrk' } as const;
/** gRPC (h2load) against binary REST (wrk), both C clients, images/s within each round. */
const grpcPairs: [string, string, string][] = [
  ['gRPC/binary REST 1 image', 'h2load gRPC raw (1 image)', 'wrk infer binary (1 image)'],
  ['gRPC/binary REST 64 images', 'h2load gRPC raw (64 images)', 'wrk infer binary (64 images)'],
];
const rows: Row[] = Object.keys(rounds[0]!).map((key) => {
  const all = rounds.map((round) => round[key]!);
  return {
    ...all[0]!,
    requests_per_sec: Math.round(median(all.map((r) => r.requests_per_sec))),
    images_per_sec: Math.round(median(all.map((r) => r.images_per_sec))),
    p99_ms: median(all.map((r) => r.p99_ms)),
    errors: all.reduce((sum, r) => sum + r.errors, 0),
  };
});
rows.push(...grpcRows);
for (const r of rows) {
  console.log(
    `${r.tool.padEnd(10)} ${r.name.padEnd(36)} ${String(r.requests_per_sec).padStart(7)} req/s ${String(r.images_per_sec).padStart(8)} img/s  p99 ${r.p99_ms} ms  errors ${r.errors}`,
  );
}
/** Each ratio: numerator and denominator case names, compared on images/s within each round. */
const pairs: [string, string, string][] = [
  ['binary/JSON 1 image', 'infer binary (1 image)', 'infer JSON (1 image)'],
  ['binary/JSON 64 images', 'infer binary (64 images)', 'infer JSON (64 images)'],
  ['JSON infer/echo', 'infer JSON (1 image)', 'echo JSON (1 image)'],
  ['binary infer/echo', 'infer binary (1 image)', 'echo binary (1 image)'],
  ['binary/tritonclient JSON 1 image', 'infer binary (1 image)', 'infer tritonclient JSON (1 image)'],
  ['binary/tritonclient JSON 64 images', 'infer binary (64 images)', 'infer tritonclient JSON (64 images)'],
];
interface Ratio {
  median: number;
  min: number;
  max: number;
}
const ratioOf = (top: string, bottom: string): Ratio => {
  const each = rounds.map((round) => round[top]!.images_per_sec / round[bottom]!.images_per_sec);
  return { median: median(each), min: Math.min(...each), max: Math.max(...each) };
};
const ratios: Record<string, Ratio> = Object.fromEntries([
  ...Object.entries(tools).flatMap(([tool, runner]) =>
    pairs.map(([label, top, bottom]) => [`${tool}: ${label}`, ratioOf(`${runner} ${top}`, `${runner} ${bottom}`)]),
  ),
  ...grpcPairs.map(([label, top, bottom]) => [label, ratioOf(top, bottom)]),
]);
for (const [name, { median: m, min, max }] of Object.entries(ratios)) {
  console.log(`${name}: ${m.toFixed(2)} (rounds ${min.toFixed(2)}-${max.toFixed(2)})`);
}
console.log(JSON.stringify({ connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS, rows, ratios }));
