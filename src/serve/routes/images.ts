/**
 * Image endpoints: classify one picture (any model: digits, Fashion-MNIST, or the user's own classes, gray or RGB, of
 * any input size), or read a handwritten digit string (digit models only). Images come as a raw body with
 * their content type (image/png, image/jpeg, image/webp) or as the first file of a multipart form. They are decoded
 * by sharp (in its own threads, reduced while decoding) and prepared on the picture pool's threads by the shared
 * preprocessing, the same module the web page uses; the event loop only routes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CnnxError, messageOf } from '../../common/index.js';
import { inputValues, runModel } from '../inference.js';
import { decodeImage } from '../../data/index.js';
import type { PixelImage } from '../../preprocess/index.js';
import {
  describeLogits,
  digitBatch,
  digitString,
  DIGIT_THRESHOLD,
  inputShapeOf,
  isDigitModel,
  toModelInput,
  type InputShape,
} from '../../runtime/index.js';
import type { LoadedModel, ModelRegistry } from '../model-registry.js';
import type { PicturePool } from '../picture-pool.js';
import { requireContentType, requireIdentityEncoding, requireModel } from '../inference.js';

/**
 * Picture types a raw body may be labelled with: the three formats, and the names some clients and older browsers
 * give them (image/jpg, image/pjpeg, image/x-png). The format itself is read from the bytes (a GIF labelled PNG is
 * refused), so a label only has to say "a picture".
 */
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'];
const IMAGE_TYPE_ALIASES = ['image/jpg', 'image/pjpeg', 'image/x-png'];
/** What the image routes take, and the types their 415 names. */
const IMAGE_ROUTE_TYPES = [...IMAGE_TYPES, ...IMAGE_TYPE_ALIASES, 'multipart/form-data'];
const NAMED_TYPES = [...IMAGE_TYPES, 'multipart/form-data'];

async function imageFrom(request: FastifyRequest): Promise<PixelImage> {
  requireContentType(request.headers['content-type'], IMAGE_ROUTE_TYPES, NAMED_TYPES);
  requireIdentityEncoding(request.headers['content-encoding']);
  let bytes: Uint8Array | undefined;
  if (request.isMultipart()) {
    bytes = await fileOfForm(request);
  } else if (Buffer.isBuffer(request.body)) {
    bytes = request.body;
  }
  if (!bytes || bytes.length === 0) throw new CnnxError('request has no image', 'BAD_REQUEST');
  return decodeImage(bytes, 'the request body');
}

/**
 * The first file of a multipart form. A body that is not a well-formed form (no boundary, garbage, cut short) is
 * the client's fault: 400, not the parser's plain error (500). Limits keep their own codes (413).
 */
async function fileOfForm(request: FastifyRequest): Promise<Uint8Array> {
  try {
    const file = await request.file();
    if (!file) throw new CnnxError('multipart body has no file field', 'BAD_REQUEST');
    return await file.toBuffer();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (error instanceof CnnxError || (typeof code === 'string' && code.startsWith('FST_'))) throw error;
    throw new CnnxError(`malformed multipart/form-data body: ${messageOf(error)}`, 'BAD_REQUEST');
  }
}

/**
 * `threshold=` as a decimal number from 0 to 1; absent: the default. An empty, hexadecimal or non-numeric value, or
 * one given twice, is refused.
 */
function thresholdOf(value: string | string[] | undefined): number {
  if (value === undefined) return DIGIT_THRESHOLD;
  if (Array.isArray(value)) {
    throw new CnnxError(`threshold given ${value.length} times; give it once`, 'BAD_REQUEST');
  }
  const threshold = /^\s*$|^\s*0[xob]/i.test(value) ? NaN : Number(value);
  if (!(threshold >= 0 && threshold <= 1)) {
    throw new CnnxError(`threshold must be a number from 0 to 1, got ${JSON.stringify(value)}`, 'BAD_REQUEST');
  }
  return threshold;
}

function sameShape(a: InputShape, b: InputShape): boolean {
  return a.every((d, i) => d === b[i]);
}

/**
 * `model`, when it reads digits (its procedure is MNIST's); read-digits on a model of anything else would read
 * any picture as a string of its classes.
 * @throws CnnxError NOT_A_DIGIT_MODEL
 */
function requireDigitModel(model: LoadedModel): LoadedModel {
  const { procedure, dataset } = model.signature;
  if (!isDigitModel(model.signature)) {
    throw new CnnxError(
      `model '${model.name}' is not a digit model (trained on ${dataset ?? 'unknown data'}, its pictures are ` +
        `prepared by '${procedure}'): read-digits reads handwritten digits only; use /v1/models/${model.name}/classify`,
      'NOT_A_DIGIT_MODEL',
    );
  }
  return model;
}

export function registerImageRoutes(app: FastifyInstance, registry: ModelRegistry, pictures: PicturePool): void {
  app.addContentTypeParser([...IMAGE_TYPES, ...IMAGE_TYPE_ALIASES], { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );

  const config = { accepts: IMAGE_ROUTE_TYPES, named: NAMED_TYPES };
  app.post<{ Params: { name: string } }>('/v1/models/:name/classify', { config }, async (request) => {
    requireModel(registry, request.params.name);
    const image = await imageFrom(request);
    let model = requireModel(registry, request.params.name);
    // A reload while the picture is prepared may change the procedure or input shape: then it is prepared again.
    for (let attempt = 0; ; attempt++) {
      const { procedure } = model.signature;
      const shape = inputShapeOf(model.signature);
      const prepared = await pictures.prepareInput(image, procedure, shape);
      if ('nothing' in prepared) throw new CnnxError(`nothing to classify: ${prepared.nothing}`, 'NOTHING_TO_CLASSIFY');
      const current = requireModel(registry, request.params.name); // after preparing: a reload may have happened
      const same = current.signature.procedure === procedure && sameShape(inputShapeOf(current.signature), shape);
      if (same) {
        const input = procedure === 'resize' ? prepared.input : toModelInput(prepared.input, shape);
        const logits = await runModel(current, inputValues(input), 1);
        return describeLogits(logits, current.signature.labels, 3, current.signature.outputKind);
      }
      if (attempt === 2) {
        throw new CnnxError(`model '${current.name}' changed while the picture was prepared; retry`, 'SHUTTING_DOWN', {
          retryAfter: 1,
        });
      }
      model = current;
    }
  });

  app.post<{ Params: { name: string }; Querystring: { threshold?: string | string[] } }>(
    '/v1/models/:name/read-digits',
    { config },
    async (request) => {
      requireDigitModel(requireModel(registry, request.params.name));
      const threshold = thresholdOf(request.query.threshold);
      const image = await imageFrom(request);
      const reading = await pictures.segmentDigits(image);
      const model = requireDigitModel(requireModel(registry, request.params.name));
      if (reading.candidates.length === 0) return digitString(reading, new Float32Array(0), model.signature, threshold);
      const shape = inputShapeOf(model.signature);
      const batch = digitBatch(reading, shape);
      const output = await runModel(model, inputValues(batch), reading.candidates.length);
      return digitString(reading, output, model.signature, threshold);
    },
  );
}
