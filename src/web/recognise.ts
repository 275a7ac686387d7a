/** Canvas pixels -> digits, through the shared reader (segmentation, one inference call, the best path). */
import { DIGIT_THRESHOLD, readDigitString, type InputShape, type ModelSession } from '../runtime/web/index.js';

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
 * @throws CnnxError BAD_REQUEST past 64 digits; the session's errors.
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
  const signature = { inputShape: [-1, ...shape], labels, outputKind };
  const { text, digits, ignored } = await readDigitString(session, signature, {
    width,
    height,
    channels: 4,
    data: rgba,
  });
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
