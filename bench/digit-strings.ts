/**
 * `npx tsx bench/digit-strings.ts [--count N] [--model file.onnx] [--seed S]` (`npm run bench:digit-strings`): how
 * well read-digits reads handwritten digit strings, in this process with the reader the server, the page and
 * `cnnx predict --read-digits` share (segmentation, one inference call, the best path). The strings are MNIST test
 * digits written side by side on white paper, each scaled 2-4x, placed by their ink (a digit's ink starts `gap` px
 * after the last one's ends), a few px up or down; three sets of `--count` pictures each, seeded:
 *
 * - `spaced`: 3-8 digits, gaps of 4 to 30 px (the digits seldom touch);
 * - `touching`: 3-8 digits, gaps of -6 to 24 px (a fifth of the joints touch or overlap);
 * - `single`: one digit (read-digits must read one digit, not two halves).
 *
 * A string is right when its whole text is (no reject threshold: every digit read). The time of each read (decoding
 * the PNG, then readDigitString) is taken too: its median per set. Prints one markdown table and a JSON line;
 * `--dump <dir>` writes the pictures it got wrong there.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp, { type OverlayOptions } from 'sharp';
import { decodeImage, loadDataset } from '../src/data/index.js';
import { openSession, readDigitString, readOnnxModel } from '../src/runtime/index.js';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '300' },
    model: { type: 'string', default: 'models/lenet5-relu-mnist.onnx' },
    seed: { type: 'string', default: '11' },
    dump: { type: 'string' },
  },
});

const SETS = [
  { name: 'spaced', first: 3000, digits: [3, 8], gaps: [4, 30] },
  { name: 'touching', first: 5000, digits: [3, 8], gaps: [-6, 24] },
  { name: 'single', first: 7000, digits: [1, 1], gaps: [4, 30] },
] as const;

const mnist = await loadDataset('mnist');
const { bytes, signature } = await readOnnxModel(args.model);
const session = await openSession(bytes, { ep: 'cpu' });
if (args.dump) await mkdir(args.dump, { recursive: true });

/** xorshift32, so that every run and every build draws the same pictures. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** The columns of a test digit's ink (pixels above 40 of 255). */
function inkColumns(i: number): [number, number] {
  const pixels = mnist.test.pixels.subarray(i * 784, (i + 1) * 784);
  let x0 = 28;
  let x1 = -1;
  for (let p = 0; p < 784; p++) if (pixels[p]! > 40) [x0, x1] = [Math.min(x0, p % 28), Math.max(x1, p % 28)];
  return [x0, x1];
}

async function picture(indices: number[], rand: () => number, gaps: readonly [number, number]): Promise<Buffer> {
  const scale = 2 + rand() * 2;
  const side = Math.round(28 * scale);
  const composites: OverlayOptions[] = [];
  let x = 20;
  let right = 0;
  for (const i of indices) {
    const [x0, x1] = inkColumns(i);
    const input = await sharp(Buffer.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784).map((v) => 255 - v)), {
      raw: { width: 28, height: 28, channels: 1 },
    })
      .resize(side, side)
      .png()
      .toBuffer();
    const left = Math.max(0, Math.round(x - x0 * scale));
    composites.push({ input, left, top: 16 + Math.round((rand() - 0.5) * 8 * scale), blend: 'multiply' });
    right = Math.max(right, left + side);
    x = left + (x1 + 1) * scale + gaps[0] + rand() * (gaps[1] - gaps[0]);
  }
  const width = Math.round(Math.max(x + 40, right));
  const height = side + 32 + Math.round(8 * scale);
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png()
    .toBuffer();
}

const count = Number(args.count);
const rows: { set: string; strings: number; right: number; digits: number; counted: number; medianMs: number }[] = [];
for (const set of SETS) {
  const rand = random(Number(args.seed) + set.first);
  let next = set.first;
  let right = 0;
  let counted = 0;
  let digits = 0;
  const times: number[] = [];
  for (let s = 0; s < count; s++) {
    const length = set.digits[0] + Math.floor(rand() * (set.digits[1] - set.digits[0] + 1));
    const indices = Array.from({ length }, () => next++);
    const png = await picture(indices, rand, set.gaps);
    const truth = indices.map((i) => mnist.test.labels[i]).join('');
    const started = performance.now();
    const { text } = await readDigitString(session, signature, await decodeImage(png), 0);
    times.push(performance.now() - started);
    digits += length;
    if (text.length === length) counted++;
    if (text === truth) right++;
    else if (args.dump) await writeFile(join(args.dump, `${set.name}-${s}-${truth}-read-${text}.png`), png);
  }
  const medianMs = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
  rows.push({ set: set.name, strings: count, right, digits, counted, medianMs });
  process.stderr.write(`${set.name}: ${right} / ${count}\n`);
}
await session.release();

console.log('| set | strings (digits) | whole string right | digit count right | ms a read (median) |');
console.log('| --- | --- | --- | --- | --- |');
for (const row of rows) {
  const pct = (n: number) => `${((100 * n) / row.strings).toFixed(1)}%`;
  console.log(
    `| ${row.set} | ${row.strings} (${row.digits}) | ${pct(row.right)} | ${pct(row.counted)} | ${row.medianMs.toFixed(1)} |`,
  );
}
console.log(JSON.stringify({ model: args.model, seed: Number(args.seed), sets: rows }));
