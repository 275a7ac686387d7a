import sharp from 'sharp';
import { loadDataset } from '../src/data/index.js';
import { decodeImage } from '../src/data/index.js';
import { openSession, readOnnxModel, readDigitString } from '../src/runtime/index.js';

const mnist = await loadDataset('mnist');
const { bytes, signature } = await readOnnxModel('models/lenet5-relu-mnist.onnx');
const session = await openSession(bytes, { ep: 'cpu' });
let seed = Number(process.argv[2] ?? 7);
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const first = Number(process.argv[3] ?? 1000);
const N = Number(process.argv[4] ?? 300);
const minGap = Number(process.argv[5] ?? -6), maxGap = Number(process.argv[6] ?? 24);
let next = first, exact = 0, countOk = 0, digitsRight = 0, digitsTotal = 0;
const fails: string[] = [];
for (let s = 0; s < N; s++) {
  const len = process.env.LEN ? Number(process.env.LEN) : 3 + Math.floor(rand() * 6);
  const idx = Array.from({ length: len }, () => next++);
  const scale = 2 + rand() * 2; const side = Math.round(28 * scale);
  // ink box of the 28x28 frame is about 20 wide: place by ink width
  let x = 20; const comps = []; let right = 0;
  for (const i of idx) {
    const px = mnist.test.pixels.subarray(i * 784, (i + 1) * 784);
    let x0 = 28, x1 = -1; for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) if (px[r * 28 + c]! > 40) { x0 = Math.min(x0, c); x1 = Math.max(x1, c); }
    const input = await sharp(Buffer.from(px.map((v) => 255 - v)), { raw: { width: 28, height: 28, channels: 1 } }).resize(side, side).png().toBuffer();
    const left = Math.round(x - x0 * scale);
    comps.push({ input, left: Math.max(0, left), top: 16 + Math.round((rand() - 0.5) * 8 * scale), blend: 'multiply' as const });
    right = Math.max(right, Math.max(0, left) + side);
    x = left + (x1 + 1) * scale + minGap + rand() * (maxGap - minGap);
  }
  const png = await sharp({ create: { width: Math.round(Math.max(x + 40, right)), height: side + 32 + Math.round(8 * scale), channels: 3, background: '#ffffff' } }).composite(comps).png().toBuffer();
  const image = await decodeImage(png);
  const truth = idx.map((i) => mnist.test.labels[i]).join('');
  const read = await readDigitString(session, signature, image, 0);
  digitsTotal += truth.length;
  if (read.text === truth) exact++;
  if (read.text.length === truth.length) { countOk++; for (let k = 0; k < truth.length; k++) if (read.text[k] === truth[k]) digitsRight++; }
  else { fails.push(`${s} ${truth} -> ${read.text} (idx ${idx[0]}..)`); if (process.env.DUMP) await sharp(png).toFile(`/tmp/fail-${s}.png`); }
}
console.log(JSON.stringify({ strings: N, exact: exact / N, countOk: countOk / N, digitAccWhenCountOk: digitsRight / digitsTotal }));
console.log(fails.slice(0, 30).join('\n'));
await session.release();
