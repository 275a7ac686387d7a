/**
 * The layer graph of a TensorFlow.js Layers model, from its `modelTopology` (what `model.save()` writes in
 * model.json): Sequential models and functional models (class `Model` or `Functional`), in topological order, each
 * layer with its config and the layers it reads. Errors name the file, and the layer by position, name and class.
 */
import { CnnxError } from '../../common/index.js';

/** One layer of the model, as saved. */
export interface TfjsLayer {
  /** Position in the model's layer list, from 0 (what error messages print). */
  position: number;
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Names of the layers whose outputs this layer reads, in order (none for the input layer). */
  inbound: string[];
}

export interface TfjsGraph {
  /** The model's name (its config `name`). */
  name: string;
  /** Layers in an order where each comes after the layers it reads; the first is the InputLayer. */
  layers: TfjsLayer[];
  /** Name of the layer whose output is the model's output. */
  output: string;
}

/** A layer's description for messages: `layer 3 "dense_Dense1" (Dense)`. */
export function describeLayer(layer: Pick<TfjsLayer, 'position' | 'name' | 'className'>): string {
  return `layer ${layer.position} "${layer.name}" (${layer.className})`;
}

/** Saved classes of whole models, which a model can hold as a layer. */
export const NESTED_MODEL_CLASSES = new Set(['Sequential', 'Model', 'Functional']);

