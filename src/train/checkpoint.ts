/**
 * Checkpoints and best weights as safetensors files, always written atomically (the previous file stays in
 * place until the new one is complete). A checkpoint holds the weights, the optimizer's state, where in the
 * data the run stands and the metrics of the completed epochs, so that a resumed run continues exactly where the
 * saved one stopped, and the run's metrics file can always be rebuilt to agree with it.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  CnnxError,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsMetadata,
  writeFileAtomic,
  type TensorMap,
} from '../common/index.js';
import type { Network } from './network.js';
import { optimizerState, restoreOptimizerState } from './optimizer.js';
import type { EpochMetrics } from './run-dir.js';

/** Where a run stands: `epoch` epochs are complete and `batch` batches of the next one are done. */
export interface Position {
  epoch: number;
  batch: number;
  bestAccuracy: number;
  bestEpoch: number;
  /** Sums over the batches done in the current epoch. */
  partial: { loss: number; correct: number; seen: number; seconds: number };
}

/** The network's parameters by name, as plain arrays (what checkpoints and the ONNX export read). */
export async function weightsOf(network: Network): Promise<TensorMap> {
  const map: TensorMap = new Map();
  for (const param of network.parameters) {
    const variable = network.variables.get(param.name)!;
    map.set(param.name, { shape: param.shape, data: (await variable.data()) as Float32Array });
  }
  return map;
}

/** Copies weights into the network's variables, checking that every parameter is present with its shape. */
export function assignWeights(network: Network, tensors: TensorMap, file: string): void {
  for (const param of network.parameters) {
    const tensor = tensors.get(param.name);
    if (tensor === undefined) throw new CnnxError(`${file}: missing parameter ${param.name}`, 'BAD_WEIGHTS');
    if (tensor.shape.join() !== param.shape.join()) {
      throw new CnnxError(
        `${file}: parameter ${param.name} has shape [${tensor.shape.join(', ')}], expected [${param.shape.join(', ')}]`,
        'BAD_WEIGHTS',
      );
    }
    network.variables.get(param.name)!.assign(tf.tensor(tensor.data, tensor.shape));
  }
}

/** Writes the network's weights (with string metadata) to `file`. */
export async function saveWeights(network: Network, file: string, metadata: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(await weightsOf(network), metadata));
}

/** What a checkpoint records besides tensors. */
export interface CheckpointState {
  position: Position;
  /** Metrics of the `position.epoch` completed epochs, in order. */
  metrics: EpochMetrics[];
  /** The run's settings when it was saved: what resuming checks config.json against. */
  config?: object;
}

/** Saves weights, optimizer state, position and the completed epochs' metrics. */
export async function saveCheckpoint(
  network: Network,
  optimizer: tf.Optimizer,
  { position, metrics, config }: CheckpointState,
  file: string,
): Promise<void> {
  const tensors = await weightsOf(network);
  const { order, tensors: state } = await optimizerState(optimizer);
  for (const [name, tensor] of state) tensors.set(name, tensor);
  await writeFileAtomic(
    file,
    encodeSafetensors(tensors, {
      position: JSON.stringify(position),
      optimizer: JSON.stringify(order),
      metrics: JSON.stringify(metrics),
      ...(config === undefined ? {} : { config: JSON.stringify(config) }),
    }),
  );
}

/**
 * Restores a checkpoint into `network` and `optimizer`; returns the saved position and metrics (`metrics` is
 * undefined for checkpoints written before they carried them).
 * @throws CnnxError BAD_WEIGHTS for a file that is not a checkpoint of this network, or holds a value that is not a
 *   finite number; BAD_CHECKPOINT for one without a position.
 */
export async function loadCheckpoint(
  network: Network,
  optimizer: tf.Optimizer,
  file: string,
): Promise<{ position: Position; metrics?: EpochMetrics[]; config?: Record<string, unknown> }> {
  const { tensors, metadata } = await readSafetensors(file);
  for (const [name, tensor] of tensors) {
    // Changed bytes that keep the file's shape pass the reader; a weight that is not a number would train on, hidden
    // by ReLU and max pooling, and spread to every weight.
    const bad = tensor.data.findIndex((value) => !Number.isFinite(value));
    if (bad >= 0) {
      throw new CnnxError(`${file}: '${name}' holds a value that is not a finite number (at ${bad})`, 'BAD_WEIGHTS');
    }
  }
  assignWeights(network, tensors, file);
  await restoreOptimizerState(network, optimizer, JSON.parse(metadata.optimizer ?? '[]') as string[], tensors, file);
  if (metadata.position === undefined) throw new CnnxError(`${file}: not a checkpoint (no position)`, 'BAD_CHECKPOINT');
  return {
    position: JSON.parse(metadata.position) as Position,
    metrics: metadata.metrics === undefined ? undefined : (JSON.parse(metadata.metrics) as EpochMetrics[]),
    config: metadata.config === undefined ? undefined : (JSON.parse(metadata.config) as Record<string, unknown>),
  };
}

/**
 * Where a checkpoint stands, read from its header alone (no weights): what `--resume` counts the completed epochs
 * by when the metrics file cannot be read.
 * @throws CnnxError BAD_WEIGHTS (unreadable), BAD_CHECKPOINT (no position).
 */
export async function checkpointPosition(file: string): Promise<Position> {
  const metadata = await readSafetensorsMetadata(file);
  if (metadata.position === undefined) throw new CnnxError(`${file}: not a checkpoint (no position)`, 'BAD_CHECKPOINT');
  return JSON.parse(metadata.position) as Position;
}
