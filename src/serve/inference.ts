/**
 * KServe v2 inference whatever the wire: finding the model (and version), checking an input tensor against the
 * model's signature, reading its values (JSON numbers, flat or nested; raw little-endian bytes; gRPC's typed
 * contents), running them through the model's batcher, and building the outputs asked for: the FP32 logits, or the
 * classification extension's BYTES "<value>:<index>:<label>" top-k. REST (routes/kserve.ts) and gRPC (grpc/) both
 * speak through this module, so both give the same answers and the same errors.
 */
import { CnnxError, spansWholeBuffer } from '../common/index.js';
import type { LoadedModel, ModelRegistry } from './model-registry.js';

/** Largest batch one infer request may carry. */
export const MAX_REQUEST_IMAGES = 1024;

/** The only version of a model cnnx serves (the file is the model; a reload replaces it). */
export const MODEL_VERSION = '1';

const invalid = (message: string) => new CnnxError(message, 'INVALID_INPUT');

/**
 * The model `name` (at `version`, when one is given).
 * @throws CnnxError MODEL_NOT_FOUND (no such model or version), MODEL_NOT_READY (its file failed to load).
 */
export function requireModel(registry: ModelRegistry, name: string, version?: string): LoadedModel {
  const model = registry.get(name);
  if (!model) {
    const failure = registry.failures.get(name);
    if (failure) throw new CnnxError(`model '${name}' is not ready: ${failure}`, 'MODEL_NOT_READY', { retryAfter: 5 });
    throw new CnnxError(`model '${name}' not found; GET /v2 lists the served models`, 'MODEL_NOT_FOUND');
  }
  if (version !== undefined && version !== '' && version !== MODEL_VERSION) {
    throw new CnnxError(
      `model '${name}' has no version ${JSON.stringify(version)}; cnnx serves version ${MODEL_VERSION}`,
      'MODEL_NOT_FOUND',
    );
  }
  return model;
}

/**
 * 415 unless the body is sent as it is: no Content-Encoding, an empty one or `identity` (cnnx does not inflate
 * compressed bodies).
 */
export function requireIdentityEncoding(header: string | undefined): void {
  const encoding = (header ?? '').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    throw new CnnxError(
      `Content-Encoding ${JSON.stringify(header)} is not accepted here; send the body uncompressed`,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The content types a route takes, for the message of fastify's own 415 (see requireContentType). */
    accepts?: readonly string[];
    /** The types that message names, when `accepts` also takes other names for them (image/jpg for image/jpeg). */
    named?: readonly string[];
    /** A health or readiness probe: answered while the server drains, and not counted against --max-in-flight. */
    probe?: boolean;
  }
}

/**
 * 415 unless the request's content type is one of `accepted` (fastify would parse text/plain too). A route that
 * declares `config: { accepts }` gets the same message when fastify refuses a type it has no parser for.
 */
