/**
 * The web page in a real browser: Debian's Chromium (installed by .ci/run) driven by playwright-core. Digits are
 * drawn with mouse strokes and read by onnxruntime-web in the page; pictures are uploaded and classified by the
 * model picked (Fashion-MNIST's, and an RGB model of the user's own classes built with random weights), as the
 * server's classify does. Without chromium every test reports itself skipped with the reason, unless
 * CNNX_REQUIRE_WEBGPU=1 (CI) requires it.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { loadDataset } from '../../src/data/index.js';
import { compareLogits, paritySet, toleranceFor } from '../../src/export/index.js';
import { openSession } from '../../src/runtime/index.js';
import { createServer, type CnnxServer } from '../../src/serve/index.js';
import { CHROMIUM, chromiumMissing, WEBGPU_REQUIRED } from '../helpers/environment.js';
import { tempDir } from '../helpers/temp-dir.js';
import { colourPicture, writeUserModel } from '../helpers/user-model.js';
import { digitsOnPaper } from '../helpers/digit-paper.js';

interface CnnxHooks {
  cnnx: {
    run(data: number[], dims: number[]): Promise<number[]>;
    useProvider(ep: 'wasm' | 'webgpu'): Promise<void>;
    useModel(name: string): Promise<void>;
    lastClassification(): { class: string; probabilities: number[] } | undefined;
    followServedModel(): Promise<void>;
  };
}

const DIGITS = 'models/lenet5-relu-mnist.onnx';
const FASHION = 'models/lenet5-relu-fashion-mnist.onnx';
const COLOURS = ['red', 'green', 'blue', 'gray'];
const measured: string[] = [];
const missing = chromiumMissing();

describe('the web page in Chromium', () => {
  let server: CnnxServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    if (missing) return;
    await build({ configFile: 'vite.config.ts', logLevel: 'error' });
    const colours = await writeUserModel(await tempDir(), 'colours', {
      input: [3, 32, 32],
      labels: COLOURS,
      dataset: 'colours',
    });
    server = await createServer({ model: [DIGITS, FASHION, colours], ep: 'cpu', watch: false });
    await server.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = server.app.server.address() as AddressInfo;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--enable-unsafe-webgpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    page = await browser.newPage({ viewport: { width: 800, height: 700 } });
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => document.body.dataset.ep !== '', undefined, { timeout: 30_000 });
  }, 120_000);

  afterAll(async () => {
    if (measured.length > 0)
      console.log(`browser parity vs onnxruntime-node cpu (64 MNIST test images; uploads):\n${measured.join('\n')}`);
    await browser?.close();
    await server?.close();
  });

  /** Whether this browser has a WebGPU adapter (SwiftShader counts). */
  const webgpuAdapter = () =>
    page.evaluate(async () => {
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      return Boolean(gpu && (await gpu.requestAdapter()));
    });

  async function stroke(points: [number, number][]) {
    const box = (await page.locator('#pad').boundingBox())!;
    const scale = box.width / 640;
    await page.mouse.move(box.x + points[0]![0] * scale, box.y + points[0]![1] * scale);
    await page.mouse.down();
    for (const [x, y] of points.slice(1)) await page.mouse.move(box.x + x * scale, box.y + y * scale, { steps: 8 });
    await page.mouse.up();
  }

  it('is cross-origin isolated and runs the model on WebGPU when the browser has it, else WASM', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
    const adapter = await webgpuAdapter();
    // CI installs Chromium with Vulkan's loader, so SwiftShader's adapter must be there: WebGPU may not skip silently.
    if (WEBGPU_REQUIRED) expect(adapter, 'Chromium offered no WebGPU adapter (is libvulkan1 installed?)').toBe(true);
    expect(await page.getAttribute('body', 'data-ep')).toBe(adapter ? 'webgpu' : 'wasm');
  });

  // WebGPU first, on the provider the page chose at load, before anything switches providers.
  it.for(['webgpu', 'wasm'] as const)("gives onnxruntime-node's logits with %s (browser parity)", async (ep, ctx) => {
    ctx.skip(missing !== undefined, missing);
    const current = await page.getAttribute('body', 'data-ep');
    // Without a WebGPU adapter (a failure above when CI requires one) there is nothing to compare on WebGPU.
    ctx.skip(
      ep === 'webgpu' && current !== 'webgpu',
      'Chromium offered no WebGPU adapter (libvulkan1 not installed?): apt-get install libvulkan1, or run .ci/run',
    );
    const mnist = await loadDataset('mnist');
    const inputs = paritySet(mnist.test, 64, 28);
    const session = await openSession(await readFile(DIGITS), { ep: 'cpu' });
    const reference = (await session.run(inputs.data, inputs.dims)).data.slice();
    await session.release();
    if (current !== ep)
      await page.evaluate((provider) => (window as unknown as CnnxHooks).cnnx.useProvider(provider), ep);
    expect(await page.getAttribute('body', 'data-ep')).toBe(ep);
    const logits = await page.evaluate(([data, dims]) => (window as unknown as CnnxHooks).cnnx.run(data, dims), [
      Array.from(inputs.data),
      inputs.dims,
    ] as const);
    // Back to the provider the page chose, so the drawing tests below run on it (WebGPU where there is an adapter).
    if (current !== ep)
      await page.evaluate(
        (provider) => (window as unknown as CnnxHooks).cnnx.useProvider(provider),
        current as typeof ep,
      );
    const tolerance = toleranceFor(ep === 'wasm' ? 'fp32-cpu' : 'webgpu', 'lenet5-relu');
    const report = compareLogits(reference, Float32Array.from(logits), 10, tolerance);
    measured.push(
      `  onnxruntime-web ${ep} in Chromium: max abs diff ${report.maxAbsDiff.toExponential(2)}, top-1 ${report.top1Agreement * 100}%`,
    );
    expect(report.worstRatio).toBeLessThanOrEqual(1);
    expect(report.top1Agreement).toBe(1);
  });

  it('answers runs asked at once one after another, each with its own logits', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    const mnist = await loadDataset('mnist');
    const inputs = paritySet(mnist.test, 8, 28);
    const [together, alone] = await page.evaluate(
      async ([data, dims]) => {
        const hooks = (window as unknown as CnnxHooks).cnnx;
        const half = data.length / 2;
        const halves = [data.slice(0, half), data.slice(half)];
        const halfDims = [dims[0]! / 2, ...dims.slice(1)];
        const atOnce = await Promise.all(halves.map((h) => hooks.run(h, halfDims)));
        const oneByOne = [await hooks.run(halves[0]!, halfDims), await hooks.run(halves[1]!, halfDims)];
        return [atOnce, oneByOne];
      },
      [Array.from(inputs.data), inputs.dims] as const,
    );
    expect(together).toEqual(alone);
    expect(together[0]).not.toEqual(together[1]);
  });

  it('reads a drawn 1, then 11', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    expect(await page.getAttribute('body', 'data-ep')).toBe((await webgpuAdapter()) ? 'webgpu' : 'wasm');
    await page.click('#clear');
    await stroke([
      [120, 30],
      [122, 170],
    ]);
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('1');
    await stroke([
      [300, 30],
      [302, 170],
    ]);
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('11');
    await mkdir('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/page.png' });
  });

  it('switches to WASM and reads the same', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await page.selectOption('#ep-select', 'wasm');
    await page.waitForFunction(() => document.body.dataset.ep === 'wasm');
    await page.click('#undo');
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('1');
  });

  it('reads a 7 drawn with a fine pen across the whole pad, and a blank pad as nothing', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await page.click('#clear');
    await page.selectOption('#pen', '3');
    await stroke([
      [250, 25],
      [390, 25],
      [300, 180],
    ]);
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('7');
    await page.click('#undo');
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('');
    await page.selectOption('#pen', '14');
  });

  /** Opens model `name` with the picker and waits until the page runs it. */
  async function pickModel(name: string) {
    await page.selectOption('#model-select', name);
    await page.waitForFunction((model) => document.body.dataset.model === model, name, { timeout: 30_000 });
  }

  /** What the server's classify answers for a picture. */
  async function classifiedByServer(model: string, picture: Buffer) {
    const answer = await server.app.inject({
      method: 'POST',
      url: `/v1/models/${model}/classify`,
      headers: { 'content-type': 'image/png' },
      payload: picture,
    });
    return answer.json<{ class: string; probabilities: number[] }>();
  }

  it('opens a digit model on the pad, with the upload mode one click away', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    expect(await page.getAttribute('body', 'data-model')).toBe('lenet5-relu-mnist');
    expect(await page.getAttribute('body', 'data-mode')).toBe('draw');
    expect(await page.isDisabled('#mode-draw')).toBe(false);
    expect(await page.isVisible('#digits-only')).toBe(false);
    await page.click('#mode-upload');
    expect(await page.isVisible('#picture')).toBe(true);
    expect(await page.isVisible('#pad')).toBe(false);
    await page.click('#mode-draw');
    expect(await page.isVisible('#pad')).toBe(true);
  });

  it('reads the number in an uploaded picture with a digit model, as the server reads it', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    const mnist = await loadDataset('mnist');
    const indices = [3, 2, 1, 18];
    const png = await digitsOnPaper(mnist, indices);
    const expected = indices.map((i) => mnist.test.labels[i]).join('');
    const byServer = await (async () => {
      const answer = await server.app.inject({
        method: 'POST',
        url: '/v1/models/lenet5-relu-mnist/read-digits',
        headers: { 'content-type': 'image/png' },
        payload: png,
      });
      return answer.json<{ text: string }>().text;
    })();
    expect(byServer).toBe(expected);
    await page.click('#mode-upload');
    await page.setInputFiles('#upload', { name: 'amount.png', mimeType: 'image/png', buffer: png });
    await expect.poll(() => page.textContent('#picture-result'), { timeout: 10_000 }).toBe(expected);
    expect(await page.locator('#picture-top li').count()).toBe(indices.length);
    await page.click('#mode-draw');
  });

  it('classifies an uploaded picture with the Fashion-MNIST model as the server does', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    const fashion = await loadDataset('fashion-mnist', { offline: true });
    const index = Array.from(fashion.test.labels).indexOf(1); // a trouser
    const png = await sharp(
      Buffer.from(fashion.test.pixels.subarray(index * 784, (index + 1) * 784).map((v) => 255 - v)),
      {
        raw: { width: 28, height: 28, channels: 1 },
      },
    )
      .resize(140, 140)
      .extend({ top: 20, bottom: 20, left: 20, right: 20, background: '#ffffff' })
      .png()
      .toBuffer();
    const server_ = await server.app.inject({
      method: 'POST',
      url: '/v1/models/lenet5-relu-fashion-mnist/classify',
      headers: { 'content-type': 'image/png' },
      payload: png,
    });
    expect(server_.json().class).toBe('Trouser');
    await pickModel('lenet5-relu-fashion-mnist');
    // Fashion-MNIST's model does not read digits: the page opens it in upload mode.
    expect(await page.getAttribute('body', 'data-mode')).toBe('upload');
    expect(await page.isDisabled('#mode-draw')).toBe(true);
    await page.setInputFiles('#upload', { name: 'trouser.png', mimeType: 'image/png', buffer: png });
    await expect.poll(() => page.textContent('#picture-result'), { timeout: 10_000 }).toBe('Trouser');
  });

  it('classifies a colour picture with an RGB model of the user classes, by name, as the server does', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await pickModel('colours');
    expect(await page.getAttribute('body', 'data-mode')).toBe('upload');
    expect(await page.isDisabled('#mode-draw')).toBe(true);
    expect(await page.isVisible('#digits-only')).toBe(true);
    expect(await page.isVisible('#pad')).toBe(false);
    const picture = await colourPicture(40, 30);
    const expected = await classifiedByServer('colours', picture);
    expect(COLOURS).toContain(expected.class);
    await page.setInputFiles('#upload', { name: 'colours.png', mimeType: 'image/png', buffer: picture });
    await expect.poll(() => page.textContent('#picture-result'), { timeout: 10_000 }).toBe(expected.class);
    expect(await page.isVisible('#preview')).toBe(true);
    const tops = await page.locator('#picture-top .bar span:first-child').allTextContents();
    expect(tops).toHaveLength(COLOURS.length);
    expect(tops[0]).toBe(expected.class);
    const shown = await page.evaluate(() => (window as unknown as CnnxHooks).cnnx.lastClassification());
    const ep = await page.getAttribute('body', 'data-ep');
    const tolerance = ep === 'wasm' ? 1e-5 : 1e-3;
    const diff = shown!.probabilities.reduce(
      (worst, p, i) => Math.max(worst, Math.abs(p - expected.probabilities[i]!)),
      0,
    );
    measured.push(`  upload of an RGB picture on ${ep}: max probability diff vs the server ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(tolerance);
    await mkdir('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/page-upload.png' });
  });

  it('reads a picture with a colour profile (Display P3, as phones write them) in sRGB, as the server does', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    const picture = await sharp(await colourPicture(40, 30))
      .withIccProfile('p3')
      .jpeg({ quality: 95 })
      .toBuffer();
    const expected = await classifiedByServer('colours', picture);
    await page.setInputFiles('#upload', { name: 'p3.jpg', mimeType: 'image/jpeg', buffer: picture });
    const last = () => page.evaluate(() => (window as unknown as CnnxHooks).cnnx.lastClassification());
    await expect.poll(async () => (await last())?.class, { timeout: 10_000 }).toBe(expected.class);
    const shown = await last();
    const diff = shown!.probabilities.reduce(
      (worst, p, i) => Math.max(worst, Math.abs(p - expected.probabilities[i]!)),
      0,
    );
    measured.push(`  upload of a Display P3 JPEG: max probability diff vs the server ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(2e-3);
  });

  it('opens the digit model on the pad again', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await pickModel('lenet5-relu-mnist');
    expect(await page.getAttribute('body', 'data-mode')).toBe('draw');
    expect(await page.isDisabled('#mode-draw')).toBe(false);
    expect(await page.isVisible('#digits-only')).toBe(false);
  });

  it('keeps the pad in place while a second row is written, and reads the rows as lines', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await page.click('#clear');
    await stroke([
      [200, 10],
      [202, 80],
    ]);
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('1');
    const before = (await page.locator('#pad').boundingBox())!;
    await stroke([
      [200, 125],
      [202, 190],
    ]);
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('1\n1');
    expect((await page.locator('#pad').boundingBox())!.y).toBe(before.y);
    // Both rows are shown within the display, not cut off below it.
    const display = (await page.locator('#display').boundingBox())!;
    const rows = (await page.locator('#result').boundingBox())!;
    expect(rows.y).toBeGreaterThanOrEqual(display.y);
    expect(rows.y + rows.height).toBeLessThanOrEqual(display.y + display.height + 0.5);
  });

  it('leaves a second finger out of the stroke being drawn', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await page.click('#clear');
    const box = (await page.locator('#pad').boundingBox())!;
    const at = (x: number, y: number, id: number) => ({
      x: box.x + (x * box.width) / 640,
      y: box.y + (y * box.height) / 200,
      id,
    });
    const cdp = await page.context().newCDPSession(page);
    const touch = (type: 'touchStart' | 'touchMove' | 'touchEnd', touchPoints: ReturnType<typeof at>[]) =>
      cdp.send('Input.dispatchTouchEvent', { type, touchPoints });
    // A finger writes a 1; halfway down a palm lands to its right and rests there until the 1 is done.
    await touch('touchStart', [at(300, 30, 0)]);
    for (let y = 40; y <= 90; y += 10) await touch('touchMove', [at(301, y, 0)]);
    await touch('touchStart', [at(301, 90, 0), at(520, 150, 1)]);
    for (let y = 100; y <= 170; y += 10) await touch('touchMove', [at(302, y, 0), at(520, 150, 1)]);
    await touch('touchEnd', [at(302, 170, 0)]);
    await touch('touchEnd', []);
    await cdp.detach();
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('1');
  });

  it('says why nothing is read when the pad holds no digit', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await page.click('#clear');
    // A dash: flat, so no digit.
    await stroke([
      [250, 100],
      [390, 100],
    ]);
    await expect
      .poll(() => page.textContent('#draw-note'), { timeout: 10_000 })
      .toBe(
        'no digits read: 1 mark is not a digit (a speck, a blob, a line or a border); clear the pad and write again',
      );
    expect(await page.textContent('#result')).toBe('');
    await page.click('#clear');
    expect(await page.textContent('#draw-note')).toBe('');
  });

  it('says why a file is no picture it reads: empty, GIF, or over the pixel budget', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await page.click('#mode-upload');
    const gif = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#fff' } })
      .gif()
      .toBuffer();
    const huge = await sharp({ create: { width: 6000, height: 5000, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
    for (const [name, buffer, answer] of [
      ['empty.png', Buffer.alloc(0), 'the file is empty (0 bytes), not a picture'],
      ['digit.png', gif, 'the file is GIF; use a PNG, JPEG or WebP picture'],
      ['huge.png', huge, 'the picture has more than 25 megapixels (6000x5000); scale it down'],
    ] as const) {
      await page.setInputFiles('#upload', { name, mimeType: 'image/png', buffer });
      await expect.poll(() => page.textContent('#picture-result'), { timeout: 10_000 }).toBe(answer);
      expect(await page.isVisible('#preview')).toBe(false);
    }
    await page.click('#mode-draw');
  });

  it('answers a picture given while a model is opening, once it is open, and shows it', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    const png = await digitsOnPaper(await loadDataset('mnist'), [0]);
    // From a model of other pictures to the digit model, which opens on the pad: the picture keeps the page.
    await pickModel('lenet5-relu-fashion-mnist');
    await page.evaluate(() => void (window as unknown as CnnxHooks).cnnx.useModel('lenet5-relu-mnist'));
    await page.setInputFiles('#upload', { name: 'seven.png', mimeType: 'image/png', buffer: png });
    await expect.poll(() => page.textContent('#picture-result'), { timeout: 30_000 }).toBe('7');
    expect(await page.getAttribute('body', 'data-model')).toBe('lenet5-relu-mnist');
    expect(await page.isVisible('#picture-result')).toBe(true);
    expect(await page.isVisible('#preview')).toBe(true);
    await page.click('#mode-draw');
  });

  it('logged no errors and no CSP violations', (ctx) => {
    ctx.skip(missing !== undefined, missing);
    expect(problems, problems.join('\n')).toEqual([]);
  });
});

