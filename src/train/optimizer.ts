/** Optimizers (tfjs's own) and learning-rate schedules, from the names a training config uses. */
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, type TensorMap } from '../common/index.js';
import type { OptimizerName, ScheduleName } from '../models/index.js';
import type { Network } from './network.js';

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

interface AdamState {
  beta1: number;
  beta2: number;
  epsilon: number;
  learningRate: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  incrementIterations(): void;
}

/**
 * tfjs's Adam (`tf.train.adam(lr)`: beta1 0.9, beta2 0.999, the backend's epsilon): the same operations on the same
 * values, so the same bits, with each temporary freed as soon as the next operation has consumed it. tfjs's own
 * applyGradients keeps about ten temporaries of every variable until the last variable is updated: ten extra
 * copies of the parameters at the peak, 1.9 GB for AlexNet, in every replica thread. Here the peak is a few copies
 * of the largest variable.
 */
class AdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    const self = this as unknown as AdamState;
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((v) => v.name)
      : Object.keys(variableGradients);
    const [oneMinusAccBeta1, oneMinusAccBeta2] = tf.tidy(() => [tf.sub(1, self.accBeta1), tf.sub(1, self.accBeta2)]);
    try {
      names.forEach((name, i) =>
        tf.tidy(() => {
          const value = tf.engine().registeredVariables[name]!;
          self.accumulatedFirstMoment[i] ??= {
            originalName: `${name}/m`,
            variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
          };
          self.accumulatedSecondMoment[i] ??= {
            originalName: `${name}/v`,
            variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
          };
          const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
          if (gradient == null) return;
          const firstMoment = self.accumulatedFirstMoment[i].variable;
          const secondMoment = self.accumulatedSecondMoment[i].variable;
          /** `result`, with the tensors it consumed freed at once (the peak stays a few copies of one variable). */
          const then = (result: tf.Tensor, ...consumed: tf.Tensor[]) => (tf.dispose(consumed), result);
          const [decayed1, added1] = [tf.mul(firstMoment, self.beta1), tf.mul(gradient, 1 - self.beta1)];
          const newFirstMoment = then(tf.add(decayed1, added1), decayed1, added1);
          const squared = tf.square(gradient);
          const [decayed2, added2] = [tf.mul(secondMoment, self.beta2), then(tf.mul(squared, 1 - self.beta2), squared)];
          const newSecondMoment = then(tf.add(decayed2, added2), decayed2, added2);
          const biasCorrectedFirstMoment = tf.div(newFirstMoment, oneMinusAccBeta1!);
          const biasCorrectedSecondMoment = tf.div(newSecondMoment, oneMinusAccBeta2!);
          firstMoment.assign(newFirstMoment);
          secondMoment.assign(newSecondMoment);
          tf.dispose([newFirstMoment, newSecondMoment]);
          const root = then(tf.sqrt(biasCorrectedSecondMoment), biasCorrectedSecondMoment);
          const denominator = then(tf.add(root, self.epsilon), root);
          const ratio = then(tf.div(biasCorrectedFirstMoment, denominator), biasCorrectedFirstMoment, denominator);
          const update = then(tf.mul(ratio, -self.learningRate), ratio);
          value.assign(then(tf.add(update, value), update));
        }),
      );
      tf.tidy(() => {
        self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
        self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
      });
    } finally {
      tf.dispose([oneMinusAccBeta1!, oneMinusAccBeta2!]);
    }
    self.incrementIterations();
  }
}

