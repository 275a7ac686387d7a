import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, copyFile, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { digitsOnPaper } from '../helpers/digit-paper.js';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { onnx } from '../../src/runtime/index.js';
import { ERROR_CODES } from '../../src/common/index.js';
import { createServer, listen, type CnnxServer, type ServerOptions } from '../../src/serve/index.js';
import { fromClientError } from '../../src/serve/errors.js';
import { tempDir } from '../helpers/temp-dir.js';

const MODEL = 'models/lenet5-relu-mnist.onnx';
let mnist: Dataset;

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
});

/**
 * A server of its own for the enclosing describe group, serving MODEL as `digits` from a fresh directory: started
 * before the group's tests, closed after them, so no group sees another's requests, reloads or metrics.
 */
function useServer(options: Partial<ServerOptions> = {}) {
  const own = {} as { server: CnnxServer; dir: string };
  beforeAll(async () => {
    own.dir = await mkdtemp(join(tmpdir(), 'cnnx-serve-'));
    await copyFile(MODEL, join(own.dir, 'digits.onnx'));
    own.server = await createServer({ model: own.dir, ep: 'cpu', maxQueueDelayMs: 1, watch: false, ...options });
  });
  afterAll(async () => {
    await own.server?.close();
    await rm(own.dir, { recursive: true, force: true });
  });
  const inject = (request: InjectOptions) => own.server.app.inject(request);
  const infer = (body: unknown, model = 'digits') =>
    inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: body as object });
  return { own, inject, infer };
}

/** Counts of one model's inference batches from /metrics: all of them, and those of more than one image. */
async function batchCounts(inject: (request: InjectOptions) => Promise<{ body: string }>) {
  const text = (await inject({ url: '/metrics' })).body;
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  const all = value(/^cnnx_inference_batch_size_count\{model="digits"\} (\d+)$/m);
  const single = value(/^cnnx_inference_batch_size_bucket\{le="1",model="digits"\} (\d+)$/m);
  return { all, larger: all - single };
}

describe('KServe v2 routes', () => {
  // A queue delay long enough that concurrent requests share batches on a loaded machine.
  const { inject, infer } = useServer({ maxQueueDelayMs: 50, maxBatch: 8 });

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

  it('batches concurrent requests together and gives them the same answers as lone ones', async () => {
    const alone: number[][] = [];
    for (const i of [0, 1, 2, 3]) alone.push((await infer(inferBody([i]))).json().outputs[0].data as number[]);
    const before = await batchCounts(inject);
    const together = await Promise.all(
      Array.from({ length: 40 }, (_, k) => infer(inferBody([k % 4])).then((r) => r.json().outputs[0].data as number[])),
    );
    const after = await batchCounts(inject);
    expect(after.all - before.all).toBeLessThan(40);
    expect(after.larger - before.larger).toBeGreaterThan(0);
    together.forEach((data, k) => data.forEach((v, j) => expect(v).toBeCloseTo(alone[k % 4]![j]!, 4)));
  });
});

describe('bad requests get a 4xx JSON error and leave the server as it was', () => {
  const { inject, infer } = useServer();
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
    [
      'data nested deeper than its shape',
      () => infer(inferBody([0], { data: [[[[[pixels(0)]]]]] })),
      400,
      'INVALID_INPUT',
    ],
    ['no inputs', () => infer({}), 400, 'INVALID_INPUT'],
    ['unknown model', () => infer(inferBody([0]), 'nope'), 404, 'MODEL_NOT_FOUND'],
    ['unknown route', () => inject({ url: '/v3/whatever' }), 404, 'NOT_FOUND'],
    ['GET of the infer route', () => inject({ url: '/v2/models/x/infer' }), 405, 'METHOD_NOT_ALLOWED'],
    ['POST of a probe', () => inject({ method: 'POST', url: '/v2/health/ready' }), 405, 'METHOD_NOT_ALLOWED'],
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
      'INVALID_JSON',
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
});

describe('a path served for other methods', () => {
  const { inject } = useServer();
  it('is answered 405 with the methods it takes in Allow', async () => {
    const infer = await inject({ method: 'PUT', url: '/v2/models/lenet5-relu-mnist/versions/1/infer?x=1' });
    expect(infer.statusCode).toBe(405);
    expect(infer.headers.allow).toBe('POST');
    expect(infer.json()).toEqual({
      error: 'PUT is not served at /v2/models/lenet5-relu-mnist/versions/1/infer; it takes POST',
      code: 'METHOD_NOT_ALLOWED',
    });
    expect((await inject({ method: 'DELETE', url: '/v2/health/live' })).headers.allow).toBe('GET, HEAD');
  });
});