describe('the web page when the served models change', () => {
  let server: CnnxServer;
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    if (missing) return;
    dir = await tempDir();
    await copyFile(DIGITS, join(dir, 'digits.onnx'));
    server = await createServer({ model: dir, ep: 'cpu', watch: true });
    await server.app.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--no-first-run'] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const address = () => `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}/`;

  async function openPage(query = ''): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${address()}${query}`);
    await page.waitForFunction(() => document.body.dataset.ep !== '' || document.body.dataset.error !== undefined);
    return page;
  }

  it('says when the model asked for is not served, and which one it opened', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    const page = await openPage('?model=nope');
    expect(await page.getAttribute('body', 'data-model')).toBe('digits');
    expect(await page.textContent('#status')).toMatch(
      /^digits on (WASM|WEBGPU).*\(model 'nope' is not served\)( · [\d.]+ ms)?$/,
    );
    expect(new URL(page.url()).searchParams.get('model')).toBe('digits');
    await page.close();
  });

  it('runs the served model again once its file is replaced on disk', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    const page = await openPage();
    const before = await page.getAttribute('body', 'data-sha256');
    expect(before).toBe(server.registry.get('digits')!.sha256);
    await copyFile('models/lenet5-mnist.onnx', join(dir, 'digits.onnx'));
    await expect.poll(() => server.registry.get('digits')!.sha256, { timeout: 60_000 }).not.toBe(before);
    await page.evaluate(() => (window as unknown as CnnxHooks).cnnx.followServedModel());
    expect(await page.getAttribute('body', 'data-sha256')).toBe(server.registry.get('digits')!.sha256);
    expect(await page.textContent('#status')).toMatch(/reloaded: the served model changed/);
    await page.close();
  });

  it('says why it has no model to open when none is served, and what to do', async (ctx) => {
    ctx.skip(missing !== undefined, missing);
    await server.app.inject({ method: 'POST', url: '/v2/repository/models/digits/unload' });
    const page = await openPage();
    expect(await page.getAttribute('body', 'data-error')).toMatch(/^no model is served/);
    expect(await page.textContent('#status')).toBe(
      'could not open a model: no model is served (GET /v2 lists none); load one with POST /v2/repository/models/{name}/load. Reload the page to try again.',
    );
    await page.close();
  });
});
