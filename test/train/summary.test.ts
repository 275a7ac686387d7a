/** The run's summary: its figures are the run's own, not averages that weigh a short epoch as much as a long one. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TrainingState } from '../../src/train/callbacks.js';
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
    await summaryCallback({ log: (line: string) => lines.push(line) } as never).onTrainEnd!(state);
    const summary = JSON.parse(await readFile(join(runDir, 'summary.json'), 'utf8')) as { examplesPerSec: number };
    expect(summary.examplesPerSec).toBeCloseTo(12000 / 101, 6);
    expect(lines.join('\n')).toMatch(/\n119 examples\/s on cpu/);
  });
});
