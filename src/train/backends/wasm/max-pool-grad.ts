/**
 * MaxPoolGrad for tfjs-backend-wasm written over the wasm heap in JavaScript: the backend's own kernel spends
 * about 30 ms per LeNet step on it; this one routes each dy to the first maximum of its window (as the cpu
 * backend does) in a few ms. NHWC, any window, stride and padding.
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './kernel-utils.js';

interface Attrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function maxPoolGradKernel(backendName: string): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const wasm = backend as unknown as WasmBackendLike;
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as Attrs;
    const info = backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
    const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
    const { top, left } = info.padInfo;
    const dxInfo = wasm.makeOutput(input.shape, 'float32');
    // Views are taken after the allocation: growing the heap detaches earlier ones.
    const dx = wasm.typedArrayFromHeap(dxInfo);
    const x = wasm.typedArrayFromHeap(input);
    const g = wasm.typedArrayFromHeap(dy);
    dx.fill(0);
    const rowStride = inWidth * channels;
    for (let b = 0; b < batchSize; b++) {
      const base = b * inHeight * rowStride;
      let o = b * outHeight * outWidth * channels;
      for (let oy = 0; oy < outHeight; oy++) {
        const y0 = Math.max(0, oy * strideHeight - top);
        const y1 = Math.min(inHeight, oy * strideHeight - top + filterHeight);
        for (let ox = 0; ox < outWidth; ox++) {
          const x0 = Math.max(0, ox * strideWidth - left);
          const x1 = Math.min(inWidth, ox * strideWidth - left + filterWidth);
          for (let c = 0; c < channels; c++, o++) {
            let best = -Infinity;
            let at = -1;
            for (let y = y0; y < y1; y++) {
              let i = base + y * rowStride + x0 * channels + c;
              for (let xx = x0; xx < x1; xx++, i += channels) {
                const v = x[i]!;
                if (v > best || at < 0) {
                  best = v;
                  at = i;
                }
              }
            }
            if (at >= 0) dx[at]! += g[o]!;
          }
        }
      }
    }
    return dxInfo;
  };
  return { kernelName: 'MaxPoolGrad', backendName, kernelFunc };
}
