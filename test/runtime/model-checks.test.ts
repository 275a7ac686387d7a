/**
 * Model files as real exports and hostile files make them: a batch fixed to 1 (torch.onnx.export without dynamic
 * axes) runs any number of images; a tensor stored as external data anywhere (a Constant node, a subgraph) is
 * refused like an external initializer; a graph that builds a huge tensor from constant sizes is refused at load.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { main } from '../../src/cli/index.js';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { inspectOnnx, onnx, openSession, readOnnxModel } from '../../src/runtime/index.js';
import { createServer } from '../../src/serve/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const RELU = 'models/lenet5-relu-mnist.onnx';
const CLASSIC = 'models/lenet5-mnist.onnx';
let mnist: Dataset;
let dir: string;
beforeAll(async () => {
  mnist = await loadDataset('mnist');
  dir = await tempDir();
});
afterEach(() => vi.restoreAllMocks());

const decode = async (file: string) => onnx.ModelProto.decode(await readFile(file));
const encode = (model: OnnxTypes.IModelProto) => onnx.ModelProto.encode(model).finish();

/** LeNet-5 with its batch dimension fixed to `batch`, as torch.onnx.export writes it without dynamic axes. */
async function fixedBatchModel(batch: number): Promise<Uint8Array> {
  const model = await decode(CLASSIC);
  for (const info of [...model.graph!.input!.filter((i) => i.name === 'input'), ...model.graph!.output!]) {
    const dim = info.type!.tensorType!.shape!.dim![0]!;
    delete (dim as { dimParam?: string }).dimParam;
    dim.dimValue = batch;
  }
  return encode(model);
}

const images = (first: number, count: number) =>
  Float32Array.from(mnist.test.pixels.subarray(first * 784, (first + count) * 784), (v) => v / 255);

describe('a model whose batch dimension is fixed', () => {
  it.each([1, 4])('batch %i: any number of images runs, with the logits of the dynamic model', async (batch) => {
    const bytes = await fixedBatchModel(batch);
    expect(inspectOnnx(bytes, 'fixed.onnx')).toMatchObject({ inputShape: [batch, 1, 28, 28], fixedBatch: batch });
    const fixed = await openSession(bytes, { ep: 'cpu' });
    const dynamic = await openSession(await readFile(CLASSIC), { ep: 'cpu' });
    try {
      const data = images(0, 7);
      const got = await fixed.run(data, [7, 1, 28, 28]);
      const want = await dynamic.run(data, [7, 1, 28, 28]);
      expect(got.dims).toEqual([7, 10]);
      got.data.forEach((v, i) => expect(v).toBeCloseTo(want.data[i]!, 5));
    } finally {
      await fixed.release();
      await dynamic.release();
    }
  });

  it('works with eval, predict and a server under concurrent requests, which reports the real shape', async () => {
    const file = join(dir, 'fixed1.onnx');
    await writeFile(file, await fixedBatchModel(1));
    const out: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void out.push(parts.join(' ')));
    vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(
      await main(['node', 'cnnx', 'eval', '--model', file, '--limit', '100', '--batch-size', '32', '--json']),
    ).toBe(0);
    expect(JSON.parse(out[0]!).accuracy).toBeGreaterThan(0.9);
    const pngs = await Promise.all(
      [0, 1].map(async (i) => {
        const png = join(dir, `digit-${i}.png`);
        await sharp(Buffer.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784)), {
          raw: { width: 28, height: 28, channels: 1 },
        })
          .png()
          .toFile(png);
        return png;
      }),
    );
    out.length = 0;
    expect(await main(['node', 'cnnx', 'predict', '--model', file, '--json', ...pngs])).toBe(0);
    expect(out.map((line) => JSON.parse(line).label)).toEqual([mnist.test.labels[0], mnist.test.labels[1]]);
    vi.restoreAllMocks();

    const server = await createServer({ model: file, ep: 'cpu', watch: false, maxQueueDelayMs: 20 });
    try {
      expect((await server.app.inject({ url: '/v2/models/fixed1' })).json().inputs[0].shape).toEqual([1, 1, 28, 28]);
      const png = await readFile(pngs[0]!);
      const answers = await Promise.all(
        Array.from({ length: 12 }, () =>
          server.app.inject({
            method: 'POST',
            url: '/v1/models/fixed1/classify',
            headers: { 'content-type': 'image/png' },
            payload: png,
          }),
        ),
      );
      expect(answers.map((a) => a.statusCode)).toEqual(Array(12).fill(200));
      expect(new Set(answers.map((a) => a.json().label))).toEqual(new Set([mnist.test.labels[0]]));
    } finally {
      await server.close();
    }
  });
});

/** A tensor whose values live in `location` beside the model (external data). */
const externalTensor = (template: OnnxTypes.ITensorProto, location: string) =>
  onnx.TensorProto.create({
    name: template.name,
    dims: template.dims,
    dataType: template.dataType,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: '0' },
      { key: 'length', value: String(4 * (template.dims ?? []).reduce((a: number, b) => a * Number(b), 1)) },
    ],
  });

