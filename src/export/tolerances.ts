/**
 * Parity tolerances on logits over a parity set of real test images, in one table for the exporter's check, the
 * parity suite and the browser tests.
 *
 * A pair of paths agrees when every logit of an image satisfies |a - b| <= atol + rtol * max_c |reference_c|
 * (the scale of that image's logits) and top-1 agrees on every image. `atol` is the figure the project states;
 * `rtol` exists because float32 cannot promise an absolute 1e-5 when logits are large: at |logit| = 39 one unit
 * in the last place is 3.8e-6, and two correct float32 implementations that sum in different orders (XNNPACK,
 * MLAS) differ by a few of them, also on small logits that are sums of large cancelling terms. rtol = 1e-6 is
 * about 8 units in the last place of the largest logit.
 */
import { MODELS } from '../models/index.js';

export type PathPrecision = 'fp32-cpu' | 'fp32-converted' | 'webgpu';

export interface Tolerance {
  atol: number;
  rtol: number;
}

const PARITY_TOLERANCE: Readonly<Record<PathPrecision, Tolerance>> = Object.freeze({
  /** tfjs (cpu, wasm), ORT-node CPU, ORT-web WASM; a model spec may loosen atol (`parity.fp32Atol`) */
  'fp32-cpu': { atol: 1e-5, rtol: 1e-6 },
  /**
   * A TensorFlow.js model converted to ONNX, checked on seeded random inputs: any architecture, and batch norm folded
   * into the layer before it, which reorders float32 work where the statistics amplify it (a small variance scales
   * the folded weights up, and the sums cancel more). rtol 1e-5 is ~80 units in the last place of the largest
   * output; a wrong layout or weight order moves outputs by amounts of their own order, far beyond it.
   */
  'fp32-converted': { atol: 1e-5, rtol: 1e-5 },
  /** ORT WebGPU EP, tfjs webgpu, browser WebGPU: not bit-exact */
  webgpu: { atol: 1e-3, rtol: 1e-5 },
});

/** The tolerance of `path` for the model named `model` (its spec may loosen the FP32 CPU atol). */
export function toleranceFor(path: PathPrecision, model: string): Tolerance {
  const row = PARITY_TOLERANCE[path];
  const atol = path === 'fp32-cpu' ? MODELS[model]?.parity?.fp32Atol : undefined;
  return atol === undefined ? row : { ...row, atol };
}

export function describeTolerance({ atol, rtol }: Tolerance): string {
  return `atol ${atol} + rtol ${rtol}`;
}

export interface ParityReport {
  count: number;
  maxAbsDiff: number;
  /** Largest |reference logit|. */
  maxAbsLogit: number;
  top1Agreement: number;
  /** max over logits of |a - b| / (atol + rtol * max |reference logit of the image|): 1 or less is within tolerance. */
  worstRatio: number;
  withinTolerance: boolean;
}

/** Compares two [N, classes] logit arrays; `expected` is the reference. */
export function compareLogits(
  expected: Float32Array,
  actual: Float32Array,
  classes: number,
  tolerance: Tolerance = PARITY_TOLERANCE['fp32-cpu'],
): ParityReport {
  if (expected.length !== actual.length) {
    throw new RangeError(`logits differ in size: ${expected.length} vs ${actual.length}`);
  }
  const count = expected.length / classes;
  let maxAbsDiff = 0;
  let maxAbsLogit = 0;
  let worstRatio = 0;
  let agree = 0;
  for (let n = 0; n < count; n++) {
    let bestE = 0;
    let bestA = 0;
    let scale = 0;
    for (let c = 0; c < classes; c++) scale = Math.max(scale, Math.abs(expected[n * classes + c]!));
    maxAbsLogit = Math.max(maxAbsLogit, scale);
    const allowed = tolerance.atol + tolerance.rtol * scale;
    for (let c = 0; c < classes; c++) {
      const i = n * classes + c;
      const diff = Math.abs(expected[i]! - actual[i]!);
      maxAbsDiff = Math.max(maxAbsDiff, diff);
      worstRatio = Math.max(worstRatio, Number.isNaN(diff) ? Infinity : diff / allowed);
      if (expected[i]! > expected[n * classes + bestE]!) bestE = c;
      if (actual[i]! > actual[n * classes + bestA]!) bestA = c;
    }
    if (bestE === bestA) agree++;
  }
  const top1Agreement = agree / count;
  return {
    count,
    maxAbsDiff,
    maxAbsLogit,
    top1Agreement,
    worstRatio,
    withinTolerance: worstRatio <= 1 && top1Agreement === 1,
  };
}
