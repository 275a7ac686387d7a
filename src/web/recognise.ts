/** Canvas pixels -> digits, through the shared preprocessing and segmentation, in one inference call. */
import { segmentDigits } from '../preprocess/index.js';
import {
  describeLogits,
  DIGIT_THRESHOLD,
  toModelInput,
  type InputShape,
  type ModelSession,
} from '../runtime/web/index.js';

export interface ReadDigit {
  text: string;
  label: number;
  confidence: number;
  top: { class: string; probability: number }[];
}

/**
 * The digits drawn on an RGBA canvas (`width` x `height`), left to right; `?` where the model is unsure. `shape` is
 * the digit model's [C, H, W] (each 28x28 digit is resized to it, as the server's read-digits does).
 */
export async function describeDigits(
  session: ModelSession,
  rgba: Uint8ClampedArray,
  width: number,
  height: number,
  labels: string[],
  shape: InputShape = [1, 28, 28],
): Promise<ReadDigit[]> {
  const { digits: segments } = segmentDigits({ width, height, channels: 4, data: rgba });
  if (segments.length === 0) return [];
  const size = shape[0] * shape[1] * shape[2];
  const batch = new Float32Array(segments.length * size);
  segments.forEach((s, i) => batch.set(toModelInput(s.input, shape), i * size));
  const { data: logits } = await session.run(batch, [segments.length, ...shape]);
  const classes = logits.length / segments.length;
  return segments.map((_, i) => {
    const { top } = describeLogits(logits.subarray(i * classes, (i + 1) * classes), labels);
    const { label, probability: confidence } = top[0]!;
    return { text: confidence >= DIGIT_THRESHOLD ? top[0]!.class : '?', label, confidence, top };
  });
}
