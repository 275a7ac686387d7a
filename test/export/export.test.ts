import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/index.js';
import { limitSplit, loadDataset, type Dataset } from '../../src/data/index.js';
import {
  buildOnnxModel,
  checkOpset,
  defaultEmitters,
  EmitterRegistry,
  exportRun,
  irVersionFor,
  paritySet,
  tfjsLogits,
  compareLogits,
} from '../../src/export/index.js';
import { parameterSpecs, type ModelSpec } from '../../src/models/index.js';
import {
  evaluateSession,
  inspectOnnx,
  METADATA_KEYS,
  onnx,
  openSession,
  readOnnxModel,
  type ModelSignature,
} from '../../src/runtime/index.js';
import { createNetwork, useBackend } from '../../src/train/index.js';
import type { TensorMap } from '../../src/common/index.js';
import { smallRun } from '../helpers/runs.js';
import { tempDir } from '../helpers/temp-dir.js';

let mnist: Dataset;
let root: string;
let run: Awaited<ReturnType<typeof smallRun>>;
let exported: string;
beforeAll(async () => {
  mnist = await loadDataset('mnist');
  root = await tempDir();
  run = await smallRun(root, mnist);
  exported = join(root, 'digits.onnx');
  await exportRun({ runDir: run.runDir, out: exported, dataset: mnist, triton: join(root, 'triton') });
});

