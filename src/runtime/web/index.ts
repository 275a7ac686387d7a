/**
 * The runtime stage for browsers: onnxruntime-web sessions behind the same `ModelSession` contract as the Node
 * entry (src/runtime/index.ts), which never loads onnxruntime-web. Imports nothing from Node.
 */
export type { ModelSession } from '../session.js';
export { openWebSession, type WebSession } from './web-session.js';
export {
  describeLogits,
  DIGIT_THRESHOLD,
  isDigitModel,
  prepareForModel,
  readDigitString,
  type Classification,
  type InputShape,
} from '../classify.js';
