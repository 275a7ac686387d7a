/** `cnnx bench train`: training throughput on real data, as measured here and now (nothing else is printed). */
import type { Command } from 'commander';
import { MODEL_NAMES } from '../../models/index.js';
import { BACKEND_NAMES, benchmarkTraining, formatRate, type BackendName } from '../../train/index.js';
import { nonNegativeInt, oneOf, positiveInt } from '../options.js';

interface BenchTrainFlags {
  model: string;
  batchSize: number;
  backend: BackendName;
  steps: number;
  warmup: number;
  profile?: boolean;
  json?: boolean;
  workers?: number;
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
    .option('--warmup <n>', 'untimed steps first', nonNegativeInt, 3)
    .option(
      '--workers <n>',
      'threads each batch is split over (default: one per core on wasm and cpu); with more than one, the same steps on one thread are measured too, for the scaling',
      positiveInt,
    )
    .option('--profile', 'add per-kernel milliseconds of one step (on one thread)')
    .option('--json', 'print one JSON line')
    .action(async (flags: BenchTrainFlags) => {
      const result = await benchmarkTraining(flags);
      if (flags.json) {
        console.log(JSON.stringify(result));
        return;
      }
      const workers = result.workers === 1 ? '1 worker' : `${result.workers} workers`;
      console.log(
        `${result.model}, batch ${result.batch_size}, ${result.device}, ${workers}: ${formatRate(result.examples_per_sec)} examples/s ` +
          `(${result.steps_per_sec.toFixed(2)} steps/s, ${result.ms_per_step.toFixed(1)} ms/step, peak RSS ${result.peak_rss_mb} MB)`,
      );
      if (result.one_worker && result.scaling) {
        console.log(
          `  1 worker: ${formatRate(result.one_worker.examples_per_sec)} examples/s (${result.one_worker.ms_per_step.toFixed(1)} ms/step); ` +
            `scaling ${result.scaling.toFixed(2)}x`,
        );
      }
      if (result.profile) {
        for (const [name, ms] of Object.entries(result.profile).slice(0, 15))
          console.log(`  ${String(ms).padStart(8)} ms  ${name}`);
      }
    });
}
