/** `cnnx train`: train a model on a dataset into a run directory; `--print-shapes` shows the layer shapes. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { CnnxError } from '../../common/index.js';
import {
  DATASET_NAMES,
  DEFAULT_DISTORTIONS,
  describeDistortions,
  DISTORTION_NAMES,
  parseDistortions,
  type DatasetName,
  type DistortionName,
} from '../../data/index.js';
import {
  countParameters,
  formatShapes,
  getModelSpec,
  MODEL_NAMES,
  type OptimizerName,
  type ScheduleName,
} from '../../models/index.js';
import {
  BACKEND_NAMES,
  CHECKPOINT_EVERY_S,
  DEFAULT_VAL_SPLIT,
  loadRunDataset,
  OPTIMIZER_NAMES,
  checkpointPosition,
  readMetrics,
  readRunConfig,
  runPath,
  SCHEDULE_NAMES,
  SELECT_ON,
  specForRun,
  StoppedBeforeTraining,
  train,
  type BackendName,
  type SelectOn,
  type TrainConfig,
} from '../../train/index.js';
import {
  addDataSourceOptions,
  addUserDataOptions,
  defaultRunDir,
  nonNegativeNumber,
  oneOf,
  positiveInt,
  positiveNumber,
  refuseUserDataOptions,
  seed,
  type DataSourceFlags,
  type UserDataFlags,
} from '../options.js';
import { exitAsStopped, stopSignals } from '../signals.js';

/** The model a run on the user's own pictures gets when none is named. */
const DATA_MODEL = 'lenet5-relu';

interface TrainFlags extends DataSourceFlags, UserDataFlags {
  model?: string;
  dataset?: DatasetName;
  selectOn?: SelectOn;
  valSplit?: number;
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
  workers?: number;
  /** Minutes between checkpoints within an epoch; 0: after each epoch only. */
  checkpointEvery: number;
  out?: string;
  resume?: string;
  printShapes?: boolean;
  /** `true` for `--augment` without names. */
  augment?: DistortionName[] | true;
}

