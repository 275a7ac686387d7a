/**
 * Building an ONNX graph one layer at a time. Emitters receive the current tensor (name and NCHW shape) and the
 * layer's weights in tfjs layout; they add nodes and initializers and return the new current tensor.
 */
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { LayerKind, LayerSpec } from '../models/index.js';
import { onnx } from '../runtime/index.js';

/** The tensor flowing between layers: its ONNX name and shape without the batch dimension. */
export interface Flow {
  name: string;
  /** [C, H, W] for feature maps, [F] after Flatten. */
  shape: number[];
  /**
   * For flat tensors whose features are not in tfjs order (a flattened map is in NCHW order, tfjs flattened NHWC):
   * feature `i` here is tfjs feature `order[i]` (layout.ts). The next dense layer permutes its rows by it.
   */
  order?: Int32Array;
}

/** An attribute: a whole number is written as INT, other numbers as FLOAT; `{ float }` forces FLOAT (e.g. alpha 1). */
export type AttributeValue = number | number[] | string | { float: number };

interface EmitContext<L extends LayerSpec = LayerSpec> {
  layer: L;
  index: number;
  input: Flow;
  /** Weight of this layer in tfjs layout, by suffix (`weight`, `bias`, `running_mean`, ...). */
  weight(suffix: string): { shape: number[]; data: Float32Array };
  addInitializer(name: string, dims: number[], data: Float32Array): string;
  addInt64Initializer(name: string, dims: number[], values: readonly number[]): string;
  addNode(opType: string, inputs: string[], outputs: string[], attributes?: Record<string, AttributeValue>): void;
  /** A fresh, readable tensor name for this layer's output. */
  outputName(suffix?: string): string;
}

/** Emits the ONNX for one layer kind of a cnnx spec; each kind has one small file in emitters/. */
export interface LayerEmitter<K extends LayerKind = LayerKind> {
  layer: K;
  emit(context: EmitContext<Extract<LayerSpec, { kind: K }>>): Flow;
}

function attribute(name: string, value: AttributeValue): OnnxTypes.IAttributeProto {
  const types = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: types.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: types.INTS, ints: value };
  if (typeof value === 'object') return { name, type: types.FLOAT, f: value.float };
  return Number.isInteger(value) ? { name, type: types.INT, i: value } : { name, type: types.FLOAT, f: value };
}

export class GraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];

  /** Adds a float32 initializer (raw little-endian data) and returns its name. */
  addInitializer(name: string, dims: number[], data: Float32Array): string {
    const rawData = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData });
    return name;
  }

  /** Adds an int64 initializer (shapes, pads: what Reshape and Pad take as inputs) and returns its name. */
  addInt64Initializer(name: string, dims: number[], values: readonly number[]): string {
    const rawData = new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, rawData });
    return name;
  }

  /** Names of every tensor some node or initializer defines, plus `inputs`. */
  defined(inputs: readonly string[]): Set<string> {
    return new Set([...inputs, ...this.initializers.map((t) => t.name!), ...this.nodes.flatMap((n) => n.output ?? [])]);
  }

  addNode(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}): void {
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: `${opType}_${this.nodes.length}`,
      attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
    });
  }
}

/** A float32 tensor value-info with a dynamic batch dimension `N`. */
export function valueInfo(name: string, shape: number[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: 'N' }, ...shape.map((d) => ({ dimValue: d }))] },
      },
    },
  };
}
