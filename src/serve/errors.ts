/**
 * The server's error catalogue (like fastify's lib/errors.js): every error response is JSON
 * `{"error": "<message>", "code": "<CODE>"}` with the status below. docs/api.md documents each code; a test
 * fails if one is missing there.
 */
export const ERROR_STATUS = Object.freeze({
  BAD_REQUEST: 400,
  INVALID_JSON: 400,
  INVALID_INPUT: 400,
  BAD_IMAGE: 400,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_REQUESTS: 429,
  INTERNAL: 500,
  QUEUE_FULL: 503,
  MODEL_NOT_READY: 503,
  TIMEOUT: 503,
  SHUTTING_DOWN: 503,
} as const);

export type ErrorCode = keyof typeof ERROR_STATUS;

export class HttpError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Seconds a client should wait before retrying (503 and 429). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

/** Maps an error fastify raised itself (body parsing, limits, content types) to the catalogue. */
export function fromFastifyError(error: { code?: string; statusCode?: number; message: string }): HttpError {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError('PAYLOAD_TOO_LARGE', error.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new HttpError('UNSUPPORTED_MEDIA_TYPE', error.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HttpError('INVALID_JSON', `request body is not valid JSON: ${error.message}`);
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new HttpError('PAYLOAD_TOO_LARGE', error.message);
    default:
      break;
  }
  if (error instanceof SyntaxError || error.statusCode === 400) return new HttpError('BAD_REQUEST', error.message);
  if (error.statusCode === 413) return new HttpError('PAYLOAD_TOO_LARGE', error.message);
  if (error.statusCode === 415) return new HttpError('UNSUPPORTED_MEDIA_TYPE', error.message);
  if (error.statusCode === 503) return new HttpError('SHUTTING_DOWN', error.message, 1);
  return new HttpError('INTERNAL', 'internal error');
}
