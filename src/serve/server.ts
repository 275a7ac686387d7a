/**
 * The cnnx server: fastify (KServe v2 REST, images, the page) and a gRPC server (KServe v2 gRPC) over the same
 * models, with onnxruntime-node behind a micro-batcher per model. Routes are thin; the work is in the model
 * registry (loading, hot reload), the batcher, the protocol-neutral inference module and the shared preprocessing.
 */
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { basename, dirname, normalize } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import multipart from '@fastify/multipart';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CnnxError } from '../common/index.js';
import type { EpName } from '../runtime/index.js';
import { fromClientError, fromFastifyError, MAX_PARAM_LENGTH, MULTIPART_PARTS, rawErrorResponse } from './errors.js';
import { createGrpcServer } from './grpc/grpc-server.js';
import { requireContentType } from './inference.js';
import { createMetrics } from './metrics.js';
import { ModelRegistry } from './model-registry.js';
import { registerImageRoutes } from './routes/images.js';
import { JsonPool } from './json-pool.js';
import { PicturePool } from './picture-pool.js';
import { registerKserveRoutes } from './routes/kserve.js';
import { registerPageRoutes } from './routes/page.js';
import { HEADER_LENGTH, headerLengthOf, readInferBody, type InferBody } from './routes/infer-body.js';

/** `ServerOptions.preferredBatch` when not given: the best of 4, 8, 16 and 64 for single-image LeNet requests. */
export const DEFAULT_PREFERRED_BATCH = 8;

export interface ServerOptions {
  /** An .onnx file or a directory of them, or several. */
  model: string | string[];
  ep?: EpName;
  /**
   * ONNX Runtime intra-op threads per model instance. Default: half the cores shared among the model's instances
   * (at least one each). Micro-batches are small and
   * the HTTP work (JSON parsing, sockets) needs the other half; ORT's own default takes every core and its idle
   * threads busy-wait, which on two cores cost a third of the throughput (BENCHMARKS.md).
   */
  threads?: number;
  spinning?: boolean;
  /**
   * Run inference on worker threads (default: one per model instance), so the event loop parses the next requests while a
   * batch runs; false runs it on the event loop.
   */
  inferenceWorker?: boolean;
  /**
   * Sessions per model, each on its own inference thread (Triton's instance_group count): batches run side by side
   * on the cores the HTTP work leaves; each costs a copy of the model. Default: 2 with two cores or more and a model
   * file of at most 64 MiB, else 1. Needs `inferenceWorker`.
   */
  instances?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  maxBatch?: number;
  /**
   * Images at which a gathering batch goes to inference at once (default 8, at most `maxBatch`): on a small CPU
   * model a burst of requests becomes several batches that overlap with the parsing of the rest, which measured
   * 1.6-1.8x the single-image throughput of one batch per burst (BENCHMARKS.md, "Serving protocols").
   */
  preferredBatch?: number;
  maxQueueDelayMs?: number;
  /** Images waiting per model before requests are refused with 503. */
  maxQueue?: number;
  /** Requests in flight before new ones are refused with 429. */
  maxInFlight?: number;
  requestTimeoutMs?: number;
  bodyLimitBytes?: number;
  maxModelBytes?: number;
  /** sha256 (hex) a model's file must have, by model name; a name no model in `model` has is a BAD_OPTION. */
  pins?: Record<string, string>;
  /** Reload models when their files change. */
  watch?: boolean;
  /**
   * On close, how long a kept-alive connection that is idle may still bring a request, counted from its last
   * answer (default 2000 ms). Its client may be sending one at that moment: closing the socket then would lose
   * the request. Connections idle for longer are closed at once.
   */
  keepAliveGraceMs?: number;
  /**
   * Threads that prepare pictures for classify and read-digits (decoded pixels -> model inputs); default half the
   * cores, at least one.
   */
  pictureThreads?: number;
  /** Add POST /debug/echo, which parses an infer body and answers without inference (the HTTP ceiling). */
  echoRoute?: boolean;
  log?: (message: string) => void;
}

