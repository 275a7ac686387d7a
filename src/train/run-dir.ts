/**
 * The run directory: the contract between training and export.
 *
 *   config.json             the training config (enough to resume or reproduce)
 *   metrics.jsonl           one JSON line per completed epoch, rewritten from the checkpoint after every one
 *   checkpoint.safetensors  latest state: weights, optimizer state, position, completed epochs' metrics
 *   best.safetensors        weights of the best epoch (by validation accuracy, or test accuracy as the notebook
 *                           chooses; see TrainConfig.selectOn): what `cnnx export` reads
 *   summary.json            final figures
 *   curves.svg              loss and accuracy per epoch
 *
 * Every file is written atomically. The checkpoint is the single source of truth: a kill at any moment leaves
 * at worst a metrics file one epoch behind it (rebuilt on resume) and temporaries (removed on start and resume).
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { link, lstat, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CnnxError, ensureDirectory, whyUnreadable, writeError, writeFileAtomic } from '../common/index.js';
import type { DistortionName } from '../data/index.js';
import type { TrainingDefaults } from '../models/index.js';
import type { BackendName } from './backends/index.js';

/**
 * Where a run chooses its best epoch: `val`, on a held-out part of the training data, so the test set is evaluated
 * once, for the chosen weights; or `test`, on the test set after every epoch, as the notebook does (the accuracy it
 * reports is then chosen on the test set).
 */
export type SelectOn = 'val' | 'test';
export const SELECT_ON: readonly SelectOn[] = ['val', 'test'];

/** The user's own data a run trains on: a folder of class folders or a CSV, and how its pictures are read. */
interface UserData {
  /** Absolute path of the folder or CSV file. */
  path: string;
  /** A separate test set (folder or CSV), when one was given. */
  testPath?: string;
  /** Channels and [height, width] the pictures are brought to: the flags', else what the data had (recorded once). */
  channels?: 1 | 3;
  size?: [number, number];
}

/** A run's settings: the model's training defaults (or the flags that replaced them) and what to train on. */
export interface TrainConfig extends TrainingDefaults {
  model: string;
  /** `mnist`, `fashion-mnist`, or the name of the user's dataset (see `data`). */
  dataset: string;
  /** The user's own data; absent for the built-in datasets. */
  data?: UserData;
  /** Class names in logit order, as the data gave them (absent in runs made before they were recorded). */
  classes?: string[];
  /** The folder of IDX files a built-in dataset was read from (`--idx-dir`, absolute); absent for its usual source. */
  idxDir?: string;
  /**
   * SHA-256 of a built-in dataset's pictures and labels, and where they came from in words: a resumed run must
   * train on the same ones (absent in runs made before they were recorded).
   */
  dataFingerprint?: string;
  dataSource?: string;
  /** Where the best epoch is chosen (absent: `test`, as runs made before this option did). */
  selectOn?: SelectOn;
  /** Fraction of the training data held out for validation (stratified, seeded by `seed`) when `selectOn` is `val`. */
  valSplit?: number;
  seed: number;
  /** Train on the first N training examples only. */
  limit?: number;
  /** Evaluate on the first N test examples only. */
  testLimit?: number;
  backend: BackendName;
  /**
   * Threads each batch is split over on a CPU backend (replicas.ts); recorded when the run starts (absent: one per
   * core), so that a resumed run splits as the run did and stays bit-identical.
   */
  workers?: number;
  /** Distortions applied to training images (absent or empty: none); see the data stage's augment.ts. */
  augment?: DistortionName[];
}

export interface EpochMetrics {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  /** Accuracy on the validation part, for runs that select on it. */
  valAccuracy?: number;
  /** Accuracy on the test set, for runs that select on it (the notebook's). */
  testAccuracy?: number;
  lr: number;
  examplesPerSec: number;
  seconds: number;
  best: boolean;
}

export const RUN_FILES = {
  config: 'config.json',
  metrics: 'metrics.jsonl',
  checkpoint: 'checkpoint.safetensors',
  best: 'best.safetensors',
  summary: 'summary.json',
  plot: 'curves.svg',
} as const;

export function runPath(dir: string, file: keyof typeof RUN_FILES): string {
  return join(dir, RUN_FILES[file]);
}

