/**
 * What kind of image a body holds, from its first bytes (the formats' signatures: PNG's 8-byte signature, JPEG's
 * SOI marker FF D8 FF, WebP's RIFF....WEBP header, GIF87a/GIF89a, BMP's BM, TIFF's II*\0 / MM\0*, and SVG or
 * other XML by its opening `<`). cnnx takes PNG, JPEG and WebP only, whatever a file or request body is labelled:
 * the decoder would also read GIF, SVG and more.
 */

/**
 * Largest image accepted, in pixels: the pixel budget of one request (and of the page's uploads). A phone photo is
 * ~12 MP, a 24 MP camera's 6000x4000 fits; a bigger picture (or a small file that decompresses to one) is refused
 * before it is decoded.
 */
export const MAX_IMAGE_PIXELS = 25_000_000;

/** The formats cnnx decodes. */
export const IMAGE_FORMATS: readonly string[] = Object.freeze(['PNG', 'JPEG', 'WebP']);

const startsWith = (bytes: Uint8Array, signature: number[], at = 0) =>
  signature.every((byte, i) => bytes[at + i] === byte);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** Signatures, checked in order; the first that matches names the format. */
const SIGNATURES: readonly [string, (bytes: Uint8Array) => boolean][] = [
  ['PNG', (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
  ['JPEG', (b) => startsWith(b, [0xff, 0xd8, 0xff])],
  ['WebP', (b) => startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)],
  ['GIF', (b) => startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))],
  ['BMP', (b) => startsWith(b, ascii('BM'))],
  ['TIFF', (b) => startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])],
  ['SVG or other XML', (b) => /^\s*</.test(new TextDecoder().decode(b.subarray(0, 64)))],
];

/** The format `bytes` start like, or "not an image format cnnx knows". */
export function imageFormatOf(bytes: Uint8Array): string {
  return SIGNATURES.find(([, matches]) => matches(bytes))?.[0] ?? 'not an image format cnnx knows';
}
