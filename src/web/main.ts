/**
 * The page: a drawing pad whose strokes are read as a number, ATM-style, by onnxruntime-web in the browser.
 * Preprocessing and segmentation are the shared isomorphic module, the same code as the server's read-digits.
 */
import * as ort from 'onnxruntime-web';
import { describeDigits } from './recognise.js';

const pad = document.querySelector<HTMLCanvasElement>('#pad')!;
const result = document.querySelector<HTMLElement>('#result')!;
const status = document.querySelector<HTMLElement>('#status')!;
const digitsList = document.querySelector<HTMLOListElement>('#digits')!;
const epSelect = document.querySelector<HTMLSelectElement>('#ep-select')!;
const context = pad.getContext('2d', { willReadFrequently: true })!;

type Stroke = { x: number; y: number }[];
const strokes: Stroke[] = [];
let current: Stroke | undefined;

ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

let session: ort.InferenceSession | undefined;
let labels: string[] = [];

async function loadModel(ep: 'wasm' | 'webgpu'): Promise<void> {
  status.textContent = 'loading model…';
  const models = (await (await fetch('/v2')).json()) as { models: string[] };
  const name =
    new URLSearchParams(location.search).get('model') ??
    models.models.find((m) => !m.includes('fashion')) ??
    models.models[0]!;
  const bytes = new Uint8Array(await (await fetch(`/models/${name}.onnx`)).arrayBuffer());
  const meta = (await (await fetch(`/v2/models/${name}`)).json()) as { parameters: { labels: string[] } };
  labels = meta.parameters.labels;
  const providers = ep === 'webgpu' && 'gpu' in navigator ? ['webgpu', 'wasm'] : ['wasm'];
  await session?.release();
  session = await ort.InferenceSession.create(bytes, { executionProviders: providers });
  const used = providers[0] === 'webgpu' ? 'webgpu' : 'wasm';
  document.body.dataset.ep = used;
  epSelect.value = used;
  status.textContent = `${name} on ${used.toUpperCase()}`;
}

function redraw(): void {
  context.fillStyle = '#fff';
  context.fillRect(0, 0, pad.width, pad.height);
  context.strokeStyle = '#111';
  context.lineWidth = 14;
  context.lineCap = 'round';
  context.lineJoin = 'round';
  for (const stroke of strokes) {
    context.beginPath();
    stroke.forEach((p, i) => (i === 0 ? context.moveTo(p.x, p.y) : context.lineTo(p.x, p.y)));
    if (stroke.length === 1) context.lineTo(stroke[0]!.x + 0.1, stroke[0]!.y);
    context.stroke();
  }
}

function point(event: PointerEvent): { x: number; y: number } {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

async function recognise(): Promise<void> {
  if (!session) return;
  const image = context.getImageData(0, 0, pad.width, pad.height);
  const started = performance.now();
  const digits = await describeDigits(session, image.data, pad.width, pad.height, labels);
  const ms = performance.now() - started;
  result.textContent = digits.map((d) => d.text).join('');
  status.textContent = `${status.textContent?.split(' · ')[0]} · ${ms.toFixed(1)} ms`;
  digitsList.replaceChildren(
    ...digits.map((d) => {
      const item = document.createElement('li');
      item.append(
        ...d.top.map((t) => {
          const row = document.createElement('div');
          row.className = 'bar';
          const label = document.createElement('span');
          label.textContent = t.class;
          const bar = document.createElement('i');
          bar.style.width = `${Math.round(t.probability * 60)}px`;
          const value = document.createElement('span');
          value.textContent = `${Math.round(t.probability * 100)}%`;
          row.append(label, bar, value);
          return row;
        }),
      );
      return item;
    }),
  );
}

pad.addEventListener('pointerdown', (event) => {
  pad.setPointerCapture(event.pointerId);
  current = [point(event)];
  strokes.push(current);
  redraw();
});
pad.addEventListener('pointermove', (event) => {
  if (!current) return;
  current.push(point(event));
  redraw();
});
const endStroke = () => {
  if (!current) return;
  current = undefined;
  void recognise();
};
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);
document.querySelector('#clear')!.addEventListener('click', () => {
  strokes.length = 0;
  redraw();
  result.textContent = '';
  digitsList.replaceChildren();
});
document.querySelector('#undo')!.addEventListener('click', () => {
  strokes.pop();
  redraw();
  void recognise();
});
epSelect.addEventListener('change', () => void loadModel(epSelect.value as 'wasm' | 'webgpu').then(recognise));

redraw();
void loadModel('gpu' in navigator ? 'webgpu' : 'wasm').catch(() => loadModel('wasm'));
