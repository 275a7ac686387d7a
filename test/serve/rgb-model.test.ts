/**
 * The server with models trained on the user's own pictures (an RGB 3x32x32 model of 4 colours, a gray 1x64x48 one
 * of 3 classes), over a real port: classify answers class names with the probabilities of the model run directly on
 * the tensor `prepareInput` computes, KServe v2 infer with that tensor gives the same logits, the metadata reports
 * [-1, 3, H, W] and the labels, and read-digits refuses a model that does not read digits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/data/index.js';
import { prepareInput } from '../../src/preprocess/index.js';
import { describeLogits, openSession, type ModelSession } from '../../src/runtime/index.js';
import { createServer, listen, type CnnxServer } from '../../src/serve/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { buildUserModel, colourPicture, writeUserModel } from '../helpers/user-model.js';

const COLOURS = ['red', 'green', 'blue', 'gray'];
const GRAY = ['circle', 'square', 'triangle'];
const TOLERANCE = 1e-5;

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);

let server: CnnxServer;
let base: string;
let png: Buffer;
/** Sessions on the same model files, run directly: the reference. */
const direct: Record<string, ModelSession> = {};

beforeAll(async () => {
  const dir = await tempDir();
  const colours = { input: [3, 32, 32] as [number, number, number], labels: COLOURS, dataset: 'colours' };
  const gray = { input: [1, 64, 48] as [number, number, number], labels: GRAY, dataset: 'shapes', seed: 5 };
  await writeUserModel(dir, 'colours', colours);
  await writeUserModel(dir, 'shapes', gray);
  direct.colours = await openSession(await buildUserModel(colours), { ep: 'cpu' });
  direct.shapes = await openSession(await buildUserModel(gray), { ep: 'cpu' });
  png = await colourPicture(40, 30);
  server = await createServer({ model: dir, ep: 'cpu', watch: false });
  base = await listen(server, { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await server?.close();
  await Promise.all(Object.values(direct).map((session) => session.release()));
});

/** The model's logits for the colour picture, run directly on what prepareInput makes of it. */
async function directLogits(name: string, input: [number, number, number]): Promise<Float32Array> {
  const prepared = prepareInput(await decodeImage(png), 'resize', input);
  if (!('input' in prepared)) throw new Error('resize always gives an input');
  return (await direct[name]!.run(prepared.input, [1, ...input])).data;
}

const postPicture = async (name: string, route: 'classify' | 'read-digits') => {
  const response = await fetch(`${base}/v1/models/${name}/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: new Uint8Array(png),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe('classify with models of the user pictures', () => {
  it('answers an RGB picture with a class name and the probabilities of the direct run', async () => {
    const { status, body } = await postPicture('colours', 'classify');
    expect(status).toBe(200);
    const expected = describeLogits(await directLogits('colours', [3, 32, 32]), COLOURS);
    expect(body.class).toBe(expected.class);
    expect(COLOURS).toContain(body.class);
    expect(maxDiff(body.probabilities as number[], expected.probabilities)).toBeLessThanOrEqual(TOLERANCE);
    expect((body.top as { class: string }[]).map((t) => t.class)).toEqual(expected.top.map((t) => t.class));
  });

  it('answers a gray 64x48 model from a colour picture', async () => {
    const { status, body } = await postPicture('shapes', 'classify');
    expect(status).toBe(200);
    const expected = describeLogits(await directLogits('shapes', [1, 64, 48]), GRAY);
    expect(body.class).toBe(expected.class);
    expect(maxDiff(body.probabilities as number[], expected.probabilities)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('refuses read-digits on a model that does not read digits, with NOT_A_DIGIT_MODEL', async () => {
    const { status, body } = await postPicture('colours', 'read-digits');
    expect(status).toBe(422);
    expect(body).toEqual({
      code: 'NOT_A_DIGIT_MODEL',
      error: expect.stringMatching(/^model 'colours' is not a digit model .*use \/v1\/models\/colours\/classify$/),
    });
  });
});

describe('KServe v2 with models of the user pictures', () => {
  it('reports [-1, 3, H, W], the labels and the procedure in the metadata, and [3, H, W] in the config', async () => {
    const metadata = (await (await fetch(`${base}/v2/models/colours`)).json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 32, 32] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 4] }],
      parameters: { labels: COLOURS, dataset: 'colours', procedure: 'resize', output_kind: 'logits' },
    });
    const gray = (await (await fetch(`${base}/v2/models/shapes`)).json()) as Record<string, unknown>;
    expect(gray).toMatchObject({ inputs: [{ shape: [-1, 1, 64, 48] }], parameters: { labels: GRAY } });
    const config = (await (await fetch(`${base}/v2/models/colours/config`)).json()) as Record<string, unknown>;
    expect(config).toMatchObject({ input: [{ format: 'FORMAT_NCHW', dims: [3, 32, 32] }], output: [{ dims: [4] }] });
  });

  it('infers on the tensor prepareInput computes with the logits of the direct run, and classifies by name', async () => {
    const prepared = prepareInput(await decodeImage(png), 'resize', [3, 32, 32]) as { input: Float32Array };
    const data = [...Array.from(prepared.input), ...Array.from(prepared.input)];
    const response = await fetch(`${base}/v2/models/colours/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [2, 3, 32, 32], datatype: 'FP32', data }] }),
    });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { outputs: { shape: number[]; data: number[] }[] };
    expect(answer.outputs[0]!.shape).toEqual([2, 4]);
    const expected = await directLogits('colours', [3, 32, 32]);
    expect(maxDiff(answer.outputs[0]!.data.slice(0, 4), expected)).toBeLessThanOrEqual(TOLERANCE);
    expect(maxDiff(answer.outputs[0]!.data.slice(4), expected)).toBeLessThanOrEqual(TOLERANCE);

    const classified = await fetch(`${base}/v2/models/colours/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 3, 32, 32], datatype: 'FP32', data: Array.from(prepared.input) }],
        outputs: [{ name: 'logits', parameters: { classification: 2 } }],
      }),
    });
    const entries = ((await classified.json()) as { outputs: { data: string[] }[] }).outputs[0]!.data;
    const best = describeLogits(expected, COLOURS).top;
    expect(entries.map((entry) => entry.split(':').slice(1).join(':'))).toEqual(
      best.slice(0, 2).map((t) => `${t.label}:${t.class}`),
    );
  });

  it('refuses a 1-channel tensor for the RGB model, naming the shape it needs', async () => {
    const response = await fetch(`${base}/v2/models/colours/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 1, 32, 32], datatype: 'FP32', data: new Array(1024).fill(0) }],
      }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      code: 'INVALID_INPUT',
      error: "input 'input' must have shape [N,3,32,32] with N >= 1, got [1,1,32,32]",
    });
  });
});
