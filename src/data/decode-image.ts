/** Pictures from files and requests: PNG, JPEG or WebP bytes decoded with sharp to the preprocessing's GrayImage. */
import sharp from 'sharp';
import { CnnxError } from '../common/index.js';
import { toGray, type GrayImage } from '../preprocess/index.js';
import { IMAGE_FORMATS, imageFormatOf } from './image-format.js';

/** Largest image accepted, in pixels (a phone photo is ~12 MP). */
const MAX_IMAGE_PIXELS = 40_000_000;

/**
 * Decodes an image to one grey channel (0-255, row-major [height, width]), EXIF rotation applied and transparency
 * flattened onto white.
 * @throws CnnxError naming `name`: BAD_IMAGE when the bytes are not a PNG, JPEG or WebP image or cannot be
 *   decoded, PAYLOAD_TOO_LARGE when the image has more than MAX_IMAGE_PIXELS.
 */
export async function decodeImage(bytes: Uint8Array, name = 'image'): Promise<GrayImage> {
  const format = imageFormatOf(bytes);
  if (!IMAGE_FORMATS.includes(format)) {
    throw new CnnxError(`${name} is ${format}; use a PNG, JPEG or WebP image`, 'BAD_IMAGE');
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'error' })
      .rotate()
      .flatten({ background: '#ffffff' })
      .grayscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return toGray(data, info.width, info.height, info.channels);
  } catch (error) {
    const why = (error as Error).message;
    if (/pixel limit/i.test(why)) {
      throw new CnnxError(
        `${name} has more than ${MAX_IMAGE_PIXELS / 1e6} megapixels; send a smaller image (a digit needs far fewer)`,
        'PAYLOAD_TOO_LARGE',
      );
    }
    throw new CnnxError(`${name}: not a decodable PNG, JPEG or WebP image (${why})`, 'BAD_IMAGE');
  }
}
