/** What `cnnx train` tells a user to do after a training worker failed, by what failed. */
import { describe, expect, it } from 'vitest';
import { CnnxError, type ErrorCode } from '../../src/common/index.js';
import { getModelSpec, parameterSpecs } from '../../src/models/index.js';
import { mostWorkers } from '../../src/train/replicas.js';
import { continuation } from '../../src/train/train.js';

const parameters = parameterSpecs(getModelSpec('lenet5'));
const most = mostWorkers(parameters, 'sgd');
const failure = (cause?: ErrorCode) =>
  new CnnxError(
    'training worker 2 of 2 failed',
    'TRAINING_WORKER_FAILED',
    cause ? { cause: new CnnxError('', cause) } : {},
  );
const advice = (cause: ErrorCode | undefined, workers: number, batchSize: number) =>
  continuation(failure(cause), { workers, batchSize, optimizer: 'sgd' }, parameters, 'runs/a');

describe('the advice a failed run ends with', () => {
  it('is to resume as it was, when the failure was not for memory', () => {
    expect(advice(undefined, 2, 256)).toBe('continue with: cnnx train --resume runs/a');
    expect(advice('BACKEND_FAILED', 2, 256)).toBe('continue with: cnnx train --resume runs/a');
  });

  it('is to resume with twice the workers after running out of memory, as far as this machine allows', () => {
    expect(advice('OUT_OF_MEMORY', 2, 256)).toBe(
      `continue with more workers, each taking a smaller share of every batch: cnnx train --resume runs/a --workers ${Math.min(4, most)}`,
    );
    expect(advice('OUT_OF_MEMORY', most - 1, 256)).toMatch(new RegExp(`--resume runs/a --workers ${most}$`));
    // No more workers than examples in a batch.
    expect(advice('OUT_OF_MEMORY', 2, 3)).toMatch(/--resume runs\/a --workers 3$/);
  });

  it('is a smaller batch in a new run when this machine runs no more workers', () => {
    expect(advice('OUT_OF_MEMORY', most, 256)).toBe(
      `this machine runs at most ${most} workers, so more cannot split the batch further: start a new run with a smaller --batch-size`,
    );
  });

  it('is a GPU when every worker already takes a single example', () => {
    expect(advice('OUT_OF_MEMORY', 4, 4)).toMatch(/^every worker already takes a single example: .*--backend webgpu/);
  });
});
