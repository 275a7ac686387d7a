/**
 * Whether this machine shows a GPU to user space, without starting a GPU runtime. `auto` provider and backend
 * choices ask this before they initialise Dawn (WebGPU): on a machine without a GPU, Dawn only finds a software
 * Vulkan driver, slower than the CPU paths, and prints native warnings while it looks.
 * On Linux a GPU appears as a DRM render node (/dev/dri/renderD*, Intel, AMD and NVIDIA with nvidia-drm) or as
 * /dev/nvidia0; elsewhere (macOS, Windows) there is no such cheap test and the answer is yes.
 */
import { existsSync, readdirSync } from 'node:fs';

/** The reason no GPU is visible here, or undefined when one is (or the platform cannot tell). */
export function missingGpuDevice(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  if (existsSync('/dev/nvidia0')) return undefined;
  try {
    if (readdirSync('/dev/dri').some((name) => name.startsWith('renderD'))) return undefined;
  } catch {
    // no /dev/dri at all
  }
  return 'no GPU device on this machine (/dev/dri/renderD*, /dev/nvidia0)';
}
