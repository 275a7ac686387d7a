/**
 * The page: a drawing pad whose strokes are read as a number, ATM-style, and an upload mode that classifies a
 * picture (or, with a digit model, reads the number in it), both run by onnxruntime-web in the browser (through the runtime stage's web adapter, which runs one
 * inference at a time per model). Any served model can be picked: a digit model opens on the pad; a model of
 * anything else (Fashion-MNIST, or the user's own classes, gray or RGB, of any input size) opens in upload mode,
 * since the pad reads digits only. Preprocessing and segmentation are the shared isomorphic module, the same code
 * as the server's classify and read-digits; each picture is prepared by the model's own procedure and input shape.
 */
import { IMAGE_FORMATS, imageFormatOf, MAX_IMAGE_PIXELS, WORKING_SIDE, type Procedure } from '../preprocess/index.js';
import {
  describeLogits,
  isDigitModel,
  openWebSession,
  prepareForModel,
  type Classification,
  type InputShape,
  type WebSession,
} from '../runtime/web/index.js';
import { describeDigits } from './recognise.js';

const pad = document.querySelector<HTMLCanvasElement>('#pad')!;
const result = document.querySelector<HTMLElement>('#result')!;
const status = document.querySelector<HTMLElement>('#status')!;
const digitsList = document.querySelector<HTMLOListElement>('#digits')!;
const epSelect = document.querySelector<HTMLSelectElement>('#ep-select')!;
const modelSelect = document.querySelector<HTMLSelectElement>('#model-select')!;
const penSelect = document.querySelector<HTMLSelectElement>('#pen')!;
const drawTab = document.querySelector<HTMLButtonElement>('#mode-draw')!;
const uploadTab = document.querySelector<HTMLButtonElement>('#mode-upload')!;
const pictureResult = document.querySelector<HTMLElement>('#picture-result')!;
const pictureTop = document.querySelector<HTMLOListElement>('#picture-top')!;
const preview = document.querySelector<HTMLImageElement>('#preview')!;
const drawNote = document.querySelector<HTMLElement>('#draw-note')!;
const display = document.querySelector<HTMLElement>('#display')!;
const context = pad.getContext('2d', { willReadFrequently: true })!;

/** Longest side a picture is read at: the size the server's decoder reduces pictures to. */
const PICTURE_SIDE = WORKING_SIDE;
/** Classes listed for a picture. */
const TOP_CLASSES = 5;

/** How often the page asks whether the model it runs is still the one served (a file replaced on disk). */
const WATCH_MS = 10_000;

/**
 * A stroke keeps the pen it was drawn with (the preprocessing brings any width to MNIST's proportions), and the
 * pointer drawing it: a second finger or a palm on the pad does not join it.
 */
type Stroke = { width: number; pointerId: number; points: { x: number; y: number }[] };
const strokes: Stroke[] = [];
let current: Stroke | undefined;

/** Where the server hands out onnxruntime-web's WASM files, and how many threads they may use. */
const RUNTIME = {
  wasmPaths: '/ort/',
  threads: self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1,
};

/** What the page needs to know of a served model, from its KServe v2 metadata. */
interface ModelInfo {
  name: string;
  labels: string[];
  /** How a picture becomes its input: `mnist` (a digit model), `fit` or `resize`. */
  procedure: Procedure;
  /** Its input's [C, H, W]. */
  shape: InputShape;
  /** What its output holds: logits, or probabilities (a model that ends in a softmax). */
  outputKind: 'logits' | 'probabilities';
  /** The served bytes' SHA-256: the page notices when the server reloads the model from a changed file. */
  sha256: string;
}

interface LoadedModel extends ModelInfo {
  session: WebSession;
}

type Mode = 'draw' | 'upload';

/** The model the page runs; undefined while (re)loading, so no run reaches a released session. */
let model: LoadedModel | undefined;
let firstPrediction: number | undefined;
let lastClassification: Classification | undefined;

let loading: Promise<void> = Promise.resolve();
/** The status line without its timing, which each run appends. */
let statusLine = '';

