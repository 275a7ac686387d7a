/**
 * `cnnx train` as a real process: Ctrl-C, SIGTERM and SIGHUP stop it mid-epoch within moments, with a checkpoint that
 * `--resume` continues from and the shell's exit codes (130, 143); a kill -9 at any moment leaves a run whose
 * metrics and checkpoint agree once resumed.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/common/index.js';
import { readMetrics, runPath } from '../../src/train/index.js';
import { spawnCnnx } from '../helpers/spawn-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A `cnnx` child process; `output` waits until stderr matches, `exit` resolves with the code and time. */
function cnnx(args: string[]) {
  const child = spawnCnnx(args, {
    cwd: ROOT,
    env: { ...process.env, CNNX_OFFLINE: '1' },
  });
  child.stdout.resume();
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    waiters.forEach((check) => check());
  });
  const exit = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const output = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = stderr.match(pattern);
        if (match) resolve(match);
      };
      waiters.push(check);
      check();
      void exit.then(() => reject(new Error(`cnnx exited before printing ${pattern}:\n${stderr}`)));
    });
  return { child, exit, output, stderr: () => stderr };
}

async function checkpointOf(dir: string) {
  const { metadata } = await readSafetensors(runPath(dir, 'checkpoint'));
  return {
    position: JSON.parse(metadata.position!) as { epoch: number; batch: number },
    metrics: JSON.parse(metadata.metrics!) as { epoch: number }[],
  };
}

describe('cnnx train as a process', () => {
  it('stops mid-epoch on SIGINT (exit 130), SIGTERM (exit 143) and SIGHUP (129) with a checkpoint --resume continues', async () => {
    const dir = join(await tempDir(), 'run');
    // All 60,000 training images in batches of 64: an epoch takes a minute or more here, so a stop within
    // 15 s can only come from the signal, not from the end of the epoch.
    const first = cnnx([
      'train',
      '--model',
      'lenet5',
      '--backend',
      'wasm',
      '--batch-size',
      '64',
      '--epochs',
      '2',
      '--test-limit',
      '500',
      '--out',
      dir,
    ]);
    await first.output(/^data: /m);
    await sleep(1500);
    const sent = performance.now();
    first.child.kill('SIGINT');
    const stopped = await first.exit;
    expect(stopped.code, first.stderr()).toBe(130);
    expect(stopped.at - sent).toBeLessThan(15_000);
    expect(first.stderr()).toMatch(/interrupted \(SIGINT\): checkpoint saved .*continue with: cnnx train --resume /);
    const saved = await checkpointOf(dir);
    expect(saved.position.epoch).toBe(0);
    expect(await readMetrics(dir)).toEqual([]);

    const resumed = cnnx(['train', '--resume', dir]);
    const batch = saved.position.batch;
    await resumed.output(
      new RegExp(batch ? `^resuming .* at epoch 1, batch ${batch}$` : '^resuming .* after epoch 0$', 'm'),
    );
    await sleep(1500);
    const sentAgain = performance.now();
    resumed.child.kill('SIGTERM');
    const stoppedAgain = await resumed.exit;
    expect(stoppedAgain.code, resumed.stderr()).toBe(143);
    expect(stoppedAgain.at - sentAgain).toBeLessThan(15_000);
    expect(resumed.stderr()).toMatch(/interrupted \(SIGTERM\): checkpoint saved/);
    const savedAgain = await checkpointOf(dir);
    expect(savedAgain.position.epoch).toBe(0);
    expect(savedAgain.position.batch).toBeGreaterThanOrEqual(batch);

    // The terminal closed (SIGHUP): the same clean stop, exit 129, and the folder free for the next resume.
    const hungUp = cnnx(['train', '--resume', dir]);
    await hungUp.output(/^resuming /m);
    await sleep(1500);
    hungUp.child.kill('SIGHUP');
    expect((await hungUp.exit).code, hungUp.stderr()).toBe(129);
    expect(hungUp.stderr()).toMatch(/interrupted \(SIGHUP\): checkpoint saved/);
    expect((await checkpointOf(dir)).position.batch).toBeGreaterThanOrEqual(savedAgain.position.batch);
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
  }, 240_000);

  it('leaves metrics and checkpoint in agreement after kill -9 at a random moment, once resumed', async () => {
    const root = await tempDir();
    for (const attempt of [1, 2]) {
      const dir = join(root, `run-${attempt}`);
      // Short epochs, so that checkpoints and metrics are written often and the kill can land anywhere.
      const run = cnnx([
        'train',
        '--model',
        'lenet5',
        '--backend',
        'wasm',
        '--limit',
        '256',
        '--batch-size',
        '32',
        '--test-limit',
        '64',
        '--epochs',
        '1000',
        '--out',
        dir,
      ]);
      await run.output(/^epoch 2: /m);
      await sleep(Math.random() * 1000);
      run.child.kill('SIGKILL');
      expect((await run.exit).signal).toBe('SIGKILL');

      const { metrics: saved } = await checkpointOf(dir);
      const written = await readMetrics(dir);
      expect(written.length).toBeGreaterThanOrEqual(saved.length - 1);
      expect(written).toEqual(saved.slice(0, written.length));

      const epochs = saved.length + 1;
      const resumed = cnnx(['train', '--resume', dir, '--epochs', String(epochs)]);
      expect((await resumed.exit).code, resumed.stderr()).toBe(0);
      const metrics = await readMetrics(dir);
      expect(metrics.map((m) => m.epoch)).toEqual(Array.from({ length: epochs }, (_, i) => i + 1));
      expect((await checkpointOf(dir)).metrics).toEqual(metrics);
      expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
    }
  }, 240_000);
});
