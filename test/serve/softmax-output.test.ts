/**
 * A model whose graph ends in a Softmax (a tfjs or Keras model with a softmax last layer) outputs probabilities:
 * classification must take them as they are, not apply softmax a second time.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { inspectOnnx } from '../../src/runtime/index.js';
import { createServer } from '../../src/serve/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { tinyClassifier } from '../helpers/tiny-onnx.js';

/** [N,1,28,28] -> Flatten -> MatMul (zero weights) -> Add (bias favouring class 0) -> Softmax: ~0.9995 for 0. */
function peakedModel(): Uint8Array {
  return tinyClassifier({
    classes: 10,
    output: 'probabilities',
    nodes: [
      { opType: 'Flatten', input: ['input'], output: ['flat'] },
      { opType: 'MatMul', input: ['flat', 'w'], output: ['scores'] },
      { opType: 'Add', input: ['scores', 'b'], output: ['biased'] },
      { opType: 'Softmax', input: ['biased'], output: ['probabilities'], attribute: [{ name: 'axis', i: 1, type: 2 }] },
    ],
    initializers: {
      w: { dims: [784, 10], data: new Array(7840).fill(0) },
      b: { dims: [10], data: [10, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
    },
  });
}

describe('a model that outputs probabilities', () => {
  it('is recognised from its graph, and /classify reports its probabilities unchanged', async () => {
    const bytes = peakedModel();
    expect(inspectOnnx(bytes, 'peaked.onnx').outputKind).toBe('probabilities');
    const dir = await tempDir();
    await writeFile(join(dir, 'peaked.onnx'), bytes);
    const server = await createServer({ model: dir, ep: 'cpu', watch: false });
    try {
      // A stroke on white paper: something to classify (a blank page has nothing).
      const stroke = new Uint8Array(28 * 28).fill(255);
      for (let y = 6; y < 22; y++) stroke.fill(0, y * 28 + 13, y * 28 + 15);
      const png = await sharp(stroke, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toBuffer();
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/models/peaked/classify',
        headers: { 'content-type': 'image/png' },
        payload: png,
      });
      expect(response.statusCode).toBe(200);
      const { label, probabilities } = response.json() as { label: number; probabilities: number[] };
      const expected = Math.exp(10) / (Math.exp(10) + 9);
      expect(label).toBe(0);
      expect(probabilities[0]).toBeCloseTo(expected, 5);
      expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      // The page learns it from the metadata, so it does not apply softmax a second time either.
      const metadata = await server.app.inject({ url: '/v2/models/peaked' });
      expect(metadata.json()).toMatchObject({ parameters: { output_kind: 'probabilities' } });
    } finally {
      await server.close();
    }
  });
});
