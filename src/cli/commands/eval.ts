/**
 * `cnnx eval`: test accuracy of an ONNX model, computed with onnxruntime-node: on the test split of its dataset
 * (MNIST or Fashion-MNIST, from its `cnnx.dataset` metadata or --dataset), or, for a model trained on the user's own
 * pictures, on the test part of the data given with --data, read at the model's own channels and size.
 */
import type { Command } from 'commander';
import { CnnxError } from '../../common/index.js';
import {
  DATASET_NAMES,
  limitSplit,
  loadDataset,
  loadUserDataset,
  parseDatasetName,
  type Dataset,
  type DatasetName,
} from '../../data/index.js';
import {
  CUDA_HELP,
  EP_NAMES,
  evaluateSession,
  inputShapeOf,
  METADATA_KEYS,
  openSession,
  readOnnxModel,
  type EpName,
  type ModelSignature,
} from '../../runtime/index.js';
import {
  addDataSourceOptions,
  addUserDataOptions,
  oneOf,
  positiveInt,
  type DataSourceFlags,
  type UserDataFlags,
} from '../options.js';

interface EvalFlags extends DataSourceFlags, UserDataFlags {
  model: string;
  dataset?: DatasetName;
  ep: EpName;
  batchSize: number;
  limit?: number;
  json?: boolean;
  force?: boolean;
}

const isBuiltIn = (name: string): name is DatasetName => (DATASET_NAMES as readonly string[]).includes(name);

/** The built-in dataset the model is evaluated on: --dataset, else the one it was trained on. */
async function builtInDataset(flags: EvalFlags, signature: ModelSignature): Promise<Dataset> {
  const trainedOn = signature.dataset;
  if (flags.dataset === undefined && trainedOn !== undefined && !isBuiltIn(trainedOn)) {
    throw new CnnxError(
      `${flags.model} was trained on your own pictures (${trainedOn}), not a built-in dataset: give them with ` +
        `--data <folder or CSV> to evaluate it on their test part`,
      'BAD_DATASET',
    );
  }
  if (flags.dataset !== undefined && trainedOn !== undefined && flags.dataset !== trainedOn) {
    if (!flags.force) {
      throw new CnnxError(
        `${flags.model} was trained on ${trainedOn}, not ${flags.dataset}: its accuracy there means nothing; ` +
          `evaluate it on ${trainedOn}, or add --force`,
        'DATASET_MISMATCH',
      );
    }
    console.error(`cnnx: warning: model was trained on ${trainedOn}; evaluating on ${flags.dataset}`);
  }
  return loadDataset(flags.dataset ?? parseDatasetName(trainedOn ?? 'mnist'), {
    dataDir: flags.dataDir,
    idxDir: flags.idxDir,
    offline: flags.offline,
    log: (m) => console.error(m),
  });
}

/**
 * The user's data given with --data, read at the model's channels and size (the loader resizes the pictures as the
 * `resize` procedure does); its classes must be the model's, in the model's order.
 */
/** The test data a model of the user's pictures was tested on when it was trained (from its `cnnx.metrics`). */
function testDataOf(signature: ModelSignature): string | undefined {
  try {
    const metrics = JSON.parse(signature.metadata[METADATA_KEYS.metrics] ?? '{}') as { testData?: unknown };
    return typeof metrics.testData === 'string' ? metrics.testData : undefined;
  } catch {
    return undefined;
  }
}

