/**
 * Runtime stage for Node: ONNX model files (checks and `cnnx.*` metadata) and onnxruntime-node sessions, on this
 * thread or a worker thread. onnxruntime-web has its own entry, src/runtime/web/index.ts, not loaded from here.
 */
export { CUDA_HELP, EP_NAMES, openSession, type EpName } from './node.js';
export { instancesOf, type ModelSession } from './session.js';
export { openSessionInWorker } from './worker-session.js';
export { inspectOnnx, METADATA_KEYS, readModelFile, readOnnxModel, type ModelSignature } from './model-file.js';
export { onnx } from './onnx-proto.js';
export { evaluateSession } from './evaluate.js';
export {
  classifyImages,
  describeLogits,
  digitBatch,
  digitString,
  DIGIT_THRESHOLD,
  inputShapeOf,
  isDigitModel,
  readDigitString,
  toModelInput,
  type InputShape,
} from './classify.js';
