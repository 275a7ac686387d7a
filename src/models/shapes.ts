/**
 * Shapes and parameters of a spec, computed without any runtime: each layer's output shape for one input (as
 * the notebook prints them) and every parameter with its tfjs shape. Shapes are [channels, height, width] for
 * feature maps and [features] after Flatten.
 */
import { CnnxError } from '../common/index.js';
import type { LayerSpec, ModelSpec } from './spec.js';

export interface LayerShape {
  index: number;
  layer: LayerSpec;
  output: number[];
}

export interface ParameterSpec {
  /** e.g. `0.weight`, `1.running_mean` */
  name: string;
  /** tfjs layout */
  shape: number[];
  /** Learned by the optimizer (false for batch-norm running statistics). */
  trainable: boolean;
  layer: number;
}

function outputSize(size: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((size + 2 * padding - kernel) / stride) + 1;
}

/** Output shape after every layer; throws naming the layer when a spec does not fit its input. */
export function layerShapes(spec: ModelSpec): LayerShape[] {
  let shape: number[] = [...spec.input];
  return spec.layers.map((layer, index) => {
    const [c, h, w] = shape as [number, number, number];
    const needMap = () => {
      if (shape.length !== 3) {
        throw new CnnxError(`${spec.name} layer ${index} (${layer.kind}) needs a feature map, got [${shape.join(', ')}]`, 'BAD_MODEL');
      }
    };
    switch (layer.kind) {
      case 'conv2d': {
        needMap();
        const stride = layer.stride ?? 1;
        const padding = layer.padding ?? 0;
        shape = [layer.filters, outputSize(h, layer.kernel, stride, padding), outputSize(w, layer.kernel, stride, padding)];
        break;
      }
      case 'max-pool':
        needMap();
        shape = [c, outputSize(h, layer.size, layer.stride, 0), outputSize(w, layer.size, layer.stride, 0)];
        break;
      case 'flatten':
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      case 'dense':
        if (shape.length !== 1) throw new CnnxError(`${spec.name} layer ${index} (dense) needs a flat input`, 'BAD_MODEL');
        shape = [layer.units];
        break;
      default:
        break;
    }
    if (shape.some((d) => d < 1)) {
      throw new CnnxError(`${spec.name} layer ${index} (${layer.kind}) produces an empty output [${shape.join(', ')}]`, 'BAD_MODEL');
    }
    return { index, layer, output: [...shape] };
  });
}

/** Every parameter of the model, in layer order. */
export function parameterSpecs(spec: ModelSpec): ParameterSpec[] {
  const params: ParameterSpec[] = [];
  let input: number[] = [...spec.input];
  for (const { index, layer, output } of layerShapes(spec)) {
    const add = (suffix: string, shape: number[], trainable = true) =>
      params.push({ name: `${index}.${suffix}`, shape, trainable, layer: index });
    if (layer.kind === 'conv2d') {
      add('weight', [layer.kernel, layer.kernel, input[0]!, layer.filters]);
      add('bias', [layer.filters]);
    } else if (layer.kind === 'dense') {
      add('weight', [input[0]!, layer.units]);
      add('bias', [layer.units]);
    } else if (layer.kind === 'batch-norm') {
      const features = input[0]!;
      add('weight', [features]);
      add('bias', [features]);
      add('running_mean', [features], false);
      add('running_var', [features], false);
    }
    input = output;
  }
  return params;
}

/** Number of trainable parameters (what PyTorch's sum(p.numel() for p in net.parameters()) counts). */
export function countParameters(spec: ModelSpec): number {
  return parameterSpecs(spec)
    .filter((p) => p.trainable)
    .reduce((total, p) => total + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** The notebook-style shape listing: one line per layer. */
export function formatShapes(spec: ModelSpec, batch = 1): string {
  const rows = layerShapes(spec).map(({ layer, output }) => {
    const name = layer.kind.replace(/(^|-)(\w)/g, (_, __, ch: string) => ch.toUpperCase());
    return `${name.padEnd(12)} output shape:\t[${[batch, ...output].join(', ')}]`;
  });
  return [`input        shape:\t\t[${[batch, ...spec.input].join(', ')}]`, ...rows].join('\n');
}
