/** The models cnnx knows, by the name users type. */
import { CnnxError } from '../common/index.js';
import { alexnet } from './alexnet.js';
import { lenet5Relu } from './lenet5-relu.js';
import { lenet5 } from './lenet5.js';
import type { ModelSpec } from './spec.js';

export const MODELS: Readonly<Record<string, ModelSpec>> = Object.freeze({
  lenet5,
  'lenet5-relu': lenet5Relu,
  alexnet,
});

export const MODEL_NAMES = Object.keys(MODELS);

export function getModelSpec(name: string): ModelSpec {
  const spec = MODELS[name];
  if (spec === undefined) {
    throw new CnnxError(`Unsupported model: "${name}". Should be one of: ${MODEL_NAMES.join(', ')}.`, 'BAD_MODEL');
  }
  return spec;
}
