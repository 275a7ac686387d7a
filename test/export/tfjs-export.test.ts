/**
 * `cnnx export --tfjs-model`: TensorFlow.js Layers models built here with the layers API, saved with tfjs's own
 * `model.save` (as tfjs-node's file:// handler lays the files out), exported, and run in onnxruntime-node against
 * tfjs on seeded inputs. One tiny model per supported layer class (a test fails when a class has none), a
 * functional model with a residual Add and a Concatenate, the errors, and the notebook's LeNet-5 trained for an
 * epoch with model.fit on MNIST, exported with the CLI and served.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/index.js';
import { limitSplit, loadDataset, type Dataset } from '../../src/data/index.js';
import { compareLogits, exportTfjsModel, TFJS_LAYER_CLASSES } from '../../src/export/index.js';
import { evaluateSession, inspectOnnx, METADATA_KEYS, onnx, openSession } from '../../src/runtime/index.js';
import { createServer } from '../../src/serve/index.js';
import { useBackend } from '../../src/train/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { saveLayersModel } from './save-tfjs-model.js';

let root: string;
beforeAll(async () => {
  await useBackend('wasm');
  root = await tempDir('cnnx-tfjs-');
});

/** Seeded values for every weight (positive variances), so that folds and permutations are not hidden by 0s and 1s. */
function randomiseWeights(model: tf.LayersModel, seed: number): void {
  model.setWeights(
    model.weights.map((weight, i) =>
      weight.name.endsWith('moving_variance')
        ? tf.randomUniform(weight.shape as number[], 0.5, 2, 'float32', seed + i)
        : tf.randomUniform(weight.shape as number[], -1, 1, 'float32', seed + i),
    ),
  );
}

/**
 * Every node reads only tensors defined before it (graph input, initializers, earlier nodes' outputs): the
 * structural part of onnx.checker, which is not available here.
 */
function undefinedInputs(bytes: Uint8Array): string[] {
  const graph = onnx.ModelProto.decode(bytes).graph!;
  const defined = new Set([...graph.input!.map((i) => i.name!), ...graph.initializer!.map((t) => t.name!)]);
  const missing: string[] = [];
  for (const node of graph.node!) {
    for (const input of node.input!) if (input !== '' && !defined.has(input)) missing.push(`${node.name}: ${input}`);
    for (const output of node.output!) defined.add(output);
  }
  if (!graph.node!.some((node) => node.output!.includes(graph.output![0]!.name!))) missing.push('graph output');
  return missing;
}

/** tfjs's and onnxruntime-node's outputs for the same seeded inputs ([N, H, W, C] for tfjs, [N, C, H, W] for ORT). */
async function bothOutputs(model: tf.LayersModel, bytes: Uint8Array, count = 8) {
  const [, h, w, c] = model.inputs[0]!.shape as number[];
  const nhwc = tf.randomUniform([count, h!, w!, c!], -1, 2, 'float32', 99);
  const expected = (await (model.predict(nhwc) as tf.Tensor).data()) as Float32Array;
  const nchw = (await nhwc.transpose([0, 3, 1, 2]).data()) as Float32Array;
  nhwc.dispose();
  const session = await openSession(bytes, { ep: 'cpu' });
  const { data, dims } = await session.run(nchw, [count, c!, h!, w!]);
  await session.release();
  return { expected, actual: data, classes: dims[1]! };
}

interface LayerCase {
  name: string;
  /** The layer classes this model exercises. */
  covers: string[];
  build(): tf.LayersModel;
}

const seq = (layers: tf.layers.Layer[]) => tf.sequential({ layers });
const head = (classes = 5) => [tf.layers.flatten(), tf.layers.dense({ units: classes })];

