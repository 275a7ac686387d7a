/**
 * A picture-preprocessing thread of the server's pool (picture-pool.ts): the shared preprocessing on decoded
 * pixels, off the event loop. Inputs come back as transferred Float32Arrays.
 */
import { prepareInput, segmentDigits, type PixelImage, type Procedure } from '../preprocess/index.js';

export type PictureTask =
  { kind: 'classify'; image: PixelImage; procedure: Procedure } | { kind: 'read-digits'; image: PixelImage };

export type PictureResult =
  | { input: Float32Array }
  | { nothing: string }
  | {
      digits: { box: { x: number; y: number; width: number; height: number }; input: Float32Array }[];
      ignored: number;
    };

export default function preparePicture(task: PictureTask): PictureResult {
  if (task.kind === 'classify') return prepareInput(task.image, task.procedure);
  return segmentDigits(task.image);
}
