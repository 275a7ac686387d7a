/**
 * The inverse of the exporter: a cnnx-exported ONNX model's initializers back into tfjs layout, so that a
 * committed model can be run in TensorFlow.js and compared with every ONNX Runtime path. `spec` is the
 * inference spec (`inferenceSpec(training spec).spec`): batch norms come back folded into their layers.
 */
import type { onnx as OnnxTypes } from 'onnx-proto';
import { CnnxError, type TensorMap } from '../common/index.js';
import { layerShapes, parameterSpecs, type LayerKind, type ModelSpec, type ParameterSpec } from '../models/index.js';
import { convKernelToTfjs, flattenOrder, rowsToTfjs } from './layout.js';

/** Float32 values of an initializer (raw_data or float_data). */
function valuesOf(tensor: OnnxTypes.ITensorProto): Float32Array {
  if (tensor.rawData && tensor.rawData.length > 0) {
    const raw = tensor.rawData;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }
  return Float32Array.from(tensor.floatData ?? []);
}

/**
 * How one parameter goes from ONNX layout back to tfjs layout. `flattened` is the [C, H, W] map a Flatten right
 * before this layer flattened, if any.
 */
type ToTfjs = (param: ParameterSpec, data: Float32Array, flattened: number[] | undefined) => Float32Array;

const asIs: ToTfjs = (_, data) => data;
const isWeight = (param: ParameterSpec) => param.name.endsWith('.weight');

/** One entry per layer kind: a new kind does not compile until it says how its parameters come back. */
const TO_TFJS = {
  conv2d: (param, data) => (isWeight(param) ? convKernelToTfjs(data, param.shape) : data),
  dense: (param, data, flattened) =>
    isWeight(param) && flattened ? rowsToTfjs(data, param.shape[1]!, flattenOrder(flattened)) : data,
  'batch-norm': asIs,
  'max-pool': asIs,
  flatten: asIs,
  sigmoid: asIs,
  relu: asIs,
  dropout: asIs,
} satisfies { [K in LayerKind]: ToTfjs };

/**
 * The weights of a cnnx-exported model in tfjs layout, named as `parameterSpecs(spec)` names them.
 * @throws CnnxError BAD_WEIGHTS when the model lacks an initializer the spec needs (not a cnnx export).
 */
export function weightsFromOnnx(model: OnnxTypes.IModelProto, spec: ModelSpec): TensorMap {
  const initializers = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const shapes = layerShapes(spec);
  const weights: TensorMap = new Map();
  for (const param of parameterSpecs(spec)) {
    const tensor = initializers.get(param.name);
    if (!tensor)
      throw new CnnxError(`model has no initializer ${param.name}; only cnnx exports can be read back`, 'BAD_WEIGHTS');
    const layer = spec.layers[param.layer]!;
    const previous = shapes[param.layer - 1];
    const flattenedMap = previous?.layer.kind === 'flatten' ? shapes[param.layer - 2]?.output : undefined;
    const flattened = flattenedMap?.length === 3 ? flattenedMap : undefined;
    weights.set(param.name, { shape: param.shape, data: TO_TFJS[layer.kind](param, valuesOf(tensor), flattened) });
  }
  return weights;
}
