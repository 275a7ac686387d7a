/** Pictures from files and requests: PNG, JPEG or WebP bytes decoded with sharp to the preprocessing's GrayImage. */
import sharp from 'sharp';
import { CnnxError } from '../common/index.js';
import { toGray, type GrayImage } from '../preprocess/index.js';

/** Largest image accepted, in pixels (a phone photo is ~12 MP). */
const MAX_IMAGE_PIXELS = 40_000_000;

/**
 * Decodes an image to one grey channel (0-255, row-major [height, width]), EXIF rotation applied and transparency
 * flattened onto white.
 * @throws CnnxError BAD_IMAGE naming `name` when the bytes are not a decodable image or exceed MAX_IMAGE_PIXELS.
 */
export async function decodeImage(bytes: Uint8Array, name = 'image'): Promise<GrayImage> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'error' })
      .rotate()
      .flatten({ background: '#ffffff' })
      .grayscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return toGray(data, info.width, info.height, info.channels);
  } catch (error) {
    throw new CnnxError(`${name}: not a decodable PNG, JPEG or WebP image (${(error as Error).message})`, 'BAD_IMAGE');
  }
}
