/**
 * `npx tsx bench/user-data.ts [--count N] [--epochs N]`: what training on your own pictures costs next to the same
 * images as IDX files. The first N MNIST training images (and N/6 test images) are written as a folder of PNGs and as
 * a CSV; each is loaded (decoded once) and trained on for a few epochs of lenet5 with the same seed, and the time of
 * the load and of every epoch is reported. After the load, an epoch on a folder or a CSV should cost what an epoch on
 * IDX files does: the pictures are decoded once, not every epoch; a second load of the folder reads the decoded
 * pictures from the cache. One JSON line at the end.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { limitSplit, loadDataset, loadUserDataset, type Dataset, type Split } from '../src/data/index.js';
import { readMetrics, silentProgress, train, type TrainConfig } from '../src/train/index.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '12000' }, epochs: { type: 'string', default: '2' } },
});
const count = Number(values.count);
const epochs = Number(values.epochs);
const root = join(tmpdir(), `cnnx-bench-user-data-${process.pid}`);

async function writeFolder(dir: string, split: Split): Promise<void> {
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < split.count; i++) {
    const classDir = join(dir, String(split.labels[i]));
    const pixels = split.pixels.subarray(i * 784, (i + 1) * 784);
    jobs.push(
      mkdir(classDir, { recursive: true })
        .then(() =>
          sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
            .png()
            .toBuffer(),
        )
        .then((png) => writeFile(join(classDir, `${String(i).padStart(6, '0')}.png`), png)),
    );
    if (jobs.length >= 64) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
}

async function writeCsv(file: string, split: Split): Promise<void> {
  const rows = Array.from({ length: split.count }, (_, i) =>
    [split.labels[i], ...split.pixels.subarray(i * 784, (i + 1) * 784)].join(','),
  );
  await writeFile(file, `${rows.join('\n')}\n`);
}

const seconds = (start: number) => (performance.now() - start) / 1000;

async function timeTraining(name: string, load: () => Promise<Dataset>, data?: TrainConfig['data']) {
  const loadStart = performance.now();
  const dataset = await load();
  const loadSeconds = seconds(loadStart);
  const config: TrainConfig = {
    model: 'lenet5',
    dataset: name,
    ...(data ? { data } : {}),
    epochs,
    batchSize: 256,
    lr: 0.9,
    optimizer: 'sgd',
    schedule: 'constant',
    seed: 1,
    backend: 'wasm',
    selectOn: 'test',
    limit: count,
  };
  const runDir = join(root, `run-${name}`);
  await train({ config, runDir, progress: silentProgress, dataset });
  const perEpoch = (await readMetrics(runDir)).map((m) => Number(m.seconds.toFixed(2)));
  console.log(`${name.padEnd(7)} load ${loadSeconds.toFixed(2)} s, epochs ${perEpoch.map((s) => `${s} s`).join(', ')}`);
  return { source: name, loadSeconds: Number(loadSeconds.toFixed(2)), epochSeconds: perEpoch };
}

/** The time of a load alone (the folder again: its decoded pictures come from the cache). */
async function timeLoad(name: string, load: () => Promise<Dataset>) {
  const start = performance.now();
  await load();
  const loadSeconds = seconds(start);
  console.log(`${name.padEnd(7)} load ${loadSeconds.toFixed(2)} s (the folder again, from the decoded-pictures cache)`);
  return { source: name, loadSeconds: Number(loadSeconds.toFixed(2)), epochSeconds: [] as number[] };
}

await mkdir(root, { recursive: true });
try {
  const mnist = await loadDataset('mnist');
  const trainPart = limitSplit(mnist.train, count);
  const testPart = limitSplit(mnist.test, Math.ceil(count / 6));
  console.log(`writing ${trainPart.count} + ${testPart.count} MNIST images as PNG files and as CSV in ${root}`);
  await writeFolder(join(root, 'pics', 'train'), trainPart);
  await writeFolder(join(root, 'pics', 'test'), testPart);
  await writeCsv(join(root, 'digits.csv'), trainPart);
  await writeCsv(join(root, 'digits-test.csv'), testPart);
  const idx: Dataset = { ...mnist, train: trainPart, test: testPart };
  const results = [
    await timeTraining('idx', () => loadDataset('mnist').then(() => idx)),
    await timeTraining('folder', () => loadUserDataset(join(root, 'pics'), { dataDir: join(root, 'cache') }), {
      path: join(root, 'pics'),
    }),
    await timeLoad('cached', () => loadUserDataset(join(root, 'pics'), { dataDir: join(root, 'cache') })),
    await timeTraining(
      'csv',
      () => loadUserDataset(join(root, 'digits.csv'), { testPath: join(root, 'digits-test.csv') }),
      { path: join(root, 'digits.csv'), testPath: join(root, 'digits-test.csv') },
    ),
  ];
  console.log(JSON.stringify({ count, epochs, model: 'lenet5', batchSize: 256, backend: 'wasm', results }));
} finally {
  await rm(root, { recursive: true, force: true });
}
