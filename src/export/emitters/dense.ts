/**
 * Linear -> Gemm with the tfjs kernel [in, out] as B (transB 0). After a Flatten of a feature map the rows are
 * permuted from tfjs's NHWC flatten order to the graph's NCHW order (layout.ts), so no Transpose node is needed.
 */
import type { LayerEmitter } from '../graph-builder.js';
import { rowsToOnnx } from '../layout.js';

export const denseEmitter: LayerEmitter<'dense'> = {
  layer: 'dense',
  emit({ layer, index, input, weight, addInitializer, addNode, outputName }) {
    const w = weight('weight');
    const [rows, units] = w.shape as [number, number];
    const kernel = input.order ? rowsToOnnx(w.data, units, input.order) : w.data;
    const output = outputName();
    addNode(
      'Gemm',
      [
        input.name,
        addInitializer(`${index}.weight`, [rows, units], kernel),
        addInitializer(`${index}.bias`, [units], weight('bias').data),
      ],
      [output],
      { transB: 0 },
    );
    return { name: output, shape: [layer.units] };
  },
};
