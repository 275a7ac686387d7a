/**
 * KServe v2 gRPC (`inference.GRPCInferenceService`, grpc_service.proto beside this module) with @grpc/grpc-js:
 * ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer, and the RPCs of Triton's
 * extensions that ServerMetadata lists (ModelConfig, ModelStatistics, RepositoryIndex, RepositoryModelLoad and
 * RepositoryModelUnload), on the same models and batchers as REST. ModelInfer takes FP32 values as typed `contents.fp32_contents` or as `raw_input_contents`
 * (what Triton's gRPC client sends) and answers in the same form. Errors carry gRPC status codes from the error
 * catalogue's codes (CODE_STATUS), the message as the details.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CnnxError, type ErrorCode } from '../../common/index.js';
import {
  checkInputHeader,
  checkRequestedOutputs,
  countingRefusals,
  MODEL_VERSION,
  outputTensors,
  requireModel,
  runModel,
  tensorBytes,
  valuesFromBytes,
  valuesFromJson,
  type RequestedOutput,
} from '../inference.js';
import type { ModelRegistry } from '../model-registry.js';
import {
  checkRepositoryParameters,
  modelConfig,
  modelMetadata,
  modelStatistics,
  repositoryIndex,
  repositoryLoad,
  SERVER_METADATA,
} from '../routes/kserve.js';

/** The protocol file, beside this module: in the sources, and in dist/ where `npm run build` copies it. */
const PROTO_FILE = fileURLToPath(new URL('./grpc_service.proto', import.meta.url));

/** An InferParameter as proto-loader decodes it (oneof `parameter_choice`). */
interface InferParameter {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
}

interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  inputs: {
    name: string;
    datatype: string;
    shape: number[];
    parameters: Record<string, InferParameter>;
    contents: ({ fp32_contents: number[] } & Record<string, unknown[]>) | null;
  }[];
  outputs: { name: string; parameters: Record<string, InferParameter> }[];
  raw_input_contents: Buffer[];
}

/** gRPC status of each catalogue code a request can meet; codes not listed map by their HTTP status. */
const CODE_STATUS: Partial<Record<ErrorCode, grpc.status>> = Object.freeze({
  QUEUE_FULL: grpc.status.RESOURCE_EXHAUSTED,
  TOO_MANY_REQUESTS: grpc.status.RESOURCE_EXHAUSTED,
  PAYLOAD_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  REQUEST_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
});

/** gRPC status by HTTP status class of the catalogue (after CODE_STATUS). */
const HTTP_STATUS: Readonly<Record<number, grpc.status>> = Object.freeze({
  400: grpc.status.INVALID_ARGUMENT,
  404: grpc.status.NOT_FOUND,
  413: grpc.status.RESOURCE_EXHAUSTED,
  415: grpc.status.INVALID_ARGUMENT,
  422: grpc.status.FAILED_PRECONDITION,
  429: grpc.status.RESOURCE_EXHAUSTED,
  503: grpc.status.UNAVAILABLE,
});

/** A thrown error as a gRPC error: a CnnxError's code to a status, anything else INTERNAL (and logged). */
function toGrpcError(error: unknown, log: (message: string) => void): Partial<grpc.StatusObject> {
  if (!(error instanceof CnnxError)) {
    log(`internal error (gRPC): ${(error as Error).stack ?? String(error)}`);
    return { code: grpc.status.INTERNAL, details: 'internal error' };
  }
  const code = CODE_STATUS[error.code] ?? HTTP_STATUS[error.status] ?? grpc.status.INTERNAL;
  const metadata = new grpc.Metadata();
  metadata.set('cnnx-code', error.code);
  if (error.retryAfter !== undefined) metadata.set('retry-after', String(error.retryAfter));
  return { code, details: error.message, metadata };
}

const invalid = (message: string) => new CnnxError(message, 'INVALID_INPUT');

