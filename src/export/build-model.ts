/**
 * Builds an ONNX ModelProto from a model spec and trained weights (tfjs layout), layer by layer through the
 * emitter registry. The graph is plain NCHW like a PyTorch export: input `input` [N, 1, H, W] (pixel/255, ink
 * bright), output `logits` [N, classes], no layout Transpose nodes.
 */
import { createHash } from 'node:crypto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { CnnxError, type TensorMap } from '../common/index.js';
import { foldBatchNormValues, inferenceSpec, type ModelSpec } from '../models/index.js';
import { METADATA_KEYS, onnx } from '../runtime/index.js';
import { defaultEmitters, type EmitterRegistry } from './emitters/index.js';
import { GraphBuilder, valueInfo, type Flow } from './graph-builder.js';

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

/**
 * Weights of the inference spec (batch norms folded, see models/inference-spec.ts), named by its layer indices.
 */
function inferenceWeights(spec: ModelSpec, weights: TensorMap): TensorMap {
  const { spec: inference, sourceIndex, foldedBatchNorm } = inferenceSpec(spec);
  const out: TensorMap = new Map();
  const need = (name: string) => {
    const tensor = weights.get(name);
    if (!tensor) throw new CnnxError(`weights have no parameter ${name}`, 'BAD_WEIGHTS');
    return tensor;
  };
  inference.layers.forEach((layer, index) => {
    const source = sourceIndex[index]!;
    const bn = foldedBatchNorm[index];
    for (const [name, tensor] of weights) {
      if (name.startsWith(`${source}.`)) out.set(`${index}.${name.slice(name.indexOf('.') + 1)}`, tensor);
    }
    if (bn === undefined) return;
    const bnLayer = spec.layers[bn]!;
    const weight = need(`${source}.weight`);
    const folded = foldBatchNormValues(weight.data, need(`${source}.bias`).data, {
      gamma: need(`${bn}.weight`).data,
      beta: need(`${bn}.bias`).data,
      mean: need(`${bn}.running_mean`).data,
      variance: need(`${bn}.running_var`).data,
      epsilon: bnLayer.kind === 'batch-norm' ? (bnLayer.epsilon ?? 1e-5) : 1e-5,
    });
    out.set(`${index}.weight`, { shape: weight.shape, data: folded.kernel });
    out.set(`${index}.bias`, { shape: [folded.bias.length], data: folded.bias });
    void layer;
  });
  return out;
}

export function buildOnnxModel(
  spec: ModelSpec,
  weights: TensorMap,
  metadata: ExportMetadata,
  options: { opset?: number; emitters?: EmitterRegistry } = {},
): Uint8Array {
  const opset = checkOpset(options.opset ?? DEFAULT_OPSET);
  const emitters = options.emitters ?? defaultEmitters();
  const builder = new GraphBuilder();
  const inference = inferenceSpec(spec);
  const layerWeights = inferenceWeights(spec, weights);
  let flow: Flow = { name: 'input', shape: [...spec.input] };
  inference.spec.layers.forEach((layer, index) => {
    const emitter = emitters.get(layer.kind);
    let outputs = 0;
    flow = emitter.emit({
      layer,
      index,
      input: flow,
      weight: (suffix) => {
        const tensor = layerWeights.get(`${index}.${suffix}`);
        if (!tensor)
          throw new CnnxError(
            `weights have no parameter ${index}.${suffix} (layer ${index}, ${layer.kind})`,
            'BAD_WEIGHTS',
          );
        return tensor;
      },
      addInitializer: (name, dims, data) => builder.addInitializer(name, dims, data),
      addNode: (opType, inputs, outputs_, attributes) => builder.addNode(opType, inputs, outputs_, attributes),
      outputName: (suffix = '') => `${index}.${layer.kind}${suffix}${outputs++ ? `_${outputs}` : ''}`,
    });
  });
  // The last tensor is the graph output, named `logits` as the contract says.
  for (const node of builder.nodes)
    node.output = (node.output ?? []).map((name) => (name === flow.name ? 'logits' : name));
  const metadataValues = {
    model: spec.name,
    dataset: metadata.dataset,
    labels: JSON.stringify(metadata.labels),
    preprocess: JSON.stringify(metadata.preprocess),
    metrics: JSON.stringify(metadata.metrics),
    weightsSha256: weightsSha256(builder.initializers),
  } satisfies { [F in keyof typeof METADATA_KEYS]: string };
  const model: OnnxTypes.IModelProto = {
    irVersion: irVersionFor(opset),
    opsetImport: [{ domain: '', version: opset }],
    producerName: PRODUCER.name,
    producerVersion: PRODUCER.version,
    domain: 'ai.cnnx',
    modelVersion: 1,
    docString: `${spec.name}: ${spec.description}, trained on ${metadata.dataset} with cnnx (TensorFlow.js). Input: pixel/255 in [0,1], ink bright, NCHW.`,
    graph: {
      name: spec.name,
      node: builder.nodes,
      initializer: builder.initializers,
      input: [valueInfo('input', [...spec.input])],
      output: [valueInfo('logits', flow.shape)],
    },
    metadataProps: Object.entries(metadataValues).map(([field, value]) => ({
      key: METADATA_KEYS[field as keyof typeof metadataValues],
      value,
    })),
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
