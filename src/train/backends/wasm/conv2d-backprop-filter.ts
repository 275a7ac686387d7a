/**
 * Conv2DBackpropFilter for tfjs-backend-wasm, which ships the forward convolution but not this gradient.
 *
 * The filter gradient is itself a convolution: dW[kh,kw,c,o] = sum_{b,i,j} x[b, i*s+kh-p, j*s+kw-p, c] * dy[b,i,j,o].
 * Swapping the batch and channel axes turns it into one call of the backend's own (XNNPACK) Conv2D:
 * input x as [C, H, W, B], filter dy as [OH, OW, B, O] dilated by the forward stride, giving [C, KH, KW, O].
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { disposeInfo, kernelOf, paddedConv2d, runKernel } from './kernel-utils.js';

interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

export function conv2dBackpropFilterKernel(backendName: string): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const [transpose, slice] = ['Transpose', 'Slice'].map((name) => kernelOf(name, backendName)) as [
      KernelFunc,
      KernelFunc,
    ];
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Attrs;
    if (dataFormat !== 'NHWC')
      throw new Error(`Error in conv2dBackpropFilter: only NHWC is supported, got ${dataFormat}`);
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filterShape,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { filterHeight, filterWidth, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
    const { top, left } = info.padInfo;
    // Pad the far edges just enough to produce all KH x KW taps; rows the forward pass never read are sliced off.
    const bottom = Math.max(0, filterHeight - inHeight - top + strideHeight * (outHeight - 1));
    const right = Math.max(0, filterWidth - inWidth - left + strideWidth * (outWidth - 1));

    const xT = runKernel(transpose, backend, { x }, { perm: [3, 1, 2, 0] });
    const dyT = runKernel(transpose, backend, { x: dy }, { perm: [1, 2, 0, 3] });
    let grad = paddedConv2d(backendName, backend, xT, dyT, [top, bottom, left, right], [strideHeight, strideWidth]);
    disposeInfo(backend, xT, dyT);
    const [channels, rows, cols, outChannels] = grad.shape as [number, number, number, number];
    if (rows !== filterHeight || cols !== filterWidth) {
      const size = [channels, filterHeight, filterWidth, outChannels];
      const cropped = runKernel(slice, backend, { x: grad }, { begin: [0, 0, 0, 0], size });
      disposeInfo(backend, grad);
      grad = cropped;
    }
    const result = runKernel(transpose, backend, { x: grad }, { perm: [1, 2, 0, 3] });
    disposeInfo(backend, grad);
    return result;
  };
  return { kernelName: 'Conv2DBackpropFilter', backendName, kernelFunc };
}