export interface CnnxServer {
  app: FastifyInstance;
  /** The KServe v2 gRPC service on the same models; `listenGrpc` binds it to a port. */
  grpc: GrpcServer;
  registry: ModelRegistry;
  /**
   * Drains and stops: new connections are refused at once; requests already accepted get a complete answer
   * (in flight: their result; arriving on a kept-alive connection: 503 SHUTTING_DOWN), each with
   * `Connection: close`; then the models are released. Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/**
 * Loads the models and builds the HTTP and gRPC services (not yet listening: see listen.ts).
 * @throws CnnxError BAD_OPTION for a batch size or instance count that is not a whole number of 1 or more, or
 *   instances without inference threads; the model loading errors of ModelRegistry.loadPath.
 */
export async function createServer(options: ServerOptions): Promise<CnnxServer> {
  const log = options.log ?? (() => {});
  for (const [option, value] of Object.entries({
    preferredBatch: options.preferredBatch,
    maxBatch: options.maxBatch,
    instances: options.instances,
  })) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
      throw new CnnxError(`${option} must be a whole number of 1 or more, got ${value}`, 'BAD_OPTION');
    }
  }
  if ((options.instances ?? 1) > 1 && options.inferenceWorker === false) {
    throw new CnnxError('instances need inference threads (inferenceWorker)', 'BAD_OPTION');
  }
  const metrics = createMetrics();
  const registry = new ModelRegistry({
    ep: options.ep ?? 'auto',
    threads: options.threads,
    spinning: options.spinning,
    inferenceWorker: options.inferenceWorker ?? true,
    instances: options.instances,
    graphOptimizationLevel: options.graphOptimizationLevel,
    maxModelBytes: options.maxModelBytes,
    pins: options.pins,
    maxBatch: options.maxBatch ?? 64,
    preferredBatch: options.preferredBatch ?? DEFAULT_PREFERRED_BATCH,
    maxQueueDelayMs: options.maxQueueDelayMs ?? 0,
    maxQueue: options.maxQueue ?? 4096,
    timeoutMs: options.requestTimeoutMs ?? 30_000,
    log,
    onBatch: (model, size) => metrics.batchSize.observe({ model }, size),
  });
  // Paths as the watcher writes them (`./models/` and `models` are one folder), so that its events find their models.
  const paths = [options.model].flat().map((path) => normalize(path).replace(/(.)[\\/]+$/, '$1'));
  try {
    for (const path of paths) await registry.loadPath(path);
    const served = new Set(registry.list().map((model) => model.name));
    // Models found but not loaded (a pin that did not match among them) were named in the log already.
    const unknown = Object.keys(options.pins ?? {}).filter((name) => !served.has(name) && !registry.failures.has(name));
    if (unknown.length > 0) {
      // A mistyped name would leave its model unchecked without a word.
      throw new CnnxError(
        `--pin names ${unknown.join(', ')}, which ${unknown.length === 1 ? 'is' : 'are'} not served here (served: ${[...served].join(', ')})`,
        'BAD_OPTION',
      );
    }
    if (options.watch) {
      for (const path of paths) {
        if ((await stat(path)).isDirectory()) registry.watch(path);
        else registry.watch(dirname(path), basename(path));
      }
    }
  } catch (error) {
    // The models loaded so far hold worker threads, which would keep the process alive after the error.
    await registry.close();
    throw error;
  }

  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? 8 * 2 ** 20,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    // Node checks request timeouts every 30 s by default, and only once the headers timeout (60 s) has passed
    // too: a request whose body stalls would wait a minute for its 408. Check every second, against both limits.
    http: {
      // A request without a Host header gets the catalogue's 400 from the onRequest hook, not Node's empty one.
      requireHostHeader: false,
      connectionsCheckingInterval: 1000,
      headersTimeout: Math.min(options.requestTimeoutMs ?? 30_000, 60_000),
      requestTimeout: options.requestTimeoutMs ?? 30_000,
    },
    // Draining is done here (see close()): fastify's own 503 has another body, and closing idle connections at
    // once loses requests their clients are sending at that moment.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH }, // fastify's default, 100, is below a file name's 255 bytes
    forceCloseConnections: false,
    frameworkErrors: (error, _request, reply) => sendError(reply, fromFastifyError(error)),
    clientErrorHandler: (error, socket) => {
      const http = socket.destroyed ? undefined : fromClientError(error);
      if (http && socket.writable) socket.write(rawErrorResponse(http));
      socket.destroy();
    },
  });
  // Requests Node answers itself, with an empty body or none, get the catalogue's JSON: an Expect the server does
  // not meet (417), and CONNECT (cnnx is no proxy; Node would close the connection without a word).
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const error = new CnnxError(
      `Expect ${JSON.stringify(request.headers.expect)} is not supported; send the request without it`,
      'EXPECTATION_FAILED',
    );
    answerAndClose(response, error);
  });
  // `Expect: 100-continue` (curl sends it for bodies over 1 KB): a body over the limit is refused before the client
  // sends it, instead of being invited and then drained.
  const bodyLimit = options.bodyLimitBytes ?? 8 * 2 ** 20;
  app.server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    if (Number(request.headers['content-length']) > bodyLimit) {
      const error = new CnnxError(
        `Request body is too large (over ${bodyLimit} bytes, --body-limit)`,
        'PAYLOAD_TOO_LARGE',
      );
      answerAndClose(response, error);
      return;
    }
    response.writeContinue();
    app.server.emit('request', request, response);
  });
  app.server.on('connect', (_request: IncomingMessage, socket: Duplex) => {
    socket.end(rawErrorResponse(new CnnxError('CONNECT is not served here: cnnx is not a proxy', 'BAD_REQUEST')));
  });
  const connections = trackConnections(app);
  let closing: Promise<void> | undefined;
  const state = { draining: false, inFlight: 0 };
  const maxInFlight = options.maxInFlight ?? 1024;

  await app.register(multipart, {
    limits: { fileSize: options.bodyLimitBytes ?? 8 * 2 ** 20, files: 1, parts: MULTIPART_PARTS },
  });

  // A request counts against --max-in-flight until it is answered or its connection closes, whichever comes first:
  // a client that hangs up mid-body, a body that times out (408) and a connection cut for the bytes after a request
  // never reach onResponse. Health checks are not counted: an overloaded server still says it is alive.
  const release = (request: FastifyRequest) => {
    const counted = request as unknown as { counted?: boolean };
    if (counted.counted) state.inFlight--;
    counted.counted = false;
  };
  app.addHook('onRequest', async (request, reply) => {
    (request as unknown as { started: bigint }).started = process.hrtime.bigint();
    checkFraming(request);
    // Probes answer for themselves while draining (readiness: 503 with "ready": false).
    if (request.routeOptions.config?.probe === true) return;
    if (state.draining) throw new CnnxError('server is shutting down', 'SHUTTING_DOWN', { retryAfter: 1 });
    state.inFlight++;
    (request as unknown as { counted: boolean }).counted = true;
    reply.raw.once('close', () => release(request));
    if (state.inFlight > maxInFlight) {
      throw new CnnxError(`more than ${maxInFlight} requests in flight`, 'TOO_MANY_REQUESTS', { retryAfter: 1 });
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    release(request);
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

  app.setErrorHandler((error, request, reply) => {
    const fastifyError = error as Error & { code?: string; statusCode?: number };
    let http = error instanceof CnnxError ? error : fromFastifyError(fastifyError);
    // A content type fastify has no parser for, on a route that says what it takes: the route's own message.
    const { accepts, named } = request.routeOptions.config ?? {};
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' && accepts !== undefined) {
      try {
        requireContentType(request.headers['content-type'], accepts, named);
      } catch (refusal) {
        http = refusal as CnnxError;
      }
    }
    if (http.status >= 500 && http.status !== 503)
      log(`internal error (${http.code}): ${(error as Error).stack ?? String(error)}`);
    sendError(reply, http);
  });
  // A path served for other methods is answered 405 with the methods it takes (RFC 9110, section 15.5.6), as Triton
  // answers it; fastify itself answers 404 for any method a path lacks.
  const routes: { method: string; path: RegExp }[] = [];
  app.addHook('onRoute', ({ method, url }) => {
    const pattern = url
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/:[^/]+/g, '[^/]+')
      .replace(/\*/g, '.*');
    for (const one of [method].flat()) routes.push({ method: one, path: new RegExp(`^${pattern}$`) });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((route) => route.path.test(path)).map((route) => route.method))];
    if (allowed.length > 0) {
      void reply.header('allow', allowed.sort().join(', '));
      sendError(
        reply,
        new CnnxError(
          `${request.method} is not served at ${path}; it takes ${allowed.join(', ')}`,
          'METHOD_NOT_ALLOWED',
        ),
      );
      return;
    }
    sendError(reply, new CnnxError(`no route ${request.method} ${request.url}`, 'NOT_FOUND'));
  });

  const maxQueueDelayMs = options.maxQueueDelayMs ?? 0;
  const json = new JsonPool();
  await registerKserveRoutes(app, registry, state, { maxQueueDelayMs }, json);
  const pictures = new PicturePool({ threads: options.pictureThreads });
  registerImageRoutes(app, registry, pictures);
  registerPageRoutes(app, registry);
  app.get('/metrics', async (_request, reply) => {
    // The gauges describe the models served now: an unloaded model's series go.
    metrics.queueDepth.reset();
    metrics.executionProvider.reset();
    for (const model of registry.list()) {
      metrics.queueDepth.set({ model: model.name }, model.batcher.depth);
      metrics.executionProvider.set({ model: model.name, ep: model.session.ep }, 1);
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  if (options.echoRoute) {
    // The binary counterpart: reads the body as the infer route does, splits off the JSON header, answers in binary.
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (request, payload, done) => readInferBody(request, payload, done));
      scope.post<{ Params: { name: string } }>('/debug/echo-binary/:name', async (request, reply) => {
        const body = request.body as InferBody;
        const length = headerLengthOf(request) ?? 0;
        const [head, tensor] = Buffer.isBuffer(body)
          ? [body.subarray(0, length), body.subarray(length)]
          : [body.header, body.tensor];
        const header = JSON.parse(head.toString('utf8')) as { inputs?: { shape?: number[] }[] };
        const answer = Buffer.from(
          JSON.stringify({
            model_name: request.params.name,
            outputs: [
              {
                name: 'echo',
                datatype: 'FP32',
                shape: header.inputs?.[0]?.shape,
                parameters: { binary_data_size: 40 },
              },
            ],
          }),
        );
        return reply
          .header(HEADER_LENGTH, String(answer.length))
          .type('application/octet-stream')
          .send(Buffer.concat([answer, tensor.subarray(0, 40)]));
      });
    });
    app.post<{ Params: { name: string } }>('/debug/echo/:name', async (request) => {
      const body = request.body as { inputs?: { name: string; shape: number[]; data: number[] }[] };
      const input = body.inputs?.[0];
      return {
        model_name: request.params.name,
        outputs: [{ name: 'echo', datatype: 'FP32', shape: input?.shape, data: input?.data?.slice(0, 10) }],
      };
    });
  }

  const grpc = createGrpcServer(registry, state, {
    maxMessageBytes: options.bodyLimitBytes ?? 8 * 2 ** 20,
    log,
    batching: { maxQueueDelayMs },
  });

  return {
    app,
    grpc,
    registry,
    close() {
      closing ??= (async () => {
        state.draining = true;
        // New gRPC calls are refused (UNAVAILABLE) from now on; calls in flight finish first.
        const grpcDrained = new Promise<void>((resolve) => grpc.tryShutdown(() => resolve()));
        if (app.server.listening) {
          // http.Server#close also closes idle kept-alive connections at once (Node >= 19), and a client may be
          // sending a request on one at that very moment: it would be reset unanswered. Close only the listener;
          // requests on open connections are answered with Connection: close, so busy clients leave by themselves.
          NetServer.prototype.close.call(app.server);
          // A client that never finishes its request (a stalled body) would hold the drain open; past the request
          // timeout its request has failed anyway, and its connection is closed.
          await connections.quiet(options.keepAliveGraceMs ?? 2000, options.requestTimeoutMs ?? 30_000);
          app.server.closeAllConnections();
        }
        await app.close();
        await grpcDrained;
        await Promise.all([registry.close(), pictures.close(), json.close()]);
      })();
      return closing;
    },
  };
}

