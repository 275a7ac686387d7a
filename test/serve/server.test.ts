import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { onnx } from '../../src/export/onnx-proto.js';
import { createServer, ERROR_STATUS, type CnnxServer } from '../../src/serve/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const MODEL = 'models/lenet5-relu-mnist.onnx';
let mnist: Dataset;
let dir: string;
let server: CnnxServer;

const pixels = (i: number) => Array.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
const inferBody = (indices: number[], overrides: Record<string, unknown> = {}) => ({
  inputs: [
    {
      name: 'input',
      shape: [indices.length, 1, 28, 28],
      datatype: 'FP32',
      data: indices.flatMap(pixels),
      ...overrides,
    },
  ],
});
const argmax = (values: number[]) => values.indexOf(Math.max(...values));

beforeAll(async () => {
  mnist = await loadDataset('mnist');
  dir = await tempDir();
  await copyFile(MODEL, join(dir, 'digits.onnx'));
  server = await createServer({ model: dir, ep: 'cpu', maxQueueDelayMs: 1, watch: false });
});
afterAll(() => server.close());

const inject = (options: InjectOptions) => server.app.inject(options);
const infer = (body: unknown, model = 'digits') =>
  inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: body as object });

describe('KServe v2 routes', () => {
  it('answers health, server and model metadata', async () => {
    expect((await inject({ url: '/v2/health/live' })).json()).toEqual({ live: true });
    expect((await inject({ url: '/v2/health/ready' })).json()).toEqual({ ready: true });
    expect((await inject({ url: '/v2' })).json().models).toEqual(['digits']);
    const meta = (await inject({ url: '/v2/models/digits' })).json();
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }]);
    expect(meta.outputs).toEqual([{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }]);
    expect((await inject({ url: '/v2/models/digits/ready' })).json()).toEqual({ name: 'digits', ready: true });
  });

  it('infers a batch in one request, right for real test digits', async () => {
    const indices = Array.from({ length: 32 }, (_, i) => i);
    const response = await infer(inferBody(indices));
    expect(response.statusCode).toBe(200);
    const { outputs } = response.json();
    expect(outputs[0].shape).toEqual([32, 10]);
    const predicted = indices.map((i) => argmax(outputs[0].data.slice(i * 10, i * 10 + 10)));
    const correct = predicted.filter((p, i) => p === mnist.test.labels[i]).length;
    expect(correct).toBeGreaterThanOrEqual(31);
  });

  it('gives concurrent requests the same answers as lone ones (micro-batching)', async () => {
    const alone = await Promise.all(
      [0, 1, 2, 3].map(async (i) => (await infer(inferBody([i]))).json().outputs[0].data as number[]),
    );
    const together = await Promise.all(
      Array.from({ length: 40 }, (_, k) => infer(inferBody([k % 4])).then((r) => r.json().outputs[0].data as number[])),
    );
    together.forEach((data, k) => data.forEach((v, j) => expect(v).toBeCloseTo(alone[k % 4]![j]!, 4)));
  });
});

