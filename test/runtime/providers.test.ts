/**
 * Execution provider selection on onnxruntime-node: `auto` records each provider it skips as one short line, and
 * a provider asked for by name fails with what to do.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingGpuDevice } from '../../src/common/index.js';
import { CUDA_HELP, openSession } from '../../src/runtime/index.js';

const MODEL = 'models/lenet5-relu-mnist.onnx';

/** Whether onnxruntime-node's CUDA provider library is installed (its install script is switched off). */
function cudaProviderInstalled(): boolean {
  const root = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  const dir = join(root, 'bin', 'napi-v6', process.platform, process.arch);
  return existsSync(dir) && readdirSync(dir).some((file) => file.includes('providers_cuda'));
}

describe('execution provider selection (onnxruntime-node)', () => {
  it('auto: every skipped provider is named with a one-line reason, without the CUDA help text', async () => {
    const bytes = await readFile(MODEL);
    const probe = { data: new Float32Array(2 * 784).fill(0.5), dims: [2, 1, 28, 28] };
    const session = await openSession(bytes, { ep: 'auto', probe });
    await session.release();
    for (const skipped of session.skipped) {
      expect(['cuda', 'webgpu']).toContain(skipped.ep);
      expect(skipped.reason).not.toMatch(/\n/);
      expect(skipped.reason.length, skipped.reason).toBeLessThanOrEqual(120);
      expect(skipped.reason).not.toContain('NuGet');
    }
    if (missingGpuDevice() !== undefined) {
      expect(session.skipped).toEqual([
        { ep: 'cuda', reason: 'no GPU device on this machine (/dev/dri/renderD*, /dev/nvidia0)' },
        { ep: 'webgpu', reason: 'no GPU device on this machine (/dev/dri/renderD*, /dev/nvidia0)' },
      ]);
    } else if (!cudaProviderInstalled()) {
      expect(session.skipped[0]).toEqual({ ep: 'cuda', reason: 'CUDA provider libraries not installed' });
    }
  });

  it.skipIf(cudaProviderInstalled())(
    'cuda by name: fails with the reason and how to install the provider',
    async () => {
      const bytes = await readFile(MODEL);
      await expect(openSession(bytes, { ep: 'cuda' })).rejects.toMatchObject({
        code: 'EP_UNAVAILABLE',
        message: `cuda: CUDA provider libraries not installed. ${CUDA_HELP}`,
      });
    },
  );
});
