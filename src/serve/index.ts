/** Serve stage: the HTTP server (KServe v2, image classification, digit strings) over onnxruntime-node. */
export { createServer, type CnnxServer, type ServerOptions } from './server.js';
export { ERROR_STATUS, HttpError, type ErrorCode } from './errors.js';
export { Batcher, type BatcherOptions } from './batcher.js';
export { ModelRegistry, modelNameOf, type LoadedModel } from './model-registry.js';
