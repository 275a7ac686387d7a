/** Canvas pixels -> digits, through the shared preprocessing and segmentation, in one inference call. */
import { segmentDigits } from '../preprocess/index.js';
import { describeLogits, DIGIT_THRESHOLD, type ModelSession } from '../runtime/web/index.js';

export interface ReadDigit {
  text: string;
  label: number;
  confidence: number;
  top: { class: string; probability: number }[];
}

/** The digits drawn on an RGBA canvas (`width` x `height`), left to right; `?` where the model is unsure. */
export async function describeDigits(
  session: ModelSession,
  rgba: Uint8ClampedArray,
  width: number,
  height: number,
  labels: string[],
): Promise<ReadDigit[]> {
  const { digits: segments } = segmentDigits({ width, height, channels: 4, data: rgba });
  if (segments.length === 0) return [];
  const batch = new Float32Array(segments.length * 784);
  segments.forEach((s, i) => batch.set(s.input, i * 784));
  const { data: logits } = await session.run(batch, [segments.length, 1, 28, 28]);
  const classes = logits.length / segments.length;
  return segments.map((_, i) => {
    const { top } = describeLogits(logits.subarray(i * classes, (i + 1) * classes), labels);
    const { label, probability: confidence } = top[0]!;
    return { text: confidence >= DIGIT_THRESHOLD ? top[0]!.class : '?', label, confidence, top };
  });
}