export function requireContentType(
  header: string | undefined,
  accepted: readonly string[],
  named: readonly string[] = accepted,
): void {
  const type = (header ?? '').split(';')[0]!.trim().toLowerCase();
  if (!accepted.includes(type)) {
    throw new CnnxError(
      `content type ${JSON.stringify(type || 'none')} not accepted here; use ${named.join(', ')}`,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  }
}

/**
 * Input magnitudes up to which a model whose outputs are not finite is at fault, not its input: pixel/255 inputs
 * lie in [0, 1], and normalised ones within a few units of 0; a model needs inputs near float32's limit (3.4e38)
 * divided by its weights to overflow.
 */
const PLAUSIBLE_INPUT = 1e6;

/**
 * An input tensor's values, checked, and their largest magnitude: what tells an input that overflows a model from a
 * model at fault when the outputs are not finite (taken before inference, which may move the values to its thread).
 */
export interface InputValues {
  values: Float32Array;
  peak: number;
}

/**
 * The largest magnitude in `data`: Infinity if it holds one, NaN if it holds a NaN (Math.max passes NaN on). Four
 * running maxima let the loop go on without waiting for one comparison's result: 45 us for 50,176 values, where a
 * `Number.isFinite` test per value alone takes 89 (`npx tsx bench/input-checks.ts`, BENCHMARKS.md).
 */
function peakOf(data: Float32Array): number {
  let m0 = 0;
  let m1 = 0;
  let m2 = 0;
  let m3 = 0;
  const whole = data.length - (data.length % 4);
  for (let i = 0; i < whole; i += 4) {
    m0 = Math.max(m0, Math.abs(data[i]!));
    m1 = Math.max(m1, Math.abs(data[i + 1]!));
    m2 = Math.max(m2, Math.abs(data[i + 2]!));
    m3 = Math.max(m3, Math.abs(data[i + 3]!));
  }
  for (let i = whole; i < data.length; i++) m0 = Math.max(m0, Math.abs(data[i]!));
  return Math.max(m0, m1, m2, m3);
}

/**
 * Runs `count` images through the model's batcher, counting the request in the model's statistics.
 * @throws CnnxError when the model's outputs for these images are not finite (JSON would write them as null):
 *   INVALID_INPUT when some input value's magnitude is over PLAUSIBLE_INPUT (it overflows the model), else
 *   INFERENCE_FAILED (500: the model computes them from ordinary inputs, a fault of the model).
 */
export async function runModel(model: LoadedModel, input: InputValues, count: number): Promise<Float32Array> {
  const started = performance.now();
  const { peak } = input;
  try {
    const logits = await model.batcher.submit(input.values, count);
    const bad = logits.findIndex((value) => !Number.isFinite(value));
    if (bad >= 0) {
      const image = Math.floor(bad / (logits.length / count));
      if (peak > PLAUSIBLE_INPUT) {
        throw invalid(
          `the model's outputs for image ${image} are not finite (${logits[bad]}): its input values overflow the ` +
            'model; inputs are pixel/255, in [0, 1]',
        );
      }
      throw new CnnxError(
        `model '${model.name}' gives outputs that are not finite (${logits[bad]}) for image ${image}, whose inputs ` +
          `are ordinary (at most ${peak} in magnitude): the model is at fault; check it with \`cnnx eval\``,
        'INFERENCE_FAILED',
      );
    }
    model.stats.succeeded(count, (performance.now() - started) * 1e6);
    return logits;
  } catch (error) {
    model.stats.failed((performance.now() - started) * 1e6);
    if (typeof error === 'object' && error !== null) counted.add(error);
    throw error;
  }
}

/** Errors whose request runModel has counted as failed already. */
const counted = new WeakSet<object>();

/**
 * Handles one inference request for `model` (`handle` checks it, then calls runModel), counting a request refused
 * before inference (a wrong shape, datatype or size) as a failure as well, as Triton's statistics count requests
 * that fail validation.
 */
export async function countingRefusals<T>(model: LoadedModel, handle: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await handle();
  } catch (error) {
    if (!(typeof error === 'object' && error !== null && counted.has(error))) {
      model.stats.failed((performance.now() - started) * 1e6);
    }
    throw error;
  }
}

/** An input tensor's header as a client sent it, not yet checked. */
export interface InputHeader {
  name?: unknown;
  datatype?: unknown;
  shape?: unknown;
}

/**
 * Checks an input tensor's name, datatype and shape ([N, C, H, W], N from 1 to MAX_REQUEST_IMAGES) against the
 * model; returns N and the number of values the tensor must carry.
 * @throws CnnxError INVALID_INPUT naming the tensor, what was expected and what came.
 */
export function checkInputHeader(input: InputHeader, model: LoadedModel): { count: number; values: number } {
  const { inputName, inputShape } = model.signature;
  const [, c, h, w] = inputShape as [number, number, number, number];
  if (input.name !== inputName) throw invalid(`input name must be '${inputName}', got ${JSON.stringify(input.name)}`);
  if (input.datatype !== 'FP32')
    throw invalid(`input '${inputName}' datatype must be "FP32", got ${JSON.stringify(input.datatype)}`);
  const shape = input.shape;
  if (
    !Array.isArray(shape) ||
    shape.length !== 4 ||
    !shape.every(Number.isSafeInteger) ||
    shape[1] !== c ||
    shape[2] !== h ||
    shape[3] !== w ||
    (shape[0] as number) < 1
  ) {
    throw invalid(`input '${inputName}' must have shape [N,${c},${h},${w}] with N >= 1, got ${JSON.stringify(shape)}`);
  }
  const count = shape[0] as number;
  if (count > MAX_REQUEST_IMAGES)
    throw invalid(`batch of ${count} images is over the ${MAX_REQUEST_IMAGES}-image limit per request`);
  return { count, values: count * c * h * w };
}

const nestedDeeper = (name: string, shape: number[]) =>
  invalid(`input '${name}' data is nested deeper than its shape ${JSON.stringify(shape)}`);
const wrongCount = (name: string, count: number, shape: number[], expected: number) =>
  invalid(`input '${name}' data has ${count} values, shape ${JSON.stringify(shape)} needs ${expected}`);

