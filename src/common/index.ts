/** Pieces every stage shares: user-facing errors, atomic writes, seeded randomness. */
export { CnnxError, isUserError, messageOf } from './errors.js';
export { writeFileAtomic, produceFileAtomic, temporaryPathFor } from './atomic-write.js';
export { seededRandom, deriveSeed, shuffleInPlace, seededPermutation } from './random.js';
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  type NamedTensor,
  type TensorMap,
} from './safetensors.js';
export { ensureVulkanRuntimeDir } from './vulkan-env.js';
export { COMMITTED_MODELS, PACKAGE_ROOT, PAGE_DIR } from './package-paths.js';
