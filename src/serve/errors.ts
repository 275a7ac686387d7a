/**
 * The server's side of the error catalogue (src/common/errors.ts): errors that fastify and Node's HTTP parser
 * raise themselves, mapped to catalogue codes, so every error response is JSON
 * `{"error": "<message>", "code": "<CODE>"}` with the code's status.
 */
import { maxHeaderSize, STATUS_CODES } from 'node:http';
import { CnnxError } from '../common/index.js';

/** The most parts (fields and files) a multipart form may have (@fastify/multipart's `parts` limit). */
export const MULTIPART_PARTS = 16;

/** The longest path parameter (a model's name or version) routes take: file names may be up to 255 bytes. */
export const MAX_PARAM_LENGTH = 1024;

/** Maps an error fastify raised itself (body parsing, limits, content types) to the catalogue. */
export function fromFastifyError(error: { code?: string; statusCode?: number; message: string }): CnnxError {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CnnxError(error.message, 'PAYLOAD_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new CnnxError(error.message, 'UNSUPPORTED_MEDIA_TYPE');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new CnnxError(`request body is not valid JSON: ${error.message}`, 'INVALID_JSON');
    case 'FST_ERR_BAD_URL':
      return new CnnxError(`the URL is not valid: ${error.message}`, 'BAD_REQUEST');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      // Every path parameter is a model's name or version, which no served model has that long (gRPC: NOT_FOUND).
      return new CnnxError(
        `no model has a name or version over ${MAX_PARAM_LENGTH} characters; GET /v2 lists the served models`,
        'MODEL_NOT_FOUND',
      );
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_FILES_LIMIT':
      return new CnnxError(error.message, 'PAYLOAD_TOO_LARGE');
    case 'FST_PARTS_LIMIT':
      return new CnnxError(
        `the form has more than ${MULTIPART_PARTS} parts (fields and files); send the picture with fewer fields`,
        'PAYLOAD_TOO_LARGE',
      );
    default:
      break;
  }
  if (error instanceof SyntaxError || error.statusCode === 400) return new CnnxError(error.message, 'BAD_REQUEST');
  if (error.statusCode === 413) return new CnnxError(error.message, 'PAYLOAD_TOO_LARGE');
  if (error.statusCode === 415) return new CnnxError(error.message, 'UNSUPPORTED_MEDIA_TYPE');
  if (error.statusCode === 503) return new CnnxError(error.message, 'SHUTTING_DOWN', { retryAfter: 1 });
  return new CnnxError('internal error', 'INTERNAL');
}

/**
 * Maps an error Node's HTTP parser raised before a request existed (a malformed request line or header, headers
 * over the size limit, a request not received within the request timeout) to the catalogue; undefined when the
 * connection is gone and there is no one to answer.
 */
export function fromClientError(error: { code?: string }): CnnxError | undefined {
  switch (error.code) {
    case 'ECONNRESET':
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new CnnxError('the request was not received in time; send it again', 'REQUEST_TIMEOUT');
    case 'HPE_HEADER_OVERFLOW':
      return new CnnxError(`the request headers are over the ${maxHeaderSize}-byte limit`, 'HEADERS_TOO_LARGE');
    case 'HPE_INVALID_TRANSFER_ENCODING':
      // `Transfer-Encoding: gzip` without chunked: a compressed body whose end only the closing connection marks.
      return new CnnxError(
        'this Transfer-Encoding is not accepted here; send the body uncompressed with a Content-Length (or chunked)',
        'UNSUPPORTED_MEDIA_TYPE',
      );
    default:
      return new CnnxError(`malformed HTTP request (${error.code ?? 'parse error'})`, 'BAD_REQUEST');
  }
}

/** The raw HTTP/1.1 answer for `error`, for a socket that has no request object to reply through. */
export function rawErrorResponse(error: CnnxError): string {
  const body = JSON.stringify({ error: error.message, code: error.code });
  return (
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n` +
    `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}