/**
 * The classification extension's top-k of an output: Triton's clients send it as an int64_param.
 * @throws CnnxError INVALID_INPUT for another kind of parameter, or none set.
 */
function classificationOf(output: string, parameter: InferParameter | undefined): number | undefined {
  if (parameter === undefined) return undefined;
  if (parameter.int64_param === undefined || parameter.int64_param === null) {
    throw invalid(
      `output '${output}' classification must be an int64_param (the number of classes), got ${JSON.stringify(parameter)}`,
    );
  }
  return Number(parameter.int64_param);
}

/**
 * The typed values of an FP32 input: `fp32_contents`.
 * @throws CnnxError INVALID_INPUT when another typed field holds values (an FP32 tensor's values are float32).
 */
function fp32Contents(name: string, contents: ModelInferRequest['inputs'][number]['contents']): number[] {
  for (const [field, values] of Object.entries(contents ?? {})) {
    if (field !== 'fp32_contents' && Array.isArray(values) && values.length > 0) {
      throw invalid(
        `input '${name}' is FP32: send its values as contents.fp32_contents or raw_input_contents, not ${field}`,
      );
    }
  }
  return contents?.fp32_contents ?? [];
}

export interface GrpcOptions {
  /** Largest request message in bytes (the REST body limit). */
  maxMessageBytes: number;
  log: (message: string) => void;
  /** The batching settings a model configuration reports (as REST's). */
  batching: { maxQueueDelayMs: number };
}

/** A ModelRepositoryParameter as proto-loader gives it (`oneofs: true`): the field set, and its value. */
interface RepositoryParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'bytes_param';
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  bytes_param?: Buffer;
}

/** The parameters of a model repository request, each as its plain value. */
function repositoryParameters(parameters: Record<string, RepositoryParameter> | undefined): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(parameters ?? {}).map(([key, value]) => [
      key,
      value.parameter_choice && value[value.parameter_choice],
    ]),
  );
}