/** How a value that is not a finite float32 is described: JSON.stringify would call Infinity and NaN "null". */
function describeValue(value: unknown): string {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? `${value} (outside float32's range)` : String(value);
  }
  return JSON.stringify(value) ?? String(value);
}

/** Values the server made itself (a prepared picture): with their peak, for `runModel`. */
export function inputValues(values: Float32Array): InputValues {
  return { values, peak: peakOf(values) };
}

/**
 * Checks that every value is a finite float32 (JSON's 1e400 parses to Infinity; raw bytes may hold NaN), in the
 * same pass that finds their peak.
 * @throws CnnxError INVALID_INPUT naming the first bad element.
 */
function checkFinite(name: string, data: Float32Array, source: ArrayLike<unknown> = data): InputValues {
  const checked = inputValues(data);
  if (Number.isFinite(checked.peak)) return checked;
  const i = data.findIndex((value) => !Number.isFinite(value));
  throw invalid(`input '${name}' data[${i}] must be a finite float32, got ${describeValue(source[i])}`);
}

/**
 * A JSON `data` array already read into float32 (routes/infer-json.ts reads a REST body's numbers so): its values
 * in row-major order and the depth its numbers sit at (1 for a flat array).
 */
export class JsonTensor {
  constructor(
    readonly values: Float32Array,
    readonly depth: number,
  ) {}
}

/**
 * A JSON `data` that a JSON pool thread (json-pool.ts) already read against the request's name and shape, and
 * refused: valuesFromJson throws its message, as it would have on this thread.
 */
export class RefusedData {
  constructor(readonly message: string) {}
}

/**
 * The items of nested `data` in row-major order. Every number must sit at the same depth and every array at one
 * depth must hold as many items as the others (a rectangular nesting, as numpy's `tolist()` writes one): the
 * shape's dimensions or any other split of its values, as Triton takes them.
 * @throws CnnxError INVALID_INPUT for data nested deeper than the shape, ragged, or mixing numbers and arrays.
 */
function flattenNested(name: string, data: unknown[], shape: number[]): unknown[] {
  const widths: number[] = [];
  const flat: unknown[] = [];
  let leafDepth = 0;
  const fix = `; nest it as the shape ${JSON.stringify(shape)}, or send it flat`;
  const walk = (array: unknown[], depth: number) => {
    if (depth > shape.length) throw nestedDeeper(name, shape);
    const width = (widths[depth] ??= array.length);
    if (width !== array.length) {
      throw invalid(
        `input '${name}' data is ragged: arrays ${depth} deep hold ${width} and ${array.length} items${fix}`,
      );
    }
    for (const item of array) {
      if (Array.isArray(item)) {
        walk(item, depth + 1);
        continue;
      }
      leafDepth ||= depth;
      if (leafDepth !== depth) throw invalid(`input '${name}' data mixes numbers and arrays at one level${fix}`);
      flat.push(item);
    }
  };
  walk(data, 1);
  return flat;
}

/**
 * The values of a JSON `data` field, flat or nested as the tensor's shape ([[[[...]]]]), as float32; a JsonTensor
 * is checked the same way.
 * @throws CnnxError INVALID_INPUT for a wrong count, a nesting that does not follow the shape, or a value that is
 *   not a finite number in float32's range.
 */
export function valuesFromJson(name: string, data: unknown, shape: number[], expected: number): InputValues {
  if (data instanceof RefusedData) throw invalid(data.message);
  if (data instanceof JsonTensor) {
    if (data.depth > shape.length) throw nestedDeeper(name, shape);
    if (data.values.length !== expected) throw wrongCount(name, data.values.length, shape, expected);
    return inputValues(data.values); // finite already: the reader takes no other number
  }
  if (!Array.isArray(data)) throw invalid(`input '${name}' data must be an array of ${expected} numbers`);
  const flat = data.some(Array.isArray) ? flattenNested(name, data, shape) : data;
  if (flat.length !== expected) throw wrongCount(name, flat.length, shape, expected);
  const values = new Float32Array(expected);
  for (let i = 0; i < expected; i++) {
    const v = flat[i];
    if (typeof v !== 'number') {
      throw invalid(`input '${name}' data[${i}] must be a finite number, got ${describeValue(v)}`);
    }
    values[i] = v;
  }
  return checkFinite(name, values, flat);
}

