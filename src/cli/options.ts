/** Parsers for CLI option values: each rejects a bad value with one line that says what was expected. */
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';

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

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a positive number, got "${value}".`);
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
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a number >= 0, got "${value}".`);
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

/** A new run directory's default path, `runs/<name>-<yyyymmdd-hhmmss>` (UTC), so no run lands in another's. */
export function defaultRunDir(name: string): string {
  const time = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', `${name}-${time}`);
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
