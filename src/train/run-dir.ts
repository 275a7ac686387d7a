/**
 * The run directory: the contract between training and export.
 *
 *   config.json             the training config (enough to resume or reproduce)
 *   metrics.jsonl           one JSON line per completed epoch
 *   checkpoint.safetensors  latest state: weights, optimizer state, position (written atomically)
 *   best.safetensors        weights of the epoch with the best test accuracy (what `cnnx export` reads)
 *   summary.json            final figures
 *   curves.svg              loss and accuracy per epoch
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CnnxError } from '../common/index.js';
import type { DatasetName } from '../data/index.js';
import type { TrainingDefaults } from '../models/index.js';
import type { BackendName } from './backends/index.js';

/** A run's settings: the model's training defaults (or the flags that replaced them) and what to train on. */
export interface TrainConfig extends TrainingDefaults {
  model: string;
  dataset: DatasetName;
  seed: number;
  /** Train on the first N training examples only. */
  limit?: number;
  /** Evaluate on the first N test examples only. */
  testLimit?: number;
  backend: BackendName;
}

export interface EpochMetrics {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy: number;
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

export async function readRunConfig(dir: string): Promise<TrainConfig> {
  try {
    return JSON.parse(await readFile(runPath(dir, 'config'), 'utf8')) as TrainConfig;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CnnxError(
      `${dir}: not a cnnx run directory (${code === 'ENOENT' ? `no ${RUN_FILES.config}` : 'unreadable config.json'})`,
      'BAD_RUN',
    );
  }
}

/** Metrics of completed epochs, in order. */
export async function readMetrics(dir: string): Promise<EpochMetrics[]> {
  let text: string;
  try {
    text = await readFile(runPath(dir, 'metrics'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as EpochMetrics);
}

export async function appendMetrics(dir: string, metrics: EpochMetrics): Promise<void> {
  await appendFile(runPath(dir, 'metrics'), `${JSON.stringify(metrics)}\n`);
}
