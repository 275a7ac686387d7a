/** MaxPool2d -> MaxPool (no padding, floor rounding: ceil_mode 0, as tfjs 'valid' and PyTorch's default). */
import type { LayerEmitter } from '../graph-builder.js';

export const maxPoolEmitter: LayerEmitter<'max-pool'> = {
  layer: 'max-pool',
  emit({ layer, input, addNode, outputName }) {
    const output = outputName();
    addNode('MaxPool', [input.name], [output], {
      kernel_shape: [layer.size, layer.size],
      strides: [layer.stride, layer.stride],
      pads: [0, 0, 0, 0],
      ceil_mode: 0,
    });
    const [c, h, w] = input.shape as [number, number, number];
    const size = (n: number) => Math.floor((n - layer.size) / layer.stride) + 1;
    return { name: output, shape: [c, size(h), size(w)] };
  },
};
