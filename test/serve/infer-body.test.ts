/**
 * The infer body reader: the binary tensor extension's body split into its JSON header and the tensor bytes in
 * memory of their own, whatever the chunks; fastify's limits and errors otherwise.
 */
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { readInferBody, type InferBody } from '../../src/serve/routes/infer-body.js';

/** Feeds `chunks` to the reader as a request with these headers and body limit; resolves to its body or error. */
function read(chunks: Buffer[], headers: Record<string, string>, bodyLimit = 1 << 20) {
  const payload = new PassThrough();
  const request = { headers, routeOptions: { bodyLimit } } as unknown as FastifyRequest;
  const result = new Promise<InferBody>((resolve, reject) =>
    readInferBody(request, payload as unknown as IncomingMessage, (error, body) =>
      error ? reject(error) : resolve(body!),
    ),
  );
  for (const chunk of chunks) payload.write(chunk);
  payload.end();
  return result;
}

const head = Buffer.from('{"inputs":[]}');
const tensor = Buffer.from(Float32Array.from([1.5, -2, 3.25, 4]).buffer);
const body = Buffer.concat([head, tensor]);
const lengths = { 'content-length': String(body.length), 'inference-header-content-length': String(head.length) };

describe('reading an infer body', () => {
  it.each([
    ['one chunk', [body]],
    ['a chunk per byte', [...body].map((byte) => Buffer.of(byte))],
    [
      'the header split, the tensor split',
      [body.subarray(0, 5), body.subarray(5, head.length + 3), body.subarray(head.length + 3)],
    ],
  ])('splits %s into the header and a tensor that owns its memory', async (_name, chunks) => {
    const parts = (await read(chunks, lengths)) as { header: Buffer; tensor: Uint8Array };
    expect(parts.header.toString()).toBe(head.toString());
    expect(parts.tensor.byteOffset).toBe(0);
    expect(parts.tensor.buffer.byteLength).toBe(tensor.length);
    expect([...new Float32Array(parts.tensor.buffer)]).toEqual([1.5, -2, 3.25, 4]);
  });

  it('reads other bodies whole: no header length, one past the body, chunked', async () => {
    for (const headers of <Record<string, string>[]>[
      { 'content-length': String(body.length) },
      { 'content-length': String(body.length), 'inference-header-content-length': String(body.length + 1) },
      { 'inference-header-content-length': String(head.length) },
    ]) {
      const whole = await read([body.subarray(0, 7), body.subarray(7)], headers);
      expect(Buffer.isBuffer(whole) && whole.equals(body)).toBe(true);
    }
  });

  it("refuses a body over the limit with fastify's 413, by its Content-Length or as it arrives", async () => {
    await expect(read([body], lengths, body.length - 1)).rejects.toMatchObject({ statusCode: 413 });
    await expect(read([body, body], { 'inference-header-content-length': '3' }, body.length + 1)).rejects.toMatchObject(
      {
        statusCode: 413,
      },
    );
  });

  it('refuses a body shorter or longer than its Content-Length with 400', async () => {
    await expect(read([body.subarray(0, body.length - 1)], lengths)).rejects.toMatchObject({
      code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
      statusCode: 400,
    });
    await expect(read([body, Buffer.of(1)], lengths)).rejects.toMatchObject({ statusCode: 400 });
  });
});
