/**
 * A user's own colour pictures, end to end through the CLI as a user runs it: `cnnx train --data <folder>` (an RGB
 * folder of PNGs and JPEGs at 32x32, classes named by their folders), `cnnx export`, the exported model through every
 * CPU runtime path (parity against onnxruntime-node), `cnnx predict` on a colour PNG, and the server's classify route
 * answering the class name.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveSeed } from '../../src/common/index.js';
import { loadDataset, loadUserDataset, type Dataset } from '../../src/data/index.js';
import { compareLogits, paritySet, tfjsLogits, toleranceFor, weightsFromOnnx } from '../../src/export/index.js';
import { getModelSpec, inferenceSpec } from '../../src/models/index.js';
import { inspectOnnx, onnx, openSession } from '../../src/runtime/index.js';
import { openWebSession } from '../../src/runtime/web/index.js';
import { createServer, listen, type CnnxServer } from '../../src/serve/index.js';
import { assignWeights, createNetwork, useBackend } from '../../src/train/index.js';
import { spawnCnnx } from '../helpers/spawn-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Folder names: classes of MNIST digits, sorted by code point as the loader sorts them. */
const CLASSES: Record<string, number> = { one: 1, seven: 7, zero: 0 };

/** Runs the CLI to its end; resolves to its exit code and output. */
function cnnx(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCnnx(args);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** An MNIST digit as a 32x32 colour picture: ink and paper of random colours (so only the shape tells the class). */
async function colourDigit(mnist: Dataset, index: number, random: () => number, format: 'png' | 'jpeg') {
  const gray = mnist.train.pixels.subarray(index * 784, (index + 1) * 784);
  const ink = [random(), random(), random()].map((v) => 80 + v * 175);
  const paper = ink.map((v) => (v + 60 + random() * 80) % 256);
  const rgb = new Uint8Array(784 * 3);
  for (let p = 0; p < 784; p++) {
    const a = gray[p]! / 255;
    for (let k = 0; k < 3; k++) rgb[p * 3 + k] = Math.round(ink[k]! * a + paper[k]! * (1 - a));
  }
  const picture = sharp(rgb, { raw: { width: 28, height: 28, channels: 3 } }).resize(32, 32);
  return format === 'png' ? picture.png().toBuffer() : picture.jpeg({ quality: 95 }).toBuffer();
}

let root: string;
let model: string;
let samplePng: Buffer;
let sampleClass: string;
let dataset: Dataset;
let server: CnnxServer | undefined;

beforeAll(async () => {
  root = await tempDir();
  const mnist = await loadDataset('mnist');
  let draws = 0;
  const random = () => deriveSeed(5, draws++) / 2 ** 32;
  const counts = new Map<string, number>();
  for (let i = 0; i < 4000 && Math.min(...Object.keys(CLASSES).map((c) => counts.get(c) ?? 0)) < 200; i++) {
    const name = Object.keys(CLASSES).find((c) => CLASSES[c] === mnist.train.labels[i]);
    if (name === undefined || (counts.get(name) ?? 0) >= 200) continue;
    const n = counts.get(name) ?? 0;
    counts.set(name, n + 1);
    const part = n < 160 ? 'train' : 'test';
    await mkdir(join(root, 'pics', part, name), { recursive: true });
    const format = n % 2 === 0 ? 'png' : 'jpeg';
    const bytes = await colourDigit(mnist, i, random, format);
    await writeFile(join(root, 'pics', part, name, `${i}.${format === 'png' ? 'png' : 'jpg'}`), bytes);
    if (part === 'test' && format === 'png') [samplePng, sampleClass] = [bytes, name];
  }
  model = join(root, 'models', 'digits-in-colour.onnx');
  await mkdir(join(root, 'models'));
  dataset = await loadUserDataset(join(root, 'pics'));
}, 300_000);
afterAll(async () => {
  await server?.close();
});

describe('your own colour pictures', () => {
  it('train on the folder, choosing the best epoch on validation, then export', async () => {
    const run = join(root, 'run');
    const trained = await cnnx([
      'train',
      '--model',
      'lenet5-relu',
      '--data',
      join(root, 'pics'),
      '--epochs',
      '4',
      '--batch-size',
      '32',
      '--backend',
      'wasm',
      '--out',
      run,
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/data: pics from image folder/);
    expect(trained.stderr).toMatch(/best epoch chosen on validation: 48 training examples held out/);
    expect(trained.stdout).toMatch(/test acc of the chosen weights: (0\.[89]|1\.0)/);
    const exported = await cnnx(['export', '--run', run, '--out', model]);
    expect(exported.code, exported.stderr).toBe(0);
    const signature = inspectOnnx(await readFile(model), model);
    expect(signature).toMatchObject({
      inputShape: [-1, 3, 32, 32],
      labels: ['one', 'seven', 'zero'],
      channels: 3,
      procedure: 'resize',
      dataset: 'pics',
    });
    expect(JSON.parse(signature.metadata['cnnx.metrics']!)).toMatchObject({ selectedOn: 'val' });

    // The pictures moved: export says how to say where they are now, and takes --data.
    await rename(join(root, 'pics'), join(root, 'moved'));
    try {
      const again = join(root, 'models', 'again.onnx');
      const lost = await cnnx(['export', '--run', run, '--out', again]);
      expect(lost.code).toBe(1);
      expect(lost.stderr.trim().split('\n').at(-1)).toMatch(
        /pics: no such file or folder .*; if the run's pictures moved, give their new place with --data/,
      );
      const found = await cnnx(['export', '--run', run, '--out', again, '--data', join(root, 'moved')]);
      expect(found.code, found.stderr).toBe(0);
    } finally {
      await rename(join(root, 'moved'), join(root, 'pics'));
    }
  }, 600_000);

  it('gives the same logits through tfjs, onnxruntime-web WASM and onnxruntime-node', async () => {
    const bytes = await readFile(model);
    const inputs = paritySet(dataset.test, 120);
    expect(inputs.dims).toEqual([120, 3, 32, 32]);
    const session = await openSession(bytes, { ep: 'cpu' });
    const reference = (await session.run(inputs.data, inputs.dims)).data.slice();
    await session.release();
    const web = await openWebSession(bytes);
    const fromWeb = (await web.run(inputs.data, inputs.dims)).data;
    await web.release();
    await useBackend('wasm');
    const spec = inferenceSpec(getModelSpec('lenet5-relu', { input: [3, 32, 32], classes: 3 })).spec;
    const network = createNetwork(spec, 0);
    assignWeights(network, weightsFromOnnx(onnx.ModelProto.decode(bytes), spec), model);
    const fromTfjs = await tfjsLogits(network, inputs.data, inputs.dims);
    network.dispose();
    const tolerance = toleranceFor('fp32-cpu', 'lenet');
    for (const logits of [fromWeb, fromTfjs]) {
      const report = compareLogits(reference, logits, 3, tolerance);
      expect(report.worstRatio).toBeLessThanOrEqual(1);
      expect(report.top1Agreement).toBe(1);
    }
    // The model reads the held-out pictures: what the labels say, for most of them.
    let correct = 0;
    for (let n = 0; n < 120; n++) {
      const row = Array.from(reference.subarray(n * 3, n * 3 + 3));
      if (row.indexOf(Math.max(...row)) === dataset.test.labels[n]) correct++;
    }
    expect(correct / 120).toBeGreaterThan(0.8);
  }, 300_000);

  it('cnnx eval measures the test part the run had, and warns when given other test data', async () => {
    const own = await cnnx(['eval', '--model', model, '--data', join(root, 'pics'), '--json']);
    expect(own.code, own.stderr).toBe(0);
    expect(own.stderr).not.toMatch(/warning/);
    expect(JSON.parse(own.stdout.trim()) as { count: number; accuracy: number }).toMatchObject({ count: 120 });
    const trained = await cnnx([
      'eval',
      '--model',
      model,
      '--data',
      join(root, 'pics'),
      '--test-data',
      join(root, 'pics', 'train'),
      '--json',
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/warning: .* was tested on .*; this test part is .* accuracy is too high/);
  }, 300_000);

  it('cnnx predict and the server name the class of a colour PNG', async () => {
    const file = join(root, 'sample.png');
    await writeFile(file, samplePng);
    const predicted = await cnnx(['predict', '--model', model, '--json', file]);
    expect(predicted.code, predicted.stderr).toBe(0);
    const answer = JSON.parse(predicted.stdout.trim().split('\n')[0]!) as { class: string };
    expect(answer.class).toBe(sampleClass);

    server = await createServer({ model: join(root, 'models'), ep: 'cpu', watch: false });
    const base = await listen(server, { host: '127.0.0.1', port: 0 });
    const response = await fetch(`${base}/v1/models/digits-in-colour/classify`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: new Uint8Array(samplePng),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ class: sampleClass });
  }, 300_000);
});
