/** Canvas pixels -> digits, through the shared preprocessing and segmentation, in one inference call. */
import { segmentDigits } from '../preprocess/index.js';
import { digitBatch, digitString, DIGIT_THRESHOLD, type InputShape, type ModelSession } from '../runtime/web/index.js';

export interface ReadDigit {
  text: string;
  label: number;
  confidence: number;
  top: { class: string; probability: number }[];
}

/**
 * The number drawn on an RGBA canvas (`width` x `height`): `text` (rows of writing are its lines), its digits left to
 * right (`?` where the model is unsure), and the marks left out as no digits. `shape` is the digit model's [C, H, W]
 * (each 28x28 digit is resized to it, as the server's read-digits does).
 */
export async function describeDigits(
  session: ModelSession,
  rgba: Uint8ClampedArray,
  width: number,
  height: number,
  labels: string[],
  shape: InputShape = [1, 28, 28],
  outputKind: 'logits' | 'probabilities' = 'logits',
): Promise<{ text: string; digits: ReadDigit[]; ignored: number }> {
  const reading = segmentDigits({ width, height, channels: 4, data: rgba });
  if (reading.candidates.length === 0) return { text: '', digits: [], ignored: reading.ignored };
  const { data } = await session.run(digitBatch(reading, shape), [reading.candidates.length, ...shape]);
  const { text, digits, ignored } = digitString(reading, data, { labels, outputKind });
  return {
    text,
    ignored,
    digits: digits.map(({ label, confidence, top }) => ({
      text: confidence >= DIGIT_THRESHOLD ? top[0]!.class : '?',
      label,
      confidence,
      top,
    })),
  };
}