describe('bad requests get a 4xx JSON error and leave the server as it was', () => {
  const huge = 'x'.repeat(9 * 2 ** 20);
  const deep = '['.repeat(200_000) + ']'.repeat(200_000);
  const cases: [
    string,
    () => Promise<{ statusCode: number; json: () => { code: string; error: string } }>,
    number,
    string,
  ][] = [
    ['wrong input name', () => infer(inferBody([0], { name: 'x' })), 400, 'INVALID_INPUT'],
    ['wrong datatype', () => infer(inferBody([0], { datatype: 'INT64' })), 400, 'INVALID_INPUT'],
    ['wrong shape', () => infer(inferBody([0], { shape: [1, 28, 28] })), 400, 'INVALID_INPUT'],
    ['absurd shape', () => infer(inferBody([0], { shape: [1e12, 1, 28, 28] })), 400, 'INVALID_INPUT'],
    ['data length mismatch', () => infer(inferBody([0], { data: [1, 2, 3] })), 400, 'INVALID_INPUT'],
    ['non-number data', () => infer(inferBody([0], { data: Array(784).fill('NaN') })), 400, 'INVALID_INPUT'],
    ['nested data', () => infer(inferBody([0], { data: [pixels(0)] })), 400, 'INVALID_INPUT'],
    ['no inputs', () => infer({}), 400, 'INVALID_INPUT'],
    ['unknown model', () => infer(inferBody([0]), 'nope'), 404, 'MODEL_NOT_FOUND'],
    ['unknown route', () => inject({ url: '/v3/whatever' }), 404, 'NOT_FOUND'],
    [
      'garbage body',
      () =>
        inject({
          method: 'POST',
          url: '/v2/models/digits/infer',
          headers: { 'content-type': 'application/json' },
          payload: '{"inputs": [',
        }),
      400,
      'INVALID_JSON',
    ],
    [
      'empty body',
      () =>
        inject({
          method: 'POST',
          url: '/v2/models/digits/infer',
          headers: { 'content-type': 'application/json' },
          payload: '',
        }),
      400,
      'INVALID_JSON',
    ],
    [
      'deeply nested JSON',
      () =>
        inject({
          method: 'POST',
          url: '/v2/models/digits/infer',
          headers: { 'content-type': 'application/json' },
          payload: deep,
        }),
      400,
      'INVALID_INPUT',
    ],
    [
      'oversized body',
      () =>
        inject({
          method: 'POST',
          url: '/v2/models/digits/infer',
          headers: { 'content-type': 'application/json' },
          payload: huge,
        }),
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'wrong content type',
      () =>
        inject({
          method: 'POST',
          url: '/v2/models/digits/infer',
          headers: { 'content-type': 'text/plain' },
          payload: 'hello',
        }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'corrupt image',
      () =>
        inject({
          method: 'POST',
          url: '/v1/models/digits/classify',
          headers: { 'content-type': 'image/png' },
          payload: Buffer.from('not a png at all'),
        }),
      400,
      'BAD_IMAGE',
    ],
    [
      'image route without an image',
      () =>
        inject({
          method: 'POST',
          url: '/v1/models/digits/classify',
          headers: { 'content-type': 'image/png' },
          payload: Buffer.alloc(0),
        }),
      400,
      'BAD_REQUEST',
    ],
    [
      'bad threshold',
      () =>
        inject({
          method: 'POST',
          url: '/v1/models/digits/read-digits?threshold=7',
          headers: { 'content-type': 'image/png' },
          payload: Buffer.from('x'),
        }),
      400,
      'BAD_REQUEST',
    ],
  ];

  it.each(cases)('%s', async (_name, send, status, code) => {
    const before = (await infer(inferBody([5]))).json().outputs[0].data;
    const response = await send();
    expect(response.statusCode).toBe(status);
    expect(response.json().code).toBe(code);
    expect(typeof response.json().error).toBe('string');
    expect((await infer(inferBody([5]))).json().outputs[0].data).toEqual(before);
  });

  it('documents every error code in docs/api.md', async () => {
    const doc = await readFile('docs/api.md', 'utf8');
    for (const [code, status] of Object.entries(ERROR_STATUS))
      expect(doc).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`));
  });
});

describe('image routes', () => {
  async function paperPng(indices: number[], gap = 12): Promise<Buffer> {
    const composites = await Promise.all(
      indices.map(async (i, k) => ({
        input: await sharp(Buffer.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784).map((v) => 255 - v)), {
          raw: { width: 28, height: 28, channels: 1 },
        })
          .resize(84, 84)
          .png()
          .toBuffer(),
        left: 20 + k * (84 + gap - 30),
        top: 16,
        blend: 'multiply' as const,
      })),
    );
    return sharp({
      create: { width: 40 + indices.length * (84 + gap - 30) + 30, height: 116, channels: 3, background: '#ffffff' },
    })
      .composite(composites)
      .png()
      .toBuffer();
  }

  it('classifies a photo-like PNG (dark ink on paper), raw and multipart', async () => {
    const png = await paperPng([0]);
    const raw = await inject({
      method: 'POST',
      url: '/v1/models/digits/classify',
      headers: { 'content-type': 'image/png' },
      payload: png,
    });
    expect(raw.statusCode).toBe(200);
    expect(raw.json().label).toBe(mnist.test.labels[0]);
    expect(raw.json().top).toHaveLength(3);
    const boundary = '----cnnx';
    const multipart = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\nContent-Type: image/png\r\n\r\n`,
      ),
      png,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const form = await inject({
      method: 'POST',
      url: '/v1/models/digits/classify',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: multipart,
    });
    expect(form.json().label).toBe(mnist.test.labels[0]);
  });

  it('reads a string of handwritten digits left to right', async () => {
    const indices = [3, 2, 1, 18];
    const response = await inject({
      method: 'POST',
      url: '/v1/models/digits/read-digits',
      headers: { 'content-type': 'image/png' },
      payload: await paperPng(indices),
    });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.digits).toHaveLength(4);
    expect(body.text).toBe(indices.map((i) => mnist.test.labels[i]).join(''));
  });

  it('marks a digit below the confidence threshold as ? rather than guessing', async () => {
    const response = await inject({
      method: 'POST',
      url: '/v1/models/digits/read-digits?threshold=1',
      headers: { 'content-type': 'image/png' },
      payload: await paperPng([3, 2]),
    });
    expect(response.json().text).toBe('??');
  });
});

