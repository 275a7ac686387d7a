/** The CLI's `main` in this process, its output captured: for tests of options that fail or finish quickly. */
import { vi } from 'vitest';
import { main } from '../../src/cli/index.js';

/** Runs `cnnx <args>`; resolves to the exit code and what it printed. */
export async function cnnxInProcess(...args: string[]) {
  const errors: string[] = [];
  const lines: string[] = [];
  vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
  vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    errors.push(String(chunk));
    return true;
  });
  process.exitCode = undefined; // what a command before set (a failed picture of predict) is not this one's
  const code = await main(['node', 'cnnx', ...args]);
  process.exitCode = undefined;
  vi.restoreAllMocks();
  return { code, stderr: errors.join('\n'), stdout: lines.join('\n') };
}
