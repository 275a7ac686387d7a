/**
 * The safetensors format for named float32 tensors: an 8-byte little-endian header length, a JSON header
 * ({name: {dtype, shape, data_offsets}}, plus string `__metadata__`), then the raw data. Simple, safe to parse,
 * and readable by Python tooling (safetensors, PyTorch) for people who want to compare with the notebook.
 */
import { open, readFile } from 'node:fs/promises';
import { CnnxError, whyUnreadable } from './errors.js';

interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export type TensorMap = Map<string, NamedTensor>;

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Serialises tensors (in insertion order) and string metadata. */
export function encodeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, HeaderEntry | Record<string, string>> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, tensor] of tensors) {
    const size = tensor.shape.reduce((a, b) => a * b, 1);
    if (size !== tensor.data.length) {
      throw new RangeError(`tensor '${name}' has shape [${tensor.shape.join(', ')}] but ${tensor.data.length} values`);
    }
    header[name] = { dtype: 'F32', shape: tensor.shape, data_offsets: [offset, offset + size * 4] };
    offset += size * 4;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pads the header with spaces, counted in UTF-8 bytes (a class name may be "carré"), so the data is 8-byte aligned.
  const headerBytes = new Uint8Array(json.length + ((8 - ((8 + json.length) % 8)) % 8)).fill(0x20);
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const tensor of tensors.values()) {
    out.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength), at);
    at += tensor.data.byteLength;
  }
  return out;
}

/** Parses safetensors bytes; `file` names the source in errors. */
const invalidFile = (file: string, why: string) =>
  new CnnxError(`${file}: not a valid weights file (${why})`, 'BAD_WEIGHTS');

/** The header's length, from the first 8 bytes of a safetensors file of `size` bytes. */
function headerLengthOf(bytes: Uint8Array, size: number, file: string): number {
  if (bytes.length < 8) throw invalidFile(file, 'too short');
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > size - 8) throw invalidFile(file, 'header longer than the file');
  return headerLength;
}

/** The JSON header of safetensors `bytes` (the file, or its first 8 + header-length bytes) of a `size`-byte file. */
function decodeHeader(
  bytes: Uint8Array,
  size: number,
  file: string,
): { header: Record<string, unknown>; dataStart: number } {
  const headerLength = headerLengthOf(bytes, size, file);
  try {
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
    return { header, dataStart: 8 + headerLength };
  } catch {
    throw invalidFile(file, 'header is not JSON');
  }
}

function decodeSafetensors(bytes: Uint8Array, file: string): { tensors: TensorMap; metadata: Record<string, string> } {
  const fail = (why: string) => invalidFile(file, why);
  const { header, dataStart } = decodeHeader(bytes, bytes.length, file);
  const tensors: TensorMap = new Map();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const entry = value as HeaderEntry;
    if (entry.dtype !== 'F32') throw fail(`tensor '${name}' has dtype ${entry.dtype}, expected F32`);
    const [begin, end] = entry.data_offsets;
    const size = entry.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== size * 4 || dataStart + end > bytes.length) throw fail(`tensor '${name}' is truncated`);
    // A copy of its own (a Node Buffer's slice would share the file's memory, at any alignment).
    const copy = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end);
    tensors.set(name, { shape: entry.shape, data: new Float32Array(copy.buffer, copy.byteOffset, size) });
  }
  return { tensors, metadata };
}

const unreadable = (file: string, error: unknown) =>
  new CnnxError(`${file}: cannot read (${whyUnreadable(error)})`, 'BAD_WEIGHTS');

export async function readSafetensors(file: string): Promise<{ tensors: TensorMap; metadata: Record<string, string> }> {
  const bytes = await readFile(file).catch((error: unknown) => {
    throw unreadable(file, error);
  });
  return decodeSafetensors(bytes, file);
}

/**
 * The `__metadata__` of a safetensors file, read from its header alone (a checkpoint's position, without reading its
 * tensors).
 * @throws CnnxError BAD_WEIGHTS for a file that cannot be read or whose header is not a safetensors header.
 */
export async function readSafetensorsMetadata(file: string): Promise<Record<string, string>> {
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw unreadable(file, error);
  });
  try {
    const { size } = await handle.stat();
    const start = Buffer.alloc(Math.min(8, size));
    await handle.read(start, 0, start.length, 0);
    const head = Buffer.alloc(8 + headerLengthOf(start, size, file));
    await handle.read(head, 0, head.length, 0);
    const { header } = decodeHeader(head, size, file);
    return (header.__metadata__ as Record<string, string> | undefined) ?? {};
  } finally {
    await handle.close();
  }
}
