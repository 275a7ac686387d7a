/** Typed-array memory that can be handed to another thread whole. */

/**
 * Whether `view` covers all of its own ArrayBuffer (not a window into a larger one, such as Node's Buffer pool, a
 * request body or a protobuf message, and not shared memory): only such memory may be transferred (detached) or
 * taken over without a copy.
 */
export function spansWholeBuffer(view: ArrayBufferView): boolean {
  return view.buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
}
