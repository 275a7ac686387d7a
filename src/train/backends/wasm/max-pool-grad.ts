/**
 * MaxPoolGrad for tfjs-backend-wasm written over the wasm heap in JavaScript: the backend's own kernel spends
 * about 30 ms per LeNet step on it; this one routes each dy to the first maximum of its window in row-major window
 * order (as the cpu backend does; a NaN is never a maximum unless it is the window's first value). NHWC, any
 * window, stride and padding.
 *
 * Windows that neither overlap nor need padding (stride >= window, as LeNet's 2x2/2) take disjointWindows: every
 * input value belongs to at most one window, so dx is written once (dy or 0) instead of zero-filled and
 * accumulated, and 2x2 windows compare four values without bounds math. Measured (bench/train-kernels.ts --only
 * maxpool, median ms per call on a loaded 2-core machine, two runs, generic -> disjoint): LeNet pool1 b128
 * 10.2 -> 6.2 and 7.1 -> 4.4, pool2 b128 3.2 -> 2.0 and 1.9 -> 1.2 (1.6x).
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './kernel-utils.js';
import { addressOf, simdKernels } from './simd-kernels.js';

interface Attrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

type PoolInfo = ReturnType<typeof backend_util.computePool2DInfo>;

/** Whether every window lies inside the input and no two windows share a value. */
function windowsAreDisjoint(info: PoolInfo): boolean {
  const { top, left } = info.padInfo;
  return (
    top === 0 &&
    left === 0 &&
    info.strideHeight >= info.filterHeight &&
    info.strideWidth >= info.filterWidth &&
    (info.outHeight - 1) * info.strideHeight + info.filterHeight <= info.inHeight &&
    (info.outWidth - 1) * info.strideWidth + info.filterWidth <= info.inWidth
  );
}

/** 2x2 windows with stride 2: cnnx's SIMD kernel (simd/kernels.c) takes them when there are >= 4 channels. */
function isTwoByTwo(info: PoolInfo): boolean {
  return info.filterHeight === 2 && info.filterWidth === 2 && info.strideHeight === 2 && info.strideWidth === 2;
}

/** Any window, stride and padding: dx zero-filled, each dy added at its window's first maximum. */
export function maxPoolGradGeneric(dx: Float32Array, x: Float32Array, g: Float32Array, info: PoolInfo): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const { top, left } = info.padInfo;
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
}

/**
 * Windows inside the input that share no value (windowsAreDisjoint): each window's values are written once, dy at
 * the first maximum and 0 elsewhere; values no window covers are zeroed first. `+ 0` keeps the generic path's
 * 0 + dy (which turns -0 into +0), so both paths give the same bits.
 */
export function maxPoolGradDisjoint(dx: Float32Array, x: Float32Array, g: Float32Array, info: PoolInfo): void {
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  if (outHeight * sh !== inHeight || outWidth * sw !== inWidth || sh !== fh || sw !== fw) dx.fill(0);
  const rowStride = inWidth * C;
  let o = 0;
  if (fh === 2 && fw === 2) {
    for (let b = 0; b < batchSize; b++) {
      for (let oy = 0; oy < outHeight; oy++) {
        let i = (b * inHeight + oy * sh) * rowStride;
        for (let ox = 0; ox < outWidth; ox++, i += sw * C - C) {
          for (let c = 0; c < C; c++, i++, o++) {
            const i1 = i + C;
            const i2 = i + rowStride;
            const i3 = i2 + C;
            let best = x[i]!;
            let at = i;
            let v = x[i1]!;
            if (v > best) {
              best = v;
              at = i1;
            }
            v = x[i2]!;
            if (v > best) {
              best = v;
              at = i2;
            }
            if (x[i3]! > best) at = i3;
            dx[i] = 0;
            dx[i1] = 0;
            dx[i2] = 0;
            dx[i3] = 0;
            dx[at] = g[o]! + 0;
          }
        }
      }
    }
    return;
  }
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const corner = (b * inHeight + oy * sh) * rowStride + ox * sw * C;
        for (let c = 0; c < C; c++, o++) {
          let best = x[corner + c]!;
          let at = corner + c;
          for (let y = 0; y < fh; y++) {
            let i = corner + y * rowStride + c;
            for (let xx = 0; xx < fw; xx++, i += C) {
              const v = x[i]!;
              if (v > best) {
                best = v;
                at = i;
              }
              dx[i] = 0;
            }
          }
          dx[at] = g[o]! + 0;
        }
      }
    }
  }
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
    const dxInfo = wasm.makeOutput(input.shape, 'float32');
    // Views are taken after the allocation: growing the heap detaches earlier ones.
    const dx = wasm.typedArrayFromHeap(dxInfo);
    const x = wasm.typedArrayFromHeap(input);
    const g = wasm.typedArrayFromHeap(dy);
    const disjoint = windowsAreDisjoint(info);
    const simd = disjoint && isTwoByTwo(info) && info.inChannels >= 4 ? simdKernels(backend) : undefined;
    if (simd === undefined) {
      (disjoint ? maxPoolGradDisjoint : maxPoolGradGeneric)(dx, x, g, info);
      return dxInfo;
    }
    if (info.outHeight * 2 !== info.inHeight || info.outWidth * 2 !== info.inWidth) dx.fill(0);
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
    simd.max_pool_grad_2x2(
      addressOf(backend, input),
      addressOf(backend, dy),
      addressOf(backend, dxInfo),
      batchSize,
      inHeight,
      inWidth,
      inChannels,
      outHeight,
      outWidth,
    );
    return dxInfo;
  };
  return { kernelName: 'MaxPoolGrad', backendName, kernelFunc };
}
