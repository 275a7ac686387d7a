/**
 * Pictures real users sent (fixtures/, with the right answers) and others of the same kinds made here: thin pens,
 * markers, ink of any colour on transparency, photos with uneven light and a desk around the page, blank and noisy
 * pages, bars, blots and dot grids. Each is decoded as the server decodes it, prepared by the shared preprocessing
 * and read by the committed digit models.
 */
import { readFile } from 'node:fs/promises';
import sharp, { type OverlayOptions } from 'sharp';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { COMMITTED_MODELS } from '../../src/common/index.js';
import { decodeImage, loadDataset, type Dataset } from '../../src/data/index.js';
import { prepareInput, segmentDigits, type PixelImage } from '../../src/preprocess/index.js';
import {
  describeLogits,
  openSession,
  readDigitString,
  readOnnxModel,
  type ModelSession,
} from '../../src/runtime/index.js';

const fixture = (name: string) => readFile(new URL(`./fixtures/${name}`, import.meta.url));

let session: ModelSession;
let mnist: Dataset;
beforeAll(async () => {
  const { bytes } = await readOnnxModel(COMMITTED_MODELS.digits);
  session = await openSession(bytes, { ep: 'cpu' });
  mnist = await loadDataset('mnist');
});
afterAll(() => session?.release());

/** What classify answers: the digit, or "nothing". */
async function classify(image: PixelImage): Promise<string> {
  const prepared = prepareInput(image, 'mnist');
  if ('nothing' in prepared) return 'nothing';
  const { data } = await session.run(prepared.input, [1, 1, 28, 28]);
  return describeLogits(data, mnist.classes as string[]).class;
}

/** What read-digits answers as text ("?" below 0.6). */
async function read(image: PixelImage): Promise<string> {
  const signature = { inputShape: [-1, 1, 28, 28], labels: mnist.classes as string[], outputKind: 'logits' as const };
  return (await readDigitString(session, signature, image, 0.6)).text;
}

describe('the cases users sent', () => {
  it.each([
    ['blank-white.png', 'nothing', ''],
    ['thin-pen-3.png', '3', '3'],
    ['thin-pen-7.png', '7', '7'],
    ['marker-7.png', '7', '7'],
    ['white-ink-on-transparent-7.png', '7', '7'],
    ['black-ink-on-transparent-7.png', '7', '7'],
    ['photo-12mp-7.jpg', '7', '7'],
  ])('%s: classify %s, read-digits "%s"', async (file, digit, text) => {
    const image = await decodeImage(await fixture(file), file);
    expect(await classify(image)).toBe(digit);
    expect(await read(image)).toBe(text);
  });

  it.each(['wide-bar.png', 'dot-grid.png'])('%s is no digit', async (file) => {
    const image = await decodeImage(await fixture(file), file);
    expect(await classify(image)).toBe('nothing');
    expect(await read(image)).toMatch(/^\?*$/);
  });

  it('refuses a picture over the pixel budget before decoding it (36 MP in a 124 KB PNG)', async () => {
    await expect(decodeImage(await fixture('bar-36-megapixels.png'), 'bar')).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.stringContaining('megapixels'),
    });
  });
});

/** Zhang & Suen (1984) thinning of a 0/1 mask (`side` x `side`) to a one-pixel skeleton. */
function skeleton(mask: Uint8Array, side: number): Uint8Array {
  const m = mask.slice();
  const at = (x: number, y: number) => (x >= 0 && y >= 0 && x < side && y < side ? m[y * side + x]! : 0);
  for (let changed = true; changed;) {
    changed = false;
    for (const pass of [0, 1]) {
      const remove: number[] = [];
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++) {
          if (m[y * side + x] !== 1) continue;
          // Neighbours P2..P9, clockwise from north.
          const p = [
            at(x, y - 1),
            at(x + 1, y - 1),
            at(x + 1, y),
            at(x + 1, y + 1),
            at(x, y + 1),
            at(x - 1, y + 1),
            at(x - 1, y),
            at(x - 1, y - 1),
          ];
          const b = p.reduce((sum, v) => sum + v, 0);
          let a = 0;
          for (let k = 0; k < 8; k++) if (p[k] === 0 && p[(k + 1) % 8] === 1) a++;
          const [p2, , p4, , p6, , p8] = p;
          const ok =
            pass === 0
              ? p2! * p4! * p6! === 0 && p4! * p6! * p8! === 0
              : p2! * p4! * p8! === 0 && p2! * p6! * p8! === 0;
          if (b >= 2 && b <= 6 && a === 1 && ok) remove.push(y * side + x);
        }
      for (const q of remove) m[q] = 0;
      changed ||= remove.length > 0;
    }
  }
  return m;
}

