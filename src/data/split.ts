/** A dataset split in memory, as the IDX files store it, and helpers that describe it. */

/** `pixels` is [count, rows, cols] row-major bytes (ink bright); `labels` holds class indices. */
export interface Split {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
  labels: Uint8Array;
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
  const size = split.rows * split.cols;
  return {
    ...split,
    count: limit,
    pixels: split.pixels.subarray(0, limit * size),
    labels: split.labels.subarray(0, limit),
  };
}
