/**
 * KServe v2 REST as Triton's and KServe's clients send it, over a real port: no Content-Type, the binary tensor
 * data extension both ways, nested data, requested outputs, classification, versioned routes, server metadata,
 * model configuration and statistics; and the request faults that used to answer 500 or the wrong message.
 */
import { copyFile, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { createServer, listen, type CnnxServer } from '../../src/serve/index.js';
import { OFF_LOOP_BYTES } from '../../src/serve/json-pool.js';
import { tempDir } from '../helpers/temp-dir.js';

const MODEL = 'models/lenet5-relu-mnist.onnx';
const FIXTURES = 'test/serve/fixtures';
let mnist: Dataset;
let server: CnnxServer;
let base: string;

const pixels = (i: number) => Array.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784), (v) => v / 255);

/** One HTTP request with exactly these headers (no Content-Type unless given): status, headers and body bytes. */
function send(
  method: string,
  path: string,
  body?: Buffer | string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const request = httpRequest(
      url,
      {
        method,
        headers: {
          ...headers,
          // A body is sent with its length, unless chunked is asked for.
          ...(body !== undefined && headers['transfer-encoding'] === undefined
            ? { 'content-length': Buffer.byteLength(body) }
            : {}),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
const json = (response: { body: Buffer }) => JSON.parse(response.body.toString('utf8'));

/** Splits a binary-extension answer into its JSON header and the binary section. */
function splitAnswer(response: { headers: Record<string, unknown>; body: Buffer }) {
  const length = Number(response.headers['inference-header-content-length']);
  return {
    header: JSON.parse(response.body.subarray(0, length).toString('utf8')),
    binary: response.body.subarray(length),
  };
}
const floats = (bytes: Buffer) =>
  Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));

/** The JSON route's logits for the fixture's image (the first MNIST test digit), as application/json. */
let reference: number[];
/** The fixtures' image (the same digit in the binary and the nested fixture) and its JSON route logits. */
let fixtureValues: number[];
let fixtureReference: number[];

beforeAll(async () => {
  mnist = await loadDataset('mnist');
  const dir = await tempDir();
  await copyFile(MODEL, join(dir, 'digits.onnx'));
  server = await createServer({ model: dir, ep: 'cpu', watch: false, maxQueueDelayMs: 1 });
  base = await listen(server, { port: 0, host: '127.0.0.1' });
  const answer = await send(
    'POST',
    '/v2/models/digits/infer',
    JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: pixels(0) }] }),
    { 'content-type': 'application/json' },
  );
  reference = json(answer).outputs[0].data;
  const fixture = await readFile(join(FIXTURES, 'infer-binary-1x1x28x28.bin'));
  fixtureValues = floats(fixture.subarray(147));
  const fixtureAnswer = await send('POST', '/v2/models/digits/infer', inferJson(fixtureValues), {
    'content-type': 'application/json',
  });
  fixtureReference = json(fixtureAnswer).outputs[0].data;
});
afterAll(() => server?.close());

const inferJson = (data: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data }], ...extra });

/** A binary tensor request of `count` images: its JSON header (with `extra` members), then the float32 bytes. */
function binaryInfer(values: Float32Array, count: number, extra: Record<string, unknown> = {}) {
  const tensor = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const input = { name: 'input', shape: [count, 1, 28, 28], datatype: 'FP32' };
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ ...input, parameters: { binary_data_size: tensor.length } }], ...extra }),
  );
  return { header, body: Buffer.concat([header, tensor]) };
}

