/**
 * The inverse of the exporter: a cnnx-exported ONNX model's initializers back into tfjs layout, so that a
 * committed model can be run in TensorFlow.js and compared with every ONNX Runtime path. `spec` is the
 * inference spec (`inferenceSpec(training spec).spec`): batch norms come back folded into their layers.
 */
import type { onnx as OnnxTypes } from 'onnx-proto';
import { CnnxError, type TensorMap } from '../common/index.js';
import { layerShapes, parameterSpecs, type ModelSpec } from '../models/index.js';

/** Float32 values of an initializer (raw_data or float_data). */
function valuesOf(tensor: OnnxTypes.ITensorProto): Float32Array {
  if (tensor.rawData && tensor.rawData.length > 0) {
    const raw = tensor.rawData;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }
  return Float32Array.from(tensor.floatData ?? []);
}

export function weightsFromOnnx(model: OnnxTypes.IModelProto, spec: ModelSpec): TensorMap {
  const initializers = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const shapes = layerShapes(spec);
  const weights: TensorMap = new Map();
  for (const param of parameterSpecs(spec)) {
    const tensor = initializers.get(param.name);
    if (!tensor)
      throw new CnnxError(`model has no initializer ${param.name}; only cnnx exports can be read back`, 'BAD_WEIGHTS');
    let data = valuesOf(tensor);
    const layer = spec.layers[param.layer]!;
    if (layer.kind === 'conv2d' && param.name.endsWith('.weight')) {
      const [kh, kw, inC, outC] = param.shape as [number, number, number, number];
      const tfjs = new Float32Array(data.length);
      for (let o = 0; o < outC; o++)
        for (let i = 0; i < inC; i++)
          for (let y = 0; y < kh; y++)
            for (let x = 0; x < kw; x++)
              tfjs[((y * kw + x) * inC + i) * outC + o] = data[((o * inC + i) * kh + y) * kw + x]!;
      data = tfjs;
    } else if (layer.kind === 'dense' && param.name.endsWith('.weight') && param.layer > 0) {
      const previous = shapes[param.layer - 1]!;
      const flattenedMap = previous.layer.kind === 'flatten' ? shapes[param.layer - 2]?.output : undefined;
      if (flattenedMap && flattenedMap.length === 3) {
        const [c, h, w] = flattenedMap as [number, number, number];
        const units = param.shape[1]!;
        const tfjs = new Float32Array(data.length);
        for (let ch = 0; ch < c; ch++)
          for (let y = 0; y < h; y++)
            for (let x = 0; x < w; x++) {
              const nchw = ((ch * h + y) * w + x) * units;
              tfjs.set(data.subarray(nchw, nchw + units), ((y * w + x) * c + ch) * units);
            }
        data = tfjs;
      }
    }
    weights.set(param.name, { shape: param.shape, data });
  }
  return weights;
}
