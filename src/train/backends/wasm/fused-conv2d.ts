/**
 * FusedConv2D in front of tfjs-backend-wasm's own: a single-channel input (a grayscale network's first layer)
 * takes cnnx's SIMD kernel (simd-conv.ts) with the bias added, then the activation by the backend's
 * kernel; everything else, the backend's XNNPACK convolution.
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { disposeInfo, kernelOf, runKernel } from './kernel-utils.js';
import { singleChannelConv2d } from './simd-conv.js';

interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation: string;
}

/** Activations applied by the backend's kernel of that name after the convolution. */
const ACTIVATION_KERNELS: Record<string, string | undefined> = { relu: 'Relu', sigmoid: 'Sigmoid', relu6: 'Relu6' };

export function fusedConv2dKernel(backendName: string, original: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const { x, filter, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined>;
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = attrs as unknown as Attrs;
    const after = activation === 'linear' ? undefined : ACTIVATION_KERNELS[activation];
    if (bias === undefined || preluActivationWeights !== undefined || dataFormat !== 'NHWC') return original(args);
    if (activation !== 'linear' && after === undefined) return original(args);
    const info = backend_util.computeConv2DInfo(
      x!.shape as [number, number, number, number],
      filter!.shape as [number, number, number, number],
      strides,
      dilations,
      pad,
      dimRoundingMode,
    );
    if (bias.shape.length !== 1 || bias.shape[0] !== info.outChannels) return original(args);
    const y = singleChannelConv2d(backend, x!, filter!, bias, info);
    if (y === undefined) return original(args);
    if (after === undefined) return y;
    const activated = runKernel(kernelOf(after, backendName), backend, { x: y });
    disposeInfo(backend, y);
    return activated;
  };
  return { kernelName: 'FusedConv2D', backendName, kernelFunc };
}
