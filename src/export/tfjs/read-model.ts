/**
 * Reading a TensorFlow.js Layers model as `model.save('file://dir')` writes it: `dir/model.json` (the topology
 * and a weights manifest) and the binary shards the manifest lists, relative to model.json. The result is the
 * ModelArtifacts tfjs's own loaders produce, so the same bytes feed the export and `tf.loadLayersModel`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CnnxError, messageOf, whyUnreadable } from '../../common/index.js';

export interface SavedTfjsModel {
  /** The model.json that was read. */
  file: string;
  artifacts: tf.io.ModelArtifacts;
  /** Every weight by its saved name (`<layer name>/<weight>`), float32, tfjs layout. */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
}

/**
 * Reads a saved Layers model from its folder or its model.json.
 * @throws CnnxError TFJS_MODEL_INVALID (no model.json, not JSON, no weights manifest, a shard missing or of the
 *   wrong size, a weight of a dtype other than float32 after dequantisation).
 */
export async function readTfjsModel(path: string): Promise<SavedTfjsModel> {
  const info = await stat(path).catch(() => undefined);
  if (!info)
    throw new CnnxError(`${path}: no such file or folder (give a model.json or its folder)`, 'TFJS_MODEL_INVALID');
  const file = info.isDirectory() ? join(path, 'model.json') : path;
  const invalid = (why: string) => new CnnxError(`${file}: ${why}`, 'TFJS_MODEL_INVALID');
  const text = await readFile(file, 'utf8').catch(async (error: NodeJS.ErrnoException) => {
    // A model saved in a browser (`downloads://name`) is `name.json` beside `name.weights.bin`.
    const other = info.isDirectory()
      ? (await readdir(path).catch(() => [])).find((name) => name.endsWith('.json'))
      : undefined;
    throw invalid(
      `cannot read (${whyUnreadable(error)})${other === undefined ? '' : `; give the model's JSON file itself: --tfjs-model ${join(path, other)}`}`,
    );
  });
  if ([...text.slice(0, 64)].some((c) => c.charCodeAt(0) < 9)) {
    throw invalid(`is a binary file, not a model.json (give the model.json, or its folder, not a weights file)`);
  }
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(text) as tf.io.ModelJSON;
  } catch (error) {
    throw invalid(`not JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalid(
      `holds ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}, not a saved model`,
    );
  }
  if (json.modelTopology === undefined) throw invalid('no modelTopology: not a model saved by tfjs');
  const format = (json as { format?: unknown }).format;
  if (format === 'graph-model' || (json.modelTopology as { node?: unknown }).node !== undefined) {
    throw invalid(
      'is a TensorFlow.js graph model (tf.loadGraphModel, a converted SavedModel); cnnx exports Layers models (tf.loadLayersModel, saved by model.save)',
    );
  }
  if (!Array.isArray(json.weightsManifest)) throw invalid('no weightsManifest: the weights are not listed');
  checkManifest(json.weightsManifest, invalid);
  const folder = dirname(resolve(file));
  const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const shards: Uint8Array[] = [];
    for (const group of manifest) {
      for (const shard of group.paths) {
        shards.push(
          await readFile(join(folder, shard)).catch((error: NodeJS.ErrnoException) => {
            throw invalid(`weight shard ${shard} cannot be read (${error.code ?? error.message})`);
          }),
        );
      }
    }
    const specs = tf.io.getWeightSpecs(manifest);
    const bytes = new Uint8Array(shards.reduce((total, shard) => total + shard.length, 0));
    shards.reduce((offset, shard) => (bytes.set(shard, offset), offset + shard.length), 0);
    return [specs, bytes.buffer];
  });
  return { file, artifacts, weights: decodeWeights(artifacts, invalid) };
}

/**
 * The manifest's structure, before tfjs's loaders read it (they assume it): each group lists its shard paths and
 * its weights, each weight with a name, a shape of whole numbers and a dtype.
 */
function checkManifest(manifest: unknown[], invalid: (why: string) => CnnxError): void {
  manifest.forEach((group: unknown, index) => {
    const where = `weightsManifest[${index}]`;
    if (typeof group !== 'object' || group === null) throw invalid(`${where} is not an object`);
    const { paths, weights } = group as Record<string, unknown>;
    if (!Array.isArray(paths) || !paths.every((path) => typeof path === 'string' && path !== '')) {
      throw invalid(`${where}.paths should list the weight shards' file names, got ${JSON.stringify(paths)}`);
    }
    if (!Array.isArray(weights))
      throw invalid(`${where}.weights should list the weights, got ${JSON.stringify(weights)}`);
    weights.forEach((weight: unknown, at) => {
      const spec = (typeof weight === 'object' && weight !== null ? weight : {}) as Record<string, unknown>;
      const ok =
        typeof spec.name === 'string' &&
        typeof spec.dtype === 'string' &&
        Array.isArray(spec.shape) &&
        spec.shape.every((d) => Number.isInteger(d) && (d as number) >= 0);
      if (!ok) {
        throw invalid(
          `${where}.weights[${at}] should be { name, shape: [whole numbers], dtype }, got ${JSON.stringify(weight)?.slice(0, 120)}`,
        );
      }
    });
  });
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** The weights as float32 arrays, through tfjs's own decoder (which also undoes uint8/uint16/float16 quantisation). */
function decodeWeights(
  artifacts: tf.io.ModelArtifacts,
  invalid: (why: string) => CnnxError,
): SavedTfjsModel['weights'] {
  const specs = artifacts.weightSpecs ?? [];
  const data = artifacts.weightData;
  const size =
    data === undefined ? 0 : Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength;
  const needed = specs.reduce((total, spec) => {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    return total + count * (BYTES_PER_ELEMENT[dtype] ?? 4);
  }, 0);
  if (size !== needed) {
    throw invalid(`the weight shards hold ${size} bytes, but the manifest's ${specs.length} weights need ${needed}`);
  }
  let tensors: tf.NamedTensorMap;
  try {
    tensors = tf.io.decodeWeights(data!, specs);
  } catch (error) {
    throw invalid(`its weights cannot be decoded: ${messageOf(error)}`);
  }
  const weights: SavedTfjsModel['weights'] = new Map();
  try {
    // A model saved with includeOptimizer also lists its optimizer's state (an int32 step count, Adam's moments),
    // in the group `optimizer`: not the model's.
    for (const spec of specs.filter((weight) => weight.group !== 'optimizer')) {
      const tensor = tensors[spec.name]!;
      if (tensor.dtype !== 'float32')
        throw invalid(`weight ${spec.name} is ${tensor.dtype}; cnnx exports float32 weights`);
      const values = tensor.dataSync() as Float32Array;
      if (!values.every(Number.isFinite)) {
        throw invalid(
          `weight ${spec.name} holds NaN or infinite values (a training run that diverged?): there is no model to export`,
        );
      }
      weights.set(spec.name, { shape: [...tensor.shape], data: values });
    }
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return weights;
}