describe('image routes', () => {
  const { inject } = useServer();

  it('says which content types and encodings a picture may come in', async () => {
    const png = await readFile('test/preprocess/fixtures/marker-7.png');
    for (const [headers, pattern] of [
      [{}, /^content type "none" not accepted here; use image\/png, image\/jpeg, image\/webp, multipart\/form-data$/],
      [
        { 'content-type': 'application/octet-stream' },
        /^content type "application\/octet-stream" not accepted here; use image\/png/,
      ],
      [{ 'content-type': 'image/gif' }, /^content type "image\/gif" not accepted here; use image\/png/],
      [
        { 'content-type': 'image/png', 'content-encoding': 'gzip' },
        /^Content-Encoding "gzip" is not accepted here; send the body uncompressed$/,
      ],
    ] as const) {
      for (const route of ['classify', 'read-digits']) {
        const response = await inject({ method: 'POST', url: `/v1/models/digits/${route}`, headers, payload: png });
        expect(response.statusCode).toBe(415);
        expect(response.json()).toEqual({ error: expect.stringMatching(pattern), code: 'UNSUPPORTED_MEDIA_TYPE' });
      }
    }
  });

  it('takes the other names clients give JPEG and PNG (image/jpg, image/pjpeg, image/x-png)', async () => {
    const png = await readFile('test/preprocess/fixtures/marker-7.png');
    const jpeg = await sharp(png).flatten({ background: '#ffffff' }).jpeg().toBuffer();
    for (const [type, body] of [
      ['image/jpg', jpeg],
      ['image/pjpeg', jpeg],
      ['image/x-png', png],
    ] as const) {
      const response = await inject({
        method: 'POST',
        url: '/v1/models/digits/classify',
        headers: { 'content-type': type },
        payload: body,
      });
      expect([type, response.statusCode, response.json().class]).toEqual([type, 200, '7']);
    }
  });

  const paperPng = (indices: number[], gap = 12) => digitsOnPaper(mnist, indices, { step: 84 + gap - 30 });

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
  const { inject, infer } = useServer();

  it('exports request counts, batch sizes and the execution provider', async () => {
    expect((await infer(inferBody([0]))).statusCode).toBe(200);
    const text = (await inject({ url: '/metrics' })).body;
    expect(text).toMatch(/cnnx_http_requests_total\{route="\/v2\/models\/:name\/infer",status="200"\} \d+/);
    expect(text).toMatch(/cnnx_inference_batch_size_count\{model="digits"\} \d+/);
    expect(text).toMatch(/cnnx_execution_provider\{model="digits",ep="cpu"\} 1/);
  });
});

