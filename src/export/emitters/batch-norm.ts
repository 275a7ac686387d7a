/**
 * BatchNorm -> BatchNormalization in inference form (running statistics), over channels or features. Only a
 * batch norm the layer plan does not fold into a conv or dense layer gets here. On flat features in NCHW order
 * the per-feature statistics are put in that order too.
 */
import type { LayerEmitter } from '../graph-builder.js';
import { toOnnxOrder } from '../layout.js';

export const batchNormEmitter: LayerEmitter<'batch-norm'> = {
  layer: 'batch-norm',
  emit({ layer, index, input, weight, addInitializer, addNode, outputName }) {
    const features = input.shape[0]!;
    const output = outputName();
    const param = (suffix: string) => {
      const values = weight(suffix).data;
      return addInitializer(`${index}.${suffix}`, [features], input.order ? toOnnxOrder(values, input.order) : values);
    };
    addNode(
      'BatchNormalization',
      [input.name, param('weight'), param('bias'), param('running_mean'), param('running_var')],
      [output],
      { epsilon: layer.epsilon ?? 1e-5 },
    );
    return { ...input, name: output };
  },
};
