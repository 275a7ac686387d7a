/**
 * Dense -> Gemm(A, B, C) with B the tfjs kernel [in, out]. Right after a Flatten of a feature map, the rows are
 * reordered from tfjs's NHWC flatten order ((h*W + w)*C + c) to ONNX's NCHW order (c*H*W + h*W + w).
 */
import type { LayerEmitter } from '../graph-builder.js';

/** Rows of `kernel` ([rows, units]) reordered from NHWC to NCHW flatten order for a [C, H, W] map. */
function nhwcRowsToNchw(kernel: Float32Array, units: number, [c, h, w]: number[]): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let ch = 0; ch < c!; ch++)
    for (let y = 0; y < h!; y++)
      for (let x = 0; x < w!; x++) {
        const from = ((y * w! + x) * c! + ch) * units;
        const to = ((ch * h! + y) * w! + x) * units;
        out.set(kernel.subarray(from, from + units), to);
      }
  return out;
}

export const denseEmitter: LayerEmitter<'dense'> = {
  layer: 'dense',
  emit({ layer, index, input, weight, addInitializer, addNode, outputName }) {
    const w = weight('weight');
    const [rows, units] = w.shape as [number, number];
    const kernel = input.flattenedFrom ? nhwcRowsToNchw(w.data, units, input.flattenedFrom) : w.data;
    const output = outputName();
    addNode(
      'Gemm',
      [
        input.name,
        addInitializer(`${index}.weight`, [rows, units], kernel),
        addInitializer(`${index}.bias`, [units], weight('bias').data),
      ],
      [output],
      { transB: 0 },
    );
    return { name: output, shape: [layer.units] };
  },
};