describe('requests as Triton and KServe clients send them', () => {
  it("answers a JSON infer request with no Content-Type header, and with curl -d's", async () => {
    const answer = await send('POST', '/v2/models/digits/infer', inferJson(pixels(0)));
    expect(answer.status).toBe(200);
    expect(json(answer).outputs[0].data).toEqual(reference);
    const curl = await send('POST', '/v2/models/digits/infer', inferJson(pixels(0)), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(json(curl).outputs[0].data).toEqual(reference);
  });

  it('answers the binary tensor request (header length, no Content-Type) in binary, with the JSON logits', async () => {
    const body = await readFile(join(FIXTURES, 'infer-binary-1x1x28x28.bin'));
    const answer = await send('POST', '/v2/models/digits/infer', body, { 'inference-header-content-length': '147' });
    expect(answer.status, answer.body.toString()).toBe(200);
    expect(answer.headers['content-type']).toBe('application/octet-stream');
    const { header, binary } = splitAnswer(answer);
    expect(header.outputs).toEqual([
      { name: 'logits', datatype: 'FP32', shape: [1, 10], parameters: { binary_data_size: 40 } },
    ]);
    expect(floats(binary)).toEqual(fixtureReference);
  });

  it('says that a binary tensor body needs its header length when it comes without one', async () => {
    const body = await readFile(join(FIXTURES, 'infer-binary-1x1x28x28.bin'));
    const answer = await send('POST', '/v2/models/digits/infer', body);
    expect(answer.status).toBe(400);
    expect(json(answer).error).toMatch(
      /; a JSON header followed by binary tensor data needs the Inference-Header-Content-Length header \(the length of its JSON part\)$/,
    );
  });

  it('reads a binary body however it arrives: in pieces that split the header, and chunked with no length', async () => {
    const count = 64;
    const values = Float32Array.from(mnist.test.pixels.subarray(0, count * 784), (v) => v / 255);
    const expected = json(
      await send(
        'POST',
        '/v2/models/digits/infer',
        JSON.stringify({ inputs: [{ name: 'input', shape: [count, 1, 28, 28], datatype: 'FP32', data: [...values] }] }),
      ),
    ).outputs[0].data;
    const { header: head, body } = binaryInfer(values, count);
    /** Writes `pieces` one event-loop turn apart; with `length`, a Content-Length, else chunked encoding. */
    const sendPieces = (pieces: Buffer[], length: boolean) =>
      new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const headers: Record<string, string> = { 'inference-header-content-length': String(head.length) };
        if (length) headers['content-length'] = String(body.length);
        const request = httpRequest(
          new URL('/v2/models/digits/infer', base),
          { method: 'POST', headers },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => resolve({ status: response.statusCode!, body: Buffer.concat(chunks) }));
          },
        );
        request.on('error', reject);
        void (async () => {
          for (const piece of pieces) {
            request.write(piece);
            await new Promise((next) => setTimeout(next, 5));
          }
          request.end();
        })();
      });
    // The first piece ends inside the JSON header, the second inside the tensor, the third is an odd size.
    const cuts = [head.length - 3, head.length + 1001, head.length + 70_003, body.length];
    const pieces = cuts.map((end, i) => body.subarray(i === 0 ? 0 : cuts[i - 1], end));
    for (const length of [true, false]) {
      const answer = await sendPieces(pieces, length);
      expect(answer.status, answer.body.toString()).toBe(200);
      expect(json(answer).outputs[0].data).toEqual(expected);
    }
  });

  it.each(['0', '+147', '1.47e2', '0x93', '147.0'])(
    'refuses Inference-Header-Content-Length %j: the JSON header length in digits, from 1',
    async (length) => {
      const body = await readFile(join(FIXTURES, 'infer-binary-1x1x28x28.bin'));
      const answer = await send('POST', '/v2/models/digits/infer', body, { 'inference-header-content-length': length });
      expect(answer.status).toBe(400);
      expect(json(answer)).toEqual({
        error: `Inference-Header-Content-Length must be the length in bytes of the JSON header that starts the body, in digits, from 1 to the body's ${body.length} bytes; got ${JSON.stringify(length)}`,
        code: 'BAD_REQUEST',
      });
    },
  );

  it('refuses an input with both "data" and binary_data_size, and a compressed body', async () => {
    const values = Buffer.from(Float32Array.from(pixels(0)).buffer);
    const head = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 3136 }, data: [1] },
        ],
      }),
    );
    const both = await send('POST', '/v2/models/digits/infer', Buffer.concat([head, values]), {
      'inference-header-content-length': String(head.length),
    });
    expect(both.status).toBe(400);
    expect(json(both)).toEqual({
      error: `input 'input' has both "data" and binary_data_size; send one`,
      code: 'INVALID_INPUT',
    });
    const gzip = await send('POST', '/v2/models/digits/infer', inferJson(pixels(0)), { 'content-encoding': 'gzip' });
    expect(gzip.status).toBe(415);
    expect(json(gzip).code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('takes a binary input with application/octet-stream and answers JSON when outputs are not binary', async () => {
    const values = Buffer.from(new Float32Array(pixels(0)).buffer);
    const head = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: values.length } },
        ],
      }),
    );
    const answer = await send('POST', '/v2/models/digits/infer', Buffer.concat([head, values]), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(head.length),
    });
    expect(json(answer)).toMatchObject({ outputs: [{ name: 'logits' }] });
    expect(answer.headers['inference-header-content-length']).toBeUndefined();
    expect(json(answer).outputs[0].data).toEqual(reference);
  });

  it('takes data nested as the tensor shape', async () => {
    const answer = await send(
      'POST',
      '/v2/models/digits/infer',
      await readFile(join(FIXTURES, 'infer-nested-data.json')),
    );
    expect(answer.status).toBe(200);
    expect(json(answer).outputs[0].data).toEqual(fixtureReference);
  });

  it('takes any rectangular nesting of the values, and refuses ragged or mixed ones, on both parsing paths', async () => {
    const values = pixels(0);
    const rows = (width: number) =>
      Array.from({ length: 784 / width }, (_, r) => values.slice(r * width, (r + 1) * width));
    // The fast path, and JSON.parse's (a key written with an escape sends the body there).
    const bodies = (data: unknown) => [inferJson(data), inferJson(data, { 'p\\u0061rameters': {} })];
    for (const data of [rows(28), rows(784), [rows(28)], rows(1)]) {
      for (const body of bodies(data)) {
        const answer = await send('POST', '/v2/models/digits/infer', body);
        expect(json(answer).outputs[0].data).toEqual(reference);
      }
    }
    const ragged = [values.slice(0, 783), values.slice(783)];
    const mixed = [values.slice(0, 783), values[783]];
    const late = [...values.slice(0, 783), [values[783]]];
    for (const [data, error] of [
      [ragged, 'data is ragged: arrays 2 deep hold 783 and 1 items'],
      [mixed, 'data mixes numbers and arrays at one level'],
      [late, 'data mixes numbers and arrays at one level'],
    ] as const) {
      for (const body of bodies(data)) {
        const answer = await send('POST', '/v2/models/digits/infer', body);
        expect(answer.status).toBe(400);
        expect(json(answer)).toEqual({
          error: `input 'input' ${error}; nest it as the shape [1,1,28,28], or send it flat`,
          code: 'INVALID_INPUT',
        });
      }
    }
  });

  it('honours requested outputs: binary_data per output, and a 400 for an unknown output', async () => {
    const binary = await send(
      'POST',
      '/v2/models/digits/infer',
      inferJson(pixels(0), { outputs: [{ name: 'logits', parameters: { binary_data: true } }] }),
    );
    expect(floats(splitAnswer(binary).binary)).toEqual(reference);
    const unknown = await send(
      'POST',
      '/v2/models/digits/infer',
      inferJson(pixels(0), { outputs: [{ name: 'probs' }] }),
    );
    expect(unknown.status).toBe(400);
    expect(json(unknown)).toEqual({
      error: `unknown output "probs"; model 'digits' has 'logits'`,
      code: 'INVALID_INPUT',
    });
  });

  it('answers the classification extension with "value:index:label" BYTES, in JSON and in binary', async () => {
    const order = reference.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
    const expected = order.slice(0, 3).map(([v, i]) => `${v.toFixed(6)}:${i}:${i}`);
    const answer = await send(
      'POST',
      '/v2/models/digits/infer',
      inferJson(pixels(0), { outputs: [{ name: 'logits', parameters: { classification: 3 } }] }),
    );
    expect(json(answer).outputs[0]).toEqual({ name: 'logits', datatype: 'BYTES', shape: [1, 3], data: expected });
    expect(Number(expected[0]!.split(':')[1])).toBe(mnist.test.labels[0]);
    const binary = await send(
      'POST',
      '/v2/models/digits/infer',
      inferJson(pixels(0), { outputs: [{ name: 'logits', parameters: { classification: 3, binary_data: true } }] }),
    );
    const section = splitAnswer(binary).binary;
    const entries: string[] = [];
    for (let at = 0; at < section.length;) {
      const length = section.readUInt32LE(at);
      entries.push(section.subarray(at + 4, at + 4 + length).toString('utf8'));
      at += 4 + length;
    }
    expect(entries).toEqual(expected);
  });

  it('serves every model route under /versions/1 too, and 404 for another version', async () => {
    const versioned = await send('POST', '/v2/models/digits/versions/1/infer', inferJson(pixels(0)));
    expect(json(versioned).outputs[0].data).toEqual(reference);
    for (const route of ['', '/ready', '/config', '/stats']) {
      expect((await send('GET', `/v2/models/digits/versions/1${route}`)).status).toBe(200);
    }
    const other = await send('GET', '/v2/models/digits/versions/2');
    expect(other.status).toBe(404);
    expect(json(other)).toEqual({
      error: `model 'digits' has no version "2"; cnnx serves version 1`,
      code: 'MODEL_NOT_FOUND',
    });
  });

  it('lists exactly the extensions it implements, and serves the model configuration', async () => {
    expect(json(await send('GET', '/v2'))).toMatchObject({
      name: 'cnnx',
      extensions: ['binary_tensor_data', 'classification', 'model_configuration', 'model_repository', 'statistics'],
    });
    expect(json(await send('GET', '/v2/models/digits/config'))).toMatchObject({
      name: 'digits',
      platform: 'onnxruntime_onnx',
      max_batch_size: 1024,
      input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: [1, 28, 28] }],
      output: [{ name: 'logits', data_type: 'TYPE_FP32', dims: [10] }],
      dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: 1000 },
    });
  });

  it('counts inferences, batches and their times in the statistics extension', async () => {
    const stats = async () => json(await send('GET', '/v2/models/digits/stats')).model_stats[0];
    const before = await stats();
    const batch = JSON.stringify({
      inputs: [{ name: 'input', shape: [3, 1, 28, 28], datatype: 'FP32', data: [0, 1, 2].flatMap(pixels) }],
    });
    expect((await send('POST', '/v2/models/digits/infer', batch)).status).toBe(200);
    expect((await send('POST', '/v2/models/digits/infer', inferJson([1, 2, 3]))).status).toBe(400);
    const after = await stats();
    expect(after).toMatchObject({ name: 'digits', version: '1' });
    expect(after.inference_count - before.inference_count).toBe(3);
    expect(after.execution_count - before.execution_count).toBe(1);
    expect(after.inference_stats.success.count - before.inference_stats.success.count).toBe(1);
    expect(after.inference_stats.success.ns).toBeGreaterThan(before.inference_stats.success.ns);
    expect(after.inference_stats.compute_infer.ns).toBeGreaterThan(0);
    expect(after.batch_stats.find((b: { batch_size: number }) => b.batch_size === 3).compute_infer.count).toBe(1);
    // A request refused for its shape is a failure, as Triton counts it; compute times are counted per request.
    expect(after.inference_stats.fail.count - before.inference_stats.fail.count).toBe(1);
    for (const phase of ['compute_input', 'compute_infer', 'compute_output', 'queue'])
      expect(after.inference_stats[phase].count).toBe(after.inference_stats.success.count);
    expect(json(await send('GET', '/v2/models/stats')).model_stats.map((m: { name: string }) => m.name)).toEqual([
      'digits',
    ]);
  });
});

