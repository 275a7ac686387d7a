/** Canvas pixels -> digits, through the shared preprocessing and segmentation, in one inference call. */
import { Tensor, type InferenceSession } from 'onnxruntime-web';
import { inkBright, segmentDigits, toGray } from '../preprocess/index.js';

export interface ReadDigit {
  text: string;
  label: number;
  confidence: number;
  top: { class: string; probability: number }[];
}

/** Digits below this confidence read as `?`, as on the server. */
export const THRESHOLD = 0.6;

function softmax(values: Float32Array): number[] {
  const max = Math.max(...values);
  const exps = Array.from(values, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

/** The three most probable classes of one image's logits. */
export function topOf(logits: Float32Array, labels: string[]): { class: string; probability: number; label: number }[] {
  const probabilities = softmax(logits);
  return probabilities
    .map((p, c) => [p, c] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, 3)
    .map(([probability, c]) => ({ class: labels[c] ?? String(c), probability, label: c }));
}

export async function describeDigits(
  session: InferenceSession,
  rgba: Uint8ClampedArray,
  width: number,
  height: number,
  labels: string[],
): Promise<ReadDigit[]> {
  const segments = segmentDigits(inkBright(toGray(rgba, width, height, 4)));
  if (segments.length === 0) return [];
  const batch = new Float32Array(segments.length * 784);
  segments.forEach((s, i) => batch.set(s.input, i * 784));
  const outputs = await session.run({
    [session.inputNames[0]!]: new Tensor('float32', batch, [segments.length, 1, 28, 28]),
  });
  const logits = outputs[session.outputNames[0]!]!.data as Float32Array;
  const classes = logits.length / segments.length;
  return segments.map((_, i) => {
    const top = topOf(logits.subarray(i * classes, (i + 1) * classes), labels);
    const { label, probability: confidence } = top[0]!;
    return { text: confidence >= THRESHOLD ? top[0]!.class : '?', label, confidence, top };
  });
}
