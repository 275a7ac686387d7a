/**
 * Reading a KServe v2 JSON infer request with its tensor's numbers parsed straight from the body's bytes into a
 * Float32Array: `JSON.parse` would build an array of doubles that is then copied into float32 (two thirds of a
 * one-image request's parse time, and the garbage behind it). The rest of the request (names, shape, outputs,
 * parameters) still goes through `JSON.parse`, with the `data` array's bytes replaced by `null`.
 *
 * It is a fast path only: a body it does not take whole (a `data` that is not an array of JSON numbers nested to
 * one depth in arrays of one length per depth, a value outside float32's finite range, an "inputs" or "data" key
 * given twice, a key of the request or of its first input written with escapes, JSON that does not parse) gives
 * `undefined`, and the caller parses the body as before, with the errors it always gave. What it does take, it
 * reads to the same float32 values `JSON.parse` then a Float32Array would give, bit for bit.
 */
import { CnnxError } from '../../common/index.js';
import { JsonTensor } from '../inference.js';

const enum Char {
  Tab = 9,
  Newline = 10,
  Return = 13,
  Space = 32,
  Quote = 34,
  Plus = 43,
  Comma = 44,
  Minus = 45,
  Dot = 46,
  Zero = 48,
  Nine = 57,
  Colon = 58,
  OpenBracket = 91,
  Backslash = 92,
  CloseBracket = 93,
  UpperE = 69,
  LowerE = 101,
  OpenBrace = 123,
  CloseBrace = 125,
}

/** Powers of ten that a double holds exactly (10^22 is the largest: 5^22 < 2^53). */
const EXACT_POWERS = [1];
for (let i = 1; i <= 22; i++) EXACT_POWERS.push(EXACT_POWERS[i - 1]! * 10);

/** Integers from here on may not be exact doubles. */
const EXACT_INTEGERS = 2 ** 53;

/** Floats of scratch kept between requests: 64 images of 28x28. */
const KEPT_SCRATCH = 1 << 16;

/** Scratch for the values of the request being read (the event loop reads one body at a time). */
let scratch = new Float32Array(KEPT_SCRATCH);

const isSpace = (c: number) => c === Char.Space || c === Char.Newline || c === Char.Return || c === Char.Tab;

/** Where the bytes stop being whitespace. */
function skipSpace(bytes: Uint8Array, at: number): number {
  while (at < bytes.length && isSpace(bytes[at]!)) at++;
  return at;
}

/** The end (after the closing quote) of the string starting at `at`; -1 when it does not end. */
function skipString(bytes: Uint8Array, at: number): number {
  for (let i = at + 1; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === Char.Backslash) i++;
    else if (c === Char.Quote) return i + 1;
  }
  return -1;
}

/**
 * The end of the JSON value starting at `at`, found by bracket depth and strings alone (JSON.parse checks the
 * rest); -1 when it does not end.
 */
function skipValue(bytes: Uint8Array, at: number): number {
  let depth = 0;
  let i = at;
  while (i < bytes.length) {
    const c = bytes[i]!;
    if (c === Char.Quote) {
      i = skipString(bytes, i);
      if (i < 0 || depth === 0) return i;
      continue;
    }
    const closes = c === Char.CloseBracket || c === Char.CloseBrace;
    // A number or literal ends where its container goes on.
    if (depth === 0 && (closes || c === Char.Comma || isSpace(c))) return i;
    if (c === Char.OpenBracket || c === Char.OpenBrace) depth++;
    else if (closes && --depth === 0) return i + 1;
    i++;
  }
  return depth === 0 ? i : -1;
}

/**
 * Calls `onMember(key, valueStart)` for each member of the object that starts at `at`; the callback returns where
 * the value ends. Returns the end of the object, or -1 for what this reader does not take (escaped keys included).
 */
