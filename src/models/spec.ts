/**
 * Declarative model specs: an ordered list of layers, like the notebook's nn.Sequential. The tfjs network
 * (training) and the ONNX graph (export) are both built from the same spec, so they cannot drift apart.
 *
 * Parameters are named as PyTorch's state_dict would name them: `<layer index>.weight`, `<layer index>.bias`,
 * and for batch norm also `.running_mean` / `.running_var`. Weights are stored in tfjs layout: conv kernels
 * [kh, kw, in, out], dense kernels [in, out].
 */
import type { DatasetName } from '../data/index.js';

export type LayerSpec =
  | { kind: 'conv2d'; filters: number; kernel: number; stride?: number; padding?: number }
  | { kind: 'max-pool'; size: number; stride: number }
  | { kind: 'sigmoid' }
  | { kind: 'relu' }
  | { kind: 'flatten' }
  | { kind: 'dense'; units: number }
  | { kind: 'dropout'; rate: number }
  | { kind: 'batch-norm'; epsilon?: number; momentum?: number };

export type LayerKind = LayerSpec['kind'];

/** The spec of one layer kind, e.g. `LayerOf<'conv2d'>`: what each stage's per-kind table entry receives. */
export type LayerOf<K extends LayerKind> = Extract<LayerSpec, { kind: K }>;

export type OptimizerName = 'sgd' | 'momentum' | 'adam';
export type ScheduleName = 'constant' | 'cosine' | 'one-cycle';

/** Training settings a model is trained with unless flags say otherwise. */
export interface TrainingDefaults {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: OptimizerName;
  /** For `momentum`. */
  momentum?: number;
  schedule: ScheduleName;
}

export interface ModelSpec {
  name: string;
  description: string;
  /** Input as [channels, height, width] (the ONNX input is [N, ...input]). */
  input: [number, number, number];
  classes: number;
  layers: LayerSpec[];
  defaults: TrainingDefaults;
  /** The dataset a run trains on when none is named. */
  defaultDataset: DatasetName;
  /**
   * How closely an export must match tfjs on FP32 CPU paths: the absolute logit tolerance, and how many test
   * images the exporter's own check runs. Deep nets sum more terms per logit (and are slower), so they get a
   * looser atol and fewer images than the defaults (atol 1e-5, 256 images).
   */
  parity?: { fp32Atol?: number; images?: number };
}
