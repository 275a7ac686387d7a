/**
 * The installed command as a user runs it: from any folder, through `npm start`, with a busy port. These spawn the
 * compiled CLI (bin/cnnx.js runs dist/, which `npm install` and `npm test` build).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CNNX = join(ROOT, 'bin', 'cnnx.js');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Starts `command args` in `cwd`; resolves once stdout has printed an http:// address. */
async function startServing(command: string, args: string[], cwd: string) {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  const url = await new Promise<string>((resolveUrl, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /(http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolveUrl(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code} before serving:\n${output}`)));
  });
  return { child, url, output: () => output };
}

async function run(args: string[], cwd: string) {
  const child = spawn(process.execPath, [CNNX, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}

describe('the cnnx package', () => {
  it('answers --version with the package version', async () => {
    const { code, stdout } = await run(['--version'], ROOT);
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('serves the web page and the committed models from any folder', async () => {
    const elsewhere = await tempDir();
    const model = join(ROOT, 'models', 'lenet5-relu-mnist.onnx');
    const { url } = await startServing(
      process.execPath,
      [CNNX, 'serve', '--model', model, '--port', '0', '--ep', 'cpu'],
      elsewhere,
    );
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/<script[^>]+src="\/assets\//);
  }, 120_000);

  it('starts with one short line per model and no native warnings (execution provider auto)', async () => {
    const model = join(ROOT, 'models', 'lenet5-relu-mnist.onnx');
    const { child, output } = await startServing(
      process.execPath,
      [CNNX, 'serve', '--model', model, '--port', '0'],
      ROOT,
    );
    child.kill('SIGTERM');
    await once(child, 'exit');
    const lines = output().trim().split('\n');
    const ready = lines.filter((line) => line.startsWith('model lenet5-relu-mnist ready on '));
    expect(ready).toHaveLength(1);
    expect(ready[0]!.length, ready[0]).toBeLessThanOrEqual(260);
    expect(output()).not.toMatch(/Warning:|dawn|\n\s+at /);
  }, 120_000);

  it('refuses a busy port at once, before the demo trains anything', async () => {
    const blocker = createServer();
    await new Promise<void>((listening) => blocker.listen(0, '127.0.0.1', listening));
    const { port } = blocker.address() as AddressInfo;
    try {
      const cwd = await tempDir();
      const { code, stderr } = await run(['demo', '--port', String(port), '--epochs', '1'], cwd);
      expect(code).not.toBe(0);
      expect(stderr.trim()).toBe(
        `cnnx: port ${port} on 127.0.0.1 is in use: stop the other server or pick another with --port`,
      );
      expect(existsSync(join(cwd, 'runs'))).toBe(false);
    } finally {
      blocker.close();
    }
  }, 120_000);

  it.each([
    [['serve', '--modle', 'x'], /^error: unknown option '--modle'\n\(Did you mean --model\?\)$/],
    [['serve'], /^error: required option '-m, --model <file\|dir>' not specified$/],
    [
      ['serve', '--model', 'x.onnx', '--port', '70000'],
      /expected a port from 0 to 65535 \(0 picks a free one\), got "70000"/,
    ],
    [['demo', '--epochs', '0'], /expected a positive integer, got "0"/],
  ])('answers %j in one line, naming the mistake', async (args, message) => {
    const { code, stderr } = await run(args, ROOT);
    expect(code).not.toBe(0);
    expect(stderr.trim()).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('stops the server when npm start gets SIGTERM (as docker and systemd send it)', async () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const { child, url } = await startServing(npm, ['start', '--', '--skip-train', '--port', '0'], ROOT);
    expect((await fetch(`${url}/v2/health/live`)).status).toBe(200);
    child.kill('SIGTERM');
    await once(child, 'exit');
    const deadline = Date.now() + 30_000;
    let stillServing = true;
    while (stillServing && Date.now() < deadline) {
      stillServing = await fetch(`${url}/v2/health/live`).then(
        () => true,
        () => false,
      );
      if (stillServing) await new Promise((wait) => setTimeout(wait, 250));
    }
    expect(stillServing).toBe(false);
  }, 120_000);

  it('leaves no run folder behind when the demo is refused', async () => {
    const cwd = await tempDir();
    await run(['demo', '--port', '70000'], cwd);
    expect(await readdir(cwd)).toEqual([]);
  });
});