function forEachMember(bytes: Uint8Array, at: number, onMember: (key: string, valueStart: number) => number): number {
  if (bytes[at] !== Char.OpenBrace) return -1;
  let i = skipSpace(bytes, at + 1);
  if (bytes[i] === Char.CloseBrace) return i + 1;
  for (;;) {
    if (bytes[i] !== Char.Quote) return -1;
    const keyEnd = skipString(bytes, i);
    if (keyEnd < 0 || bytes.subarray(i, keyEnd).includes(Char.Backslash)) return -1;
    const key = Buffer.from(bytes.buffer, bytes.byteOffset + i + 1, keyEnd - i - 2).toString('latin1');
    i = skipSpace(bytes, keyEnd);
    if (bytes[i] !== Char.Colon) return -1;
    const valueEnd = onMember(key, skipSpace(bytes, i + 1));
    if (valueEnd < 0) return -1;
    i = skipSpace(bytes, valueEnd);
    if (bytes[i] === Char.Comma) i = skipSpace(bytes, i + 1);
    else if (bytes[i] === Char.CloseBrace) return i + 1;
    else return -1;
  }
}

/** How deep a request's JSON may nest arrays and objects: deeper is refused before it is parsed. */
const MAX_NESTING = 32;

/** readNumbers's count of items per depth, for the open array, and the width of every array at that depth. */
const items = new Int32Array(MAX_NESTING + 1);
const widths = new Int32Array(MAX_NESTING + 1);

/** A `data` array read: its values (in `scratch`), how deep its numbers sit, and where it ends. */
interface NumbersRead {
  count: number;
  depth: number;
  end: number;
}

