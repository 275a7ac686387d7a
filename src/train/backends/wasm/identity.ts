/**
 * Identity without a copy, as the cpu backend does it: the output shares the input's data and adds a reference.
 * tfjs clones every tensor a gradient saves (and tf.clone, same-dtype casts) through Identity, and the wasm
 * backend's own kernel copies each one: about 1.5 ms of a LeNet b128 step, for tensors that nothing writes to
 * (tensors are immutable; Reshape already shares data the same way).
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

interface RefCounted {
  incRef(dataId: object): void;
}

export function identityKernel(backendName: string, original: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as RefCounted).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return { kernelName: 'Identity', backendName, kernelFunc };
}
