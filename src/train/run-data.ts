/**
 * What a run trains on, from its config alone, so that training, `--resume` and `cnnx export` see the same data and
 * the same model: the dataset (built-in, or the user's folder or CSV read with the recorded channels and size), the
 * model fitted to it, and the parts the best epoch is chosen on.
 */
import { CnnxError } from '../common/index.js';
import {
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
 * Loads the run's dataset. For the user's data, the channels and size the config does not fix yet are taken from
 * the data and recorded in `config.data` (so a resumed run or an export reads the pictures the same way).
 * @throws CnnxError as the data stage's loaders do (a missing or malformed file, a bad picture, ...)
 */
export async function loadRunDataset(config: TrainConfig, options: DataSourceOptions): Promise<Dataset> {
  const { data } = config;
  if (data === undefined) return loadDataset(parseDatasetName(config.dataset), options);
  const dataset = await loadUserDataset(data.path, {
    channels: data.channels,
    size: data.size,
    testPath: data.testPath,
    dataDir: options.dataDir,
    log: options.log,
  });
  data.channels ??= dataset.train.channels as 1 | 3;
  data.size ??= [dataset.train.rows, dataset.train.cols];
  return dataset;
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
 */
export function runSplits(dataset: Dataset, config: TrainConfig): RunSplits {
  const selectOn = config.selectOn ?? 'test';
  const test = limitSplit(dataset.test, config.testLimit);
  if (selectOn === 'test') return { train: limitSplit(dataset.train, config.limit), selection: test, test, selectOn };
  const train = limitSplit(dataset.train, config.limit);
  const { kept, held } = stratifiedSplit(train, config.valSplit ?? DEFAULT_VAL_SPLIT, config.seed);
  return { train: kept, selection: held, test, selectOn };
}

/** The `cnnx train` command line that makes a run with `config`'s settings (recorded in the exported model). */
export function trainingCommand(config: TrainConfig): string {
  const { data } = config;
  const source = data
    ? [
        `--data ${data.path}`,
        data.testPath ? `--test-data ${data.testPath}` : '',
        data.channels ? `--channels ${data.channels}` : '',
        data.size ? `--image-size ${data.size[0]}x${data.size[1]}` : '',
      ]
    : [`--dataset ${config.dataset}`];
  const selection =
    config.selectOn === 'val' ? [`--select-on val --val-split ${config.valSplit ?? DEFAULT_VAL_SPLIT}`] : [];
  return [
    `cnnx train --model ${config.model}`,
    ...source,
    `--optimizer ${config.optimizer} --lr ${config.lr} --epochs ${config.epochs} --batch-size ${config.batchSize}`,
    `--schedule ${config.schedule} --seed ${config.seed}`,
    ...selection,
    config.augment?.length ? `--augment ${config.augment.join(',')}` : '',
  ]
    .filter((part) => part !== '')
    .join(' ');
}
