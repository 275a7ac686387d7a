/**
 * Parity tolerances on logits over a parity set of real test images (DESIGN.md), in one table for the
 * exporter's check, the parity suite and the browser tests.
 */
export type PathPrecision = 'fp32-cpu' | 'webgpu';

export const PARITY_TOLERANCE: Readonly<Record<PathPrecision, { default: number; alexnet: number }>> = Object.freeze({
  /** tfjs (cpu, wasm), ORT-node CPU, ORT-web WASM */
  'fp32-cpu': { default: 1e-5, alexnet: 1e-4 },
  /** ORT WebGPU EP, tfjs webgpu, browser WebGPU: not bit-exact */
  webgpu: { default: 1e-3, alexnet: 1e-3 },
});

export function toleranceFor(path: PathPrecision, model: string): number {
  const row = PARITY_TOLERANCE[path];
  return model === 'alexnet' ? row.alexnet : row.default;
}

export interface ParityReport {
  count: number;
  maxAbsDiff: number;
  top1Agreement: number;
}

/** Compares two [N, classes] logit arrays. */
export function compareLogits(expected: Float32Array, actual: Float32Array, classes: number): ParityReport {
  if (expected.length !== actual.length) {
    throw new RangeError(`logits differ in size: ${expected.length} vs ${actual.length}`);
  }
  const count = expected.length / classes;
  let maxAbsDiff = 0;
  let agree = 0;
  for (let n = 0; n < count; n++) {
    let bestE = 0;
    let bestA = 0;
    for (let c = 0; c < classes; c++) {
      const i = n * classes + c;
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(expected[i]! - actual[i]!));
      if (expected[i]! > expected[n * classes + bestE]!) bestE = c;
      if (actual[i]! > actual[n * classes + bestA]!) bestA = c;
    }
    if (bestE === bestA) agree++;
  }
  return { count, maxAbsDiff, top1Agreement: agree / count };
}
