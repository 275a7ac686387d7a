/** The models cnnx knows, by the name users type, and the same models fitted to a dataset's pictures and classes. */
import { CnnxError } from '../common/index.js';
import { MAX_CLASSES } from '../data/index.js';
import { alexnet } from './alexnet.js';
import { lenet5Relu } from './lenet5-relu.js';
import { lenet5 } from './lenet5.js';
import { layerShapes } from './shapes.js';
import type { ModelSpec } from './spec.js';

export const MODELS: Readonly<Record<string, ModelSpec>> = Object.freeze({
  lenet5,
  'lenet5-relu': lenet5Relu,
  alexnet,
});

export const MODEL_NAMES = Object.keys(MODELS);

/** What a dataset asks of a model: its input as [channels, height, width] and its number of classes. */
export interface DataShape {
  input: readonly [number, number, number];
  classes: number;
}

/**
 * The model `name`, as the notebook defines it or, with `shape`, fitted to other data: the input takes the data's
 * channels and size, and the last dense layer has one unit per class (the layers between are the notebook's; the
 * first dense layer's inputs follow from the size). PyTorch users do the same by editing `in_channels` of the first
 * convolution and `out_features` of the last linear layer.
 * @throws CnnxError BAD_MODEL for an unknown name; BAD_INPUT_SIZE when the pictures are too small for the model's
 *   convolutions and pools (naming the smallest size that fits), or a shape that is not 1 or 3 channels and 2 or
 *   more classes.
 */
export function getModelSpec(name: string, shape?: DataShape): ModelSpec {
  const spec = MODELS[name];
  if (spec === undefined) {
    throw new CnnxError(`Unsupported model: "${name}". Should be one of: ${MODEL_NAMES.join(', ')}.`, 'BAD_MODEL');
  }
  if (shape === undefined) return spec;
  const [channels, height, width] = shape.input;
  if (channels !== 1 && channels !== 3) {
    throw new CnnxError(`a model input has 1 or 3 channels, got ${channels}`, 'BAD_INPUT_SIZE');
  }
  if (!(Number.isInteger(shape.classes) && shape.classes >= 2 && shape.classes <= MAX_CLASSES)) {
    throw new CnnxError(`a classifier needs 2 to ${MAX_CLASSES} classes, got ${shape.classes}`, 'BAD_INPUT_SIZE');
  }
  const last = spec.layers.findLastIndex((layer) => layer.kind === 'dense');
  const fitted: ModelSpec = {
    ...spec,
    input: [channels, height, width],
    classes: shape.classes,
    layers: spec.layers.map((layer, index) => (index === last ? { ...layer, units: shape.classes } : layer)),
  };
  if (!fits(fitted)) {
    let side = 1;
    while (!fits({ ...fitted, input: [channels, side, side] })) side++;
    throw new CnnxError(
      `${height}x${width} pictures are too small for ${name}: its convolutions and pools need at least ${side}x${side} (give a larger --image-size)`,
      'BAD_INPUT_SIZE',
    );
  }
  return fitted;
}

function fits(spec: ModelSpec): boolean {
  try {
    layerShapes(spec);
    return true;
  } catch {
    return false;
  }
}
