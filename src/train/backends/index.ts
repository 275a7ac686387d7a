/**
 * Training backends: the only place that imports tfjs backends. A frozen table maps the user's word to a
 * loader; `auto` takes the first that loads, in order of speed, and says why it skipped the others.
 *
 * - tensorflow: @tensorflow/tfjs-node-gpu, else @tensorflow/tfjs-node (optional; the user installs them)
 * - webgpu:     @tensorflow/tfjs-backend-webgpu over Dawn (the `webgpu` npm package)
 * - wasm:       @tensorflow/tfjs-backend-wasm with cnnx's training kernels (XNNPACK, SIMD)
 * - cpu:        @tensorflow/tfjs-backend-cpu, pure JavaScript
 */
import '@tensorflow/tfjs'; // registers every op's gradient with tfjs-core
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, messageOf, missingGpuDevice } from '../../common/index.js';
import { loadTensorflow } from './tensorflow.js';
import { loadWebgpu } from './webgpu.js';
import { loadWasm } from './wasm.js';

// Production mode: no banner recommending tfjs-node on the first cpu tensor (cnnx explains its backends itself).
tf.enableProdMode();

export const BACKEND_NAMES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendInfo {
  /** The tfjs backend name in use. */
  name: Exclude<BackendName, 'auto'>;
  /** What runs it, in words (e.g. `wasm (XNNPACK, SIMD, 1 thread)`). */
  device: string;
  /** Why `auto` skipped faster backends, when it did. */
  skipped: string[];
}

type Loader = () => Promise<Omit<BackendInfo, 'skipped'>>;

const LOADERS: Readonly<Record<Exclude<BackendName, 'auto'>, Loader>> = Object.freeze({
  tensorflow: loadTensorflow,
  webgpu: () => loadWebgpu({ allowSoftware: true }),
  wasm: loadWasm,
  cpu: async () => {
    await import('@tensorflow/tfjs-backend-cpu');
    await setBackendOrThrow('cpu');
    return { name: 'cpu' as const, device: 'cpu (pure JavaScript)' };
  },
});

/** Fastest first; `auto` skips a software WebGPU adapter (SwiftShader), which is slower than wasm. */
const AUTO_ORDER: Loader[] = [loadTensorflow, loadWebgpuOnGpu, loadWasm, LOADERS.cpu];

/** WebGPU for `auto`: only where a GPU device exists (Dawn is not started, and prints nothing, elsewhere). */
async function loadWebgpuOnGpu() {
  const noGpu = missingGpuDevice();
  if (noGpu !== undefined) throw new CnnxError(`webgpu: ${noGpu}`, 'BACKEND_UNAVAILABLE');
  return loadWebgpu({ allowSoftware: false });
}

/** A loader's failure as one short line for `skipped`: its first sentence, at most 100 characters. */
function shortReason(error: unknown): string {
  const first = messageOf(error)
    .split('\n')[0]!
    .split(/\. (?=[A-Z])/)[0]!;
  return first.length <= 100 ? first : `${first.slice(0, 97)}...`;
}

/** Makes `name` the active tfjs backend; for `auto`, the fastest that works here. */
export async function useBackend(name: BackendName): Promise<BackendInfo> {
  if (name !== 'auto') return { ...(await LOADERS[name]()), skipped: [] };
  const skipped: string[] = [];
  for (const load of AUTO_ORDER) {
    try {
      return { ...(await load()), skipped };
    } catch (error) {
      skipped.push(shortReason(error));
    }
  }
  throw new CnnxError(`no training backend could be loaded:\n${skipped.join('\n')}`, 'NO_BACKEND');
}

async function setBackendOrThrow(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name)
    throw new CnnxError(`tfjs could not initialise the ${name} backend`, 'BACKEND_FAILED');
}
