/**
 * Pictures from files and requests: PNG, JPEG or WebP bytes decoded with sharp to the preprocessing's PixelImage,
 * reduced while decoding (JPEG shrink-on-load) to the preprocessing's working size.
 */
import sharp from 'sharp';
import { CnnxError } from '../common/index.js';
import { IMAGE_FORMATS, imageFormatOf, MAX_IMAGE_PIXELS, WORKING_SIDE, type PixelImage } from '../preprocess/index.js';

/**
 * Decodes an image to interleaved 8-bit pixels (1-4 channels as the file has them, alpha kept, row-major
 * [height, width, channels]), EXIF rotation applied, reduced to fit WORKING_SIDE x WORKING_SIDE (never enlarged).
 * @throws CnnxError naming `name`: BAD_IMAGE when the bytes are not a PNG, JPEG or WebP image or cannot be
 *   decoded, PAYLOAD_TOO_LARGE when the image has more than MAX_IMAGE_PIXELS.
 */
export async function decodeImage(bytes: Uint8Array, name = 'image'): Promise<PixelImage> {
  if (bytes.length === 0) throw new CnnxError(`${name} is empty (0 bytes), not a picture`, 'BAD_IMAGE');
  const format = imageFormatOf(bytes);
  if (!IMAGE_FORMATS.includes(format)) {
    throw new CnnxError(`${name} is ${format}; use a PNG, JPEG or WebP image`, 'BAD_IMAGE');
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'error' })
      .rotate()
      .resize({ width: WORKING_SIDE, height: WORKING_SIDE, fit: 'inside', withoutEnlargement: true })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels, data };
  } catch (error) {
    const why = (error as Error).message;
    if (/pixel limit/i.test(why)) {
      throw new CnnxError(
        `${name} has more than ${MAX_IMAGE_PIXELS / 1e6} megapixels (the most cnnx decodes); scale it down (a picture for a CNN needs far fewer)`,
        'PAYLOAD_TOO_LARGE',
      );
    }
    throw new CnnxError(`${name}: not a decodable PNG, JPEG or WebP image (${why})`, 'BAD_IMAGE');
  }
}
