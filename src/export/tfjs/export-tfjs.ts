/**
 * `cnnx export --tfjs-model`: a TensorFlow.js Layers model saved with `model.save('file://...')` -> a verified
 * ONNX file. The file is written to a temporary path, run in onnxruntime-node and compared with the same model
 * loaded in tfjs (`tf.loadLayersModel`) on seeded random inputs; only a model within the FP32 tolerance and with
 * the same argmax is renamed into place, so a failed export leaves no file.
 */
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CnnxError, messageOf } from '../../common/index.js';
import { CLASS_NAMES, type DatasetName } from '../../data/index.js';
import { openSession } from '../../runtime/index.js';
import { useBackend } from '../../train/index.js';
import { checkOpset, DEFAULT_OPSET, type MetadataValues } from '../build-model.js';
import { checkOutput, preprocessFor } from '../export-run.js';
import { nhwcToNchw } from '../layout.js';
import { compareLogits, toleranceFor, type ParityReport, type Tolerance } from '../tolerances.js';
import { writeTritonRepository } from '../triton.js';
import { writeVerified } from '../write-verified.js';
import { buildOnnxFromTfjs, type TfjsOnnx } from './build.js';
import { readTfjsModel } from './read-model.js';

export interface TfjsExportOptions {
  /** The saved model: its folder or its model.json. */
  model: string;
  out: string;
  /** Class names in output order (default: the dataset's, else none). */
  labels?: string[];
  /** The dataset the model reads (`mnist`, `fashion-mnist`): recorded so that serving prepares images the same way. */
  dataset?: DatasetName;
  opset?: number;
  triton?: string;
  /** Seeded random inputs compared between tfjs and ONNX Runtime (default 32). */
  parityCount?: number;
  /** Seed of those inputs (default 1). */
  seed?: number;
  log?: (message: string) => void;
}

export interface TfjsExportResult {
  file: string;
  bytes: number;
  parity: ParityReport;
  tolerance: Tolerance;
  /** The exported graph's input, [C, H, W] (or [F]), and number of outputs. */
  input: number[];
  classes: number;
  tritonDir?: string;
}

/**
 * Seeded inputs [count, ...shape]: the first half uniform in [0, 1] (pixels over 255), the rest standard normal
 * (standardised inputs, and the negative values that tell a zero padding from a pool's own: pooling.ts).
 */
function parityInputs(shape: number[], seed: number): tf.Tensor {
  const [count, ...rest] = shape as [number, ...number[]];
  const half = Math.ceil(count / 2);
  return tf.tidy(() =>
    tf.concat([
      tf.randomUniform([half, ...rest], 0, 1, 'float32', seed),
      tf.randomNormal([count - half, ...rest], 0, 1, 'float32', seed + 1),
    ]),
  );
}

/** `model`'s outputs for `inputs` on tfjs backend `backend`. */
async function tfjsOutputs(model: tf.LayersModel, inputs: tf.Tensor, backend: string): Promise<Float32Array> {
  const before = tf.getBackend();
  if (backend !== before) await tf.setBackend(backend);
  try {
    const output = model.predict(inputs) as tf.Tensor;
    const data = (await output.data()) as Float32Array;
    output.dispose();
    return data;
  } finally {
    if (backend !== before) await tf.setBackend(before);
  }
}

/**
 * The model's outputs for `count` seeded inputs (parityInputs): tfjs on NHWC, onnxruntime-node CPU on the same
 * values as NCHW. Where they differ and tfjs ran on its WASM backend, tfjs's cpu backend is asked too: tfjs-backend-
 * wasm computes some convolutions wrongly (a 'same' convolution whose stride exceeds its kernel gives zeros), and
 * the export is right when it agrees with the cpu backend.
 * @throws CnnxError TFJS_MODEL_INVALID when tfjs itself gives NaN or infinite outputs (the model overflows float32)
 */
async function compareOnInputs(
  model: tf.LayersModel,
  onnxBytes: Uint8Array,
  built: TfjsOnnx,
  count: number,
  seed: number,
  tolerance: Tolerance,
  log: (message: string) => void,
): Promise<ParityReport> {
  const shape = [count, ...built.tfjsInput];
  const inputs = parityInputs(shape, seed);
  try {
    const expected = await tfjsOutputs(model, inputs, tf.getBackend());
    if (!expected.every(Number.isFinite)) {
      throw new CnnxError(
        `${built.name}: TensorFlow.js itself gives NaN or infinite outputs for ordinary inputs (uniform in [0, 1] and standard normal): the model overflows float32 (weights far too large, from a training run that diverged?), so there is nothing to check the export against`,
        'TFJS_MODEL_INVALID',
      );
    }
    const nhwc = (await inputs.data()) as Float32Array;
    const session = await openSession(onnxBytes, { ep: 'cpu' });
    try {
      const onnxInput = shape.length === 4 ? nhwcToNchw(nhwc, shape) : nhwc;
      const { data } = await session.run(onnxInput, [count, ...built.onnxInput]);
      const report = compareLogits(expected, data, built.classes, tolerance);
      if (report.withinTolerance || tf.getBackend() === 'cpu') return report;
      const cpu = compareLogits(await tfjsOutputs(model, inputs, 'cpu'), data, built.classes, tolerance);
      if (!cpu.withinTolerance) return report; // the backend named in the parity line
      log(
        `tfjs ${tf.getBackend()} differs from ONNX Runtime by ${report.maxAbsDiff.toExponential(2)}, tfjs cpu agrees: checked against tfjs cpu (tfjs-backend-wasm computes some layers wrongly)`,
      );
      return cpu;
    } finally {
      await session.release();
    }
  } finally {
    inputs.dispose();
  }
}

