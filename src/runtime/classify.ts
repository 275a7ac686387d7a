/**
 * Pictures -> class, probabilities and top-3, and digit strings -> text, through the shared preprocessing and an ORT
 * session. Imports nothing from Node: the web page reads digits with the same functions.
 */
import { CnnxError } from '../common/errors.js';
import {
  prepareInput,
  resample,
  segmentDigits,
  type DigitReading,
  type PixelImage,
  type Prepared,
} from '../preprocess/index.js';
import type { ModelSignature } from './model-file.js';
import type { ModelSession } from './session.js';

export interface Classification {
  label: number;
  class: string;
  probabilities: number[];
  top: { label: number; class: string; probability: number }[];
}

/**
 * A digit read from a picture (read-digits, the page) whose top probability is below this reads `?`: the reject
 * option of LeCun et al. 1998. Calibrated with `npm run bench:handwriting -- --first 5000 --count 500` (MNIST test
 * digits 5000-5499 in every kind of picture, none of them among the digits the benchmark reports): the lowest
 * threshold that keeps the error among accepted digits of the committed lenet5-relu-mnist at or under 0.5% on the
 * hard kinds pooled (thin pen, marker, photo, white on transparency, small and off-centre): 0.85, rejecting 1.4%.
 * BENCHMARKS.md has the whole curve.
 */
export const DIGIT_THRESHOLD = 0.85;

/** Probabilities of one image's logits (numerically stable softmax). */
function softmax(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

/** A model's input shape after the batch dimension: [channels, height, width]. */
export type InputShape = readonly [number, number, number];

/** The [C, H, W] of a signature's input (its [N, C, H, W] without the batch). */
export function inputShapeOf(signature: Pick<ModelSignature, 'inputShape'>): InputShape {
  const [, channels, height, width] = signature.inputShape as [number, number, number, number];
  return [channels, height, width];
}

/**
 * A 28x28 input of the `mnist` or `fit` procedure as a model of another input shape takes it: resized to its height
 * and width when they differ (AlexNet's 224x224), and the gray plane repeated in each channel of an RGB model.
 * [C * H * W] floats, planar.
 */
export function toModelInput(input28: Float32Array, [channels, height, width]: InputShape): Float32Array {
  const plane =
    height === 28 && width === 28 ? input28 : resample({ width: 28, height: 28, data: input28 }, width, height).data;
  if (channels === 1) return plane;
  const out = new Float32Array(channels * plane.length);
  for (let c = 0; c < channels; c++) out.set(plane, c * plane.length);
  return out;
}

/**
 * One picture as `signature`'s model takes it, by its procedure: [C * H * W] floats (planar, NCHW's planes), or why
 * the picture holds nothing to classify (`mnist` and `fit` only; `resize` always gives an input).
 */
export function prepareForModel(
  image: PixelImage,
  signature: Pick<ModelSignature, 'inputShape' | 'procedure'>,
): Prepared {
  const shape = inputShapeOf(signature);
  const prepared = prepareInput(image, signature.procedure, shape);
  if ('nothing' in prepared || signature.procedure === 'resize') return prepared;
  return { input: toModelInput(prepared.input, shape) };
}

/**
 * Class, probabilities and the `topK` most probable classes of one image's model output: logits (softmax is applied)
 * or, for a model that ends in a softmax, probabilities (taken as they are).
 */
export function describeLogits(
  logits: ArrayLike<number>,
  labels: string[],
  topK = 3,
  outputKind: 'logits' | 'probabilities' = 'logits',
): Classification {
  const probabilities = outputKind === 'probabilities' ? Array.from(logits) : softmax(logits);
  const order = probabilities.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0]);
  const label = order[0]![1];
  return {
    label,
    class: labels[label] ?? String(label),
    probabilities,
    top: order.slice(0, topK).map(([probability, i]) => ({ label: i, class: labels[i] ?? String(i), probability })),
  };
}

/** What a picture is read as: a classification, or why it holds nothing to classify (see `prepareInput`). */
export type PictureResult = Classification | { nothing: string };

