/** A dataset split in memory, as the IDX files store it, and helpers that describe and divide it. */
import { deriveSeed, seededPermutation } from '../common/index.js';

/**
 * `pixels` is [count, rows, cols, channels] row-major bytes (channels interleaved; IDX data has 1 channel, ink
 * bright); `labels` holds class indices.
 */
export interface Split {
  count: number;
  rows: number;
  cols: number;
  /** 1 (gray) or 3 (RGB). */
  channels: number;
  pixels: Uint8Array;
  labels: Uint8Array;
}

/** The most classes a dataset (and a model) has: labels are bytes, class indices 0 to MAX_CLASSES - 1. */
export const MAX_CLASSES = 255;

/** Bytes one example takes in `split.pixels`. */
export function exampleSize(split: Pick<Split, 'rows' | 'cols' | 'channels'>): number {
  return split.rows * split.cols * split.channels;
}

/** Number of examples of each class, indexed by class. */
export function classCounts(labels: Uint8Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const label of labels) counts[label] = (counts[label] ?? 0) + 1;
  return counts;
}

/** The first `limit` examples of a split (no copy). */
export function limitSplit(split: Split, limit: number | undefined): Split {
  if (limit === undefined || limit >= split.count) return split;
  const size = exampleSize(split);
  return {
    ...split,
    count: limit,
    pixels: split.pixels.subarray(0, limit * size),
    labels: split.labels.subarray(0, limit),
  };
}

/**
 * Puts the examples of `split` in a seeded order, in place (one example of extra memory): afterwards example i is the
 * one that was at `seededPermutation(count, seed)[i]`.
 */
export function shuffleExamples(split: Split, seed: number): void {
  const order = seededPermutation(split.count, seed);
  const size = exampleSize(split);
  const { pixels, labels } = split;
  const held = new Uint8Array(size);
  const placed = new Uint8Array(split.count);
  for (let start = 0; start < split.count; start++) {
    if (placed[start]) continue;
    held.set(pixels.subarray(start * size, (start + 1) * size));
    const heldLabel = labels[start]!;
    let slot = start;
    for (;;) {
      placed[slot] = 1;
      const from = order[slot]!;
      if (from === start) {
        pixels.set(held, slot * size);
        labels[slot] = heldLabel;
        break;
      }
      pixels.copyWithin(slot * size, from * size, (from + 1) * size);
      labels[slot] = labels[from]!;
      slot = from;
    }
  }
}

/** The examples of `split` at `indices`, in that order (a copy). */
export function selectExamples(split: Split, indices: ArrayLike<number>): Split {
  const size = exampleSize(split);
  const pixels = new Uint8Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    pixels.set(split.pixels.subarray(index * size, (index + 1) * size), i * size);
    labels[i] = split.labels[index]!;
  }
  return { ...split, count: indices.length, pixels, labels };
}

/**
 * Divides `split` into `kept` and `held` (a held-out validation or test part), stratified: from each class, the first
 * round(fraction x its count) examples of a seeded permutation are held, so every class keeps its proportion (a class
 * with 2 or more examples keeps at least one on each side). Both parts keep the split's order, so the same seed always
 * gives the same parts.
 * @throws RangeError when `fraction` is not in (0, 1)
 */
export function stratifiedSplit(split: Split, fraction: number, seed: number): { kept: Split; held: Split } {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`fraction must be between 0 and 1, got ${fraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < split.count; i++) {
    const label = split.labels[i]!;
    let members = byClass.get(label);
    if (members === undefined) byClass.set(label, (members = []));
    members.push(i);
  }
  const held = new Uint8Array(split.count);
  for (const [label, members] of byClass) {
    let take = Math.round(members.length * fraction);
    if (members.length >= 2) take = Math.min(Math.max(take, 1), members.length - 1);
    const order = seededPermutation(members.length, deriveSeed(seed, label));
    for (let r = 0; r < take; r++) held[members[order[r]!]!] = 1;
  }
  const keptIndices: number[] = [];
  const heldIndices: number[] = [];
  for (let i = 0; i < split.count; i++) (held[i] ? heldIndices : keptIndices).push(i);
  return { kept: selectExamples(split, keptIndices), held: selectExamples(split, heldIndices) };
}
