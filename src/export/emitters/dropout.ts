/** Dropout is the identity at inference: no node. */
import type { LayerEmitter } from '../graph-builder.js';

export const dropoutEmitter: LayerEmitter<'dropout'> = {
  layer: 'dropout',
  emit: ({ input }) => input,
};
