/**
 * `cnnx serve` from this checkout (it runs dist/: `npm run build` first) in a process of its own, for the benches
 * that load it: started with `args` after `serve`, resolved once it prints its "cnnx serving ... at <url>" line.
 * The server is stopped (SIGTERM) when the bench exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ServeProcess {
  child: ChildProcess;
  /** The REST address it printed, e.g. http://127.0.0.1:8797. */
  base: string;
  /** Sends SIGTERM (the server drains and exits). */
  stop(): void;
}

/**
 * @param args `cnnx serve` flags.
 * @param nodeArgs Node.js flags before `bin/cnnx.js` (e.g. `--cpu-prof`).
 * @throws Error when the server exits before it serves.
 */
export async function startServe(
  args: string[],
  { nodeArgs = [] }: { nodeArgs?: string[] } = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...nodeArgs, 'bin/cnnx.js', 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = () => void child.kill('SIGTERM');
  process.on('exit', stop);
  const base = await new Promise<string>((resolve, reject) => {
    let seen = '';
    child.stdout.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString()).slice(-4096);
      const match = /cnnx serving .* at (http:\/\/\S+)/.exec(seen);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`cnnx serve exited with ${code} before it served`)));
  });
  child.stdout.resume();
  return { child, base, stop };
}

/** Server flags from an environment variable of space-separated words (BENCH_SERVER_ARGS and the like). */
export const wordsOf = (value: string | undefined): string[] => (value ?? '').split(' ').filter(Boolean);
