/** Conv2d -> Conv. Kernels move from tfjs [kh, kw, in, out] to ONNX [out, in, kh, kw]. */
import type { LayerEmitter } from '../graph-builder.js';

export const conv2dEmitter: LayerEmitter<'conv2d'> = {
  layer: 'conv2d',
  emit({ layer, index, input, weight, addInitializer, addNode, outputName }) {
    const w = weight('weight');
    const [kh, kw, inC, outC] = w.shape as [number, number, number, number];
    const onnxKernel = new Float32Array(w.data.length);
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let i = 0; i < inC; i++)
          for (let o = 0; o < outC; o++) {
            onnxKernel[((o * inC + i) * kh + y) * kw + x] = w.data[((y * kw + x) * inC + i) * outC + o]!;
          }
    const stride = layer.stride ?? 1;
    const pad = layer.padding ?? 0;
    const output = outputName();
    addNode(
      'Conv',
      [
        input.name,
        addInitializer(`${index}.weight`, [outC, inC, kh, kw], onnxKernel),
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
