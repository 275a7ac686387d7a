/**
 * The Node half of the GPU benchmark (`bench/gpu/run.sh`), bundled to dist/gpu/device.mjs by `npm run build:gpu`
 * because the GPU machine has no tsx. Two parts, run as separate processes so tfjs's Dawn and onnxruntime's
 * WebGPU never share one: `train` (tfjs WebGPU training examples/s on real MNIST) and `infer` (onnxruntime-node
 * WebGPU vs CPU execution providers, and what the CUDA provider lacks). Each prints one JSON line per figure.
 *
 *   node dist/gpu/device.mjs train|infer --data <dir with MNIST IDX files> [--quick]
 *   node dist/gpu/device.mjs summary --data <output dir of run.sh>
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { messageOf } from '../../src/common/index.js';
import { loadDataset } from '../../src/data/index.js';
import { buildOnnxModel, paritySet } from '../../src/export/index.js';
import { getModelSpec } from '../../src/models/index.js';
import { openSession, type ModelSession } from '../../src/runtime/index.js';
import { benchmarkTraining, createNetwork, weightsOf } from '../../src/train/index.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { data: { type: 'string' }, quick: { type: 'boolean', default: false } },
});
const part = positionals[0];
const idxDir = values.data;
const quick = values.quick;
const report = (figure: Record<string, unknown>) => console.log(JSON.stringify({ part, ...figure }));

/** Steady-state training examples/s with the webgpu backend, at the issue's batch sizes. */
async function train(): Promise<void> {
  const runs = quick
    ? [
        { model: 'lenet5', batchSize: 32, steps: 2, warmup: 1 },
        { model: 'alexnet', batchSize: 2, steps: 1, warmup: 1 },
      ]
    : [
        { model: 'lenet5', batchSize: 256, steps: 100, warmup: 10 },
        { model: 'alexnet', batchSize: 128, steps: 20, warmup: 3 },
      ];
  for (const run of runs) {
    try {
      const result = await benchmarkTraining({ ...run, backend: 'webgpu', dataset: 'mnist', idxDir, profile: !quick });
      report({ figure: 'tfjs-webgpu-train', ...result });
    } catch (error) {
      report({ figure: 'tfjs-webgpu-train', model: run.model, error: messageOf(error) });
    }
  }
}

/** The AlexNet graph with fresh (Xavier) weights: speed and agreement do not depend on training. */
async function alexnetOnnx(): Promise<Uint8Array> {
  const spec = getModelSpec('alexnet');
  const network = createNetwork(spec, 0);
  const weights = await weightsOf(network);
  network.dispose();
  return buildOnnxModel(spec, weights, { dataset: 'none (Xavier init)', labels: [], preprocess: {}, metrics: {} });
}

async function timeRuns(session: ModelSession, data: Float32Array, dims: number[], runs: number) {
  for (let i = 0; i < 3; i++) await session.run(data, dims);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await session.run(data, dims);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50_ms: times[Math.floor(runs / 2)]!, mean_ms: times.reduce((a, b) => a + b) / runs };
}

/** Batch-1 latency, batch-N throughput and max |logit difference| against the CPU provider, per provider. */
async function infer(): Promise<void> {
  const mnist = await loadDataset('mnist', { idxDir, offline: true });
  const models = [
    { name: 'lenet5-relu-mnist', bytes: await readFile('models/lenet5-relu-mnist.onnx'), side: 28, batch: 256 },
    { name: 'alexnet (Xavier init)', bytes: await alexnetOnnx(), side: 224, batch: 64 },
  ];
  for (const model of quick ? models.slice(0, 1) : models) {
    const single = paritySet(mnist.test, 1, model.side);
    const many = paritySet(mnist.test, quick ? 8 : model.batch, model.side);
    let reference: Float32Array | undefined;
    for (const ep of ['cpu', 'webgpu', 'cuda'] as const) {
      let session: ModelSession;
      try {
        session = await openSession(model.bytes, { ep });
      } catch (error) {
        report({ figure: 'ort-node', model: model.name, ep, error: messageOf(error) });
        continue;
      }
      try {
        const logits = (await session.run(many.data, many.dims)).data.slice();
        reference ??= logits;
        let maxAbsDiff = 0;
        for (let i = 0; i < logits.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[i]! - reference[i]!));
        const latency = await timeRuns(session, single.data, single.dims, quick ? 5 : 50);
        const throughput = await timeRuns(session, many.data, many.dims, quick ? 2 : 20);
        report({
          figure: 'ort-node',
          model: model.name,
          ep,
          batch1_p50_ms: latency.p50_ms,
          batch: many.dims[0],
          batch_p50_ms: throughput.p50_ms,
          images_per_sec: (many.dims[0]! * 1000) / throughput.mean_ms,
          max_abs_diff_vs_cpu: maxAbsDiff,
        });
      } catch (error) {
        report({ figure: 'ort-node', model: model.name, ep, error: messageOf(error) });
      } finally {
        await session.release();
      }
    }
  }
}

/** A Markdown table from the JSON lines of one run (`--data` is the output folder): WebGPU next to PyTorch. */
async function summary(): Promise<void> {
  const lines = async (file: string) =>
    (await readFile(`${idxDir}/${file}`, 'utf8').catch(() => ''))
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const torch = await lines('torch.jsonl');
  const tfjs = await lines('train.jsonl');
  const fmt = (n: unknown) =>
    typeof n !== 'number' ? String(n ?? '—') : Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 0);
  console.log(`GPU: ${String(torch[0]?.gpu ?? 'unknown')}; tfjs ${String(tfjs[0]?.device ?? '')}\n`);
  console.log('| model | batch | tfjs WebGPU examples/s | PyTorch eager examples/s | WebGPU / PyTorch |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const t of tfjs) {
    const p = torch.find((row) => row.model === t.model);
    const ratio = typeof t.examples_per_sec === 'number' && typeof p?.examples_per_sec === 'number';
    console.log(
      `| ${String(t.model)} | ${fmt(t.batch_size)} | ${t.error ? `error: ${String(t.error)}` : fmt(t.examples_per_sec)} | ${fmt(p?.examples_per_sec)} | ${ratio ? ((t.examples_per_sec as number) / (p!.examples_per_sec as number)).toFixed(2) : '—'} |`,
    );
  }
  console.log('\n| model | EP | batch-1 p50 ms | batch | images/s | max abs diff vs CPU |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of await lines('infer.jsonl')) {
    console.log(
      r.error
        ? `| ${String(r.model)} | ${String(r.ep)} | error: ${String(r.error).slice(0, 160)} | | | |`
        : `| ${String(r.model)} | ${String(r.ep)} | ${fmt(r.batch1_p50_ms)} | ${fmt(r.batch)} | ${fmt(r.images_per_sec)} | ${Number(r.max_abs_diff_vs_cpu).toExponential(2)} |`,
    );
  }
}

if (part === 'train') await train();
else if (part === 'summary') await summary();
else if (part === 'infer') await infer();
else {
  console.error(
    'usage: device.mjs train|infer --data <dir with MNIST IDX files> [--quick] | summary --data <output dir>',
  );
  process.exitCode = 2;
}
