/** Export stage: trained weights -> ONNX (verified against tfjs), model checks, Triton repositories. */
export {
  buildOnnxModel,
  checkOpset,
  DEFAULT_OPSET,
  irVersionFor,
  MAX_OPSET,
  MIN_OPSET,
  weightsSha256,
} from './build-model.js';
export { defaultEmitters, EmitterRegistry } from './emitters/index.js';
export { exportRun, type ExportOptions, type ExportResult } from './export-run.js';
export {
  DEFAULT_MAX_MODEL_BYTES,
  inspectOnnx,
  ModelCheckError,
  readOnnxModel,
  type ModelSignature,
} from './inspect-model.js';
export { paritySet, tfjsLogits } from './parity.js';
export {
  compareLogits,
  describeTolerance,
  PARITY_TOLERANCE,
  toleranceFor,
  type ParityReport,
  type PathPrecision,
  type Tolerance,
} from './tolerances.js';
export { tritonConfig, writeTritonRepository } from './triton.js';
export { weightsFromOnnx } from './read-weights.js';
