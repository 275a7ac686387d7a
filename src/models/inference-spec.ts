/**
 * The spec as it runs at inference: each batch norm that directly follows a conv or dense layer is folded into
 * that layer's weights, so the layer disappears. Both the tfjs network (in inference mode) and the ONNX export
 * fold with the same float32 formula, which keeps their logits within the parity tolerance:
 *   s = gamma / sqrt(running_var + eps);  W' = W * s (per output channel);  b' = (b - running_mean) * s + beta
 */
import type { LayerSpec, ModelSpec } from './spec.js';

export interface InferenceSpec {
  spec: ModelSpec;
  /** For each layer of `spec`, the index of the layer it came from in the training spec. */
  sourceIndex: number[];
  /** For each layer of `spec`, the index of the batch norm folded into it, if any. */
  foldedBatchNorm: (number | undefined)[];
}

function foldsInto(previous: LayerSpec | undefined): boolean {
  return previous?.kind === 'conv2d' || previous?.kind === 'dense';
}

export function inferenceSpec(spec: ModelSpec): InferenceSpec {
  const layers: LayerSpec[] = [];
  const sourceIndex: number[] = [];
  const foldedBatchNorm: (number | undefined)[] = [];
  spec.layers.forEach((layer, index) => {
    if (layer.kind === 'batch-norm' && foldsInto(spec.layers[index - 1])) {
      foldedBatchNorm[foldedBatchNorm.length - 1] = index;
      return;
    }
    layers.push(layer);
    sourceIndex.push(index);
    foldedBatchNorm.push(undefined);
  });
  return { spec: { ...spec, layers }, sourceIndex, foldedBatchNorm };
}

/**
 * Folds batch-norm statistics into a kernel (tfjs layout: output channel last) and bias, in float32 with the
 * formula above; each step is rounded to float32 exactly as tfjs's element-wise kernels round it.
 */
export function foldBatchNormValues(
  kernel: Float32Array,
  bias: Float32Array,
  bn: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array; epsilon: number },
): { kernel: Float32Array; bias: Float32Array } {
  const f = Math.fround;
  const units = bias.length;
  const scale = new Float32Array(units);
  for (let o = 0; o < units; o++) scale[o] = f(bn.gamma[o]! / f(Math.sqrt(f(bn.variance[o]! + f(bn.epsilon)))));
  const folded = new Float32Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) folded[i] = f(kernel[i]! * scale[i % units]!);
  const foldedBias = new Float32Array(units);
  for (let o = 0; o < units; o++) foldedBias[o] = f(f(f(bias[o]! - bn.mean[o]!) * scale[o]!) + bn.beta[o]!);
  return { kernel: folded, bias: foldedBias };
}
