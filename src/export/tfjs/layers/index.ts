/**
 * Every TensorFlow.js layer class the ONNX export supports, in one table the compiler checks against the list of
 * class names: a class added to the list does not compile until it has a converter. Layers that a batch norm
 * right after them can fold into name the weight it folds into (its output channels last).
 */
import type { Converter } from '../context.js';
import { activationLayer, eluLayer, leakyReluLayer, reluLayer, softmaxLayer } from './activations.js';
import { conv2d, depthwiseConv2d, separableConv2d } from './convolution.js';
import { dense, dropout, flattenLayer, inputLayer, reshape } from './core.js';
import { add, concatenate } from './merge.js';
import { batchNormalization } from './normalization.js';
import { zeroPadding2d } from './padding.js';
import { averagePooling2d, globalAveragePooling2d, globalMaxPooling2d, maxPooling2d } from './pooling.js';
import { rescaling } from './rescaling.js';

/** The tfjs layer classes the export supports, by their saved `class_name`. */
export const TFJS_LAYER_CLASSES = [
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'SeparableConv2D',
  'Dense',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'Flatten',
  'Reshape',
  'BatchNormalization',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'Softmax',
  'Dropout',
  'ZeroPadding2D',
  'Add',
  'Concatenate',
  'Rescaling',
] as const;

type TfjsLayerClass = (typeof TFJS_LAYER_CLASSES)[number];

export interface LayerSupport {
  convert: Converter;
  /** The weight a following batch norm folds into (output channels last), for conv and dense layers. */
  foldsBatchNormInto?: 'kernel' | 'depthwise_kernel' | 'pointwise_kernel';
}

const TFJS_LAYERS = {
  InputLayer: { convert: inputLayer },
  Conv2D: { convert: conv2d, foldsBatchNormInto: 'kernel' },
  DepthwiseConv2D: { convert: depthwiseConv2d, foldsBatchNormInto: 'depthwise_kernel' },
  SeparableConv2D: { convert: separableConv2d, foldsBatchNormInto: 'pointwise_kernel' },
  Dense: { convert: dense, foldsBatchNormInto: 'kernel' },
  MaxPooling2D: { convert: maxPooling2d },
  AveragePooling2D: { convert: averagePooling2d },
  GlobalAveragePooling2D: { convert: globalAveragePooling2d },
  GlobalMaxPooling2D: { convert: globalMaxPooling2d },
  Flatten: { convert: flattenLayer },
  Reshape: { convert: reshape },
  BatchNormalization: { convert: batchNormalization },
  Activation: { convert: activationLayer },
  ReLU: { convert: reluLayer },
  LeakyReLU: { convert: leakyReluLayer },
  ELU: { convert: eluLayer },
  Softmax: { convert: softmaxLayer },
  Dropout: { convert: dropout },
  ZeroPadding2D: { convert: zeroPadding2d },
  Add: { convert: add },
  Concatenate: { convert: concatenate },
  Rescaling: { convert: rescaling },
} satisfies { [C in TfjsLayerClass]: LayerSupport };

/** The support for `className`, or undefined for a class the export does not know. */
export function layerSupport(className: string): LayerSupport | undefined {
  return Object.hasOwn(TFJS_LAYERS, className) ? TFJS_LAYERS[className as TfjsLayerClass] : undefined;
}
