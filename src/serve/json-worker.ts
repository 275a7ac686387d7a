/**
 * A thread of the server's JSON pool (json-pool.ts): reads one large infer request's JSON part (readJsonPart) off
 * the event loop. The bytes arrive transferred. The request comes back by structured clone with its first input's
 * `data` taken out: read to float32 and transferred, or as the message that reading it against the request's own
 * name and shape gives (valuesFromJson, which the route would otherwise run on the event loop). A part that does not
 * parse comes back as its error.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { CnnxError, type ErrorCode } from '../common/index.js';
import { JsonTensor, valuesFromJson } from './inference.js';
import { isObject, parseJson, readJsonPart } from './routes/infer-json.js';

/** A JSON part to read: a whole JSON infer body, or the JSON header before binary tensors. */
export interface JsonPart {
  bytes: Uint8Array;
  part: 'body' | 'header';
}

/** What the thread gives back for a JSON part. */
export type JsonPartRead =
  | {
      request: unknown;
      /** The first input's `data`: read (values, nested `depth` arrays deep), or refused (INVALID_INPUT's message). */
      data?: { values: Float32Array; depth: number } | { refused: string };
    }
  | { error: { message: string; code: ErrorCode } };

export default function readLargeJsonPart({ bytes, part }: JsonPart): JsonPartRead | ReturnType<typeof move> {
  let request: unknown;
  try {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    request = part === 'body' ? readJsonPart(buffer) : parseJson(buffer);
  } catch (error) {
    if (error instanceof CnnxError) return { error: { message: error.message, code: error.code } };
    throw error;
  }
  const input = isObject(request) && Array.isArray(request.inputs) ? (request.inputs[0] as unknown) : undefined;
  if (!isObject(input) || input.data === undefined || input.data === null) return { request };
  const { data, name, shape } = input;
  // Left in place, the data would be cloned back value by value on the event loop; `null` keeps "data was given".
  input.data = null;
  if (data instanceof JsonTensor) return transferred(request, data.values, data.depth);
  // The route reads data only after the header passed its checks: then the name and shape are these, and the shape's
  // product is the count it asks for. A header that fails its checks is refused before its data is looked at.
  if (typeof name !== 'string' || !Array.isArray(shape) || !shape.every(Number.isSafeInteger)) return { request };
  try {
    const expected = (shape as number[]).reduce((product, size) => product * size, 1);
    const { values } = valuesFromJson(name, data, shape as number[], expected);
    let depth = 0;
    for (let item: unknown = data; Array.isArray(item); item = item[0]) depth++;
    return transferred(request, values, depth);
  } catch (error) {
    if (error instanceof CnnxError) return { request, data: { refused: error.message } };
    throw error;
  }
}

/** The request with its data's values, whose memory moves back rather than being copied. */
function transferred(request: unknown, values: Float32Array, depth: number): ReturnType<typeof move> {
  const read: JsonPartRead = { request, data: { values, depth } };
  return move({
    get [transferableSymbol]() {
      return [values.buffer];
    },
    get [valueSymbol]() {
      return read;
    },
  });
}
