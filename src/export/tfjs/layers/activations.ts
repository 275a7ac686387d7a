/**
 * Activations: the `activation` of Conv2D, Dense and the other layers that apply one (a node after theirs), the
 * Activation layer, and the activation layers ReLU, LeakyReLU, ELU and Softmax. Each keeps the shape and the
 * feature order. tfjs's formulas (tfjs-layers activations.ts): selu uses its scale 1.0507009873554804934193349852946
 * and scale * alpha 1.7580993408473768599402175208123; hardSigmoid is clip(0.2 x + 0.5, 0, 1).
 */
import type { AttributeValue, Flow } from '../../graph-builder.js';
import { onlyInput, type ConvertContext, type Converter } from '../context.js';

type Activation = (context: ConvertContext, input: Flow, output: string) => Flow;

/** One ONNX node of `opType` with `attributes`. */
const node =
  (opType: string, attributes: Record<string, AttributeValue> = {}): Activation =>
  (context, input, output) => {
    context.addNode(opType, [input.name], [output], attributes);
    return { ...input, name: output };
  };

/** Clip(min, max): its bounds are inputs from opset 11 on. */
const clip =
  (min: number, max: number): Activation =>
  (context, input, output) => {
    const bounds = [min, max].map((value, i) =>
      context.addInitializer(`${output}/${i === 0 ? 'min' : 'max'}`, [], Float32Array.of(value)),
    );
    context.addNode('Clip', [input.name, ...bounds], [output]);
    return { ...input, name: output };
  };

const SELU_SCALE = 1.0507009873554805;
const SELU_SCALE_ALPHA = 1.7580993408473768;

/** Softmax over the last tfjs axis, which is ONNX axis 1 for maps and flat features alike. */
const softmax: Activation = (context, input, output) => {
  if (input.shape.length > 1 && context.opset < 13) {
    throw context.config.unsupported(`softmax over the channels of a feature map needs --opset 13 or later`);
  }
  return node('Softmax', { axis: 1 })(context, input, output);
};

/** Every activation by its name as model.json writes it (Keras's snake_case: tfjs's hardSigmoid is hard_sigmoid). */
const ACTIVATIONS = {
  linear: (_, input) => input,
  relu: node('Relu'),
  relu6: clip(0, 6),
  elu: node('Elu', { alpha: { float: 1 } }),
  selu: node('Selu', { alpha: { float: SELU_SCALE_ALPHA / SELU_SCALE }, gamma: { float: SELU_SCALE } }),
  sigmoid: node('Sigmoid'),
  hard_sigmoid: node('HardSigmoid', { alpha: { float: 0.2 }, beta: { float: 0.5 } }),
  tanh: node('Tanh'),
  softmax,
  softplus: node('Softplus'),
  softsign: node('Softsign'),
} satisfies Record<string, Activation>;

type ActivationName = keyof typeof ACTIVATIONS;

/** The activation names the export supports. */
const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as ActivationName[];

/**
 * Applies activation `name` (from the layer's config) to `input`; linear adds nothing.
 * @throws CnnxError EXPORT_UNSUPPORTED for an activation the export does not know, naming the layer.
 */
function applyActivation(context: ConvertContext, input: Flow, saved: string, suffix = ''): Flow {
  const name = saved.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
  if (!Object.hasOwn(ACTIVATIONS, name)) {
    throw context.config.unsupported(
      `activation "${name}" is not supported; supported: ${ACTIVATION_NAMES.join(', ')}`,
    );
  }
  return ACTIVATIONS[name as ActivationName](context, input, context.outputName(suffix));
}

/** The activation in the layer's `activation` config (linear when absent), applied after the layer's own node. */
export function configuredActivation(context: ConvertContext, input: Flow): Flow {
  return applyActivation(context, input, context.config.string('activation', 'linear'), '/activation');
}

export const activationLayer: Converter = (context) =>
  applyActivation(context, onlyInput(context), context.config.string('activation'));

/** ReLU, with `max_value` as an upper bound (tfjs: clip to [0, max_value]). */
export const reluLayer: Converter = (context) => {
  const input = onlyInput(context);
  const output = context.outputName();
  const max = context.config.has('max_value') ? context.config.number('max_value') : undefined;
  return max === undefined ? node('Relu')(context, input, output) : clip(0, max)(context, input, output);
};

export const leakyReluLayer: Converter = (context) =>
  node('LeakyRelu', { alpha: { float: context.config.number('alpha', 0.3) } })(
    context,
    onlyInput(context),
    context.outputName(),
  );

export const eluLayer: Converter = (context) =>
  node('Elu', { alpha: { float: context.config.number('alpha', 1) } })(
    context,
    onlyInput(context),
    context.outputName(),
  );

export const softmaxLayer: Converter = (context) => {
  const input = onlyInput(context);
  const raw = context.config.layer.config.axis ?? -1;
  const axis = Array.isArray(raw) && raw.length === 1 ? (raw[0] as unknown) : raw;
  if (axis !== -1 && axis !== input.shape.length) {
    throw context.config.unsupported(`softmax over axis ${JSON.stringify(raw)}; only the last axis is supported`);
  }
  return softmax(context, input, context.outputName());
};
