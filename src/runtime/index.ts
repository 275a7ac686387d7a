/** Runtime stage: ONNX Runtime sessions (onnxruntime-node here; onnxruntime-web lives in its own adapter). */
export {
  CUDA_HELP,
  EP_NAMES,
  EXECUTION_PROVIDERS,
  openSession,
  parseEpName,
  type EpName,
  type Logits,
  type ModelSession,
  type SessionOptions,
} from './node.js';
export { openSessionInWorker } from './worker-session.js';
export { evaluateSession, type OnnxEvaluation } from './evaluate.js';
export { classifyImages, describeLogits, softmax, toModelSide, type Classification } from './classify.js';
export { openWebSession, type WebSession } from './web.js';