/** The value of the number written from `start` to `end`, through `Number`, as `JSON.parse` reads it. */
function textValue(bytes: Uint8Array, start: number, end: number): number {
  return Number(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1'));
}

/**
 * Reads the array of JSON numbers (nested or not) that starts at `at` into `scratch`, growing it as needed.
 * Returns undefined for anything else in it, numbers at different depths, arrays of one depth that differ in
 * length, an empty array, nesting deeper than MAX_NESTING, or a value that is not a finite float32. One loop with no calls on its way: this is the request's hot path. Reads past the end give
 * undefined, which is no character: every comparison with it is false.
 *
 * A number is the integer of its digits times a power of ten; the integer, built a digit at a time in a double, is
 * exact while below 2^53 (every step is then exact). An exact integer and a power of ten up to 10^22 (exact too)
 * give the correctly rounded double in one multiplication or division, as `JSON.parse` does (W. D. Clinger, "How to
 * read floating point numbers accurately", PLDI 1990). A larger integer is within 5e-14 (relative, a rounding per
 * digit) of the true value, which decides the float32 unless the value lies within 1e-12 of a float32 rounding
 * boundary; then, and for larger
 * powers of ten or more than 200 characters, the number's text goes through `Number`.
 */
function readNumbers(bytes: Uint8Array, at: number): NumbersRead | undefined {
  let values = scratch;
  let count = 0;
  let depth = 0;
  let leafDepth = 0;
  // Items in the open array at each depth, and the items every array at that depth holds (from the first one
  // closed): a ragged nesting goes to the caller's path, which names it.
  items.fill(0);
  widths.fill(-1);
  let i = at;
  let c = 0;
  for (;;) {
    // At a value: open arrays until a number.
    for (; ; i++) {
      c = bytes[i]!;
      if (c === Char.OpenBracket) {
        if (depth === MAX_NESTING) return undefined;
        items[depth]!++;
        items[++depth] = 0;
      } else if (!isSpace(c)) break;
    }
    if (leafDepth === 0) leafDepth = depth;
    else if (leafDepth !== depth) return undefined;

    const start = i;
    const negative = c === Char.Minus;
    if (negative) c = bytes[++i]!;
    let mantissa = 0;
    const integerStart = i;
    while (c >= Char.Zero && c <= Char.Nine) {
      mantissa = mantissa * 10 + (c - Char.Zero);
      c = bytes[++i]!;
    }
    // No digits is not a number (a string, null, an empty array...): the caller's errors say which; nor is a
    // leading zero in JSON.
    if (i === integerStart || (i - integerStart > 1 && bytes[integerStart] === Char.Zero)) return undefined;
    let power = 0;
    if (c === Char.Dot) {
      c = bytes[++i]!;
      const fractionStart = i;
      while (c >= Char.Zero && c <= Char.Nine) {
        mantissa = mantissa * 10 + (c - Char.Zero);
        c = bytes[++i]!;
      }
      if (i === fractionStart) return undefined;
      power = fractionStart - i;
    }
    if (c === Char.LowerE || c === Char.UpperE) {
      c = bytes[++i]!;
      const exponentNegative = c === Char.Minus;
      if (exponentNegative || c === Char.Plus) c = bytes[++i]!;
      const exponentStart = i;
      let exponent = 0;
      while (c >= Char.Zero && c <= Char.Nine) {
        if (exponent < 1e9) exponent = exponent * 10 + (c - Char.Zero); // beyond, only Number can say
        c = bytes[++i]!;
      }
      if (i === exponentStart) return undefined;
      power += exponentNegative ? -exponent : exponent;
    }

    let value: number;
    if (mantissa === 0) {
      value = negative ? -0 : 0;
    } else if (power >= -22 && power <= 22 && i - start <= 200) {
      const double = power < 0 ? mantissa / EXACT_POWERS[-power]! : mantissa * EXACT_POWERS[power]!;
      value = Math.fround(negative ? -double : double);
      if (mantissa >= EXACT_INTEGERS && Math.fround(double * (1 - 1e-12)) !== Math.fround(double * (1 + 1e-12))) {
        value = Math.fround(textValue(bytes, start, i));
      }
    } else {
      value = Math.fround(textValue(bytes, start, i));
    }
    if (!Number.isFinite(value)) return undefined; // the caller names the value
    if (count === values.length) {
      const grown = new Float32Array(values.length * 2);
      grown.set(values);
      values = scratch = grown;
    }
    values[count++] = value;
    items[depth]!++;

    // After a value: close arrays until a comma, or the end of the whole array.
    for (; isSpace(c); c = bytes[i]!) i++;
    while (c === Char.CloseBracket) {
      if (widths[depth] === -1) widths[depth] = items[depth]!;
      else if (widths[depth] !== items[depth]) return undefined;
      depth--;
      for (c = bytes[++i]!; isSpace(c); c = bytes[i]!) i++;
      if (depth === 0) return { count, depth: leafDepth, end: i };
    }
    if (c !== Char.Comma) return undefined;
    i++;
  }
}

/**
 * The infer request in `body` (UTF-8 JSON) with its first input's `data` as a JsonTensor; undefined when the
 * body is not one this fast path takes (see the module's header), or nests deeper than MAX_NESTING outside its
 * data: parse it with `JSON.parse` instead (which refuses the latter).
 */
export function parseInferJson(body: Uint8Array): unknown {
  let read: NumbersRead | undefined;
  let dataStart = -1;
  let inputsSeen = 0;
  let dataSeen = 0;
  const start = skipSpace(body, 0);
  const end = forEachMember(body, start, (key, at) => {
    // Every "inputs" and "data" key counts, whatever its value: JSON.parse keeps the last of a key given twice.
    if (key === 'inputs') inputsSeen++;
    if (key !== 'inputs' || body[at] !== Char.OpenBracket) return skipValue(body, at);
    const first = skipSpace(body, at + 1);
    if (body[first] !== Char.OpenBrace) return skipValue(body, at);
    const firstEnd = forEachMember(body, first, (inputKey, valueAt) => {
      if (inputKey === 'data') dataSeen++;
      if (inputKey !== 'data' || body[valueAt] !== Char.OpenBracket) return skipValue(body, valueAt);
      dataStart = valueAt;
      read = readNumbers(body, valueAt);
      return read ? read.end : -1;
    });
    if (firstEnd < 0) return -1;
    // The other inputs: the route refuses more than one, with the message it gives after JSON.parse.
    let i = skipSpace(body, firstEnd);
    while (body[i] === Char.Comma) {
      const next = skipValue(body, skipSpace(body, i + 1));
      if (next < 0) return -1;
      i = skipSpace(body, next);
    }
    return body[i] === Char.CloseBracket ? i + 1 : -1;
  });
  if (end < 0 || skipSpace(body, end) !== body.length || read === undefined || inputsSeen !== 1 || dataSeen !== 1) {
    return undefined;
  }
  // What JSON.parse reads, around the data array, nests no deeper than any request may (MAX_NESTING).
  const depth = depthAfter(body, MAX_NESTING, 0, dataStart, 0);
  if (depth < 0 || depthAfter(body, MAX_NESTING, read.end, body.length, depth) < 0) return undefined;
  const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let request: unknown;
  try {
    request = JSON.parse(buffer.toString('utf8', 0, dataStart) + 'null' + buffer.toString('utf8', read.end));
  } catch {
    return undefined;
  }
  const input = (request as { inputs?: { data?: unknown }[] } | null)?.inputs?.[0];
  if (typeof input !== 'object' || input === null || input.data !== null) return undefined;
  input.data = new JsonTensor(scratch.slice(0, read.count), read.depth);
  // A large request's scratch is not kept for the next one.
  if (scratch.length > KEPT_SCRATCH) scratch = new Float32Array(KEPT_SCRATCH);
  return request;
}

/**
 * Whether the JSON in `body` nests arrays and objects deeper than `limit` (brackets inside strings do not count).
 * A byte scan: `JSON.parse` of millions of nested brackets holds the event loop for seconds.
 */
function nestsDeeperThan(body: Uint8Array, limit: number): boolean {
  return depthAfter(body, limit, 0, body.length, 0) < 0;
}

/**
 * The nesting depth after bytes [start, end) of `body`, entered at `depth`; -1 once it passes `limit`. The scan
 * stops at a string that does not end.
 */
function depthAfter(body: Uint8Array, limit: number, start: number, end: number, depth: number): number {
  for (let i = start; i < end; i++) {
    const c = body[i]!;
    if (c === Char.Quote) {
      i = skipString(body, i) - 1;
      if (i < 0) return depth; // an unterminated string: JSON.parse names it
    } else if (c === Char.OpenBracket || c === Char.OpenBrace) {
      if (++depth > limit) return -1;
    } else if (c === Char.CloseBracket || c === Char.CloseBrace) {
      depth--;
    }
  }
  return depth;
}

/**
 * `JSON.parse` of a request's JSON part (the whole body, or the header before binary tensors); an own `__proto__`
 * key is a plain key here, never a prototype.
 * @throws CnnxError INVALID_JSON for an empty part, one nested more than MAX_NESTING deep (refused before parsing:
 *   JSON.parse of millions of brackets holds the event loop for seconds), or one that does not parse.
 */
export function parseJson(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw new CnnxError('request body is empty; send a JSON infer request', 'INVALID_JSON');
  if (nestsDeeperThan(bytes, MAX_NESTING)) {
    throw new CnnxError(
      `request body nests arrays or objects more than ${MAX_NESTING} deep; "data" nests at most as deep as its shape`,
      'INVALID_JSON',
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CnnxError(`request body is not valid JSON: ${(error as Error).message}`, 'INVALID_JSON');
  }
}

/** Whether a parsed JSON value is an object (not null, not an array). */
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A request's JSON part (the whole body, or the header before binary tensors) as `JSON.parse` reads it, with the
 * first input's `data` read straight to float32 (a JsonTensor) when the fast reader takes the part.
 * @throws CnnxError INVALID_JSON as parseJson
 */
export function readJsonPart(bytes: Buffer): unknown {
  return parseInferJson(bytes) ?? parseJson(bytes);
}
