/** Element-wise activations: Sigmoid and ReLU keep the shape and the feature order. */
import type { LayerEmitter } from '../graph-builder.js';

export const sigmoidEmitter: LayerEmitter<'sigmoid'> = {
  layer: 'sigmoid',
  emit({ input, addNode, outputName }) {
    const output = outputName();
    addNode('Sigmoid', [input.name], [output]);
    return { ...input, name: output };
  },
};

export const reluEmitter: LayerEmitter<'relu'> = {
  layer: 'relu',
  emit({ input, addNode, outputName }) {
    const output = outputName();
    addNode('Relu', [input.name], [output]);
    return { ...input, name: output };
  },
};
