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
function decodeSafetensors(bytes: Uint8Array, file: string): { tensors: TensorMap; metadata: Record<string, string> } {
  const fail = (why: string) => new CnnxError(`${file}: not a valid weights file (${why})`, 'BAD_WEIGHTS');
  if (bytes.length < 8) throw fail('too short');
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > bytes.length - 8) throw fail('header longer than the file');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  } catch {
    throw fail('header is not JSON');
  }
  const dataStart = 8 + headerLength;
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

export async function readSafetensors(file: string): Promise<{ tensors: TensorMap; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new CnnxError(`${file}: cannot read (${whyUnreadable(error)})`, 'BAD_WEIGHTS');
  }
  return decodeSafetensors(bytes, file);
}

/**
 * The `__metadata__` of a safetensors file, read from its header alone (a checkpoint's position, without reading its
 * tensors).
 * @throws CnnxError BAD_WEIGHTS for a file that cannot be read or whose header is not a safetensors header.
 */
export async function readSafetensorsMetadata(file: string): Promise<Record<string, string>> {
  const fail = (why: string) => new CnnxError(`${file}: not a valid weights file (${why})`, 'BAD_WEIGHTS');
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw new CnnxError(`${file}: cannot read (${whyUnreadable(error)})`, 'BAD_WEIGHTS');
  }
  try {
    const size = Buffer.alloc(8);
    if ((await handle.read(size, 0, 8, 0)).bytesRead < 8) throw fail('too short');
    const headerLength = Number(size.readBigUInt64LE(0));
    if (headerLength > (await handle.stat()).size - 8) throw fail('header longer than the file');
    const header = Buffer.alloc(headerLength);
    await handle.read(header, 0, headerLength, 8);
    try {
      const parsed = JSON.parse(header.toString('utf8')) as { __metadata__?: Record<string, string> };
      return parsed.__metadata__ ?? {};
    } catch {
      throw fail('header is not JSON');
    }
  } finally {
    await handle.close();
  }
}
