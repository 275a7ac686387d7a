/**
 * Add -> Add (Sum for more than two inputs) and Concatenate -> Concat on the ONNX axis of tfjs's axis (channels
 * -1 -> 1). Flat inputs must agree in feature order to add; concatenated flat features keep each input's order.
 */
import { onnxAxis } from '../../layout.js';
import type { Converter } from '../context.js';

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
const sameOrder = (a: Int32Array | undefined, b: Int32Array | undefined) =>
  a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]));

export const add: Converter = (context) => {
  const { inputs, config } = context;
  if (inputs.length < 2) throw config.unsupported(`adds ${inputs.length} input`);
  const [first, ...rest] = inputs as [(typeof inputs)[0], ...typeof inputs];
  for (const input of rest) {
    if (!sameShape(input.shape, first.shape)) {
      throw config.unsupported(`adds shapes [${first.shape.join(', ')}] and [${input.shape.join(', ')}]`);
    }
    if (!sameOrder(input.order, first.order)) {
      throw config.unsupported('adds flat features flattened from maps of different shapes, which needs a Transpose');
    }
  }
  const output = context.outputName();
  context.addNode(
    inputs.length === 2 ? 'Add' : 'Sum',
    inputs.map((input) => input.name),
    [output],
  );
  return { ...first, name: output };
};

export const concatenate: Converter = (context) => {
  const { inputs, config } = context;
  if (inputs.length < 2) throw config.unsupported(`concatenates ${inputs.length} input`);
  const rank = inputs[0]!.shape.length + 1;
  const saved = config.number('axis', -1);
  // tfjs's concatenate joins on the last axis for every negative axis, where its shapes (and Keras) count from the end.
  if (saved < -1) {
    throw config.unsupported(
      `axis ${saved}: TensorFlow.js concatenates on the last axis for any negative axis, so the model is ambiguous; give the axis from the front (1 height, 2 width, 3 channels) or -1`,
    );
  }
  const axis = onnxAxis(saved, rank);
  if (axis === 0) throw config.unsupported('concatenating along the batch axis');
  for (const input of inputs) {
    const agrees =
      input.shape.length + 1 === rank && input.shape.every((d, i) => i + 1 === axis || d === inputs[0]!.shape[i]);
    if (!agrees) throw config.unsupported(`concatenates shapes that differ off axis ${axis}`);
  }
  const shape = [...inputs[0]!.shape];
  shape[axis - 1] = inputs.reduce((total, input) => total + input.shape[axis - 1]!, 0);
  const output = context.outputName();
  context.addNode(
    'Concat',
    inputs.map((input) => input.name),
    [output],
    { axis },
  );
  if (rank !== 2 || inputs.every((input) => !input.order)) return { name: output, shape };
  // Flat features: each part keeps its own order, shifted by the features before it.
  const order = new Int32Array(shape[0]!);
  let offset = 0;
  for (const input of inputs) {
    const size = input.shape[0]!;
    for (let i = 0; i < size; i++) order[offset + i] = offset + (input.order ? input.order[i]! : i);
    offset += size;
  }
  return { name: output, shape, order };
};
