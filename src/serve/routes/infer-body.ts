/**
 * Reading a KServe v2 infer request's body. With the binary tensor data extension (an Inference-Header-Content-Length
 * within a Content-Length), the JSON header and the tensor bytes go into memory of their own as they arrive: the
 * tensor part into an ArrayBuffer that holds exactly it, so that it is the input's Float32Array (aligned) without a
 * copy, and moves to the inference thread whole. Any other body is read whole, as fastify's `parseAs: 'buffer'`
 * reads it; the route says what is wrong with a header length that does not fit. Limits and errors are fastify's
 * own: 413 past the body limit, 400 when the body's length differs from its Content-Length.
 */
import type { IncomingMessage } from 'node:http';
import { errorCodes, type FastifyRequest } from 'fastify';

/** Header of the binary tensor data extension: the length of the JSON part that starts the body. */
export const HEADER_LENGTH = 'inference-header-content-length';

/**
 * The Inference-Header-Content-Length of a request: a number of bytes written in plain decimal digits; NaN for any
 * other value (a sign, spaces, hex, an exponent, the header given twice); undefined when there is none.
 */
export function headerLengthOf(request: FastifyRequest): number | undefined {
  const value = request.headers[HEADER_LENGTH];
  if (value === undefined) return undefined;
  return typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : NaN;
}

/** A body read whole, or split into its JSON header and the tensor bytes (each in memory of its own). */
export type InferBody = Buffer | { header: Buffer; tensor: Uint8Array };

/**
 * A fastify content-type parser (the `(request, payload, done)` form) for infer bodies.
 * @throws through `done`: FST_ERR_CTP_BODY_TOO_LARGE, FST_ERR_CTP_INVALID_CONTENT_LENGTH, or the stream's error.
 */
export function readInferBody(
  request: FastifyRequest,
  payload: IncomingMessage,
  done: (error: Error | null, body?: InferBody) => void,
): void {
  const limit = request.routeOptions.bodyLimit;
  const contentLength = Number(request.headers['content-length']);
  if (contentLength > limit) {
    // A body that could be drained whole is, so that its client reads the 413; a larger one is refused at once.
    if (contentLength > Math.max(limit, DISCARD_MAX_BYTES)) return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    return discardThen(payload, limit, () => done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE()));
  }
  const headerLength = headerLengthOf(request) ?? NaN;
  // A header length of 0 is a fault the route names; so is one past the body.
  const split = Number.isSafeInteger(contentLength) && headerLength > 0 && headerLength <= contentLength;
  // Each part's memory is taken when its first byte arrives, not on the client's word in Content-Length alone.
  let header: Buffer | undefined;
  let tensor: Uint8Array | undefined;
  const chunks: Buffer[] = [];
  let received = 0;

  const finish = (error: Error | null, body?: InferBody) => {
    payload.off('data', onData).off('end', onEnd).off('error', onEnd);
    done(error, body);
  };
  function onData(chunk: Buffer) {
    if (received + chunk.length > limit) {
      payload.off('data', onData).off('end', onEnd).off('error', onEnd);
      return discardThen(payload, limit, () => done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE()));
    }
    if (split) {
      if (received + chunk.length > contentLength) return finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      const inHeader = Math.max(0, Math.min(headerLength - received, chunk.length));
      if (inHeader > 0) chunk.copy((header ??= Buffer.allocUnsafe(headerLength)), received, 0, inHeader);
      if (inHeader < chunk.length) {
        // Uninitialised and unpooled: every byte is written before it is read, and the memory is its own.
        tensor ??= new Uint8Array(Buffer.allocUnsafeSlow(contentLength - headerLength).buffer);
        tensor.set(chunk.subarray(inHeader), received + inHeader - headerLength);
      }
    } else {
      chunks.push(chunk);
    }
    received += chunk.length;
  }
  function onEnd(error?: Error & { statusCode?: number }) {
    if (error) {
      if (!(typeof error.statusCode === 'number' && error.statusCode >= 400)) error.statusCode = 400;
      return finish(error);
    }
    if (!Number.isNaN(contentLength) && received !== contentLength) {
      return finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
    }
    if (!split) return finish(null, Buffer.concat(chunks, received));
    finish(null, {
      header: header ?? Buffer.alloc(0),
      tensor: tensor ?? new Uint8Array(Buffer.allocUnsafeSlow(contentLength - headerLength).buffer),
    });
  }
  payload.on('data', onData).on('end', onEnd).on('error', onEnd);
  payload.resume();
}

/** Bytes of a refused body read and dropped, at most, before the 413 goes and the connection closes. */
const DISCARD_MAX_BYTES = 64 * 2 ** 20;

/**
 * Reads and drops the rest of a body too large to take (up to DISCARD_MAX_BYTES, or `limit` if larger), then calls
 * `then` (which answers 413 and closes the connection). A client that writes its whole body before it reads the
 * answer (Python's http.client, and so tritonclient) would otherwise get a broken pipe or a reset instead of the 413:
 * closing a socket with unread bytes makes the kernel send a reset.
 */
function discardThen(payload: IncomingMessage, limit: number, then: () => void): void {
  let dropped = 0;
  const most = Math.max(limit, DISCARD_MAX_BYTES);
  const stop = () => {
    payload.off('data', onData).off('end', stop).off('error', stop).off('close', stop);
    then();
  };
  function onData(chunk: Buffer) {
    dropped += chunk.length;
    if (dropped > most) stop();
  }
  if (payload.complete) return then();
  payload.on('data', onData).on('end', stop).on('error', stop).on('close', stop);
  payload.resume();
}