/** The service's handlers over `registry`; `state.draining` makes readiness false and new calls UNAVAILABLE. */
function handlers(registry: ModelRegistry, state: { draining: boolean }, { log, batching }: GrpcOptions) {
  const unary =
    <Request, Response>(
      handle: (request: Request) => Response | Promise<Response>,
    ): grpc.handleUnaryCall<Request, Response> =>
    (call, callback) => {
      if (state.draining) {
        callback(toGrpcError(new CnnxError('server is shutting down', 'SHUTTING_DOWN', { retryAfter: 1 }), log));
        return;
      }
      Promise.resolve()
        .then(() => handle(call.request))
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toGrpcError(error, log)),
        );
    };
  return {
    ServerLive: unary(() => ({ live: true })),
    ServerReady: unary(() => ({ ready: registry.list().length > 0 })),
    ModelReady: unary((request: { name: string; version: string }) => {
      try {
        requireModel(registry, request.name, request.version);
        return { ready: true };
      } catch (error) {
        if (error instanceof CnnxError && error.code === 'MODEL_NOT_READY') return { ready: false };
        throw error;
      }
    }),
    ServerMetadata: unary(() => ({ ...SERVER_METADATA, extensions: [...SERVER_METADATA.extensions] })),
    ModelMetadata: unary((request: { name: string; version: string }) =>
      modelMetadata(requireModel(registry, request.name, request.version)),
    ),
    ModelConfig: unary((request: { name: string; version: string }) => ({
      config: modelConfig(requireModel(registry, request.name, request.version), batching),
    })),
    ModelStatistics: unary((request: { name: string; version: string }) =>
      modelStatistics(registry, request.name, request.version || undefined),
    ),
    RepositoryIndex: unary(async (request: { ready: boolean }) => ({
      models: await repositoryIndex(registry, request.ready),
    })),
    RepositoryModelLoad: unary(
      async (request: { model_name: string; parameters: Record<string, RepositoryParameter> }) => {
        checkRepositoryParameters('load', repositoryParameters(request.parameters));
        await repositoryLoad(registry, request.model_name);
        return {};
      },
    ),
    RepositoryModelUnload: unary(
      async (request: { model_name: string; parameters: Record<string, RepositoryParameter> }) => {
        checkRepositoryParameters('unload', repositoryParameters(request.parameters));
        await registry.unload(request.model_name);
        return {};
      },
    ),
    ModelInfer: unary(async (request: ModelInferRequest) => {
      const model = requireModel(registry, request.model_name, request.model_version);
      return countingRefusals(model, async () => {
        const { inputName } = model.signature;
        if (request.inputs.length !== 1) {
          throw invalid(`"inputs" must hold exactly one tensor named '${inputName}', got ${request.inputs.length}`);
        }
        const input = request.inputs[0]!;
        const shape = input.shape.map(Number);
        const { count, values } = checkInputHeader({ ...input, shape }, model);
        const raw = request.raw_input_contents;
        const typed = fp32Contents(inputName, input.contents);
        if (raw.length > 0 && typed.length > 0) {
          throw invalid(`input '${inputName}' has both contents and raw_input_contents; send one`);
        }
        if (raw.length > 0 && raw.length !== request.inputs.length) {
          throw invalid(`raw_input_contents has ${raw.length} entries for ${request.inputs.length} inputs`);
        }
        const data =
          raw.length > 0
            ? valuesFromBytes(inputName, raw[0]!, values)
            : valuesFromJson(inputName, typed, shape, values);
        const requested = checkRequestedOutputs(
          request.outputs.map((output): RequestedOutput => ({
            name: output.name,
            classification: classificationOf(output.name, output.parameters.classification),
            binary: raw.length > 0,
          })),
          model,
        );
        const logits = await runModel(model, data, count);
        const outputs = outputTensors(model, logits, count, requested, raw.length > 0);
        const header = (output: (typeof outputs)[number]) => ({
          name: output.name,
          datatype: output.datatype,
          shape: output.shape,
        });
        return {
          model_name: model.name,
          model_version: MODEL_VERSION,
          id: request.id,
          outputs: outputs.map((output) =>
            output.binary
              ? header(output)
              : {
                  ...header(output),
                  contents:
                    output.datatype === 'FP32'
                      ? { fp32_contents: Array.from(output.data) }
                      : { bytes_contents: output.data.map((entry) => Buffer.from(entry, 'utf8')) },
                },
          ),
          raw_output_contents: outputs.filter((output) => output.binary).map(tensorBytes),
        };
      });
    }),
  };
}

/**
 * A gRPC server with the KServe v2 inference service over `registry`; bind it with `listenGrpc`.
 * @throws Error when grpc_service.proto is not beside this module, or lacks a method served here (a build left it
 *   behind).
 */
export function createGrpcServer(
  registry: ModelRegistry,
  state: { draining: boolean },
  options: GrpcOptions,
): grpc.Server {
  if (!existsSync(PROTO_FILE)) {
    throw new Error(`${PROTO_FILE} is missing: \`npm run build\` copies it beside the compiled gRPC server`);
  }
  const definition = protoLoader.loadSync(PROTO_FILE, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    arrays: true,
    objects: true,
    oneofs: true,
  });
  const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
  const service = (inference.GRPCInferenceService as grpc.ServiceClientConstructor).service;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': -1,
  });
  const implementation = handlers(registry, state, options);
  // A handler the loaded .proto has no method for would answer UNIMPLEMENTED without a word (a stale proto file).
  const missing = Object.keys(implementation).filter((method) => !(method in service));
  if (missing.length > 0) {
    throw new Error(
      `${PROTO_FILE} has no ${missing.join(', ')}: it is out of date; \`npm run build\` copies the current one`,
    );
  }
  server.addService(service, implementation as unknown as grpc.UntypedServiceImplementation);
  return server;
}
