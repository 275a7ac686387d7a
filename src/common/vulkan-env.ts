/**
 * Environment for Vulkan-based WebGPU (Dawn in the `webgpu` package and in onnxruntime-node's WebGPU EP). Vulkan's
 * window-system probing complains on every start without a runtime directory (servers, containers, CI).
 * Set it on the main thread: a worker thread's process.env is its own copy, invisible to native code.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function ensureVulkanRuntimeDir(): void {
  process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'cnnx-xdg-'));
}