/** The members every run's config.json has had, by type: a file without them is not a cnnx run's. */
const CONFIG_MEMBERS = {
  model: 'string',
  dataset: 'string',
  backend: 'string',
  optimizer: 'string',
  schedule: 'string',
  epochs: 'number',
  batchSize: 'number',
  lr: 'number',
  seed: 'number',
} as const;

/**
 * The run's config.json.
 * @throws CnnxError BAD_RUN when it is missing, unreadable, or not a cnnx run's (a member missing or mistyped).
 */
export async function readRunConfig(dir: string): Promise<TrainConfig> {
  let config: unknown;
  try {
    config = JSON.parse(await readFile(runPath(dir, 'config'), 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Said of the folder when it is the folder that is wrong: missing, or a file.
    const folder = await stat(dir).then(
      (info) => (info.isDirectory() ? undefined : 'is a file; give the run folder (the --out of cnnx train)'),
      (failure: unknown) =>
        (failure as NodeJS.ErrnoException).code === 'ENOENT'
          ? 'does not exist (give the folder that cnnx train wrote the run to, its --out)'
          : `cannot be read (${whyUnreadable(failure)})`,
    );
    throw new CnnxError(
      folder !== undefined
        ? `${dir} ${folder}`
        : `${dir}: not a cnnx run directory (${code === 'ENOENT' ? `no ${RUN_FILES.config}` : 'unreadable config.json'})`,
      'BAD_RUN',
    );
  }
  const record = (typeof config === 'object' && config !== null && !Array.isArray(config) ? config : {}) as Record<
    string,
    unknown
  >;
  const lacking = Object.entries(CONFIG_MEMBERS)
    .filter(([name, type]) => typeof record[name] !== type)
    .map(([name]) => name);
  // Counts a hand-edited file may spoil: each a whole number of at least 1 where given.
  const counts = ['epochs', 'batchSize', 'workers', 'limit', 'testLimit'].filter((name) =>
    (CONFIG_MEMBERS as Record<string, string>)[name] !== undefined || record[name] !== undefined
      ? !(Number.isSafeInteger(record[name]) && (record[name] as number) >= 1)
      : false,
  );
  lacking.push(...counts.filter((name) => !lacking.includes(name)));
  if (lacking.length > 0) {
    throw new CnnxError(
      `${dir}: not a cnnx run directory (its config.json has no valid ${lacking.join(', ')})`,
      'BAD_RUN',
    );
  }
  return config as TrainConfig;
}

/**
 * Metrics of completed epochs, in order; [] when the file does not exist. A torn last line (a writer killed
 * mid-line) is ignored; any other unreadable line is an error (BAD_RUN).
 */
export async function readMetrics(dir: string): Promise<EpochMetrics[]> {
  const file = runPath(dir, 'metrics');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  const metrics: EpochMetrics[] = [];
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    try {
      metrics.push(JSON.parse(line) as EpochMetrics);
    } catch {
      if (index === lines.length - 1) break; // no newline after it: the last write was cut short
      throw new CnnxError(`${file}: line ${index + 1} is not JSON; the run's checkpoint has the metrics`, 'BAD_RUN');
    }
  }
  return metrics;
}

/** Replaces the metrics file with `metrics`, atomically. */
export async function writeMetrics(dir: string, metrics: EpochMetrics[]): Promise<void> {
  await writeFileAtomic(runPath(dir, 'metrics'), metrics.map((m) => `${JSON.stringify(m)}\n`).join(''));
}

/** Temporary files of atomic writes (`.<name>.tmp-<hex>`), left behind when a writer is killed. */
const TEMPORARY = /^\..+\.tmp-[0-9a-f]+$/;

/** A lock's draft (`.run.lock.<pid>-<hex>.new`), written whole before it is linked into place (lockRunDir). */
const LOCK_DRAFT = /^\.run\.lock\.(\d+)-[0-9a-f]+\.new$/;

/**
 * The lock of a run folder: the process id of the `cnnx train` that works in it and, on Linux, that process's start
 * time (so that a lock left by a process whose id has since gone to another, as every container's node is process 1,
 * is known to be stale).
 */
const LOCK_FILE = 'run.lock';

/** Process `pid`'s start time in clock ticks since boot (/proc/PID/stat, field 22); undefined off Linux. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether process `pid` exists (EPERM: it does, and is another user's). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The process holding the lock `text` ("PID START"), if it is alive: one that exists and, where the start time was
 * recorded and can be read, the same process that wrote it (not another that was given its id since).
 */
function lockHolder(text: string): number | undefined {
  const [pidText = '', started] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !processExists(pid)) return undefined;
  const now = startTimeOf(pid);
  return started !== undefined && now !== undefined && now !== started ? undefined : pid;
}

