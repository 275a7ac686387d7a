/**
 * Export stage: trained weights -> ONNX (verified against tfjs), TensorFlow.js Layers models -> ONNX, Triton
 * repositories, the parity tolerance table, and reading a cnnx model's weights back into tfjs layout. Loading and
 * checking ONNX files is the runtime stage's.
 */
export { buildOnnxModel, checkOpset, DEFAULT_OPSET, irVersionFor, MAX_OPSET, MIN_OPSET } from './build-model.js';
export { defaultEmitters, EmitterRegistry } from './emitters/index.js';
export { exportRun } from './export-run.js';
export { exportTfjsModel } from './tfjs/export-tfjs.js';
export { TFJS_LAYER_CLASSES } from './tfjs/layers/index.js';
export { paritySet, tfjsLogits } from './parity.js';
export { compareLogits, describeTolerance, toleranceFor, type PathPrecision } from './tolerances.js';
export { weightsFromOnnx } from './read-weights.js';