export function createOptimizer(settings: OptimizerSettings): Trainer {
  switch (settings.optimizer) {
    case 'sgd': {
      const optimizer = tf.train.sgd(settings.lr);
      return { optimizer, setLearningRate: (lr) => optimizer.setLearningRate(lr) };
    }
    case 'momentum': {
      const optimizer = tf.train.momentum(settings.lr, settings.momentum ?? 0.9);
      // tfjs's MomentumOptimizer.dispose() leaves its learning-rate scalar (SGD's `c`) behind.
      const dispose = optimizer.dispose.bind(optimizer);
      optimizer.dispose = () => {
        dispose();
        (optimizer as unknown as { c: tf.Tensor }).c.dispose();
      };
      return { optimizer, setLearningRate: (lr) => optimizer.setLearningRate(lr) };
    }
    case 'adam': {
      const optimizer = new AdamOptimizer(settings.lr, 0.9, 0.999);
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

/** The `net<id>/` that tfjs variable names of a network start with (network.ts). */
const VARIABLE_PREFIX = /^net\d+\//;

/**
 * Adam's running beta powers are not in tfjs's getWeights(); setWeights() recomputes them with pow(), which
 * differs from the running product in the last bits and would make a resumed run drift from an uninterrupted one.
 */
const HIDDEN_OPTIMIZER_SCALARS = ['accBeta1', 'accBeta2'] as const;
type HiddenScalars = Partial<Record<(typeof HIDDEN_OPTIMIZER_SCALARS)[number], tf.Variable>>;

/** The learning rate `optimizer` uses now (tfjs's sgd, momentum and adam keep it in this field). */
function learningRateOf(optimizer: tf.Optimizer): number {
  return (optimizer as unknown as { learningRate: number }).learningRate;
}

/**
 * The settings createOptimizer would make `optimizer` from (its kind, learning rate and momentum), so that another
 * thread can build the same optimizer.
 * @throws Error for an optimizer createOptimizer does not make.
 */
export function settingsOf(optimizer: tf.Optimizer): OptimizerSettings {
  const lr = learningRateOf(optimizer);
  switch (optimizer.getClassName()) {
    case 'SGD':
      return { optimizer: 'sgd', lr };
    case 'Momentum':
      return { optimizer: 'momentum', lr, momentum: (optimizer as unknown as { momentum: number }).momentum };
    case 'Adam':
      return { optimizer: 'adam', lr };
    default:
      throw new Error(`settingsOf: ${optimizer.getClassName()} is not an optimizer createOptimizer makes`);
  }
}

/**
 * Everything an optimizer has learnt, as plain arrays that a checkpoint stores and a thread can post: tensors
 * `optimizer/<name>` (tfjs's getWeights(), names without the network's variable prefix, so they fit any copy of
 * the network; 'iter' and scalars as shape [1]) and `optimizer-scalar/<key>` (Adam's running beta powers), and the
 * getWeights() order that restoring needs.
 */
export async function optimizerState(optimizer: tf.Optimizer): Promise<{ order: string[]; tensors: TensorMap }> {
  const tensors: TensorMap = new Map();
  const state = await optimizer.getWeights();
  for (const { name, tensor } of state) {
    tensors.set(`optimizer/${name.replace(VARIABLE_PREFIX, '')}`, {
      shape: tensor.shape.length === 0 ? [1] : tensor.shape,
      data: Float32Array.from(await tensor.data()),
    });
    // getWeights() makes a new scalar for the step count; the others are the optimizer's own variables.
    if (name === 'iter') tensor.dispose();
  }
  for (const key of HIDDEN_OPTIMIZER_SCALARS) {
    const variable = (optimizer as unknown as HiddenScalars)[key];
    if (variable)
      tensors.set(`optimizer-scalar/${key}`, { shape: [1], data: Float32Array.from(await variable.data()) });
  }
  return { order: state.map(({ name }) => name.replace(VARIABLE_PREFIX, '')), tensors };
}

/**
 * Restores what optimizerState gave (from `source`, a file or a thread, for messages) into `optimizer`, which
 * trains `network`.
 * @throws CnnxError BAD_CHECKPOINT when a tensor is missing or the state is another optimizer's.
 */
export async function restoreOptimizerState(
  network: Network,
  optimizer: tf.Optimizer,
  order: readonly string[],
  tensors: TensorMap,
  source: string,
): Promise<void> {
  const prefix = (network.trainable[0]?.name ?? '').match(VARIABLE_PREFIX)?.[0] ?? '';
  const weights = order.map((name) => {
    const saved = tensors.get(`optimizer/${name}`);
    if (saved === undefined) throw new CnnxError(`${source}: missing optimizer state ${name}`, 'BAD_CHECKPOINT');
    const isScalar = name === 'iter';
    return { name: isScalar ? name : `${prefix}${name}`, tensor: tf.tensor(saved.data, isScalar ? [] : saved.shape) };
  });
  if (weights.length > 0) {
    try {
      await optimizer.setWeights(weights);
    } catch (error) {
      throw new CnnxError(
        `${source}: the optimizer state does not fit this run's optimizer (${(error as Error).message})`,
        'BAD_CHECKPOINT',
      );
    } finally {
      // setWeights() makes variables that share these tensors' data (or reads them, for the step count).
      tf.dispose(weights.map(({ tensor }) => tensor));
    }
  }
  for (const key of HIDDEN_OPTIMIZER_SCALARS) {
    const saved = tensors.get(`optimizer-scalar/${key}`);
    const variable = (optimizer as unknown as HiddenScalars)[key];
    if (saved && variable) {
      const value = tf.scalar(saved.data[0]!);
      variable.assign(value);
      value.dispose();
    }
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
