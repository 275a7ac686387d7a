/**
 * KServe v2 / Open Inference Protocol REST, as Triton's and KServe's clients send it: health, server and model
 * metadata, model configuration and statistics (Triton's extensions), and inference with or without a
 * Content-Type, with JSON tensors (flat or nested `data`) or the binary tensor data extension both ways
 * (`Inference-Header-Content-Length`), requested outputs and the classification extension. Every model route also
 * answers under `/v2/models/{name}/versions/{version}`. Inputs are checked at the door; each fault is a 400 naming
 * what was wrong.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CnnxError, messageOf } from '../../common/index.js';
import {
  checkInputHeader,
  checkRequestedOutputs,
  countingRefusals,
  MAX_REQUEST_IMAGES,
  MODEL_VERSION,
  outputTensors,
  requireIdentityEncoding,
  requireModel,
  runModel,
  tensorBytes,
  valuesFromBytes,
  valuesFromJson,
  type InputValues,
  type OutputTensor,
  type RequestedOutput,
} from '../inference.js';
import type { LoadedModel, ModelRegistry } from '../model-registry.js';
import { HEADER_LENGTH, headerLengthOf, readInferBody, type InferBody } from './infer-body.js';
import { OFF_LOOP_BYTES, type JsonPool } from '../json-pool.js';
import { isObject, parseJson } from './infer-json.js';

/** The extensions this server implements, as `GET /v2` lists them (names from Triton's protocol extensions). */
const EXTENSIONS = Object.freeze([
  'binary_tensor_data',
  'classification',
  'model_configuration',
  'model_repository',
  'statistics',
]);

/** Server name and version for `GET /v2` and gRPC's ServerMetadata. */
export const SERVER_METADATA = Object.freeze({ name: 'cnnx', version: '0.1.0', extensions: EXTENSIONS });

/**
 * Content types an infer request may have: none at all is what Triton's Python client sends, and
 * application/x-www-form-urlencoded is what `curl -d` sends unless told otherwise.
 */
const INFER_TYPES = ['', 'application/json', 'application/octet-stream', 'application/x-www-form-urlencoded'];

const invalid = (message: string) => new CnnxError(message, 'INVALID_INPUT');

type ModelParams = { name: string; version?: string };

/** A request's `parameters` object (empty when absent). */
function parametersOf(owner: Record<string, unknown>, what: string): Record<string, unknown> {
  const parameters = owner.parameters;
  if (parameters === undefined) return {};
  if (!isObject(parameters)) throw invalid(`${what} "parameters" must be an object`);
  return parameters;
}

/**
 * Splits an infer body into its JSON header, read by `json` (on a thread when large), and the binary section after
 * it (binary tensor data extension); the section is `owned` when it fills memory of its own (infer-body.ts read it
 * so).
 * @throws CnnxError BAD_REQUEST for a header length that is not a whole number within the body; INVALID_JSON.
 */
async function splitBody(
  request: FastifyRequest,
  json: JsonPool,
): Promise<{ header: unknown; binary: Uint8Array | undefined; owned?: boolean }> {
  const read = request.body as InferBody | undefined;
  if (read !== undefined && !Buffer.isBuffer(read)) {
    return { header: await json.read(read.header, 'header', { give: true }), binary: read.tensor, owned: true };
  }
  const body = read ?? Buffer.alloc(0);
  const length = headerLengthOf(request);
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (length === undefined) {
    if (type === 'application/octet-stream') {
      throw new CnnxError(
        `a binary infer body needs the Inference-Header-Content-Length header (the length of its JSON part)`,
        'BAD_REQUEST',
      );
    }
    // A JSON header followed by binary tensor data, sent without its length, reads as JSON with garbage after it.
    // Its first 2 KiB (the header and the data's start) tell, should the JSON fail: a view of a body read here, a
    // copy only of one given to a thread (OFF_LOOP_BYTES or more), whose memory goes with it.
    const start = body.subarray(0, 2048);
    const head = body[0] !== 0x7b ? undefined : body.length < OFF_LOOP_BYTES ? start : Buffer.from(start);
    const header = await json.read(body, 'body', { give: true }).catch((error: unknown) => {
      const binary = head?.some((byte) => byte < 9 || (byte > 13 && byte < 32)) === true;
      if (!binary || !(error instanceof CnnxError)) throw error;
      throw new CnnxError(
        `${error.message}; a JSON header followed by binary tensor data needs the Inference-Header-Content-Length header (the length of its JSON part)`,
        error.code,
      );
    });
    return { header, binary: undefined };
  }
  if (!(length >= 1 && length <= body.length)) {
    throw new CnnxError(
      `Inference-Header-Content-Length must be the length in bytes of the JSON header that starts the body, in ` +
        `digits, from 1 to the body's ${body.length} bytes; got ${JSON.stringify(request.headers[HEADER_LENGTH])}`,
      'BAD_REQUEST',
    );
  }
  // The header shares its memory with the binary section: the pool copies what it reads on a thread.
  return { header: await json.read(body.subarray(0, length), 'header'), binary: body.subarray(length) };
}