/**
 * Classifies pictures with one batched inference call ([N, C, H, W] from the signature), each prepared by the model's
 * procedure (`prepareForModel`); a picture with no ink (or no digit, for a digit model) is answered with the reason
 * and not run.
 */
export async function classifyImages(
  session: ModelSession,
  signature: ModelSignature,
  images: PixelImage[],
): Promise<PictureResult[]> {
  const shape = inputShapeOf(signature);
  const size = shape[0] * shape[1] * shape[2];
  const prepared = images.map((image) => prepareForModel(image, signature));
  const inputs = prepared.flatMap((p) => ('input' in p ? [p.input] : []));
  const results: PictureResult[] = prepared.map((p) => ('nothing' in p ? { nothing: p.nothing } : { nothing: '' }));
  if (inputs.length === 0) return results;
  const batch = new Float32Array(inputs.length * size);
  inputs.forEach((input, i) => batch.set(input, i * size));
  const { data, dims } = await session.run(batch, [inputs.length, ...shape]);
  const classes = dims[1]!;
  let next = 0;
  return prepared.map((p, i) => {
    if ('nothing' in p) return results[i]!;
    const at = next++;
    return describeLogits(data.subarray(at * classes, (at + 1) * classes), signature.labels, 3, signature.outputKind);
  });
}

/** At most this many digits are read in one picture; more digit-like marks are refused (digitBatch). */
const MAX_DIGITS = 64;

/** One digit of a digit string. */
interface ReadDigit {
  label: number;
  /** The top class's probability, in [0, 1]. */
  confidence: number;
  /** Where the digit is, in the working picture's pixels (the picture scaled to at most 512 px on its long side). */
  box: { x: number; y: number; width: number; height: number };
  top: Classification['top'];
}

/**
 * A digit string read from a picture: its text (`?` for each digit below the threshold; a line break between rows of
 * writing), digits and marks left out.
 */
export interface DigitString {
  text: string;
  digits: ReadDigit[];
  /** Marks that are not digits (specks, blobs, runs along the edge, bars), left out. */
  ignored: number;
  /** The working picture's size in pixels, which the boxes are in: scale a box by the picture's width over this. */
  picture: { width: number; height: number };
}

/** Whether a model reads handwritten digits: its pictures are prepared by MNIST's procedure. */
export const isDigitModel = (signature: Pick<ModelSignature, 'procedure'>) => signature.procedure === 'mnist';

/**
 * The candidate digits of `reading` as one batch for a model of input `shape`: [N, C, H, W] floats, N the
 * candidates, in `reading.candidates`' order.
 * @throws CnnxError BAD_REQUEST when the picture holds more writing than MAX_DIGITS digits' worth.
 */
export function digitBatch(reading: DigitReading, shape: InputShape): Float32Array {
  if (reading.pieces > 2 * MAX_DIGITS) tooMany(`${reading.pieces} pieces of writing`);
  const size = shape[0] * shape[1] * shape[2];
  const batch = new Float32Array(reading.candidates.length * size);
  reading.candidates.forEach((candidate, i) => batch.set(toModelInput(candidate.input, shape), i * size));
  return batch;
}

function tooMany(what: string): never {
  throw new CnnxError(
    `found ${what}; at most ${MAX_DIGITS} digits are read per picture: crop it to the number to read`,
    'BAD_REQUEST',
  );
}

/**
 * The digit string of `reading` from the model's output for its `digitBatch`: `output` is [N, classes], row i the
 * logits (or probabilities, by `signature.outputKind`) of candidate i. The reading is the path of candidates that
 * covers every piece of writing with the greatest sum of log top-probabilities (Viterbi over the pieces); a digit
 * whose confidence is below `threshold` (default DIGIT_THRESHOLD, the reject option) reads `?` in the text.
 * @throws CnnxError BAD_REQUEST past MAX_DIGITS digits.
 */
