/**
 * `cnnx serve` from this checkout (it runs dist/: `npm run build` first) in a process of its own, for the benches
 * that load it: started with `args` after `serve`, resolved once it prints its "cnnx serving ... at <url>" line (a
 * server prints it once every model is loaded, and exits when one cannot be). Its stdout is read for that line and
 * then discarded. The server is stopped (SIGTERM) when the bench exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** How long a server may take to print its banner (s): loading models and their first runs. */
const START_TIMEOUT_S = 120;

export interface ServeProcess {
  child: ChildProcess;
  /** The REST address it printed, e.g. http://127.0.0.1:8797. */
  base: string;
  /** Sends SIGTERM (the server drains and exits); resolves once it has exited (at once if it already had). */
  stop(): Promise<void>;
}

/**
 * @param args `cnnx serve` flags.
 * @param nodeArgs Node.js flags before `bin/cnnx.js` (e.g. `--cpu-prof`).
 * @throws Error when the server exits before it serves, or has not served within START_TIMEOUT_S.
 */
export async function startServe(
  args: string[],
  { nodeArgs = [] }: { nodeArgs?: string[] } = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...nodeArgs, 'bin/cnnx.js', 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const stop = async () => {
    if (exited()) return;
    const exit = once(child, 'exit');
    child.kill('SIGTERM');
    await exit;
  };
  process.on('exit', () => child.kill('SIGTERM'));
  let seen = '';
  let onData: (chunk: Buffer) => void = () => {};
  try {
    const base = await new Promise<string>((resolve, reject) => {
      onData = (chunk) => {
        seen = (seen + chunk.toString()).slice(-4096);
        const match = /cnnx serving .* at (http:\/\/\S+)(?: and gRPC \S+)?\r?\n/.exec(seen);
        if (match) resolve(match[1]!);
      };
      child.stdout.on('data', onData);
      child.once('exit', (code) => reject(new Error(`cnnx serve exited with ${code} before it served`)));
      setTimeout(
        () => reject(new Error(`cnnx serve did not serve within ${START_TIMEOUT_S} s`)),
        START_TIMEOUT_S * 1e3,
      ).unref();
    });
    return { child, base, stop };
  } catch (error) {
    await stop();
    throw error;
  } finally {
    child.stdout.off('data', onData);
    child.stdout.resume();
  }
}

/** Server flags from an environment variable of space-separated words (BENCH_SERVER_ARGS and the like). */
export const wordsOf = (value: string | undefined): string[] => (value ?? '').split(' ').filter(Boolean);
