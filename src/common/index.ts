/** Pieces every stage shares: user-facing errors, atomic writes, seeded randomness, whole buffers. */
export { CnnxError, ERROR_CODES, codeOf, isUserError, messageOf, whyUnreadable, type ErrorCode } from './errors.js';
export {
  checkDirectoryWritable,
  ensureDirectory,
  writeError,
  writeFileAtomic,
  produceFileAtomic,
} from './atomic-write.js';
export { deriveSeed, seededPermutation } from './random.js';
export { encodeSafetensors, readSafetensors, readSafetensorsMetadata, type TensorMap } from './safetensors.js';
export { ensureVulkanRuntimeDir } from './vulkan-env.js';
export { spansWholeBuffer } from './buffers.js';
export { workerEntry } from './worker-entry.js';
export { missingGpuDevice } from './gpu-devices.js';
export { COMMITTED_MODELS, PAGE_DIR } from './package-paths.js';
