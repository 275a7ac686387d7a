/** Parsers for CLI option values: each rejects a bad value with one line that says what was expected. */
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { CnnxError } from '../common/index.js';
import { WORKING_SIDE } from '../preprocess/index.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive integer, got "${value}".`);
  }
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`expected a non-negative integer, got "${value}".`);
  }
  return n;
}

/** A decimal number as people write one (`0.01`, `1e-3`, `.5`): not hex (`0x10`), binary, `Infinity` or blank. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * A positive decimal number that float32 holds (tfjs trains in float32: 1e-300 would be 0 there, 1e39 infinite).
 */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!DECIMAL.test(value.trim()) || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a positive number, got "${value}".`);
  }
  if (Math.fround(n) === 0 || !Number.isFinite(Math.fround(n))) {
    throw new InvalidArgumentError(
      `"${value}" is ${Math.fround(n) === 0 ? '0' : 'infinite'} in float32, in which training runs.`,
    );
  }
  return n;
}

/** A parser accepting one of `choices`. */
export function oneOf<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if ((choices as readonly string[]).includes(value)) return value as T;
    throw new InvalidArgumentError(`should be one of: ${choices.join(', ')}.`);
  };
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!DECIMAL.test(value.trim()) || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a number >= 0, got "${value}".`);
  }
  return n;
}

/** The longest delay a Node.js timer takes (2^31 - 1 ms, about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay in milliseconds, from 0 to what a timer can wait (MAX_TIMER_MS). */
export function milliseconds(value: string): number {
  const n = nonNegativeNumber(value);
  if (n > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`expected at most ${MAX_TIMER_MS} ms (about 24.8 days), got "${value}".`);
  }
  return n;
}

/** A whole, positive number of milliseconds, at most what a timer can wait (MAX_TIMER_MS). */
export function positiveMilliseconds(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_TIMER_MS) {
    throw new InvalidArgumentError(`expected at most ${MAX_TIMER_MS} ms (about 24.8 days), got "${value}".`);
  }
  return n;
}

/** A probability: a decimal number from 0 to 1. */
export function probability(value: string): number {
  const n = Number(value);
  if (!DECIMAL.test(value.trim()) || !(n >= 0 && n <= 1)) {
    throw new InvalidArgumentError(`expected a number from 0 to 1, got "${value}".`);
  }
  return n;
}

/** A TCP port, 0 to 65535 (0: the system picks a free one). */
export function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) {
    throw new InvalidArgumentError(`expected a port from 0 to 65535 (0 picks a free one), got "${value}".`);
  }
  return n;
}

/** A new run directory's default path, `runs/<name>-<yyyymmdd-hhmmss-mmm>` (UTC), so no run lands in another's. */
export function defaultRunDir(name: string): string {
  // To the millisecond: runs started together (a shell loop over learning rates) get folders of their own.
  const time = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').slice(0, 19);
  return join('runs', `${name}-${time}`);
}

/** A seed: a whole number that 32 bits hold (the random streams mix 32-bit seeds, so 2^32 would be seed 0 again). */
export function seed(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !(n <= 0xffffffff)) {
    throw new InvalidArgumentError(`expected a whole number from 0 to 4294967295 (a 32-bit seed), got "${value}".`);
  }
  return n;
}

/** Where a dataset's files come from: the options `train`, `eval` and `data info` share. */
export interface DataSourceFlags {
  dataDir?: string;
  idxDir?: string;
  offline?: boolean;
}

/** Adds `--data-dir`, `--idx-dir` and `--offline` (DataSourceFlags) to `command`. */
export function addDataSourceOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'cache directory for downloaded data (env CNNX_DATA_DIR; default ~/.cache/cnnx)')
    .option('--idx-dir <dir>', 'use your own four IDX files (raw or .gz) in this directory')
    .option('--offline', 'never download (env CNNX_OFFLINE=1)');
}

/** The user's own pictures: the options `train`, `eval` and `data info` share (UserDataOptions of src/data). */
export interface UserDataFlags {
  data?: string;
  testData?: string;
  channels?: 1 | 3;
  imageSize?: [number, number];
}

/** Largest `--image-size` side: pictures are decoded to at most WORKING_SIDE a side, so more would only stretch them. */
const MAX_IMAGE_SIDE = WORKING_SIDE;

/** `--channels`: 1 or 3. */
function channelCount(value: string): 1 | 3 {
  if (value.trim() === '1') return 1;
  if (value.trim() === '3') return 3;
  throw new InvalidArgumentError(`expected 1 (gray) or 3 (RGB), got "${value}".`);
}

/** `--image-size`: `N` (square) or `HxW`, sides 1 to MAX_IMAGE_SIDE, as [height, width]. */
function imageSize(value: string): [number, number] {
  const match = /^\s*(\d+)\s*(?:[xX×]\s*(\d+)\s*)?$/.exec(value);
  const height = Number(match?.[1]);
  const width = match?.[2] === undefined ? height : Number(match[2]);
  if (!match || ![height, width].every((side) => Number.isInteger(side) && side >= 1 && side <= MAX_IMAGE_SIDE)) {
    throw new InvalidArgumentError(
      `expected N or HxW (height x width, e.g. 28 or 32x48), sides from 1 to ${MAX_IMAGE_SIDE}, got "${value}".`,
    );
  }
  return [height, width];
}

/** Adds `--data`, `--test-data`, `--channels` and `--image-size` (UserDataFlags) to `command`. */
export function addUserDataOptions(command: Command): Command {
  return command
    .option('--data <path>', 'a folder of class folders (train/<class>/*.png ...) or a CSV (label, pixels)')
    .option(
      '--test-data <path>',
      "a separate test set for --data (a folder of class folders, or a CSV); default: the folder's test/, else 10% of the data held out",
    )
    .option(
      '--channels <n>',
      'pictures of --data as 1 (gray) or 3 (RGB); default: 3 when any is in colour',
      channelCount,
    )
    .option('--image-size <size>', 'resize pictures of --data to N or HxW; default: their own size', imageSize);
}

/**
 * Refuses the options that only apply to `--data` (for a command run without it).
 * @throws CnnxError OPTION_CONFLICT naming them
 */
export function refuseUserDataOptions(flags: UserDataFlags): void {
  const names = { testData: '--test-data', channels: '--channels', imageSize: '--image-size' } as const;
  const given = (Object.keys(names) as (keyof typeof names)[]).filter((key) => flags[key] !== undefined);
  if (given.length > 0) {
    throw new CnnxError(
      `${given.map((key) => names[key]).join(', ')} ${given.length === 1 ? 'applies' : 'apply'} to your own pictures: add --data <folder or CSV>`,
      'OPTION_CONFLICT',
    );
  }
}
