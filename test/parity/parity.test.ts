/**
 * The parity suite: the same real test images through every path that runs a committed model, logits compared
 * pairwise against the reference (onnxruntime-node CPU) with tolerances from one table (src/export/tolerances.ts).
 * Measured differences are printed; BENCHMARKS.md records them.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { onnx } from '../../src/export/onnx-proto.js';
import { getModelSpec, inferenceSpec } from '../../src/models/index.js';
import { openSession, openWebSession } from '../../src/runtime/index.js';
import { assignWeights, createNetwork, useBackend } from '../../src/train/index.js';

const MODELS = ['models/lenet5-mnist.onnx', 'models/lenet5-relu-mnist.onnx', 'models/lenet5-relu-fashion-mnist.onnx'];
const PARITY_IMAGES = 256;
const measured: string[] = [];

/** The trained weights back out of the ONNX file, in tfjs layout, to run the same model in tfjs. */
async function tfjsFromOnnx(file: string) {
  const model = onnx.ModelProto.decode(await readFile(file));
  const spec = inferenceSpec(getModelSpec(model.metadataProps!.find((p) => p.key === 'cnnx.model')!.value!)).spec;
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

/** SwiftShader (installed by .ci/run) or a real GPU gives the WebGPU EP an adapter. */
const webgpuAvailable =
  process.env.CNNX_REQUIRE_WEBGPU === '1' || existsSync('/usr/lib/chromium/vk_swiftshader_icd.json');

describe.each(MODELS)('%s', (file) => {
  let reference: Float32Array;
  let inputs: { data: Float32Array; dims: number[] };
  let bytes: Uint8Array;
  beforeAll(async () => {
    bytes = await readFile(file);
    const dataset = onnx.ModelProto.decode(bytes).metadataProps!.find((p) => p.key === 'cnnx.dataset')!.value!;
    inputs = paritySet(datasets.get(dataset)!.test, PARITY_IMAGES, 28);
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
   * SwiftShader, while tfjs's WebGPU backend on the same adapter is within 5e-6. cnnx therefore checks a GPU
   * provider against the CPU one before using it: either the WebGPU EP is within tolerance on the whole parity
   * set, or opening it with a probe is refused with a clear reason (and `--ep auto` falls back to CPU).
   */
  it.runIf(webgpuAvailable)('onnxruntime-node WebGPU EP: within tolerance, or refused by the probe', async () => {
    process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
    const raw = await openSession(bytes, { ep: 'webgpu' });
    const { data } = await raw.run(inputs.data, inputs.dims);
    await raw.release();
    const { report, tolerance: webgpuTolerance } = record('onnxruntime-node webgpu', 'webgpu', data);
    const tolerance = webgpuTolerance.atol;
    const probe = { data: inputs.data.subarray(0, 8 * 784), dims: [8, 1, 28, 28] };
    if (report.withinTolerance) {
      const checked = await openSession(bytes, { ep: 'webgpu', probe, probeTolerance: tolerance });
      expect(checked.ep).toBe('webgpu');
      await checked.release();
    } else {
      await expect(openSession(bytes, { ep: 'webgpu', probe, probeTolerance: tolerance })).rejects.toThrow(
        /webgpu: gives wrong results for this model \(logits differ from the CPU provider by [\d.e+-]+ on a probe input/,
      );
      const auto = await openSession(bytes, { ep: 'auto', probe, probeTolerance: tolerance });
      expect(auto.ep).toBe('cpu');
      expect(auto.skipped.join('\n')).toMatch(/webgpu: gives wrong results/);
      await auto.release();
    }
  });
});