describe('JSON bodies of OFF_LOOP_BYTES or more, read on a thread', () => {
  const count = 400;
  const values = () => Array.from({ length: count }, (_, i) => pixels(i)).flat();
  const largeJson = (data: unknown, extra: Record<string, unknown> = {}, name = 'input') =>
    JSON.stringify({ inputs: [{ name, shape: [count, 1, 28, 28], datatype: 'FP32', data }], ...extra });
  /** The logits of the same images sent as a binary tensor (read on the event loop). */
  async function binaryLogits(): Promise<number[]> {
    const { header, body } = binaryInfer(Float32Array.from(values()), count, {
      outputs: [{ name: 'logits', parameters: { binary_data: false } }],
    });
    const answer = await send('POST', '/v2/models/digits/infer', body, {
      'inference-header-content-length': String(header.length),
    });
    expect(answer.status, answer.body.toString()).toBe(200);
    return json(answer).outputs[0].data;
  }

  it('answers as for the same images in binary, on the fast reader, JSON.parse, and nested', async () => {
    const expected = await binaryLogits();
    const flat = values();
    const nested = Array.from({ length: count }, (_, i) => [
      Array.from({ length: 28 }, (_, r) => flat.slice(i * 784 + r * 28, i * 784 + (r + 1) * 28)),
    ]);
    for (const body of [
      largeJson(flat),
      largeJson(flat, { 'p\\u0061rameters': {} }), // a key written with an escape: JSON.parse reads it
      largeJson(nested),
      largeJson(nested, { 'p\\u0061rameters': {} }),
      `{"__proto__":{"x":1},${largeJson(flat).slice(1)}`,
    ]) {
      expect(Buffer.byteLength(body)).toBeGreaterThanOrEqual(OFF_LOOP_BYTES);
      const answer = await send('POST', '/v2/models/digits/infer', body);
      expect(answer.status, answer.body.toString().slice(0, 300)).toBe(200);
      expect(json(answer).outputs[0].data).toEqual(expected);
    }
  });

  it('refuses what it refuses in a small body with the same message, the header checked first', async () => {
    const flat: unknown[] = values();
    flat[1000] = 'x';
    const ragged = [flat.slice(0, 1000), flat.slice(1000)];
    for (const [body, error] of [
      [largeJson(flat), `input 'input' data[1000] must be a finite number, got "x"`],
      [largeJson(flat, { 'p\\u0061rameters': {} }), `input 'input' data[1000] must be a finite number, got "x"`],
      [
        largeJson(ragged),
        `input 'input' data is ragged: arrays 2 deep hold 1000 and ${count * 784 - 1000} items; nest it as the shape [${count},1,28,28], or send it flat`,
      ],
      [largeJson(flat, {}, 'pixels'), `input name must be 'input', got "pixels"`],
      [
        largeJson(values().slice(1)),
        `input 'input' data has ${count * 784 - 1} values, shape [${count},1,28,28] needs ${count * 784}`,
      ],
    ] as const) {
      const answer = await send('POST', '/v2/models/digits/infer', body);
      expect(answer.status).toBe(400);
      expect(json(answer)).toEqual({ error, code: 'INVALID_INPUT' });
    }
    const truncated = await send('POST', '/v2/models/digits/infer', largeJson(values()).slice(0, -3));
    expect(truncated.status).toBe(400);
    expect(json(truncated)).toMatchObject({
      code: 'INVALID_JSON',
      error: expect.stringMatching(/^request body is not valid JSON: /),
    });
  });

  it('reads a body that is all JSON header, sent chunked (so read into memory of its own)', async () => {
    const body = largeJson(values());
    const expected = json(await send('POST', '/v2/models/digits/infer', body)).outputs[0].data;
    const answer = await send('POST', '/v2/models/digits/infer', body, {
      'transfer-encoding': 'chunked',
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(Buffer.byteLength(body)),
    });
    expect(answer.status, answer.body.toString().slice(0, 300)).toBe(200);
    expect(json(answer).outputs[0].data).toEqual(expected);
  });

  it('answers large bodies from the model served when they are read, while the model is reloaded', async () => {
    const body = largeJson(values());
    const until = performance.now() + 3000;
    const statuses: number[] = [];
    const client = async () => {
      while (performance.now() < until) statuses.push((await send('POST', '/v2/models/digits/infer', body)).status);
    };
    const reloads = async () => {
      while (performance.now() < until) {
        expect((await send('POST', '/v2/repository/models/digits/load', '{}')).status).toBe(200);
        await new Promise((next) => setTimeout(next, 20));
      }
    };
    await Promise.all([client(), client(), reloads()]);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
  });

  it('reads a binary request whose JSON header is that large, and keeps its tensor', async () => {
    const id = 'i'.repeat(OFF_LOOP_BYTES);
    const tensor = Buffer.from(Float32Array.from(pixels(0)).buffer);
    const header = Buffer.from(
      JSON.stringify({
        id,
        inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 3136 } }],
        outputs: [{ name: 'logits', parameters: { binary_data: false } }],
      }),
    );
    const answer = await send('POST', '/v2/models/digits/infer', Buffer.concat([header, tensor]), {
      'inference-header-content-length': String(header.length),
    });
    expect(answer.status).toBe(200);
    expect(json(answer)).toMatchObject({ id, outputs: [{ data: reference }] });
  });
});