/** A 0/1 mask widened by `radius` pixels (square max filter, rows then columns). */
function dilate(mask: Uint8Array, side: number, radius: number): Uint8Array {
  let out = mask;
  for (const step of [1, side]) {
    const next = new Uint8Array(side * side);
    for (let q = 0; q < side * side; q++) {
      const at = step === 1 ? q % side : Math.floor(q / side);
      for (let d = -radius; d <= radius; d++)
        if (at + d >= 0 && at + d < side && out[q + d * step] === 1) {
          next[q] = 1;
          break;
        }
    }
    out = next;
  }
  return out;
}

/** MNIST test digit `i` drawn on a `side` canvas as strokes of about `pen` pixels (dark on white, RGBA). */
async function drawn(i: number, side: number, pen: number, ink = [20, 20, 20], paper = [255, 255, 255, 255]) {
  const digit = Buffer.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784));
  const size = Math.round(side * 0.6);
  const large = await sharp(digit, { raw: { width: 28, height: 28, channels: 1 } })
    .resize(size, size, { kernel: 'cubic' })
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  // The pen's path: the binarised digit thinned to a one-pixel skeleton, then widened to the pen.
  const mask = dilate(
    skeleton(
      Uint8Array.from(large, (v) => (v > 127 ? 1 : 0)),
      size,
    ),
    size,
    Math.floor(pen / 2),
  );
  const rgba = Buffer.alloc(side * side * 4);
  const offset = Math.round((side - size) / 2);
  for (let p = 0; p < side * side; p++) rgba.set(paper, p * 4);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      if (mask[y * size + x] === 1) rgba.set([...ink, 255], ((y + offset) * side + x + offset) * 4);
  return rgba;
}

const raw = (data: Uint8Array, width: number, height = width, channels = 4): PixelImage => ({
  width,
  height,
  channels,
  data,
});

async function asPng(data: Uint8Array, width: number, height = width, channels: 1 | 2 | 3 | 4 = 4) {
  return decodeImage(await sharp(data, { raw: { width, height, channels } }).png().toBuffer());
}

