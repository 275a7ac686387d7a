/**
 * What the browser and WebGPU tests need from the machine, and why they skip without it. On a bare machine (Node
 * and npm only) they report themselves skipped with the reason; with CNNX_REQUIRE_WEBGPU=1 (CI, after .ci/run
 * installs chromium and libvulkan1) nothing is skipped, so a missing piece fails the tests instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';
/** SwiftShader's Vulkan driver, shipped by Debian's chromium: a software WebGPU adapter without a GPU. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
export const WEBGPU_REQUIRED = process.env.CNNX_REQUIRE_WEBGPU === '1';

export const INSTALL_WEBGPU = 'apt-get install chromium libvulkan1, or run .ci/run';

function hasVulkanLoader(): boolean {
  const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
  if (dirs.some((dir) => existsSync(`${dir}/libvulkan.so.1`))) return true;
  try {
    return / libvulkan\.so\.1 /.test(execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

/**
 * Says on stderr, once per test file, why its tests skip (vitest's summary counts skipped tests but does not print
 * their reasons); returns `reason` for `context.skip(reason)`.
 */
export function announceSkip(reason: string | undefined): string | undefined {
  if (reason !== undefined) console.warn(`skipped here: ${reason}`);
  return reason;
}

/** Why Chromium tests cannot run here; undefined when they can, or must (CNNX_REQUIRE_WEBGPU=1). */
export function chromiumMissing(): string | undefined {
  if (WEBGPU_REQUIRED || existsSync(CHROMIUM)) return undefined;
  return announceSkip(`chromium not installed: ${INSTALL_WEBGPU}`);
}

/** Why onnxruntime-node's WebGPU EP has no SwiftShader adapter here; undefined when it has, or must. */
export function swiftShaderMissing(): string | undefined {
  if (WEBGPU_REQUIRED) return undefined;
  if (!existsSync(SWIFTSHADER_ICD)) {
    return announceSkip(`no SwiftShader Vulkan driver (chromium not installed): ${INSTALL_WEBGPU}`);
  }
  if (!hasVulkanLoader()) return announceSkip(`no Vulkan loader (libvulkan1 not installed): ${INSTALL_WEBGPU}`);
  return undefined;
}
