/** What a run leaves a person to read: its summary (the run's own figures, not averages that weigh a short epoch as much as a long one) and its curves. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TrainingState } from '../../src/train/callbacks.js';
import { writeCurves } from '../../src/train/plot.js';
import { silentProgress } from '../../src/train/progress.js';
import { summaryCallback } from '../../src/train/run-callbacks.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('summary.json', () => {
  it('gives the examples a second of the whole run: the harmonic mean of equal epochs, not their mean', async () => {
    const runDir = await tempDir('cnnx-summary-');
    const epoch = (n: number, examplesPerSec: number, seconds: number) => ({
      epoch: n,
      loss: 0.1,
      trainAccuracy: 0.9,
      testAccuracy: 0.9,
      lr: 0.1,
      examplesPerSec,
      seconds,
      best: n === 1,
    });
    // 6,000 examples an epoch: one epoch at 6,000 a second (1 s), one on a slower backend at 60 (100 s).
    const state = {
      runDir,
      history: [epoch(1, 6000, 1), epoch(2, 60, 100)],
      position: { bestEpoch: 1, bestAccuracy: 0.9 },
      stopTraining: false,
      spec: { name: 'lenet5' },
      dataset: { name: 'mnist', source: 'test' },
      backend: { device: 'cpu' },
      workers: 1,
      selectOn: 'test',
    } as unknown as TrainingState;
    const lines: string[] = [];
    await summaryCallback({ ...silentProgress, result: (line: string) => lines.push(line) }).onTrainEnd!(state);
    const summary = JSON.parse(await readFile(join(runDir, 'summary.json'), 'utf8')) as { examplesPerSec: number };
    expect(summary.examplesPerSec).toBeCloseTo(12000 / 101, 6);
    expect(lines.join('\n')).toMatch(/\n119 examples\/s on cpu/);
  });
});

describe('curves.svg', () => {
  it('puts the loss on a log scale of its own, so a huge loss leaves the accuracies readable, and counts whole epochs', async () => {
    const dir = await tempDir('cnnx-curves-');
    const file = join(dir, 'curves.svg');
    const m = (epoch: number, loss: number, accuracy: number) => ({
      epoch,
      loss,
      trainAccuracy: accuracy,
      testAccuracy: accuracy,
      lr: 0.1,
      examplesPerSec: 1,
      seconds: 1,
      best: false,
    });
    await writeCurves(file, 'lenet5 on mnist', [m(1, 0.5, 0.9), m(2, 4.5e10, 0.1)]);
    const svg = await readFile(file, 'utf8');
    expect(svg).toMatch(/>loss \(log scale\)</);
    expect(svg).toMatch(/>accuracy</);
    // The accuracy axis runs from 0 to 1 whatever the loss.
    expect(svg).toMatch(/>1\.0</);
    await writeCurves(file, 'one epoch', [m(1, 0.3, 0.9)]);
    expect(await readFile(file, 'utf8')).not.toMatch(/1\.0000/);
  });
});
