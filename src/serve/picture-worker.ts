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

export type PictureTask =
  { kind: 'classify'; image: PixelImage; procedure: Procedure } | { kind: 'read-digits'; image: PixelImage };

export default function preparePicture(task: PictureTask): Prepared | DigitReading {
  if (task.kind === 'classify') return prepareInput(task.image, task.procedure);
  return segmentDigits(task.image);
}
