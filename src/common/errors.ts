/**
 * Errors a user can cause and fix (bad arguments, bad files, missing optional packages).
 * The CLI prints their message as one line and exits non-zero; anything else is a bug and keeps its stack.
 */
export class CnnxError extends Error {
  override name = 'CnnxError';
  /** Stable machine-readable code, e.g. `IDX_BAD_MAGIC`. */
  readonly code: string;

  constructor(message: string, code = 'CNNX_ERROR', options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** True for errors whose message is meant for the user as it is. */
export function isUserError(error: unknown): error is CnnxError {
  return error instanceof CnnxError;
}

/** Message of any thrown value, for reporting. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
