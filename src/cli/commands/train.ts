/** `cnnx train`: train a model on a dataset into a run directory; `--print-shapes` shows the layer shapes. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { DATASET_NAMES, type DatasetName } from '../../data/index.js';
import { formatShapes, getModelSpec, MODEL_NAMES, type OptimizerName, type ScheduleName } from '../../models/index.js';
import {
  BACKEND_NAMES,
  OPTIMIZER_NAMES,
  readRunConfig,
  SCHEDULE_NAMES,
  train,
  type BackendName,
  type TrainConfig,
} from '../../train/index.js';
import { nonNegativeInt, oneOf, positiveInt, positiveNumber } from '../options.js';

interface TrainFlags {
  model: string;
  dataset?: DatasetName;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer?: OptimizerName;
  momentum?: number;
  schedule?: ScheduleName;
  seed: number;
  limit?: number;
  testLimit?: number;
  backend: BackendName;
  out?: string;
  resume?: string;
  printShapes?: boolean;
  dataDir?: string;
  offline?: boolean;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train LeNet-5 or AlexNet with TensorFlow.js')
    .option('-m, --model <name>', `model: ${MODEL_NAMES.join(' | ')}`, oneOf(MODEL_NAMES), 'lenet5')
    .option(
      '-d, --dataset <name>',
      `dataset: ${DATASET_NAMES.join(' | ')} (default: mnist; fashion-mnist for alexnet)`,
      oneOf(DATASET_NAMES),
    )
    .option('--epochs <n>', 'epochs (default per model)', positiveInt)
    .option('--batch-size <n>', 'batch size (default per model)', positiveInt)
    .option('--lr <rate>', 'peak learning rate (default per model)', positiveNumber)
    .option(
      '--optimizer <name>',
      `optimizer: ${OPTIMIZER_NAMES.join(' | ')} (default per model)`,
      oneOf(OPTIMIZER_NAMES),
    )
    .option('--momentum <m>', 'momentum for --optimizer momentum', positiveNumber)
    .option(
      '--schedule <name>',
      `learning-rate schedule: ${SCHEDULE_NAMES.join(' | ')} (default per model)`,
      oneOf(SCHEDULE_NAMES),
    )
    .option('--seed <n>', 'seed of initialisation, data order and dropout', nonNegativeInt, 42)
    .option('--limit <n>', 'train on the first N training examples (smoke runs)', positiveInt)
    .option('--test-limit <n>', 'evaluate on the first N test examples', positiveInt)
    .option('--backend <name>', `tfjs backend: ${BACKEND_NAMES.join(' | ')}`, oneOf(BACKEND_NAMES), 'auto')
    .option('-o, --out <dir>', 'run directory (default runs/<model>-<dataset>-<time>)')
    .option('--resume <run>', 'continue the run in this directory after its last checkpoint')
    .option('--print-shapes', "print each layer's output shape for one input and exit")
    .option('--data-dir <dir>', 'dataset cache directory (env CNNX_DATA_DIR)')
    .option('--offline', 'never download data')
    .addHelpText(
      'after',
      `
Defaults per model:
${MODEL_NAMES.map((name) => {
  const d = getModelSpec(name).defaults;
  return `  ${name.padEnd(12)} --optimizer ${d.optimizer} --lr ${d.lr} --epochs ${d.epochs} --batch-size ${d.batchSize} --schedule ${d.schedule}`;
}).join('\n')}
The notebook's LeNet-5 settings: --model lenet5 --optimizer sgd --lr 0.9 --epochs 10 --batch-size 256 --schedule constant`,
    )
    .action(async (flags: TrainFlags) => {
      const spec = getModelSpec(flags.model);
      if (flags.printShapes) {
        console.log(formatShapes(spec));
        return;
      }
      const controller = new AbortController();
      const onSigint = () => {
        if (controller.signal.aborted) process.exit(130);
        process.stderr.write('\nstopping after this batch (Ctrl-C again to quit without saving)\n');
        controller.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        let config: TrainConfig;
        let runDir: string;
        if (flags.resume) {
          runDir = flags.resume;
          config = await readRunConfig(runDir);
          if (flags.epochs) config.epochs = flags.epochs;
          if (flags.backend !== 'auto') config.backend = flags.backend;
        } else {
          const d = spec.defaults;
          const dataset = flags.dataset ?? (spec.name === 'alexnet' ? 'fashion-mnist' : 'mnist');
          config = {
            model: spec.name,
            dataset,
            epochs: flags.epochs ?? d.epochs,
            batchSize: flags.batchSize ?? d.batchSize,
            lr: flags.lr ?? d.lr,
            optimizer: flags.optimizer ?? d.optimizer,
            momentum: flags.momentum ?? d.momentum,
            schedule: flags.schedule ?? d.schedule,
            seed: flags.seed,
            limit: flags.limit,
            testLimit: flags.testLimit,
            backend: flags.backend,
          };
          runDir = flags.out ?? join('runs', `${spec.name}-${dataset}-${timestamp()}`);
        }
        const result = await train({
          config,
          runDir,
          resume: Boolean(flags.resume),
          dataDir: flags.dataDir,
          offline: flags.offline,
          signal: controller.signal,
        });
        if (result.interrupted) process.exitCode = 130;
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
