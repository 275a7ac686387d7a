/**
 * A TensorFlow.js Layers model (topology and weights) -> an ONNX graph, layer by layer through the converter
 * table (layers/index.ts). The graph is channels-first like cnnx's own exports: input `input` [N, C, H, W] for a
 * tfjs [N, H, W, C] input, output `logits` [N, classes], weights moved to ONNX layout once and no Transpose node.
 * A batch norm right after a conv or dense layer without activation, read by nothing else, is folded into that
 * layer's weights with the formula cnnx's own exports use (models/layer-plan.ts).
 */
import { CnnxError } from '../../common/index.js';
import { foldBatchNormValues } from '../../models/index.js';
import { encodeModel, type MetadataValues } from '../build-model.js';
import { GraphBuilder, type Flow } from '../graph-builder.js';
import { LayerConfig, type ConvertContext, type Weight } from './context.js';
import { layerSupport, TFJS_LAYER_CLASSES, type LayerSupport } from './layers/index.js';
import { normalisesChannels } from './layers/normalization.js';
import type { SavedTfjsModel } from './read-model.js';
import {
  describeLayer,
  keras3,
  NESTED_MODEL_CLASSES,
  nestedModel,
  readTopology,
  type TfjsGraph,
  type TfjsLayer,
} from './topology.js';

export interface TfjsOnnx {
  bytes: Uint8Array;
  /** The model's name in its topology. */
  name: string;
  /** The tfjs input shape without the batch dimension: [H, W, C] or [F]. */
  tfjsInput: number[];
  /** The ONNX input shape without the batch dimension: [C, H, W] or [F]. */
  onnxInput: number[];
  /** Number of output features (classes). */
  classes: number;
}

/** The tfjs input shape of the graph's InputLayer, without the batch dimension. */
function inputShape(graph: TfjsGraph, file: string): number[] {
  const input = graph.layers[0]!;
  const shape = input.config.batch_input_shape;
  if (shape === undefined && input.config.batch_shape !== undefined) throw keras3(file, input);
  const dims = Array.isArray(shape) ? shape.slice(1) : undefined;
  if (!dims || !dims.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new CnnxError(
      `${file}: the input shape ${JSON.stringify(shape)} is not fixed; cnnx exports models with a fixed [H, W, C] input`,
      'EXPORT_UNSUPPORTED',
    );
  }
  if (dims.length !== 3 && dims.length !== 1) {
    throw new CnnxError(
      `${file}: an input of rank ${dims.length + 1}; cnnx exports [N, H, W, C] images`,
      'EXPORT_UNSUPPORTED',
    );
  }
  if (input.config.dtype !== undefined && input.config.dtype !== 'float32') {
    throw new CnnxError(
      `${file}: a ${String(input.config.dtype)} input; cnnx exports float32 inputs`,
      'EXPORT_UNSUPPORTED',
    );
  }
  return dims as number[];
}

/**
 * The batch norm to fold into `layer`, if any: `layer` can fold one, applies no activation, and its only reader
 * is a batch norm over the channels.
 */
function batchNormToFold(
  layer: TfjsLayer,
  support: LayerSupport,
  graph: TfjsGraph,
  readers: Map<string, TfjsLayer[]>,
  inputRank: number,
): TfjsLayer | undefined {
  const next = readers.get(layer.name) ?? [];
  const bn = next[0];
  if (!support.foldsBatchNormInto || next.length !== 1 || layer.name === graph.output) return undefined;
  if (bn?.className !== 'BatchNormalization' || bn.inbound.length !== 1) return undefined;
  if ((layer.config.activation ?? 'linear') !== 'linear') return undefined;
  return normalisesChannels({ config: new LayerConfig(bn) }, inputRank) ? bn : undefined;
}

/**
 * Builds the ONNX model of a saved tfjs Layers model; `metadataFor` gives the metadata for the graph's input
 * shape ([C, H, W] or [F]).
 * @throws CnnxError EXPORT_UNKNOWN_LAYER (a layer class the export does not support: named with its position and
 *   class; nothing is built), EXPORT_UNSUPPORTED (a setting or shape it cannot write), TFJS_MODEL_INVALID.
 */
