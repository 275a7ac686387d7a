/** BatchNorm -> BatchNormalization in inference form (running statistics), over channels or features. */
import type { LayerEmitter } from '../graph-builder.js';

export const batchNormEmitter: LayerEmitter<'batch-norm'> = {
  layer: 'batch-norm',
  emit({ layer, index, input, weight, addInitializer, addNode, outputName }) {
    const features = input.shape[0]!;
    const output = outputName();
    const param = (suffix: string) => addInitializer(`${index}.${suffix}`, [features], weight(suffix).data);
    addNode(
      'BatchNormalization',
      [input.name, param('weight'), param('bias'), param('running_mean'), param('running_var')],
      [output],
      { epsilon: layer.epsilon ?? 1e-5 },
    );
    return { name: output, shape: input.shape, flattenedFrom: input.flattenedFrom };
  },
};