/**
 * Exports a saved tfjs Layers model to `options.out`, verified against tfjs in onnxruntime-node.
 * @throws CnnxError BAD_OUTPUT, BAD_OPTION (labels that do not match the outputs, a --dataset whose pictures the
 *   model does not take), TFJS_MODEL_INVALID (also a graph model, a Keras 3 file, a weights file, undecodable or
 *   non-finite weights),
 *   EXPORT_UNKNOWN_LAYER (an unsupported layer, named with its position and class), EXPORT_UNSUPPORTED, BAD_OPSET,
 *   EXPORT_PARITY (verification failed). No file is written on any error.
 */
export async function exportTfjsModel(options: TfjsExportOptions): Promise<TfjsExportResult> {
  const log = options.log ?? (() => {});
  await checkOutput(options.out, options.triton);
  const opset = checkOpset(options.opset ?? DEFAULT_OPSET);
  const backend = await useBackend('wasm').catch(() => useBackend('cpu'));
  const saved = await readTfjsModel(options.model);
  const labels = options.labels ?? (options.dataset ? CLASS_NAMES[options.dataset] : undefined);
  const metadataFor = (input: number[]): MetadataValues => {
    const [c, h, w] = input;
    // A picture model of unknown data gets the plain resize procedure (pixel / 255 assumed, as cnnx trains).
    const preprocess =
      options.dataset && c === 1 && h === w
        ? preprocessFor(options.dataset === 'mnist' ? 'mnist' : 'fit', [1, h!, h!])
        : input.length === 3 && (c === 1 || c === 3)
          ? { ...preprocessFor('resize', [c, h!, w!]), source: 'TensorFlow.js channels-last input' }
          : { layout: 'NF', input, source: 'TensorFlow.js channels-last input' };
    return {
      dataset: options.dataset,
      labels: labels && JSON.stringify(labels),
      preprocess: JSON.stringify(preprocess),
      // The model's own folder and file, not where it sat on this machine.
      metrics: JSON.stringify({
        convertedFrom: join(basename(dirname(resolve(saved.file))), basename(saved.file)),
        generatedBy: saved.artifacts.generatedBy ?? 'unknown',
      }),
    };
  };
  const built = buildOnnxFromTfjs(saved, opset, metadataFor);
  const onnxBytes = built.bytes;
  if (options.dataset && CLASS_NAMES[options.dataset].length !== built.classes) {
    throw new CnnxError(
      `--dataset ${options.dataset} has ${CLASS_NAMES[options.dataset].length} classes, but the model has ` +
        `${built.classes} outputs: name the dataset it was trained on, or leave --dataset out`,
      'BAD_OPTION',
    );
  }
  const [c, h, w] = built.onnxInput;
  // A square one-channel model reads the dataset's pictures at its own size (metadataFor: MNIST's procedure at H x H).
  if (options.dataset && (built.onnxInput.length !== 3 || c !== 1 || h !== w)) {
    throw new CnnxError(
      `--dataset ${options.dataset}: its pictures are square and gray (1x28x28, resized to a square input), but the model takes ${built.onnxInput.join('x')} inputs: leave --dataset out (give the class names with --labels)`,
      'BAD_OPTION',
    );
  }
  if (labels && labels.length !== built.classes) {
    throw new CnnxError(
      `--labels has ${labels.length} names, but the model has ${built.classes} outputs`,
      'BAD_OPTION',
    );
  }

  if (options.triton !== undefined && built.onnxInput.length !== 3) {
    throw new CnnxError('--triton needs an image model ([N, C, H, W] input)', 'BAD_OPTION');
  }
  const model = await tf.loadLayersModel({ load: async () => saved.artifacts }).catch((error: unknown) => {
    throw new CnnxError(
      `${saved.file}: TensorFlow.js cannot load this model, so the export cannot be checked against it: ${messageOf(error)}`,
      'TFJS_MODEL_INVALID',
    );
  });
  const tolerance = toleranceFor('fp32-converted', built.name);
  const count = options.parityCount ?? 32;
  let parity: ParityReport;
  try {
    parity = await writeVerified({
      out: options.out,
      bytes: onnxBytes,
      tolerance,
      verify: (written) => compareOnInputs(model, written, built, count, options.seed ?? 1, tolerance, log),
      compared: `tfjs ${backend.name} vs onnxruntime-node cpu, ${count} seeded random inputs (uniform in [0, 1], then normal)`,
      valueName: 'output',
      log,
    });
  } finally {
    model.dispose();
  }
  const name = basename(options.out).replace(/\.onnx$/, '');
  let tritonDir: string | undefined;
  if (options.triton) {
    tritonDir = await writeTritonRepository(options.triton, name, onnxBytes, {
      inputName: 'input',
      outputName: 'logits',
      inputShape: [-1, ...built.onnxInput],
      classes: built.classes,
    });
  }
  return {
    file: options.out,
    bytes: onnxBytes.length,
    parity,
    tolerance,
    input: built.onnxInput,
    classes: built.classes,
    tritonDir,
  };
}
