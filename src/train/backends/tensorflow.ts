/**
 * The tensorflow backend: libtensorflow through @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node (CPU),
 * when the user has installed one. They download libtensorflow at install time, so cnnx never depends on them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, messageOf } from '../../common/index.js';

const TENSORFLOW_HELP =
  'tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed. For NVIDIA GPUs install ' +
  '@tensorflow/tfjs-node-gpu@4.22.0 (npm install @tensorflow/tfjs-node-gpu@4.22.0), which needs CUDA 11.2 and cuDNN 8.1 ' +
  'exactly (newer CUDA is not picked up by tfjs-node-gpu 4.x); for CPUs @tensorflow/tfjs-node@4.22.0. Both download ' +
  'libtensorflow while installing. Without them, --backend webgpu trains on any Vulkan/Metal/D3D12 GPU and ' +
  '--backend wasm on CPUs.';

export async function loadTensorflow() {
  const failures: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') continue;
      failures.push(
        `${pkg} is installed but failed to load (${messageOf(error).split('\n')[0]}); check that CUDA 11.2 and cuDNN 8.1 libraries are on LD_LIBRARY_PATH`,
      );
      continue;
    }
    if (await tf.setBackend('tensorflow')) {
      return { name: 'tensorflow' as const, device: `tensorflow (${pkg}, ${pkg.endsWith('-gpu') ? 'CUDA' : 'CPU'})` };
    }
    failures.push(`${pkg} loaded but its backend did not initialise`);
  }
  throw new CnnxError(
    failures.length > 0 ? `tensorflow: ${failures.join('; ')}` : TENSORFLOW_HELP,
    'BACKEND_UNAVAILABLE',
  );
}
