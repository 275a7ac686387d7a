/**
 * KServe v2 / Open Inference Protocol REST: health, server and model metadata, and FP32 JSON inference with a
 * batch in one request. Inputs are validated at the door; each fault is a 400 naming what was wrong.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CnnxError } from '../../common/index.js';
import type { LoadedModel, ModelRegistry } from '../model-registry.js';

interface InferInput {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  data?: unknown;
}

/** Largest batch one infer request may carry. */
const MAX_REQUEST_IMAGES = 1024;

export function requireModel(registry: ModelRegistry, name: string): LoadedModel {
  const model = registry.get(name);
  if (!model) {
    const failure = registry.failures.get(name);
    if (failure) throw new CnnxError(`model '${name}' is not ready: ${failure}`, 'MODEL_NOT_READY', { retryAfter: 5 });
    throw new CnnxError(`model '${name}' not found; GET /v2 lists the served models`, 'MODEL_NOT_FOUND');
  }
  return model;
}

const invalid = (message: string) => new CnnxError(message, 'INVALID_INPUT');

/** Validates a v2 infer body against the model's signature; returns the images as one Float32Array. */
function parseInferRequest(body: unknown, model: LoadedModel): { data: Float32Array; count: number; id?: string } {
  const { inputName, inputShape } = model.signature;
  const [, c, h, w] = inputShape as [number, number, number, number];
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('request body must be a JSON object with "inputs"');
  const { inputs, id } = body as { inputs?: unknown; id?: unknown };
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    throw invalid(`"inputs" must be an array with exactly one tensor named '${inputName}'`);
  }
  const input = inputs[0] as InferInput;
  if (typeof input !== 'object' || input === null) throw invalid('"inputs[0]" must be an object');
  if (input.name !== inputName) throw invalid(`input name must be '${inputName}', got ${JSON.stringify(input.name)}`);
  if (input.datatype !== 'FP32')
    throw invalid(`input '${inputName}' datatype must be "FP32", got ${JSON.stringify(input.datatype)}`);
  const shape = input.shape;
  if (
    !Array.isArray(shape) ||
    shape.length !== 4 ||
    !shape.every(Number.isSafeInteger) ||
    shape[1] !== c ||
    shape[2] !== h ||
    shape[3] !== w ||
    (shape[0] as number) < 1
  ) {
    throw invalid(`input '${inputName}' must have shape [N,${c},${h},${w}] with N >= 1, got ${JSON.stringify(shape)}`);
  }
  const count = shape[0] as number;
  if (count > MAX_REQUEST_IMAGES)
    throw invalid(`batch of ${count} images is over the ${MAX_REQUEST_IMAGES}-image limit per request`);
  const values = input.data;
  const expected = count * c * h * w;
  if (!Array.isArray(values)) throw invalid(`input '${inputName}' data must be a flat array of ${expected} numbers`);
  if (values.length !== expected) {
    throw invalid(
      `input '${inputName}' data has ${values.length} values, shape ${JSON.stringify(shape)} needs ${expected}`,
    );
  }
  const data = new Float32Array(expected);
  for (let i = 0; i < expected; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw invalid(`input '${inputName}' data[${i}] must be a finite number, got ${JSON.stringify(v)}`);
    }
    data[i] = v;
  }
  return { data, count, id: typeof id === 'string' ? id : undefined };
}

/** 415 unless the request's content type is one of `accepted` (fastify would parse text/plain too). */
export function requireContentType(header: string | undefined, accepted: string[]): void {
  const type = (header ?? '').split(';')[0]!.trim().toLowerCase();
  if (!accepted.includes(type)) {
    throw new CnnxError(
      `content type ${JSON.stringify(type || 'none')} not accepted here; use ${accepted.join(', ')}`,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  }
}

/** A readiness answer of false: 503 with `ready: false` and the catalogue's `error` and `code` saying why. */
function notReady(reply: FastifyReply, fields: { name?: string }, why: CnnxError) {
  if (why.retryAfter !== undefined) void reply.header('retry-after', String(why.retryAfter));
  return reply.code(why.status).send({ ...fields, ready: false, error: why.message, code: why.code });
}

function tensorMetadata(name: string, shape: number[]) {
  return { name, datatype: 'FP32', shape };
}

export function registerKserveRoutes(
  app: FastifyInstance,
  registry: ModelRegistry,
  state: { draining: boolean },
): void {
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    if (state.draining)
      return notReady(reply, {}, new CnnxError('server is shutting down', 'SHUTTING_DOWN', { retryAfter: 1 }));
    if (registry.list().length === 0) {
      return notReady(reply, {}, new CnnxError('no model is loaded', 'MODEL_NOT_READY', { retryAfter: 5 }));
    }
    return { ready: true };
  });
  app.get('/v2', async () => ({
    name: 'cnnx',
    version: '0.1.0',
    extensions: ['model_repository'],
    models: registry.list().map((m) => m.name),
  }));
  app.get<{ Params: { name: string } }>('/v2/models/:name', async (request) => {
    const model = requireModel(registry, request.params.name);
    const { signature } = model;
    return {
      name: model.name,
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [tensorMetadata(signature.inputName, signature.inputShape)],
      outputs: [tensorMetadata(signature.outputName, signature.outputShape)],
      parameters: {
        labels: signature.labels,
        execution_provider: model.session.ep,
        sha256: model.sha256,
        dataset: signature.dataset ?? null,
      },
    };
  });
  app.get<{ Params: { name: string } }>('/v2/models/:name/ready', async (request, reply) => {
    const { name } = request.params;
    try {
      requireModel(registry, name);
    } catch (error) {
      if (error instanceof CnnxError && error.code === 'MODEL_NOT_READY') return notReady(reply, { name }, error);
      throw error;
    }
    if (state.draining)
      return notReady(reply, { name }, new CnnxError('server is shutting down', 'SHUTTING_DOWN', { retryAfter: 1 }));
    return { name, ready: true };
  });
  app.post<{ Params: { name: string } }>('/v2/models/:name/infer', async (request) => {
    requireContentType(request.headers['content-type'], ['application/json']);
    const model = requireModel(registry, request.params.name);
    const { data, count, id } = parseInferRequest(request.body, model);
    const logits = await model.batcher.submit(data, count);
    return {
      model_name: model.name,
      model_version: '1',
      ...(id !== undefined ? { id } : {}),
      outputs: [
        {
          name: model.signature.outputName,
          datatype: 'FP32',
          shape: [count, model.signature.classes],
          data: Array.from(logits),
        },
      ],
    };
  });
  // Model repository extension: reload a model from its file (hot reload on request).
  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/load', async (request) => {
    requireModel(registry, request.params.name);
    try {
      const model = await registry.reload(request.params.name);
      return { name: model.name, sha256: model.sha256, reloaded: true };
    } catch (error) {
      throw new CnnxError(
        `reload failed, the previous version keeps serving: ${(error as Error).message}`,
        'BAD_REQUEST',
      );
    }
  });
}