/** The error for a model nested in the model as one of its layers. */
export function nestedModel(file: string, layer: Pick<TfjsLayer, 'position' | 'name' | 'className'>): CnnxError {
  return new CnnxError(
    `${file}: ${describeLayer(layer)} is a whole model used as a layer; cnnx exports flat models: build the outer model from the inner one's layers (e.g. tf.sequential({ layers: [...inner.layers, ...] }))`,
    'EXPORT_UNSUPPORTED',
  );
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Reads the layer graph from a saved topology; `file` names the source in errors.
 * @throws CnnxError TFJS_MODEL_INVALID (not a Layers model, no input shape, a layer reading an unknown layer),
 *   EXPORT_UNSUPPORTED (several inputs or outputs, a layer applied more than once).
 */
export function readTopology(topology: unknown, file: string): TfjsGraph {
  const invalid = (why: string) => new CnnxError(`${file}: ${why}`, 'TFJS_MODEL_INVALID');
  // Keras writes the model under `model_config` in some versions; tfjs writes it at the top.
  const model = isObject(topology) && isObject(topology.model_config) ? topology.model_config : topology;
  if (!isObject(model) || typeof model.class_name !== 'string' || !isObject(model.config)) {
    throw invalid('not a TensorFlow.js Layers model (modelTopology has no class_name and config)');
  }
  const config = model.config;
  const rawLayers = config.layers;
  if (!Array.isArray(rawLayers) || rawLayers.length === 0) throw invalid(`the ${model.class_name} model has no layers`);
  const name = typeof config.name === 'string' ? config.name : model.class_name;
  // Keras 3 writes InputLayer's shape as batch_shape (and its nodes in another form): said before they are read.
  const input = rawLayers.find((raw) => isObject(raw) && raw.class_name === 'InputLayer');
  const inputConfig = isObject(input) && isObject(input.config) ? input.config : undefined;
  if (inputConfig && inputConfig.batch_input_shape === undefined && inputConfig.batch_shape !== undefined) {
    throw keras3(file, layerOf(input, rawLayers.indexOf(input), invalid));
  }
  const graph =
    model.class_name === 'Sequential'
      ? sequentialLayers(rawLayers, file, invalid)
      : model.class_name === 'Model' || model.class_name === 'Functional'
        ? functionalLayers(config, rawLayers, file, invalid)
        : undefined;
  if (!graph) throw invalid(`a ${model.class_name} model is not a Sequential or functional Layers model`);
  return { name, ...graph };
}

function layerOf(raw: unknown, position: number, invalid: (why: string) => CnnxError): Omit<TfjsLayer, 'inbound'> {
  if (!isObject(raw) || typeof raw.class_name !== 'string' || !isObject(raw.config)) {
    throw invalid(`layer ${position} has no class_name and config`);
  }
  const name = typeof raw.name === 'string' ? raw.name : typeof raw.config.name === 'string' ? raw.config.name : '';
  return { position, name: name || `layer_${position}`, className: raw.class_name, config: raw.config };
}

/** A Sequential model: each layer reads the one before; the input comes from the first layer's input shape. */
function sequentialLayers(
  rawLayers: unknown[],
  file: string,
  invalid: (why: string) => CnnxError,
): Omit<TfjsGraph, 'name'> {
  const layers = rawLayers.map((raw, position) => layerOf(raw, position, invalid));
  const first = layers[0]!;
  if (first.config.batch_input_shape === undefined && first.config.batch_shape !== undefined) {
    throw keras3(file, first);
  }
  const chain: TfjsLayer[] = [];
  if (NESTED_MODEL_CLASSES.has(first.className)) throw nestedModel(file, first);
  if (first.className !== 'InputLayer') {
    const shape = first.config.batch_input_shape;
    if (!Array.isArray(shape))
      throw invalid(`${describeLayer(first)} has no batch_input_shape: the model's input shape is unknown`);
    chain.push({
      position: -1,
      name: 'input',
      className: 'InputLayer',
      config: { batch_input_shape: shape },
      inbound: [],
    });
  }
  for (const layer of layers)
    chain.push({ ...layer, inbound: chain.length > 0 ? [chain[chain.length - 1]!.name] : [] });
  return { layers: chain, output: chain[chain.length - 1]!.name };
}

/** A functional model: `inbound_nodes` name the layers each layer reads. */
function functionalLayers(
  config: Json,
  rawLayers: unknown[],
  file: string,
  invalid: (why: string) => CnnxError,
): Omit<TfjsGraph, 'name'> {
  const unsupported = (why: string) => new CnnxError(`${file}: ${why}`, 'EXPORT_UNSUPPORTED');
  const ends = (key: string): string[] =>
    Array.isArray(config[key])
      ? (config[key] as unknown[]).map((entry) => (Array.isArray(entry) ? String(entry[0]) : ''))
      : [];
  const inputs = ends('input_layers');
  const outputs = ends('output_layers');
  if (inputs.length !== 1)
    throw unsupported(`the model has ${inputs.length} inputs; cnnx exports models with one image input`);
  if (outputs.length !== 1)
    throw unsupported(`the model has ${outputs.length} outputs; cnnx exports models with one output`);
  const seen = new Set<string>();
  const layers = rawLayers.map((raw, position): TfjsLayer => {
    const layer = layerOf(raw, position, invalid);
    const nodes = isObject(raw) && Array.isArray(raw.inbound_nodes) ? (raw.inbound_nodes as unknown[]) : [];
    if (nodes.length > 1) {
      throw unsupported(`${describeLayer(layer)} is applied ${nodes.length} times; shared layers are not supported`);
    }
    const inbound =
      nodes.length === 0 ? [] : (nodes[0] as unknown[]).map((entry) => (Array.isArray(entry) ? String(entry[0]) : ''));
    for (const source of inbound) {
      if (!seen.has(source)) throw invalid(`${describeLayer(layer)} reads "${source}", which no earlier layer defines`);
    }
    if (inbound.length === 0 && layer.className !== 'InputLayer') {
      throw invalid(`${describeLayer(layer)} reads no layer`);
    }
    seen.add(layer.name);
    return { ...layer, inbound };
  });
  const input = layers.find((layer) => layer.className === 'InputLayer');
  if (!input || input.name !== inputs[0]) throw invalid(`the model's input "${inputs[0]}" is not an InputLayer`);
  if (!seen.has(outputs[0]!)) throw invalid(`the model's output "${outputs[0]}" is not one of its layers`);
  return { layers: [input, ...layers.filter((layer) => layer !== input)], output: outputs[0]! };
}

/** The error for a model saved by Keras 3, whose InputLayer has `batch_shape` where tfjs reads `batch_input_shape`. */
export function keras3(file: string, layer: Omit<TfjsLayer, 'inbound'>): CnnxError {
  return new CnnxError(
    `${file}: ${describeLayer(layer)} has Keras 3's batch_shape, a format TensorFlow.js cannot load (so the export could not be checked against it); convert the model from tf.keras (Keras 2) with tensorflowjs_converter`,
    'TFJS_MODEL_INVALID',
  );
}
