/**
 * Conv2D, DepthwiseConv2D and SeparableConv2D -> Conv (SeparableConv2D: a depthwise Conv, then a 1x1 Conv), with
 * TensorFlow's `same` padding written as explicit pads and the kernels moved to ONNX layout (layout.ts). A batch
 * norm right after the layer arrives already folded into its kernel and bias.
 */
import { CnnxError } from '../../../common/index.js';
import type { Flow } from '../../graph-builder.js';
import { convKernelToOnnx, depthwiseKernelToOnnx } from '../../layout.js';
import { biasOf, mapInput, spatial, type ConvertContext, type Converter, type Weight } from '../context.js';
import { describeLayer } from '../topology.js';
import { configuredActivation } from './activations.js';

interface ConvSettings {
  strides: [number, number];
  dilations: [number, number];
  padding: 'valid' | 'same';
}

function settings(context: ConvertContext): ConvSettings {
  const { config } = context;
  config.channelsLast();
  const settings = {
    strides: config.pair('strides', [1, 1]),
    dilations: config.pair('dilation_rate', [1, 1]),
    padding: config.padding(),
  };
  if (settings.dilations.some((d) => d > 1) && settings.strides.some((s) => s > 1)) {
    throw config.unsupported('strides and dilation_rate both above 1 (tfjs refuses them too)');
  }
  return settings;
}

/** One Conv node: `kernel` in ONNX layout [out, in / group, kh, kw]. */
function convNode(
  context: ConvertContext,
  input: Flow,
  kernel: { dims: [number, number, number, number]; data: Float32Array },
  bias: Weight | undefined,
  { strides, dilations, padding }: ConvSettings,
  group: number,
  suffix = '',
): Flow {
  const [outC, , kh, kw] = kernel.dims;
  const [, h, w] = input.shape as [number, number, number];
  const rows = spatial(h, kh, strides[0], dilations[0], padding);
  const cols = spatial(w, kw, strides[1], dilations[1], padding);
  if (rows.out < 1 || cols.out < 1) {
    throw context.config.unsupported(`its ${kh}x${kw} kernel does not fit the ${h}x${w} input`);
  }
  const output = context.outputName(suffix);
  const inputs = [input.name, context.addInitializer(`${output}/kernel`, kernel.dims, kernel.data)];
  if (bias) inputs.push(context.addInitializer(`${output}/bias`, [outC], bias.data));
  context.addNode('Conv', inputs, [output], {
    kernel_shape: [kh, kw],
    strides,
    dilations,
    pads: [rows.before, cols.before, rows.after, cols.after],
    group,
  });
  return { name: output, shape: [outC, rows.out, cols.out] };
}

/** Checks the kernel's spatial size against kernel_size, and `multiplier` against depth_multiplier (default 1). */
function checkKernel(context: ConvertContext, kernel: Weight, weight: string, multiplier?: number): void {
  const { config } = context;
  config.agrees(
    'kernel_size',
    config.pair('kernel_size', [kernel.shape[0]!, kernel.shape[1]!]),
    weight,
    kernel.shape.slice(0, 2),
  );
  if (multiplier === undefined) return;
  const setting = config.number('depth_multiplier', 1);
  if (setting === multiplier) return;
  // tfjs leaves depth_multiplier out when it saves a SeparableConv2D, so its own loader fails on such a model too.
  throw new CnnxError(
    `${describeLayer(config.layer)}: its ${weight} has a channel multiplier of ${multiplier}, but config depth_multiplier is ${setting}` +
      (config.has('depth_multiplier')
        ? ': the weights do not match the layer'
        : ` (TensorFlow.js leaves depth_multiplier out when it saves this layer, and cannot load the model again either): add "depth_multiplier": ${multiplier} to the layer's config in model.json`),
    'TFJS_MODEL_INVALID',
  );
}

export const conv2d: Converter = (context) => {
  const [input, channels] = mapInput(context);
  const kernel = context.requireWeight('kernel');
  const [kh, kw, inC, outC] = kernel.shape as [number, number, number, number];
  if (inC !== channels) throw context.config.unsupported(`its kernel reads ${inC} channels, its input has ${channels}`);
  checkKernel(context, kernel, 'kernel');
  context.config.agrees('filters', context.config.number('filters', outC), 'kernel', outC);
  const conv = convNode(
    context,
    input,
    { dims: [outC, inC, kh, kw], data: convKernelToOnnx(kernel.data, kernel.shape) },
    biasOf(context),
    settings(context),
    1,
  );
  return configuredActivation(context, conv);
};

/** Depthwise kernel [kh, kw, in, multiplier] as a grouped Conv (group = in). */
function depthwiseKernel(kernel: Weight): { dims: [number, number, number, number]; data: Float32Array } {
  const [kh, kw, inC, multiplier] = kernel.shape as [number, number, number, number];
  return { dims: [inC * multiplier, 1, kh, kw], data: depthwiseKernelToOnnx(kernel.data, kernel.shape) };
}

export const depthwiseConv2d: Converter = (context) => {
  const [input, channels] = mapInput(context);
  const kernel = context.requireWeight('depthwise_kernel');
  if (kernel.shape[2] !== channels) {
    throw context.config.unsupported(`its kernel reads ${kernel.shape[2]} channels, its input has ${channels}`);
  }
  checkKernel(context, kernel, 'depthwise_kernel', kernel.shape[3]);
  // tfjs's DepthwiseConv2D computes without the dilation it saves (Keras's applies it): which one the weights were
  // trained for cannot be told, so neither is guessed.
  if (context.config.pair('dilation_rate', [1, 1]).some((d) => d > 1)) {
    throw context.config.unsupported(
      'dilation_rate above 1: TensorFlow.js computes this layer without dilation, Keras with it, so the model is ambiguous; set dilation_rate to 1, or use a SeparableConv2D',
    );
  }
  const conv = convNode(context, input, depthwiseKernel(kernel), biasOf(context), settings(context), channels);
  return configuredActivation(context, conv);
};

export const separableConv2d: Converter = (context) => {
  const [input, channels] = mapInput(context);
  const depthwise = context.requireWeight('depthwise_kernel');
  const pointwise = context.requireWeight('pointwise_kernel');
  if (depthwise.shape[2] !== channels) {
    throw context.config.unsupported(`its kernel reads ${depthwise.shape[2]} channels, its input has ${channels}`);
  }
  checkKernel(context, depthwise, 'depthwise_kernel', depthwise.shape[3]);
  const [, , pointIn, pointOut] = pointwise.shape as [number, number, number, number];
  context.config.agrees('filters', context.config.number('filters', pointOut), 'pointwise_kernel', pointOut);
  if (pointIn !== channels * depthwise.shape[3]!) {
    throw new CnnxError(
      `${describeLayer(context.config.layer)}: its pointwise_kernel reads ${pointIn} channels, its depthwise_kernel makes ${channels * depthwise.shape[3]!}: the weights do not match the layer`,
      'TFJS_MODEL_INVALID',
    );
  }
  const spatialConv = convNode(
    context,
    input,
    depthwiseKernel(depthwise),
    undefined,
    settings(context),
    channels,
    '/depthwise',
  );
  const [, , mid, outC] = pointwise.shape as [number, number, number, number];
  const conv = convNode(
    context,
    spatialConv,
    { dims: [outC, mid, 1, 1], data: convKernelToOnnx(pointwise.data, pointwise.shape) },
    biasOf(context),
    { strides: [1, 1], dilations: [1, 1], padding: 'valid' },
    1,
  );
  return configuredActivation(context, conv);
};
