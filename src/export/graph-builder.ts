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
  /** Set right after Flatten of a feature map: the [C, H, W] it came from (for the dense row permutation). */
  flattenedFrom?: number[];
}

export type AttributeValue = number | number[] | string;

interface EmitContext<L extends LayerSpec = LayerSpec> {
  layer: L;
  index: number;
  input: Flow;
  /** Weight of this layer in tfjs layout, by suffix (`weight`, `bias`, `running_mean`, ...). */
  weight(suffix: string): { shape: number[]; data: Float32Array };
  addInitializer(name: string, dims: number[], data: Float32Array): string;
  addNode(opType: string, inputs: string[], outputs: string[], attributes?: Record<string, AttributeValue>): void;
  /** A fresh, readable tensor name for this layer's output. */
  outputName(suffix?: string): string;
}

/** Emits the ONNX for one layer kind; each kind has one small file in emitters/. */
export interface LayerEmitter<K extends LayerKind = LayerKind> {
  layer: K;
  emit(context: EmitContext<Extract<LayerSpec, { kind: K }>>): Flow;
}

function attribute(name: string, value: AttributeValue): OnnxTypes.IAttributeProto {
  const types = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: types.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: types.INTS, ints: value };
  return Number.isInteger(value) ? { name, type: types.INT, i: value } : { name, type: types.FLOAT, f: value };
}

export class GraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];

  addInitializer(name: string, dims: number[], data: Float32Array): string {
    const rawData = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData });
    return name;
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
