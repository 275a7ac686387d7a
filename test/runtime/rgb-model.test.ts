/**
 * Models trained on the user's own pictures (RGB or gray, any size and number of classes) through the runtime's
 * paths: the signature read from the file, classification, evaluation on a split, and `cnnx predict --json`, each
 * against the model run directly on the tensor `prepareInput` computes. Random seeded weights: these are path and
 * parity checks, not accuracy.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/index.js';
import { decodeImage, type Split } from '../../src/data/index.js';
import { pictureToPixels, pixelsToInput, prepareInput } from '../../src/preprocess/index.js';
import {
  classifyImages,
  describeLogits,
  evaluateSession,
  inspectOnnx,
  METADATA_KEYS,
  onnx,
  openSession,
  toModelInput,
  type ModelSession,
} from '../../src/runtime/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { buildUserModel, colourPicture } from '../helpers/user-model.js';

const LABELS = ['red', 'green', 'blue', 'gray'];
const TOLERANCE = 1e-5;

/** Largest absolute difference of two equally long arrays. */
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);

/** The model's bytes with its metadata entry `key` set to `value`. */
function withMetadata(bytes: Uint8Array, key: string, value: string): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const entry = model.metadataProps.find((p) => p.key === key);
  if (entry) entry.value = value;
  else model.metadataProps.push(onnx.StringStringEntryProto.create({ key, value }));
  return onnx.ModelProto.encode(model).finish();
}

let rgb: Uint8Array;
let session: ModelSession;
let png: Buffer;
beforeAll(async () => {
  rgb = await buildUserModel({ input: [3, 32, 32], labels: LABELS, dataset: 'colours' });
  session = await openSession(rgb, { ep: 'cpu' });
  png = await colourPicture(40, 30);
});
afterAll(() => session?.release());

describe('the signature of a model trained on the user pictures', () => {
  it('has 3 channels, the resize procedure, its class names and [N, 3, 32, 32]', () => {
    const signature = inspectOnnx(rgb, 'rgb.onnx');
    expect(signature).toMatchObject({
      inputShape: [-1, 3, 32, 32],
      outputShape: [-1, 4],
      channels: 3,
      classes: 4,
      procedure: 'resize',
      labels: LABELS,
      dataset: 'colours',
    });
  });

  it("without a method (or with malformed preprocessing metadata), resizes a colour model's pictures, and prepares a gray one as its dataset's", async () => {
    const noMethod = withMetadata(rgb, METADATA_KEYS.preprocess, JSON.stringify({ input: [3, 32, 32] }));
    expect(inspectOnnx(noMethod, 'a.onnx').procedure).toBe('resize');
    const malformed = withMetadata(rgb, METADATA_KEYS.preprocess, '{"method": "resize"');
    expect(inspectOnnx(malformed, 'c.onnx')).toMatchObject({ procedure: 'resize', labels: LABELS });
    const unknown = withMetadata(rgb, METADATA_KEYS.preprocess, JSON.stringify({ method: 'crop' }));
    expect(inspectOnnx(unknown, 'd.onnx').procedure).toBe('resize');
    const gray = await buildUserModel({ input: [1, 28, 28], labels: LABELS, dataset: 'colours' });
    const grayNoMethod = withMetadata(gray, METADATA_KEYS.preprocess, JSON.stringify({ input: [1, 28, 28] }));
    expect(inspectOnnx(grayNoMethod, 'e.onnx').procedure).toBe('mnist');
    const fashion = withMetadata(grayNoMethod, METADATA_KEYS.dataset, 'fashion-mnist');
    expect(inspectOnnx(fashion, 'f.onnx').procedure).toBe('fit');
  });

  it('refuses an input of 2 channels, saying what it expected', () => {
    const model = onnx.ModelProto.decode(rgb);
    const channels = model.graph?.input?.[0]?.type?.tensorType?.shape?.dim?.[1];
    if (!channels) throw new Error('the model has an input shape');
    channels.dimValue = 2;
    expect(() => inspectOnnx(onnx.ModelProto.encode(model).finish(), 'two.onnx')).toThrow(
      expect.objectContaining({
        code: 'MODEL_SIGNATURE',
        message:
          'two.onnx: signature cnnx cannot serve (input input float [N, 2, 32, 32]); expected one float32 input ' +
          '[N, C, H, W] (C: 1 or 3) and one float32 output [N, classes]',
      }),
    );
  });
});

