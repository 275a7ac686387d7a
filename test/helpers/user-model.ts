/**
 * Models as `cnnx train --data` exports them for the user's own pictures, built with seeded random weights (no
 * training): the spec fitted to the pictures' channels, size and classes, exported by the real exporter with the
 * `resize` procedure in its metadata. Random weights are enough for path and parity checks. And colour pictures to
 * classify with them.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildOnnxModel } from '../../src/export/index.js';
import { getModelSpec } from '../../src/models/index.js';
import { createNetwork, useBackend, weightsOf } from '../../src/train/index.js';

export interface UserModelOptions {
  /** [channels, height, width] of the pictures. */
  input: [number, number, number];
  labels: string[];
  /** The dataset's name, as `cnnx.dataset` records it (default `user-pictures`). */
  dataset?: string;
  seed?: number;
}

/** ONNX bytes of lenet5-relu fitted to `input` and `labels`, with seeded random weights. */
export async function buildUserModel({
  input,
  labels,
  dataset = 'user-pictures',
  seed = 7,
}: UserModelOptions): Promise<Uint8Array> {
  await useBackend('cpu');
  const spec = getModelSpec('lenet5-relu', { input, classes: labels.length });
  const network = createNetwork(spec, seed);
  try {
    return buildOnnxModel(spec, await weightsOf(network), {
      dataset,
      labels,
      preprocess: { method: 'resize', input, layout: 'NCHW', scale: 'pixel / 255' },
      metrics: {},
    });
  } finally {
    network.dispose();
  }
}

/** Writes `buildUserModel(options)` to `<dir>/<name>.onnx`; returns the path. */
export async function writeUserModel(dir: string, name: string, options: UserModelOptions): Promise<string> {
  const file = join(dir, `${name}.onnx`);
  await writeFile(file, await buildUserModel(options));
  return file;
}

/**
 * A `width` x `height` RGB picture: four coloured quadrants (red, green, blue, gray) with a diagonal gradient, so
 * that every channel and position matters. `format` picks the encoding (PNG is lossless: the same pixels everywhere).
 */
export async function colourPicture(width: number, height: number, format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  const quadrant = [
    [220, 40, 30],
    [30, 200, 60],
    [40, 60, 230],
    [128, 128, 128],
  ];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const colour = quadrant[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)]!;
      const shade = Math.round(((x + y) / (width + height)) * 40);
      for (let c = 0; c < 3; c++) pixels[(y * width + x) * 3 + c] = Math.min(255, colour[c]! + shade);
    }
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 90 }).toBuffer();
}
