/**
 * KServe v2 gRPC with a real @grpc/grpc-js client built from the same .proto: health, metadata, inference with
 * raw_input_contents (what Triton's gRPC client sends) and with typed contents, both equal to the REST JSON
 * logits; classification; and errors as gRPC status codes.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { createServer, listenGrpc, type CnnxServer } from '../../src/serve/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const PROTO = 'src/serve/grpc/grpc_service.proto';
let mnist: Dataset;
let server: CnnxServer;
let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** One unary call; resolves to the response or rejects with the gRPC error. */
function call<T = Record<string, unknown>>(method: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method]!(request, (error: grpc.ServiceError | null, response: T) =>
      error ? reject(error) : resolve(response),
    ),
  );
}

const pixels = (first: number, count = 1) =>
  Float32Array.from(mnist.test.pixels.subarray(first * 784, (first + count) * 784), (v) => v / 255);
const floatsOf = (bytes: Buffer) =>
  Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));

beforeAll(async () => {
  mnist = await loadDataset('mnist');
  const dir = await tempDir();
  await copyFile('models/lenet5-relu-mnist.onnx', join(dir, 'digits.onnx'));
  server = await createServer({ model: dir, ep: 'cpu', watch: false, maxQueueDelayMs: 1 });
  const target = await listenGrpc(server, { port: 0, host: '127.0.0.1' });
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true, oneofs: true });
  const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
  const Service = inference.GRPCInferenceService as grpc.ServiceClientConstructor;
  client = new Service(target, grpc.credentials.createInsecure()) as typeof client;
});
afterAll(async () => {
  client?.close();
  await server?.close();
});

/** The REST JSON route's logits for `count` images from `first`. */
async function restLogits(first: number, count = 1): Promise<number[]> {
  const answer = await server.app.inject({
    method: 'POST',
    url: '/v2/models/digits/infer',
    payload: {
      inputs: [{ name: 'input', shape: [count, 1, 28, 28], datatype: 'FP32', data: Array.from(pixels(first, count)) }],
    },
  });
  return answer.json().outputs[0].data;
}