/**
 * The values of raw tensor bytes: little-endian float32, row-major (KServe v2's binary tensor extension and
 * gRPC's raw_input_contents), in memory of their own: float32 needs 4-byte alignment, which a body's tensor part
 * rarely has, and an array that owns its memory is moved to the inference thread rather than copied again. Bytes
 * that are `owned` (the caller's to give) and fill their own ArrayBuffer are used in place.
 * @throws CnnxError INVALID_INPUT for a byte count other than 4 per value, or a value that is not finite.
 */
export function valuesFromBytes(name: string, bytes: Uint8Array, expected: number, owned = false): InputValues {
  if (bytes.byteLength !== expected * 4) {
    throw invalid(`input '${name}' has ${bytes.byteLength} bytes of data, its shape needs ${expected * 4} (FP32)`);
  }
  if (owned && spansWholeBuffer(bytes)) {
    return checkFinite(name, new Float32Array(bytes.buffer, 0, expected));
  }
  const values = new Float32Array(expected);
  new Uint8Array(values.buffer).set(bytes);
  return checkFinite(name, values);
}

/** An output a request asks for: by name, as FP32 values or as the classification extension's top `classes`. */
export interface RequestedOutput {
  name: string;
  /** Top-k classes as BYTES "value:index:label" instead of the values (classification extension). */
  classification?: number;
  /** Whether the REST answer carries it as binary (binary tensor extension). */
  binary: boolean;
}

/**
 * Checks requested outputs against the model: every name must be the model's output, once; `classification`
 * must be a whole number from 1 to the number of classes.
 * @throws CnnxError INVALID_INPUT naming the output.
 */
export function checkRequestedOutputs(outputs: RequestedOutput[], model: LoadedModel): RequestedOutput[] {
  const { outputName, classes } = model.signature;
  const seen = new Set<string>();
  for (const output of outputs) {
    if (output.name !== outputName) {
      throw invalid(`unknown output ${JSON.stringify(output.name)}; model '${model.name}' has '${outputName}'`);
    }
    if (seen.has(output.name)) throw invalid(`output '${output.name}' is requested twice`);
    seen.add(output.name);
    const k = output.classification;
    if (k !== undefined && !(Number.isSafeInteger(k) && k >= 1 && k <= classes)) {
      throw invalid(`output '${output.name}' classification must be a whole number from 1 to ${classes}, got ${k}`);
    }
  }
  return outputs;
}

/** An output tensor of an answer. */
export type OutputTensor = { name: string; shape: number[]; binary: boolean } & (
  { datatype: 'FP32'; data: Float32Array } | { datatype: 'BYTES'; data: string[] }
);

/**
 * Triton's classification entry for one class: the value as C's "%f" writes it, the class index and its label
 * ("12.345678:7:7").
 */
function classificationEntries(logits: Float32Array, classes: number, k: number, labels: string[]): string[] {
  const entries: string[] = [];
  for (let n = 0; n < logits.length / classes; n++) {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
    for (const index of order.slice(0, k)) {
      const label = labels[index];
      entries.push(`${row[index]!.toFixed(6)}:${index}${label === undefined ? '' : `:${label}`}`);
    }
  }
  return entries;
}

/** The output tensors of `count` images' logits, as `requested` (all outputs, as FP32, when it is empty). */
export function outputTensors(
  model: LoadedModel,
  logits: Float32Array,
  count: number,
  requested: RequestedOutput[],
  binaryByDefault: boolean,
): OutputTensor[] {
  const { outputName, classes, labels } = model.signature;
  const outputs = requested.length > 0 ? requested : [{ name: outputName, binary: binaryByDefault }];
  return outputs.map(({ name, classification, binary }) =>
    classification === undefined
      ? { name, datatype: 'FP32', shape: [count, classes], data: logits, binary }
      : {
          name,
          datatype: 'BYTES',
          shape: [count, classification],
          data: classificationEntries(logits, classes, classification, labels),
          binary,
        },
  );
}

/** BYTES elements as the binary encodings write them: each a 4-byte little-endian length, then its bytes. */
function encodeBytesTensor(elements: string[]): Buffer {
  const parts = elements.map((element) => Buffer.from(element, 'utf8'));
  const out = Buffer.alloc(parts.reduce((sum, part) => sum + 4 + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.writeUInt32LE(part.length, at);
    part.copy(out, at + 4);
    at += 4 + part.length;
  }
  return out;
}

/** An output tensor's values as raw bytes (FP32 little-endian; BYTES length-prefixed). */
export function tensorBytes(output: OutputTensor): Buffer {
  return output.datatype === 'FP32'
    ? Buffer.from(output.data.buffer, output.data.byteOffset, output.data.byteLength)
    : encodeBytesTensor(output.data);
}
