/**
 * The error catalogue: every code cnnx raises, with the HTTP status the server answers it with. Errors a user can
 * cause and fix (bad arguments, files, requests, missing optional packages) are `CnnxError`s carrying one of these
 * codes; the CLI prints their message as one line and exits non-zero, and the server answers
 * `{"error": "<message>", "code": "<CODE>"}` with the code's status. Anything else is a bug and keeps its stack.
 * docs/errors.md documents every code; a test fails when the two differ, either way (as fastify checks its own).
 * This module imports nothing, so code that runs in browsers can use it too.
 */
export const ERROR_CODES = Object.freeze({
  // Requests to the server
  BAD_REQUEST: 400,
  INVALID_JSON: 400,
  INVALID_INPUT: 400,
  BAD_IMAGE: 400,
  NOTHING_TO_CLASSIFY: 422,
  NOT_A_DIGIT_MODEL: 422,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  EXPECTATION_FAILED: 417,
  TOO_MANY_REQUESTS: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  QUEUE_FULL: 503,
  MODEL_NOT_READY: 503,
  TIMEOUT: 503,
  SHUTTING_DOWN: 503,
  // Command-line options and addresses
  BAD_OPTION: 400,
  OPTION_CONFLICT: 400,
  BAD_ADDRESS: 400,
  PORT_DENIED: 403,
  PORT_IN_USE: 409,
  BAD_DATASET: 400,
  DATASET_MISMATCH: 400,
  BAD_EP: 400,
  BAD_OUTPUT: 400,
  // Files cnnx reads and writes
  WRITE_FAILED: 507,
  IDX_MISSING: 404,
  IDX_NOT_A_FILE: 422,
  IDX_UNREADABLE: 422,
  IDX_BAD_GZIP: 422,
  IDX_BAD_MAGIC: 422,
  IDX_BAD_RANK: 422,
  IDX_BAD_DIMS: 422,
  IDX_TRUNCATED: 422,
  IDX_BAD_LABEL: 422,
  IDX_PAIR_MISMATCH: 422,
  IDX_COUNT_MISMATCH: 422,
  CHECKSUM_MISMATCH: 422,
  DATA_BAD_FORMAT: 422,
  DATA_UNAVAILABLE: 503,
  DOWNLOAD_FAILED: 502,
  DATA_NOT_FOUND: 404,
  DATA_BAD_KIND: 422,
  DATA_UNREADABLE: 422,
  DATA_CLASS_COUNT: 422,
  DATA_EMPTY_CLASS: 422,
  DATA_UNKNOWN_CLASS: 422,
  DATA_NEEDS_SIZE: 422,
  DATA_BAD_CSV: 422,
  DATA_TOO_LARGE: 413,
  // Training runs
  BAD_RUN: 422,
  BAD_RUN_DIR: 400,
  RUN_EXISTS: 409,
  RUN_IN_PROGRESS: 409,
  BAD_CHECKPOINT: 422,
  BAD_WEIGHTS: 422,
  NON_FINITE_LOSS: 422,
  LOSS_DIVERGED: 422,
  NO_BACKEND: 503,
  BACKEND_FAILED: 503,
  BACKEND_UNAVAILABLE: 503,
  TRAINING_WORKER_FAILED: 500,
  TRAINING_STEP_FAILED: 500,
  OUT_OF_MEMORY: 507,
  // Models and runtimes
  BAD_MODEL: 400,
  BAD_INPUT_SIZE: 400,
  BAD_OPSET: 400,
  MODEL_UNREADABLE: 422,
  MODEL_MALFORMED: 422,
  MODEL_EXTERNAL_DATA: 422,
  MODEL_SIGNATURE: 422,
  MODEL_TOO_LARGE: 413,
  MODEL_PIN_MISMATCH: 422,
  MODEL_HUGE_TENSOR: 422,
  EXPORT_UNKNOWN_LAYER: 422,
  EXPORT_UNSUPPORTED: 422,
  TFJS_MODEL_INVALID: 422,
  EXPORT_PARITY: 500,
  EP_UNAVAILABLE: 503,
  EP_WRONG_RESULTS: 503,
  SESSION_RELEASED: 503,
  WORKER_EXITED: 503,
  INFERENCE_FAILED: 500,
} as const satisfies Record<string, number>);

/** A code of the catalogue. */
export type ErrorCode = keyof typeof ERROR_CODES;

export interface CnnxErrorOptions extends ErrorOptions {
  /** Seconds a client should wait before retrying (sent as Retry-After with 429 and 503). */
  retryAfter?: number;
}

/** An error a user can cause and fix; its message is meant for them as it is (one line, what to do next). */
export class CnnxError extends Error {
  override name = 'CnnxError';
  /** Stable machine-readable code from the catalogue, e.g. `IDX_BAD_MAGIC`. */
  readonly code: ErrorCode;
  /** The HTTP status the server answers this error with. */
  readonly status: number;
  readonly retryAfter?: number;

  constructor(message: string, code: ErrorCode, options: CnnxErrorOptions = {}) {
    const { retryAfter, ...errorOptions } = options;
    super(message, errorOptions);
    this.code = code;
    this.status = ERROR_CODES[code];
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }
}

/** True for errors whose message is meant for the user as it is. */
export function isUserError(error: unknown): error is CnnxError {
  return error instanceof CnnxError;
}

/** The CnnxError code of a thrown value; undefined for any other value (one that crossed a thread keeps its code). */
export function codeOf(error: unknown): ErrorCode | undefined {
  return error instanceof CnnxError ? error.code : undefined;
}

/** Message of any thrown value, for reporting. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Why a file could not be read, in words, by Node's error code (the code itself when it has no words here). */
const READ_FAILURES: Readonly<Record<string, string>> = Object.freeze({
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a folder: give a file',
  ENOTDIR: 'part of the path is a file, not a folder',
  ELOOP: 'a loop of symbolic links',
  EIO: 'input/output error: a failing disk or a gone network share',
  EMFILE: 'too many files open',
});

/** `error`'s cause for a "cannot read" message: words for a known errno code, else the code or the message. */
export function whyUnreadable(error: unknown): string {
  const code = (error as { code?: string } | null)?.code;
  if (code !== undefined) return READ_FAILURES[code] ?? code;
  return error instanceof Error ? error.message : String(error);
}