describe('KServe v2 gRPC', () => {
  it('answers health and metadata', async () => {
    expect(await call('ServerLive', {})).toEqual({ live: true });
    expect(await call('ServerReady', {})).toEqual({ ready: true });
    expect(await call('ModelReady', { name: 'digits' })).toEqual({ ready: true });
    expect(await call('ServerMetadata', {})).toMatchObject({
      name: 'cnnx',
      extensions: expect.arrayContaining(['classification']),
    });
    expect(await call('ModelMetadata', { name: 'digits' })).toMatchObject({
      name: 'digits',
      versions: ['1'],
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
    });
  });

  it('serves every extension ServerMetadata lists that has RPCs: configuration, statistics, the repository', async () => {
    const { config } = await call<{ config: Record<string, unknown> }>('ModelConfig', { name: 'digits' });
    const rest = (await server.app.inject({ url: '/v2/models/digits/config' })).json();
    // proto-loader's defaults: enums by number, 64-bit integers as numbers.
    expect(config).toMatchObject({
      name: 'digits',
      platform: rest.platform,
      backend: 'onnxruntime',
      max_batch_size: rest.max_batch_size,
      input: [{ name: 'input', data_type: 11, format: 2, dims: [1, 28, 28] }],
      output: [{ name: 'logits', data_type: 11, dims: [10] }],
      dynamic_batching: { preferred_batch_size: rest.dynamic_batching.preferred_batch_size },
      instance_group: [{ name: 'digits', kind: 2, count: rest.instance_group[0].count }],
      parameters: { sha256: { string_value: rest.parameters.sha256.string_value } },
    });
    await call('ModelInfer', {
      model_name: 'digits',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 1, 28, 28] }],
      raw_input_contents: [Buffer.from(pixels(0, 2).buffer)],
    });
    const stats = await call<{ model_stats: { name: string; inference_count: number }[] }>('ModelStatistics', {
      name: 'digits',
    });
    expect(stats.model_stats).toEqual([
      expect.objectContaining({ name: 'digits', version: '1', inference_count: expect.any(Number) }),
    ]);
    expect(stats.model_stats[0]!.inference_count).toBe(
      (await server.app.inject({ url: '/v2/models/digits/stats' })).json().model_stats[0].inference_count,
    );
    expect((await call<{ model_stats: unknown[] }>('ModelStatistics', {})).model_stats).toHaveLength(1);
    expect(await call('RepositoryIndex', { ready: true })).toEqual({
      models: [{ name: 'digits', version: '1', state: 'READY', reason: '' }],
    });
    // What tritonclient.grpc sends to unload, then a load.
    expect(
      await call('RepositoryModelUnload', {
        model_name: 'digits',
        parameters: { unload_dependents: { bool_param: false } },
      }),
    ).toEqual({});
    expect(await call('ModelReady', { name: 'digits' }).catch((error: grpc.ServiceError) => error.code)).toBe(
      grpc.status.NOT_FOUND,
    );
    expect(await call('RepositoryModelLoad', { model_name: 'digits' })).toEqual({});
    expect(await call('ModelReady', { name: 'digits' })).toEqual({ ready: true });
    const refused = await call('RepositoryModelLoad', {
      model_name: 'digits',
      parameters: { config: { string_param: '{}' } },
    }).catch((error: grpc.ServiceError) => error);
    expect(refused).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const missing = await call('ModelConfig', { name: 'nothing' }).catch((error: grpc.ServiceError) => error);
    expect(missing).toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('infers from raw_input_contents as Triton sends them, with the REST logits in raw_output_contents', async () => {
    const data = pixels(0, 3);
    const response = await call<{ outputs: { shape: number[] }[]; raw_output_contents: Buffer[]; id: string }>(
      'ModelInfer',
      {
        model_name: 'digits',
        id: 'r1',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 1, 28, 28] }],
        raw_input_contents: [Buffer.from(data.buffer)],
      },
    );
    expect(response.id).toBe('r1');
    expect(response.outputs[0]).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [3, 10] });
    expect(floatsOf(response.raw_output_contents[0]!)).toEqual(await restLogits(0, 3));
  });

  it('infers from typed fp32_contents and answers in contents', async () => {
    const response = await call<{ outputs: { contents: { fp32_contents: number[] } }[] }>('ModelInfer', {
      model_name: 'digits',
      model_version: '1',
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], contents: { fp32_contents: Array.from(pixels(4)) } },
      ],
    });
    expect(Float32Array.from(response.outputs[0]!.contents.fp32_contents)).toEqual(
      Float32Array.from(await restLogits(4)),
    );
  });

  it('answers the classification extension as BYTES', async () => {
    const response = await call<{
      outputs: { datatype: string; shape: number[]; contents: { bytes_contents: Buffer[] } }[];
    }>('ModelInfer', {
      model_name: 'digits',
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], contents: { fp32_contents: Array.from(pixels(0)) } },
      ],
      outputs: [{ name: 'logits', parameters: { classification: { int64_param: 2 } } }],
    });
    const [output] = response.outputs;
    expect(output).toMatchObject({ datatype: 'BYTES', shape: [1, 2] });
    const entries = output!.contents.bytes_contents.map((b) => b.toString('utf8'));
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatch(new RegExp(`^-?\\d+\\.\\d{6}:${mnist.test.labels[0]}:${mnist.test.labels[0]}$`));
  });

  it.each<[string, object, grpc.status, RegExp]>([
    ['an unknown model', { model_name: 'nope' }, grpc.status.NOT_FOUND, /model 'nope' not found/],
    ['an unknown version', { model_name: 'digits', model_version: '7' }, grpc.status.NOT_FOUND, /no version "7"/],
    [
      'a wrong shape',
      {
        model_name: 'digits',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 28, 28] }],
        raw_input_contents: [Buffer.alloc(3136)],
      },
      grpc.status.INVALID_ARGUMENT,
      /must have shape \[N,1,28,28\]/,
    ],
    [
      'raw contents of the wrong size',
      {
        model_name: 'digits',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28] }],
        raw_input_contents: [Buffer.alloc(12)],
      },
      grpc.status.INVALID_ARGUMENT,
      /has 12 bytes of data, its shape needs 3136/,
    ],
    [
      'FP32 values in another typed field',
      {
        model_name: 'digits',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], contents: { fp64_contents: [0.5] } }],
      },
      grpc.status.INVALID_ARGUMENT,
      /input 'input' is FP32: send its values as contents.fp32_contents or raw_input_contents, not fp64_contents/,
    ],
    [
      'typed values of another type beside raw contents',
      {
        model_name: 'digits',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], contents: { int_contents: [1] } }],
        raw_input_contents: [Buffer.alloc(3136)],
      },
      grpc.status.INVALID_ARGUMENT,
      /not int_contents/,
    ],
    ...(
      [
        ['a string', { string_param: '3' }],
        ['a bool', { bool_param: true }],
        ['an empty parameter', {}],
      ] satisfies [string, object][]
    ).map(([kind, parameter]): [string, object, grpc.status, RegExp] => [
      `classification given as ${kind}`,
      {
        model_name: 'digits',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28] }],
        raw_input_contents: [Buffer.alloc(3136)],
        outputs: [{ name: 'logits', parameters: { classification: parameter } }],
      },
      grpc.status.INVALID_ARGUMENT,
      /output 'logits' classification must be an int64_param/,
    ]),
  ])('maps %s to its status code', async (_name, request, code, details) => {
    await expect(call('ModelInfer', { inputs: [], ...request })).rejects.toMatchObject({
      code,
      details: expect.stringMatching(details),
    });
  });
});

