/** Node-only: decodes PNG, JPEG or WebP bytes to a GrayImage with sharp. Not part of the isomorphic index. */
import sharp from 'sharp';
import { CnnxError } from '../common/index.js';
import { toGray, type GrayImage } from './gray-image.js';

/** Largest image accepted, in pixels (a phone photo is ~12 MP). */
export const MAX_IMAGE_PIXELS = 40_000_000;

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
