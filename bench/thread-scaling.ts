/**
 * `npx tsx bench/thread-scaling.ts [--model lenet5] [--rows 128] [--steps 30] [--rounds 3]`: how far this machine
 * lets independent training work scale, as the ceiling for data-parallel workers. Each round times the same
 * single-thread training step (wasm backend, `rows` examples, after 10 warm-up steps) three ways: one thread alone;
 * two worker threads in one process at once (as the replicas run); two processes at once. Prints examples/s of
 * each way and the two scalings (2 threads / 1, 2 processes / 1). No shared weights and no all-reduce: what is
 * lost here is lost to the machine or to threads sharing a process, not to the replicas' protocol.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { getModelSpec } from '../src/models/index.js';
import { useBackend } from '../src/train/backends/index.js';
import { createNetwork } from '../src/train/network.js';
import { createOptimizer } from '../src/train/optimizer.js';
import { trainStep } from '../src/train/step.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'lenet5' },
    rows: { type: 'string', default: '128' },
    steps: { type: 'string', default: '30' },
    rounds: { type: 'string', default: '3' },
    /** Internal: run the timed loop here and print its examples/s. */
    child: { type: 'boolean', default: false },
  },
});
/** How replicas.ts starts TypeScript workers under tsx. */
const TSX_LOADER = new URL('../src/common/tsx-worker-loader.mjs', import.meta.url).href;
const settings = { model: values.model!, rows: Number(values.rows), steps: Number(values.steps) };

/** Examples/s of `steps` training steps of `rows` examples on this thread, after 10 warm-up steps. */
async function timedSteps({ model, rows, steps }: typeof settings): Promise<number> {
  await useBackend('wasm');
  const spec = getModelSpec(model);
  const network = createNetwork(spec, 0);
  const { optimizer } = createOptimizer(spec.defaults);
  const [channels, height, width] = spec.input;
  const size = channels * height * width;
  const batch = {
    xs: Float32Array.from({ length: rows * size }, (_, i) => (i % 251) / 251),
    labels: Int32Array.from({ length: rows }, (_, i) => i % spec.classes),
    size: rows,
  };
  let started = 0;
  for (let step = 0; step < 10 + steps; step++) {
    if (step === 10) started = performance.now();
    await trainStep(network, optimizer, batch, [height, width, channels], { dropoutSeed: step });
  }
  return (rows * steps) / ((performance.now() - started) / 1000);
}

if (!isMainThread) {
  parentPort!.postMessage(await timedSteps(workerData as typeof settings));
} else if (values.child) {
  console.log(await timedSteps(settings));
} else {
  const inThreads = (count: number) =>
    Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<number>((resolve, reject) =>
            new Worker(new URL(import.meta.url), {
              workerData: settings,
              execArgv: [...process.execArgv, '--import', TSX_LOADER],
            })
              .once('message', resolve)
              .once('error', reject),
          ),
      ),
    );
  const args = [
    ...process.execArgv,
    '--import',
    TSX_LOADER,
    new URL(import.meta.url).pathname,
    '--child',
    '--model',
    settings.model,
    '--rows',
    String(settings.rows),
    '--steps',
    String(settings.steps),
  ];
  const inProcesses = (count: number) =>
    Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<number>((resolve, reject) => {
            const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
            child.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`exit ${code}`))));
          }),
      ),
    );
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const cpu = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores`;
  console.log(`${cpu}; ${settings.model}, ${settings.rows} rows a step, ${settings.steps} steps`);
  for (let round = 1; round <= Number(values.rounds); round++) {
    const one = sum(await inThreads(1));
    const threads = await inThreads(2);
    const processes = await inProcesses(2);
    console.log(
      `round ${round}: 1 thread ${one.toFixed(0)} ex/s; 2 threads ${threads.map((x) => x.toFixed(0)).join(' + ')} ` +
        `(${(sum(threads) / one).toFixed(2)}x); 2 processes ${processes.map((x) => x.toFixed(0)).join(' + ')} ` +
        `(${(sum(processes) / one).toFixed(2)}x)`,
    );
  }
}