/**
 * Takes `dir`'s lock for this process; resolves to what releases it. A lock left by a process that has ended is
 * taken over. The lock appears whole (written under a name of its own, then linked into place: a link fails where a
 * file exists), so no process ever reads one half-written and takes it for stale.
 * @throws CnnxError RUN_IN_PROGRESS when a live process holds it (or has held its takeover for TAKEOVER_MS);
 *   WRITE_FAILED when the folder takes no file; BAD_RUN_DIR when what is in the lock's place is no readable file.
 */
async function lockRunDir(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, LOCK_FILE);
  const draft = join(dir, `.${LOCK_FILE}.${process.pid}-${randomBytes(4).toString('hex')}.new`);
  const content = `${process.pid} ${startTimeOf(process.pid) ?? ''}`.trim() + '\n';
  const started = performance.now();
  try {
    // A read-only or forbidden folder: the message every other write of the run gives.
    await writeFile(draft, content).catch((error: unknown) => {
      throw writeError(error, file);
    });
    for (;;) {
      try {
        await createExclusive(draft, file, content);
        let held = true;
        return async () => {
          if (held) await rm(file, { force: true });
          held = false;
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(error, file);
      }
      const text = await readLock(file, dir);
      if (text === undefined) continue; // released meanwhile
      const pid = lockHolder(text);
      if (pid !== undefined) {
        throw new CnnxError(
          `${dir}: another cnnx train (process ${pid}) is working in this folder; wait for it to end, or choose another --out ` +
            `(if no cnnx train runs there, delete ${file})`,
          'RUN_IN_PROGRESS',
        );
      }
      const taker = await removeStaleLock(file, draft, content);
      if (taker !== undefined && performance.now() - started > TAKEOVER_MS) {
        throw new CnnxError(
          `${dir}: process ${taker} has been taking over the lock of an ended run for over ${TAKEOVER_MS / 1000} s; ` +
            `if no cnnx train runs there, delete ${join(dir, TAKEOVER_FILE)}`,
          'RUN_IN_PROGRESS',
        );
      }
    }
  } finally {
    await rm(draft, { force: true });
  }
}

/**
 * The text of the lock at `path` (the run lock or the takeover lock); undefined when there is none.
 * @throws CnnxError BAD_RUN_DIR for a folder, a link or an unreadable file in its place.
 */
async function readLock(path: string, dir: string): Promise<string | undefined> {
  const unreadable = (why: string) =>
    new CnnxError(
      `${path} is no lock cnnx can read (${why}); if no cnnx train works in ${dir}, delete it`,
      'BAD_RUN_DIR',
    );
  try {
    const stats = await lstat(path);
    if (!stats.isFile()) throw unreadable(stats.isDirectory() ? 'it is a folder' : 'it is not a plain file');
    return await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof CnnxError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(whyUnreadable(error));
  }
}

/**
 * Creates `target` holding `content` (which `draft` holds), failing with EEXIST where something is there: by linking
 * `draft` into place, so that it appears whole; where the filesystem makes no hard links (FAT and exFAT, some
 * network and FUSE filesystems: EPERM on Linux, EISDIR on Windows) or the link fails otherwise, by creating it and
 * then writing it, when another process may read it empty for a moment and take it for stale.
 */
