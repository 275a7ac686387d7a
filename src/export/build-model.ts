/**
 * Builds an ONNX ModelProto from a model spec and trained weights (tfjs layout), layer by layer through the
 * emitter registry. The graph is plain NCHW like a PyTorch export: input `input` [N, 1, H, W] (pixel/255, ink
 * bright), output `logits` [N, classes], no layout Transpose nodes.
 */
import { createHash } from 'node:crypto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { CnnxError, type TensorMap } from '../common/index.js';
import { foldBatchNormValues, layerPlan, type LayerSpec, type ModelSpec, type PlanStep } from '../models/index.js';
import { METADATA_KEYS, onnx } from '../runtime/index.js';
import { defaultEmitters, type EmitterRegistry } from './emitters/index.js';
import { GraphBuilder, valueInfo, type Flow } from './graph-builder.js';

/** One weight in tfjs layout. */
type NamedTensor = { shape: number[]; data: Float32Array };

const PRODUCER = { name: 'cnnx', version: '0.1.0' };
export const DEFAULT_OPSET = 17;
export const MIN_OPSET = 11;
export const MAX_OPSET = 21;

/** The IR version each default-domain opset shipped with (onnx/onnx docs/Versioning.md). */
export function irVersionFor(opset: number): number {
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

export function checkOpset(opset: number): number {
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new CnnxError(`--opset must be an integer from ${MIN_OPSET} to ${MAX_OPSET}, got ${opset}`, 'BAD_OPSET');
  }
  return opset;
}

