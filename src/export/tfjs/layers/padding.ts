/** ZeroPadding2D -> Pad (constant 0) on the spatial axes; the pads are an int64 input from opset 11 on. */
import { mapInput, type Converter } from '../context.js';

/** tfjs's `padding`: one number, [rows, columns], or [[top, bottom], [left, right]]. */
function paddings(value: unknown): [number, number, number, number] | undefined {
  if (typeof value === 'number') return [value, value, value, value];
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [rows, cols] = value as unknown[];
  const side = (v: unknown) =>
    typeof v === 'number' ? [v, v] : Array.isArray(v) && v.length === 2 ? (v as number[]) : undefined;
  const [top, bottom] = side(rows) ?? [];
  const [left, right] = side(cols) ?? [];
  const all = [top, bottom, left, right];
  return all.every((v) => Number.isInteger(v) && v! >= 0) ? (all as [number, number, number, number]) : undefined;
}

export const zeroPadding2d: Converter = (context) => {
  context.config.channelsLast();
  const [input, c, h, w] = mapInput(context);
  const pads = paddings(context.config.layer.config.padding ?? 1);
  if (!pads) throw context.config.unsupported(`padding ${JSON.stringify(context.config.layer.config.padding)}`);
  const [top, bottom, left, right] = pads;
  const output = context.outputName();
  const padsName = context.addInt64Initializer(`${output}/pads`, [8], [0, 0, top, left, 0, 0, bottom, right]);
  context.addNode('Pad', [input.name, padsName], [output], { mode: 'constant' });
  context.zeroPadded.add(output);
  return { name: output, shape: [c, h + top + bottom, w + left + right] };
};
