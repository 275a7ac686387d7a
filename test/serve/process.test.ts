import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, rename } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, createServer as createNetServer, type Server } from 'node:net';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/index.js';
import { checkPortFree, listen } from '../../src/serve/index.js';
import { spawnCnnx } from '../helpers/spawn-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

const MODEL = 'models/lenet5-relu-mnist.onnx';
function cnnx(args: string[]): ChildProcessWithoutNullStreams {
  return spawnCnnx(args);
}

/**
 * Waits for `child` to exit and collects its output. A child still running after `limitMs` is killed and reported
 * with code null: the command hung.
 */
async function finished(child: ChildProcessWithoutNullStreams, limitMs = 90_000) {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const hung = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(hung);
  return { code: signal === 'SIGKILL' ? null : code, stdout, stderr };
}

/** `cnnx serve` of MODEL as `digits` from `dir`, with `flags`; resolves once it prints its address. */
async function serveDigits(dir: string, flags: string[]) {
  await copyFile(MODEL, join(dir, 'digits.onnx'));
  const child = cnnx(['serve', '--model', dir, '--port', '0', '--ep', 'cpu', ...flags]);
  const exited = finished(child, 110_000);
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const match = /at (http:\/\/[^\s]+)/.exec(chunk.toString());
      if (match) resolve(match[1]!);
    });
    void exited.then(({ code, stderr }) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  return { child, exited, url };
}