const CASES: LayerCase[] = [
  {
    name: 'Conv2D: 3 channels, same padding with stride 2 on an odd size, no bias; dilation 2, valid, relu',
    covers: ['Conv2D'],
    build: () =>
      seq([
        tf.layers.conv2d({
          inputShape: [11, 9, 3],
          filters: 4,
          kernelSize: [3, 2],
          strides: 2,
          padding: 'same',
          useBias: false,
        }),
        tf.layers.conv2d({ filters: 5, kernelSize: 2, dilationRate: 2, activation: 'relu' }),
        ...head(),
      ]),
  },
  {
    name: 'InputLayer, DepthwiseConv2D (multiplier 2, stride 2, same) + BatchNormalization folded, ReLU(max 6)',
    covers: ['InputLayer', 'DepthwiseConv2D', 'BatchNormalization', 'ReLU'],
    build: () =>
      seq([
        tf.layers.inputLayer({ inputShape: [9, 9, 2] }),
        tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same' }),
        tf.layers.batchNormalization({ epsilon: 0.01 }),
        tf.layers.reLU({ maxValue: 6 }),
        ...head(),
      ]),
  },
  {
    name: 'SeparableConv2D (tfjs saves no depth_multiplier, so 1) + BatchNormalization folded into the pointwise kernel, LeakyReLU, ELU',
    covers: ['SeparableConv2D', 'BatchNormalization', 'LeakyReLU', 'ELU'],
    build: () =>
      seq([
        tf.layers.separableConv2d({
          inputShape: [8, 8, 3],
          filters: 6,
          kernelSize: 3,
          useBias: false,
        }),
        tf.layers.batchNormalization({ scale: false }),
        tf.layers.leakyReLU({ alpha: 0.2 }),
        tf.layers.elu(),
        ...head(),
      ]),
  },
  {
    name: 'BatchNormalization not folded (after an activation), on a map and on flattened features',
    covers: ['BatchNormalization', 'Flatten', 'Dense'],
    build: () =>
      seq([
        tf.layers.conv2d({ inputShape: [6, 5, 2], filters: 3, kernelSize: 3, activation: 'tanh' }),
        tf.layers.batchNormalization(),
        tf.layers.flatten(),
        tf.layers.batchNormalization({ center: false }),
        tf.layers.dense({ units: 5 }),
      ]),
  },
  {
    name: 'MaxPooling2D and AveragePooling2D, same padding on odd sizes and valid with strides',
    covers: ['MaxPooling2D', 'AveragePooling2D'],
    build: () =>
      seq([
        tf.layers.maxPooling2d({ inputShape: [9, 7, 2], poolSize: 3, strides: 2, padding: 'same' }),
        tf.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same' }),
        tf.layers.averagePooling2d({ poolSize: [2, 3], strides: [1, 2] }),
        ...head(),
      ]),
  },
  {
    name: 'GlobalAveragePooling2D and GlobalMaxPooling2D',
    covers: ['GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'Concatenate'],
    build: () => {
      const input = tf.input({ shape: [6, 6, 4] });
      const conv = tf.layers.conv2d({ filters: 3, kernelSize: 3 }).apply(input) as tf.SymbolicTensor;
      const avg = tf.layers.globalAveragePooling2d({}).apply(conv) as tf.SymbolicTensor;
      const max = tf.layers.globalMaxPooling2d({}).apply(conv) as tf.SymbolicTensor;
      const both = tf.layers.concatenate().apply([avg, max]) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 4 }).apply(both) as tf.SymbolicTensor });
    },
  },
  {
    name: 'Dense on a feature map (a 1x1 conv), Dropout dropped, Dense with softmax',
    covers: ['Dense', 'Dropout'],
    build: () =>
      seq([
        tf.layers.dense({ inputShape: [4, 3, 2], units: 3, activation: 'relu' }),
        tf.layers.dropout({ rate: 0.5 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 6, activation: 'softmax' }),
      ]),
  },
  {
    name: 'Reshape: a one-channel map to features, features to a one-channel map, and pooled channels to 1x1xC',
    covers: ['Reshape', 'GlobalAveragePooling2D'],
    build: () =>
      seq([
        tf.layers.reshape({ inputShape: [4, 4, 1], targetShape: [16] }),
        tf.layers.dense({ units: 16 }),
        tf.layers.reshape({ targetShape: [4, 4, 1] }),
        tf.layers.conv2d({ filters: 3, kernelSize: 2 }),
        tf.layers.globalAveragePooling2d({}),
        tf.layers.reshape({ targetShape: [1, 1, 3] }),
        tf.layers.conv2d({ filters: 4, kernelSize: 1 }),
        ...head(),
      ]),
  },
  {
    name: 'ZeroPadding2D (asymmetric) and Rescaling (scale and offset)',
    covers: ['ZeroPadding2D', 'Rescaling'],
    build: () =>
      seq([
        tf.layers.rescaling({ inputShape: [5, 6, 2], scale: 1 / 255, offset: -0.5 }),
        tf.layers.zeroPadding2d({
          padding: [
            [1, 2],
            [0, 3],
          ],
        }),
        tf.layers.conv2d({ filters: 3, kernelSize: 3 }),
        ...head(),
      ]),
  },
  {
    name: 'Softmax layer over the classes',
    covers: ['Softmax'],
    build: () =>
      seq([tf.layers.flatten({ inputShape: [3, 3, 2] }), tf.layers.dense({ units: 4 }), tf.layers.softmax()]),
  },
  {
    name: 'functional: a residual Add and a Concatenate over channels',
    covers: ['InputLayer', 'Add', 'Concatenate', 'Conv2D', 'Activation'],
    build: () => {
      const input = tf.input({ shape: [7, 7, 3] });
      const stem = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
      const branch = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(stem);
      const residual = tf.layers.add().apply([stem, branch as tf.SymbolicTensor]) as tf.SymbolicTensor;
      const joined = tf.layers.concatenate().apply([residual, input]) as tf.SymbolicTensor;
      const activated = tf.layers.activation({ activation: 'relu' }).apply(joined) as tf.SymbolicTensor;
      const flat = tf.layers.flatten().apply(activated) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 5 }).apply(flat) as tf.SymbolicTensor });
    },
  },
  {
    name: 'Flatten with data_format channels_first: tfjs moves axis 1 last before it flattens, the Dense reads that order',
    covers: ['Flatten', 'Dense'],
    build: () =>
      seq([
        // [2, 3, 4] maps: height, width and channels all differ, so no two axes can be mistaken for each other.
        tf.layers.conv2d({ inputShape: [4, 5, 3], filters: 4, kernelSize: 3 }),
        tf.layers.flatten({ dataFormat: 'channelsFirst' }),
        tf.layers.dense({ units: 3 }),
      ]),
  },
  {
    name: 'ZeroPadding2D then MaxPooling2D: negative windows at the border give 0, whatever ONNX Runtime fuses',
    covers: ['ZeroPadding2D', 'MaxPooling2D'],
    build: () =>
      seq([
        tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 3, kernelSize: 1 }),
        tf.layers.zeroPadding2d({ padding: 1 }),
        tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }),
        tf.layers.zeroPadding2d({
          padding: [
            [1, 0],
            [0, 1],
          ],
        }),
        tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }),
        ...head(3),
      ]),
  },
  {
    name: 'ZeroPadding2D as wide as the MaxPooling2D window after it, and read by two layers',
    covers: ['ZeroPadding2D', 'MaxPooling2D', 'Add'],
    build: () => {
      const input = tf.input({ shape: [6, 6, 1] });
      const conv = tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(input) as tf.SymbolicTensor;
      const padded = tf.layers.zeroPadding2d({ padding: 2 }).apply(conv) as tf.SymbolicTensor;
      const wide = tf.layers.maxPooling2d({ poolSize: 2 }).apply(padded) as tf.SymbolicTensor;
      const shared = tf.layers.zeroPadding2d({ padding: 1 }).apply(conv) as tf.SymbolicTensor;
      const a = tf.layers.maxPooling2d({ poolSize: 2, strides: 1 }).apply(shared) as tf.SymbolicTensor;
      const b = tf.layers.averagePooling2d({ poolSize: 2, strides: 1 }).apply(shared) as tf.SymbolicTensor;
      const sum = tf.layers.add().apply([a, b]) as tf.SymbolicTensor;
      const flatten = (t: tf.SymbolicTensor) => tf.layers.flatten().apply(t) as tf.SymbolicTensor;
      const flat = tf.layers.concatenate().apply([flatten(wide), flatten(sum)]) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3 }).apply(flat) as tf.SymbolicTensor });
    },
  },
  {
    name: "functional: layers named 'input' and 'logits' (the graph's own names) before the output",
    covers: ['Conv2D', 'Dense', 'Activation'],
    build: () => {
      const input = tf.input({ shape: [5, 5, 1] });
      const conv = tf.layers.conv2d({ filters: 2, kernelSize: 3, name: 'input' }).apply(input) as tf.SymbolicTensor;
      const flat = tf.layers.flatten().apply(conv) as tf.SymbolicTensor;
      const logits = tf.layers.dense({ units: 3, name: 'logits' }).apply(flat) as tf.SymbolicTensor;
      const probs = tf.layers.activation({ activation: 'softmax', name: 'probs' }).apply(logits) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: probs });
    },
  },
  ...(
    [
      'relu',
      'relu6',
      'elu',
      'selu',
      'sigmoid',
      'hardSigmoid',
      'tanh',
      'softmax',
      'softplus',
      'softsign',
      'linear',
    ] as const
  ).map((activation): LayerCase => ({
    name: `Activation ${activation} on a feature map`,
    covers: ['Activation'],
    build: () =>
      seq([
        tf.layers.conv2d({ inputShape: [5, 5, 2], filters: 3, kernelSize: 2 }),
        tf.layers.activation({ activation }),
        ...head(),
      ]),
  })),
];