/** A REST infer request checked against the model: its images, id and the outputs asked for. */
interface RestInfer {
  data: InputValues;
  count: number;
  id: string | undefined;
  outputs: RequestedOutput[];
  binaryByDefault: boolean;
}

/**
 * Reads and checks a v2 infer request (JSON, or JSON header plus binary section) against the model; an `owned`
 * binary section becomes the input in place.
 */
function parseInfer(header: unknown, binary: Uint8Array | undefined, model: LoadedModel, owned = false): RestInfer {
  const { inputName } = model.signature;
  if (!isObject(header)) throw invalid('request body must be a JSON object with "inputs"');
  const { inputs, outputs, id } = header;
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    throw invalid(`"inputs" must be an array with exactly one tensor named '${inputName}'`);
  }
  const input = inputs[0] as unknown;
  if (!isObject(input)) throw invalid('"inputs[0]" must be an object');
  const { count, values } = checkInputHeader(input, model);
  const binarySize = parametersOf(input, `input '${inputName}'`).binary_data_size;
  let data: InputValues;
  if (binarySize !== undefined) {
    if (input.data !== undefined) {
      throw invalid(`input '${inputName}' has both "data" and binary_data_size; send one`);
    }
    if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) {
      throw invalid(`input '${inputName}' binary_data_size must be a whole number, got ${JSON.stringify(binarySize)}`);
    }
    if (!binary || binary.length !== binarySize) {
      throw invalid(
        `input '${inputName}' binary_data_size is ${String(binarySize)} but the body has ${binary?.length ?? 0} bytes after its JSON header`,
      );
    }
    data = valuesFromBytes(inputName, binary, values, owned);
  } else {
    if (binary && binary.length > 0) {
      throw invalid(`the body has ${binary.length} binary bytes but no input has "binary_data_size"`);
    }
    data = valuesFromJson(inputName, input.data, input.shape as number[], values);
  }
  if (id !== undefined && typeof id !== 'string') throw invalid(`"id" must be a string, got ${JSON.stringify(id)}`);
  const { binary_data_output: binaryOutput } = parametersOf(header, 'request');
  if (binaryOutput !== undefined && typeof binaryOutput !== 'boolean') {
    throw invalid(`request binary_data_output must be true or false, got ${JSON.stringify(binaryOutput)}`);
  }
  const binaryByDefault = binaryOutput === true;
  if (outputs !== undefined && !Array.isArray(outputs)) throw invalid('"outputs" must be an array');
  const requested = (outputs ?? []).map((output: unknown, i: number): RequestedOutput => {
    if (!isObject(output)) throw invalid(`"outputs[${i}]" must be an object with a "name"`);
    const parameters = parametersOf(output, `output ${JSON.stringify(output.name)}`);
    const { classification, binary_data: binaryData } = parameters;
    if (classification !== undefined && typeof classification !== 'number') {
      throw invalid(`output ${JSON.stringify(output.name)} classification must be a number`);
    }
    if (binaryData !== undefined && typeof binaryData !== 'boolean') {
      throw invalid(
        `output ${JSON.stringify(output.name)} binary_data must be true or false, got ${JSON.stringify(binaryData)}`,
      );
    }
    if (typeof output.name !== 'string') {
      throw invalid(`"outputs[${i}].name" must be a string, got ${JSON.stringify(output.name)}`);
    }
    return {
      name: output.name,
      classification: classification as number | undefined,
      binary: (binaryData as boolean | undefined) ?? binaryByDefault,
    };
  });
  return {
    data,
    count,
    id: id as string | undefined,
    outputs: checkRequestedOutputs(requested, model),
    binaryByDefault,
  };
}

