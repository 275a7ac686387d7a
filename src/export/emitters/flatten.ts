/**
 * Flatten -> Flatten(axis=1) in NCHW order, as PyTorch flattens. tfjs flattened NHWC, so the flow records the
 * feature order and the next dense layer permutes its rows (see dense.ts); no Transpose node is needed.
 */
import type { LayerEmitter } from '../graph-builder.js';
import { flattenOrder } from '../layout.js';

export const flattenEmitter: LayerEmitter<'flatten'> = {
  layer: 'flatten',
  emit({ input, addNode, outputName }) {
    const output = outputName();
    addNode('Flatten', [input.name], [output], { axis: 1 });
    const size = input.shape.reduce((a, b) => a * b, 1);
    return { name: output, shape: [size], order: input.shape.length === 3 ? flattenOrder(input.shape) : input.order };
  },
};
