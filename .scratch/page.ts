import sharp from 'sharp';
import { loadDataset } from '../src/data/index.js';
const mnist = await loadDataset('mnist');
const indices = JSON.parse(process.argv[2]!); const scale = Number(process.argv[3] ?? 3); const gap = Number(process.argv[4] ?? 14);
const side = 28 * scale; const composites: sharp.OverlayOptions[] = []; let x = 20;
for (const i of indices) {
  const pixels = mnist.test.pixels.subarray(i * 784, (i + 1) * 784);
  let x0 = 28, x1 = -1;
  for (let p = 0; p < 784; p++) if (pixels[p]! > 40) [x0, x1] = [Math.min(x0, p % 28), Math.max(x1, p % 28)];
  const input = await sharp(Buffer.from(pixels.map((v) => 255 - v)), { raw: { width: 28, height: 28, channels: 1 } }).resize(side, side).png().toBuffer();
  const left = Math.max(0, Math.round(x - x0 * scale));
  composites.push({ input, left, top: 20, blend: 'multiply' }); x = left + (x1 + 1) * scale + gap;
}
const width = Math.max(Math.round(x) + 40, side + 40);
await sharp({ create: { width, height: side + 40, channels: 3, background: '#ffffff' } }).composite(composites).png().toFile(process.argv[5]!);
