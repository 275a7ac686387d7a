/** Optimizers (tfjs's own) and learning-rate schedules, from the names a training config uses. */
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError } from '../common/index.js';
import type { OptimizerName, ScheduleName } from '../models/index.js';

export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['sgd', 'momentum', 'adam'];
export const SCHEDULE_NAMES: readonly ScheduleName[] = ['constant', 'cosine', 'one-cycle'];

export interface OptimizerSettings {
  optimizer: OptimizerName;
  lr: number;
  momentum?: number;
}

export interface Trainer {
  optimizer: tf.Optimizer;
  /** Sets the learning rate for the next step. */
  setLearningRate(lr: number): void;
}

export function createOptimizer(settings: OptimizerSettings): Trainer {
  switch (settings.optimizer) {
    case 'sgd': {
      const optimizer = tf.train.sgd(settings.lr);
      return { optimizer, setLearningRate: (lr) => optimizer.setLearningRate(lr) };
    }
    case 'momentum': {
      const optimizer = tf.train.momentum(settings.lr, settings.momentum ?? 0.9);
      return { optimizer, setLearningRate: (lr) => optimizer.setLearningRate(lr) };
    }
    case 'adam': {
      const optimizer = tf.train.adam(settings.lr);
      // AdamOptimizer reads its learningRate field at every step.
      return {
        optimizer,
        setLearningRate: (lr) => ((optimizer as unknown as { learningRate: number }).learningRate = lr),
      };
    }
    default:
      throw new CnnxError(
        `Unsupported optimizer: "${String(settings.optimizer)}". Should be one of: ${OPTIMIZER_NAMES.join(', ')}.`,
        'BAD_OPTION',
      );
  }
}

/**
 * Learning rate at `step` of `totalSteps` for a peak rate `lr`.
 * - constant: lr throughout (the notebook).
 * - cosine: cosine decay from lr to 0.
 * - one-cycle: linear warm-up from lr/25 over the first 25% of steps, then cosine decay to lr/1e4.
 */
export function learningRateAt(schedule: ScheduleName, lr: number, step: number, totalSteps: number): number {
  const t = Math.min(Math.max(step / Math.max(totalSteps, 1), 0), 1);
  switch (schedule) {
    case 'constant':
      return lr;
    case 'cosine':
      return 0.5 * lr * (1 + Math.cos(Math.PI * t));
    case 'one-cycle': {
      const warm = 0.25;
      if (t < warm) return lr / 25 + (lr - lr / 25) * (t / warm);
      const u = (t - warm) / (1 - warm);
      return lr / 1e4 + 0.5 * (lr - lr / 1e4) * (1 + Math.cos(Math.PI * u));
    }
    default:
      throw new CnnxError(
        `Unsupported schedule: "${String(schedule)}". Should be one of: ${SCHEDULE_NAMES.join(', ')}.`,
        'BAD_OPTION',
      );
  }
}