export function buildOnnxFromTfjs(
  saved: SavedTfjsModel,
  opset: number,
  metadataFor: (onnxInput: number[]) => MetadataValues,
): TfjsOnnx {
  const { file } = saved;
  const graph = readTopology(saved.artifacts.modelTopology, file);
  // Every layer is checked before any is converted, so the first error is the first unsupported class.
  for (const layer of graph.layers) {
    if (NESTED_MODEL_CLASSES.has(layer.className)) throw nestedModel(file, layer);
    if (!layerSupport(layer.className)) {
      throw new CnnxError(
        `${file}: ${describeLayer(layer)} cannot be exported to ONNX; supported layer classes: ${TFJS_LAYER_CLASSES.join(', ')}`,
        'EXPORT_UNKNOWN_LAYER',
      );
    }
  }
  const readers = new Map<string, TfjsLayer[]>();
  for (const layer of graph.layers) {
    for (const source of layer.inbound) readers.set(source, [...(readers.get(source) ?? []), layer]);
  }
  const tfjsInput = inputShape(graph, file);
  const onnxInput = tfjsInput.length === 3 ? [tfjsInput[2]!, tfjsInput[0]!, tfjsInput[1]!] : tfjsInput;
  const builder = new GraphBuilder();
  const flows = new Map<string, Flow>();
  const folded = new Set<string>();
  // The graph's own input and output names: a layer called `logits` or `input` gets another tensor name.
  const usedNames = new Set<string>(['input', 'logits']);
  const zeroPadded = new Set<string>();
  // Every saved weight some layer reads: one that none reads means the manifest does not match the topology.
  const read = new Set<string>();
  const savedWeight = (name: string): Weight | undefined => {
    const weight = saved.weights.get(name);
    if (weight) read.add(name);
    return weight;
  };

  for (const layer of graph.layers) {
    const support = layerSupport(layer.className)!;
    const inputs =
      layer.className === 'InputLayer'
        ? [{ name: 'input', shape: onnxInput }]
        : layer.inbound.map((source) => flows.get(source)!);
    if (folded.has(layer.name)) {
      flows.set(layer.name, inputs[0]!);
      continue;
    }
    const own = (short: string): Weight | undefined => savedWeight(`${layer.name}/${short}`);
    const bn = batchNormToFold(layer, support, graph, readers, (inputs[0]?.shape.length ?? 0) + 1);
    const foldedWeights = bn
      ? foldInto(layer, support.foldsBatchNormInto!, bn, own, (short) => savedWeight(`${bn.name}/${short}`))
      : undefined;
    if (bn) folded.add(bn.name);
    const config = new LayerConfig(layer);
    const context: ConvertContext = {
      config,
      inputs,
      weight: (short) => foldedWeights?.get(short) ?? own(short),
      requireWeight: (short) => {
        const weight = foldedWeights?.get(short) ?? own(short);
        if (!weight)
          throw new CnnxError(
            `${file}: ${describeLayer(layer)} has no weight ${layer.name}/${short}`,
            'TFJS_MODEL_INVALID',
          );
        return weight;
      },
      addInitializer: (name, dims, data) => builder.addInitializer(name, dims, data),
      addInt64Initializer: (name, dims, values) => builder.addInt64Initializer(name, dims, values),
      addNode: (opType, nodeInputs, outputs, attributes) => builder.addNode(opType, nodeInputs, outputs, attributes),
      outputName: (suffix = '') => {
        let name = `${layer.name}${suffix}`;
        for (let n = 2; usedNames.has(name); n++) name = `${layer.name}${suffix}_${n}`;
        usedNames.add(name);
        return name;
      },
      opset,
      zeroPadded,
    };
    flows.set(layer.name, support.convert(context));
  }

  const unread = [...saved.weights.keys()].filter((name) => !read.has(name));
  if (unread.length > 0) {
    throw new CnnxError(
      `${file}: the weights manifest lists ${unread.slice(0, 3).join(', ')}${unread.length > 3 ? ` and ${unread.length - 3} more` : ''}, which no layer of the topology reads: the weights do not match the model's layers (saved from another model, or model.json edited)`,
      'TFJS_MODEL_INVALID',
    );
  }

  const output = flows.get(graph.output)!;
  if (output.shape.length !== 1) {
    throw new CnnxError(
      `${file}: the model's output is a feature map [${output.shape.join(', ')}]; cnnx exports classifiers with an [N, classes] output`,
      'EXPORT_UNSUPPORTED',
    );
  }
  if (output.order && output.order.some((from, i) => from !== i)) {
    throw new CnnxError(
      `${file}: the model's output is a flattened feature map, whose order differs in a channels-first graph; end the model with a Dense layer`,
      'EXPORT_UNSUPPORTED',
    );
  }
  if (output.name === 'input') throw new CnnxError(`${file}: the model computes nothing`, 'EXPORT_UNSUPPORTED');
  const bytes = encodeModel(
    builder,
    {
      name: graph.name,
      docString: `${graph.name}: a TensorFlow.js Layers model converted by cnnx to channels-first ONNX. Input: NCHW [N, ${onnxInput.join(', ')}].`,
      inputShape: onnxInput,
      output,
      opset,
    },
    { model: graph.name, ...metadataFor(onnxInput) },
  );
  return { bytes, name: graph.name, tfjsInput, onnxInput, classes: output.shape[0]! };
}

/** The kernel (`kernelName`) and bias of `layer` with batch norm `bn` folded in, by weight name. */
function foldInto(
  layer: TfjsLayer,
  kernelName: string,
  bn: TfjsLayer,
  own: (short: string) => Weight | undefined,
  bnWeight: (short: string) => Weight | undefined,
): Map<string, Weight> {
  const kernel = own(kernelName);
  const mean = bnWeight('moving_mean');
  const variance = bnWeight('moving_variance');
  if (!kernel || !mean || !variance) {
    throw new CnnxError(`${describeLayer(bn)} or ${describeLayer(layer)} lacks a weight to fold`, 'TFJS_MODEL_INVALID');
  }
  const features = mean.data.length;
  const fill = (value: number) => new Float32Array(features).fill(value);
  const folded = foldBatchNormValues(kernel.data, own('bias')?.data ?? fill(0), {
    gamma: bnWeight('gamma')?.data ?? fill(1),
    beta: bnWeight('beta')?.data ?? fill(0),
    mean: mean.data,
    variance: variance.data,
    epsilon: new LayerConfig(bn).number('epsilon', 1e-3),
  });
  return new Map([
    [kernelName, { shape: kernel.shape, data: folded.kernel }],
    ['bias', { shape: [features], data: folded.bias }],
  ]);
}