/** Sends `error` as the catalogue's JSON body, with Retry-After where it has one. */
function sendError(reply: FastifyReply, error: CnnxError): void {
  if (error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter));
  void reply.code(error.status).send({ error: error.message, code: error.code });
}

/**
 * The server's open connections, each with its requests in progress and when it last became idle, so that a
 * drain can tell a connection its client may still use from one it has left.
 */
function trackConnections(app: FastifyInstance) {
  const open = new Map<Socket, { active: number; idleSince: number }>();
  app.server.on('connection', (socket: Socket) => {
    open.set(socket, { active: 0, idleSince: performance.now() });
    socket.once('close', () => open.delete(socket));
  });
  app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const connection = open.get(request.socket);
    if (!connection) return;
    connection.active++;
    response.once('close', () => {
      connection.active--;
      connection.idleSince = performance.now();
    });
  });
  return {
    /**
     * Resolves when every connection left has been idle for `graceMs` since its last answer, so closing it loses
     * nothing; busy ones are waited for (their answers close them while draining), `limitMs` at most.
     */
    async quiet(graceMs: number, limitMs: number): Promise<void> {
      const deadline = performance.now() + limitMs;
      for (;;) {
        const now = performance.now();
        if (now >= deadline) return;
        let wait = 0;
        for (const { active, idleSince } of open.values()) {
          wait = Math.max(wait, active > 0 ? graceMs : graceMs - (now - idleSince));
        }
        if (wait <= 0) return;
        await sleep(Math.min(wait, 50));
      }
    },
  };
}