describe('other pictures of the same kinds', () => {
  const samples = [0, 1, 2, 3, 4, 7, 8, 11, 18, 61];

  it('reads MNIST digits drawn with a thin pen on large canvases', async () => {
    let right = 0;
    for (const i of samples) {
      const side = 500 + 37 * (i % 5);
      if ((await classify(await asPng(await drawn(i, side, 3 + (i % 3)), side))) === String(mnist.test.labels[i]))
        right++;
    }
    expect(right).toBeGreaterThanOrEqual(9);
  });

  it('reads ink of any colour on a transparent canvas', async () => {
    let right = 0;
    for (const [k, i] of samples.entries()) {
      const colours = [
        [255, 255, 255],
        [255, 220, 0],
        [0, 0, 0],
        [200, 30, 30],
        [40, 90, 255],
      ];
      const rgba = await drawn(i, 280, 14, colours[k % colours.length]!, [0, 0, 0, 0]);
      if ((await classify(await asPng(rgba, 280))) === String(mnist.test.labels[i])) right++;
    }
    expect(right).toBeGreaterThanOrEqual(9);
  });

  it('reads a photographed page: uneven light, a desk around it, JPEG', async () => {
    let right = 0;
    for (const [k, i] of samples.entries()) {
      const [width, height] = [1600, 1200];
      const canvas = Buffer.from(await drawn(i, 900, 10, [40, 40, 60], [215, 212, 205, 255]));
      const page = await sharp(canvas, { raw: { width: 900, height: 900, channels: 4 } })
        .removeAlpha()
        .raw()
        .toBuffer();
      const photo = Buffer.alloc(width * height * 3);
      const desk = 120 + k * 20; // the desk shows on the left and at the top
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++) {
          const light = 0.75 + 0.35 * (x / width) - 0.1 * (y / height);
          const inPage = x >= desk && y >= desk / 2 && x - desk < 900 * 1.4 && y - desk / 2 < 900 * 1.1;
          const px = Math.min(899, Math.floor((x - desk) / 1.4));
          const py = Math.min(899, Math.floor((y - desk / 2) / 1.1));
          for (let c = 0; c < 3; c++) {
            const base = inPage ? page[(py * 900 + px) * 3 + c]! : 70 + c * 10;
            photo[(y * width + x) * 3 + c] = Math.min(255, base * light + ((x * 7 + y * 13) % 5) - 2);
          }
        }
      const jpeg = await sharp(photo, { raw: { width, height, channels: 3 } })
        .jpeg({ quality: 85 })
        .toBuffer();
      if ((await classify(await decodeImage(jpeg))) === String(mnist.test.labels[i])) right++;
    }
    expect(right).toBeGreaterThanOrEqual(9);
  });

  it('reads a page that covers a third of the frame, on a dark desk', async () => {
    let right = 0;
    for (const [k, i] of samples.entries()) {
      const [width, height] = [1600, 1200];
      const page = await sharp(Buffer.from(await drawn(i, 700, 8, [30, 30, 50], [220, 216, 208, 255])), {
        raw: { width: 700, height: 700, channels: 4 },
      })
        .removeAlpha()
        .raw()
        .toBuffer();
      const photo = Buffer.alloc(width * height * 3);
      const [left, top] = [420 + k * 20, 240 + k * 10];
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++) {
          const inPage = x >= left && y >= top && x < left + 700 && y < top + 700;
          for (let c = 0; c < 3; c++) {
            const base = inPage ? page[((y - top) * 700 + x - left) * 3 + c]! : 60 + c * 8;
            photo[(y * width + x) * 3 + c] = Math.min(255, base * (0.85 + 0.2 * (x / width)));
          }
        }
      const jpeg = await sharp(photo, { raw: { width, height, channels: 3 } })
        .jpeg({ quality: 85 })
        .toBuffer();
      if ((await classify(await decodeImage(jpeg))) === String(mnist.test.labels[i])) right++;
    }
    expect(right).toBeGreaterThanOrEqual(9);
  });

  it('reads a digit string with a line under it, and no digit on ruled, speckled or noise pictures', async () => {
    const width = 900;
    const height = 300;
    const gray = new Uint8Array(width * height).fill(255);
    for (const [k, i] of [3, 2, 1, 18].entries()) {
      const digit = await sharp(Buffer.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784)), {
        raw: { width: 28, height: 28, channels: 1 },
      })
        .resize(168, 168)
        .toColourspace('b-w')
        .raw()
        .toBuffer();
      for (let y = 0; y < 168; y++)
        for (let x = 0; x < 168; x++)
          gray[(40 + y) * width + 60 + k * 200 + x] = Math.min(
            gray[(40 + y) * width + 60 + k * 200 + x]!,
            255 - digit[y * 168 + x]!,
          );
    }
    for (let y = 232; y < 238; y++) gray.fill(0, y * width + 40, y * width + 860);
    expect(await read(await asPng(gray, width, height, 1))).toBe(
      [3, 2, 1, 18].map((i) => mnist.test.labels[i]).join(''),
    );

    const ruled = new Uint8Array(width * height).fill(255);
    for (let y = 20; y < height; y += 40) ruled.fill(90, y * width, y * width + width);
    const speckled = Uint8Array.from({ length: width * height }, (_, p) => ((p * 2654435761) % 97 < 3 ? 0 : 255));
    let state = 12345;
    const noise = Uint8Array.from({ length: width * height }, () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % 256;
    });
    for (const gray of [ruled, speckled, noise]) {
      const image = await asPng(gray, width, height, 1);
      expect(await classify(image)).toBe('nothing');
      if (gray !== noise) expect(await read(image)).toBe(''); // read-digits still reads noise: README, known limits
    }
  });

  it('finds no ink on blank pages of any size, noise, light or format', async () => {
    for (const [k, [width, height]] of [
      [200, 200],
      [1000, 300],
      [64, 900],
      [1600, 1200],
    ].entries()) {
      const photo = Buffer.alloc(width! * height! * 3);
      for (let y = 0; y < height!; y++)
        for (let x = 0; x < width!; x++)
          for (let c = 0; c < 3; c++) {
            const light = k === 3 ? 0.7 + 0.3 * (x / width!) : 1;
            photo[(y * width! + x) * 3 + c] = Math.round((245 - c * 5) * light) + ((x * 31 + y * 17 + c) % 7) - 3;
          }
      for (const bytes of [
        await sharp(photo, { raw: { width: width!, height: height!, channels: 3 } })
          .png()
          .toBuffer(),
        await sharp(photo, { raw: { width: width!, height: height!, channels: 3 } })
          .jpeg({ quality: 70 })
          .toBuffer(),
      ]) {
        const image = await decodeImage(bytes);
        expect(await classify(image)).toBe('nothing');
        expect(await read(image)).toBe('');
      }
    }
  });

  it('answers no digit, without a 5xx or a deep stack, for bars, blots and grids of any count', async () => {
    const cases: [string, number, number, (x: number, y: number) => boolean][] = [
      ['a tall bar', 400, 900, (x) => x > 150 && x < 250],
      ['a filled disc', 600, 600, (x, y) => (x - 300) ** 2 + (y - 300) ** 2 < 200 ** 2],
      ['a dense dot grid', 1000, 1000, (x, y) => x % 6 < 3 && y % 6 < 3],
      [
        'a grid of large dots',
        1000,
        1000,
        (x, y) => (x % 40) - 20 < 8 && (x % 40) - 20 > -8 && Math.abs((y % 40) - 20) < 8,
      ],
      ['a wide stripe', 3000, 400, (_, y) => y > 180 && y < 220],
    ];
    for (const [name, width, height, isInk] of cases) {
      const gray = new Uint8Array(width * height);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) gray[y * width + x] = isInk(x, y) ? 0 : 255;
      const image = await asPng(gray, width, height, 1);
      expect(await classify(image)).toBe('nothing');
      expect([name, await read(image)]).toEqual([name, expect.stringMatching(/^\?{0,3}$/)]);
    }
  });

  it('prepares a 512x512 picture of 65,000 separate dots in linear time', () => {
    const gray = new Uint8Array(512 * 512).fill(255);
    for (let y = 0; y < 512; y += 2) for (let x = 0; x < 512; x += 2) gray[y * 512 + x] = 0;
    expect(prepareInput(raw(gray, 512, 512, 1), 'mnist')).toHaveProperty('nothing');
    expect(segmentDigits(raw(gray, 512, 512, 1)).candidates).toEqual([]);
  });
});

