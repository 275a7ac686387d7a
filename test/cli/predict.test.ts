/**
 * `cnnx predict` on what users hand it besides single files: a folder of pictures, a picture on standard input, and
 * handwritten digit strings (`--read-digits`, the server's read-digits answer on the command line).
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { cnnxInProcess as cnnx } from '../helpers/main-in-process.js';
import { spawnCnnx } from '../helpers/spawn-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

const DIGITS = 'models/lenet5-relu-mnist.onnx';
const FASHION = 'models/lenet5-relu-fashion-mnist.onnx';

const mnist = await loadDataset('mnist');
const labelOf = (i: number) => String(mnist.test.labels[i]);

/** MNIST test digit `i` as dark ink on white paper, scaled 3x. */
const digitPaper = (i: number) =>
  sharp(Buffer.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784).map((v) => 255 - v)), {
    raw: { width: 28, height: 28, channels: 1 },
  }).resize(84, 84);

/** MNIST test digits written side by side on white paper, as a PNG. */
async function stringPng(indices: number[]): Promise<Buffer> {
  const step = 66;
  const composites = await Promise.all(
    indices.map(async (i, k) => ({
      input: await digitPaper(i).png().toBuffer(),
      left: 20 + k * step,
      top: 16,
      blend: 'multiply' as const,
    })),
  );
  return sharp({ create: { width: 60 + indices.length * step, height: 116, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png()
    .toBuffer();
}

describe('cnnx predict: folders, standard input, digit strings', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('cnnx-predict-');
    await mkdir(join(dir, 'scans', 'more'), { recursive: true });
    // Out of name order on purpose, one upper-case extension; the hidden file and the notes are not pictures.
    await writeFile(join(dir, 'scans', 'b.PNG'), await digitPaper(1).png().toBuffer());
    await writeFile(join(dir, 'scans', 'a.jpg'), await digitPaper(0).jpeg({ quality: 95 }).toBuffer());
    await writeFile(join(dir, 'scans', '.a.png.swp'), 'editor swap file');
    await writeFile(join(dir, 'scans', 'notes.txt'), 'not a picture');
    await writeFile(join(dir, 'scans', 'more', 'c.png'), await digitPaper(2).png().toBuffer());
    await mkdir(join(dir, 'nested', 'inner'), { recursive: true });
    await writeFile(join(dir, 'amount.png'), await stringPng([3, 2, 1, 18, 4]));
  });

  it('classifies each picture file of a folder, in name order, and no other file', async () => {
    const { code, stdout } = await cnnx('predict', '-m', DIGITS, join(dir, 'scans'));
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines.map((line) => line.split(':')[0])).toEqual([join(dir, 'scans', 'a.jpg'), join(dir, 'scans', 'b.PNG')]);
    expect(lines.map((line) => line.split(': ')[1]!.split(' ')[0])).toEqual([labelOf(0), labelOf(1)]);
  });

  it('answers in the order the pictures were given, failures in their place', async () => {
    const [a, b] = [join(dir, 'scans', 'a.jpg'), join(dir, 'scans', 'b.PNG')];
    const missing = join(dir, 'missing.png');
    const { code, stdout } = await cnnx('predict', '-m', DIGITS, '--json', a, missing, b);
    expect(code).toBe(1);
    const lines = stdout.split('\n').map((line) => JSON.parse(line) as { file: string; code?: string });
    expect(lines.map((line) => [line.file, line.code])).toEqual([
      [a, undefined],
      [missing, 'BAD_IMAGE'],
      [b, undefined],
    ]);
  });

  it('leaves out of a folder what is not a regular file (a FIFO named like a picture would never end)', async () => {
    const fifos = join(dir, 'with-fifo');
    await mkdir(fifos);
    await writeFile(join(fifos, 'a.png'), await digitPaper(0).png().toBuffer());
    expect(spawnSync('mkfifo', [join(fifos, 'b.png')]).status).toBe(0);
    const { code, stdout } = await cnnx('predict', '-m', DIGITS, fifos);
    expect(code).toBe(0);
    expect(stdout.split('\n').map((line) => line.split(':')[0])).toEqual([join(fifos, 'a.png')]);
  });

  it('names a folder with no pictures, and the sub-folders it did not search', async () => {
    const { code, stderr } = await cnnx('predict', '-m', DIGITS, join(dir, 'nested'));
    expect(code).toBe(1);
    expect(stderr).toBe(
      `cnnx: ${join(dir, 'nested')}: no .png, .jpg, .jpeg or .webp files in this folder (its 1 sub-folder is not ` +
        'searched: name them)',
    );
  });

  it('reads a handwritten digit string left to right with --read-digits', async () => {
    const amount = join(dir, 'amount.png');
    const text = [3, 2, 1, 18, 4].map(labelOf).join('');
    const plain = await cnnx('predict', '-m', DIGITS, '--read-digits', amount);
    expect(plain).toMatchObject({ code: 0, stdout: `${amount}: "${text}"` });
    const json = await cnnx('predict', '-m', DIGITS, '--read-digits', '--json', amount);
    const answer = JSON.parse(json.stdout);
    expect(answer).toMatchObject({ file: amount, text, ignored: 0 });
    expect(answer.digits).toHaveLength(5);
    expect(answer.digits[0]).toEqual({
      label: Number(text[0]),
      confidence: expect.any(Number),
      box: { x: expect.any(Number), y: expect.any(Number), width: expect.any(Number), height: expect.any(Number) },
      top: expect.any(Array),
    });
    const unsure = await cnnx('predict', '-m', DIGITS, '--read-digits', '--threshold', '1', amount);
    expect(unsure.stdout).toBe(`${amount}: "?????" (5 below the threshold: ?)`);
  });

  it('refuses --read-digits with a model that does not read digits, before reading any picture', async () => {
    const { code, stderr } = await cnnx('predict', '-m', FASHION, '--read-digits', join(dir, 'amount.png'));
    expect(code).toBe(1);
    expect(stderr).toBe(
      `cnnx: ${FASHION} is not a digit model (its pictures are prepared by 'fit'): --read-digits reads handwritten ` +
        'digits only; leave it out to classify each picture',
    );
  });

  it('refuses a threshold outside 0 to 1 and "-" given twice', async () => {
    const threshold = await cnnx('predict', '-m', DIGITS, '--read-digits', '--threshold', '85', 'x.png');
    expect(threshold.code).toBe(1);
    expect(threshold.stderr).toMatch(/--threshold <p>' argument '85' is invalid\. expected a number from 0 to 1/);
    const twice = await cnnx('predict', '-m', DIGITS, '-', '-');
    expect(twice).toMatchObject({ code: 1, stderr: 'cnnx: "-" (standard input) may be given once' });
  });

  it('reads a picture piped to standard input as "-"', async () => {
    const child = spawnCnnx(['predict', '-m', DIGITS, '--read-digits', '--json', '-']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stdin.end(await stringPng([3, 2, 1]));
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ file: '-', text: [3, 2, 1].map(labelOf).join('') });
  });
});