async function createExclusive(draft: string, target: string, content: string): Promise<void> {
  try {
    await link(draft, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw error;
    await writeFile(target, content, { flag: 'wx' });
  }
}

/** The lock a process holds while it takes over a stale run lock (removeStaleLock). */
const TAKEOVER_FILE = `.${LOCK_FILE}.takeover`;

/** How long a takeover, which takes milliseconds, may be seen under way before it is reported as stuck. */
const TAKEOVER_MS = 10_000;

/**
 * Removes the lock `file` if its process has ended. Several processes may find it stale at once, and one may take
 * the folder over before another removes what it found: so a stale lock is removed only by the holder of a second
 * lock beside it (`draft`, holding `content`, placed as TAKEOVER_FILE), after reading it again. While that is held,
 * the lock can be neither removed nor replaced by another process. A takeover lock whose process ended is removed.
 * Resolves to the id of another process found taking the folder over, if one was.
 */
async function removeStaleLock(file: string, draft: string, content: string): Promise<number | undefined> {
  const dir = dirname(file);
  const guard = join(dir, TAKEOVER_FILE);
  try {
    await createExclusive(draft, guard, content);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(error, file);
    const text = await readLock(guard, dir);
    const taker = text === undefined ? undefined : lockHolder(text);
    if (taker === undefined) await rm(guard, { force: true });
    else await sleep(5); // another process is taking the folder over: see who won
    return taker;
  }
  try {
    const text = await readLock(file, dir);
    if (text !== undefined && lockHolder(text) === undefined) await rm(file, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
  return undefined;
}

/**
 * Makes `dir` ready for a run, or for resuming one, locks it for this process (RUN_IN_PROGRESS while another
 * `cnnx train` works in it) and removes leftover temporaries in it. A new run gets a folder of its own: one that
 * holds a run's files is refused (RUN_EXISTS) unless `replace` removes them first. A path that is not a folder is
 * refused (BAD_RUN_DIR). Resolves to whether it created the folder, and to what releases it: the lock, and with
 * `abandon`, a folder it created (a run that could not start leaves nothing behind).
 */
export async function prepareRunDir(
  dir: string,
  options: { resume: boolean; replace?: boolean },
): Promise<{ created: boolean; release: (options?: { abandon?: boolean }) => Promise<void> }> {
  const existing = await stat(dir).catch(() => undefined);
  if (existing && !existing.isDirectory()) {
    throw new CnnxError(`${dir} is a file, not a run folder; choose another --out`, 'BAD_RUN_DIR');
  }
  if (options.resume && !existing) {
    throw new CnnxError(`${dir}: not a cnnx run directory (it does not exist)`, 'BAD_RUN');
  }
  if (!existing) await ensureDirectory(dir);
  const created = existing === undefined;
  const unlock = await lockRunDir(dir).catch(async (error: unknown) => {
    if (created) await rmdir(dir).catch(() => undefined);
    // A run resumes in its own folder: the usual "choose another folder" cannot be followed.
    if (options.resume && error instanceof CnnxError && error.code === 'WRITE_FAILED') {
      throw new CnnxError(
        `${error.message.replace(/: [^:]*$/, '')}: a run resumes in its own folder; make ${dir} writable, or copy it somewhere writable and resume the copy`,
        'WRITE_FAILED',
        { cause: error },
      );
    }
    throw error;
  });
  const release = async ({ abandon = false } = {}) => {
    await unlock();
    if (abandon && created) await rmdir(dir).catch(() => undefined);
  };
  try {
    if (!options.resume && existing) {
      const files = new Set(await readdir(dir));
      const runFiles = Object.values(RUN_FILES).filter((name) => files.has(name));
      if (runFiles.length > 0 && !options.replace) {
        throw new CnnxError(
          `${dir} already holds a run (${runFiles.join(', ')}); continue it with cnnx train --resume ${dir}, or give another --out for a new run`,
          'RUN_EXISTS',
        );
      }
      // A run's files go in a folder of their own, not among others' (`--out .` in a project, `--out /`).
      const others = [...files].filter(
        (name) => !name.startsWith('.') && name !== LOCK_FILE && !(Object.values(RUN_FILES) as string[]).includes(name),
      );
      if (others.length > 0) {
        throw new CnnxError(
          `${dir} holds other files (${others.slice(0, 3).join(', ')}${others.length > 3 ? ', ...' : ''}); a run gets a folder of its own: give --out a new or empty folder`,
          'BAD_RUN_DIR',
        );
      }
      await Promise.all(runFiles.map((name) => rm(join(dir, name), { force: true })));
    }
    // Also the lock drafts of processes that ended before they could remove them.
    const leftovers = (await readdir(dir)).filter((name) => {
      const draft = LOCK_DRAFT.exec(name);
      return TEMPORARY.test(name) || (draft !== null && !processExists(Number(draft[1])));
    });
    await Promise.all(leftovers.map((name) => rm(join(dir, name), { force: true })));
  } catch (error) {
    await release({ abandon: true });
    throw error;
  }
  return { created, release };
}
