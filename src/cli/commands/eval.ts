/** `cnnx eval`: test accuracy of an ONNX model, computed with onnxruntime-node. */
import type { Command } from 'commander';
import { DATASET_NAMES, limitSplit, loadDataset, parseDatasetName, type DatasetName } from '../../data/index.js';
import { readOnnxModel } from '../../export/index.js';
import { EP_NAMES, evaluateSession, openSession, type EpName } from '../../runtime/index.js';
import { oneOf, positiveInt } from '../options.js';

interface EvalFlags {
  model: string;
  dataset?: DatasetName;
  ep: EpName;
  batchSize: number;
  limit?: number;
  json?: boolean;
  offline?: boolean;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description("measure an ONNX model's test accuracy with ONNX Runtime")
    .requiredOption('-m, --model <file.onnx>', 'ONNX model (from cnnx export, or any [N,1,H,W] -> [N,10] classifier)')
    .option(
      '-d, --dataset <name>',
      `dataset: ${DATASET_NAMES.join(' | ')} (default: the model's cnnx.dataset)`,
      oneOf(DATASET_NAMES),
    )
    .option('--ep <name>', `execution provider: ${EP_NAMES.join(' | ')}`, oneOf(EP_NAMES as EpName[]), 'cpu')
    .option('--batch-size <n>', 'images per inference call', positiveInt, 256)
    .option('--limit <n>', 'evaluate the first N test images only', positiveInt)
    .option('--offline', 'never download data')
    .option('--json', 'print one JSON line')
    .action(async (flags: EvalFlags) => {
      const { bytes, signature } = await readOnnxModel(flags.model);
      const datasetName = flags.dataset ?? parseDatasetName(signature.metadata['cnnx.dataset'] ?? 'mnist');
      const dataset = await loadDataset(datasetName, { offline: flags.offline, log: (m) => console.error(m) });
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
