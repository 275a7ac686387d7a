/**
 * An ONNX model file as every runtime path loads it: the `cnnx.*` metadata keys (written by the exporter, read by
 * eval, predict, the server and the page) and the checks made before any runtime sees the bytes. Malformed or
 * truncated bytes, tensors stored in external data files, and signatures cnnx cannot serve are rejected with a
 * clear error. Names and shapes are read from the model (a PyTorch export names its tensors differently), never
 * assumed. Isomorphic: Node's file system is imported only by `readOnnxModel`, when called.
 */
import type { onnx as OnnxTypes } from 'onnx-proto';
import { CnnxError, whyUnreadable } from '../common/errors.js';
import { PROCEDURES, procedureFor, type Procedure } from '../preprocess/index.js';
import { onnx } from './onnx-proto.js';

/** The metadata_props keys of a cnnx model, by field: the one place their spelling lives. */
export const METADATA_KEYS = Object.freeze({
  /** Model name (`lenet5`, `lenet5-relu`, `alexnet`). */
  model: 'cnnx.model',
  /** Dataset the weights were trained on (`mnist`, `fashion-mnist`, or the name of the user's own data). */
  dataset: 'cnnx.dataset',
  /** JSON array of class names, in logit order. */
  labels: 'cnnx.labels',
  /**
   * JSON object: how inputs are prepared: `method` (`mnist`, `fit` or `resize`: the preprocessing procedure),
   * `input` ([C, H, W]), `layout`, `scale` and, for the built-in datasets, polarity and a description.
   */
  preprocess: 'cnnx.preprocess',
  /** JSON object: training metrics (test accuracy, epoch, data source, the training command). */
  metrics: 'cnnx.metrics',
  /** sha256 (hex) of the initializers' raw bytes in graph order. */
  weightsSha256: 'cnnx.weights_sha256',
} as const);

