/**
 * Conv2DBackpropInput for stride-1 convolutions: with few input channels on cnnx's SIMD kernel (simd-conv.ts, each
 * dx pixel gathering its taps), otherwise through the backend's XNNPACK Conv2D: the input gradient is the "full"
 * correlation of dy with the kernel rotated 180 degrees and its in/out channels swapped. The wasm backend's own
 * kernel is a plain loop (4.6-5x slower than the full convolution on LeNet's second convolution, BENCHMARKS.md);
 * other strides use it. A SIMD kernel that scattered each dy pixel's 16 channels over its taps lost to the full
 * convolution (0.85x); the gathering one is 1.8x faster than it there.
 * @throws Error when dy is smaller than the convolution's output.
 */
import { backend_util, util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { disposeInfo, kernelOf, paddedConv2d, runKernel } from './kernel-utils.js';
import { fewChannelInputGrad } from './simd-conv.js';

interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/**
 * The input gradient [B, H, W, C] of a stride-1 convolution as XNNPACK's Conv2D of dy [B, OH, OW, O] padded to a
 * "full" correlation with the filter [KH, KW, C, O] rotated 180 degrees and swapped to [KH, KW, O, C]; undefined
 * when the padding does not allow it.
 */
export function inputGradByFullConv(
  backendName: string,
  backend: unknown,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo | undefined {
  const [reverse, transpose] = ['Reverse', 'Transpose'].map((name) => kernelOf(name, backendName)) as [
    KernelFunc,
    KernelFunc,
  ];
  const { filterHeight, filterWidth, inHeight, inWidth, outHeight, outWidth } = info;
  const top = filterHeight - 1 - info.padInfo.top;
  const left = filterWidth - 1 - info.padInfo.left;
  const bottom = inHeight - outHeight + filterHeight - 1 - top;
  const right = inWidth - outWidth + filterWidth - 1 - left;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return undefined;

  const rotated = runKernel(reverse, backend, { x: filter }, { dims: [0, 1] });
  const swapped = runKernel(transpose, backend, { x: rotated }, { perm: [0, 1, 3, 2] });
  disposeInfo(backend, rotated);
  const dx = paddedConv2d(backendName, backend, dy, swapped, [top, bottom, left, right]);
  disposeInfo(backend, swapped);
  return dx;
}

export function conv2dBackpropInputKernel(backendName: string, fallback: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Attrs;
    const info = backend_util.computeConv2DInfo(
      inputShape,
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    // tfjs checks only dy's rank (conv2dTranspose takes any output shape). A dy smaller than the convolution's
    // output would be read past its end, by cnnx's kernels and by the backend's own; a larger one (a forward pass
    // that rounded its output size up: tfjs's gradient drops dimRoundingMode) is read within it by the backend's.
    if (dy.shape.some((size, axis) => size < info.outShape[axis]!)) {
      throw new Error(
        `Error in conv2dBackpropInput: dy has shape [${dy.shape}], but a convolution of inputShape ` +
          `[${inputShape}] with filter [${filter.shape}] gives [${info.outShape}]`,
      );
    }
    const fits = util.arraysEqual(dy.shape, info.outShape);
    if (!fits || dataFormat !== 'NHWC' || info.strideHeight !== 1 || info.strideWidth !== 1) return fallback(args);
    return (
      fewChannelInputGrad(backend, dy, filter, info) ??
      inputGradByFullConv(backendName, backend, dy, filter, info) ??
      fallback(args)
    );
  };
  return { kernelName: 'Conv2DBackpropInput', backendName, kernelFunc };
}