describe('classifying colour pictures', () => {
  it('gives the logits of the model run on prepareInput (RGB, 3x32x32)', async () => {
    const image = await decodeImage(png, 'colour.png');
    const prepared = prepareInput(image, 'resize', [3, 32, 32]);
    if (!('input' in prepared)) throw new Error('resize always gives an input');
    expect(prepared.input).toHaveLength(3 * 32 * 32);
    const direct = await session.run(prepared.input, [1, 3, 32, 32]);
    const [result] = await classifyImages(session, inspectOnnx(rgb, 'rgb.onnx'), [image]);
    if (!result || 'nothing' in result) throw new Error('a resized picture is always classified');
    const expected = describeLogits(direct.data, LABELS);
    expect(maxDiff(result.probabilities, expected.probabilities)).toBeLessThanOrEqual(TOLERANCE);
    expect(result.class).toBe(expected.class);
    expect(LABELS).toContain(result.class);
  });

  it('works for a gray model of 64x48 (height x width) from a colour picture', async () => {
    const gray = await buildUserModel({ input: [1, 64, 48], labels: ['a', 'b', 'c'], seed: 3 });
    const signature = inspectOnnx(gray, 'gray.onnx');
    expect(signature).toMatchObject({ inputShape: [-1, 1, 64, 48], channels: 1, procedure: 'resize' });
    const graySession = await openSession(gray, { ep: 'cpu' });
    try {
      const image = await decodeImage(png, 'colour.png');
      const input = pixelsToInput(pictureToPixels(image, 1, 64, 48), 1);
      const direct = await graySession.run(input, [1, 1, 64, 48]);
      expect(direct.dims).toEqual([1, 3]);
      const [result] = await classifyImages(graySession, signature, [image, image]);
      if (!result || 'nothing' in result) throw new Error('a resized picture is always classified');
      expect(maxDiff(result.probabilities, describeLogits(direct.data, signature.labels).probabilities)).toBeLessThan(
        TOLERANCE,
      );
    } finally {
      await graySession.release();
    }
  });

  it("brings a 28x28 digit input to another model's height, width and channels", () => {
    const digit = Float32Array.from({ length: 28 * 28 }, (_, i) => (i % 28) / 27);
    expect(toModelInput(digit, [1, 28, 28])).toBe(digit);
    const wide = toModelInput(digit, [3, 56, 40]);
    expect(wide).toHaveLength(3 * 56 * 40);
    const plane = 56 * 40;
    expect(wide.subarray(plane, 2 * plane)).toEqual(wide.subarray(0, plane));
    expect(wide.subarray(2 * plane)).toEqual(wide.subarray(0, plane));
  });
});

describe('evaluating on a split of RGB pictures', () => {
  /** `count` pictures of 32x32x3 HWC bytes, labelled by what the model predicts for the first half, wrongly after. */
  async function splitOf(count: number): Promise<{ split: Split; correct: number }> {
    const pixels = new Uint8Array(count * 32 * 32 * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) % 251;
    const labels = new Uint8Array(count);
    for (let n = 0; n < count; n++) {
      const input = pixelsToInput(pixels.subarray(n * 3072, (n + 1) * 3072), 3);
      const { data } = await session.run(input, [1, 3, 32, 32]);
      const best = describeLogits(data, LABELS).label;
      labels[n] = n < count / 2 ? best : (best + 1) % 4;
    }
    return { split: { count, rows: 32, cols: 32, channels: 3, pixels, labels }, correct: Math.ceil(count / 2) };
  }

  it('lays HWC bytes out as NCHW planes: the accuracy of the labels made from direct runs', async () => {
    const { split, correct } = await splitOf(10);
    const result = await evaluateSession(session, split, [3, 32, 32], 4);
    expect(result).toMatchObject({ correct, count: 10, accuracy: correct / 10 });
  });

  it('gives gray pictures to the colour model as R = G = B, as predict and serve prepare a gray picture', async () => {
    const count = 6;
    const pixels = new Uint8Array(count * 32 * 32);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) % 241;
    const labels = new Uint8Array(count);
    for (let n = 0; n < count; n++) {
      const gray = pixels.subarray(n * 1024, (n + 1) * 1024);
      const rgb = Uint8Array.from({ length: 3072 }, (_, k) => gray[Math.floor(k / 3)]!);
      labels[n] = describeLogits((await session.run(pixelsToInput(rgb, 3), [1, 3, 32, 32])).data, LABELS).label;
    }
    const result = await evaluateSession(
      session,
      { count, rows: 32, cols: 32, channels: 1, pixels, labels },
      [3, 32, 32],
      4,
    );
    expect(result).toMatchObject({ correct: count, count, accuracy: 1 });
  });

  it('refuses pictures of other channels or size than the model takes', async () => {
    const { split } = await splitOf(2);
    await expect(evaluateSession(session, { ...split, channels: 1, cols: 96 }, [3, 32, 32])).rejects.toMatchObject({
      code: 'DATASET_MISMATCH',
    });
  });
});