describe('cnnx export --tfjs-model: one tiny model per supported layer class', () => {
  it('has a case for every supported layer class', () => {
    const covered = new Set(CASES.flatMap((c) => c.covers));
    expect(TFJS_LAYER_CLASSES.filter((name) => !covered.has(name))).toEqual([]);
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_, layerCase, i) => {
    const model = layerCase.build();
    randomiseWeights(model, 100 * i);
    const dir = await saveLayersModel(model, join(root, `case-${i}`));
    const out = join(root, `case-${i}.onnx`);
    const result = await exportTfjsModel({ model: dir, out, parityCount: 16 });
    expect(result.parity.withinTolerance).toBe(true);
    const bytes = await readFile(out);
    const graph = onnx.ModelProto.decode(bytes).graph!;
    expect(graph.node!.map((n) => n.opType)).not.toContain('Transpose');
    expect(undefinedInputs(bytes)).toEqual([]);
    // Checked again here, on other inputs than the exporter's own check.
    const { expected, actual, classes } = await bothOutputs(model, bytes);
    const report = compareLogits(expected, actual, classes);
    expect(
      report.worstRatio,
      `max abs diff ${report.maxAbsDiff} at |output| <= ${report.maxAbsLogit}`,
    ).toBeLessThanOrEqual(1);
    expect(report.top1Agreement).toBe(1);
    model.dispose();
  });

  it("exports a model saved with its optimizer's state (includeOptimizer), leaving that state out", async () => {
    const model = seq([tf.layers.conv2d({ inputShape: [5, 5, 1], filters: 2, kernelSize: 3 }), ...head(3)]);
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    const [x, y] = [tf.randomUniform([4, 5, 5, 1], 0, 1, 'float32', 3), tf.oneHot([0, 1, 2, 0], 3)];
    await model.fit(x, y, { epochs: 1, verbose: 0 });
    tf.dispose([x, y]);
    const dir = await saveLayersModel(model, join(root, 'with-optimizer'), { includeOptimizer: true });
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as {
      weightsManifest: { weights: { group?: string }[] }[];
    };
    expect(json.weightsManifest[0]!.weights.some((weight) => weight.group === 'optimizer')).toBe(true);
    const result = await exportTfjsModel({ model: dir, out: join(root, 'with-optimizer.onnx') });
    expect(result.parity.withinTolerance).toBe(true);
    model.dispose();
  });

  it("exports a 'same' convolution whose stride exceeds its kernel, which tfjs-backend-wasm computes as zeros, checked against tfjs cpu", async () => {
    const model = seq([
      tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, strides: 4, padding: 'same' }),
      ...head(3),
    ]);
    randomiseWeights(model, 11);
    const logged: string[] = [];
    const out = join(root, 'wide-stride.onnx');
    const result = await exportTfjsModel({
      model: await saveLayersModel(model, join(root, 'wide-stride')),
      out,
      log: (line) => logged.push(line),
    });
    expect(result.parity.withinTolerance).toBe(true);
    expect(logged.join('\n')).toMatch(/tfjs cpu agrees: checked against tfjs cpu/);
    await useBackend('cpu');
    try {
      const { expected, actual, classes } = await bothOutputs(model, await readFile(out));
      expect(compareLogits(expected, actual, classes).worstRatio).toBeLessThanOrEqual(1);
    } finally {
      await useBackend('wasm');
    }
    model.dispose();
  });

  it('folds a batch norm after a conv: no BatchNormalization node, the same numbers', async () => {
    const model = CASES[1]!.build();
    randomiseWeights(model, 7);
    const out = join(root, 'folded.onnx');
    await exportTfjsModel({ model: await saveLayersModel(model, join(root, 'folded')), out });
    const ops = onnx.ModelProto.decode(await readFile(out)).graph!.node!.map((n) => n.opType);
    expect(ops).toEqual(['Conv', 'Clip', 'Flatten', 'Gemm']);
  });
});