/** `--augment`'s value: distortion names, comma-separated, or `none`. */
function distortionList(value: string): DistortionName[] {
  try {
    return parseDistortions(value);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}.`);
  }
}

/** `--val-split`'s value: a fraction strictly between 0 and 1. */
function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n < 1)) {
    throw new InvalidArgumentError(`expected a fraction between 0 and 1 (e.g. 0.1), got "${value}".`);
  }
  return n;
}

export function registerTrain(program: Command): void {
  const command = program
    .command('train')
    .description('train LeNet-5 or AlexNet with TensorFlow.js')
    .option(
      '-m, --model <name>',
      `model: ${MODEL_NAMES.join(' | ')} (default: lenet5; with --data, ${DATA_MODEL}, which trains well on a few hundred pictures)`,
      oneOf(MODEL_NAMES),
    )
    .option(
      '-d, --dataset <name>',
      `dataset: ${DATASET_NAMES.join(' | ')} (default per model: ${MODEL_NAMES.map((m) => `${m} ${getModelSpec(m).defaultDataset}`).join(', ')})`,
      oneOf(DATASET_NAMES),
    )
    .option('--epochs <n>', 'epochs (default per model)', positiveInt)
    .option(
      '--batch-size <n>',
      'batch size (default per model; with --data, smaller on a small training part so an epoch has 8 steps)',
      positiveInt,
    )
    .option('--lr <rate>', 'peak learning rate (default per model)', positiveNumber)
    .option(
      '--optimizer <name>',
      `optimizer: ${OPTIMIZER_NAMES.join(' | ')} (default per model)`,
      oneOf(OPTIMIZER_NAMES),
    )
    .option('--momentum <m>', 'momentum for --optimizer momentum, from 0 to below 1', momentumValue)
    .option(
      '--schedule <name>',
      `learning-rate schedule: ${SCHEDULE_NAMES.join(' | ')} (default per model)`,
      oneOf(SCHEDULE_NAMES),
    )
    .option('--seed <n>', 'seed of initialisation, data order, dropout and distortions (32-bit)', seed, 42)
    .option('--limit <n>', 'train on the first N training examples (smoke runs)', positiveInt)
    .option('--test-limit <n>', 'evaluate on the first N test examples', positiveInt)
    .option('--backend <name>', `tfjs backend: ${BACKEND_NAMES.join(' | ')}`, oneOf(BACKEND_NAMES), 'auto')
    .option(
      '--workers <n>',
      'threads each batch is split over on the wasm and cpu backends (default: one per core; 1 trains on the main thread). ' +
        'The same N gives the same weights every time; another N the same up to float rounding',
      positiveInt,
    )
    .option(
      '--checkpoint-every <minutes>',
      'minutes between checkpoints within an epoch, so that a killed run loses at most that much of it (0: after each epoch only)',
      checkpointMinutes,
      CHECKPOINT_EVERY_S / 60,
    )
    .option('-o, --out <dir>', 'run directory (default runs/<model>-<dataset>-<time>)')
    .option(
      '--resume <run>',
      'continue the run in this directory after its last checkpoint (only --epochs, --backend, --workers and --checkpoint-every may change; --data and --test-data say where moved data is now)',
    )
    .option(
      '--augment [names]',
      `distort training images of MNIST or Fashion-MNIST (not --data): comma-separated names from ` +
        `${DISTORTION_NAMES.join(' | ')}, or none; without names: ${DEFAULT_DISTORTIONS.join(',')}`,
      distortionList,
    )
    .option(
      '--select-on <part>',
      `where the best epoch is chosen: ${SELECT_ON.join(' | ')} (val: on --val-split of the training data, the test set ` +
        `evaluated once at the end; test: after every epoch on the test set, as the notebook does). Default: val for ` +
        `--data and with --val-split, else test`,
      oneOf(SELECT_ON),
    )
    .option(
      '--val-split <fraction>',
      `fraction of the training data held out to choose the best epoch on (stratified, seeded; default ${DEFAULT_VAL_SPLIT})`,
      fraction,
    )
    .option('--print-shapes', "print each layer's output shape for one input and exit");
  addUserDataOptions(addDataSourceOptions(command))
    .addHelpText(
      'after',
      `
Defaults per model:
${MODEL_NAMES.map((name) => {
  const d = getModelSpec(name).defaults;
  return `  ${name.padEnd(12)} --optimizer ${d.optimizer} --lr ${d.lr} --epochs ${d.epochs} --batch-size ${d.batchSize} --schedule ${d.schedule}`;
}).join('\n')}
The notebook's LeNet-5 settings: --model lenet5 --optimizer sgd --lr 0.9 --epochs 10 --batch-size 256 --schedule constant --select-on test
Your own pictures: --data ./pics (pics/train/<class>/*.png, optionally pics/test/<class>/...) or --data train.csv
(label, pixels); the model takes the pictures' channels, size and classes (--channels, --image-size to change them).
Distortions (--augment; each applied to a training image with probability p and a random strength, never to test
images; LeCun et al. 1998, Simard et al. 2003):
${describeDistortions()
  .map((line) => `  ${line}`)
  .join('\n')}`,
    )
    .action(async (flags: TrainFlags, command: Command) => {
      if (flags.printShapes) {
        // A run's own model when one is named, else --model (fitted to --data when given).
        const config = flags.resume ? await readRunConfig(flags.resume) : newConfig(flags).config;
        if (config.data && !config.classes) await loadRunDataset(config, flags);
        const spec = config.data ? specForRun(config) : getModelSpec(config.model);
        console.log(formatShapes(spec));
        console.log(`parameters: ${countParameters(spec).toLocaleString('en-US')}`);
        return;
      }
      const { config, runDir, completed } = flags.resume
        ? await resumedConfig(flags.resume, flags, command)
        : { ...newConfig(flags), completed: undefined };
      if (completed !== undefined) {
        console.log(
          `${runDir} is complete (${completed} of ${config.epochs} epochs); to train it further give the new total: cnnx train --resume ${runDir} --epochs ${completed + 1}`,
        );
        return;
      }
      const stop = stopSignals(undefined); // training says it is stopping;
      try {
        const result = await train({
          config,
          runDir,
          resume: Boolean(flags.resume),
          dataDir: flags.dataDir,
          idxDir: flags.idxDir,
          offline: flags.offline,
          signal: stop.signal,
          checkpointEvery: flags.checkpointEvery * 60,
          // Own pictures only: a built-in dataset's --limit runs keep the batch their learning rate was tuned for.
          defaultBatchSize: !flags.resume && flags.batchSize === undefined && flags.data !== undefined,
        });
        if (result.interrupted) exitAsStopped(command, result.signal);
      } catch (error) {
        if (error instanceof StoppedBeforeTraining) exitAsStopped(command, error.signal);
        throw error;
      } finally {
        stop.dispose();
      }
    });
}

/** `--checkpoint-every`'s minutes: a number >= 0, and not one so small that it reads as 0, which turns them off. */
function checkpointMinutes(value: string): number {
  const minutes = nonNegativeNumber(value);
  if (minutes === 0 && /[1-9]/.test(value.replace(/e.*$/i, ''))) {
    throw new InvalidArgumentError(`"${value}" is 0 as a number, which turns checkpoints within an epoch off.`);
  }
  return minutes;
}

/** A momentum coefficient: in [0, 1) (at 1 or above the velocity never decays and training diverges). */
function momentumValue(value: string): number {
  const m = Number(value);
  if (!/^[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value.trim()) || !(m >= 0 && m < 1)) {
    throw new InvalidArgumentError(`expected a number from 0 to below 1 (0.9 is usual), got "${value}".`);
  }
  return m;
}

/** The settings of a new run from the model's defaults and the flags. */
function newConfig(flags: TrainFlags): { config: TrainConfig; runDir: string } {
  const spec = getModelSpec(flags.model ?? (flags.data === undefined ? 'lenet5' : DATA_MODEL));
  const d = spec.defaults;
  const optimizer = flags.optimizer ?? d.optimizer;
  if (flags.momentum !== undefined && optimizer !== 'momentum') {
    throw new CnnxError(
      `--momentum applies only to --optimizer momentum (the optimizer here is ${optimizer}); add --optimizer momentum or drop --momentum`,
      'OPTION_CONFLICT',
    );
  }
  if (flags.data !== undefined && flags.dataset !== undefined) {
    throw new CnnxError(
      `--data and --dataset both name what to train on; give one (--data for your own pictures)`,
      'OPTION_CONFLICT',
    );
  }
  if (flags.data === undefined) refuseUserDataOptions(flags);
  if (flags.data !== undefined && flags.idxDir !== undefined) {
    throw new CnnxError(
      `--idx-dir reads MNIST-format files for --dataset; --data trains on your own pictures: give one`,
      'OPTION_CONFLICT',
    );
  }
  if (flags.batchSize === 1 && spec.layers.some((layer) => layer.kind === 'batch-norm')) {
    // Batch norm normalises each batch by its own statistics: a batch of one is all zeros after it (PyTorch refuses
    // to train so: "Expected more than 1 value per channel when training").
    throw new CnnxError(
      `${spec.name} has batch norm, which needs at least 2 examples in a batch: give --batch-size 2 or more (or a model without batch norm, e.g. lenet5)`,
      'BAD_OPTION',
    );
  }
  const selectOn = flags.selectOn ?? (flags.data !== undefined || flags.valSplit !== undefined ? 'val' : 'test');
  if (selectOn === 'test' && flags.valSplit !== undefined) {
    throw new CnnxError(
      `--val-split holds out data to choose the best epoch on, but --select-on test chooses on the test set: drop one`,
      'OPTION_CONFLICT',
    );
  }
  const data = flags.data === undefined ? undefined : resolve(flags.data);
  const dataset = data ? basename(data).replace(/\.csv$/i, '') : (flags.dataset ?? spec.defaultDataset);
  const config: TrainConfig = {
    model: spec.name,
    dataset,
    ...(data
      ? {
          data: {
            path: data,
            ...(flags.testData ? { testPath: resolve(flags.testData) } : {}),
            ...(flags.channels ? { channels: flags.channels } : {}),
            ...(flags.imageSize ? { size: flags.imageSize } : {}),
          },
        }
      : {}),
    ...(flags.idxDir !== undefined ? { idxDir: resolve(flags.idxDir) } : {}),
    selectOn,
    ...(selectOn === 'val' ? { valSplit: flags.valSplit ?? DEFAULT_VAL_SPLIT } : {}),
    epochs: flags.epochs ?? d.epochs,
    batchSize: flags.batchSize ?? d.batchSize,
    lr: flags.lr ?? d.lr,
    optimizer,
    momentum: flags.momentum ?? d.momentum,
    schedule: flags.schedule ?? d.schedule,
    seed: flags.seed,
    limit: flags.limit,
    testLimit: flags.testLimit,
    backend: flags.backend,
    ...(flags.workers ? { workers: flags.workers } : {}),
  };
  const augment = flags.augment === true ? [...DEFAULT_DISTORTIONS] : flags.augment;
  if (augment?.length) config.augment = augment;
  return { config, runDir: flags.out ?? defaultRunDir(`${spec.name}-${dataset}`) };
}

/**
 * Options that `--resume` may change; every other training option belongs to the run and is refused. `--data` and
 * `--test-data` name where the run's own data is now (a moved folder); its classes must not have changed.
 */
const RESUMABLE = new Set([
  'epochs',
  'backend',
  'workers',
  'checkpointEvery',
  'resume',
  'dataDir',
  'idxDir',
  'offline',
  'data',
  'testData',
]);

/**
 * The saved settings of the run in `runDir`, with the new --epochs / --backend / --workers applied. The run keeps
 * its worker count (its weights are bit-identical to an uninterrupted run's only with the same count) unless
 * --workers is given, or --backend changes without it.
 */
async function resumedConfig(
  runDir: string,
  flags: TrainFlags,
  command: Command,
): Promise<{
  config: TrainConfig;
  runDir: string;
  /** The epochs of a run already complete. */
  completed?: number;
}> {
  const given = command.options.filter((option) => {
    const key = option.attributeName();
    return !RESUMABLE.has(key) && command.getOptionValueSource(key) === 'cli';
  });
  if (given.length > 0) {
    throw new CnnxError(
      `--resume continues a run with its own settings, so ${given.map((o) => o.long).join(', ')} cannot be given ` +
        `(only --epochs, --backend, --workers and --checkpoint-every can change, and --data or --test-data name where moved data is); start a new run with --out to change them`,
      'OPTION_CONFLICT',
    );
  }
  const config = await readRunConfig(runDir);
  if (flags.data !== undefined || flags.testData !== undefined) {
    if (config.data === undefined) {
      throw new CnnxError(
        `${runDir} trains on ${config.dataset}, not on your own pictures: --data and --test-data cannot be given with --resume`,
        'OPTION_CONFLICT',
      );
    }
    if (flags.testData !== undefined && config.data.testPath === undefined) {
      // Its test pictures came from the data itself: taking others would train on those and test on new ones.
      throw new CnnxError(
        `${runDir} took its test pictures from ${config.data.path} itself, so --test-data cannot be given with --resume (it says where a run's own --test-data moved); start a new run with --out to test on other pictures`,
        'OPTION_CONFLICT',
      );
    }
    if (flags.data !== undefined) config.data.path = resolve(flags.data);
    if (flags.testData !== undefined) config.data.testPath = resolve(flags.testData);
  }
  // The metrics file is rewritten from the checkpoint on resume: one damaged by hand does not stop it.
  const checkpoint = runPath(runDir, 'checkpoint');
  const done = await readMetrics(runDir).then(
    (metrics) => metrics.length,
    async (error: unknown) => {
      if (!existsSync(checkpoint)) throw error;
      return (await checkpointPosition(checkpoint)).epoch;
    },
  );
  if (flags.epochs !== undefined && flags.epochs < done) {
    throw new CnnxError(
      `${runDir} has completed ${done} epochs: --epochs must be at least ${done} (the total, not the epochs to add)`,
      'BAD_OPTION',
    );
  }
  if (flags.epochs !== undefined && flags.epochs === done && existsSync(checkpoint)) {
    // Stopped within the next epoch: ending at `done` would drop that epoch's steps and call the run complete.
    const position = await checkpointPosition(checkpoint);
    if (position.epoch === done && position.batch > 0) {
      throw new CnnxError(
        `${runDir} stopped in epoch ${done + 1} (after batch ${position.batch}): --epochs must be at least ${done + 1} ` +
          `to finish it; its best weights so far are ready to export as they are (cnnx export --run ${runDir})`,
        'BAD_OPTION',
      );
    }
  }
  if (flags.epochs !== undefined && flags.epochs !== config.epochs && config.schedule !== 'constant') {
    const longer = flags.epochs > config.epochs;
    console.error(
      `cnnx: warning: the ${config.schedule} learning-rate schedule spans the run's epochs, so it is ` +
        `${longer ? 'stretched' : 'compressed'} from ${config.epochs} to ${flags.epochs}: the rate from epoch ` +
        `${done + 1} on follows the ${longer ? 'longer schedule (higher than where the shorter one ended, if the run was complete)' : 'shorter schedule (lower than the longer one would have been)'}`,
    );
  }
  if (flags.epochs) config.epochs = flags.epochs;
  if (command.getOptionValueSource('backend') === 'cli' && flags.backend !== config.backend) {
    config.backend = flags.backend;
    delete config.workers;
  }
  if (flags.workers) config.workers = flags.workers;
  // Complete: every epoch done and the summary written (a run stopped in its final test has no summary yet).
  // The summary must be of these epochs: a run extended past its summary and stopped again has an older one.
  const summarised = await readFile(runPath(runDir, 'summary'), 'utf8').then(
    (text) => (JSON.parse(text) as { epochs?: unknown }).epochs,
    () => undefined,
  );
  const complete = done >= config.epochs && summarised === done;
  return { config, runDir, ...(complete ? { completed: done } : {}) };
}
