/**
 * MaxPooling2D and AveragePooling2D -> MaxPool and AveragePool with TensorFlow's padding as explicit pads (an
 * average over a window that hangs over the edge counts only the real pixels, as TensorFlow does:
 * count_include_pad 0); GlobalAveragePooling2D and GlobalMaxPooling2D -> GlobalAveragePool / GlobalMaxPool and a
 * Flatten to [N, C].
 */
import { mapInput, spatial, type ConvertContext, type Converter } from '../context.js';

/**
 * A MaxPool's input that ZeroPadding2D made, guarded from ONNX Runtime's "Pad_Fusion" (1.30, from the basic
 * optimisation level up): it moves a Pad with value 0 into the MaxPool after it as the pool's own padding, which
 * MaxPool ignores as if it were -inf (a window of negative values at the border then gives its maximum instead of
 * tfjs's 0), and which MaxPool refuses outright once the pads reach its window. A Max with float32's lowest value
 * between them changes no finite number and leaves the Pad no MaxPool to fuse into.
 */
function guardZeroPadding(context: ConvertContext, input: string): string {
  if (!context.zeroPadded.has(input)) return input;
  const lowest = context.addInitializer(context.outputName('/lowest'), [], Float32Array.of(-3.4028234663852886e38));
  const guarded = context.outputName('/unfused');
  context.addNode('Max', [input, lowest], [guarded]);
  return guarded;
}

const pool =
  (opType: 'MaxPool' | 'AveragePool'): Converter =>
  (context) => {
    const { config } = context;
    config.channelsLast();
    const [input, c, h, w] = mapInput(context);
    const size = config.pair('pool_size', [2, 2]);
    const strides = config.pair('strides', size);
    const padding = config.padding();
    const rows = spatial(h, size[0], strides[0], 1, padding);
    const cols = spatial(w, size[1], strides[1], 1, padding);
    if (rows.out < 1 || cols.out < 1)
      throw config.unsupported(`its ${size.join('x')} window does not fit the ${h}x${w} input`);
    const output = context.outputName();
    const source = opType === 'MaxPool' ? guardZeroPadding(context, input.name) : input.name;
    context.addNode(opType, [source], [output], {
      kernel_shape: size,
      strides,
      pads: [rows.before, cols.before, rows.after, cols.after],
      ...(opType === 'AveragePool' ? { count_include_pad: 0 } : {}),
    });
    return { name: output, shape: [c, rows.out, cols.out] };
  };

export const maxPooling2d = pool('MaxPool');
export const averagePooling2d = pool('AveragePool');

const globalPool =
  (opType: 'GlobalAveragePool' | 'GlobalMaxPool'): Converter =>
  (context) => {
    context.config.channelsLast();
    const [input, c] = mapInput(context);
    const pooled = context.outputName('/pooled');
    context.addNode(opType, [input.name], [pooled]);
    const output = context.outputName();
    context.addNode('Flatten', [pooled], [output], { axis: 1 });
    return { name: output, shape: [c] };
  };

export const globalAveragePooling2d = globalPool('GlobalAveragePool');
export const globalMaxPooling2d = globalPool('GlobalMaxPool');