describe('cnnx export --tfjs-model: what it refuses, writing nothing', () => {
  it('names an unsupported layer with its position and class', async () => {
    const model = seq([
      tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3 }),
      tf.layers.upSampling2d({ size: [2, 2] }),
      ...head(),
    ]);
    const dir = await saveLayersModel(model, join(root, 'unsupported'));
    const out = join(root, 'unsupported.onnx');
    const error = await exportTfjsModel({ model: dir, out }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'EXPORT_UNKNOWN_LAYER' });
    expect((error as Error).message).toMatch(
      /model\.json: layer 1 "up_sampling2d_UpSampling2D\d+" \(UpSampling2D\) cannot be exported to ONNX; supported layer classes: InputLayer, Conv2D, /,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a Reshape that would need a Transpose in a channels-first graph, naming it', async () => {
    const model = seq([tf.layers.reshape({ inputShape: [2, 3, 4], targetShape: [4, 3, 2] }), ...head()]);
    const out = join(root, 'transpose.onnx');
    const error = await exportTfjsModel({ model: await saveLayersModel(model, join(root, 'transpose')), out }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'EXPORT_UNSUPPORTED' });
    expect((error as Error).message).toMatch(
      /layer 0 "reshape_Reshape\d+" \(Reshape\): reshaping \[4, 2, 3\] to \[4, 3, 2\] needs a Transpose/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a missing or short weight shard, and a folder without model.json', async () => {
    const dir = await saveLayersModel(CASES[0]!.build(), join(root, 'shards'));
    const out = join(root, 'shards.onnx');
    const bin = await readFile(join(dir, 'weights.bin'));
    await writeFile(join(dir, 'weights.bin'), bin.subarray(0, bin.length - 4));
    await expect(exportTfjsModel({ model: dir, out })).rejects.toMatchObject({
      code: 'TFJS_MODEL_INVALID',
      message: expect.stringMatching(/the weight shards hold \d+ bytes, but the manifest's 5 weights need \d+/),
    });
    await rm(join(dir, 'weights.bin'));
    await expect(exportTfjsModel({ model: dir, out })).rejects.toMatchObject({
      code: 'TFJS_MODEL_INVALID',
      message: expect.stringMatching(/weight shard weights.bin cannot be read \(ENOENT\)/),
    });
    await expect(exportTfjsModel({ model: root, out })).rejects.toMatchObject({
      code: 'TFJS_MODEL_INVALID',
      message: `${join(root, 'model.json')}: cannot read (no such file)`,
    });
    expect(existsSync(out)).toBe(false);
  });
});