describe('gRPC under limits and while draining', () => {
  it('answers RESOURCE_EXHAUSTED when the queue is full, and UNAVAILABLE once the server drains', async () => {
    const dir = await tempDir();
    await copyFile('models/lenet5-relu-mnist.onnx', join(dir, 'digits.onnx'));
    // One instance: two batches of 4 run, 8 images wait, and the rest is refused.
    const small = await createServer({
      model: dir,
      ep: 'cpu',
      watch: false,
      instances: 1,
      maxQueue: 8,
      maxBatch: 4,
      maxQueueDelayMs: 1500,
    });
    const target = await listenGrpc(small, { port: 0, host: '127.0.0.1' });
    const Service = client.constructor as unknown as grpc.ServiceClientConstructor;
    const other = new Service(target, grpc.credentials.createInsecure()) as typeof client;
    const infer = (count = 4) =>
      new Promise<grpc.status>((resolve) =>
        other.ModelInfer!(
          {
            model_name: 'digits',
            inputs: [{ name: 'input', datatype: 'FP32', shape: [count, 1, 28, 28] }],
            raw_input_contents: [Buffer.from(pixels(0, count).buffer)],
          },
          (error: grpc.ServiceError | null) => resolve(error ? error.code : grpc.status.OK),
        ),
      );
    try {
      const codes = await Promise.all(Array.from({ length: 8 }, infer));
      expect(codes).toContain(grpc.status.OK);
      expect(codes).toContain(grpc.status.RESOURCE_EXHAUSTED);
      // One image waits for company (the queue delay) while the server starts draining: it is still answered.
      const inFlight = infer(1);
      const batcher = small.registry.get('digits')!.batcher;
      while (batcher.depth === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      const closing = small.close();
      expect(await inFlight).toBe(grpc.status.OK);
      expect(await infer()).toBe(grpc.status.UNAVAILABLE);
      await closing;
    } finally {
      other.close();
      await small.close();
    }
  });
});
