/**
 * An ONNX model file as every runtime path loads it: the `cnnx.*` metadata keys (written by the exporter, read by
 * eval, predict, the server and the page) and the checks made before any runtime sees the bytes. Malformed or
 * truncated bytes, tensors stored in external data files, and signatures cnnx cannot serve are rejected with a
 * clear error. Names and shapes are read from the model (a PyTorch export names its tensors differently), never
 * assumed. Isomorphic: Node's file system is imported only by `readOnnxModel`, when called.
 */
import type { onnx as OnnxTypes } from 'onnx-proto';
import { CnnxError } from '../common/errors.js';
import { onnx } from './onnx-proto.js';

/** The metadata_props keys of a cnnx model, by field: the one place their spelling lives. */
export const METADATA_KEYS = Object.freeze({
  /** Model name (`lenet5`, `lenet5-relu`, `alexnet`). */
  model: 'cnnx.model',
  /** Dataset the weights were trained on (`mnist`, `fashion-mnist`). */
  dataset: 'cnnx.dataset',
  /** JSON array of class names, in logit order. */
  labels: 'cnnx.labels',
  /** JSON object: how inputs are prepared (layout, scale, polarity, procedure). */
  preprocess: 'cnnx.preprocess',
  /** JSON object: training metrics (test accuracy, epoch, data source, the training command). */
  metrics: 'cnnx.metrics',
  /** sha256 (hex) of the initializers' raw bytes in graph order. */
  weightsSha256: 'cnnx.weights_sha256',
} as const);

export interface ModelSignature {
  inputName: string;
  outputName: string;
  /** [-1, channels, height, width]; -1 for a dynamic dimension. */
  inputShape: number[];
  /** [-1, classes] */
  outputShape: number[];
  classes: number;
  opset: number;
  producer: string;
  /** Every metadata_props entry, by key. */
  metadata: Record<string, string>;
  /** Class names from `cnnx.labels` when present, else "0".."N-1". */
  labels: string[];
  /** The training dataset from `cnnx.dataset`; undefined for models from elsewhere. */
  dataset: string | undefined;
}

class ModelCheckError extends CnnxError {
  override name = 'ModelCheckError';
}

function dims(info: OnnxTypes.IValueInfoProto): { elemType: number; shape: number[] } | undefined {
  const tensor = info.type?.tensorType;
  if (!tensor) return undefined;
  const shape = (tensor.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : -1,
  );
  return { elemType: tensor.elemType ?? 0, shape };
}

/**
 * Parses and validates ONNX bytes; `file` names the source in errors.
 * @throws ModelCheckError MODEL_MALFORMED, MODEL_EXTERNAL_DATA or MODEL_SIGNATURE (needs one float32 input
 *   [N, 1, H, W] and one float32 output [N, classes]).
 */
export function inspectOnnx(bytes: Uint8Array, file: string): ModelSignature {
  let model: OnnxTypes.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new ModelCheckError(
      `${file}: not a valid ONNX model (malformed or truncated: ${(error as Error).message})`,
      'MODEL_MALFORMED',
    );
  }
  const graph = model.graph;
  if (!graph || (graph.node ?? []).length === 0) {
    throw new ModelCheckError(`${file}: not a valid ONNX model (no graph)`, 'MODEL_MALFORMED');
  }
  const external = (graph.initializer ?? []).find(
    (t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData ?? []).length > 0,
  );
  if (external) {
    throw new ModelCheckError(
      `${file}: tensor '${external.name}' is stored in an external data file; cnnx loads self-contained models only (re-save with all tensors inside the .onnx)`,
      'MODEL_EXTERNAL_DATA',
    );
  }
  const initializerNames = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !initializerNames.has(i.name));
  const outputs = graph.output ?? [];
  const expected = 'one float32 input [N, 1, H, W] and one float32 output [N, classes]';
  const describe = (list: OnnxTypes.IValueInfoProto[]) =>
    list
      .map(
        (i) =>
          `${i.name} [${
            dims(i)
              ?.shape.map((d) => (d < 0 ? 'N' : d))
              .join(', ') ?? '?'
          }]`,
      )
      .join(', ') || 'none';
  const unsupported = (why: string) =>
    new ModelCheckError(`${file}: signature cnnx cannot serve (${why}); expected ${expected}`, 'MODEL_SIGNATURE');
  if (inputs.length !== 1) throw unsupported(`${inputs.length} inputs: ${describe(inputs)}`);
  if (outputs.length !== 1) throw unsupported(`${outputs.length} outputs: ${describe(outputs)}`);
  const input = dims(inputs[0]!);
  const output = dims(outputs[0]!);
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  if (
    !input ||
    input.elemType !== FLOAT ||
    input.shape.length !== 4 ||
    input.shape[1] !== 1 ||
    input.shape[2]! < 1 ||
    input.shape[3]! < 1
  ) {
    throw unsupported(`input ${describe(inputs)}`);
  }
  if (!output || output.elemType !== FLOAT || output.shape.length !== 2 || output.shape[1]! < 2) {
    throw unsupported(`output ${describe(outputs)}`);
  }
  const metadata = Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const classes = output.shape[1]!;
  let labels = Array.from({ length: classes }, (_, i) => String(i));
  try {
    const parsed = JSON.parse(metadata[METADATA_KEYS.labels] ?? 'null') as unknown;
    if (Array.isArray(parsed) && parsed.length === classes) labels = parsed.map(String);
  } catch {
    // labels are optional; a malformed entry falls back to indices
  }
  const opset = Number((model.opsetImport ?? []).find((o) => !o.domain)?.version ?? 0);
  return {
    inputName: inputs[0]!.name!,
    outputName: outputs[0]!.name!,
    inputShape: [-1, ...input.shape.slice(1)],
    outputShape: [-1, classes],
    classes,
    opset,
    producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
    metadata,
    labels,
    dataset: metadata[METADATA_KEYS.dataset] || undefined,
  };
}

/** Default largest model file cnnx loads (AlexNet's ONNX is ~187 MB). */
const DEFAULT_MAX_MODEL_BYTES = 512 * 2 ** 20;

/**
 * Reads and checks an ONNX file from disk.
 * @throws ModelCheckError MODEL_UNREADABLE (missing, unreadable, or a directory), MODEL_TOO_LARGE (over
 *   `maxBytes`, default 512 MiB), and whatever `inspectOnnx` throws.
 */
export async function readOnnxModel(
  file: string,
  options: { maxBytes?: number } = {},
): Promise<{ bytes: Uint8Array; signature: ModelSignature }> {
  const { readFile, stat } = await import('node:fs/promises');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  const unreadable = (error: unknown) =>
    new ModelCheckError(
      `${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      'MODEL_UNREADABLE',
    );
  const info = await stat(file).catch((error: unknown) => {
    throw unreadable(error);
  });
  if (info.isDirectory()) {
    throw new ModelCheckError(`${file}: is a directory; give the path of a .onnx file`, 'MODEL_UNREADABLE');
  }
  if (info.size > maxBytes) {
    throw new ModelCheckError(
      `${file}: ${info.size} bytes is over the ${maxBytes}-byte model size limit`,
      'MODEL_TOO_LARGE',
    );
  }
  const bytes = await readFile(file).catch((error: unknown) => {
    throw unreadable(error);
  });
  return { bytes, signature: inspectOnnx(bytes, file) };
}