describe('cnnx export --tfjs-model: weights that do not match the topology, and settings tfjs reads otherwise', () => {
  /** model.json as these edits see it. */
  interface ModelJson {
    weightsManifest: { paths?: string[]; weights?: { name: string; shape?: number[]; dtype?: string }[] }[];
    modelTopology: { config: { layers: { config: Record<string, unknown> }[] } };
  }
  /** Saves `model`, lets `edit` change its model.json, and returns the export's error (nothing may be written). */
  async function refusal(name: string, model: tf.LayersModel, edit?: (json: ModelJson) => unknown) {
    const dir = await saveLayersModel(model, join(root, name));
    if (edit) {
      const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelJson;
      const replaced = edit(json);
      await writeFile(join(dir, 'model.json'), JSON.stringify(replaced === undefined ? json : replaced));
    }
    const out = join(root, `${name}.onnx`);
    const error = await exportTfjsModel({ model: dir, out }).catch((e: unknown) => e);
    expect(existsSync(out)).toBe(false);
    expect(error).toBeInstanceOf(Error);
    return error as Error & { code: string };
  }
  const small = () =>
    seq([
      tf.layers.conv2d({ inputShape: [5, 5, 1], filters: 2, kernelSize: 3 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3 }),
    ]);

  it('refuses a manifest weight no layer reads, and a missing bias that use_bias promises', async () => {
    const missingBias = await refusal('missing-bias', small(), (json) => {
      json.weightsManifest[0]!.weights![3]!.name = 'elsewhere/bias';
    });
    expect(missingBias).toMatchObject({ code: 'TFJS_MODEL_INVALID' });
    expect(missingBias.message).toMatch(/has no weight dense_Dense\d+\/bias/);
    // A weight named for a layer that does not exist: no layer reads it.
    const unread = await refusal('unread-weight', small(), (json) => {
      json.weightsManifest[0]!.weights!.push({ name: 'elsewhere/kernel', shape: [0], dtype: 'float32' });
    });
    expect(unread).toMatchObject({ code: 'TFJS_MODEL_INVALID' });
    expect(unread.message).toMatch(
      /the weights manifest lists elsewhere\/kernel, which no layer of the topology reads: the weights do not match/,
    );
    // A bias the config says is not there: tfjs's own loader names it.
    const noBias = await refusal('no-bias', small(), (json) => {
      json.modelTopology.config.layers[0]!.config.use_bias = false;
    });
    expect(noBias.message).toMatch(
      /TensorFlow\.js cannot load this model, so the export cannot be checked against it: .*conv2d_Conv2D\d+\/bias/,
    );
  });

  it('refuses malformed model.json structures with what is wrong, not a TypeError', async () => {
    expect((await refusal('null-json', small(), () => null)).message).toMatch(
      /model\.json: holds null, not a saved model/,
    );
    const noShape = await refusal('no-shape', small(), (json) => {
      delete json.weightsManifest[0]!.weights![0]!.shape;
    });
    expect(noShape.message).toMatch(
      /weightsManifest\[0\]\.weights\[0\] should be \{ name, shape: \[whole numbers\], dtype \}/,
    );
    const noPaths = await refusal('no-paths', small(), (json) => {
      json.weightsManifest = [{}];
    });
    expect(noPaths.message).toMatch(
      /weightsManifest\[0\]\.paths should list the weight shards' file names, got undefined/,
    );
  });

  it('says what a file is when it is no Layers model: a graph model, a Keras 3 model, weights of an unknown dtype or holding NaN, a weights file', async () => {
    const graphModel = await refusal('graph-model', small(), () => ({
      format: 'graph-model',
      modelTopology: { node: [] },
      weightsManifest: [],
    }));
    expect(graphModel.message).toMatch(
      /is a TensorFlow\.js graph model \(tf\.loadGraphModel.*cnnx exports Layers models/,
    );
    const keras3 = await refusal('keras-3', small(), (json) => {
      const first = json.modelTopology.config.layers[0]!.config;
      first.batch_shape = first.batch_input_shape;
      delete first.batch_input_shape;
    });
    expect(keras3.message).toMatch(
      /has Keras 3's batch_shape, a format TensorFlow\.js cannot load.*tensorflowjs_converter/,
    );
    const input = tf.input({ shape: [5, 5, 1] });
    const functional = tf.model({
      inputs: input,
      outputs: tf.layers.dense({ units: 2 }).apply(tf.layers.flatten().apply(input)) as tf.SymbolicTensor,
    });
    const keras3Functional = await refusal('keras-3-functional', functional, (json) => {
      const layers = json.modelTopology.config.layers as { config: Record<string, unknown>; inbound_nodes?: unknown }[];
      for (const layer of layers) {
        if (layer.config.batch_input_shape) {
          layer.config.batch_shape = layer.config.batch_input_shape;
          delete layer.config.batch_input_shape;
        }
        // Keras 3 writes a layer's inputs as call arguments.
        layer.inbound_nodes = [{ args: [{ class_name: '__keras_tensor__' }], kwargs: {} }];
      }
    });
    expect(keras3Functional.message).toMatch(/has Keras 3's batch_shape/);
    const float64 = await refusal('float64', small(), (json) => {
      json.weightsManifest[0]!.weights![1]!.dtype = 'float64';
    });
    expect(float64).toMatchObject({
      code: 'TFJS_MODEL_INVALID',
      message: expect.stringMatching(/its weights cannot be decoded/),
    });
    const model = small();
    model.setWeights(model.getWeights().map((w, i) => (i === 0 ? w.mul(Number.NaN) : w)));
    const nan = await refusal('nan', model);
    expect(nan.message).toMatch(/weight .*kernel holds NaN or infinite values \(a training run that diverged\?\)/);
    const dir = await saveLayersModel(small(), join(root, 'weights-file'));
    await expect(
      exportTfjsModel({ model: join(dir, 'weights.bin'), out: join(root, 'weights-file.onnx') }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(/is a binary file, not a model\.json/),
    });
  });

  it('refuses --dataset for a model that does not take its pictures, and leaves no folder after a failed export', async () => {
    const dir = await saveLayersModel(
      seq([
        tf.layers.conv2d({ inputShape: [28, 20, 1], filters: 2, kernelSize: 3 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10 }),
      ]),
      join(root, 'narrow'),
    );
    const out = join(root, 'made-for-it', 'deeper', 'narrow.onnx');
    await expect(exportTfjsModel({ model: dir, out, dataset: 'mnist' })).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringMatching(
        /--dataset mnist: its pictures are square and gray .*, but the model takes 1x28x20 inputs/,
      ),
    });
    // Weights so large that tfjs's own outputs overflow: refused while the written file is checked.
    const huge = small();
    huge.setWeights(huge.getWeights().map((w) => tf.fill(w.shape, 1e30)));
    await expect(
      exportTfjsModel({ model: await saveLayersModel(huge, join(root, 'for-folder')), out }),
    ).rejects.toMatchObject({
      code: 'TFJS_MODEL_INVALID',
      message: expect.stringMatching(/TensorFlow\.js itself gives NaN or infinite outputs.*overflows float32/),
    });
    expect(existsSync(join(root, 'made-for-it'))).toBe(false);
  });

  it('refuses a SeparableConv2D whose kernel has a multiplier its saved config lost, saying how to fix it', async () => {
    const model = seq([
      tf.layers.separableConv2d({ inputShape: [6, 6, 3], filters: 4, kernelSize: 3, depthMultiplier: 2 }),
      ...head(),
    ]);
    const error = await refusal('separable-multiplier', model);
    expect(error).toMatchObject({ code: 'TFJS_MODEL_INVALID' });
    expect(error.message).toMatch(
      /\(SeparableConv2D\): its depthwise_kernel has a channel multiplier of 2, but config depth_multiplier is 1 .*add "depth_multiplier": 2/,
    );
  });

  it('refuses what tfjs computes otherwise than its config says: a dilated DepthwiseConv2D, a negative Concatenate axis', async () => {
    const dilated = seq([
      tf.layers.depthwiseConv2d({ inputShape: [7, 7, 2], kernelSize: 3, dilationRate: 2, padding: 'same' }),
      ...head(),
    ]);
    const error = await refusal('dilated-depthwise', dilated);
    expect(error).toMatchObject({ code: 'EXPORT_UNSUPPORTED' });
    expect(error.message).toMatch(
      /\(DepthwiseConv2D\): dilation_rate above 1: TensorFlow\.js computes this layer without dilation/,
    );
    const input = tf.input({ shape: [4, 4, 2] });
    const a = tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(input) as tf.SymbolicTensor;
    const joined = tf.layers.concatenate({ axis: -3 }).apply([a, input]) as tf.SymbolicTensor;
    const concat = tf.model({
      inputs: input,
      outputs: tf.layers.dense({ units: 3 }).apply(tf.layers.flatten().apply(joined)) as tf.SymbolicTensor,
    });
    const axis = await refusal('concat-axis', concat);
    expect(axis.message).toMatch(
      /\(Concatenate\): axis -3: TensorFlow\.js concatenates on the last axis for any negative axis/,
    );
  });

  it('names a nested model as such', async () => {
    const inner = seq([tf.layers.conv2d({ inputShape: [5, 5, 1], filters: 2, kernelSize: 3 }), tf.layers.flatten()]);
    const error = await refusal('nested', seq([inner, tf.layers.dense({ units: 3 })]));
    expect(error).toMatchObject({ code: 'EXPORT_UNSUPPORTED' });
    expect(error.message).toMatch(/layer 0 "sequential_\d+" \(Sequential\) is a whole model used as a layer/);
  });

  it('writes nothing for --triton with a model that is not an image model, nor under a file', async () => {
    const dir = await saveLayersModel(
      seq([tf.layers.dense({ inputShape: [6], units: 4 }), tf.layers.dense({ units: 2 })]),
      join(root, 'flat-mlp'),
    );
    const out = join(root, 'flat-out', 'flat.onnx');
    const triton = join(root, 'flat-triton');
    await expect(exportTfjsModel({ model: dir, out, triton })).rejects.toMatchObject({ code: 'BAD_OPTION' });
    expect(existsSync(join(root, 'flat-out'))).toBe(false);
    expect(existsSync(triton)).toBe(false);
    await writeFile(join(root, 'a-file'), '');
    await expect(exportTfjsModel({ model: dir, out: join(root, 'a-file', 'flat.onnx') })).rejects.toMatchObject({
      code: 'WRITE_FAILED',
      message: expect.stringMatching(/cannot write .*a-file\/flat\.onnx: part of the path is a file, not a folder/),
    });
  });
});

