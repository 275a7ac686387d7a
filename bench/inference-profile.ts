/**
 * `npx tsx bench/inference-profile.ts [model.onnx] [batch] [level]`: where ONNX Runtime's time goes for one batch on
 * one thread, as the server's inference threads run it (graph optimisation `level`, default `all`, as `cnnx serve
 * --graph-optimization`): microseconds per node, from ORT's own profiler, averaged over 200 runs after 50 warm-up
 * runs (default: the served LeNet, batch 64).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

const model = process.argv[2] ?? 'models/lenet5-relu-mnist.onnx';
const batch = Number(process.argv[3] ?? 64);
const level = (process.argv[4] ?? 'all') as 'disabled' | 'basic' | 'extended' | 'all';
const RUNS = 200;
const prefix = join(tmpdir(), `cnnx-ort-profile-${process.pid}`);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: 1,
  graphOptimizationLevel: level,
  executionProviders: ['cpu'],
});
const [c, h, w] = [1, 28, 28];
const input = new ort.Tensor(
  'float32',
  new Float32Array(batch * c * h * w).map((_, i) => (i % 17) / 17),
  [batch, c, h, w],
);
const feeds = { [session.inputNames[0]!]: input };
for (let i = 0; i < 50; i++) await session.run(feeds);
let started = performance.now();
for (let i = 0; i < RUNS; i++) await session.run(feeds);
const perRun = ((performance.now() - started) * 1000) / RUNS;
await session.release();

const profiled = await ort.InferenceSession.create(model, {
  intraOpNumThreads: 1,
  graphOptimizationLevel: level,
  executionProviders: ['cpu'],
  enableProfiling: true,
  profileFilePrefix: prefix,
});
for (let i = 0; i < 50; i++) await profiled.run(feeds);
started = performance.now();
for (let i = 0; i < RUNS; i++) await profiled.run(feeds);
profiled.endProfiling();
await profiled.release();
const file = (await readdir(tmpdir())).find((name) => join(tmpdir(), name).startsWith(prefix))!;
const events = JSON.parse(await readFile(join(tmpdir(), file), 'utf8')) as {
  cat: string;
  name: string;
  dur: number;
  args: { op_name?: string };
}[];
await rm(join(tmpdir(), file));
const byNode = new Map<string, number>();
for (const event of events) {
  if (event.cat !== 'Node' || !event.name.endsWith('_kernel_time')) continue;
  const key = `${event.args.op_name} ${event.name.replace(/_kernel_time$/, '')}`;
  byNode.set(key, (byNode.get(key) ?? 0) + event.dur / RUNS);
}
console.log(`${cpus()[0]?.model ?? 'unknown CPU'}; ${model}, batch ${batch}, one thread, graph optimisation ${level}`);
console.log(`InferenceSession.run: ${perRun.toFixed(0)} us a batch, ${(perRun / batch).toFixed(1)} us an image`);
for (const [node, us] of [...byNode].sort((a, b) => b[1] - a[1]))
  console.log(`${us.toFixed(0).padStart(7)} us  ${node}`);
