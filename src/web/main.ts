/**
 * The page: a drawing pad whose strokes are read as a number, ATM-style, by onnxruntime-web in the browser.
 * Preprocessing and segmentation are the shared isomorphic module, the same code as the server's read-digits.
 */
import * as ort from 'onnxruntime-web';
import { preprocess, toGray } from '../preprocess/index.js';
import { describeDigits, topOf } from './recognise.js';

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
let fashion: { session: ort.InferenceSession; labels: string[]; name: string } | undefined;
let firstPrediction: number | undefined;

let loading: Promise<void> = Promise.resolve();

/** Loads the models on `ep`; calls run one after another (a session must not be released while another loads). */
function loadModel(ep: 'wasm' | 'webgpu'): Promise<void> {
  loading = loading.catch(() => undefined).then(() => loadModelNow(ep));
  return loading;
}

async function loadModelNow(ep: 'wasm' | 'webgpu'): Promise<void> {
  status.textContent = 'loading model…';
  const models = (await (await fetch('/v2')).json()) as { models: string[] };
  const name =
    new URLSearchParams(location.search).get('model') ??
    models.models.find((m) => !m.includes('fashion')) ??
    models.models[0]!;
  const bytes = new Uint8Array(await (await fetch(`/models/${name}.onnx`)).arrayBuffer());
  const meta = (await (await fetch(`/v2/models/${name}`)).json()) as { parameters: { labels: string[] } };
  labels = meta.parameters.labels;
  // One provider at a time: with a list, onnxruntime-web falls back silently and data-ep would be wrong.
  let providers = ep === 'webgpu' && 'gpu' in navigator ? ['webgpu'] : ['wasm'];
  await session?.release();
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: providers });
  } catch (error) {
    if (providers[0] === 'wasm') throw error;
    console.warn(`WebGPU unavailable (${(error as Error).message}); using WASM`);
    providers = ['wasm'];
    session = await ort.InferenceSession.create(bytes, { executionProviders: providers });
  }
  const fashionName = models.models.find((m) => m.includes('fashion'));
  if (fashionName) {
    const fashionBytes = new Uint8Array(await (await fetch(`/models/${fashionName}.onnx`)).arrayBuffer());
    const fashionMeta = (await (await fetch(`/v2/models/${fashionName}`)).json()) as {
      parameters: { labels: string[] };
    };
    await fashion?.session.release();
    fashion = {
      name: fashionName,
      labels: fashionMeta.parameters.labels,
      session: await ort.InferenceSession.create(fashionBytes, { executionProviders: providers }),
    };
  }
  document.querySelector<HTMLElement>('#fashion')!.hidden = fashion === undefined;
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
  firstPrediction ??= performance.now();
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

/** Classifies a picture with the Fashion-MNIST model: whole image fitted into 28x28, as the server's classify. */
async function classifyPicture(file: Blob): Promise<void> {
  if (!fashion) return;
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, 512 / Math.max(bitmap.width, bitmap.height));
  const canvas = new OffscreenCanvas(
    Math.max(1, Math.round(bitmap.width * scale)),
    Math.max(1, Math.round(bitmap.height * scale)),
  );
  const c = canvas.getContext('2d')!;
  c.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const pixels = c.getImageData(0, 0, canvas.width, canvas.height).data;
  const input = preprocess(toGray(pixels, canvas.width, canvas.height, 4), 'fit');
  const outputs = await fashion.session.run({
    [fashion.session.inputNames[0]!]: new ort.Tensor('float32', input, [1, 1, 28, 28]),
  });
  const top = topOf(outputs[fashion.session.outputNames[0]!]!.data as Float32Array, fashion.labels);
  document.querySelector('#fashion-result')!.textContent = top[0]!.class;
  document.querySelector('#fashion-top')!.replaceChildren(
    ...top.map((t) => {
      const item = document.createElement('li');
      item.textContent = `${t.class}: ${Math.round(t.probability * 100)}%`;
      return item;
    }),
  );
}

const drop = document.querySelector<HTMLElement>('#drop')!;
document.querySelector<HTMLInputElement>('#upload')!.addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) void classifyPicture(file);
});
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) void classifyPicture(file);
});

/**
 * Hooks for tests and for pages that embed this one: run the digit model on prepared [N, 1, 28, 28] inputs
 * (the parity tests compare these logits with onnxruntime-node), switch provider, and timing.
 */
Object.assign(window, {
  cnnx: {
    async run(data: number[], dims: number[]): Promise<number[]> {
      const outputs = await session!.run({
        [session!.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(data), dims),
      });
      return Array.from(outputs[session!.outputNames[0]!]!.data as Float32Array);
    },
    useProvider: (ep: 'wasm' | 'webgpu') => loadModel(ep),
    firstPredictionMs: () => firstPrediction,
  },
});

redraw();
void loadModel('gpu' in navigator ? 'webgpu' : 'wasm').catch(() => loadModel('wasm'));