export interface ExportMetadata {
  dataset: string;
  labels: readonly string[];
  preprocess: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

/** sha256 over the initializers' raw bytes in graph order: checkable from the .onnx file alone. */
function weightsSha256(initializers: OnnxTypes.ITensorProto[]): string {
  const hash = createHash('sha256');
  for (const tensor of initializers) hash.update(tensor.rawData ?? new Uint8Array());
  return hash.digest('hex');
}

/** The metadata_props of an exported model, by field of METADATA_KEYS; a field left out is not written. */
export type MetadataValues = Partial<Record<keyof typeof METADATA_KEYS, string>>;

/**
 * A finished graph as ONNX bytes: input `input` [N, ...inputShape] and the tensor `output` as `logits`
 * [N, ...output.shape], with the opset's IR version, the metadata and the sha256 of the initializers.
 * @throws Error when a node reads a tensor nothing defines (a bug in an emitter).
 */
export function encodeModel(
  builder: GraphBuilder,
  graph: { name: string; docString: string; inputShape: number[]; output: Flow; opset: number },
  metadata: MetadataValues,
): Uint8Array {
  // The last tensor is the graph output, named `logits` as the contract says.
  const rename = (name: string) => (name === graph.output.name ? 'logits' : name);
  for (const node of builder.nodes) {
    node.input = (node.input ?? []).map(rename);
    node.output = (node.output ?? []).map(rename);
  }
  const defined = builder.defined(['input']);
  for (const node of builder.nodes) {
    const missing = (node.input ?? []).filter((name) => name !== '' && !defined.has(name));
    if (missing.length > 0) throw new Error(`ONNX node ${node.name} reads undefined tensors: ${missing.join(', ')}`);
  }
  const values = { ...metadata, weightsSha256: weightsSha256(builder.initializers) };
  const model: OnnxTypes.IModelProto = {
    irVersion: irVersionFor(graph.opset),
    opsetImport: [{ domain: '', version: graph.opset }],
    producerName: PRODUCER.name,
    producerVersion: PRODUCER.version,
    domain: 'ai.cnnx',
    modelVersion: 1,
    docString: graph.docString,
    graph: {
      name: graph.name,
      node: builder.nodes,
      initializer: builder.initializers,
      input: [valueInfo('input', graph.inputShape)],
      output: [valueInfo('logits', graph.output.shape)],
    },
    metadataProps: Object.entries(values)
      .filter(([, value]) => value !== undefined)
      .map(([field, value]) => ({ key: METADATA_KEYS[field as keyof typeof METADATA_KEYS], value })),
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** The weights of one step of the layer plan, by suffix, with its batch norm folded in (models/layer-plan.ts). */
function stepWeights(step: PlanStep, weights: TensorMap): Map<string, NamedTensor> {
  const need = (name: string) => {
    const tensor = weights.get(name);
    if (!tensor) {
      throw new CnnxError(`weights have no parameter ${name} (layer ${step.index}, ${step.layer.kind})`, 'BAD_WEIGHTS');
    }
    return tensor;
  };
  const out = new Map<string, NamedTensor>();
  for (const [name, tensor] of weights) {
    if (name.startsWith(`${step.index}.`)) out.set(name.slice(name.indexOf('.') + 1), tensor);
  }
  if (!step.batchNorm) return out;
  const bn = step.batchNorm.index;
  const weight = need(`${step.index}.weight`);
  const folded = foldBatchNormValues(weight.data, need(`${step.index}.bias`).data, {
    gamma: need(`${bn}.weight`).data,
    beta: need(`${bn}.bias`).data,
    mean: need(`${bn}.running_mean`).data,
    variance: need(`${bn}.running_var`).data,
    epsilon: step.batchNorm.layer.epsilon ?? 1e-5,
  });
  out.set('weight', { shape: weight.shape, data: folded.kernel });
  out.set('bias', { shape: [folded.bias.length], data: folded.bias });
  return out;
}

/**
 * The ONNX model of a cnnx spec with trained weights (tfjs layout, named as `parameterSpecs` names them). The
 * exporter walks the same layer plan as the tfjs network: batch norms folded, and each layer named by its index
 * in the inference spec (`inferenceSpec`), so `weightsFromOnnx` reads it back.
 * @throws CnnxError BAD_OPSET, BAD_WEIGHTS (a parameter missing), EXPORT_UNKNOWN_LAYER (no emitter for a kind).
 */
export function buildOnnxModel(
  spec: ModelSpec,
  weights: TensorMap,
  metadata: ExportMetadata,
  options: { opset?: number; emitters?: EmitterRegistry } = {},
): Uint8Array {
  const opset = checkOpset(options.opset ?? DEFAULT_OPSET);
  const emitters = options.emitters ?? defaultEmitters();
  const builder = new GraphBuilder();
  let flow: Flow = { name: 'input', shape: [...spec.input] };
  let position = 0;
  const emit = (layer: LayerSpec, layerWeights: Map<string, NamedTensor>) => {
    const index = position++;
    let outputs = 0;
    flow = emitters.get(layer.kind).emit({
      layer,
      index,
      input: flow,
      weight: (suffix) => {
        const tensor = layerWeights.get(suffix);
        if (!tensor) {
          throw new CnnxError(
            `weights have no parameter ${index}.${suffix} (layer ${index}, ${layer.kind})`,
            'BAD_WEIGHTS',
          );
        }
        return tensor;
      },
      addInitializer: (name, dims, data) => builder.addInitializer(name, dims, data),
      addInt64Initializer: (name, dims, values) => builder.addInt64Initializer(name, dims, values),
      addNode: (opType, inputs, outputs_, attributes) => builder.addNode(opType, inputs, outputs_, attributes),
      outputName: (suffix = '') => `${index}.${layer.kind}${suffix}${outputs++ ? `_${outputs}` : ''}`,
    });
  };
  for (const step of layerPlan(spec, { foldBatchNorm: true })) {
    emit(step.layer, stepWeights(step, weights));
    if (step.activation) emit(step.activation.layer, new Map());
  }
  return encodeModel(
    builder,
    {
      name: spec.name,
      docString: `${spec.name}: ${spec.description}, trained on ${metadata.dataset} with cnnx (TensorFlow.js). Input: pixel/255 in [0,1], ink bright, NCHW.`,
      inputShape: [...spec.input],
      output: flow,
      opset,
    },
    {
      model: spec.name,
      dataset: metadata.dataset,
      labels: JSON.stringify(metadata.labels),
      preprocess: JSON.stringify(metadata.preprocess),
      metrics: JSON.stringify(metadata.metrics),
    },
  );
}
