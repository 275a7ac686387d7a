/**
 * The cnnx HTTP server: fastify with onnxruntime-node behind a micro-batcher per model. Routes are thin; the
 * work is in the model registry (loading, hot reload), the batcher, and the shared preprocessing.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname } from 'node:path';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import type { EpName } from '../runtime/index.js';
import { fromFastifyError, HttpError } from './errors.js';
import { createMetrics } from './metrics.js';
import { ModelRegistry } from './model-registry.js';
import { registerImageRoutes } from './routes/images.js';
import { registerKserveRoutes } from './routes/kserve.js';
import { registerPageRoutes } from './routes/page.js';

export interface ServerOptions {
  /** An .onnx file or a directory of them, or several. */
  model: string | string[];
  ep?: EpName;
  /**
   * ONNX Runtime intra-op threads per model. Default: half the cores (at least one). Micro-batches are small and
   * the HTTP work (JSON parsing, sockets) needs the other half; ORT's own default takes every core and its idle
   * threads busy-wait, which on two cores cost a third of the throughput (BENCHMARKS.md).
   */
  threads?: number;
  spinning?: boolean;
  /**
   * Run inference on a worker thread per model (default), so the event loop parses the next requests while a
   * batch runs; false runs it on the event loop.
   */
  inferenceWorker?: boolean;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  maxBatch?: number;
  maxQueueDelayMs?: number;
  /** Images waiting per model before requests are refused with 503. */
  maxQueue?: number;
  /** Requests in flight before new ones are refused with 429. */
  maxInFlight?: number;
  requestTimeoutMs?: number;
  bodyLimitBytes?: number;
  maxModelBytes?: number;
  pins?: Record<string, string>;
  /** Reload models when their files change. */
  watch?: boolean;
  /** Add POST /debug/echo, which parses an infer body and answers without inference (the HTTP ceiling). */
  echoRoute?: boolean;
  log?: (message: string) => void;
}

export interface CnnxServer {
  app: FastifyInstance;
  registry: ModelRegistry;
  /** Stops accepting, lets in-flight requests finish, releases the models. */
  close(): Promise<void>;
}

export async function createServer(options: ServerOptions): Promise<CnnxServer> {
  const log = options.log ?? (() => {});
  const metrics = createMetrics();
  const registry = new ModelRegistry({
    ep: options.ep ?? 'auto',
    threads: options.threads ?? Math.max(1, Math.floor(availableParallelism() / 2)),
    spinning: options.spinning,
    inferenceWorker: options.inferenceWorker ?? true,
    graphOptimizationLevel: options.graphOptimizationLevel,
    maxModelBytes: options.maxModelBytes,
    pins: options.pins,
    maxBatch: options.maxBatch ?? 64,
    maxQueueDelayMs: options.maxQueueDelayMs ?? 0,
    maxQueue: options.maxQueue ?? 4096,
    timeoutMs: options.requestTimeoutMs ?? 30_000,
    log,
    onBatch: (model, size) => metrics.batchSize.observe({ model }, size),
  });
  const paths = Array.isArray(options.model) ? options.model : [options.model];
  for (const path of paths) await registry.loadPath(path);
  if (options.watch) {
    for (const path of paths) {
      if ((await stat(path)).isDirectory()) registry.watch(path);
      else registry.watch(dirname(path), basename(path));
    }
  }

  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? 8 * 2 ** 20,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  const state = { draining: false, inFlight: 0 };
  const maxInFlight = options.maxInFlight ?? 1024;

  await app.register(multipart, { limits: { fileSize: options.bodyLimitBytes ?? 8 * 2 ** 20, files: 1, parts: 4 } });

  app.addHook('onRequest', async (request) => {
    (request as unknown as { started: bigint }).started = process.hrtime.bigint();
    if (state.draining) throw new HttpError('SHUTTING_DOWN', 'server is shutting down', 1);
    if (++state.inFlight > maxInFlight) {
      (request as unknown as { counted: boolean }).counted = true;
      throw new HttpError('TOO_MANY_REQUESTS', `more than ${maxInFlight} requests in flight`, 1);
    }
    (request as unknown as { counted: boolean }).counted = true;
  });
  app.addHook('onResponse', async (request, reply) => {
    if ((request as unknown as { counted?: boolean }).counted) state.inFlight--;
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    const started = (request as unknown as { started: bigint }).started;
    metrics.latency.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
  });
  // While draining, answers close their connection: keep-alive sockets would otherwise hold close() open.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (state.draining) void reply.header('connection', 'close');
    return payload;
  });

  app.setErrorHandler((error, _request, reply) => {
    const http =
      error instanceof HttpError ? error : fromFastifyError(error as Error & { code?: string; statusCode?: number });
    if (http.code === 'INTERNAL') log(`internal error: ${(error as Error).stack ?? String(error)}`);
    if (http.retryAfter !== undefined) void reply.header('retry-after', String(http.retryAfter));
    void reply.code(http.status).send({ error: http.message, code: http.code });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route ${request.method} ${request.url}`, code: 'NOT_FOUND' });
  });

  registerKserveRoutes(app, registry, state);
  registerImageRoutes(app, registry);
  registerPageRoutes(app, registry);
  app.get('/metrics', async (_request, reply) => {
    for (const model of registry.list()) {
      metrics.queueDepth.set({ model: model.name }, model.batcher.depth);
      metrics.executionProvider.set({ model: model.name, ep: model.session.ep }, 1);
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  if (options.echoRoute) {
    app.post<{ Params: { name: string } }>('/debug/echo/:name', async (request) => {
      const body = request.body as { inputs?: { name: string; shape: number[]; data: number[] }[] };
      const input = body.inputs?.[0];
      return {
        model_name: request.params.name,
        outputs: [{ name: 'echo', datatype: 'FP32', shape: input?.shape, data: input?.data?.slice(0, 10) }],
      };
    });
  }

  return {
    app,
    registry,
    async close() {
      state.draining = true;
      await app.close();
      await registry.close();
    },
  };
}