async function userDataset(flags: EvalFlags & { data: string }, signature: ModelSignature): Promise<Dataset> {
  const [channels, height, width] = inputShapeOf(signature);
  if (flags.dataset !== undefined) {
    throw new CnnxError(
      `--data and --dataset name two datasets; give --data for your own pictures, --dataset for a built-in one`,
      'OPTION_CONFLICT',
    );
  }
  if (flags.channels !== undefined && flags.channels !== channels) {
    throw new CnnxError(
      `--channels ${flags.channels}: ${flags.model} takes ${channels}-channel pictures; leave --channels out`,
      'OPTION_CONFLICT',
    );
  }
  const [h, w] = flags.imageSize ?? [height, width];
  if (h !== height || w !== width) {
    throw new CnnxError(
      `--image-size ${h}x${w}: ${flags.model} takes ${height}x${width} pictures (height x width); leave --image-size out`,
      'OPTION_CONFLICT',
    );
  }
  if (signature.procedure !== 'resize') {
    console.error(
      `cnnx: warning: ${flags.model} prepares pictures by '${signature.procedure}', not by resizing them as --data ` +
        'pictures are read',
    );
  }
  const dataset = await loadUserDataset(flags.data, {
    channels: channels as 1 | 3,
    size: [height, width],
    testPath: flags.testData,
    dataDir: flags.dataDir,
    log: (m) => console.error(m),
  });
  const recorded = testDataOf(signature);
  if (recorded !== undefined && recorded !== dataset.testSource) {
    console.error(
      `cnnx: warning: ${flags.model} was tested on ${recorded}; this test part is ${dataset.testSource}. If it holds ` +
        'pictures the model trained on, its accuracy is too high (give the test data the run had, with --test-data)',
    );
  }
  const labels = signature.metadata[METADATA_KEYS.labels] === undefined ? undefined : signature.labels;
  if (labels !== undefined && labels.join('\n') !== dataset.classes.join('\n')) {
    const message =
      `${flags.model} has the classes ${labels.join(', ')} but ${dataset.name} has ${dataset.classes.join(', ')}: ` +
      'its accuracy there would mean nothing';
    // --force evaluates other classes by position, which needs as many of them: the caller refuses other counts.
    if (labels.length !== dataset.classes.length) return dataset;
    if (!flags.force) throw new CnnxError(`${message}; add --force to evaluate it anyway`, 'DATASET_MISMATCH');
    console.error(`cnnx: warning: ${message}`);
  }
  return dataset;
}

export function registerEval(program: Command): void {
  const command = program
    .command('eval')
    .description("measure an ONNX model's test accuracy with ONNX Runtime")
    .requiredOption(
      '-m, --model <file.onnx>',
      'ONNX model (from cnnx export, or any [N,C,H,W] -> [N,classes] classifier, C 1 or 3)',
    )
    .option(
      '-d, --dataset <name>',
      `dataset: ${DATASET_NAMES.join(' | ')} (default: the model's ${METADATA_KEYS.dataset})`,
      oneOf(DATASET_NAMES),
    )
    .option('--ep <name>', `execution provider: ${EP_NAMES.join(' | ')}`, oneOf(EP_NAMES as EpName[]), 'cpu')
    .option('--batch-size <n>', 'images per inference call', positiveInt, 256)
    .option('--limit <n>', 'evaluate the first N test images only', positiveInt)
    .option('--force', 'evaluate on a dataset other than the one the model was trained on (with a warning)')
    .option('--json', 'print one JSON line')
    .addHelpText(
      'after',
      `\nA model trained on one dataset (its ${METADATA_KEYS.dataset} metadata) is not evaluated on another unless ` +
        `--force is given. A model trained on your own pictures is evaluated on the test part of --data (its test/ ` +
        `folder, --test-data, or the share held out of the training pictures), read at the model's channels and size.` +
        `\n\n--ep cuda: ${CUDA_HELP}`,
    );
  addUserDataOptions(addDataSourceOptions(command)).action(async (flags: EvalFlags) => {
    const { bytes, signature } = await readOnnxModel(flags.model);
    const dataset =
      flags.data === undefined
        ? await builtInDataset(flags, signature)
        : await userDataset({ ...flags, data: flags.data }, signature);
    if (signature.classes !== dataset.classes.length) {
      throw new CnnxError(
        `${flags.model} has ${signature.classes} outputs but ${dataset.name} has ${dataset.classes.length} classes: ` +
          `its accuracy there would mean nothing; evaluate it on a dataset with ${signature.classes} classes`,
        'DATASET_MISMATCH',
      );
    }
    const session = await openSession(bytes, { ep: flags.ep });
    try {
      const result = await evaluateSession(
        session,
        limitSplit(dataset.test, flags.limit),
        inputShapeOf(signature),
        flags.batchSize,
      );
      const summary = {
        model: flags.model,
        dataset: dataset.name,
        dataSource: dataset.source,
        ep: session.ep,
        accuracy: result.accuracy,
        correct: result.correct,
        count: result.count,
        images_per_sec: Math.round(result.imagesPerSec),
      };
      if (flags.json) console.log(JSON.stringify(summary));
      else
        console.log(
          `${flags.model} on ${flags.testData === undefined ? `${dataset.name} test` : flags.testData} (${result.count} images, ${session.ep} EP): accuracy ${(result.accuracy * 100).toFixed(2)}% ` +
            `(${result.correct}/${result.count}), ${Math.round(result.imagesPerSec)} images/s`,
        );
    } finally {
      await session.release();
    }
  });
}