describe("the notebook's LeNet-5 built with tf.sequential(), trained with model.fit, exported and served", () => {
  let mnist: Dataset;
  let model: tf.Sequential;
  let dir: string;
  const TRAIN = 4096;
  const TEST = 1000;
  beforeAll(async () => {
    mnist = await loadDataset('mnist');
    // Xavier-uniform (Glorot) weights as in the notebook, seeded so that the run is the same every time.
    const init = (seed: number) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed }) });
    model = tf.sequential({
      layers: [
        tf.layers.conv2d({
          ...init(1),
          inputShape: [28, 28, 1],
          filters: 6,
          kernelSize: 5,
          padding: 'same',
          activation: 'sigmoid',
        }),
        tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
        tf.layers.conv2d({ ...init(2), filters: 16, kernelSize: 5, activation: 'sigmoid' }),
        tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ ...init(3), units: 120, activation: 'sigmoid' }),
        tf.layers.dense({ ...init(4), units: 84, activation: 'sigmoid' }),
        tf.layers.dense({ ...init(5), units: 10 }),
      ],
    });
    model.compile({
      optimizer: tf.train.adam(0.01),
      loss: (labels: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, logits),
    });
    const images = (split: Dataset['train'], count: number) =>
      tf.tensor4d(
        Float32Array.from(split.pixels.subarray(0, count * 784), (v) => v / 255),
        [count, 28, 28, 1],
      );
    const xs = images(mnist.train, TRAIN);
    const ys = tf.oneHot(tf.tensor1d(Array.from(mnist.train.labels.subarray(0, TRAIN)), 'int32'), 10);
    await model.fit(xs, ys, { epochs: 1, batchSize: 32, shuffle: false, verbose: 0 });
    tf.dispose([xs, ys]);
    dir = await saveLayersModel(model, join(root, 'lenet5-tfjs'));
  }, 300_000);
  afterAll(() => model?.dispose());

  it('exports with one command, and ONNX Runtime gets the accuracy tfjs gets on MNIST', async () => {
    const out = join(root, 'digits.onnx');
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void lines.push(parts.join(' ')));
    vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void lines.push(parts.join(' ')));
    const labels = mnist.classes.join(',');
    const code = await main([
      'node',
      'cnnx',
      'export',
      '--tfjs-model',
      dir,
      '--out',
      out,
      '--labels',
      labels,
      '--dataset',
      'mnist',
    ]);
    vi.restoreAllMocks();
    expect(code, lines.join('\n')).toBe(0);
    expect(lines.join('\n')).toMatch(
      /parity \(tfjs wasm vs onnxruntime-node cpu, 32 seeded random inputs \(uniform in \[0, 1\], then normal\)\).*top-1 agreement 100.0%/,
    );

    const bytes = await readFile(out);
    const signature = inspectOnnx(bytes, out);
    expect(signature.inputShape).toEqual([-1, 1, 28, 28]);
    expect(signature.outputShape).toEqual([-1, 10]);
    expect(signature.labels).toEqual(mnist.classes);
    expect(signature.dataset).toBe('mnist');
    expect(signature.metadata[METADATA_KEYS.model]).toBe(model.name);

    const test = limitSplit(mnist.test, TEST);
    const session = await openSession(bytes, { ep: 'cpu' });
    const onnxResult = await evaluateSession(session, test, 28);
    await session.release();
    const xs = tf.tensor4d(
      Float32Array.from(test.pixels.subarray(0, TEST * 784), (v) => v / 255),
      [TEST, 28, 28, 1],
    );
    const predicted = (model.predict(xs) as tf.Tensor).argMax(-1);
    const labelsOf = Array.from(test.labels.subarray(0, TEST));
    const tfjsCorrect = Array.from(await predicted.data()).filter((p, i) => p === labelsOf[i]).length;
    tf.dispose([xs, predicted]);
    expect(onnxResult.accuracy).toBe(tfjsCorrect / TEST);
    expect(onnxResult.accuracy).toBeGreaterThan(0.3); // learned something (chance is 0.1); the claim is the equality above
  });

  it('is served like any cnnx model', async () => {
    const served = join(root, 'served');
    await exportTfjsModel({ model: dir, out: join(served, 'digits.onnx'), dataset: 'mnist' });
    const server = await createServer({ model: served, ep: 'cpu', watch: false, maxQueueDelayMs: 1 });
    try {
      const image = Float32Array.from(mnist.test.pixels.subarray(0, 784), (v) => v / 255);
      const answer = await server.app.inject({
        method: 'POST',
        url: '/v2/models/digits/infer',
        payload: { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(image) }] },
      });
      expect(answer.statusCode, answer.body).toBe(200);
      const logits = answer.json().outputs[0].data as number[];
      const expected = (await (model.predict(tf.tensor4d(image, [1, 28, 28, 1])) as tf.Tensor).data()) as Float32Array;
      const report = compareLogits(expected, Float32Array.from(logits), 10);
      expect(report.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    } finally {
      await server.close();
    }
  });
});