describe('request faults answer 4xx with the catalogue shape and a precise message', () => {
  it('treats a "__proto__" key as a plain key, not as invalid JSON', async () => {
    const answer = await send(
      'POST',
      '/v2/models/digits/infer',
      `{"__proto__":{"x":1},${inferJson(pixels(0)).slice(1)}`,
    );
    expect(answer.status).toBe(200);
    expect(json(answer).outputs[0].data).toEqual(reference);
  });

  it('names 1e400 as Infinity, not null', async () => {
    const data = JSON.stringify(pixels(0)).replace(/^\[0,/, '[1e400,');
    const answer = await send('POST', '/v2/models/digits/infer', inferJson([]).replace('"data":[]', `"data":${data}`));
    expect(answer.status).toBe(400);
    expect(json(answer)).toEqual({
      error: "input 'input' data[0] must be a finite float32, got Infinity",
      code: 'INVALID_INPUT',
    });
  });

  it('names the first value of a binary tensor that is not finite, wherever it is', async () => {
    const send3 = async (bad: [number, number][]) => {
      const values = new Float32Array(3 * 784).fill(0.5);
      for (const [at, value] of bad) values[at] = value;
      const head = Buffer.from(
        JSON.stringify({
          inputs: [
            { name: 'input', shape: [3, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 3 * 3136 } },
          ],
        }),
      );
      return send('POST', '/v2/models/digits/infer', Buffer.concat([head, Buffer.from(values.buffer)]), {
        'inference-header-content-length': String(head.length),
      });
    };
    for (const [bad, message] of [
      [[[2351, NaN]], 'data[2351] must be a finite float32, got NaN'],
      [
        [
          [1000, -Infinity],
          [5, NaN],
        ],
        'data[5] must be a finite float32, got NaN',
      ],
      [[[1177, Infinity]], 'data[1177] must be a finite float32, got Infinity'],
    ] as [[number, number][], string][]) {
      const answer = await send3(bad);
      expect(answer.status).toBe(400);
      expect(json(answer)).toEqual({ error: `input 'input' ${message}`, code: 'INVALID_INPUT' });
    }
    const large = await send3([[2351, 1000]]);
    expect([large.status, json(large)]).toEqual([200, expect.anything()]);
  });

  it('refuses an id, binary_data or binary_data_output of the wrong type instead of dropping it', async () => {
    for (const [extra, message] of [
      [{ id: 7 }, '"id" must be a string, got 7'],
      [{ parameters: { binary_data_output: 'yes' } }, 'request binary_data_output must be true or false, got "yes"'],
      [
        { outputs: [{ name: 'logits', parameters: { binary_data: 'yes' } }] },
        'output "logits" binary_data must be true or false, got "yes"',
      ],
    ] as const) {
      const answer = await send('POST', '/v2/models/digits/infer', inferJson(pixels(0), extra));
      expect(answer.status).toBe(400);
      expect(json(answer)).toEqual({ error: message, code: 'INVALID_INPUT' });
    }
  });

  it('refuses inputs that overflow the model, instead of answering null logits', async () => {
    const data = JSON.stringify(pixels(0)).replace(/^\[0,/, '[3.4e38,');
    const answer = await send('POST', '/v2/models/digits/infer', inferJson([]).replace('"data":[]', `"data":${data}`));
    expect(answer.status).toBe(400);
    expect(json(answer).code).toBe('INVALID_INPUT');
    expect(json(answer).error).toMatch(/^the model's outputs for image 0 are not finite .*pixel\/255, in \[0, 1\]$/);
  });

  it('refuses JSON nested deeper than any request needs before parsing it (JSON.parse of millions of brackets takes seconds)', async () => {
    for (const data of ['['.repeat(200_000) + ']'.repeat(200_000), `[${'['.repeat(40)}"x"${']'.repeat(40)}]`]) {
      const answer = await send(
        'POST',
        '/v2/models/digits/infer',
        inferJson([]).replace('"data":[]', `"data":${data}`),
      );
      expect(answer.status).toBe(400);
      expect(json(answer)).toEqual({
        error: 'request body nests arrays or objects more than 32 deep; "data" nests at most as deep as its shape',
        code: 'INVALID_JSON',
      });
    }
    // Valid data with deep nesting beside it: "id", "outputs", "parameters", or the input's own parameters.
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const valid = inferJson(pixels(0));
    for (const body of [
      valid.replace(/^\{/, `{"id":${deep},`),
      valid.replace(/^\{/, `{"outputs":${deep},`),
      valid.replace(/\}$/, `,"parameters":{"x":${deep}}}`),
      valid.replace('"datatype"', `"parameters":${deep},"datatype"`),
    ]) {
      expect(body).not.toBe(valid);
      const answer = await send('POST', '/v2/models/digits/infer', body);
      expect(answer.status).toBe(400);
      expect(json(answer).code).toBe('INVALID_JSON');
    }
    // The JSON header of a binary request too.
    const head = Buffer.from(`{"inputs":${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
    const body = Buffer.concat([head, Buffer.alloc(784 * 4)]);
    const answer = await send('POST', '/v2/models/digits/infer', body, {
      'inference-header-content-length': String(head.length),
    });
    expect(answer.status).toBe(400);
    expect(json(answer).code).toBe('INVALID_JSON');
  });

  it('refuses an empty threshold instead of reading it as 0', async () => {
    const png = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
    const answer = await send('POST', '/v1/models/digits/read-digits?threshold=', png, { 'content-type': 'image/png' });
    expect(answer.status).toBe(400);
    expect(json(answer)).toEqual({ error: 'threshold must be a number from 0 to 1, got ""', code: 'BAD_REQUEST' });
  });

  const form = (part: Buffer, type = 'image/png', boundary = 'cnnxform') =>
    Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="d"\r\nContent-Type: ${type}\r\n\r\n`,
      ),
      part,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);

  it.each([
    ['no boundary', () => form(Buffer.from('x')), 'multipart/form-data'],
    ['garbage', () => Buffer.from('this is not a form at all'), 'multipart/form-data; boundary=cnnxform'],
    ['truncated', () => form(Buffer.alloc(500, 1)).subarray(0, 150), 'multipart/form-data; boundary=cnnxform'],
  ])('answers malformed multipart (%s) with 400', async (_name, body, type) => {
    const answer = await send('POST', '/v1/models/digits/classify', body(), { 'content-type': type });
    expect(answer.status).toBe(400);
    expect(json(answer).code).toBe('BAD_REQUEST');
  });

  it.each([
    [
      'GIF labelled PNG',
      async () =>
        sharp({ create: { width: 28, height: 28, channels: 3, background: '#fff' } })
          .gif()
          .toBuffer(),
      'raw',
      'GIF',
    ],
    [
      'SVG labelled PNG',
      async () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"/>'),
      'raw',
      'SVG or other XML',
    ],
    [
      'GIF in a form',
      async () =>
        sharp({ create: { width: 28, height: 28, channels: 3, background: '#fff' } })
          .gif()
          .toBuffer(),
      'form',
      'GIF',
    ],
    [
      'SVG in a form',
      async () => Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'),
      'form',
      'SVG or other XML',
    ],
  ])('refuses %s: only PNG, JPEG and WebP are taken', async (_name, image, how, format) => {
    const bytes = await image();
    const answer =
      how === 'raw'
        ? await send('POST', '/v1/models/digits/classify', bytes, { 'content-type': 'image/png' })
        : await send('POST', '/v1/models/digits/classify', form(bytes), {
            'content-type': 'multipart/form-data; boundary=cnnxform',
          });
    expect(answer.status).toBe(400);
    expect(json(answer)).toEqual({
      error: `the request body is ${format}; use a PNG, JPEG or WebP image`,
      code: 'BAD_IMAGE',
    });
  });

  it('runs a model as several instances when asked, says so in its config, and answers the same', async () => {
    const dir = await tempDir();
    await copyFile(MODEL, join(dir, 'digits.onnx'));
    const other = await createServer({ model: dir, ep: 'cpu', watch: false, instances: 3 });
    try {
      expect((await other.app.inject({ url: '/v2/models/digits/config' })).json().instance_group).toEqual([
        { name: 'digits', kind: 'KIND_CPU', count: 3 },
      ]);
      const answers = await Promise.all(
        [0, 1, 2, 3, 4, 5].map(() =>
          other.app.inject({ method: 'POST', url: '/v2/models/digits/infer', payload: inferJson(pixels(0)) }),
        ),
      );
      for (const answer of answers) expect(answer.json().outputs[0].data).toEqual(reference);
    } finally {
      await other.close();
    }
  });

  it('answers 503 from /v2/models/{name}/ready with Retry-After for a model that failed to load', async () => {
    const dir = await tempDir();
    await copyFile(MODEL, join(dir, 'digits.onnx'));
    await rm(join(dir, 'broken.onnx'), { force: true });
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(dir, 'broken.onnx'), 'not a model'));
    const other = await createServer({ model: dir, ep: 'cpu', watch: false });
    try {
      for (const url of ['/v2/models/broken/ready', '/v2/models/broken/versions/1/ready']) {
        const answer = await other.app.inject({ url });
        expect(answer.statusCode).toBe(503);
        expect(answer.headers['retry-after']).toBe('5');
        expect(answer.json()).toMatchObject({ ready: false, code: 'MODEL_NOT_READY' });
      }
    } finally {
      await other.close();
    }
  });
});
