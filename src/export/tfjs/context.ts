/**
 * What a tfjs layer converter works with: the layer (its config read through typed getters that name the layer
 * in errors), the flows it reads, its weights in tfjs layout, and the graph being built. Shapes in flows are ONNX
 * shapes without the batch dimension: [C, H, W] for a tfjs [H, W, C] map, [F] for flat features.
 */
import { CnnxError } from '../../common/index.js';
import type { AttributeValue, Flow } from '../graph-builder.js';
import { describeLayer, type TfjsLayer } from './topology.js';

/** A weight in tfjs layout. */
export interface Weight {
  shape: number[];
  data: Float32Array;
}

/** A layer's config, read with defaults and checked; every error names the layer. */
export class LayerConfig {
  constructor(readonly layer: TfjsLayer) {}

  /** An error for a setting or input the export cannot write, naming the layer. */
  unsupported(why: string): CnnxError {
    return new CnnxError(`${describeLayer(this.layer)}: ${why}`, 'EXPORT_UNSUPPORTED');
  }

  private invalid(key: string, expected: string, value: unknown): CnnxError {
    return new CnnxError(
      `${describeLayer(this.layer)}: config ${key} should be ${expected}, got ${JSON.stringify(value)}`,
      'TFJS_MODEL_INVALID',
    );
  }

  private value(key: string, fallback: unknown): unknown {
    const value = this.layer.config[key];
    if (value !== undefined && value !== null) return value;
    if (fallback === undefined) throw this.invalid(key, 'present', value);
    return fallback;
  }

  /** Whether the config sets `key` (to anything but null). */
  has(key: string): boolean {
    return this.layer.config[key] !== undefined && this.layer.config[key] !== null;
  }

  number(key: string, fallback?: number): number {
    const value = this.value(key, fallback);
    if (typeof value !== 'number' || !Number.isFinite(value)) throw this.invalid(key, 'a number', value);
    return value;
  }

  string(key: string, fallback?: string): string {
    const value = this.value(key, fallback);
    if (typeof value !== 'string') throw this.invalid(key, 'a string', value);
    return value;
  }

  /** A [height, width] pair of positive integers, saved as a pair or one number for both. */
  pair(key: string, fallback?: [number, number]): [number, number] {
    const value = this.value(key, fallback);
    const pair = typeof value === 'number' ? [value, value] : value;
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((v) => Number.isInteger(v) && v >= 1)) {
      throw this.invalid(key, 'a positive integer or a pair of them', value);
    }
    return pair as [number, number];
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.value(key, fallback);
    if (typeof value !== 'boolean') throw this.invalid(key, 'true or false', value);
    return value;
  }

  /**
   * Checks that a weight's dimension agrees with the setting that made it (a model.json edited by hand, or weights
   * saved from another model, disagree).
   * @throws CnnxError TFJS_MODEL_INVALID naming the setting, its value and the weight's dimension.
   */
  agrees(key: string, setting: unknown, weight: string, actual: unknown): void {
    if (JSON.stringify(setting) === JSON.stringify(actual)) return;
    throw new CnnxError(
      `${describeLayer(this.layer)}: config ${key} is ${JSON.stringify(setting)}, but its ${weight} has ${JSON.stringify(actual)}: the weights do not match the layer`,
      'TFJS_MODEL_INVALID',
    );
  }

  /** Refuses anything but channels-last data (tfjs's default). */
  channelsLast(): void {
    const format = this.string('data_format', 'channels_last');
    if (format !== 'channels_last') throw this.unsupported(`data_format ${format}; cnnx exports channels_last models`);
  }

  /** The spatial padding mode, `valid` or `same`. */
  padding(): 'valid' | 'same' {
    const padding = this.string('padding', 'valid');
    if (padding !== 'valid' && padding !== 'same') throw this.unsupported(`padding "${padding}"`);
    return padding;
  }
}

export interface ConvertContext {
  config: LayerConfig;
  /** The flows this layer reads, in its inbound order. */
  inputs: Flow[];
  /** Weight `short` (`kernel`, `bias`, `gamma`, ...) of this layer, batch norm folded in where the plan folds one. */
  weight(short: string): Weight | undefined;
  /** As `weight`, for a weight the layer must have. */
  requireWeight(short: string): Weight;
  addInitializer(name: string, dims: number[], data: Float32Array): string;
  addInt64Initializer(name: string, dims: number[], values: readonly number[]): string;
  addNode(opType: string, inputs: string[], outputs: string[], attributes?: Record<string, AttributeValue>): void;
  /** A fresh tensor name for one of this layer's outputs (`<layer name><suffix>`). */
  outputName(suffix?: string): string;
  opset: number;
  /** The tensors ZeroPadding2D made (a MaxPool guards them: pooling.ts). */
  zeroPadded: Set<string>;
}

/**
 * A conv or dense layer's bias: saved when use_bias is set (tfjs's default), or made by folding a batch norm into a
 * layer without one.
 * @throws CnnxError TFJS_MODEL_INVALID when use_bias is set and the weights have no bias.
 */
export function biasOf(context: ConvertContext): Weight | undefined {
  return context.config.boolean('use_bias', true) ? context.requireWeight('bias') : context.weight('bias');
}

/** Writes one tfjs layer class as ONNX nodes and returns its output flow. */
export type Converter = (context: ConvertContext) => Flow;

/** The one input of a single-input layer. */
export function onlyInput({ inputs, config }: ConvertContext): Flow {
  if (inputs.length !== 1) throw config.unsupported(`expects one input, got ${inputs.length}`);
  return inputs[0]!;
}

/** The one input, which must be a feature map ([C, H, W]) of a channels-last layer. */
export function mapInput(context: ConvertContext): [Flow, number, number, number] {
  context.config.channelsLast();
  const input = onlyInput(context);
  if (input.shape.length !== 3) {
    throw context.config.unsupported(`needs a feature map [H, W, C], got features [${input.shape.join(', ')}]`);
  }
  const [c, h, w] = input.shape as [number, number, number];
  return [input, c, h, w];
}

/**
 * Output size and [before, after] padding of one spatial axis, as TensorFlow computes them: `same` gives
 * ceil(size / stride) outputs and puts the odd padding pixel after; `valid` pads nothing.
 */
export function spatial(
  size: number,
  kernel: number,
  stride: number,
  dilation: number,
  padding: 'valid' | 'same',
): { out: number; before: number; after: number } {
  const extent = (kernel - 1) * dilation + 1;
  if (padding === 'valid') return { out: Math.floor((size - extent) / stride) + 1, before: 0, after: 0 };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + extent - size, 0);
  return { out, before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
}
