/** Rescaling -> Mul by `scale`, then Add `offset`: x * scale + offset, in tfjs's order of operations. */
import { onlyInput, type Converter } from '../context.js';

export const rescaling: Converter = (context) => {
  const input = onlyInput(context);
  const scale = context.config.number('scale');
  const offset = context.config.number('offset', 0);
  const scaled = context.outputName('/scaled');
  context.addNode('Mul', [input.name, context.addInitializer(`${scaled}/scale`, [], Float32Array.of(scale))], [scaled]);
  const output = context.outputName();
  context.addNode('Add', [scaled, context.addInitializer(`${output}/offset`, [], Float32Array.of(offset))], [output]);
  return { ...input, name: output };
};
