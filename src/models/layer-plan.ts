/**
 * The one plan of how a spec's layers run: which batch norms fold into the conv or dense layer before them, and
 * which activations fuse into it. The tfjs network (training and inference) and the ONNX export both walk it, so
 * they fold and fuse the same layers. A batch norm folds only at inference, with one float32 formula that both
 * sides use, which keeps their logits within the parity tolerance:
 *   s = gamma / sqrt(running_var + eps);  W' = W * s (per output channel);  b' = (b - running_mean) * s + beta
 */
import type { LayerKind, LayerOf, LayerSpec, ModelSpec } from './spec.js';

/** Activations a conv or dense layer can apply itself (tfjs's fused kernels; a node of its own in ONNX). */
type FusedActivation = LayerOf<'relu' | 'sigmoid'>;

/** What each layer kind takes into itself from the layers after it. */
const FUSION = {
  conv2d: { foldsBatchNorm: true, fusesActivation: true, isActivation: false },
  dense: { foldsBatchNorm: true, fusesActivation: true, isActivation: false },
  relu: { foldsBatchNorm: false, fusesActivation: false, isActivation: true },
  sigmoid: { foldsBatchNorm: false, fusesActivation: false, isActivation: true },
  'max-pool': { foldsBatchNorm: false, fusesActivation: false, isActivation: false },
  flatten: { foldsBatchNorm: false, fusesActivation: false, isActivation: false },
  dropout: { foldsBatchNorm: false, fusesActivation: false, isActivation: false },
  'batch-norm': { foldsBatchNorm: false, fusesActivation: false, isActivation: false },
} as const satisfies {
  [K in LayerKind]: { foldsBatchNorm: boolean; fusesActivation: boolean; isActivation: K extends FusedActivation['kind'] ? true : false };
};

/** One step of the plan: a layer of the spec, with what it folds and fuses. */
export interface PlanStep {
  /** Index of the layer in the spec. */
  index: number;
  layer: LayerSpec;
  /** The batch norm right after this conv or dense layer, folded into its weights (inference only). */
  batchNorm?: { index: number; layer: LayerOf<'batch-norm'> };
  /** The activation right after this layer (after its folded batch norm), applied by it. */
  activation?: { index: number; layer: FusedActivation };
}

function isActivation(layer: LayerSpec | undefined): layer is FusedActivation {
  return layer !== undefined && FUSION[layer.kind].isActivation;
}

/**
 * The steps of `spec`, in order. With `foldBatchNorm` (inference), a batch norm right after a conv or dense layer
 * folds into it; either way, an activation right after a conv or dense layer (or after its folded batch norm)
 * fuses into it.
 */
export function layerPlan(spec: ModelSpec, { foldBatchNorm }: { foldBatchNorm: boolean }): PlanStep[] {
  const steps: PlanStep[] = [];
  const layers = spec.layers;
  for (let index = 0; index < layers.length; index++) {
    const layer = layers[index]!;
    const step: PlanStep = { index, layer };
    const { foldsBatchNorm, fusesActivation } = FUSION[layer.kind];
    let next = index + 1;
    const following = layers[next];
    if (foldBatchNorm && foldsBatchNorm && following?.kind === 'batch-norm') {
      step.batchNorm = { index: next, layer: following };
      next++;
    }
    const activation = layers[next];
    if (fusesActivation && isActivation(activation)) {
      step.activation = { index: next, layer: activation };
      next++;
    }
    steps.push(step);
    index = next - 1;
  }
  return steps;
}

export interface InferenceSpec {
  spec: ModelSpec;
  /** For each layer of `spec`, the index of the layer it came from in the training spec. */
  sourceIndex: number[];
  /** For each layer of `spec`, the index of the batch norm folded into it, if any. */
  foldedBatchNorm: (number | undefined)[];
}

/**
 * The spec as it runs at inference, from the plan: folded batch norms removed, fused activations kept as layers
 * of their own (as the ONNX graph has them). Layer `i` of the result is what the ONNX export names `i.*`.
 */
export function inferenceSpec(spec: ModelSpec): InferenceSpec {
  const layers: LayerSpec[] = [];
  const sourceIndex: number[] = [];
  const foldedBatchNorm: (number | undefined)[] = [];
  for (const step of layerPlan(spec, { foldBatchNorm: true })) {
    layers.push(step.layer);
    sourceIndex.push(step.index);
    foldedBatchNorm.push(step.batchNorm?.index);
    if (step.activation) {
      layers.push(step.activation.layer);
      sourceIndex.push(step.activation.index);
      foldedBatchNorm.push(undefined);
    }
  }
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
