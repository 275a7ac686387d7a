/**
 * Training callbacks, the way tfjs-layers drives a CallbackList: the loop only trains and evaluates, and calls
 * the list at the start and end of training, of each epoch and of each batch. What a long run needs around the
 * loop (checkpoints, best weights, metrics file, curves, summary, loss guards, progress, Ctrl-C) is each one
 * callback, run in the order of the list.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/index.js';
import type { ModelSpec } from '../models/index.js';
import type { BackendInfo } from './backends/index.js';
import type { Position } from './checkpoint.js';
import type { Network } from './network.js';
import type { EpochMetrics, SelectOn, TrainConfig } from './run-dir.js';

/** What the loop and its callbacks share. Callbacks read it; the loop alone advances `position` and `history`. */
export interface TrainingState {
  readonly config: TrainConfig;
  readonly spec: ModelSpec;
  readonly runDir: string;
  readonly backend: BackendInfo;
  readonly dataset: Pick<Dataset, 'name' | 'source'>;
  readonly network: Network;
  readonly optimizer: tf.Optimizer;
  readonly batchesPerEpoch: number;
  /** Threads each batch is split over (1: this thread). */
  readonly workers: number;
  /** Where the run stands; after each batch and each epoch it describes what is done. */
  position: Position;
  /** Metrics of the `position.epoch` completed epochs, in order. */
  history: EpochMetrics[];
  /** Set by a callback to stop after the current batch or evaluation batch (tfjs's `model.stopTraining`). */
  stopTraining: boolean;
  /** Why training stopped early, in words; a signal name (`SIGINT`, `SIGTERM`) when a signal stopped it. */
  stopReason?: string;
  /** What the best epoch is chosen on (see TrainConfig.selectOn). */
  readonly selectOn: SelectOn;
  /** The failure that stopped training early (a training worker's); the checkpoint was saved as for a signal. */
  failure?: Error;
  /** Test accuracy of the chosen weights, evaluated once after the last epoch when they were chosen on validation. */
  finalTest?: { accuracy: number; epoch: number };
}

/** One optimizer step, as `onBatchEnd` sees it. `epoch` and `batch` count from 1. */
export interface BatchLogs {
  epoch: number;
  batch: number;
  /** Mean loss of this batch. */
  loss: number;
  /** Mean loss over the epoch's batches so far. */
  epochLoss: number;
  examplesPerSec: number;
  lr: number;
}

/** A hook into the training loop; every method is optional and may be async. Throwing stops training. */
export interface TrainingCallback {
  onTrainBegin?(state: TrainingState): Promise<void> | void;
  /** `epoch` counts from 1; `startBatch` batches of it are already done (a resumed run). */
  onEpochBegin?(state: TrainingState, epoch: number, startBatch: number): Promise<void> | void;
  onBatchEnd?(state: TrainingState, logs: BatchLogs): Promise<void> | void;
  /**
   * Within an epoch, when the run's checkpoint interval (`TrainOptions.checkpointEvery`) has passed since the last
   * checkpoint: no step is in flight, and `state.position` counts exactly the steps the network has taken.
   */
  onSaveDue?(state: TrainingState): Promise<void> | void;
  /** `metrics` is already in `state.history`, and `state.position` is at the start of the next epoch. */
  onEpochEnd?(state: TrainingState, metrics: EpochMetrics): Promise<void> | void;
  /** After the last epoch, or after a stop (`state.stopTraining`); not after an error. */
  onTrainEnd?(state: TrainingState): Promise<void> | void;
}

type Hook = keyof TrainingCallback;
type HookArgs<K extends Hook> = Parameters<NonNullable<TrainingCallback[K]>>;

/** Callbacks called in order, each awaited before the next. */
export class CallbackList {
  constructor(private readonly callbacks: readonly TrainingCallback[]) {}

  async call<K extends Hook>(hook: K, ...args: HookArgs<K>): Promise<void> {
    for (const callback of this.callbacks) {
      const method = callback[hook] as ((...a: HookArgs<K>) => Promise<void> | void) | undefined;
      await method?.apply(callback, args);
    }
  }
}