describe('cnnx export on the command line: --run or --tfjs-model', () => {
  async function cnnx(...args: string[]): Promise<{ code: number; stderr: string }> {
    const stderr: string[] = [];
    vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void stderr.push(parts.join(' ')));
    // commander writes its own usage errors to stderr directly.
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (stderr.push(String(chunk).trim()), true));
    const code = await main(['node', 'cnnx', ...args]);
    vi.restoreAllMocks();
    return { code, stderr: stderr.join('\n') };
  }

  it('exports a batch norm whose statistics amplify (large mean, small variance) within the converted tolerance', async () => {
    const model = seq([
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3 }),
      tf.layers.batchNormalization({ epsilon: 1e-3 }),
      ...head(10),
    ]);
    // gamma, beta, moving mean ~ N(0, 5), moving variance in [0.01, 0.1]: the fold scales the conv up to ~20x, and
    // the dense layer sums 2,704 such features, so float32 rounding differs between folded and unfolded order.
    model.layers[1]!.setWeights([
      tf.randomUniform([4], 0.5, 2, 'float32', 1),
      tf.randomNormal([4], 0, 1, 'float32', 2),
      tf.randomNormal([4], 0, 5, 'float32', 3),
      tf.randomUniform([4], 0.01, 0.1, 'float32', 4),
    ]);
    const dir = await saveLayersModel(model, join(root, 'amplifying-bn'));
    const out = join(root, 'amplifying-bn.onnx');
    const { code, stderr } = await cnnx('export', '--tfjs-model', dir, '--out', out);
    expect(code, stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  });

  it('names an unsupported data_format instead of blaming the channels it misreads', async () => {
    const model = seq([
      tf.layers.conv2d({ inputShape: [1, 8, 8], filters: 2, kernelSize: 3, dataFormat: 'channelsFirst' }),
      ...head(3),
    ]);
    const dir = await saveLayersModel(model, join(root, 'channels-first'));
    const { code, stderr } = await cnnx('export', '--tfjs-model', dir, '--out', join(root, 'channels-first.onnx'));
    expect(code).toBe(1);
    expect(stderr).toMatch(/\(Conv2D\).*data_format channels_first; cnnx exports channels_last models/);
  });

  it('asks for one of them when neither is given', async () => {
    const { code, stderr } = await cnnx('export', '--out', join(root, 'none.onnx'));
    expect(code).toBe(1);
    expect(stderr).toBe('cnnx: give --run <dir> (a training run) or --tfjs-model <dir|model.json>');
  });

  it('refuses both at once, and labels that do not match the outputs', async () => {
    const both = await cnnx('export', '--run', root, '--tfjs-model', root, '--out', join(root, 'both.onnx'));
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/option '-r, --run <dir>' cannot be used with option '--tfjs-model <dir\|model.json>'/);
    const model = seq([tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 3 })]);
    const dir = await saveLayersModel(model, join(root, 'three'));
    const out = join(root, 'three.onnx');
    const labels = await cnnx('export', '--tfjs-model', dir, '--out', out, '--labels', 'a,b');
    expect(labels.code).toBe(1);
    expect(labels.stderr).toBe('cnnx: --labels has 2 names, but the model has 3 outputs');
    const dataset = await cnnx('export', '--tfjs-model', dir, '--out', out, '--dataset', 'mnist');
    expect(dataset.code).toBe(1);
    expect(dataset.stderr).toBe(
      'cnnx: --dataset mnist has 10 classes, but the model has 3 outputs: name the dataset it was trained on, or leave --dataset out',
    );
    expect(existsSync(out)).toBe(false);
  });
});
