/**
 * The webgpu backend: tfjs-backend-webgpu on Dawn, the WebGPU implementation Chromium uses, from the `webgpu`
 * npm package. It reaches any Vulkan, Metal or D3D12 GPU with no CUDA version constraint. Without a GPU, a
 * software Vulkan driver (SwiftShader, shipped by Debian's chromium package) gives a slow but real adapter.
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, ensureVulkanRuntimeDir } from '../../common/index.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

interface AdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
}

let installed = false;

/** Installs Dawn's navigator.gpu into this process once. */
async function installDawn(): Promise<void> {
  if (installed) return;
  // Without a GPU driver, let Vulkan find SwiftShader where Debian's chromium puts it.
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  ensureVulkanRuntimeDir();
  const dawn = (await import('webgpu')) as unknown as {
    create: (flags: string[]) => unknown;
    globals: Record<string, unknown>;
  };
  Object.assign(globalThis, dawn.globals);
  Object.defineProperty(globalThis, 'navigator', {
    value: { ...(globalThis.navigator ?? {}), gpu: dawn.create([]) },
    configurable: true,
  });
  installed = true;
}

function describe(adapter: AdapterLike): { text: string; software: boolean } {
  const info = adapter.info ?? {};
  const text =
    [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  const software = Boolean(info.isFallbackAdapter) || /swiftshader|llvmpipe|cpu/i.test(text);
  return { text, software };
}

export async function loadWebgpu(options: { allowSoftware: boolean }) {
  await installDawn();
  const gpu = (globalThis.navigator as unknown as { gpu: { requestAdapter(): Promise<AdapterLike | null> } }).gpu;
  const adapter = await gpu.requestAdapter();
  if (adapter === null) {
    throw new CnnxError('webgpu: no WebGPU adapter (no Vulkan/Metal/D3D12 GPU driver found)', 'BACKEND_UNAVAILABLE');
  }
  const { text, software } = describe(adapter);
  if (software && !options.allowSoftware) {
    throw new CnnxError(`webgpu: only a software adapter (${text}), slower than wasm`, 'BACKEND_UNAVAILABLE');
  }
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu')))
    throw new CnnxError('webgpu: tfjs-backend-webgpu failed to initialise', 'BACKEND_FAILED');
  return { name: 'webgpu' as const, device: `webgpu (${text})` };
}
