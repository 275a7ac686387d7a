/**
 * Image endpoints: classify one picture, or read a handwritten digit string. Images come as a raw body with
 * their content type (image/png, image/jpeg, image/webp) or as the first file of a multipart form. Both go
 * through the shared preprocessing, the same module the web page uses.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CnnxError } from '../../common/index.js';
import { decodeImage } from '../../data/index.js';
import { inkBright, preprocess, procedureFor, segmentDigits, type GrayImage } from '../../preprocess/index.js';
import { describeLogits, toModelSide } from '../../runtime/index.js';
import type { ModelRegistry } from '../model-registry.js';
import { requireContentType, requireModel } from './kserve.js';

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'];
/** Digits below this confidence read as `?` unless the request sets `?threshold=`. */
const DEFAULT_DIGIT_THRESHOLD = 0.6;
const MAX_DIGITS = 64;

async function imageFrom(request: FastifyRequest): Promise<GrayImage> {
  requireContentType(request.headers['content-type'], [...IMAGE_TYPES, 'multipart/form-data']);
  let bytes: Uint8Array | undefined;
  if (request.isMultipart()) {
    const file = await request.file();
    if (!file) throw new CnnxError('multipart body has no file field', 'BAD_REQUEST');
    bytes = await file.toBuffer();
  } else if (Buffer.isBuffer(request.body)) {
    bytes = request.body;
  }
  if (!bytes || bytes.length === 0) throw new CnnxError('request has no image', 'BAD_REQUEST');
  try {
    return await decodeImage(bytes);
  } catch (error) {
    if (error instanceof CnnxError) throw new CnnxError(error.message, 'BAD_IMAGE');
    throw error;
  }
}

export function registerImageRoutes(app: FastifyInstance, registry: ModelRegistry): void {
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.post<{ Params: { name: string } }>('/v1/models/:name/classify', async (request) => {
    requireModel(registry, request.params.name);
    const image = await imageFrom(request);
    const model = requireModel(registry, request.params.name); // after decoding: a reload may have happened
    const side = model.signature.inputShape[2]!;
    const input = toModelSide(preprocess(image, procedureFor(model.signature.dataset)), side);
    const logits = await model.batcher.submit(input, 1);
    return describeLogits(logits, model.signature.labels);
  });

  app.post<{ Params: { name: string }; Querystring: { threshold?: string } }>(
    '/v1/models/:name/read-digits',
    async (request) => {
      requireModel(registry, request.params.name);
      const threshold =
        request.query.threshold === undefined ? DEFAULT_DIGIT_THRESHOLD : Number(request.query.threshold);
      if (!(threshold >= 0 && threshold <= 1)) {
        throw new CnnxError(
          `threshold must be a number from 0 to 1, got ${JSON.stringify(request.query.threshold)}`,
          'BAD_REQUEST',
        );
      }
      const image = await imageFrom(request);
      const segments = segmentDigits(inkBright(image));
      if (segments.length > MAX_DIGITS) {
        throw new CnnxError(
          `found ${segments.length} marks; at most ${MAX_DIGITS} digits are read per image`,
          'BAD_REQUEST',
        );
      }
      const model = requireModel(registry, request.params.name);
      if (segments.length === 0) return { text: '', digits: [] };
      const side = model.signature.inputShape[2]!;
      const batch = new Float32Array(segments.length * side * side);
      segments.forEach((s, i) => batch.set(toModelSide(s.input, side), i * side * side));
      const logits = await model.batcher.submit(batch, segments.length);
      const classes = model.signature.classes;
      const digits = segments.map((segment, i) => {
        const result = describeLogits(logits.subarray(i * classes, (i + 1) * classes), model.signature.labels);
        const confidence = result.probabilities[result.label]!;
        return { label: result.label, confidence, box: segment.box, top: result.top };
      });
      const text = digits.map((d) => (d.confidence >= threshold ? model.signature.labels[d.label] : '?')).join('');
      return { text, digits };
    },
  );
}
