#!/usr/bin/env node
// Entry point of the `cnnx` command: runs the compiled CLI in dist/ (built by `npm run build`, which
// `npm install` runs through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(entry)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  console.error(`cnnx: the command is not built (no ${fileURLToPath(entry)}): run \`npm run build\` in ${root}`);
  process.exit(1);
}
// `cnnx ... | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
const { main } = await import(entry.href);
const code = await main(process.argv);
// A command stopped by a signal (exit 128 + SIGHUP, SIGINT or SIGTERM) has kept what it keeps: work it leaves running
// (pictures still being decoded) ends with it, rather than hold the process for seconds after the stop.
if (code === 129 || code === 130 || code === 143) process.exit(code);
process.exitCode = code;