/**
 * Refuses a request whose framing cnnx cannot honour: HTTP/1.1 without a Host header or with two (RFC 9112, section
 * 3.2), and a Transfer-Encoding other than chunked (a `gzip, chunked` body would be read as its compressed bytes).
 * @throws CnnxError BAD_REQUEST or UNSUPPORTED_MEDIA_TYPE.
 */
function checkFraming(request: FastifyRequest): void {
  if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
    throw new CnnxError('an HTTP/1.1 request needs a Host header', 'BAD_REQUEST');
  }
  // Node keeps the first of two Host headers; RFC 9112 (section 3.2) says to refuse the request.
  if (request.raw.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'host').length > 1) {
    throw new CnnxError('the request has more than one Host header; send one', 'BAD_REQUEST');
  }
  const transfer = request.headers['transfer-encoding'];
  if (transfer === undefined) return;
  const codings = transfer
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'chunked' && coding !== 'identity');
  if (codings.length > 0) {
    throw new CnnxError(
      `Transfer-Encoding ${JSON.stringify(transfer)} is not accepted here; send the body uncompressed (chunked is fine)`,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  }
}

/** Answers `error` as the catalogue's JSON on a response Node made before fastify saw the request, and closes. */
function answerAndClose(response: ServerResponse, error: CnnxError): void {
  const body = JSON.stringify({ error: error.message, code: error.code });
  response.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  response.end(body);
}
