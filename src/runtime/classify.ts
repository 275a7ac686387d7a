/** Pictures -> class, probabilities and top-3, through the shared preprocessing and an ORT session. */
import { preprocess, procedureFor, resample, type GrayImage } from '../preprocess/index.js';
import type { ModelSignature } from './model-file.js';
import type { ModelSession } from './session.js';

export interface Classification {
  label: number;
  class: string;
  probabilities: number[];
  top: { label: number; class: string; probability: number }[];
}

/** Probabilities of one image's logits (numerically stable softmax). */
function softmax(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

/** A 28x28 model input resized to the model's input side when it differs (AlexNet's 224). */
export function toModelSide(input28: Float32Array, side: number): Float32Array {
  if (side === 28) return input28;
  return resample({ width: 28, height: 28, data: input28 }, side, side).data;
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

/** Classifies pictures with one batched inference call ([N, 1, side, side], side from the signature). */
export async function classifyImages(
  session: ModelSession,
  signature: ModelSignature,
  images: GrayImage[],
): Promise<Classification[]> {
  const side = signature.inputShape[2]!;
  const procedure = procedureFor(signature.dataset);
  const batch = new Float32Array(images.length * side * side);
  images.forEach((image, i) => batch.set(toModelSide(preprocess(image, procedure), side), i * side * side));
  const { data, dims } = await session.run(batch, [images.length, 1, side, side]);
  const classes = dims[1]!;
  return images.map((_, i) =>
    describeLogits(data.subarray(i * classes, (i + 1) * classes), signature.labels, 3, signature.outputKind),
  );
}
