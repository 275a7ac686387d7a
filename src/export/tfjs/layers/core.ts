/**
 * The core layers: InputLayer, Dense, Flatten, Reshape and Dropout. Flatten of a feature map flattens in NCHW
 * order and records the feature order, so that the Dense layer after it permutes its rows instead of the graph
 * transposing the map (layout.ts). Dense on a feature map works on the channels, as tfjs's does: a 1x1 Conv.
 */
import type { Flow } from '../../graph-builder.js';
import { convKernelToOnnx, flattenOrder, rowsToOnnx } from '../../layout.js';
import { biasOf, onlyInput, type Converter } from '../context.js';
import { configuredActivation } from './activations.js';

/** The graph input, which the exporter hands to the InputLayer as its one input. */
export const inputLayer: Converter = (context) => onlyInput(context);

/** Dropout is the identity at inference: no node. */
export const dropout: Converter = (context) => onlyInput(context);

export const dense: Converter = (context) => {
  const input = onlyInput(context);
  const kernel = context.requireWeight('kernel');
  const [rows, units] = kernel.shape as [number, number];
  // Channels of a map ([C, H, W]) or flat features ([F]): what tfjs's Dense reads, its last axis.
  const features = input.shape[0]!;
  if (input.shape.length !== 1 && input.shape.length !== 3) {
    throw context.config.unsupported(`needs flat features or a feature map, got [${input.shape.join(', ')}]`);
  }
  if (rows !== features)
    throw context.config.unsupported(`its kernel reads ${rows} features, its input has ${features}`);
  context.config.agrees('units', context.config.number('units', units), 'kernel', units);
  const bias = biasOf(context);
  const output = context.outputName();
  let flow: Flow;
  if (input.shape.length === 3) {
    const inputs = [
      input.name,
      context.addInitializer(
        `${output}/kernel`,
        [units, rows, 1, 1],
        convKernelToOnnx(kernel.data, [1, 1, rows, units]),
      ),
    ];
    if (bias) inputs.push(context.addInitializer(`${output}/bias`, [units], bias.data));
    context.addNode('Conv', inputs, [output], { kernel_shape: [1, 1] });
    flow = { name: output, shape: [units, input.shape[1]!, input.shape[2]!] };
  } else {
    const data = input.order ? rowsToOnnx(kernel.data, units, input.order) : kernel.data;
    const inputs = [input.name, context.addInitializer(`${output}/kernel`, [rows, units], data)];
    if (bias) inputs.push(context.addInitializer(`${output}/bias`, [units], bias.data));
    context.addNode('Gemm', inputs, [output]);
    flow = { name: output, shape: [units] };
  }
  return configuredActivation(context, flow);
};

/** Flattens a feature map in NCHW order, recording the order tfjs's features have in it; flat features pass as they are. */
function flatten(context: Parameters<Converter>[0], input: Flow, channelsFirst = false): Flow {
  if (input.shape.length === 1) return input;
  const output = context.outputName();
  context.addNode('Flatten', [input.name], [output], { axis: 1 });
  const shape = [input.shape.reduce((a, b) => a * b, 1)];
  return { name: output, shape, order: flattenOrder(input.shape, channelsFirst) };
}

/** Flatten, with either data_format (layout.ts's flattenOrder says what channels_first does to tfjs's features). */
export const flattenLayer: Converter = (context) => {
  const format = context.config.string('data_format', 'channels_last');
  if (format !== 'channels_last' && format !== 'channels_first') {
    throw context.config.unsupported(`data_format ${format}`);
  }
  return flatten(context, onlyInput(context), format === 'channels_first');
};

/**
 * Reshape, where the channels-first graph holds its result in the same order as tfjs: to flat features (as
 * Flatten), or between shapes whose NHWC and NCHW orders agree (one channel, or 1x1 maps).
 */
export const reshape: Converter = (context) => {
  const input = onlyInput(context);
  const raw = context.config.layer.config.target_shape;
  const size = input.shape.reduce((a, b) => a * b, 1);
  if (!Array.isArray(raw) || !raw.every((d) => Number.isInteger(d) && (d >= 1 || d === -1))) {
    throw context.config.unsupported(`target_shape ${JSON.stringify(raw)}`);
  }
  const known = (raw as number[]).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const target = (raw as number[]).map((d) => (d === -1 ? size / known : d));
  if (target.reduce((a, b) => a * b, 1) !== size || !target.every(Number.isInteger)) {
    throw context.config.unsupported(`target_shape [${raw.join(', ')}] does not hold the ${size} input values`);
  }
  if (target.length === 1) return flatten(context, input);
  if (target.length !== 3)
    throw context.config.unsupported(`a target of rank ${target.length}; cnnx exports maps and flat features`);
  const [h, w, c] = target as [number, number, number];
  const sameOrder = (channels: number, height: number, width: number) => channels === 1 || height * width === 1;
  const inputInTfjsOrder =
    input.shape.length === 1 ? !input.order : sameOrder(input.shape[0]!, input.shape[1]!, input.shape[2]!);
  if (!inputInTfjsOrder || !sameOrder(c, h, w)) {
    throw context.config.unsupported(
      `reshaping [${input.shape.join(', ')}] to [${target.join(', ')}] needs a Transpose in a channels-first graph`,
    );
  }
  const output = context.outputName();
  context.addNode(
    'Reshape',
    [input.name, context.addInt64Initializer(`${output}/shape`, [4], [-1, c, h, w])],
    [output],
  );
  return { name: output, shape: [c, h, w] };
};
