/**
 * Mini-batches for training and evaluation: float32 in [0,1], NHWC ([batch, height, width, channels]) for tfjs.
 * The order of an epoch is a seeded permutation of (seed, epoch) alone, so every example appears exactly once
 * per epoch and a resumed run sees the same batches as an uninterrupted one. The last batch may be partial.
 */
import { deriveSeed, seededPermutation } from '../common/index.js';
import { bilinearResizer } from './resize.js';
import { exampleSize, type Split } from './split.js';

export interface Batch {
  /** [size, height, width, channels] */
  xs: Float32Array;
  /** [size] class indices */
  labels: Int32Array;
  size: number;
  /** Which examples of the split this batch holds. */
  indices: Uint32Array;
}

export interface BatchOptions {
  batchSize: number;
  /** Shuffle with (seed, epoch); default false (split order, for evaluation). */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  /** Resize each image to `resize x resize` on the fly (AlexNet's 224 from 28x28 digits); 1-channel splits only. */
  resize?: number;
}

/** Number of batches an epoch of `count` examples has. */
export function batchCount(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}

/** The order of examples in one epoch. */
function epochOrder(count: number, options: Pick<BatchOptions, 'shuffle' | 'seed' | 'epoch'>): Uint32Array {
  if (!options.shuffle) return Uint32Array.from({ length: count }, (_, i) => i);
  return seededPermutation(count, deriveSeed(options.seed ?? 0, options.epoch ?? 0));
}

/** Yields the batches of one epoch over `split`. */
export function* iterateBatches(split: Split, options: BatchOptions): Generator<Batch> {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const order = epochOrder(split.count, options);
  const sourceSize = exampleSize(split);
  const side = options.resize;
  if (side !== undefined && split.channels !== 1) {
    throw new RangeError(`on-the-fly resizing is for 1-channel images; this split has ${split.channels} channels`);
  }
  const resize = side === undefined ? undefined : bilinearResizer(split.rows, split.cols, side);
  const outSize = side === undefined ? sourceSize : side * side;
  const { pixels } = split;
  for (let start = 0; start < split.count; start += batchSize) {
    const indices = order.subarray(start, Math.min(start + batchSize, split.count));
    const size = indices.length;
    const xs = new Float32Array(size * outSize);
    const labels = new Int32Array(size);
    for (let b = 0; b < size; b++) {
      const index = indices[b]!;
      labels[b] = split.labels[index]!;
      if (resize) resize(pixels, index * sourceSize, xs, b * outSize);
      else scaleBytes(pixels, index * sourceSize, sourceSize, xs, b * outSize);
    }
    yield { xs, labels, size, indices };
  }
}

/** Each byte value over 255, as float32: the same floats as `byte / 255` stored in a Float32Array. */
const UNIT_SCALE = Float32Array.from({ length: 256 }, (_, value) => value / 255);

/** Writes bytes [from, from + count) of `source` to `out` from `at`, each over 255 (through UNIT_SCALE). */
function scaleBytes(source: Uint8Array, from: number, count: number, out: Float32Array, at: number): void {
  for (let p = 0; p < count; p++) out[at + p] = UNIT_SCALE[source[from + p]!]!;
}