describe('metrics', () => {
  it('exports request counts, batch sizes and the execution provider', async () => {
    const text = (await inject({ url: '/metrics' })).body;
    expect(text).toMatch(/cnnx_http_requests_total\{route="\/v2\/models\/:name\/infer",status="200"\} \d+/);
    expect(text).toMatch(/cnnx_inference_batch_size_count\{model="digits"\} \d+/);
    expect(text).toMatch(/cnnx_execution_provider\{model="digits",ep="cpu"\} 1/);
  });
});

describe('models: reload, pins, other producers', () => {
  it('reloads on request; a bad new file leaves the old model serving', async () => {
    const before = (await infer(inferBody([7]))).json().outputs[0].data;
    await writeFile(join(dir, 'digits.onnx'), 'this is not a model');
    const failed = await inject({ method: 'POST', url: '/v2/repository/models/digits/load' });
    expect(failed.statusCode).toBe(400);
    expect(failed.json().error).toMatch(/reload failed, the previous version keeps serving: .*not a valid ONNX model/);
    expect((await infer(inferBody([7]))).json().outputs[0].data).toEqual(before);
    await copyFile('models/lenet5-mnist.onnx', join(dir, 'digits.onnx'));
    const reloaded = await inject({ method: 'POST', url: '/v2/repository/models/digits/load' });
    expect(reloaded.json().reloaded).toBe(true);
    expect((await infer(inferBody([7]))).json().outputs[0].data).not.toEqual(before);
  });

  it('refuses a model whose sha256 does not match its pin', async () => {
    const pinned = createServer({ model: MODEL, ep: 'cpu', pins: { 'lenet5-relu-mnist': '0'.repeat(64) } });
    await expect(pinned).rejects.toThrow(/sha256 [0-9a-f]{64} does not match the pinned 0{64}; refused/);
  });

  it('serves a PyTorch-style model (other tensor names)', async () => {
    const model = onnx.ModelProto.decode(await readFile(MODEL));
    const graph = model.graph!;
    const rename = (name: string) => (name === 'input' ? 'input.1' : name === 'logits' ? '21' : name);
    for (const node of graph.node!) {
      node.input = node.input!.map(rename);
      node.output = node.output!.map(rename);
    }
    graph.input![0]!.name = 'input.1';
    graph.output![0]!.name = '21';
    model.metadataProps = [];
    const torchDir = await tempDir();
    await writeFile(join(torchDir, 'torch-lenet.onnx'), onnx.ModelProto.encode(model).finish());
    const torch = await createServer({ model: torchDir, ep: 'cpu' });
    try {
      const meta = (await torch.app.inject({ url: '/v2/models/torch-lenet' })).json();
      expect(meta.inputs[0].name).toBe('input.1');
      const response = await torch.app.inject({
        method: 'POST',
        url: '/v2/models/torch-lenet/infer',
        payload: inferBody([0], { name: 'input.1' }),
      });
      expect(response.json().outputs[0].name).toBe('21');
      expect(argmax(response.json().outputs[0].data)).toBe(mnist.test.labels[0]);
    } finally {
      await torch.close();
    }
  });
});

describe('a real server process', () => {
  it('serves over a real port, reloads a changed file, and drains on SIGTERM, exiting 0', async () => {
    const liveDir = await tempDir();
    await copyFile(MODEL, join(liveDir, 'digits.onnx'));
    const child = spawn(process.execPath, ['bin/cnnx.js', 'serve', '--model', liveDir, '--port', '0', '--ep', 'cpu'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        const match = /at (http:\/\/[^\s]+)/.exec(chunk.toString());
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    const post = (body: unknown) =>
      fetch(`${url}/v2/models/digits/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const first = await (await post(inferBody([9]))).json();
    expect(argmax(first.outputs[0].data)).toBe(mnist.test.labels[9]);

    // Hot reload on file change: an atomic replace (as cnnx export writes) is picked up.
    await copyFile('models/lenet5-mnist.onnx', join(liveDir, 'digits.tmp'));
    await import('node:fs/promises').then((fs) => fs.rename(join(liveDir, 'digits.tmp'), join(liveDir, 'digits.onnx')));
    const deadline = Date.now() + 10_000;
    let changed = false;
    while (!changed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      const now = await (await post(inferBody([9]))).json();
      changed = JSON.stringify(now.outputs[0].data) !== JSON.stringify(first.outputs[0].data);
    }
    expect(changed).toBe(true);

    // SIGTERM while requests are in flight: they complete, then the process exits 0. Requests still connecting
    // when the listener closes are reset, as a draining server should do.
    const inFlight = Array.from({ length: 20 }, () =>
      post(inferBody([1, 2, 3, 4])).then(
        (response) => response.status,
        () => 'reset',
      ),
    );
    await Promise.race(inFlight); // the server is busy answering
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    const statuses = await Promise.all(inFlight);
    for (const status of statuses) expect([200, 503, 'reset']).toContain(status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(code).toBe(0);
  }, 60_000);
});
