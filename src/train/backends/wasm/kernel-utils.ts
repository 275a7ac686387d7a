/** Helpers for kernels that cnnx adds to, or puts in front of, a tfjs backend's own kernels. */
import { getKernel, type KernelFunc, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';

/** The subset of tfjs-backend-wasm's BackendWasm that cnnx kernels use. */
export interface WasmBackendLike {
  disposeData(dataId: object): boolean;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

/** Calls a kernel function directly (no tape, no engine bookkeeping) and returns its single output. */
export function runKernel(
  kernel: KernelFunc,
  backend: unknown,
  inputs: Record<string, TensorInfo>,
  attrs: object = {},
): TensorInfo {
  return kernel({ inputs, backend: backend as never, attrs: attrs as NamedAttrMap }) as TensorInfo;
}

/** The kernel function a backend registered under `name`. */
export function kernelOf(name: string, backendName: string): KernelFunc {
  const config = getKernel(name, backendName);
  if (config === undefined) throw new Error(`kernel ${name} is not registered for backend ${backendName}`);
  return config.kernelFunc;
}

export function disposeInfo(backend: unknown, ...tensors: TensorInfo[]): void {
  for (const tensor of tensors) (backend as WasmBackendLike).disposeData(tensor.dataId);
}

/** The backend's Conv2D with stride 1, explicit [top, bottom, left, right] padding and a dilation, NHWC. */
export function paddedConv2d(
  backendName: string,
  backend: unknown,
  x: TensorInfo,
  filter: TensorInfo,
  [top, bottom, left, right]: [number, number, number, number],
  dilations: [number, number] = [1, 1],
): TensorInfo {
  const pad = [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
  return runKernel(
    kernelOf('Conv2D', backendName),
    backend,
    { x, filter },
    { strides: [1, 1], pad, dataFormat: 'NHWC', dilations },
  );
}

/** A view of the same data under another shape of the same size (no copy, no new reference). */
export function withShape(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}
