/**
 * The page: a drawing pad whose strokes are read as a number, ATM-style, by onnxruntime-web in the browser
 * (through the runtime stage's web adapter, which runs one inference at a time per model). Preprocessing and
 * segmentation are the shared isomorphic module, the same code as the server's read-digits.
 */
import { prepareInput } from '../preprocess/index.js';
import { describeLogits, openWebSession, type WebSession } from '../runtime/web/index.js';
import { describeDigits } from './recognise.js';

const pad = document.querySelector<HTMLCanvasElement>('#pad')!;
const result = document.querySelector<HTMLElement>('#result')!;
const status = document.querySelector<HTMLElement>('#status')!;
const digitsList = document.querySelector<HTMLOListElement>('#digits')!;
const epSelect = document.querySelector<HTMLSelectElement>('#ep-select')!;
const penSelect = document.querySelector<HTMLSelectElement>('#pen')!;
const context = pad.getContext('2d', { willReadFrequently: true })!;

/** A stroke keeps the pen it was drawn with: the preprocessing brings any width to MNIST's proportions. */
type Stroke = { width: number; points: { x: number; y: number }[] };
const strokes: Stroke[] = [];
let current: Stroke | undefined;

/** Where the server hands out onnxruntime-web's WASM files, and how many threads they may use. */
const RUNTIME = {
  wasmPaths: '/ort/',
  threads: self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1,
};

interface LoadedModel {
  session: WebSession;
  labels: string[];
}

/** The digit model and the Fashion-MNIST one; undefined while (re)loading, so no run reaches a released session. */
let digits: LoadedModel | undefined;
let fashion: LoadedModel | undefined;
let firstPrediction: number | undefined;

let loading: Promise<void> = Promise.resolve();

/**
 * Loads the models, on WebGPU where the browser has an adapter (else WASM, saying why) or on WASM; calls run one
 * after another (a session must not be released while another loads).
 */
function loadModel(ep: 'wasm' | 'webgpu'): Promise<void> {
  loading = loading.catch(() => undefined).then(() => loadModelNow(ep));
  return loading;
}

async function fetchModel(name: string): Promise<{ bytes: Uint8Array; labels: string[] }> {
  const bytes = new Uint8Array(await (await fetch(`/models/${name}.onnx`)).arrayBuffer());
  const meta = (await (await fetch(`/v2/models/${name}`)).json()) as { parameters: { labels: string[] } };
  return { bytes, labels: meta.parameters.labels };
}

async function loadModelNow(ep: 'wasm' | 'webgpu'): Promise<void> {
  status.textContent = 'loading model…';
  const models = (await (await fetch('/v2')).json()) as { models: string[] };
  const name =
    new URLSearchParams(location.search).get('model') ??
    models.models.find((m) => !m.includes('fashion')) ??
    models.models[0]!;
  const fashionName = models.models.find((m) => m.includes('fashion'));
  const previous = [digits, fashion];
  digits = fashion = undefined;
  // Each release waits for the runs already asked of its session.
  await Promise.all(previous.map((model) => model?.session.release()));
  const digitModel = await fetchModel(name);
  // `auto`: WebGPU where there is an adapter, else WASM with the reason in `skipped`.
  const session = await openWebSession(digitModel.bytes, { ep: ep === 'webgpu' ? 'auto' : 'wasm', ...RUNTIME });
  digits = { session, labels: digitModel.labels };
  if (fashionName) {
    const fashionModel = await fetchModel(fashionName);
    fashion = {
      labels: fashionModel.labels,
      session: await openWebSession(fashionModel.bytes, { ep: session.ep, ...RUNTIME }),
    };
  }
  document.querySelector<HTMLElement>('#fashion')!.hidden = fashion === undefined;
  document.body.dataset.ep = session.ep;
  epSelect.value = session.ep;
  const skipped = session.skipped.map((s) => `${s.ep}: ${s.reason}`).join('; ');
  status.textContent = `${name} on ${session.ep.toUpperCase()}${skipped ? ` (${skipped})` : ''}`;
}

function redraw(): void {
  context.fillStyle = '#fff';
  context.fillRect(0, 0, pad.width, pad.height);
  context.strokeStyle = '#111';
  context.lineCap = 'round';
  context.lineJoin = 'round';
  for (const { width, points } of strokes) {
    context.lineWidth = width;
    context.beginPath();
    points.forEach((p, i) => (i === 0 ? context.moveTo(p.x, p.y) : context.lineTo(p.x, p.y)));
    if (points.length === 1) context.lineTo(points[0]!.x + 0.1, points[0]!.y);
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
  if (!digits) return;
  const image = context.getImageData(0, 0, pad.width, pad.height);
  const started = performance.now();
  const read = await describeDigits(digits.session, image.data, pad.width, pad.height, digits.labels);
  const ms = performance.now() - started;
  result.textContent = read.map((d) => d.text).join('');
  firstPrediction ??= performance.now();
  status.textContent = `${status.textContent?.split(' · ')[0]} · ${ms.toFixed(1)} ms`;
  digitsList.replaceChildren(
    ...read.map((d) => {
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
  current = { width: Number(penSelect.value), points: [point(event)] };
  strokes.push(current);
  redraw();
});
pad.addEventListener('pointermove', (event) => {
  if (!current) return;
  current.points.push(point(event));
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
  const prepared = prepareInput({ width: canvas.width, height: canvas.height, channels: 4, data: pixels }, 'fit');
  if ('nothing' in prepared) {
    document.querySelector('#fashion-result')!.textContent = `nothing to classify (${prepared.nothing})`;
    document.querySelector('#fashion-top')!.replaceChildren();
    return;
  }
  const { data } = await fashion.session.run(prepared.input, [1, 1, 28, 28]);
  const { top } = describeLogits(data, fashion.labels);
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
      if (!digits) throw new Error('the digit model is not loaded');
      return Array.from((await digits.session.run(Float32Array.from(data), dims)).data);
    },
    useProvider: (ep: 'wasm' | 'webgpu') => loadModel(ep),
    firstPredictionMs: () => firstPrediction,
  },
});

redraw();
void loadModel('webgpu').catch(() => loadModel('wasm'));