function showStatus(line: string, ms?: number): void {
  statusLine = line;
  status.textContent = ms === undefined ? line : `${line} · ${ms.toFixed(1)} ms`;
}

/** A request's JSON, or an error that says what the server answered (its `error` message, else the status). */
async function fetchJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  const body = (await response.json().catch(() => undefined)) as (T & { error?: string }) | undefined;
  if (!response.ok || body === undefined) {
    throw new Error(`${url} answered ${response.status}${body?.error ? `: ${body.error}` : ` ${response.statusText}`}`);
  }
  return body;
}

/** Says on the page why a model could not be opened, and what to do. */
function showLoadError(error: unknown): void {
  const why = error instanceof Error ? error.message : String(error);
  document.body.dataset.error = why;
  showStatus(`could not open a model: ${why}. Reload the page to try again.`);
}

/**
 * Loads a model (`name`, else the one the address or the picker names, else the first digit model), on WebGPU where
 * the browser has an adapter (else WASM, saying why) or on WASM; calls run one after another (a session must not be
 * released while another loads).
 */
function loadModel(ep: 'wasm' | 'webgpu', name?: string): Promise<void> {
  loadsAsked++;
  loading = loading.catch(() => undefined).then(() => loadModelNow(ep, name));
  return loading;
}

/** Loads asked for so far: a check that began before another load must not act on what it saw. */
let loadsAsked = 0;

/** Waits until no load is queued any more (a failed WebGPU load queues the WASM one after it). */
async function settled(): Promise<void> {
  for (let last: Promise<void> | undefined; last !== loading;) {
    last = loading;
    await last.catch(() => undefined);
  }
}

async function describeModel(name: string): Promise<ModelInfo> {
  const meta = await fetchJson<{
    inputs: { shape: number[] }[];
    parameters: { labels: string[]; procedure?: Procedure; output_kind?: 'logits' | 'probabilities'; sha256: string };
  }>(`/v2/models/${encodeURIComponent(name)}`);
  const [, channels, height, width] = meta.inputs[0]!.shape as [number, number, number, number];
  return {
    name,
    labels: meta.parameters.labels,
    procedure: meta.parameters.procedure ?? 'mnist',
    shape: [channels, height, width],
    outputKind: meta.parameters.output_kind ?? 'logits',
    sha256: meta.parameters.sha256,
  };
}

/** The model to open: the one asked for when it is served, else the first digit model, else the first. */
async function chooseModel(served: string[], asked: string | undefined): Promise<ModelInfo> {
  if (served.length === 0) {
    throw new Error('no model is served (GET /v2 lists none); load one with POST /v2/repository/models/{name}/load');
  }
  if (asked !== undefined && served.includes(asked)) return describeModel(asked);
  const infos = await Promise.all(served.map(describeModel));
  return infos.find((info) => isDigitModel(info)) ?? infos[0]!;
}