describe('tensors stored outside the model file', () => {
  it('refuses one in a Constant node (the weights would be read from a file in the working directory)', async () => {
    const model = await decode(RELU);
    const weight = model.graph!.initializer!.shift()!;
    model.graph!.node!.unshift(
      onnx.NodeProto.create({
        opType: 'Constant',
        output: [weight.name!],
        name: 'c',
        attribute: [
          onnx.AttributeProto.create({
            name: 'value',
            type: onnx.AttributeProto.AttributeType.TENSOR,
            t: externalTensor(weight, 'README.md'),
          }),
        ],
      }),
    );
    const file = join(dir, 'external-constant.onnx');
    await writeFile(file, encode(model));
    await expect(readOnnxModel(file)).rejects.toMatchObject({
      code: 'MODEL_EXTERNAL_DATA',
      message: expect.stringContaining(`tensor '${weight.name}' is stored in an external data file`),
    });
    await expect(createServer({ model: file, ep: 'cpu', watch: false })).rejects.toMatchObject({
      code: 'MODEL_EXTERNAL_DATA',
    });
  });

  it('refuses one in a subgraph (an If branch)', async () => {
    const model = await decode(RELU);
    const weight = model.graph!.initializer![0]!;
    const branch = onnx.GraphProto.create({
      name: 'branch',
      node: [onnx.NodeProto.create({ opType: 'Identity', input: ['w'], output: ['out'] })],
      initializer: [externalTensor({ ...weight, name: 'w' }, 'weights.bin')],
      output: [onnx.ValueInfoProto.create({ name: 'out' })],
    });
    model.graph!.node!.push(
      onnx.NodeProto.create({
        opType: 'If',
        input: ['cond'],
        output: ['unused'],
        attribute: [
          onnx.AttributeProto.create({ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch }),
        ],
      }),
    );
    expect(() => inspectOnnx(encode(model), 'subgraph.onnx')).toThrow(
      expect.objectContaining({ code: 'MODEL_EXTERNAL_DATA' }),
    );
  });
});

describe('graphs that build huge tensors', () => {
  /** LeNet whose logits get `+ ReduceMax(built)` added, `built` made by `nodes` from an int64 initializer. */
  async function withBuiltTensor(nodes: OnnxTypes.INodeProto[], shapeValues: number[]): Promise<Uint8Array> {
    const model = await decode(RELU);
    const graph = model.graph!;
    const logits = graph.output![0]!.name!;
    for (const node of graph.node!) node.output = node.output!.map((o) => (o === logits ? 'pre' : o));
    graph.initializer!.push(
      onnx.TensorProto.create({
        name: 'size',
        dims: [shapeValues.length],
        dataType: onnx.TensorProto.DataType.INT64,
        int64Data: shapeValues,
      }),
    );
    graph.node!.push(
      ...nodes,
      onnx.NodeProto.create({
        opType: 'ReduceMax',
        input: ['built'],
        output: ['peak'],
        attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
      }),
      onnx.NodeProto.create({ opType: 'Add', input: ['pre', 'peak'], output: [logits] }),
    );
    return encode(model);
  }

  it.each([
    [
      'ConstantOfShape of a constant shape',
      [onnx.NodeProto.create({ opType: 'ConstantOfShape', input: ['size'], output: ['built'] })],
      [2 ** 31],
    ],
    [
      'Expand to a shape computed from the input shape',
      [
        onnx.NodeProto.create({ opType: 'Shape', input: ['input'], output: ['in_shape'] }),
        onnx.NodeProto.create({ opType: 'Mul', input: ['in_shape', 'size'], output: ['big_shape'] }),
        onnx.NodeProto.create({ opType: 'Expand', input: ['input', 'big_shape'], output: ['built'] }),
      ],
      [1, 1, 2000, 2000],
    ],
  ])('refuses %s at load', async (_name, nodes, size) => {
    const bytes = await withBuiltTensor(nodes, size);
    expect(bytes.length).toBeLessThan(300_000);
    expect(() => inspectOnnx(bytes, 'huge.onnx')).toThrow(
      expect.objectContaining({
        code: 'MODEL_HUGE_TENSOR',
        message: expect.stringMatching(/over the 2\.68e\+8-element limit; refused$/),
      }),
    );
  });

  it('loads a graph that builds a small tensor the same way', async () => {
    const bytes = await withBuiltTensor(
      [onnx.NodeProto.create({ opType: 'ConstantOfShape', input: ['size'], output: ['built'] })],
      [4, 4],
    );
    expect(inspectOnnx(bytes, 'small.onnx').fixedBatch).toBeUndefined();
    const session = await openSession(bytes, { ep: 'cpu' });
    try {
      expect((await session.run(images(0, 2), [2, 1, 28, 28])).dims).toEqual([2, 10]);
    } finally {
      await session.release();
    }
  });
});