export function digitString(
  reading: DigitReading,
  output: Float32Array,
  signature: Pick<ModelSignature, 'labels' | 'outputKind'>,
  threshold = DIGIT_THRESHOLD,
): DigitString {
  const { candidates, pieces } = reading;
  const classes = candidates.length === 0 ? 0 : output.length / candidates.length;
  const described = candidates.map((candidate, i): ReadDigit => {
    const row = output.subarray(i * classes, (i + 1) * classes);
    const { label, probabilities, top } = describeLogits(row, signature.labels, 3, signature.outputKind);
    return { label, confidence: probabilities[label]!, box: candidate.box, top };
  });
  // best[j]: the best score of a reading of pieces 0..j-1, and the candidate that ends it (-1: piece j-1 left out).
  const best = new Float64Array(pieces + 1).fill(-Infinity);
  const last = new Int32Array(pieces + 1).fill(-2);
  best[0] = 0;
  const byStart = new Map<number, number[]>();
  candidates.forEach((candidate, i) => byStart.set(candidate.from, [...(byStart.get(candidate.from) ?? []), i]));
  for (let at = 0; at < pieces; at++) {
    if (best[at] === -Infinity) continue;
    const skipped = best[at]! - reading.skipCost[at]!;
    if (skipped > best[at + 1]!) {
      best[at + 1] = skipped;
      last[at + 1] = -1;
    }
    for (const i of byStart.get(at) ?? []) {
      const candidate = candidates[i]!;
      const score = best[at]! + Math.log(Math.max(described[i]!.confidence, 1e-30)) - candidate.cost;
      if (score > best[candidate.to]!) {
        best[candidate.to] = score;
        last[candidate.to] = i;
      }
    }
  }
  if (pieces > 0 && best[pieces] === -Infinity) {
    // Only a model whose output is not a number leaves no reading (every piece may be read alone or left out).
    throw new CnnxError('the model gave no finite probabilities for the digits read', 'INFERENCE_FAILED');
  }
  const digits: ReadDigit[] = [];
  const chosen: number[] = []; // each digit's first piece
  let ignored = reading.ignored;
  for (let at = pieces; at > 0;) {
    const i = last[at]!;
    if (i < 0) {
      ignored++;
      at--;
      continue;
    }
    digits.push(described[i]!);
    chosen.push(candidates[i]!.from);
    at = candidates[i]!.from;
  }
  digits.reverse();
  chosen.reverse();
  if (digits.length > MAX_DIGITS) tooMany(`${digits.length} digits`);
  // Rows of writing are lines of the text.
  let text = '';
  let row = 0;
  digits.forEach((digit, i) => {
    const from = chosen[i]!;
    let newRow = false;
    while (row + 1 < reading.rows.length && from >= reading.rows[row + 1]!) {
      row++;
      newRow = true;
    }
    if (newRow && text !== '') text += '\n';
    text += digit.confidence >= threshold ? digitText(digit, signature.labels) : '?';
  });
  return { text, digits, ignored, picture: { width: reading.width, height: reading.height } };
}

const digitText = (digit: ReadDigit, labels: string[]) => labels[digit.label] ?? String(digit.label);

/**
 * Reads the handwritten digit string of a picture (a cheque amount, a slip, a number on a pad) with a digit
 * model's session: segmentation (segmentDigits), one inference call for its candidate digits, then `digitString`.
 * @throws CnnxError BAD_REQUEST past MAX_DIGITS digits; the session's errors.
 */
export async function readDigitString(
  session: ModelSession,
  signature: Pick<ModelSignature, 'inputShape' | 'labels' | 'outputKind'>,
  image: PixelImage,
  threshold = DIGIT_THRESHOLD,
): Promise<DigitString> {
  const reading = segmentDigits(image);
  if (reading.candidates.length === 0) return digitString(reading, new Float32Array(0), signature, threshold);
  const shape = inputShapeOf(signature);
  const { data } = await session.run(digitBatch(reading, shape), [reading.candidates.length, ...shape]);
  return digitString(reading, data, signature, threshold);
}