/**
 * Sends the answer: JSON alone, or, when an output is binary, the JSON header then each binary output's bytes,
 * with Inference-Header-Content-Length giving the header's length.
 */
function sendInferAnswer(reply: FastifyReply, model: LoadedModel, id: string | undefined, outputs: OutputTensor[]) {
  const chunks: Buffer[] = [];
  const header = {
    model_name: model.name,
    model_version: MODEL_VERSION,
    ...(id !== undefined ? { id } : {}),
    outputs: outputs.map((output) => {
      const { name, datatype, shape } = output;
      if (!output.binary) return { name, datatype, shape, data: Array.from<number | string>(output.data) };
      const bytes = tensorBytes(output);
      chunks.push(bytes);
      return { name, datatype, shape, parameters: { binary_data_size: bytes.length } };
    }),
  };
  const json = JSON.stringify(header);
  if (chunks.length === 0) return reply.type('application/json; charset=utf-8').send(json);
  const head = Buffer.from(json, 'utf8');
  return reply
    .header(HEADER_LENGTH, String(head.length))
    .type('application/octet-stream')
    .send(Buffer.concat([head, ...chunks]));
}

/** A readiness answer of false: 503 with `ready: false` and the catalogue's `error` and `code` saying why. */
function notReady(reply: FastifyReply, fields: { name?: string }, why: CnnxError) {
  if (why.retryAfter !== undefined) void reply.header('retry-after', String(why.retryAfter));
  return reply.code(why.status).send({ ...fields, ready: false, error: why.message, code: why.code });
}

/** Input and output metadata of a model: the shapes as the file declares them (-1 for a dynamic batch). */
export function modelMetadata(model: LoadedModel) {
  const { signature } = model;
  return {
    name: model.name,
    versions: [MODEL_VERSION],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: signature.inputName, datatype: 'FP32', shape: signature.inputShape }],
    outputs: [{ name: signature.outputName, datatype: 'FP32', shape: signature.outputShape }],
  };
}

/**
 * The model's configuration as Triton's model configuration extension writes it (config.pbtxt as JSON): the
 * dims leave out the batch dimension, which `max_batch_size` covers (any size up to it; a model whose batch is
 * fixed runs in chunks of that size).
 */
export function modelConfig(model: LoadedModel, batching: { maxQueueDelayMs: number }) {
  const { signature, session } = model;
  return {
    name: model.name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: Math.min(MAX_REQUEST_IMAGES, model.batcher.capacity),
    input: [
      {
        name: signature.inputName,
        data_type: 'TYPE_FP32',
        format: 'FORMAT_NCHW',
        dims: signature.inputShape.slice(1),
      },
    ],
    output: [{ name: signature.outputName, data_type: 'TYPE_FP32', dims: signature.outputShape.slice(1) }],
    dynamic_batching: {
      preferred_batch_size: [model.batcher.preferredBatch],
      max_queue_delay_microseconds: Math.round(batching.maxQueueDelayMs * 1000),
    },
    instance_group: [
      { name: model.name, kind: session.ep === 'cpu' ? 'KIND_CPU' : 'KIND_GPU', count: model.instances },
    ],
    parameters: {
      execution_provider: { string_value: session.ep },
      sha256: { string_value: model.sha256 },
      fixed_batch: { string_value: String(signature.fixedBatch ?? 0) },
    },
  };
}

/** Registers `path` and its versioned form `/v2/models/:name/versions/:version<rest>`. */
function bothPaths(rest: string): string[] {
  return [`/v2/models/:name${rest}`, `/v2/models/:name/versions/:version${rest}`];
}

