/** The tfjs <-> ONNX layout permutations, checked against positions worked out by hand and against each other. */
import { describe, expect, it } from 'vitest';
import {
  convKernelToOnnx,
  convKernelToTfjs,
  depthwiseKernelToOnnx,
  flattenOrder,
  nhwcToNchw,
  onnxAxis,
  rowsToOnnx,
  rowsToTfjs,
  toOnnxOrder,
} from '../../src/export/layout.js';

const iota = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

describe('layout permutations', () => {
  it('moves a conv kernel [kh, kw, in, out] to [out, in, kh, kw] and back', () => {
    const shape = [2, 3, 4, 5];
    const tfjs = iota(2 * 3 * 4 * 5);
    const onnx = convKernelToOnnx(tfjs, shape);
    // ONNX [o=4, i=3, y=1, x=2] is tfjs [y=1, x=2, i=3, o=4].
    expect(onnx[((4 * 4 + 3) * 2 + 1) * 3 + 2]).toBe(tfjs[((1 * 3 + 2) * 4 + 3) * 5 + 4]);
    expect(convKernelToTfjs(onnx, shape)).toEqual(tfjs);
  });

  it('moves a depthwise kernel [kh, kw, in, multiplier] to grouped-conv [in * multiplier, 1, kh, kw]', () => {
    const tfjs = iota(3 * 3 * 2 * 4);
    const onnx = depthwiseKernelToOnnx(tfjs, [3, 3, 2, 4]);
    // Output channel c * 4 + m = 1 * 4 + 3 at (y=2, x=0) reads tfjs [2, 0, 1, 3].
    expect(onnx[(1 * 4 + 3) * 9 + 2 * 3 + 0]).toBe(tfjs[((2 * 3 + 0) * 2 + 1) * 4 + 3]);
  });

  it('orders a flattened [C, H, W] map: NCHW position i holds NHWC feature order[i]', () => {
    // C=2, H=1, W=3: NHWC is (x0c0, x0c1, x1c0, x1c1, x2c0, x2c1); NCHW is (c0x0, c0x1, c0x2, c1x0, c1x1, c1x2).
    expect(Array.from(flattenOrder([2, 1, 3]))).toEqual([0, 2, 4, 1, 3, 5]);
    const nhwc = iota(2 * 3 * 4);
    const nchw = nhwcToNchw(nhwc, [1, 3, 4, 2]);
    expect(toOnnxOrder(nhwc, flattenOrder([2, 3, 4]))).toEqual(nchw);
  });

  it('permutes dense rows to the ONNX feature order and back', () => {
    const order = flattenOrder([3, 2, 2]);
    const kernel = iota(12 * 5);
    const onnx = rowsToOnnx(kernel, 5, order);
    expect(Array.from(onnx.subarray(5, 10))).toEqual(Array.from(kernel.subarray(order[1]! * 5, order[1]! * 5 + 5)));
    expect(rowsToTfjs(onnx, 5, order)).toEqual(kernel);
  });

  it('maps tfjs axes to ONNX axes', () => {
    expect([-1, 0, 1, 2, 3].map((axis) => onnxAxis(axis, 4))).toEqual([1, 0, 2, 3, 1]);
    expect([-1, 1].map((axis) => onnxAxis(axis, 2))).toEqual([1, 1]);
    expect(() => onnxAxis(4, 4)).toThrow('axis 4 is out of range for rank 4');
  });
});
