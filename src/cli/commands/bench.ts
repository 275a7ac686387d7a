/** `cnnx bench train`: training throughput on real data (see BENCHMARKS.md for recorded figures). */
import type { Command } from 'commander';
import { MODEL_NAMES } from '../../models/index.js';
import { BACKEND_NAMES, benchmarkTraining, type BackendName } from '../../train/index.js';
import { oneOf, positiveInt } from '../options.js';

/** PyTorch 1.13 eager on the same 2-core machine, LeNet-5 batch 256 (DESIGN.md): the bar to beat. */
const PYTORCH_LENET5_2CORE = 6700;

interface BenchTrainFlags {
  model: string;
  batchSize: number;
  backend: BackendName;
  steps: number;
  warmup: number;
  profile?: boolean;
  json?: boolean;
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmark training (and, later, inference)');
  bench
    .command('train')
    .description('steady-state training examples/s on real data, after warm-up')
    .option('-m, --model <name>', `model: ${MODEL_NAMES.join(' | ')}`, oneOf(MODEL_NAMES), 'lenet5')
    .option('--batch-size <n>', 'batch size', positiveInt, 256)
    .option('--backend <name>', `tfjs backend: ${BACKEND_NAMES.join(' | ')}`, oneOf(BACKEND_NAMES), 'auto')
    .option('--steps <n>', 'timed steps', positiveInt, 20)
    .option('--warmup <n>', 'untimed steps first', positiveInt, 3)
    .option('--profile', 'add per-kernel milliseconds of one step')
    .option('--json', 'print one JSON line')
    .action(async (flags: BenchTrainFlags) => {
      const result = await benchmarkTraining(flags);
      const vsPytorch = result.model === 'lenet5' ? { pytorch_2core_examples_per_sec: PYTORCH_LENET5_2CORE } : {};
      if (flags.json) {
        console.log(JSON.stringify({ ...result, ...vsPytorch }));
        return;
      }
      console.log(
        `${result.model}, batch ${result.batch_size}, ${result.device}: ${Math.round(result.examples_per_sec)} examples/s ` +
          `(${result.ms_per_step.toFixed(1)} ms/step, peak RSS ${result.peak_rss_mb} MB)`,
      );
      if (result.model === 'lenet5') {
        console.log(
          `PyTorch eager on 2 cores: ~${PYTORCH_LENET5_2CORE} examples/s -> ${(result.examples_per_sec / PYTORCH_LENET5_2CORE).toFixed(2)}x`,
        );
      }
      if (result.profile) {
        for (const [name, ms] of Object.entries(result.profile).slice(0, 15))
          console.log(`  ${name.padEnd(28)} ${ms} ms`);
      }
    });
}
