/**
 * Checks an ONNX file before any runtime sees it: malformed or truncated bytes, tensors stored in external data
 * files, and signatures cnnx cannot serve are rejected with a clear error. Names and shapes are read from the
 * model (a PyTorch export names its tensors differently), never assumed.
 */
import type { onnx as OnnxTypes } from 'onnx-proto';
import { onnx } from './onnx-proto.js';
import { CnnxError } from '../common/index.js';

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
  metadata: Record<string, string>;
  /** Class names from `cnnx.labels` when present, else "0".."N-1". */
  labels: string[];
}

export class ModelCheckError extends CnnxError {
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

/** Parses and validates ONNX bytes; `file` names the source in errors. */
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
    const parsed = JSON.parse(metadata['cnnx.labels'] ?? 'null') as unknown;
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
  };
}

/** Default largest model file cnnx loads (AlexNet's ONNX is ~187 MB). */
export const DEFAULT_MAX_MODEL_BYTES = 512 * 2 ** 20;

/** Reads and checks an ONNX file from disk. */
export async function readOnnxModel(
  file: string,
  options: { maxBytes?: number } = {},
): Promise<{ bytes: Uint8Array; signature: ModelSignature }> {
  const { readFile, stat } = await import('node:fs/promises');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    throw new ModelCheckError(
      `${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      'MODEL_UNREADABLE',
    );
  }
  if (size > maxBytes) {
    throw new ModelCheckError(
      `${file}: ${size} bytes is over the ${maxBytes}-byte model size limit`,
      'MODEL_TOO_LARGE',
    );
  }
  const bytes = await readFile(file);
  return { bytes, signature: inspectOnnx(bytes, file) };
}