/** A port held by another server on 127.0.0.1 for the file's tests. */
let busy: Server;
let busyPort: number;
beforeAll(async () => {
  busy = createNetServer();
  await new Promise<void>((resolve) => busy.listen({ port: 0, host: '127.0.0.1' }, resolve));
  busyPort = (busy.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

describe('a port that cannot be opened', () => {
  it('throws PORT_IN_USE or BAD_ADDRESS from listen, leaving the server as it was', async () => {
    const app = Fastify();
    app.get('/', async () => 'up');
    try {
      await expect(listen({ app }, { port: busyPort, host: '127.0.0.1' })).rejects.toMatchObject({
        code: 'PORT_IN_USE',
        message: `port ${busyPort} on 127.0.0.1 is in use: stop the other server or pick another with --port`,
      });
      await expect(listen({ app }, { port: 70000, host: '127.0.0.1' })).rejects.toMatchObject({ code: 'BAD_ADDRESS' });
      expect((await app.inject({ url: '/' })).body).toBe('up');
    } finally {
      await app.close();
    }
    const other = Fastify();
    try {
      await expect(listen({ app: other }, { port: 0, host: '999.1.1.1' })).rejects.toMatchObject({
        code: 'BAD_ADDRESS',
        message: expect.stringMatching(/^cannot listen on "999\.1\.1\.1": .* with --host$/),
      });
    } finally {
      await other.close();
    }
  });

  it('is found by checkPortFree before any work, which leaves a free port free', async () => {
    await expect(checkPortFree(busyPort, '127.0.0.1')).rejects.toMatchObject({ code: 'PORT_IN_USE' });
    await expect(checkPortFree(0, '999.1.1.1')).rejects.toMatchObject({ code: 'BAD_ADDRESS' });
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen({ port: 0, host: '127.0.0.1' }, resolve));
    const free = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await checkPortFree(free, '127.0.0.1');
    const app = Fastify();
    try {
      expect(await listen({ app }, { port: free, host: '127.0.0.1' })).toBe(`http://127.0.0.1:${free}`);
    } finally {
      await app.close();
    }
  });

  it('ends `cnnx serve` at once with one line and a non-zero exit, models released', async () => {
    const serve = (...args: string[]) => finished(cnnx(['serve', '--model', MODEL, '--ep', 'cpu', ...args]));
    const [inUse, outOfRange, unknownHost, grpcInUse, samePort] = await Promise.all([
      serve('--port', String(busyPort)),
      serve('--port', '70000'),
      serve('--port', '0', '--host', '999.1.1.1'),
      serve('--port', '0', '--grpc-port', String(busyPort)),
      serve('--port', '8931', '--grpc-port', '8931'),
    ]);
    expect(samePort.stderr.trim()).toBe(
      'cnnx: --grpc-port 8931 is the HTTP port too (--port): give gRPC a port of its own, e.g. --grpc-port 8932',
    );
    expect(grpcInUse.stderr.trim().split('\n').at(-1)).toBe(
      `cnnx: port ${busyPort} on 127.0.0.1 is in use: stop the other server or pick another with --grpc-port`,
    );
    for (const run of [inUse, outOfRange, unknownHost, grpcInUse, samePort]) {
      expect(run.code).toBe(1); // null: still running (models held) until killed
      expect(run.stderr).not.toMatch(/^\s+at /m); // no stack trace
      expect(run.stdout).toBe('');
    }
    expect(inUse.stderr.trim().split('\n').at(-1)).toBe(
      `cnnx: port ${busyPort} on 127.0.0.1 is in use: stop the other server or pick another with --port`,
    );
    expect(outOfRange.stderr.trim()).toMatch(
      /^error: option '-p, --port <n>' argument '70000' is invalid\. .*0 to 65535/,
    );
    expect(unknownHost.stderr.trim().split('\n').at(-1)).toMatch(/^cnnx: cannot listen on "999\.1\.1\.1": .* --host$/);
  }, 120_000);
});

describe('a real server process', () => {
  let mnist: Dataset;
  beforeAll(async () => {
    mnist = await loadDataset('mnist');
  });
  const inferBody = (indices: number[]) => ({
    inputs: [
      {
        name: 'input',
        shape: [indices.length, 1, 28, 28],
        datatype: 'FP32',
        data: indices.flatMap((i) => Array.from(mnist.test.pixels.subarray(i * 784, (i + 1) * 784), (v) => v / 255)),
      },
    ],
  });
  const argmax = (values: number[]) => values.indexOf(Math.max(...values));

  it('serves over a real port, reloads a changed file, and on SIGTERM answers every accepted request, exiting 0', async () => {
    const liveDir = await tempDir();
    const { child, exited, url } = await serveDigits(liveDir, []);
    const { port } = new URL(url);

    /** One infer request on `agent`; resolves to its answer, or to the error that lost it. */
    const post = (agent: Agent, body: string) =>
      new Promise<{ status: number; code?: string; close: boolean; data?: number[] } | { error: string }>((resolve) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/v2/models/digits/infer',
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (response) => {
            let text = '';
            response.on('data', (chunk: Buffer) => (text += chunk.toString()));
            response.on('end', () => {
              const json = JSON.parse(text) as { code?: string; outputs?: { data: number[] }[] };
              resolve({
                status: response.statusCode!,
                code: json.code,
                close: response.headers.connection === 'close',
                data: json.outputs?.[0]?.data,
              });
            });
            response.on('error', (error) => resolve({ error: `${error.message} (reading the answer)` }));
          },
        );
        req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: `${error.code ?? error.message}` }));
        req.end(body);
      });

    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await post(agent, JSON.stringify(inferBody([9])));
    expect('data' in first && argmax(first.data!)).toBe(mnist.test.labels[9]);

    // Hot reload on file change: an atomic replace (as cnnx export writes) is picked up.
    await copyFile('models/lenet5-mnist.onnx', join(liveDir, 'digits.tmp'));
    await rename(join(liveDir, 'digits.tmp'), join(liveDir, 'digits.onnx'));
    const deadline = Date.now() + 20_000;
    let changed = false;
    while (!changed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      const now = await post(agent, JSON.stringify(inferBody([9])));
      changed = 'data' in now && JSON.stringify(now.data) !== JSON.stringify('data' in first && first.data);
    }
    expect(changed).toBe(true);
    agent.destroy();

    // SIGTERM under load on kept-alive connections. Each client has one connection, opened (accepted) before the
    // signal, and sends its next request as soon as an answer comes, until an answer says `Connection: close`.
    // Every request it sends is on an accepted connection, so every one must get a complete answer.
    const body = JSON.stringify(inferBody([1, 2]));
    const clients = 16;
    const answers: { status: number; code?: string }[] = [];
    const lost: string[] = [];
    let signalled = false;
    let afterSignal = 0;
    let warm!: () => void;
    const warmedUp = new Promise<void>((resolve) => (warm = resolve));
    const runClient = async () => {
      const own = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (;;) {
          const answer = await post(own, body);
          if ('error' in answer) {
            lost.push(answer.error);
            return;
          }
          answers.push(answer);
          if (signalled) afterSignal++;
          if (answers.length >= clients * 4) warm();
          if (answer.close) return;
        }
      } finally {
        own.destroy();
      }
    };
    const running = Promise.all(Array.from({ length: clients }, runClient));
    await warmedUp;
    signalled = true;
    child.kill('SIGTERM');
    await running;
    const { code, stderr } = await exited;

    expect(lost).toEqual([]);
    expect(afterSignal).toBeGreaterThan(0);
    for (const answer of answers) {
      if (answer.status !== 200) expect(answer).toMatchObject({ status: 503, code: 'SHUTTING_DOWN' });
    }
    expect(code, stderr).toBe(0);
  }, 120_000);
});

