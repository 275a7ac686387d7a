/**
 * Tiny ONNX classifiers written by hand, for tests that need a model of a given shape or ending: input `input`
 * float32 [N, 1, 28, 28] (N dynamic), then `nodes`, with output `output` float32 [N, classes].
 */
import type { onnx as OnnxTypes } from 'onnx-proto';
import { onnx } from '../../src/runtime/index.js';

const floatTensor = (name: string, dims: number[]): OnnxTypes.IValueInfoProto => ({
  name,
  type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (d < 0 ? { dimParam: 'N' } : { dimValue: d })) } } },
});

/** Encodes a classifier graph; `initializers` are float32 tensors by name. */
export function tinyClassifier(options: {
  classes: number;
  output: string;
  nodes: OnnxTypes.INodeProto[];
  initializers: Record<string, { dims: number[]; data: number[] }>;
}): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny',
      node: options.nodes,
      initializer: Object.entries(options.initializers).map(([name, { dims, data }]) => ({
        name,
        dims,
        dataType: 1,
        floatData: data,
      })),
      input: [floatTensor('input', [-1, 1, 28, 28])],
      output: [floatTensor(options.output, [-1, options.classes])],
    },
  }).finish();
}
