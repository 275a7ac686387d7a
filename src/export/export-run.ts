/**
 * `cnnx export`: a training run's best weights -> a verified ONNX file. The file is written to a temporary path,
 * loaded in onnxruntime-node and compared with tfjs on real test images; only a model within tolerance is
 * renamed into place, so a failed export leaves no file.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { checkDirectoryWritable, CnnxError, readSafetensors } from '../common/index.js';
import type { Dataset } from '../data/index.js';
import { inspectOnnx } from '../runtime/index.js';
import {
  assignWeights,
  classesOf,
  createNetwork,
  loadRunDataset,
  readRunConfig,
  runPath,
  specForRun,
  trainingCommand,
  useBackend,
} from '../train/index.js';
import { buildOnnxModel } from './build-model.js';
import type { EmitterRegistry } from './emitters/index.js';
import { checkParity, paritySet } from './parity.js';
import { toleranceFor, type ParityReport, type Tolerance } from './tolerances.js';
import { writeVerified } from './write-verified.js';
import { writeTritonRepository } from './triton.js';

export interface ExportOptions {
  runDir: string;
  out: string;
  opset?: number;
  triton?: string;
  /** Test images compared between tfjs and ONNX Runtime (default 256; 32 for AlexNet). */
  parityCount?: number;
  dataset?: Dataset;
  /**
   * Where a run trained on the user's pictures finds them now (folder or CSV; and its separate test set), when they
   * moved since: the parity check reads its test pictures.
   */
  dataPath?: string;
  testDataPath?: string;
  log?: (message: string) => void;
  /** Layer emitters (default: all of cnnx's). */
  emitters?: EmitterRegistry;
}

export interface ExportResult {
  file: string;
  bytes: number;
  parity: ParityReport;
  tolerance: Tolerance;
  tritonDir?: string;
}

/**
 * How inputs are prepared, recorded in the model so that every consumer does the same: `method` names the
 * preprocessing stage's procedure (`mnist`, `fit`, `resize`), the rest says it in words for other tools.
 */
export function preprocessFor(
  procedure: Dataset['procedure'],
  input: readonly [number, number, number],
): Record<string, unknown> {
  const [channels, height, width] = input;
  const described: Record<Dataset['procedure'], Record<string, unknown>> = {
    mnist: {
      polarity: 'ink bright on a dark background, as in the IDX files',
      procedure:
        'mnist: crop to the ink bounding box, fit into 20x20 keeping the aspect ratio, centre by centre of mass in 28x28',
    },
    fit: {
      polarity: 'object bright on a dark background, as in the IDX files',
      procedure: 'fashion-mnist: object fitted into 28x28',
    },
    resize: {
      procedure: `resize: the picture as it is, transparency over white, ${channels === 1 ? 'BT.601 luma' : 'RGB'}, stretched to ${height}x${width} (area average when shrinking, bilinear when growing), rounded to bytes`,
    },
  };
  return {
    method: procedure,
    layout: 'NCHW',
    input: [channels, height, width],
    scale: 'pixel / 255',
    range: [0, 1],
    ...described[procedure],
    ...(procedure !== 'resize' && height !== 28
      ? { resize: `bilinear (half-pixel centres) from 28x28 to ${height}x${width}` }
      : {}),
  };
}

/**
 * Refuses, before any work, an output that is not a path for a named `.onnx` file, and an output folder or Triton
 * repository folder (`triton`) that cannot be written (a file in the path, a folder this process may not write
 * to). Nothing is created: a failed export leaves no folder behind.
 * @throws CnnxError BAD_OUTPUT; WRITE_FAILED naming the folder and why.
 */
