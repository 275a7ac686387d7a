/**
 * Opening the server's port with errors a user can act on. Node reports a busy port or an unknown host as a stack
 * trace with an errno; here each becomes one CnnxError that names the port and host and says what to do.
 */
import { createServer as createNetServer } from 'node:net';
import { CnnxError } from '../common/index.js';
import { ServerCredentials } from '@grpc/grpc-js';
import type { CnnxServer } from './server.js';

export interface ListenAddress {
  /** TCP port, 0 to 65535 (0: the system picks a free one). */
  port: number;
  /** Address or host name to listen on, e.g. `127.0.0.1`, `0.0.0.0` (all interfaces), `::1`. */
  host: string;
  /** The option that sets this port, for messages (default: `--port`; `--grpc-port` for listenGrpc). */
  option?: string;
}

const unknownHost = ({ host }: ListenAddress) =>
  new CnnxError(
    `cannot listen on ${JSON.stringify(host)}: no such address or host name; ` +
      'use 127.0.0.1, 0.0.0.0 (all interfaces) or an address of this machine with --host',
    'BAD_ADDRESS',
  );

const notHere = ({ host }: ListenAddress) =>
  new CnnxError(
    `cannot listen on ${host}: it is not an address of this machine; ` +
      'use 127.0.0.1, 0.0.0.0 (all interfaces) or one of its own addresses with --host',
    'BAD_ADDRESS',
  );

/** Node's error code for a failed listen, to the error the user sees. */
const LISTEN_FAILURES: Readonly<Record<string, (address: ListenAddress) => CnnxError>> = Object.freeze({
  EADDRINUSE: ({ port, host, option = '--port' }: ListenAddress) =>
    new CnnxError(
      `port ${port} on ${host} is in use: stop the other server or pick another with ${option}`,
      'PORT_IN_USE',
    ),
  EACCES: ({ port, host, option = '--port' }: ListenAddress) =>
    new CnnxError(
      `port ${port} on ${host} needs privileges this process does not have: pick one above 1023 with ${option}`,
      'PORT_DENIED',
    ),
  ERR_SOCKET_BAD_PORT: ({ port, option = '--port' }: ListenAddress) =>
    new CnnxError(`port ${port} is out of range: pick one from 0 to 65535 with ${option}`, 'BAD_ADDRESS'),
  ENOTFOUND: unknownHost,
  EAI_AGAIN: unknownHost,
  EAI_FAIL: unknownHost,
  EADDRNOTAVAIL: notHere,
  EAFNOSUPPORT: notHere,
  EINVAL: notHere,
});

/** A failed listen as the CnnxError for its cause; an error of another kind comes back as it was. */
function listenError(error: unknown, address: ListenAddress): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const toUserError = typeof code === 'string' ? LISTEN_FAILURES[code] : undefined;
  return toUserError ? toUserError(address) : error;
}

/**
 * Starts `server` listening on `address`; resolves to its URL (`http://127.0.0.1:8080`). On failure the server
 * stays as it was (models loaded): the caller decides whether to retry elsewhere or close it.
 * @throws CnnxError PORT_IN_USE (another process has the port), PORT_DENIED (a privileged port), BAD_ADDRESS (an
 *   unknown host, an address this machine does not have, or a port outside 0-65535).
 */
export async function listen(server: Pick<CnnxServer, 'app'>, address: ListenAddress): Promise<string> {
  try {
    return await server.app.listen({ port: address.port, host: address.host });
  } catch (error) {
    throw listenError(error, address);
  }
}

/**
 * Checks that `port` on `host` can be opened now, by opening and closing it, so a command can refuse before
 * minutes of work (training) rather than after. With port 0 only the host is checked. Another process may still
 * take the port before the server opens it: `listen` reports that case the same way.
 * @throws CnnxError PORT_IN_USE, PORT_DENIED or BAD_ADDRESS, as `listen`.
 */
export async function checkPortFree(port: number, host: string, option = '--port'): Promise<void> {
  const probe = createNetServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ port, host, exclusive: true }, resolve);
    });
  } catch (error) {
    throw listenError(error, { port, host, option });
  }
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/**
 * Binds the server's gRPC service to `address`; resolves to the `host:port` target clients dial (the port the
 * system picked, for port 0).
 * @throws CnnxError PORT_IN_USE, PORT_DENIED or BAD_ADDRESS, as `listen`.
 */
export async function listenGrpc(server: Pick<CnnxServer, 'grpc'>, given: ListenAddress): Promise<string> {
  const address = { option: '--grpc-port', ...given };
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  if (!Number.isSafeInteger(address.port) || address.port < 0 || address.port > 65535) {
    throw listenError({ code: 'ERR_SOCKET_BAD_PORT' }, address);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.grpc.bindAsync(`${host}:${address.port}`, ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  ).catch((error: Error) => {
    // grpc-js reports a failed bind as one message that carries Node's errno code.
    const code = /\b(E[A-Z_]+)\b/.exec(error.message)?.[1] ?? 'EINVAL';
    throw listenError({ code }, address);
  });
  return `${host}:${port}`;
}

/**
 * Refuses one port for both HTTP and gRPC (0, a free port each, excepted), before any work: the second listen would
 * fail only after the models loaded (or a demo trained), with a grpc-js line of its own.
 * @throws CnnxError OPTION_CONFLICT.
 */
export function checkDistinctPorts(port: number, grpcPort: number | undefined): void {
  if (grpcPort === undefined || grpcPort !== port || port === 0) return;
  throw new CnnxError(
    `--grpc-port ${grpcPort} is the HTTP port too (--port): give gRPC a port of its own, e.g. --grpc-port ${port + 1}`,
    'OPTION_CONFLICT',
  );
}
