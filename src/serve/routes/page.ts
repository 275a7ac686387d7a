/**
 * The web page (src/web, built by Vite into dist/web) at `/`, the ONNX files it runs, and onnxruntime-web's WASM
 * files, all from this server: no CDN, and once loaded the page works offline. Headers: a Content-Security-Policy
 * that allows WebAssembly compilation ('wasm-unsafe-eval') and nothing from elsewhere, and COOP/COEP so the page
 * is cross-origin isolated and WASM threads work.
 */
import { createReadStream, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CnnxError, PAGE_DIR } from '../../common/index.js';
import type { ModelRegistry } from '../model-registry.js';

const ORT_DIR = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));

const PAGE_HEADERS = Object.freeze({
  'content-security-policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; style-src 'self'; " +
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
});

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.svg': 'image/svg+xml',
};

/** Sends `file` under `root` (no path escapes), with the page headers. */
function sendFile(reply: FastifyReply, root: string, relative: string) {
  const file = normalize(join(root, relative));
  if (!file.startsWith(root) || !existsSync(file) || !TYPES[extname(file)]) {
    throw new CnnxError(`no file ${relative}`, 'NOT_FOUND');
  }
  return reply.headers(PAGE_HEADERS).type(TYPES[extname(file)]!).send(createReadStream(file));
}

export function registerPageRoutes(app: FastifyInstance, registry: ModelRegistry): void {
  app.get('/', async (_request, reply) => {
    if (!existsSync(join(PAGE_DIR, 'index.html'))) {
      throw new CnnxError(
        `the web page is not built (no ${PAGE_DIR}): run \`npm run build\` in the cnnx package (npm install does it)`,
        'NOT_FOUND',
      );
    }
    return sendFile(reply, PAGE_DIR, 'index.html');
  });
  app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) =>
    sendFile(reply, join(PAGE_DIR, 'assets'), request.params['*']),
  );
  app.get<{ Params: { '*': string } }>('/ort/*', async (request, reply) =>
    sendFile(reply, ORT_DIR, request.params['*']),
  );
  app.get<{ Params: { file: string } }>('/models/:file', async (request, reply) => {
    const name = request.params.file.replace(/\.onnx$/, '');
    const model = registry.get(name);
    if (!model) throw new CnnxError(`model '${name}' not found; GET /v2 lists the served models`, 'MODEL_NOT_FOUND');
    // The bytes the model was loaded from, not the file: after a bad update or a delete, that is still the model
    // the API serves, and the page must run the same one.
    return reply
      .headers(PAGE_HEADERS)
      .header('etag', `"${model.sha256}"`)
      .type(TYPES['.onnx']!)
      .send(Buffer.from(model.bytes.buffer, model.bytes.byteOffset, model.bytes.byteLength));
  });
}