describe('cnnx export round trip', () => {
  it('writes a model with the contract signature and metadata', async () => {
    const signature = inspectOnnx(await readFile(exported), exported);
    expect(signature.inputName).toBe('input');
    expect(signature.outputName).toBe('logits');
    expect(signature.inputShape).toEqual([-1, 1, 28, 28]);
    expect(signature.outputShape).toEqual([-1, 10]);
    expect(signature.opset).toBe(17);
    for (const key of Object.values(METADATA_KEYS)) expect(signature.metadata[key], key).toBeTruthy();
    expect(Object.keys(signature.metadata).sort()).toEqual(Object.values(METADATA_KEYS).sort());
    expect(JSON.parse(signature.metadata[METADATA_KEYS.labels]!)).toHaveLength(10);
    expect(signature.dataset).toBe('mnist');
    const model = onnx.ModelProto.decode(await readFile(exported));
    expect(Number(model.irVersion)).toBe(8);
    expect(model.producerName).toBe('cnnx');
    expect(model.graph!.node!.map((n) => n.opType)).not.toContain('Transpose');
  });

  it("gives onnxruntime-node the training run's best accuracy on the same test images", async () => {
    const session = await openSession(await readFile(exported), { ep: 'cpu' });
    const result = await evaluateSession(session, limitSplit(mnist.test, 256), 28);
    await session.release();
    expect(result.accuracy).toBe(run.result.bestAccuracy);
  });

  it('writes a Triton model repository', async () => {
    const config = await readFile(join(root, 'triton', 'digits', 'config.pbtxt'), 'utf8');
    expect(config).toMatch(/platform: "onnxruntime_onnx"/);
    expect(config).toMatch(/max_batch_size: 256/);
    expect(config).toMatch(/dims: \[ 1, 28, 28 \]/);
    expect(config).toMatch(/dynamic_batching/);
    expect(
      Buffer.compare(await readFile(join(root, 'triton', 'digits', '1', 'model.onnx')), await readFile(exported)),
    ).toBe(0);
  });

  it('fails verification, non-zero, and leaves no file when the graph is wrong', async () => {
    // A conv emitter that forgets to move kernels from tfjs to ONNX layout.
    const broken = new EmitterRegistry();
    for (const kind of defaultEmitters().kinds()) {
      const emitter = defaultEmitters().get(kind);
      broken.register(
        kind !== 'conv2d'
          ? emitter
          : {
              layer: 'conv2d',
              emit: (context) => {
                const weight = context.weight;
                return emitter.emit({
                  ...context,
                  weight: (s) =>
                    s === 'weight' ? { ...weight(s), data: weight(s).data.slice().reverse() } : weight(s),
                });
              },
            },
      );
    }
    const out = join(root, 'broken.onnx');
    await expect(exportRun({ runDir: run.runDir, out, dataset: mnist, emitters: broken })).rejects.toThrow(
      /export failed verification: max abs diff .*; no file written/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('validates --opset and matches the IR version to it', () => {
    expect(() => checkOpset(10)).toThrow('--opset must be an integer from 11 to 21, got 10');
    expect(() => checkOpset(22)).toThrow(/got 22/);
    expect([11, 13, 17, 19, 21].map(irVersionFor)).toEqual([6, 7, 8, 9, 10]);
  });

  it('loads at other opsets in onnxruntime', async () => {
    const bytes = await readFile(exported);
    for (const opset of [13, 21]) {
      const model = onnx.ModelProto.decode(bytes);
      model.opsetImport = [{ domain: '', version: opset }];
      model.irVersion = irVersionFor(opset);
      const session = await openSession(onnx.ModelProto.encode(model).finish(), { ep: 'cpu' });
      await session.release();
    }
  });
});

describe('the emitter registry', () => {
  it('rejects an unknown layer by name, and a second registration', () => {
    expect(() => defaultEmitters().get('lstm')).toThrow(
      "cannot export layer 'lstm' to ONNX: no emitter is registered for it",
    );
    const registry = defaultEmitters();
    expect(() => registry.register(registry.get('relu'))).toThrow(
      "an ONNX emitter for layer 'relu' is already registered",
    );
  });
});

describe('layer parity on shapes the LeNets do not cover', () => {
  it('AlexNet-style stride-4 conv, overlapping 3x3 pooling and dropout match onnxruntime', async () => {
    const spec: ModelSpec = {
      name: 'alexnet-mini',
      description: 'test',
      input: [1, 67, 67],
      classes: 10,
      layers: [
        { kind: 'conv2d', filters: 8, kernel: 11, stride: 4, padding: 1 },
        { kind: 'relu' },
        { kind: 'max-pool', size: 3, stride: 2 },
        { kind: 'conv2d', filters: 12, kernel: 3, padding: 1 },
        { kind: 'relu' },
        { kind: 'flatten' },
        { kind: 'dense', units: 32 },
        { kind: 'relu' },
        { kind: 'dropout', rate: 0.5 },
        { kind: 'dense', units: 10 },
      ],
      defaults: { epochs: 1, batchSize: 8, lr: 0.01, optimizer: 'sgd', schedule: 'constant' },
      defaultDataset: 'mnist',
    };
    await useBackend('wasm');
    const network = createNetwork(spec, 11);
    const weights: TensorMap = new Map();
    for (const param of parameterSpecs(spec)) {
      weights.set(param.name, {
        shape: param.shape,
        data: (await network.variables.get(param.name)!.data()) as Float32Array,
      });
    }
    const bytes = buildOnnxModel(spec, weights, { dataset: 'mnist', labels: [], preprocess: {}, metrics: {} });
    const inputs = paritySet(mnist.test, 16, 67);
    const expected = await tfjsLogits(network, inputs.data, inputs.dims);
    const session = await openSession(bytes, { ep: 'cpu' });
    const { data } = await session.run(inputs.data, inputs.dims);
    await session.release();
    network.dispose();
    const report = compareLogits(expected, data, 10);
    expect(report.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(report.top1Agreement).toBe(1);
  });
});

describe('model checks when loading', () => {
  let bytes: Uint8Array;
  beforeAll(async () => {
    bytes = await readFile(exported);
  });
  const reencode = (edit: (model: OnnxTypes.ModelProto) => void) => {
    const model = onnx.ModelProto.decode(bytes);
    edit(model);
    return onnx.ModelProto.encode(model).finish();
  };

  it('rejects a directory given as the model file, naming it', async () => {
    await expect(readOnnxModel(root)).rejects.toMatchObject({
      code: 'MODEL_UNREADABLE',
      message: `${root}: is a directory; give the path of a .onnx file`,
    });
  });

  it('rejects malformed and truncated bytes', () => {
    expect(() => inspectOnnx(new TextEncoder().encode('definitely not protobuf'), 'junk.onnx')).toThrow(
      /junk.onnx: not a valid ONNX model/,
    );
    expect(() => inspectOnnx(bytes.subarray(0, bytes.length / 2), 'half.onnx')).toThrow(
      /half.onnx: not a valid ONNX model \(malformed or truncated/,
    );
  });

  it('rejects tensors with external data', () => {
    const external = reencode((model) => {
      const tensor = model.graph!.initializer![0]!;
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.externalData = [{ key: 'location', value: 'weights.bin' }];
      tensor.rawData = new Uint8Array();
    });
    expect(() => inspectOnnx(external, 'ext.onnx')).toThrow(
      /ext.onnx: tensor '0.weight' is stored in an external data file/,
    );
  });

  it('rejects signatures cnnx cannot serve', () => {
    const twoOutputs = reencode((model) => model.graph!.output!.push(model.graph!.output![0]!));
    expect(() => inspectOnnx(twoOutputs, 'm.onnx')).toThrow(/signature cnnx cannot serve \(2 outputs/);
    const twoChannels = reencode((model) => {
      model.graph!.input![0]!.type!.tensorType!.shape!.dim![1] = { dimValue: 2 };
    });
    expect(() => inspectOnnx(twoChannels, 'm.onnx')).toThrow(
      /signature cnnx cannot serve \(input input float \[N, 2, 28, 28\]\)/,
    );
    const int64Input = reencode((model) => {
      model.graph!.input![0]!.type!.tensorType!.elemType = onnx.TensorProto.DataType.INT64;
    });
    expect(() => inspectOnnx(int64Input, 'm.onnx')).toThrow(/cannot serve \(input input int64 \[N, 1, 28, 28\]\)/);
  });

  it('says which cnnx metadata it could not use, and uses the defaults', () => {
    const withMetadata = (entries: Record<string, string>) =>
      inspectOnnx(
        reencode((model) => {
          model.metadataProps = Object.entries(entries).map(([key, value]) => ({ key, value }));
        }),
        'm.onnx',
      );
    const short = withMetadata({ 'cnnx.labels': '["a","b"]', 'cnnx.preprocess': '{"method":"sharpen"}' });
    expect(short.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(short.procedure).toBe('mnist');
    expect(short.warnings).toEqual([
      'its cnnx.labels metadata is not an array of 10 names (the output\'s classes): ["a","b"]; classes are named by index',
      'its cnnx.preprocess method "sharpen" is not one of mnist, fit, resize; pictures are prepared as its dataset implies',
    ]);
    expect(withMetadata({ 'cnnx.labels': '[oops', 'cnnx.preprocess': '7' }).warnings).toEqual([
      'its cnnx.labels metadata is not JSON; classes are named by index',
      'its cnnx.preprocess metadata is not a JSON object; pictures are prepared as its dataset implies',
    ]);
    expect(withMetadata({}).warnings).toEqual([]);
  });

  it('reads the names of a PyTorch-style export and evaluates it the same', async () => {
    // torch.onnx.export's defaults: input "input.1", output a number, initializers named after modules.
    const torchNames: Record<string, string> = { input: 'input.1', logits: '21' };
    const torchStyle = reencode((model) => {
      model.producerName = 'pytorch';
      model.metadataProps = [];
      const graph = model.graph!;
      for (const tensor of graph.initializer!) torchNames[tensor.name!] = `net.${tensor.name}`;
      const rename = (name: string) => torchNames[name] ?? name;
      for (const tensor of graph.initializer!) tensor.name = rename(tensor.name!);
      for (const node of graph.node!) {
        node.input = node.input!.map(rename);
        node.output = node.output!.map(rename);
      }
      graph.input![0]!.name = 'input.1';
      graph.output![0]!.name = '21';
    });
    const signature: ModelSignature = inspectOnnx(torchStyle, 'torch.onnx');
    expect([signature.inputName, signature.outputName]).toEqual(['input.1', '21']);
    expect(signature.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const file = join(root, 'torch.onnx');
    await writeFile(file, torchStyle);
    const session = await openSession(await readFile(file), { ep: 'cpu' });
    const result = await evaluateSession(session, limitSplit(mnist.test, 256), 28);
    await session.release();
    expect(result.accuracy).toBe(run.result.bestAccuracy);
  });
});

describe('cnnx export on the command line: where the model goes', () => {
  /** Runs the CLI in this process; its exit code and what it printed on stderr. */
  async function cnnx(...args: string[]): Promise<{ code: number; stderr: string }> {
    const stderr: string[] = [];
    vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void stderr.push(parts.join(' ')));
    const code = await main(['node', 'cnnx', ...args]);
    vi.restoreAllMocks();
    return { code, stderr: stderr.join('\n') };
  }
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('refuses a directory as --out, in one line, and writes nothing into it', async () => {
    const dir = join(root, 'out-dir');
    await mkdir(dir);
    const { code, stderr } = await cnnx('export', '--run', run.runDir, '--out', dir);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `cnnx: --out ${dir}: is a directory; give the path of the file to write, e.g. ${join(dir, 'model.onnx')}`,
    );
  });

  it('refuses an --out that does not end in .onnx, and writes no file', async () => {
    const out = join(root, 'digits.png');
    const { code, stderr } = await cnnx('export', '--run', run.runDir, '--out', out);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `cnnx: --out ${out}: the ONNX file's name must end in .onnx (a Triton model repository is written with --triton <dir>)`,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a nameless .onnx, and a Triton folder it cannot write before it writes the ONNX file', async () => {
    const nameless = join(root, '.onnx');
    const refused = await cnnx('export', '--run', run.runDir, '--out', nameless);
    expect(refused.stderr).toBe(
      `cnnx: --out ${nameless}: give the file a name before .onnx (it is the model's name when served), e.g. ${join(root, 'model.onnx')}`,
    );
    const out = join(root, 'first.onnx');
    const file = join(root, 'a-file');
    await writeFile(file, 'not a folder');
    const triton = await cnnx('export', '--run', run.runDir, '--out', out, '--triton', join(file, 'repo'));
    expect(triton.code).toBe(1);
    expect(triton.stderr).toMatch(/^cnnx: cannot write .*a-file\/repo.*: part of the path is a file, not a folder$/);
    expect(existsSync(out)).toBe(false);
  });
});
