/** Serve stage: the HTTP server (KServe v2, image classification, digit strings) over onnxruntime-node. */
export { createServer, DEFAULT_PREFERRED_BATCH, type CnnxServer, type ServerOptions } from './server.js';
export { Batcher } from './batcher.js';
export { checkDistinctPorts, checkPortFree, listen, listenGrpc } from './listen.js';