describe('a client that never finishes its request', () => {
  /** Sends headers announcing a 500-byte body and 3 bytes of it; resolves to everything the server sends back. */
  const stall = (port: number) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.write(
      'POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"i',
    );
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    return new Promise<string>((resolve) => socket.on('close', () => resolve(answer)));
  };

  it('drains and exits 0 when SIGTERM comes twice, as coreutils timeout sends it, or on SIGHUP; Ctrl-C twice quits with 130', async () => {
    const first = await serveDigits(await tempDir(), []);
    first.child.kill('SIGTERM');
    await new Promise((wait) => setTimeout(wait, 10));
    first.child.kill('SIGTERM');
    const drained = await first.exited;
    expect(drained.code, drained.stderr).toBe(0);
    expect(drained.stderr).toMatch(/SIGTERM: draining in-flight requests/);

    // The terminal or SSH session closed: drained the same way.
    const hungUp = await serveDigits(await tempDir(), []);
    hungUp.child.kill('SIGHUP');
    const hungUpExit = await hungUp.exited;
    expect(hungUpExit.code, hungUpExit.stderr).toBe(0);
    expect(hungUpExit.stderr).toMatch(/SIGHUP: draining in-flight requests/);

    const second = await serveDigits(await tempDir(), []);
    // An open request keeps the drain going long enough for the second Ctrl-C to land in it.
    const port = Number(new URL(second.url).port);
    const stalled = stall(port);
    await new Promise((wait) => setTimeout(wait, 200));
    second.child.kill('SIGINT');
    await new Promise((wait) => setTimeout(wait, 200));
    second.child.kill('SIGINT');
    const quit = await second.exited;
    await stalled.catch(() => undefined);
    expect(quit.code).toBe(130);
    expect(quit.stderr).toMatch(/SIGINT again: quitting without draining/);
  }, 120_000);

  it('gets 408 REQUEST_TIMEOUT, and does not hold the drain after SIGTERM past the request timeout', async () => {
    const { child, exited, url } = await serveDigits(await tempDir(), ['--timeout', '1500']);
    const port = Number(new URL(url).port);
    const answer = await stall(port);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('"code":"REQUEST_TIMEOUT"');

    const stalled = stall(port);
    await new Promise((wait) => setTimeout(wait, 200));
    // The stalled client never finishes nor leaves: the server must end its connection itself and exit.
    child.kill('SIGTERM');
    const { code } = await exited;
    await stalled;
    expect(code).toBe(0);
  }, 120_000);
});
