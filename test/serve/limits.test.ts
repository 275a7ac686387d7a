import { copyFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { COMMITTED_MODELS } from '../../src/common/index.js';
import type { PixelImage } from '../../src/preprocess/index.js';
import { openSession, readDigitString, readOnnxModel, type ModelSession } from '../../src/runtime/index.js';
import { Batcher, createServer, listen } from '../../src/serve/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const MODEL = 'models/lenet5-relu-mnist.onnx';
const body = (n: number) => ({
  inputs: [{ name: 'input', shape: [n, 1, 28, 28], datatype: 'FP32', data: new Array(n * 784).fill(0.1) }],
});

describe('limits under load', () => {
  it('answers 503 with Retry-After when the batching queue is full, then serves again', async () => {
    // One instance: two batches of 4 run, 8 images wait, and the rest is refused.
    const server = await createServer({
      model: MODEL,
      ep: 'cpu',
      instances: 1,
      maxQueue: 8,
      maxBatch: 4,
      maxQueueDelayMs: 50,
    });
    try {
      const send = () =>
        server.app.inject({ method: 'POST', url: '/v2/models/lenet5-relu-mnist/infer', payload: body(4) });
      const responses = await Promise.all(Array.from({ length: 6 }, send));
      const full = responses.filter((r) => r.statusCode === 503);
      expect(full.length).toBeGreaterThan(0);
      expect(full[0]!.json().code).toBe('QUEUE_FULL');
      expect(full[0]!.headers['retry-after']).toBe('1');
      expect((await send()).statusCode).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('answers 400, not a 503 to retry, to a request of more images than the queue holds', async () => {
    const server = await createServer({ model: MODEL, ep: 'cpu', maxQueue: 8 });
    try {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v2/models/lenet5-relu-mnist/infer',
        payload: body(16),
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({
        error:
          "a request of 16 images is more than this model's queue holds (8, --max-queue); send at most 8 in one request",
        code: 'INVALID_INPUT',
      });
      expect(response.headers['retry-after']).toBeUndefined();
      const config = await server.app.inject({ url: '/v2/models/lenet5-relu-mnist/config' });
      expect(config.json().max_batch_size).toBe(8);
      expect(
        (await server.app.inject({ method: 'POST', url: '/v2/models/lenet5-relu-mnist/infer', payload: body(8) }))
          .statusCode,
      ).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('answers 429 with Retry-After past the in-flight limit', async () => {
    const server = await createServer({ model: MODEL, ep: 'cpu', maxInFlight: 2, maxQueueDelayMs: 30 });
    try {
      const responses = await Promise.all(
        Array.from({ length: 5 }, () =>
          server.app.inject({ method: 'POST', url: '/v2/models/lenet5-relu-mnist/infer', payload: body(1) }),
        ),
      );
      const limited = responses.filter((r) => r.statusCode === 429);
      expect(limited.length).toBeGreaterThan(0);
      expect(limited[0]!.json().code).toBe('TOO_MANY_REQUESTS');
      expect(limited[0]!.headers['retry-after']).toBe('1');
    } finally {
      await server.close();
    }
  });

  it('frees the in-flight count of requests that never get an answer: hang-ups, stalled bodies, cut connections', async () => {
    const server = await createServer({ model: MODEL, ep: 'cpu', maxInFlight: 4, requestTimeoutMs: 1000 });
    try {
      const base = await listen(server, { host: '127.0.0.1', port: 0 });
      const { port } = new URL(base);
      const json = JSON.stringify(body(1));
      const head = (length: number) =>
        `POST /v2/models/lenet5-relu-mnist/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
      /** Sends `bytes` on a connection of its own and resolves when the server has closed it (or after `ms`). */
      const send = (bytes: string, { hangUpAfterMs }: { hangUpAfterMs?: number } = {}) =>
        new Promise<void>((resolve) => {
          const socket = connect(Number(port), '127.0.0.1', () => socket.write(bytes));
          socket.on('data', () => undefined);
          socket.on('error', () => resolve());
          socket.on('close', () => resolve());
          if (hangUpAfterMs !== undefined) setTimeout(() => socket.destroy(), hangUpAfterMs);
        });
      const half = head(json.length) + json.slice(0, json.length / 2);
      // More of each than the limit: a count that leaked would refuse everything after.
      for (let i = 0; i < 6; i++) await send(half, { hangUpAfterMs: 50 }); // the client hangs up mid-body
      await Promise.all(Array.from({ length: 6 }, () => send(half))); // the body stalls: 408 after 1 s
      for (let i = 0; i < 6; i++) await send(`${head(json.length)}${json}GARBAGE\r\n\r\n`); // bytes after a request
      const health = await fetch(`${base}/v2/health/live`);
      expect(health.status).toBe(200);
      const answers = await Promise.all(
        Array.from({ length: 4 }, () =>
          fetch(`${base}/v2/models/lenet5-relu-mnist/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: json,
          }),
        ),
      );
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    } finally {
      await server.close();
    }
  }, 60_000);

  /** A batcher whose runtime never answers stands in for a wedged accelerator. */
  const wedgedBatcher = (maxBatch: number, timeoutMs: number) =>
    new Batcher({
      maxBatch,
      maxDelayMs: 0,
      maxQueue: 16,
      imageSize: 784,
      imageDims: [1, 28, 28],
      timeoutMs,
      run: () => new Promise(() => {}),
    });

  it('times a request out with 503 when inference does not answer', async () => {
    const server = await createServer({ model: MODEL, ep: 'cpu', requestTimeoutMs: 100 });
    try {
      const model = server.registry.get('lenet5-relu-mnist')!;
      (model as { batcher: Batcher }).batcher = wedgedBatcher(4, 100);
      const response = await server.app.inject({
        method: 'POST',
        url: '/v2/models/lenet5-relu-mnist/infer',
        payload: body(1),
      });
      expect(response.statusCode).toBe(503);
      expect(response.json().code).toBe('TIMEOUT');
      expect(response.headers['retry-after']).toBe('1');
    } finally {
      await server.app.close();
    }
  });

  it('times out queued requests as well as the running batch, and leaves the queue empty', async () => {
    const batcher = wedgedBatcher(1, 50);
    const started = performance.now();
    const answers = await Promise.allSettled([1, 2, 3].map(() => batcher.submit(new Float32Array(784), 1)));
    expect(answers.map((a) => a.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(answers.map((a) => ((a as PromiseRejectedResult).reason as { code: string }).code)).toEqual([
      'TIMEOUT',
      'TIMEOUT',
      'TIMEOUT',
    ]);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(batcher.depth).toBe(0);
  });

  it('answers what it holds when unloading, and refuses later requests with 503 instead of reaching a released session', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new Batcher({
      maxBatch: 4,
      maxDelayMs: 0,
      maxQueue: 16,
      imageSize: 784,
      imageDims: [1, 28, 28],
      run: async (_data, dims) => {
        await gate;
        return { data: new Float32Array(dims[0]! * 10), dims: [dims[0]!, 10] };
      },
    });
    const held = batcher.submit(new Float32Array(784), 1);
    const closed = batcher.close();
    await expect(batcher.submit(new Float32Array(784), 1)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    release();
    expect((await held).length).toBe(10);
    await closed;
  });

  it('refuses model files over the size limit', async () => {
    const dir = await tempDir();
    await copyFile(MODEL, join(dir, 'big.onnx'));
    await expect(createServer({ model: join(dir, 'big.onnx'), ep: 'cpu', maxModelBytes: 1000 })).rejects.toThrow(
      /big.onnx: \d+ bytes is over the 1000-byte model size limit/,
    );
  });
});

describe('digit-string segmentation', () => {
  let session: ModelSession;
  const signature = { inputShape: [-1, 1, 28, 28], labels: [...'0123456789'], outputKind: 'logits' as const };
  beforeAll(async () => {
    session = await openSession((await readOnnxModel(COMMITTED_MODELS.digits)).bytes, { ep: 'cpu' });
  });
  afterAll(() => session?.release());
  const read = async (image: PixelImage) => (await readDigitString(session, signature, image, 0)).text;

  const mnistDigits = async (indices: number[], overlap: number) => {
    const mnist = await loadDataset('mnist');
    const width = 28 * indices.length - overlap * (indices.length - 1) + 20;
    const canvas = new Uint8ClampedArray(width * 48);
    indices.forEach((index, k) => {
      for (let y = 0; y < 28; y++)
        for (let x = 0; x < 28; x++) {
          const at = (y + 10) * width + 10 + k * (28 - overlap) + x;
          canvas[at] = Math.max(canvas[at]!, mnist.test.pixels[index * 784 + y * 28 + x]!);
        }
    });
    return {
      image: { width, height: 48, channels: 1, data: canvas },
      labels: indices.map((i) => mnist.test.labels[i]),
    };
  };

  it('ignores specks and keeps the digits', async () => {
    const { image, labels } = await mnistDigits([3, 2, 1], 0);
    for (const [x, y] of [
      [2, 2],
      [60, 44],
      [5, 40],
    ])
      image.data[y! * image.width + x!] = 255;
    expect(await read(image)).toBe(labels.join(''));
  });

  it('splits touching digits', async () => {
    const { image, labels } = await mnistDigits([3, 2], 12);
    const reading = await readDigitString(session, signature, image, 0);
    expect(reading.text).toBe(labels.join(''));
    expect(reading.digits[0]!.box.x).toBeLessThan(reading.digits[1]!.box.x);
  });

  it('works on a dark-on-light picture decoded from PNG', async () => {
    const { image, labels } = await mnistDigits([7, 4, 0], 0);
    const png = await sharp(Buffer.from(image.data.map((v) => 255 - v)), {
      raw: { width: image.width, height: 48, channels: 1 },
    })
      .png()
      .toBuffer();
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(await read({ width: info.width, height: info.height, channels: info.channels, data })).toBe(labels.join(''));
  });
});
