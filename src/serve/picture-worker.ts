/**
 * A picture-preprocessing thread of the server's pool (picture-pool.ts): the shared preprocessing on decoded
 * pixels, off the event loop. Pixels arrive transferred; the model inputs come back by structured clone.
 */
import {
  prepareInput,
  segmentDigits,
  type DigitReading,
  type PixelImage,
  type Prepared,
  type Procedure,
} from '../preprocess/index.js';

/** A picture to prepare for a model (`input`: its [C, H, W]) or to read as digits. */
export type PictureTask =
  | { kind: 'classify'; image: PixelImage; procedure: Procedure; input: readonly [number, number, number] }
  | { kind: 'read-digits'; image: PixelImage };

export default function preparePicture(task: PictureTask): Prepared | DigitReading {
  if (task.kind === 'classify') return prepareInput(task.image, task.procedure, task.input);
  return segmentDigits(task.image);
}