describe('models: reload, pins, other producers', () => {
  const { own, inject, infer } = useServer();

  it('reloads on request; a bad new file leaves the old model serving', async () => {
    const { dir } = own;
    const before = (await infer(inferBody([7]))).json().outputs[0].data;
    await writeFile(join(dir, 'digits.onnx'), 'this is not a model');
    const failed = await inject({ method: 'POST', url: '/v2/repository/models/digits/load' });
    expect(failed.statusCode).toBe(400);
    expect(failed.json().error).toMatch(
      /load of 'digits' failed, the previous version keeps serving: .*not a valid ONNX model/,
    );
    expect((await infer(inferBody([7]))).json().outputs[0].data).toEqual(before);
    await copyFile('models/lenet5-mnist.onnx', join(dir, 'digits.onnx'));
    const reloaded = await inject({ method: 'POST', url: '/v2/repository/models/digits/load' });
    expect(reloaded.json().loaded).toBe(true);
    expect((await infer(inferBody([7]))).json().outputs[0].data).not.toEqual(before);
  });

  it("speaks Triton's model repository extension: index, load (a failed or new model too) and unload", async () => {
    const { dir } = own;
    const index = async () => (await inject({ method: 'POST', url: '/v2/repository/index' })).json();
    const load = (name: string, headers: Record<string, string> = {}, payload?: string) =>
      inject({ method: 'POST', url: `/v2/repository/models/${name}/load`, headers, payload });
    // A new file in the served folder: listed, then loaded by name, with the bodies Triton's clients send.
    await copyFile('models/lenet5-mnist.onnx', join(dir, 'fresh.onnx'));
    expect(await index()).toEqual([
      { name: 'digits', version: '1', state: 'READY', reason: '' },
      { name: 'fresh', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' },
    ]);
    expect((await load('fresh', { 'content-type': 'application/octet-stream' }, '{}')).statusCode).toBe(200);
    expect((await infer(inferBody([7]), 'fresh')).statusCode).toBe(200);
    // A model that fails to load is listed with its reason and loads once its file is fixed.
    await writeFile(join(dir, 'fresh.onnx'), 'this is not a model');
    const unloaded = await inject({ method: 'POST', url: '/v2/repository/models/fresh/unload' });
    expect(unloaded.json()).toEqual({ name: 'fresh', unloaded: true });
    expect((await infer(inferBody([7]), 'fresh')).statusCode).toBe(404);
    const failed = await load('fresh', {}, '');
    expect(failed.statusCode).toBe(400);
    expect(failed.json().error).toMatch(/^load of 'fresh' failed: .*not a valid ONNX model/);
    expect((await index())[1]).toMatchObject({
      name: 'fresh',
      state: 'UNAVAILABLE',
      reason: expect.stringMatching(/not a valid ONNX/),
    });
    expect((await inject({ url: '/v2/models/fresh/ready' })).statusCode).toBe(503);
    await copyFile('models/lenet5-mnist.onnx', join(dir, 'fresh.onnx'));
    expect((await load('fresh', { 'content-type': 'application/json' }, '{"parameters":{}}')).statusCode).toBe(200);
    expect((await inject({ url: '/v2/models/fresh/ready' })).json()).toEqual({ name: 'fresh', ready: true });
    // What cnnx cannot do, or that is not there, is said so.
    const overridden = await load('fresh', {}, '{"parameters":{"config":"{}"}}');
    expect(overridden.statusCode).toBe(400);
    expect(overridden.json().error).toMatch(/load parameters \(config, file overrides\) are not supported/);
    for (const name of ['nothing', '..%2Fdigits', '%2Fetc%2Fpasswd']) {
      expect((await load(name)).json().code).toBe('MODEL_NOT_FOUND');
    }
    expect((await inject({ method: 'POST', url: '/v2/repository/models/nothing/unload' })).statusCode).toBe(404);
    await inject({ method: 'POST', url: '/v2/repository/models/fresh/unload' });
  });

  it('takes what tritonclient sends to unload, filters the index by ready, and lets the last of a load and an unload win', async () => {
    const { dir } = own;
    await copyFile('models/lenet5-mnist.onnx', join(dir, 'raced.onnx'));
    const post = (url: string, payload?: string) => inject({ method: 'POST', url, payload });
    expect((await post('/v2/repository/models/raced/load')).statusCode).toBe(200);
    const ready = (await post('/v2/repository/index', '{"ready":true}')).json() as { name: string }[];
    expect(ready.map((entry) => entry.name)).toEqual(['digits', 'raced']);
    expect((await post('/v2/repository/index', '{"ready":"yes"}')).statusCode).toBe(400);
    // An unload asked while a load runs is done after it: the model ends unloaded, as the last answer said.
    const loading = post('/v2/repository/models/raced/load');
    const unloading = post('/v2/repository/models/raced/unload', '{"parameters":{"unload_dependents":false}}');
    expect((await loading).statusCode).toBe(200);
    expect((await unloading).json()).toEqual({ name: 'raced', unloaded: true });
    expect((await inject({ url: '/v2/models/raced/ready' })).statusCode).toBe(404);
    const notReady = (await post('/v2/repository/index', '{"ready":true}')).json() as { name: string }[];
    expect(notReady.map((entry) => entry.name)).toEqual(['digits']);
    const other = await post('/v2/repository/models/digits/unload', '{"parameters":{"force":true}}');
    expect(other.json().error).toBe('unload takes only the "unload_dependents" parameter, got "force"');
    for (const parameters of ['null', '[]', '"force"']) {
      const odd = await post('/v2/repository/models/digits/unload', `{"parameters":${parameters}}`);
      expect(odd.statusCode).toBe(400);
      expect(odd.json()).toEqual({
        error: `the request "parameters" must be an object, got ${parameters}`,
        code: 'BAD_REQUEST',
      });
    }
    await rm(join(dir, 'raced.onnx'));
  });

  it('leaves FIFOs and hidden files in a served folder alone, and serves a model of a long name', async () => {
    const dir = await tempDir();
    const long = 'm'.repeat(200);
    await copyFile(MODEL, join(dir, `${long}.onnx`));
    await copyFile(MODEL, join(dir, '.onnx'));
    await copyFile(MODEL, join(dir, '..onnx'));
    // Four FIFOs would hold all four of libuv's file-system threads if they were read.
    for (let i = 0; i < 5; i++) execFileSync('mkfifo', [join(dir, `fifo${i}.onnx`)]);
    const server = await createServer({ model: dir, ep: 'cpu' });
    try {
      const index = (await server.app.inject({ method: 'POST', url: '/v2/repository/index' })).json();
      expect(index.map((entry: { name: string }) => entry.name)).toEqual([
        'fifo0',
        'fifo1',
        'fifo2',
        'fifo3',
        'fifo4',
        long,
      ]);
      expect(index[0].reason).toMatch(/fifo0\.onnx: is not a regular file \(a FIFO, device or socket\)/);
      const ready = await server.app.inject({ url: `/v2/models/${long}/ready` });
      expect(ready.json()).toEqual({ name: long, ready: true });
      // A name longer than any file's is not found, as over gRPC, in a line that does not repeat it.
      for (const url of [`/v2/models/${'m'.repeat(1025)}/ready`, `/v2/models/${long}/versions/${'1'.repeat(1025)}`]) {
        const tooLong = await server.app.inject({ url });
        expect([tooLong.statusCode, tooLong.json()]).toEqual([
          404,
          {
            error: 'no model has a name or version over 1024 characters; GET /v2 lists the served models',
            code: 'MODEL_NOT_FOUND',
          },
        ]);
      }
      const load = await server.app.inject({ method: 'POST', url: '/v2/repository/models/fifo1/load' });
      expect(load.json().error).toMatch(/is not a regular file/);
      // A folder and a dangling link of a model's name: load says what is wrong, as the index does.
      await mkdir(join(dir, 'folder.onnx'));
      await symlink(join(dir, 'gone'), join(dir, 'dangling.onnx'));
      for (const [name, why] of [
        ['folder', /is a directory/],
        ['dangling', /cannot read \(no such file\)/],
      ] as const) {
        const answer = await server.app.inject({ method: 'POST', url: `/v2/repository/models/${name}/load` });
        expect([answer.statusCode, answer.json().error]).toEqual([400, expect.stringMatching(why)]);
        // Not served but in the repository: unloading it is a no-op, as Triton answers it.
        const unload = await server.app.inject({ method: 'POST', url: `/v2/repository/models/${name}/unload` });
        expect(unload.statusCode).toBe(200);
      }
      expect((await server.app.inject({ url: '/' })).statusCode).toBe(200);
    } finally {
      await server.close();
    }
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

describe('a model that computes NaN', () => {
  it("is the model's fault (500) for ordinary inputs and pictures, and the input's (400) for values that overflow it", async () => {
    // logits -> sqrt(-|logits|): NaN for every image.
    const model = onnx.ModelProto.decode(await readFile(MODEL));
    const graph = model.graph!;
    for (const node of graph.node!) node.output = node.output!.map((name) => (name === 'logits' ? 'pre' : name));
    graph.node!.push(
      onnx.NodeProto.create({ opType: 'Abs', input: ['pre'], output: ['magnitude'], name: 'abs' }),
      onnx.NodeProto.create({ opType: 'Neg', input: ['magnitude'], output: ['negative'], name: 'neg' }),
      onnx.NodeProto.create({ opType: 'Sqrt', input: ['negative'], output: ['logits'], name: 'sqrt' }),
    );
    const dir = await tempDir();
    await writeFile(join(dir, 'nan.onnx'), onnx.ModelProto.encode(model).finish());
    const server = await createServer({ model: dir, ep: 'cpu', watch: false });
    try {
      const ordinary = await server.app.inject({
        method: 'POST',
        url: '/v2/models/nan/infer',
        payload: inferBody([0]),
      });
      expect(ordinary.statusCode).toBe(500);
      expect(ordinary.json()).toEqual({
        error:
          "model 'nan' gives outputs that are not finite (NaN) for image 0, whose inputs are ordinary (at most 1 in " +
          'magnitude): the model is at fault; check it with `cnnx eval`',
        code: 'INFERENCE_FAILED',
      });
      const picture = await server.app.inject({
        method: 'POST',
        url: '/v1/models/nan/classify',
        headers: { 'content-type': 'image/png' },
        payload: await sharp(Buffer.from(mnist.test.pixels.subarray(0, 784)), {
          raw: { width: 28, height: 28, channels: 1 },
        })
          .png()
          .toBuffer(),
      });
      expect([picture.statusCode, picture.json().code]).toEqual([500, 'INFERENCE_FAILED']);
      const huge = inferBody([0]);
      huge.inputs[0]!.data[0] = 3e38;
      const overflow = await server.app.inject({ method: 'POST', url: '/v2/models/nan/infer', payload: huge });
      expect([overflow.statusCode, overflow.json().code]).toEqual([400, 'INVALID_INPUT']);
    } finally {
      await server.close();
    }
  });
});

describe('errors outside the routes are JSON with a documented code too', () => {
  const { own } = useServer();
  let port: number;
  beforeAll(async () => {
    port = Number(new URL(await listen(own.server, { port: 0, host: '127.0.0.1' })).port);
  });

  /** Sends `bytes` on a new connection and reads until the server closes it: the status and the JSON body. */
  async function sendRaw(bytes: string): Promise<{ status: number; body: { error?: unknown; code?: unknown } }> {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => {}); // a reset after the answer: what was read is what counts
    socket.write(bytes);
    await closed;
    const text = Buffer.concat(chunks).toString();
    const [head = '', body = ''] = text.split('\r\n\r\n');
    return { status: Number(head.split(' ')[1]), body: JSON.parse(body) as { error?: unknown; code?: unknown } };
  }

  it.each([
    ['a request that is not HTTP', 'HELLO WORLD\r\n\r\n', 400, 'BAD_REQUEST'],
    [
      'headers over the size limit',
      `GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      'HEADERS_TOO_LARGE',
    ],
    [
      'an invalid URL',
      'GET /v2/models/%E0%A4%A/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      400,
      'BAD_REQUEST',
    ],
    ['HTTP/1.1 without a Host header', 'GET /v2/health/live HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'BAD_REQUEST'],
    [
      'an Expect the server does not meet',
      'GET /v2 HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n',
      417,
      'EXPECTATION_FAILED',
    ],
    ['two Host headers', 'GET /v2 HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n', 400, 'BAD_REQUEST'],
    [
      'a gzip transfer coding without chunked',
      'POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['CONNECT (no proxy here)', 'CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n', 400, 'BAD_REQUEST'],
    [
      'a gzip transfer coding',
      'POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
  ])('%s', async (_name, bytes, status, code) => {
    const answer = await sendRaw(bytes);
    expect(answer.status).toBe(status);
    expect(answer.body.code).toBe(code);
    expect(typeof answer.body.error).toBe('string');
    expect(ERROR_CODES[code as keyof typeof ERROR_CODES]).toBe(status);
  });

  it('answers 413 to a client that writes its whole over-limit body before it reads, instead of resetting it', async () => {
    // Python's http.client (tritonclient's) writes the body first: a socket closed on unread bytes sends a reset.
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => {});
    const size = 9 * 2 ** 20;
    socket.write(
      `POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
    );
    const written = new Promise<boolean>((resolve) =>
      socket.write(Buffer.alloc(size, 0x20), (error) => resolve(!error)),
    );
    expect(await written).toBe(true);
    await closed;
    const [head = '', body = ''] = Buffer.concat(chunks).toString().split('\r\n\r\n');
    expect(head.split(' ')[1]).toBe('413');
    expect(JSON.parse(body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('refuses an over-limit body from its headers alone: Expect 100-continue, or more than it would drain', async () => {
    for (const headers of [
      'Expect: 100-continue\r\nContent-Length: 9437184',
      `Content-Length: ${100 * 2 ** 30}`, // then only 10 bytes come: no waiting for the rest
    ]) {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => {});
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.write(`POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n${headers}\r\n\r\n0123456789`);
      await closed;
      const text = Buffer.concat(chunks).toString();
      expect(text).not.toMatch(/100 Continue/);
      expect(text.split(' ')[1]).toBe('413');
      expect(JSON.parse(text.split('\r\n\r\n')[1]!)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    }
  });

  it('maps a request that did not arrive in time to 408 REQUEST_TIMEOUT, and a reset to no answer', () => {
    expect(fromClientError({ code: 'ERR_HTTP_REQUEST_TIMEOUT' })).toMatchObject({
      status: 408,
      code: 'REQUEST_TIMEOUT',
    });
    expect(fromClientError({ code: 'ECONNRESET' })).toBeUndefined();
  });

  it('answers a readiness probe with ready: false and its name while draining', async () => {
    const server = await createServer({ model: MODEL, ep: 'cpu', watch: false });
    const at = Number(new URL(await listen(server, { port: 0, host: '127.0.0.1' })).port);
    // A request whose body never comes holds the drain open; a kept-alive connection asks the probes meanwhile.
    const stalled = connect(at, '127.0.0.1');
    stalled.on('error', () => {});
    stalled.write('POST /v2/models/lenet5-relu-mnist/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n');
    const probe = connect(at, '127.0.0.1');
    await new Promise((resolve) => probe.once('connect', resolve));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = server.close();
    const ask = (path: string) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve) => {
        probe.once('data', (chunk: Buffer) => {
          const [head = '', body = ''] = chunk.toString().split('\r\n\r\n');
          resolve({ status: Number(head.split(' ')[1]), body: JSON.parse(body) as Record<string, unknown> });
        });
        probe.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      });
    try {
      expect(await ask('/v2/models/lenet5-relu-mnist/ready')).toEqual({
        status: 503,
        body: { name: 'lenet5-relu-mnist', ready: false, error: 'server is shutting down', code: 'SHUTTING_DOWN' },
      });
    } finally {
      probe.destroy();
      stalled.destroy();
      await closing;
    }
  });

  it('answers a model that failed to load with ready: false and the reason as error and code', async () => {
    const dir = await tempDir();
    await copyFile(MODEL, join(dir, 'digits.onnx'));
    await writeFile(join(dir, 'broken.onnx'), 'not a model');
    const server = await createServer({ model: dir, ep: 'cpu', watch: false });
    try {
      const response = await server.app.inject({ url: '/v2/models/broken/ready' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ name: 'broken', ready: false, code: 'MODEL_NOT_READY' });
      expect(response.json().error).toMatch(/not a valid ONNX model/);
      expect((await server.app.inject({ url: '/v2/models/digits/ready' })).json()).toEqual({
        name: 'digits',
        ready: true,
      });
    } finally {
      await server.close();
    }
  });
});

describe('start-up log', () => {
  it('gives one line per model: its provider and, briefly, why not the faster ones; a reload gives one line', async () => {
    const dir = await tempDir();
    await copyFile(MODEL, join(dir, 'digits.onnx'));
    await copyFile('models/lenet5-mnist.onnx', join(dir, 'classic.onnx'));
    const lines: string[] = [];
    const server = await createServer({ model: dir, ep: 'auto', watch: false, log: (line) => lines.push(line) });
    try {
      const models = server.registry.list();
      expect(lines).toHaveLength(models.length);
      models.forEach((model, i) => {
        const line = lines[i]!;
        expect(line).not.toContain('\n');
        expect(line.length).toBeLessThan(260);
        expect(line).toMatch(new RegExp(`^model ${model.name} ready on ${model.session.ep}\\b`));
        for (const { ep, reason } of model.session.skipped) {
          expect(line).toMatch(new RegExp(`\\b${ep}(, \\w+)*: ${reason.replace(/[()*/.]/g, '\\$&')}`));
        }
        if (model.session.skipped.length > 0) expect(line).toContain('see docs/api.md, "Execution providers"');
      });
      expect(await readFile('docs/api.md', 'utf8')).toMatch(/^## Execution providers$/m);

      lines.length = 0;
      await server.registry.reload('digits');
      expect(lines).toEqual([expect.stringMatching(/^model digits reloaded on \w+(, \d+ instances)?: [^(]*$/)]);
    } finally {
      await server.close();
    }
  });
});
