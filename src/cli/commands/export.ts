/**
 * `cnnx export`: a run's best weights, or a TensorFlow.js Layers model saved with `model.save('file://...')`, to a
 * verified ONNX file (and optionally a Triton model repository).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CnnxError } from '../../common/index.js';
import { DATASET_NAMES, type DatasetName } from '../../data/index.js';
import { DEFAULT_OPSET, exportRun, exportTfjsModel, MAX_OPSET, MIN_OPSET } from '../../export/index.js';
import { oneOf, positiveInt } from '../options.js';

interface ExportFlags {
  run?: string;
  tfjsModel?: string;
  out: string;
  opset: number;
  triton?: string;
  parityCount?: number;
  labels?: string[];
  dataset?: DatasetName;
  data?: string;
  testData?: string;
}

/** `a,b,c` -> ['a', 'b', 'c'], refusing empty names. */
function labelList(value: string): string[] {
  const labels = value.split(',').map((label) => label.trim());
  if (labels.length < 2 || labels.some((label) => label === '')) {
    throw new InvalidArgumentError(`expected two or more comma-separated names, got "${value}".`);
  }
  return labels;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description(
      'export a training run or a TensorFlow.js Layers model to ONNX, verified against TensorFlow.js with ONNX Runtime',
    )
    .addOption(new Option('-r, --run <dir>', 'training run directory (from cnnx train)').conflicts('tfjsModel'))
    .addOption(
      new Option(
        '--tfjs-model <dir|model.json>',
        "a TensorFlow.js Layers model saved with model.save('file://dir'): its folder or its model.json",
      ),
    )
    .requiredOption(
      '-o, --out <file.onnx>',
      'ONNX file to write, named *.onnx (its name without .onnx is the served model name)',
    )
    .option('--opset <n>', `ONNX opset, ${MIN_OPSET}..${MAX_OPSET}`, positiveInt, DEFAULT_OPSET)
    .option('--triton <dir>', 'also write a Triton Inference Server model repository here')
    .addOption(
      new Option(
        '--data <path>',
        "with --run: where the run's own pictures (folder or CSV) are now, if they moved since it trained",
      ).conflicts('tfjsModel'),
    )
    .addOption(
      new Option('--test-data <path>', "with --run: where the run's own test pictures are now").conflicts('tfjsModel'),
    )
    .option(
      '--parity-count <n>',
      'inputs compared between tfjs and ONNX Runtime (test images for --run, seeded random inputs for --tfjs-model)',
      positiveInt,
    )
    .addOption(
      new Option('--labels <a,b,c>', 'with --tfjs-model: class names in output order, stored in the model')
        .argParser(labelList)
        .conflicts('run'),
    )
    .addOption(
      new Option(
        '--dataset <name>',
        `with --tfjs-model: the dataset the model reads (${DATASET_NAMES.join(' | ')}), so that serving prepares images the same way`,
      )
        .argParser(oneOf(DATASET_NAMES))
        .conflicts('run'),
    )
    .addHelpText(
      'after',
      '\nGive --run <dir> (a cnnx training run) or --tfjs-model <dir|model.json> (any TensorFlow.js Layers CNN with ' +
        'supported layers; channels-last becomes channels-first with the same numbers).',
    )
    .action(async (flags: ExportFlags) => {
      const log = (message: string) => console.error(message);
      const common = { out: flags.out, opset: flags.opset, triton: flags.triton, parityCount: flags.parityCount, log };
      let result: { file: string; bytes: number; tritonDir?: string };
      if (flags.tfjsModel !== undefined) {
        result = await exportTfjsModel({
          ...common,
          model: flags.tfjsModel,
          labels: flags.labels,
          dataset: flags.dataset,
        });
      } else if (flags.run !== undefined) {
        result = await exportRun({ ...common, runDir: flags.run, dataPath: flags.data, testDataPath: flags.testData });
      } else {
        throw new CnnxError('give --run <dir> (a training run) or --tfjs-model <dir|model.json>', 'BAD_OPTION');
      }
      console.log(`wrote ${result.file} (${(result.bytes / 1024).toFixed(0)} KB)`);
      if (result.tritonDir) console.log(`wrote Triton model repository ${result.tritonDir}`);
    });
}
