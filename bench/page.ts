/**
 * `npm run bench:page`: the web page in headless Chromium (Debian's, via playwright-core). Measures the time from
 * navigation to the first prediction of a drawn digit, and in-page single-image inference latency (p50/p99 over
 * 200 runs) with onnxruntime-web on WebGPU (SwiftShader without a GPU) and on WASM.
 */
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { loadDataset } from '../src/data/index.js';
import { createServer } from '../src/serve/index.js';

interface Hooks {
  cnnx: { run(data: number[], dims: number[]): Promise<number[]>; useProvider(ep: string): Promise<void> };
}

await build({ configFile: 'vite.config.ts', logLevel: 'error' });
const server = await createServer({ model: 'models/lenet5-relu-mnist.onnx', ep: 'cpu', watch: false });
await server.app.listen({ port: 0, host: '127.0.0.1' });
const { port } = server.app.server.address() as AddressInfo;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu'],
});
const page = await browser.newPage();
const mnist = await loadDataset('mnist');
const image = Array.from(mnist.test.pixels.subarray(0, 784), (v) => v / 255);

const started = performance.now();
await page.goto(`http://127.0.0.1:${port}/`);
await page.waitForFunction(() => document.body.dataset.ep !== '');
const box = (await page.locator('#pad').boundingBox())!;
await page.mouse.move(box.x + 100, box.y + 30);
await page.mouse.down();
await page.mouse.move(box.x + 102, box.y + 170, { steps: 4 });
await page.mouse.up();
await page.waitForFunction(() => document.querySelector('#result')!.textContent !== '');
const firstPredictionMs = performance.now() - started;
const firstEp = await page.getAttribute('body', 'data-ep');

const rows: Record<string, unknown>[] = [];
for (const ep of [firstEp, firstEp === 'webgpu' ? 'wasm' : undefined].filter(Boolean) as string[]) {
  if ((await page.getAttribute('body', 'data-ep')) !== ep)
    await page.evaluate((p) => (window as unknown as Hooks).cnnx.useProvider(p), ep);
  const times = await page.evaluate(async (data) => {
    const hooks = (window as unknown as Hooks).cnnx;
    for (let i = 0; i < 20; i++) await hooks.run(data, [1, 1, 28, 28]);
    const out: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await hooks.run(data, [1, 1, 28, 28]);
      out.push(performance.now() - t);
    }
    return out.sort((a, b) => a - b);
  }, image);
  rows.push({ ep: await page.getAttribute('body', 'data-ep'), p50_ms: times[100], p99_ms: times[198] });
}
await browser.close();
await server.close();
console.log(JSON.stringify({ first_prediction_ms: Math.round(firstPredictionMs), first_ep: firstEp, latency: rows }));
