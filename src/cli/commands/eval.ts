/** `cnnx eval`: test accuracy of an ONNX model, computed with onnxruntime-node. */
import type { Command } from 'commander';
import { CnnxError } from '../../common/index.js';
import { DATASET_NAMES, limitSplit, loadDataset, parseDatasetName, type DatasetName } from '../../data/index.js';
import {
  CUDA_HELP,
  EP_NAMES,
  evaluateSession,
  METADATA_KEYS,
  openSession,
  readOnnxModel,
  type EpName,
} from '../../runtime/index.js';
import { addDataSourceOptions, oneOf, positiveInt, type DataSourceFlags } from '../options.js';

interface EvalFlags extends DataSourceFlags {
  model: string;
  dataset?: DatasetName;
  ep: EpName;
  batchSize: number;
  limit?: number;
  json?: boolean;
  force?: boolean;
}

export function registerEval(program: Command): void {
  const command = program
    .command('eval')
    .description("measure an ONNX model's test accuracy with ONNX Runtime")
    .requiredOption('-m, --model <file.onnx>', 'ONNX model (from cnnx export, or any [N,1,H,W] -> [N,10] classifier)')
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
        `--force is given.\n\n--ep cuda: ${CUDA_HELP}`,
    );
  addDataSourceOptions(command).action(async (flags: EvalFlags) => {
    const { bytes, signature } = await readOnnxModel(flags.model);
    const trainedOn = signature.dataset;
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
    const datasetName = flags.dataset ?? parseDatasetName(trainedOn ?? 'mnist');
    const dataset = await loadDataset(datasetName, {
      dataDir: flags.dataDir,
      idxDir: flags.idxDir,
      offline: flags.offline,
      log: (m) => console.error(m),
    });
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
        signature.inputShape[2]!,
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
          `${flags.model} on ${dataset.name} test (${result.count} images, ${session.ep} EP): accuracy ${(result.accuracy * 100).toFixed(2)}% ` +
            `(${result.correct}/${result.count}), ${Math.round(result.imagesPerSec)} images/s`,
        );
    } finally {
      await session.release();
    }
  });
}