export async function registerKserveRoutes(
  app: FastifyInstance,
  registry: ModelRegistry,
  state: { draining: boolean },
  batching: { maxQueueDelayMs: number },
  json: JsonPool,
): Promise<void> {
  const probe = { config: { probe: true } };
  app.get('/v2/health/live', probe, async () => ({ live: true }));
  app.get('/v2/health/ready', probe, async (_request, reply) => {
    if (state.draining)
      return notReady(reply, {}, new CnnxError('server is shutting down', 'SHUTTING_DOWN', { retryAfter: 1 }));
    if (registry.list().length === 0) {
      return notReady(reply, {}, new CnnxError('no model is loaded', 'MODEL_NOT_READY', { retryAfter: 5 }));
    }
    return { ready: true };
  });
  app.get('/v2', async () => ({ ...SERVER_METADATA, models: registry.list().map((m) => m.name) }));

  for (const path of bothPaths('')) {
    app.get<{ Params: ModelParams }>(path, async (request) => {
      const model = requireModel(registry, request.params.name, request.params.version);
      return {
        ...modelMetadata(model),
        parameters: {
          labels: model.signature.labels,
          execution_provider: model.session.ep,
          sha256: model.sha256,
          dataset: model.signature.dataset ?? null,
          // How a picture becomes this model's input (`mnist`, `fit` or `resize`): what the web page prepares by.
          procedure: model.signature.procedure,
          // Whether the output is logits or probabilities (a model that ends in a softmax): how the page reads it.
          output_kind: model.signature.outputKind,
        },
      };
    });
  }
  for (const path of bothPaths('/ready')) {
    app.get<{ Params: ModelParams }>(path, probe, async (request, reply) => {
      const { name, version } = request.params;
      try {
        requireModel(registry, name, version);
      } catch (error) {
        if (error instanceof CnnxError && error.code === 'MODEL_NOT_READY') return notReady(reply, { name }, error);
        throw error;
      }
      if (state.draining)
        return notReady(reply, { name }, new CnnxError('server is shutting down', 'SHUTTING_DOWN', { retryAfter: 1 }));
      return { name, ready: true };
    });
  }
  for (const path of bothPaths('/config')) {
    app.get<{ Params: ModelParams }>(path, async (request) =>
      modelConfig(requireModel(registry, request.params.name, request.params.version), batching),
    );
  }
  app.get('/v2/models/stats', async () => modelStatistics(registry, '', undefined));
  for (const path of bothPaths('/stats')) {
    app.get<{ Params: ModelParams }>(path, async (request) =>
      modelStatistics(registry, request.params.name, request.params.version),
    );
  }

  // Inference reads its body as bytes whatever the Content-Type says (Triton's client sends none), in a scope of
  // its own so that the other routes keep fastify's parsers.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request, payload, done) => readInferBody(request, payload, done));
    for (const path of bothPaths('/infer')) {
      scope.post<{ Params: ModelParams }>(path, async (request, reply) => {
        const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (!INFER_TYPES.includes(type)) {
          throw new CnnxError(
            `content type ${JSON.stringify(type)} not accepted here; send application/json, application/octet-stream ` +
              'with Inference-Header-Content-Length, or no Content-Type',
            'UNSUPPORTED_MEDIA_TYPE',
          );
        }
        requireIdentityEncoding(request.headers['content-encoding']);
        const named = requireModel(registry, request.params.name, request.params.version); // before the body is read
        return countingRefusals(named, async () => {
          const { header, binary, owned } = await splitBody(request, json);
          // Looked up again: a large body is read on a thread, and the model may have been reloaded meanwhile.
          const model = requireModel(registry, request.params.name, request.params.version);
          const infer = parseInfer(header, binary, model, owned);
          const logits = await runModel(model, infer.data, infer.count);
          return sendInferAnswer(
            reply,
            model,
            infer.id,
            outputTensors(model, logits, infer.count, infer.outputs, infer.binaryByDefault),
          );
        });
      });
    }
  });

  // Model repository extension (Triton's): the index, load (or reload) and unload. Triton's clients send `{}` with
  // no Content-Type or as octet-stream: the body is read whatever its type, and may only be empty JSON.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 2 ** 10 }, (_request, body, done) =>
      done(null, body),
    );
    scope.post('/v2/repository/index', async (request) => {
      const { ready } = repositoryRequest(request.body, 'index');
      if (ready !== undefined && typeof ready !== 'boolean') {
        throw new CnnxError(`"ready" must be true or false, got ${JSON.stringify(ready)}`, 'BAD_REQUEST');
      }
      return repositoryIndex(registry, ready === true);
    });
    scope.post<{ Params: { name: string } }>('/v2/repository/models/:name/load', async (request) => {
      repositoryRequest(request.body, 'load');
      const model = await repositoryLoad(registry, request.params.name);
      return { name: model.name, sha256: model.sha256, loaded: true };
    });
    scope.post<{ Params: { name: string } }>('/v2/repository/models/:name/unload', async (request) => {
      repositoryRequest(request.body, 'unload');
      await registry.unload(request.params.name);
      return { name: request.params.name, unloaded: true };
    });
  });
}