describe('cnnx predict --json on a colour model', () => {
  it('prints the class name and the probabilities of the direct run', async () => {
    const dir = await tempDir();
    const model = join(dir, 'colours.onnx');
    const picture = join(dir, 'colour.png');
    await writeFile(model, rgb);
    await writeFile(picture, png);
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void lines.push(parts.join(' ')));
    let code: number;
    try {
      code = await main(['node', 'cnnx', 'predict', '--model', model, '--json', picture]);
    } finally {
      vi.restoreAllMocks();
    }
    expect(code).toBe(0);
    const printed = JSON.parse(lines[0]!) as { file: string; class: string; probabilities: number[] };
    const prepared = prepareInput(await decodeImage(png), 'resize', [3, 32, 32]) as { input: Float32Array };
    const expected = describeLogits((await session.run(prepared.input, [1, 3, 32, 32])).data, LABELS);
    expect(printed.file).toBe(picture);
    expect(printed.class).toBe(expected.class);
    expect(maxDiff(printed.probabilities, expected.probabilities)).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('cnnx eval --data on a model of the user pictures', () => {
  const CLASSES = ['blue', 'red'];
  let dir: string;
  let model: string;
  /** How many test pictures the model classifies right, run directly on what prepareInput makes of each. */
  let expectedCorrect = 0;

  /** A 20x20 picture of mostly one colour, with a pattern that varies by `n`. */
  const picture = (colour: string, n: number) => {
    const pixels = Buffer.alloc(20 * 20 * 3);
    const base = colour === 'red' ? [200, 30, 40] : [30, 40, 200];
    for (let i = 0; i < 400; i++)
      for (let c = 0; c < 3; c++) pixels[i * 3 + c] = (base[c]! + ((i * (n + 3) * (c + 1)) % 50)) % 256;
    return sharp(pixels, { raw: { width: 20, height: 20, channels: 3 } })
      .png()
      .toBuffer();
  };

  beforeAll(async () => {
    dir = await tempDir();
    const bytes = await buildUserModel({ input: [3, 16, 16], labels: CLASSES, dataset: 'pics', seed: 11 });
    model = join(dir, 'pics.onnx');
    await writeFile(model, bytes);
    const direct = await openSession(bytes, { ep: 'cpu' });
    try {
      for (const part of ['train', 'test'])
        for (const [label, colour] of CLASSES.entries()) {
          await mkdir(join(dir, 'pics', part, colour), { recursive: true });
          for (let n = 0; n < 3; n++) {
            const png = await picture(colour, n + (part === 'test' ? 10 : 0));
            await writeFile(join(dir, 'pics', part, colour, `${n}.png`), png);
            if (part !== 'test') continue;
            const input = prepareInput(await decodeImage(png), 'resize', [3, 16, 16]) as { input: Float32Array };
            const { data } = await direct.run(input.input, [1, 3, 16, 16]);
            if (describeLogits(data, CLASSES).label === label) expectedCorrect++;
          }
        }
    } finally {
      await direct.release();
    }
  });

  /** Runs the CLI in this process; what it printed, by stream. */
  async function cnnx(...args: string[]) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void stdout.push(parts.join(' ')));
    vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void stderr.push(parts.join(' ')));
    try {
      const code = await main(['node', 'cnnx', ...args]);
      return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
    } finally {
      vi.restoreAllMocks();
    }
  }

  it("evaluates on the data's test part at the model's channels and size", async () => {
    const { code, stdout, stderr } = await cnnx('eval', '--model', model, '--data', join(dir, 'pics'), '--json');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      dataset: 'pics',
      count: 6,
      correct: expectedCorrect,
      accuracy: expectedCorrect / 6,
    });
  });

  it('without --data, says to give it', async () => {
    const { code, stderr } = await cnnx('eval', '--model', model);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `cnnx: ${model} was trained on your own pictures (pics), not a built-in dataset: give them with ` +
        '--data <folder or CSV> to evaluate it on their test part',
    );
  });

  it('refuses --channels or --image-size other than the model takes, and data of other classes', async () => {
    const data = join(dir, 'pics');
    expect((await cnnx('eval', '--model', model, '--data', data, '--channels', '1')).stderr).toMatch(
      /^cnnx: --channels 1: .* takes 3-channel pictures; leave --channels out$/,
    );
    expect((await cnnx('eval', '--model', model, '--data', data, '--image-size', '20')).stderr).toMatch(
      /^cnnx: --image-size 20x20: .* takes 16x16 pictures \(height x width\); leave --image-size out$/,
    );
    const other = join(dir, 'other');
    for (const colour of ['green', 'red'])
      for (let n = 0; n < 2; n++) {
        await mkdir(join(other, colour), { recursive: true });
        await writeFile(join(other, colour, `${n}.png`), await picture(colour, n));
      }
    const mismatch = await cnnx('eval', '--model', model, '--data', other);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toBe(
      `cnnx: ${model} has the classes blue, red but other has green, red: its accuracy there would mean nothing; ` +
        'add --force to evaluate it anyway',
    );
    // With another number of classes --force cannot help (classes are matched by position), so it is not offered.
    await rm(join(other, 'green'), { recursive: true });
    await mkdir(join(other, 'violet'));
    for (let n = 0; n < 2; n++) await writeFile(join(other, 'violet', `${n}.png`), await picture('blue', n));
    await mkdir(join(other, 'yellow'));
    for (let n = 0; n < 2; n++) await writeFile(join(other, 'yellow', `${n}.png`), await picture('red', n));
    const three = await cnnx('eval', '--model', model, '--data', other, '--force');
    expect(three.code).toBe(1);
    expect(three.stderr).toBe(
      `cnnx: ${model} has 2 outputs but other has 3 classes: its accuracy there would mean nothing; evaluate it on ` +
        'a dataset with 2 classes',
    );
  });
});