export async function checkOutput(out: string, triton?: string): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (info?.isDirectory()) {
    throw new CnnxError(
      `--out ${out}: is a directory; give the path of the file to write, e.g. ${join(out, 'model.onnx')}`,
      'BAD_OUTPUT',
    );
  }
  if (!out.endsWith('.onnx')) {
    throw new CnnxError(
      `--out ${out}: the ONNX file's name must end in .onnx (a Triton model repository is written with --triton <dir>)`,
      'BAD_OUTPUT',
    );
  }
  if (basename(out) === '.onnx') {
    throw new CnnxError(
      `--out ${out}: give the file a name before .onnx (it is the model's name when served), e.g. ${join(dirname(out), 'model.onnx')}`,
      'BAD_OUTPUT',
    );
  }
  // Checked now, created when the model is written: an export that fails leaves no folder behind.
  await checkDirectoryWritable(dirname(out), out);
  if (triton !== undefined) await checkDirectoryWritable(join(triton, basename(out, '.onnx'), '1'));
}

/**
 * Exports a run's best weights to `options.out`, verified against tfjs on real test images.
 * @throws CnnxError BAD_OUTPUT (out is a directory or not a .onnx name), BAD_RUN (no run or no best weights yet),
 *   BAD_OPSET, EXPORT_PARITY (verification failed; no file is written).
 */
export async function exportRun(options: ExportOptions): Promise<ExportResult> {
  const log = options.log ?? (() => {});
  await checkOutput(options.out, options.triton);
  const config = await readRunConfig(options.runDir);
  if (options.dataPath !== undefined || options.testDataPath !== undefined) {
    if (config.data === undefined) {
      throw new CnnxError(
        `${options.runDir} trained on ${config.dataset}, not on your own pictures: --data and --test-data do not apply`,
        'OPTION_CONFLICT',
      );
    }
    if (options.dataPath !== undefined) config.data.path = resolve(options.dataPath);
    if (options.testDataPath !== undefined) config.data.testPath = resolve(options.testDataPath);
  }
  const dataset = options.dataset ?? (await loadRunDataset(config, { log, offline: true }));
  const spec = specForRun(config);
  const weightsFile = runPath(options.runDir, 'best');
  if (!existsSync(weightsFile)) {
    throw new CnnxError(
      `${options.runDir}: no best weights yet (${basename(weightsFile)}); train at least one epoch`,
      'BAD_RUN',
    );
  }
  const { tensors, metadata } = await readSafetensors(weightsFile);
  const side = spec.input[1];
  const accuracy = (key: string) => (metadata[key] === undefined ? undefined : Number(metadata[key]));
  const onnxBytes = buildOnnxModel(
    spec,
    tensors,
    {
      dataset: config.dataset,
      labels: classesOf(config),
      preprocess: preprocessFor(dataset.procedure, spec.input),
      metrics: {
        testAccuracy: accuracy('testAccuracy'),
        valAccuracy: accuracy('valAccuracy'),
        selectedOn: metadata.selectedOn ?? 'test',
        epoch: Number(metadata.epoch),
        dataSource: metadata.dataSource,
        ...('testSource' in dataset ? { testData: dataset.testSource } : {}),
        trainedWith: trainingCommand(config),
      },
    },
    { opset: options.opset, emitters: options.emitters },
  );
  const signature = inspectOnnx(onnxBytes, options.out);

  const backend = await useBackend('wasm').catch(() => useBackend('cpu'));
  const network = createNetwork(spec, 0);
  assignWeights(network, tensors, weightsFile);
  const inputs = paritySet(dataset.test, options.parityCount ?? spec.parity?.images ?? 256, side);
  const tolerance = toleranceFor('fp32-cpu', spec.name);
  let parity: ParityReport;
  try {
    parity = await writeVerified({
      out: options.out,
      bytes: onnxBytes,
      tolerance,
      verify: (written) => checkParity(network, written, inputs, tolerance),
      compared: `tfjs ${backend.name} vs onnxruntime-node cpu, ${inputs.dims[0]} ${dataset.name} test images`,
      valueName: 'logit',
      log,
    });
  } finally {
    network.dispose();
  }
  const name = basename(options.out).replace(/\.onnx$/, '');
  const tritonDir = options.triton
    ? await writeTritonRepository(options.triton, name, onnxBytes, signature)
    : undefined;
  return { file: options.out, bytes: onnxBytes.length, parity, tolerance, tritonDir };
}
