/** Conv2d -> Conv. Kernels move from tfjs [kh, kw, in, out] to ONNX [out, in, kh, kw] (layout.ts). */
import type { LayerEmitter } from '../graph-builder.js';
import { convKernelToOnnx } from '../layout.js';

export const conv2dEmitter: LayerEmitter<'conv2d'> = {
  layer: 'conv2d',
  emit({ layer, index, input, weight, addInitializer, addNode, outputName }) {
    const w = weight('weight');
    const [kh, kw, inC, outC] = w.shape as [number, number, number, number];
    const stride = layer.stride ?? 1;
    const pad = layer.padding ?? 0;
    const output = outputName();
    addNode(
      'Conv',
      [
        input.name,
        addInitializer(`${index}.weight`, [outC, inC, kh, kw], convKernelToOnnx(w.data, w.shape)),
        addInitializer(`${index}.bias`, [outC], weight('bias').data),
      ],
      [output],
      { kernel_shape: [kh, kw], strides: [stride, stride], pads: [pad, pad, pad, pad], dilations: [1, 1], group: 1 },
    );
    const [, h, wd] = input.shape as [number, number, number];
    const size = (n: number) => Math.floor((n + 2 * pad - kh) / stride) + 1;
    return { name: output, shape: [outC, size(h), size(wd)] };
  },
};
