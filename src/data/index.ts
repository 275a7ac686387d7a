/**
 * Data stage: MNIST and Fashion-MNIST from their IDX files, validated and checksummed, and the mini-batches
 * that feed training, distorted or not.
 */
export {
  CLASS_NAMES,
  DATASET_NAMES,
  loadDataset,
  parseDatasetName,
  type Dataset,
  type DatasetName,
} from './datasets.js';
export { IdxFormatError, readIdxImages, readIdxLabels } from './idx-reader.js';
export { ChecksumError, md5Of } from './checksums.js';
export { loadIdxPair } from './idx-pair.js';
export { classCounts, limitSplit, MAX_CLASSES, selectExamples, stratifiedSplit, type Split } from './split.js';
export { batchCount, iterateBatches } from './batches.js';
export {
  createAugmenter,
  DEFAULT_DISTORTIONS,
  describeDistortions,
  DISTORTION_NAMES,
  iterateAugmentedBatches,
  parseDistortions,
  type Augmenter,
  type DistortionName,
} from './augment.js';
export { bilinearResizer } from './resize.js';
export { decodeImage } from './decode-image.js';
export { byCodePoint, isPicture } from './image-folder.js';
export { loadUserDataset, type UserDataOptions, type UserDataset } from './user-data.js';