/** The model repository's index (Triton's), only the models ready for inference when `ready`. */
export async function repositoryIndex(registry: ModelRegistry, ready: boolean) {
  const models = await registry.index();
  return ready ? models.filter((model) => model.state === 'READY') : models;
}

/**
 * Loads (or reloads) model `name` from the repository (ModelRegistry.reload).
 * @throws CnnxError MODEL_NOT_FOUND when the repository has no such model; BAD_REQUEST saying why a load failed
 *   (and that the previous version keeps serving, if one was).
 */
export async function repositoryLoad(registry: ModelRegistry, name: string): Promise<LoadedModel> {
  try {
    return await registry.reload(name);
  } catch (error) {
    if (error instanceof CnnxError && error.code === 'MODEL_NOT_FOUND') throw error;
    throw new CnnxError(
      `load of '${name}' failed${registry.get(name) ? ', the previous version keeps serving' : ''}: ${messageOf(error)}`,
      'BAD_REQUEST',
    );
  }
}

/**
 * Checks the parameters of a model repository request (Triton's model repository extension): an unload's may hold
 * Triton's `unload_dependents` (which tritonclient always sends; a cnnx model has no dependents, so either value
 * unloads it alone); a load or an index takes none (Triton's load parameters override a model's config and files;
 * cnnx loads the model's own file).
 * @throws CnnxError BAD_REQUEST.
 */
export function checkRepositoryParameters(
  kind: 'index' | 'load' | 'unload',
  parameters: Record<string, unknown>,
): void {
  if (kind === 'unload') {
    const { unload_dependents: dependents, ...others } = parameters;
    if (dependents !== undefined && typeof dependents !== 'boolean') {
      throw new CnnxError(
        `parameter "unload_dependents" must be true or false, got ${JSON.stringify(dependents)}`,
        'BAD_REQUEST',
      );
    }
    if (Object.keys(others).length > 0) {
      throw new CnnxError(
        `unload takes only the "unload_dependents" parameter, got ${Object.keys(others)
          .map((k) => JSON.stringify(k))
          .join(', ')}`,
        'BAD_REQUEST',
      );
    }
  } else if (Object.keys(parameters).length > 0) {
    throw new CnnxError(
      'cnnx loads a model from its own .onnx file: load parameters (config, file overrides) are not supported',
      'BAD_REQUEST',
    );
  }
}

/** The statistics of model `name` (every model's when it is empty), as Triton's statistics extension gives them. */
export function modelStatistics(registry: ModelRegistry, name: string, version: string | undefined) {
  const models = name === '' ? registry.list() : [requireModel(registry, name, version)];
  return { model_stats: models.map((model) => model.stats.toJSON(model.name, MODEL_VERSION)) };
}

/**
 * Checks a model repository request's body and returns it: empty, or a JSON object whose parameters
 * `checkRepositoryParameters` takes. An index request may hold `ready` (the route checks it).
 * @throws CnnxError INVALID_JSON or BAD_REQUEST.
 */
function repositoryRequest(body: unknown, kind: 'index' | 'load' | 'unload'): Record<string, unknown> {
  if (!Buffer.isBuffer(body) || body.toString('utf8').trim() === '') return {};
  const request = parseJson(body);
  if (!isObject(request)) throw new CnnxError('a model repository request body is a JSON object', 'BAD_REQUEST');
  const { parameters = {} } = request;
  if (!isObject(parameters)) {
    throw new CnnxError(`the request "parameters" must be an object, got ${JSON.stringify(parameters)}`, 'BAD_REQUEST');
  }
  checkRepositoryParameters(kind, parameters);
  return request;
}
