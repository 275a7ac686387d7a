/**
 * The parity suite: the same real test images through every path that runs a committed model, logits compared
 * pairwise against the reference (onnxruntime-node CPU) with tolerances from one table (src/export/tolerances.ts).
 * Measured differences are printed; BENCHMARKS.md records them. The WebGPU EP cases need SwiftShader (chromium and
 * libvulkan1); without it they report themselves skipped, unless CNNX_REQUIRE_WEBGPU=1 (CI) requires them.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingGpuDevice } from '../../src/common/index.js';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import {
  compareLogits,
  describeTolerance,
  paritySet,
  tfjsLogits,
  toleranceFor,
  weightsFromOnnx,
  type PathPrecision,
} from '../../src/export/index.js';
import { getModelSpec, inferenceSpec } from '../../src/models/index.js';
import { inspectOnnx, METADATA_KEYS, onnx, openSession } from '../../src/runtime/index.js';
import { openWebSession } from '../../src/runtime/web/index.js';
import { assignWeights, createNetwork, useBackend } from '../../src/train/index.js';
import { SWIFTSHADER_ICD, swiftShaderMissing } from '../helpers/environment.js';

const MODELS = ['models/lenet5-mnist.onnx', 'models/lenet5-relu-mnist.onnx', 'models/lenet5-relu-fashion-mnist.onnx'];
const PARITY_IMAGES = 256;
const measured: string[] = [];

/** The trained weights back out of the ONNX file, in tfjs layout, to run the same model in tfjs. */
async function tfjsFromOnnx(file: string) {
  const bytes = await readFile(file);
  const model = onnx.ModelProto.decode(bytes);
  const spec = inferenceSpec(getModelSpec(inspectOnnx(bytes, file).metadata[METADATA_KEYS.model]!)).spec;
  const network = createNetwork(spec, 0);
  assignWeights(network, weightsFromOnnx(model, spec), file);
  return network;
}

const datasets = new Map<string, Dataset>();
beforeAll(async () => {
  for (const name of ['mnist', 'fashion-mnist'] as const)
    datasets.set(name, await loadDataset(name, { offline: true }));
});
afterAll(() => {
  console.log(
    `parity (max abs diff of logits vs onnxruntime-node cpu, ${PARITY_IMAGES} test images of each model's dataset):\n${measured.join('\n')}`,
  );
});

/** Why the WebGPU EP cases cannot run here (no SwiftShader adapter), or undefined. */
const noSwiftShader = swiftShaderMissing();

describe.each(MODELS)('%s', (file) => {
  let reference: Float32Array;
  let inputs: { data: Float32Array; dims: number[] };
  let bytes: Uint8Array;
  beforeAll(async () => {
    bytes = await readFile(file);
    inputs = paritySet(datasets.get(inspectOnnx(bytes, file).dataset!)!.test, PARITY_IMAGES, 28);
    const session = await openSession(bytes, { ep: 'cpu' });
    reference = (await session.run(inputs.data, inputs.dims)).data.slice();
    await session.release();
  });

  const record = (path: string, precision: PathPrecision, logits: Float32Array) => {
    const tolerance = toleranceFor(precision, file.includes('alexnet') ? 'alexnet' : 'lenet');
    const report = compareLogits(reference, logits, 10, tolerance);
    measured.push(
      `  ${file} ${path}: max abs diff ${report.maxAbsDiff.toExponential(2)} at |logit| <= ${report.maxAbsLogit.toFixed(1)} ` +
        `(${(report.worstRatio * 100).toFixed(0)}% of ${describeTolerance(tolerance)}), top-1 ${(report.top1Agreement * 100).toFixed(1)}%`,
    );
    return { report, tolerance };
  };
  const check = (path: string, precision: PathPrecision, logits: Float32Array) => {
    const { report } = record(path, precision, logits);
    expect(report.worstRatio).toBeLessThanOrEqual(1);
    expect(report.top1Agreement).toBe(1);
  };

  it.each(['wasm', 'cpu'] as const)('tfjs %s', async (backend) => {
    await useBackend(backend);
    const network = await tfjsFromOnnx(file);
    const logits = await tfjsLogits(network, inputs.data, inputs.dims);
    network.dispose();
    check(`tfjs ${backend}`, 'fp32-cpu', logits);
  });

  it('onnxruntime-web WASM', async () => {
    const session = await openWebSession(bytes);
    const { data } = await session.run(inputs.data, inputs.dims);
    await session.release();
    check('onnxruntime-web wasm', 'fp32-cpu', data);
  });

  /**
   * onnxruntime-node 1.30's WebGPU EP miscomputes LeNet's second convolution (6 -> 16 channels, 5x5) on
   * SwiftShader, while tfjs's WebGPU backend on the same adapter is within 5e-6. The two cases below are pinned to
   * SwiftShader (VK_ICD_FILENAMES), where the fault is known; software WebGPU is slow, hence their time limits.
   */
  const onSwiftShader = () => {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    return { data: inputs.data.subarray(0, 8 * 784), dims: [8, 1, 28, 28] };
  };

  it('onnxruntime-node WebGPU EP on SwiftShader: the probe refuses its wrong results, and auto falls back to CPU', async (ctx) => {
    ctx.skip(noSwiftShader !== undefined, noSwiftShader);
    const probe = onSwiftShader();
    const probeTolerance = toleranceFor('webgpu', 'lenet').atol;
    await expect(openSession(bytes, { ep: 'webgpu', probe, probeTolerance })).rejects.toMatchObject({
      code: 'EP_WRONG_RESULTS',
      message: expect.stringMatching(/^webgpu: gives wrong results on this model \(max diff [\d.e+-]+ /),
    });
    // auto starts Dawn only where a GPU device exists; without one it skips WebGPU before any native warning.
    const auto = await openSession(bytes, { ep: 'auto', probe, probeTolerance });
    await auto.release();
    expect(auto.ep).toBe('cpu');
    expect(auto.skipped.find((s) => s.ep === 'webgpu')?.reason).toMatch(
      missingGpuDevice() === undefined ? /^gives wrong results on this model/ : /^no GPU device on this machine/,
    );
  }, 120_000);

  /**
   * The fault itself, measured. When this fails, ONNX Runtime has fixed it: check the WebGPU EP against the parity
   * tolerance, record it in BENCHMARKS.md, and drop this case (the probe still guards other models).
   */
  it('onnxruntime-node WebGPU EP on SwiftShader: still computes LeNet wrongly (known ONNX Runtime fault)', async (ctx) => {
    ctx.skip(noSwiftShader !== undefined, noSwiftShader);
    onSwiftShader();
    const raw = await openSession(bytes, { ep: 'webgpu' });
    const { data } = await raw.run(inputs.data, inputs.dims);
    await raw.release();
    const { report } = record('onnxruntime-node webgpu', 'webgpu', data);
    // Measured 13 to 33 on these models (256 images); the WebGPU tolerance is 1e-3.
    expect(report.maxAbsDiff, 'the WebGPU EP now agrees with the CPU provider: see the comment above').toBeGreaterThan(
      1,
    );
    expect(report.withinTolerance).toBe(false);
  }, 180_000);
});