describe('digit strings: where one digit ends and the next begins', () => {
  /**
   * MNIST test digits `indices` on white paper, scaled `scale` times, each `gap` px after the last one's ink (a
   * negative gap makes them touch), with `extra` SVG (punctuation) drawn over the page.
   */
  async function page(
    indices: number[],
    { scale = 3, gap = 14, extra = '' as string | ((inks: [number, number][], width: number) => string) } = {},
  ) {
    const side = 28 * scale;
    const composites: OverlayOptions[] = [];
    const inks: [number, number][] = [];
    let x = 20;
    for (const i of indices) {
      const pixels = mnist.test.pixels.subarray(i * 784, (i + 1) * 784);
      let x0 = 28;
      let x1 = -1;
      for (let p = 0; p < 784; p++) if (pixels[p]! > 40) [x0, x1] = [Math.min(x0, p % 28), Math.max(x1, p % 28)];
      const input = await sharp(Buffer.from(pixels.map((v) => 255 - v)), {
        raw: { width: 28, height: 28, channels: 1 },
      })
        .resize(side, side)
        .png()
        .toBuffer();
      const left = Math.max(0, Math.round(x - x0 * scale));
      composites.push({ input, left, top: 20, blend: 'multiply' });
      inks.push([left + x0 * scale, left + (x1 + 1) * scale]);
      x = left + (x1 + 1) * scale + gap;
    }
    const width = Math.max(Math.round(x) + 40, side + 40);
    const height = side + 40;
    const svg = typeof extra === 'function' ? extra(inks, width) : extra;
    if (svg)
      composites.push({
        input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svg}</svg>`),
        left: 0,
        top: 0,
      });
    const png = await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
      .composite(composites)
      .png()
      .toBuffer();
    return decodeImage(png);
  }
  const labels = (indices: number[]) => indices.map((i) => mnist.test.labels[i]).join('');

  it('reads a wide digit alone as one digit, not as two halves', async () => {
    // Digits wider than tall, each once read as two ("2" -> "22", "0" -> "67", "5" -> "55").
    for (const i of [7100, 7115, 7178, 7190, 7214]) expect(await read(await page([i]))).toBe(labels([i]));
  });

  it('keeps a 5 whose flag stands apart from its body one digit', async () => {
    expect(await read(await page([7, 8], { scale: 3, gap: 30 }))).toBe(labels([7, 8]));
  });

  it('leaves out the punctuation of an amount: commas, points and dashes', async () => {
    const digits = [2, 3, 1, 10, 13]; // "1", "0", "2", "0", "0"
    const amount = await page(digits, {
      gap: 34,
      extra:
        '<path d="M 95 118 q 6 4 -2 16" stroke="black" stroke-width="5" fill="none"/>' +
        '<circle cx="244" cy="112" r="4" fill="black"/><rect x="330" y="66" width="16" height="5"/>',
    });
    expect(await read(amount)).toBe(labels(digits));
  });

  it('reads digits in a printed box, in a row of boxes, and on or through a dark rule', async () => {
    const digits = [3, 2, 1, 18];
    const cases = {
      box: (_: unknown, width: number) =>
        `<rect x="6" y="6" width="${width - 12}" height="112" fill="none" stroke="black" stroke-width="3"/>`,
      boxes: (inks: [number, number][]) =>
        inks
          .map(
            ([a, b]) =>
              `<rect x="${(a + b) / 2 - 36}" y="8" width="72" height="108" fill="none" stroke="#222" stroke-width="2"/>`,
          )
          .join(''),
      'on a rule': (_: unknown, width: number) => `<rect x="0" y="88" width="${width}" height="4" fill="#111"/>`,
      'through a rule': (_: unknown, width: number) => `<rect x="0" y="62" width="${width}" height="3" fill="#111"/>`,
      'over a dashed guide line': (_: unknown, width: number) =>
        Array.from(
          { length: Math.floor(width / 30) },
          (_, k) => `<rect x="${k * 30}" y="116" width="20" height="4"/>`,
        ).join(''),
    };
    for (const [name, extra] of Object.entries(cases)) {
      expect([name, await read(await page(digits, { gap: 40, extra }))]).toEqual([name, labels(digits)]);
    }
    const boxed = await page([0], {
      extra: '<rect x="4" y="4" width="116" height="116" fill="none" stroke="black" stroke-width="3"/>',
    });
    expect(await classify(boxed)).toBe(labels([0]));
  });

  it('reads two rows of digits as two lines, top to bottom', async () => {
    const [top, bottom] = [await page([3, 2, 1], { gap: 24 }), await page([18, 4, 7, 0], { gap: 24 })];
    const width = Math.max(top.width, bottom.width);
    const data = new Uint8Array(width * (top.height + bottom.height) * 4).fill(255);
    for (const [image, y0] of [
      [top, 0],
      [bottom, top.height],
    ] as const) {
      for (let y = 0; y < image.height; y++)
        for (let x = 0; x < image.width; x++)
          for (let c = 0; c < 4; c++) {
            const k = image.channels;
            // Gray to RGB, and opaque where the picture has no alpha.
            const value =
              c === 3 && k % 2 === 1 ? 255 : image.data[(y * image.width + x) * k + (k < 3 ? (c === 3 ? 1 : 0) : c)]!;
            data[((y0 + y) * width + x) * 4 + c] = value;
          }
    }
    const text = await read({ width, height: top.height + bottom.height, channels: 4, data });
    expect(text).toBe(`${labels([3, 2, 1])}\n${labels([18, 4, 7, 0])}`);
  });

  it('leaves out a long dash between digits, which is flat, however wide', async () => {
    const digits = [2, 1, 18, 4]; // "1", "2", "3", "4"
    const dash = (inks: [number, number][]) =>
      `<rect x="${(inks[1]![1] + inks[2]![0]) / 2 - 22}" y="58" width="44" height="7" fill="black"/>`;
    expect(await read(await page(digits, { gap: 60, extra: dash }))).toBe(labels(digits));
  });

  it('cuts digits that touch where they meet', async () => {
    expect(await read(await page([3, 2], { gap: -4 }))).toBe(labels([3, 2]));
  });

  it('parts digits that overlap along the gap between them, where no column parts them', async () => {
    // Each pair overlaps by 8 px (a 7's bar over the 4 after it, a 2's tail under the 9); cut by columns only, each
    // was read as one digit ("7", "8", "2", "8").
    for (const pair of [
      [64, 65],
      [72, 73],
      [106, 107],
      [226, 227],
    ])
      expect(await read(await page(pair, { gap: -8 }))).toBe(labels(pair));
  });
});
