/**
 * The cnnx CLI in a process of its own, run from the TypeScript sources (so a test sees src/ whether or not dist/
 * is built), for tests that send it signals, kill it, or talk to its server.
 */
import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));

/** Spawns `cnnx ...args` with piped stdio (stdin too, so `child.stdin` exists). */
export function spawnCnnx(args: string[], options: Omit<SpawnOptions, 'stdio'> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { ...options, stdio: 'pipe' });
}