export interface ModelSignature {
  inputName: string;
  outputName: string;
  /** [batch, channels, height, width] as the file declares it; -1 for a dynamic batch dimension. */
  inputShape: number[];
  /** Input channels: 1 (gray) or 3 (RGB, planar in NCHW order). */
  channels: number;
  /** [batch, classes]; -1 for a dynamic batch dimension. */
  outputShape: number[];
  /**
   * The batch size the model is fixed to (a PyTorch export without dynamic axes fixes it to 1), or undefined when
   * its batch dimension is dynamic. Sessions run any number of images in chunks of this size.
   */
  fixedBatch: number | undefined;
  classes: number;
  opset: number;
  producer: string;
  /** Every metadata_props entry, by key. */
  metadata: Record<string, string>;
  /** Class names from `cnnx.labels` when present, else "0".."N-1". */
  labels: string[];
  /** The training dataset from `cnnx.dataset`; undefined for models from elsewhere. */
  dataset: string | undefined;
  /**
   * How a picture becomes this model's input: the `method` of its `cnnx.preprocess` metadata when it names one, else
   * what its dataset implies (`fit` for Fashion-MNIST; `mnist` for MNIST, older cnnx models and models from
   * elsewhere). See `prepareInput`.
   */
  procedure: Procedure;
  /**
   * What the output holds: `probabilities` when the graph ends in a Softmax (a tfjs or Keras model whose last layer
   * has a softmax activation, a PyTorch model exported with one), else `logits`. Classification applies softmax to
   * logits only.
   */
  outputKind: 'logits' | 'probabilities';
  /** What in the model's cnnx metadata was malformed and left for the default (for the server's log). */
  warnings: string[];
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

/** True when a tensor keeps its values in a file beside the model instead of inside it. */
function isExternal(tensor: OnnxTypes.ITensorProto | null | undefined): boolean {
  return (
    !!tensor &&
    (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (tensor.externalData ?? []).length > 0)
  );
}

/**
 * The name of the first tensor stored as external data anywhere in the model: initializers, sparse initializers,
 * tensor attributes of any node (a Constant's `value`), subgraphs (If, Loop, Scan bodies) and local functions.
 * ONNX Runtime would read such a tensor from a path relative to the working directory.
 */
function findExternalTensor(model: OnnxTypes.IModelProto): string | undefined {
  const inSparse = (sparse: OnnxTypes.ISparseTensorProto | null | undefined) =>
    isExternal(sparse?.values) || isExternal(sparse?.indices);
  const inNodes = (nodes: OnnxTypes.INodeProto[] | null | undefined): string | undefined => {
    for (const node of nodes ?? []) {
      for (const attribute of node.attribute ?? []) {
        const where = `${attribute.name ?? '?'} of node '${node.name || node.opType}'`;
        if (isExternal(attribute.t) || inSparse(attribute.sparseTensor)) return attribute.t?.name || where;
        const tensor = (attribute.tensors ?? []).find(isExternal);
        if (tensor || (attribute.sparseTensors ?? []).some(inSparse)) return tensor?.name || where;
        for (const graph of [attribute.g, ...(attribute.graphs ?? [])]) {
          const found = graph ? inGraph(graph) : undefined;
          if (found !== undefined) return found;
        }
      }
    }
    return undefined;
  };
  const inGraph = (graph: OnnxTypes.IGraphProto): string | undefined => {
    const initializer = (graph.initializer ?? []).find(isExternal);
    if (initializer) return initializer.name ?? '?';
    const sparse = (graph.sparseInitializer ?? []).find(inSparse);
    if (sparse) return sparse.values?.name ?? '?';
    return inNodes(graph.node);
  };
  if (model.graph) {
    const found = inGraph(model.graph);
    if (found !== undefined) return found;
  }
  for (const fn of model.functions ?? []) {
    const found = inNodes(fn.node);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Most elements one tensor built at run time may have: 2^28 (1 GiB of float32). AlexNet's largest weight has
 * 3.8e7 and its largest activation at a batch of 64 has 1.8e7; a graph asking for more is refused at load rather
 * than allocating it on every inference.
 */
const MAX_BUILT_TENSOR_ELEMENTS = 2 ** 28;

/** Operators that allocate a tensor whose size comes from values (shapes, repeats, ranges), not from inputs. */
const BUILDERS: Readonly<Record<string, (values: (number[] | undefined)[], node: OnnxTypes.INodeProto) => number>> =
  Object.freeze({
    ConstantOfShape: ([shape]) => product(shape),
    Expand: ([, shape]) => product(shape),
    Tile: ([, repeats]) => product(repeats),
    Range: ([start, limit, delta]) =>
      start && limit && delta && delta[0] ? Math.ceil((limit[0]! - start[0]!) / delta[0]) : 0,
    Resize: ([, , scales, sizes]) => Math.max(product(sizes), product(scales)),
    Upsample: ([, scales]) => product(scales),
    Pad: ([, pads]) => {
      if (!pads) return 0;
      const rank = pads.length / 2;
      return product(pads.slice(0, rank).map((begin, i) => begin + pads[rank + i]! + 1));
    },
  });

/** The product of known values; 0 when unknown (nothing is claimed about it). */
function product(values: number[] | undefined): number {
  return values && values.length > 0 ? values.reduce((a, b) => a * Math.max(b, 0), 1) : 0;
}

/** Integer and float values of a constant tensor, when it is small enough to be a shape or a scalar. */
function valuesOf(tensor: OnnxTypes.ITensorProto | null | undefined): number[] | undefined {
  if (!tensor) return undefined;
  const count = (tensor.dims ?? []).reduce((a: number, b) => a * Number(b), 1);
  if (count > 64) return undefined;
  const raw = tensor.rawData && tensor.rawData.length > 0 ? tensor.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const reader = VALUE_READERS[tensor.dataType ?? 0];
  if (!reader) return undefined;
  return view
    ? Array.from({ length: count }, (_, i) => reader.raw(view, i * reader.size))
    : reader.typed(tensor).map(Number);
}

/** How a constant's values are read, by ONNX data type: from raw little-endian bytes or from the typed field. */
const VALUE_READERS: Readonly<
  Record<
    number,
    { size: number; raw: (view: DataView, at: number) => number; typed: (t: OnnxTypes.ITensorProto) => unknown[] }
  >
> = Object.freeze({
  [onnx.TensorProto.DataType.INT64]: {
    size: 8,
    raw: (view, at) => Number(view.getBigInt64(at, true)),
    typed: (t) => t.int64Data ?? [],
  },
  [onnx.TensorProto.DataType.INT32]: {
    size: 4,
    raw: (view, at) => view.getInt32(at, true),
    typed: (t) => t.int32Data ?? [],
  },
  [onnx.TensorProto.DataType.FLOAT]: {
    size: 4,
    raw: (view, at) => view.getFloat32(at, true),
    typed: (t) => t.floatData ?? [],
  },
});

/** Elementwise arithmetic on constant shape values, with a scalar broadcast over a vector. */
const ARITHMETIC: Readonly<Record<string, (a: number, b: number) => number>> = Object.freeze({
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => Math.trunc(a / b),
  Max: (a, b) => Math.max(a, b),
});

/**
 * The largest tensor a creation operator (BUILDERS) in the main graph makes, from the values its size inputs have
 * when they are constants or computed from constants and the input's shape (Shape, Concat, Gather, arithmetic;
 * a dynamic batch counts as 1, so the figure is a lower bound). Undefined when no such operator has known sizes.
 */
function largestBuiltTensor(
  graph: OnnxTypes.IGraphProto,
  inputName: string,
  inputShape: number[],
): { node: string; op: string; elements: number } | undefined {
  const known = new Map<string, number[]>();
  for (const tensor of graph.initializer ?? []) {
    const values = valuesOf(tensor);
    if (values) known.set(tensor.name ?? '', values);
  }
  known.set(
    `shape:${inputName}`,
    inputShape.map((d) => (d > 0 ? d : 1)),
  );
  let largest: { node: string; op: string; elements: number } | undefined;
  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    const inputs = (node.input ?? []).map((name) => known.get(name));
    const output = node.output?.[0];
    const attribute = (name: string) => (node.attribute ?? []).find((a) => a.name === name);
    let values: number[] | undefined;
    if (op === 'Constant') {
      const value = attribute('value');
      const ints = attribute('value_ints')?.ints;
      const int = attribute('value_int')?.i;
      values = value?.t ? valuesOf(value.t) : ints ? ints.map(Number) : int != null ? [Number(int)] : undefined;
    } else if (op === 'Shape' && node.input?.[0] === inputName) {
      values = known.get(`shape:${inputName}`);
    } else if (['Identity', 'Cast', 'Unsqueeze', 'Squeeze', 'Reshape', 'Flatten'].includes(op)) {
      values = inputs[0];
    } else if (op === 'Concat' && inputs.every(Boolean)) {
      values = inputs.flatMap((v) => v!);
    } else if (op === 'Gather' && inputs[0] && inputs[1]) {
      values = inputs[1].map((i) => inputs[0]![i < 0 ? inputs[0]!.length + i : i]!);
    } else if (ARITHMETIC[op] && inputs[0] && inputs[1]) {
      const [a, b] = [inputs[0], inputs[1]];
      const length = Math.max(a.length, b.length);
      values = Array.from({ length }, (_, i) =>
        ARITHMETIC[op]!(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!),
      );
    }
    if (values && output) known.set(output, values);
    const builder = BUILDERS[op];
    if (builder) {
      const elements = builder(inputs, node);
      if (!largest || elements > largest.elements) largest = { node: node.name || output || op, op, elements };
    }
  }
  return largest;
}

/**
 * Parses and validates ONNX bytes; `file` names the source in errors.
 * @throws ModelCheckError MODEL_MALFORMED, MODEL_EXTERNAL_DATA (a tensor anywhere in the model, in a Constant
 *   node or a subgraph too, stored in an external file), MODEL_HUGE_TENSOR (the graph builds a tensor of more
 *   than 2^28 elements from constant sizes) or MODEL_SIGNATURE (needs one float32 input [N, C, H, W] with C 1 or 3,
 *   and one float32 output [N, classes]; N may be dynamic or fixed).
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
  const external = findExternalTensor(model);
  if (external !== undefined) {
    throw new ModelCheckError(
      `${file}: tensor '${external}' is stored in an external data file; cnnx loads self-contained models only (re-save with all tensors inside the .onnx)`,
      'MODEL_EXTERNAL_DATA',
    );
  }
  const initializerNames = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !initializerNames.has(i.name));
  const outputs = graph.output ?? [];
  const expected = 'one float32 input [N, C, H, W] (C: 1 or 3) and one float32 output [N, classes]';
  /** `input float32 [N, 1, 28, 28]`: each tensor's name, element type (ONNX's name, lower case) and shape. */
  const describe = (list: OnnxTypes.IValueInfoProto[]) =>
    list
      .map((i) => {
        const info = dims(i);
        const type = info ? (onnx.TensorProto.DataType[info.elemType] ?? `type ${info.elemType}`).toLowerCase() : '?';
        return `${i.name} ${type} [${info?.shape.map((d) => (d < 0 ? 'N' : d)).join(', ') ?? '?'}]`;
      })
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
    (input.shape[1] !== 1 && input.shape[1] !== 3) ||
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
  // Both entries are optional; a malformed one falls back to the default, with a warning that says so.
  const warnings: string[] = [];
  const fallback: Record<string, string> = {
    [METADATA_KEYS.labels]: 'classes are named by index',
    [METADATA_KEYS.preprocess]: 'pictures are prepared as its dataset implies',
  };
  const entry = (key: string): unknown => {
    if (metadata[key] === undefined) return undefined;
    try {
      return JSON.parse(metadata[key]) as unknown;
    } catch {
      warnings.push(`its ${key} metadata is not JSON; ${fallback[key]}`);
      return undefined;
    }
  };
  let labels = Array.from({ length: classes }, (_, i) => String(i));
  const named = entry(METADATA_KEYS.labels);
  if (Array.isArray(named) && named.length === classes) labels = named.map(String);
  else if (named !== undefined) {
    warnings.push(
      `its ${METADATA_KEYS.labels} metadata is not an array of ${classes} names (the output's classes): ${JSON.stringify(named).slice(0, 80)}; ${fallback[METADATA_KEYS.labels]}`,
    );
  }
  const preprocess = entry(METADATA_KEYS.preprocess);
  const method =
    typeof preprocess === 'object' && preprocess !== null ? (preprocess as { method?: unknown }).method : undefined;
  if (preprocess !== undefined && method !== undefined && !(PROCEDURES as readonly unknown[]).includes(method)) {
    warnings.push(
      `its ${METADATA_KEYS.preprocess} method ${JSON.stringify(method)} is not one of ${PROCEDURES.join(', ')}; ${fallback[METADATA_KEYS.preprocess]}`,
    );
  } else if (preprocess !== undefined && (typeof preprocess !== 'object' || preprocess === null)) {
    warnings.push(
      `its ${METADATA_KEYS.preprocess} metadata is not a JSON object; ${fallback[METADATA_KEYS.preprocess]}`,
    );
  }
  const dataset = metadata[METADATA_KEYS.dataset] || undefined;
  const opset = Number((model.opsetImport ?? []).find((o) => !o.domain)?.version ?? 0);
  const batch = input.shape[0]!;
  const built = largestBuiltTensor(graph, inputs[0]!.name!, input.shape);
  if (built && built.elements > MAX_BUILT_TENSOR_ELEMENTS) {
    throw new ModelCheckError(
      `${file}: node '${built.node}' (${built.op}) builds a tensor of ${built.elements.toExponential(2)} elements at ` +
        `run time, over the ${MAX_BUILT_TENSOR_ELEMENTS.toExponential(2)}-element limit; refused`,
      'MODEL_HUGE_TENSOR',
    );
  }
  return {
    inputName: inputs[0]!.name!,
    outputName: outputs[0]!.name!,
    inputShape: [batch, ...input.shape.slice(1)],
    channels: input.shape[1]!,
    outputShape: [output.shape[0]!, classes],
    fixedBatch: batch > 0 ? batch : undefined,
    classes,
    opset,
    producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
    metadata,
    labels,
    dataset,
    procedure: procedureFor(dataset, method, input.shape[1]),
    warnings,
    outputKind: (graph.node ?? []).some((n) => n.opType === 'Softmax' && n.output?.[0] === outputs[0]!.name)
      ? 'probabilities'
      : 'logits',
  };
}

/** Default largest model file cnnx loads (AlexNet's ONNX is ~187 MB). */
const DEFAULT_MAX_MODEL_BYTES = 512 * 2 ** 20;

/**
 * The bytes of a model file, read only when it is a regular file of at most `maxBytes` (default 512 MiB). A FIFO,
 * a device or a socket (or a link to one, such as /dev/zero) is refused without reading: a read of a FIFO waits for
 * a writer and holds one of libuv's four file-system threads meanwhile, so four of them stop every file operation
 * of the process. The file is opened non-blocking (a regular file swapped for a FIFO after the check does not
 * block the open) and read to at most its size + 1 bytes (one that grows after the check is refused, not read on).
 * @throws ModelCheckError MODEL_UNREADABLE (missing, unreadable, a directory or not a regular file),
 *   MODEL_TOO_LARGE.
 */
export async function readModelFile(file: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
  const { open, stat } = await import('node:fs/promises');
  const { constants } = await import('node:fs');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  const unreadable = (error: unknown) =>
    new ModelCheckError(`${file}: cannot read (${whyUnreadable(error)})`, 'MODEL_UNREADABLE');
  const check = (info: { isDirectory(): boolean; isFile(): boolean; size: number }) => {
    if (info.isDirectory()) {
      throw new ModelCheckError(`${file}: is a directory; give the path of a .onnx file`, 'MODEL_UNREADABLE');
    }
    if (!info.isFile()) {
      throw new ModelCheckError(
        `${file}: is not a regular file (a FIFO, device or socket); give the path of a .onnx file`,
        'MODEL_UNREADABLE',
      );
    }
    if (info.size > maxBytes) {
      throw new ModelCheckError(
        `${file}: ${info.size} bytes is over the ${maxBytes}-byte model size limit`,
        'MODEL_TOO_LARGE',
      );
    }
  };
  check(
    await stat(file).catch((error: unknown) => {
      throw unreadable(error);
    }),
  );
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((error: unknown) => {
    throw unreadable(error);
  });
  try {
    const info = await handle.stat();
    check(info);
    // One byte more than its size: a file that grows while it is read fills it.
    const bytes = Buffer.allocUnsafe(info.size + 1);
    let length = 0;
    for (let read = -1; read !== 0 && length < bytes.length; length += read) {
      ({ bytesRead: read } = await handle.read(bytes, length, bytes.length - length, null));
    }
    if (length > info.size) {
      throw length > maxBytes
        ? new ModelCheckError(
            `${file}: grew past the ${maxBytes}-byte model size limit as it was read`,
            'MODEL_TOO_LARGE',
          )
        : new ModelCheckError(
            `${file}: changed as it was read; it is read again when written whole`,
            'MODEL_UNREADABLE',
          );
    }
    return bytes.subarray(0, length);
  } catch (error) {
    throw error instanceof ModelCheckError ? error : unreadable(error);
  } finally {
    await handle.close();
  }
}

/**
 * Reads and checks an ONNX file from disk (`readModelFile`, then `inspectOnnx`).
 * @throws ModelCheckError MODEL_UNREADABLE (missing, unreadable, a directory or not a regular file), MODEL_TOO_LARGE
 *   (over `maxBytes`, default 512 MiB), and whatever `inspectOnnx` throws.
 */
export async function readOnnxModel(
  file: string,
  options: { maxBytes?: number } = {},
): Promise<{ bytes: Uint8Array; signature: ModelSignature }> {
  const bytes = await readModelFile(file, options);
  return { bytes, signature: inspectOnnx(bytes, file) };
}