async function loadModelNow(ep: 'wasm' | 'webgpu', name?: string): Promise<void> {
  showStatus('loading model…');
  const { models: served } = await fetchJson<{ models: string[] }>('/v2');
  const asked = name ?? model?.name ?? (new URLSearchParams(location.search).get('model') || undefined);
  const info = await chooseModel(served, asked);
  const response = await fetch(`/models/${encodeURIComponent(info.name)}.onnx`);
  if (!response.ok) throw new Error(`/models/${info.name}.onnx answered ${response.status} ${response.statusText}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const previous = model;
  model = undefined;
  // The release waits for the runs already asked of its session.
  await previous?.session.release();
  // `auto`: WebGPU where there is an adapter, else WASM with the reason in `skipped`.
  const session = await openWebSession(bytes, { ep: ep === 'webgpu' ? 'auto' : 'wasm', ...RUNTIME });
  model = { ...info, session };
  modelSelect.replaceChildren(
    ...served.map((served) => {
      const option = document.createElement('option');
      option.value = option.textContent = served;
      return option;
    }),
  );
  modelSelect.value = info.name;
  document.querySelector<HTMLElement>('#model-choice')!.hidden = served.length < 2;
  // A new model, or the same name now of another kind (a digit model's file replaced by another's): set up anew.
  if (previous?.name !== info.name || isDigitModel(previous) !== isDigitModel(info)) showModel(info);
  if (asked !== undefined && asked !== info.name) {
    const address = new URL(location.href);
    address.searchParams.set('model', info.name);
    history.replaceState(null, '', address);
  }
  delete document.body.dataset.error;
  document.body.dataset.ep = session.ep;
  document.body.dataset.model = info.name;
  document.body.dataset.sha256 = info.sha256;
  epSelect.value = session.ep;
  const skipped = session.skipped.map((s) => `${s.ep}: ${s.reason}`).join('; ');
  const instead = asked !== undefined && asked !== info.name ? ` (model '${asked}' is not served)` : '';
  showStatus(`${info.name} on ${session.ep.toUpperCase()}${skipped ? ` (${skipped})` : ''}${instead}`);
}

/**
 * Whether the model the page runs is still the one served: the server reloads a model whose file changes, and the
 * page follows it (a model no longer served is said in the status line, and the page keeps its copy).
 */
async function followServedModel(): Promise<void> {
  const running = model;
  const asked = loadsAsked;
  if (!running || document.hidden) return;
  const response = await fetch(`/v2/models/${encodeURIComponent(running.name)}`).catch(() => undefined);
  // A load asked for meanwhile (another model, another provider, or this check run twice) decides instead.
  if (model !== running || loadsAsked !== asked) return;
  if (response?.status === 404) {
    status.textContent = `${running.name} is no longer served (this page keeps running its copy)`;
    return;
  }
  if (!response?.ok) return; // a server restarting or gone: the page keeps its copy
  if (status.textContent?.includes('is no longer served')) status.textContent = statusLine; // served again
  const meta = (await response.json()) as { parameters?: { sha256?: string } };
  const sha256 = meta.parameters?.sha256;
  if (model !== running || loadsAsked !== asked || sha256 === undefined || sha256 === running.sha256) return;
  await loadModel(running.session.ep === 'webgpu' ? 'webgpu' : 'wasm', running.name);
  if (document.body.dataset.mode === 'draw') await recognise();
  // Said until the next reading's timing takes its place.
  status.textContent = `${status.textContent} · reloaded: the served model changed`;
}

/** Sets the page up for a newly opened model: a digit model on the pad, any other in upload mode. */
function showModel(info: ModelInfo): void {
  const digits = isDigitModel(info);
  drawTab.disabled = !digits;
  drawTab.title = digits ? '' : 'the drawing pad reads digits only';
  document.querySelector<HTMLElement>('#digits-only')!.hidden = digits;
  pictureResult.textContent = '';
  pictureTop.replaceChildren();
  preview.hidden = true;
  lastClassification = undefined;
  setMode(digits ? 'draw' : 'upload');
  if (digits) void recognise();
}

function setMode(next: Mode): void {
  document.body.dataset.mode = next;
  document.querySelector<HTMLElement>('#draw')!.hidden = next !== 'draw';
  document.querySelector<HTMLElement>('#picture')!.hidden = next !== 'upload';
  drawTab.setAttribute('aria-selected', String(next === 'draw'));
  uploadTab.setAttribute('aria-selected', String(next === 'upload'));
  const title = next === 'draw' ? 'Write a number' : 'Classify a picture';
  document.querySelector('#title')!.textContent = title;
  document.title = `cnnx: ${title.toLowerCase()}`;
  const classes = model
    ? ` Its classes: ${model.labels.slice(0, 12).join(', ')}${model.labels.length > 12 ? ', …' : ''}.`
    : '';
  document.querySelector('#hint')!.textContent =
    next === 'draw'
      ? 'Draw digits with the mouse, a pen or a finger. LeNet-5 reads them in your browser with ONNX Runtime Web.'
      : `Upload or drop a picture (PNG, JPEG or WebP): the model classifies it in your browser with ONNX Runtime Web.${classes}`;
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

/** A digit's top classes, as a list item that a screen reader reads as "7: 98%, 1: 2%". */
function digitItem(top: { class: string; probability: number }[]): HTMLLIElement {
  const item = document.createElement('li');
  item.setAttribute('aria-label', top.map((t) => `${t.class}: ${Math.round(t.probability * 100)}%`).join(', '));
  item.append(...top.map((t) => probabilityBar(t.class, t.probability)));
  return item;
}

/**
 * Shows the number read on the display, which keeps its height (the pad under it must not move while a second row
 * is written): rows of writing share it, and a number too long for its width is written smaller.
 */
function showNumber(text: string): void {
  result.textContent = text;
  result.style.fontSize = `${1 / Math.max(1, text.split('\n').length)}em`;
  const overflow = display.scrollWidth / display.clientWidth;
  if (overflow > 1) result.style.fontSize = `${1 / Math.max(1, text.split('\n').length) / overflow}em`;
}

/** A row of a top-k list: the class name, a bar as long as its probability, the percentage. */
function probabilityBar(name: string, probability: number): HTMLElement {
  const row = document.createElement('div');
  row.className = 'bar';
  const label = document.createElement('span');
  label.textContent = name;
  const bar = document.createElement('i');
  bar.style.width = `${Math.round(probability * 60)}px`;
  const value = document.createElement('span');
  value.textContent = `${Math.round(probability * 100)}%`;
  row.append(label, bar, value);
  return row;
}

/** The number written in RGBA `pixels` (the pad, or an uploaded picture), read with the digit model `loaded`. */
const readNumber = (
  loaded: LoadedModel,
  pixels: { data: Uint8ClampedArray; width: number; height: number },
): ReturnType<typeof describeDigits> =>
  describeDigits(
    loaded.session,
    pixels.data,
    pixels.width,
    pixels.height,
    loaded.labels,
    loaded.shape,
    loaded.outputKind,
  );

async function recognise(): Promise<void> {
  const digits = model;
  if (!digits || !isDigitModel(digits)) return;
  const image = context.getImageData(0, 0, pad.width, pad.height);
  const started = performance.now();
  const read = await readNumber(digits, { data: image.data, width: pad.width, height: pad.height }).catch(
    (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }),
  );
  if ('error' in read) {
    showNumber('');
    digitsList.replaceChildren();
    drawNote.textContent = read.error;
    return;
  }
  const ms = performance.now() - started;
  showNumber(read.text);
  firstPrediction ??= performance.now();
  showStatus(statusLine, ms);
  drawNote.textContent =
    read.text === '' && strokes.length > 0
      ? `no digits read: ${leftOut(read.ignored)}; clear the pad and write again`
      : '';
  digitsList.replaceChildren(...read.digits.map((d) => digitItem(d.top)));
}

/** What a reading left out, in words. */
const leftOut = (marks: number) =>
  marks === 0
    ? 'nothing on the pad is read as writing'
    : `${marks === 1 ? '1 mark is not a digit' : `${marks} marks are not digits`} (a speck, a blob, a line or a border)`;

pad.addEventListener('pointerdown', (event) => {
  if (current) return; // a second finger or a palm while a stroke is drawn
  pad.setPointerCapture(event.pointerId);
  current = { width: Number(penSelect.value), pointerId: event.pointerId, points: [point(event)] };
  strokes.push(current);
  redraw();
});
pad.addEventListener('pointermove', (event) => {
  if (current?.pointerId !== event.pointerId) return;
  current.points.push(point(event));
  redraw();
});
const endStroke = (event: PointerEvent) => {
  if (current?.pointerId !== event.pointerId) return;
  current = undefined;
  void recognise();
};
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('lostpointercapture', endStroke);
pad.addEventListener('pointercancel', endStroke);
document.querySelector('#clear')!.addEventListener('click', () => {
  strokes.length = 0;
  redraw();
  showNumber('');
  drawNote.textContent = '';
  digitsList.replaceChildren();
});
document.querySelector('#undo')!.addEventListener('click', () => {
  strokes.pop();
  redraw();
  void recognise();
});
epSelect.addEventListener(
  'change',
  () => void loadModel(epSelect.value as 'wasm' | 'webgpu').then(recognise, showLoadError),
);
modelSelect.addEventListener('change', () => {
  const name = modelSelect.value;
  const address = new URL(location.href);
  address.searchParams.set('model', name);
  history.replaceState(null, '', address);
  void loadModel(epSelect.value as 'wasm' | 'webgpu', name).catch(showLoadError);
});
drawTab.addEventListener('click', () => setMode('draw'));
uploadTab.addEventListener('click', () => setMode('upload'));
// The tabs as a tab list: the arrow keys move between them (WAI-ARIA's tabs pattern).
for (const tab of [drawTab, uploadTab]) {
  tab.addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
    const other = tab === drawTab ? uploadTab : drawTab;
    if (other.disabled) return;
    other.focus();
    other.click();
  });
}

/**
 * Why `file` is not a picture the page reads, or undefined: empty, not PNG, JPEG or WebP (whatever its name says),
 * as the server and the CLI refuse them.
 */
async function notAPicture(file: Blob): Promise<string | undefined> {
  if (file.size === 0) return 'the file is empty (0 bytes), not a picture';
  const format = imageFormatOf(new Uint8Array(await file.slice(0, 64).arrayBuffer()));
  return IMAGE_FORMATS.includes(format) ? undefined : `the file is ${format}; use a PNG, JPEG or WebP picture`;
}

/**
 * A picture's RGBA pixels at its natural size, or at most PICTURE_SIDE on its long side, in sRGB (an embedded colour
 * profile converted, as the server's decoder converts it).
 * @throws Error when the picture has more than MAX_IMAGE_PIXELS (checked from its header, before it is decoded) or
 *   cannot be decoded
 */
async function picturePixels(file: Blob): Promise<{ width: number; height: number; data: Uint8ClampedArray }> {
  const url = URL.createObjectURL(file);
  try {
    const header = new Image();
    header.src = url;
    await new Promise((resolve, reject) => {
      header.onload = resolve;
      header.onerror = () => reject(new Error('the picture cannot be decoded (a damaged or cut-off file?)'));
    });
    if (header.naturalWidth * header.naturalHeight > MAX_IMAGE_PIXELS) {
      throw new Error(
        `the picture has more than ${MAX_IMAGE_PIXELS / 1e6} megapixels (${header.naturalWidth}x${header.naturalHeight}); scale it down`,
      );
    }
  } finally {
    URL.revokeObjectURL(url);
  }
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'default', premultiplyAlpha: 'none' });
  const scale = Math.min(1, PICTURE_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = new OffscreenCanvas(
    Math.max(1, Math.round(bitmap.width * scale)),
    Math.max(1, Math.round(bitmap.height * scale)),
  );
  const c = canvas.getContext('2d')!;
  c.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return { width: canvas.width, height: canvas.height, data: c.getImageData(0, 0, canvas.width, canvas.height).data };
}

/** Pictures given so far: only the last one's answer is shown. */
let pictures = 0;

/** Shows why a picture gave no answer, in place of the last one's. */
function pictureFailed(why: string): void {
  pictureResult.textContent = why;
  pictureTop.replaceChildren();
  lastClassification = undefined;
}

/**
 * Classifies a picture with the model, prepared as the server's classify prepares it, and shows the top classes; with
 * a digit model, a picture of several digits is read as a number (as read-digits reads it), each digit's top classes
 * listed. A picture given while a model loads waits for it.
 */
async function classifyPicture(file: Blob): Promise<void> {
  const picture = ++pictures;
  setMode('upload');
  lastClassification = undefined;
  pictureTop.replaceChildren();
  pictureTop.classList.remove('digits');
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.hidden = true;
  const refused = await notAPicture(file);
  if (picture !== pictures) return;
  if (refused !== undefined) return pictureFailed(refused);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  pictureResult.textContent = 'reading…';
  await settled();
  if (picture !== pictures) return; // a later picture was given meanwhile
  // Opening a model sets the page up for it (a digit model on the pad): this picture is still the one shown.
  setMode('upload');
  preview.hidden = false;
  const running = model;
  if (!running) return pictureFailed('no model is open: see the status line above');
  let pixels: Awaited<ReturnType<typeof picturePixels>>;
  try {
    pixels = await picturePixels(file);
  } catch (error) {
    if (picture !== pictures) return;
    preview.hidden = true;
    return pictureFailed(error instanceof Error ? error.message : String(error));
  }
  if (isDigitModel(running)) {
    // A digit model reads a number in a picture (an amount, a code on a slip) as the server's read-digits does;
    // a picture of one digit is classified, with its top classes.
    const started = performance.now();
    const read = await readNumber(running, pixels).catch((error: unknown) => {
      // Too much writing to read (over 64 digits): said, not left beside the last picture's answer.
      pictureFailed(error instanceof Error ? error.message : String(error));
      return undefined;
    });
    if (read === undefined || model !== running || picture !== pictures) return;
    if (read.digits.length > 1) {
      firstPrediction ??= performance.now();
      showStatus(statusLine, performance.now() - started);
      pictureResult.textContent = read.text;
      pictureTop.classList.add('digits');
      pictureTop.replaceChildren(...read.digits.map((d) => digitItem(d.top)));
      return;
    }
  }
  const prepared = prepareForModel(
    { ...pixels, channels: 4 },
    { inputShape: [1, ...running.shape], procedure: running.procedure },
  );
  if ('nothing' in prepared) return pictureFailed(`nothing to classify: ${prepared.nothing}`);
  const started = performance.now();
  const { data } = await running.session.run(prepared.input, [1, ...running.shape]);
  const ms = performance.now() - started;
  if (model !== running || picture !== pictures) return; // another model or picture came meanwhile
  const classification = describeLogits(
    data,
    running.labels,
    Math.min(TOP_CLASSES, running.labels.length),
    running.outputKind,
  );
  lastClassification = classification;
  firstPrediction ??= performance.now();
  showStatus(statusLine, ms);
  pictureResult.textContent = classification.class;
  pictureTop.replaceChildren(
    ...classification.top.map((t) => {
      const item = document.createElement('li');
      item.append(probabilityBar(t.class, t.probability));
      return item;
    }),
  );
}

document.querySelector<HTMLInputElement>('#upload')!.addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) void classifyPicture(file);
});
// A picture may be dropped anywhere on the page (the drop zone and the pad show it); the browser would open it.
const dropTargets = [document.querySelector<HTMLElement>('#drop')!, pad];
for (const target of dropTargets) {
  target.addEventListener('dragover', () => target.classList.add('over'));
  target.addEventListener('dragleave', () => target.classList.remove('over'));
}
document.addEventListener('dragover', (event) => event.preventDefault());
document.addEventListener('drop', (event) => {
  event.preventDefault();
  for (const target of dropTargets) target.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) void classifyPicture(file);
});

/**
 * Hooks for tests and for pages that embed this one: run the model on prepared [N, C, H, W] inputs (the parity
 * tests compare these logits with onnxruntime-node), switch provider or model, the last picture's classification,
 * check at once whether the served model changed (the page does every WATCH_MS), and timing.
 */
Object.assign(window, {
  cnnx: {
    async run(data: number[], dims: number[]): Promise<number[]> {
      if (!model) throw new Error('the model is not loaded');
      return Array.from((await model.session.run(Float32Array.from(data), dims)).data);
    },
    useProvider: (ep: 'wasm' | 'webgpu') => loadModel(ep),
    useModel: (name: string) => loadModel(epSelect.value as 'wasm' | 'webgpu', name),
    lastClassification: () => lastClassification,
    followServedModel,
    firstPredictionMs: () => firstPrediction,
  },
});

redraw();
void loadModel('webgpu')
  .catch(() => loadModel('wasm'))
  .catch(showLoadError);
setInterval(() => void followServedModel().catch(showLoadError), WATCH_MS);
document.addEventListener('visibilitychange', () => void followServedModel().catch(showLoadError));
