/**
 * The web page in a real browser: Debian's Chromium (installed by .ci/run) driven by playwright-core. Digits are
 * drawn with mouse strokes and read by onnxruntime-web in the page.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type CnnxServer } from '../../src/serve/index.js';

const CHROMIUM = '/usr/bin/chromium';
const required = process.env.CNNX_REQUIRE_WEBGPU === '1';

describe.runIf(existsSync(CHROMIUM) || required)('the web page in Chromium', () => {
  let server: CnnxServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    await build({ configFile: 'vite.config.ts', logLevel: 'error' });
    server = await createServer({ model: 'models/lenet5-relu-mnist.onnx', ep: 'cpu', watch: false });
    await server.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = server.app.server.address() as AddressInfo;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
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
    await browser?.close();
    await server?.close();
  });

  async function stroke(points: [number, number][]) {
    const box = (await page.locator('#pad').boundingBox())!;
    const scale = box.width / 640;
    await page.mouse.move(box.x + points[0]![0] * scale, box.y + points[0]![1] * scale);
    await page.mouse.down();
    for (const [x, y] of points.slice(1)) await page.mouse.move(box.x + x * scale, box.y + y * scale, { steps: 8 });
    await page.mouse.up();
  }

  it('is cross-origin isolated and runs the model on WebGPU when the browser has it, else WASM', async () => {
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
    const hasWebgpu = await page.evaluate(() => 'gpu' in navigator);
    expect(await page.getAttribute('body', 'data-ep')).toBe(hasWebgpu ? 'webgpu' : 'wasm');
  });

  it('reads a drawn 1, then 11', async () => {
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

  it('switches to WASM and reads the same', async () => {
    await page.selectOption('#ep-select', 'wasm');
    await page.waitForFunction(() => document.body.dataset.ep === 'wasm');
    await page.click('#undo');
    await expect.poll(() => page.textContent('#result'), { timeout: 10_000 }).toBe('1');
  });

  it('logged no errors and no CSP violations', () => {
    expect(problems, problems.join('\n')).toEqual([]);
  });
});
