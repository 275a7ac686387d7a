/**
 * Shapes and parameters of a spec, computed without any runtime: each layer's output shape for one input (as
 * the notebook prints them) and every parameter with its tfjs shape. Shapes are [channels, height, width] for
 * feature maps and [features] after Flatten.
 */
import { CnnxError } from '../common/index.js';
import type { LayerKind, LayerOf, LayerSpec, ModelSpec } from './spec.js';

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

/** What a layer kind needs as input, and the output shape it makes from it. */
interface ShapeRule<K extends LayerKind> {
  needs: 'feature map' | 'flat input' | 'any';
  output(layer: LayerOf<K>, input: number[]): number[];
}

const same = { needs: 'any', output: (_: unknown, input: number[]) => input } as const;

/** One rule per layer kind: a new kind does not compile until it has one. */
const SHAPE_RULES = {
  conv2d: {
    needs: 'feature map',
    output: (layer, [, h, w]) => {
      const stride = layer.stride ?? 1;
      const padding = layer.padding ?? 0;
      return [layer.filters, outputSize(h!, layer.kernel, stride, padding), outputSize(w!, layer.kernel, stride, padding)];
    },
  },
  'max-pool': {
    needs: 'feature map',
    output: (layer, [c, h, w]) => [c!, outputSize(h!, layer.size, layer.stride, 0), outputSize(w!, layer.size, layer.stride, 0)],
  },
  flatten: { needs: 'any', output: (_, input) => [input.reduce((a, b) => a * b, 1)] },
  dense: { needs: 'flat input', output: (layer) => [layer.units] },
  sigmoid: same,
  relu: same,
  dropout: same,
  'batch-norm': same,
} satisfies { [K in LayerKind]: ShapeRule<K> };

/** One parameter of a layer: its suffix (`weight`, `bias`, ...), tfjs shape, and whether the optimizer learns it. */
type LayerParameter = [suffix: string, shape: number[], trainable?: boolean];

/** The parameters of each layer kind, from the layer and the shape of its input. */
const PARAMETERS = {
  conv2d: (layer, [channels]) => [
    ['weight', [layer.kernel, layer.kernel, channels!, layer.filters]],
    ['bias', [layer.filters]],
  ],
  dense: (layer, [features]) => [
    ['weight', [features!, layer.units]],
    ['bias', [layer.units]],
  ],
  'batch-norm': (_, [features]) => [
    ['weight', [features!]],
    ['bias', [features!]],
    ['running_mean', [features!], false],
    ['running_var', [features!], false],
  ],
  'max-pool': () => [],
  flatten: () => [],
  sigmoid: () => [],
  relu: () => [],
  dropout: () => [],
} satisfies { [K in LayerKind]: (layer: LayerOf<K>, input: number[]) => LayerParameter[] };

/** Output shape after every layer; throws naming the layer when a spec does not fit its input. */
export function layerShapes(spec: ModelSpec): LayerShape[] {
  let shape: number[] = [...spec.input];
  return spec.layers.map((layer, index) => {
    const rule = SHAPE_RULES[layer.kind] as ShapeRule<LayerKind>;
    if (rule.needs === 'feature map' && shape.length !== 3) {
      throw new CnnxError(
        `${spec.name} layer ${index} (${layer.kind}) needs a feature map, got [${shape.join(', ')}]`,
        'BAD_MODEL',
      );
    }
    if (rule.needs === 'flat input' && shape.length !== 1) {
      throw new CnnxError(`${spec.name} layer ${index} (${layer.kind}) needs a flat input`, 'BAD_MODEL');
    }
    shape = rule.output(layer, shape);
    if (shape.some((d) => d < 1)) {
      throw new CnnxError(
        `${spec.name} layer ${index} (${layer.kind}) produces an empty output [${shape.join(', ')}]`,
        'BAD_MODEL',
      );
    }
    return { index, layer, output: [...shape] };
  });
}

/** Every parameter of the model, in layer order. */
export function parameterSpecs(spec: ModelSpec): ParameterSpec[] {
  const params: ParameterSpec[] = [];
  let input: number[] = [...spec.input];
  for (const { index, layer, output } of layerShapes(spec)) {
    const parameters = PARAMETERS[layer.kind] as (layer: LayerSpec, input: number[]) => LayerParameter[];
    for (const [suffix, shape, trainable = true] of parameters(layer, input)) {
      params.push({ name: `${index}.${suffix}`, shape, trainable, layer: index });
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
