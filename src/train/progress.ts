/** Live progress of training: a bar per epoch on a terminal (like the notebook's tqdm), one line per epoch elsewhere. */
import cliProgress from 'cli-progress';
import type { BatchLogs, TrainingCallback, TrainingState } from './callbacks.js';
import type { EpochMetrics } from './run-dir.js';

export interface ProgressReporter {
  startEpoch(epoch: number, epochs: number, batches: number, startAt: number): void;
  step(batchesDone: number, loss: number, examplesPerSec: number): void;
  endEpoch(metrics: EpochMetrics): void;
  log(message: string): void;
  /** What the run gives when it ends (its figures and files): the command's output, not its progress. */
  result(message: string): void;
}

/**
 * A rate as people read it: whole numbers from 10 up, two significant digits below (AlexNet's 4.9, a tiny run's
 * 0.068).
 */
export const formatRate = (perSec: number): string =>
  perSec >= 10 || perSec === 0 ? String(Math.round(perSec)) : perSec.toPrecision(2);

const formatEpoch = (m: EpochMetrics) =>
  `epoch ${m.epoch}: loss ${m.loss.toFixed(4)}, train acc ${m.trainAccuracy.toFixed(4)}, ` +
  `${m.valAccuracy !== undefined ? `val acc ${m.valAccuracy.toFixed(4)}` : `test acc ${(m.testAccuracy ?? NaN).toFixed(4)}`}` +
  `${m.best ? ' (best)' : ''}, ${formatRate(m.examplesPerSec)} examples/s, ${m.seconds.toFixed(1)} s`;

/**
 * Progress on `stream` (stderr: a bar on a terminal, the epochs' lines and notes), and the result on `out` (stdout),
 * so that `cnnx train > train.log` keeps the figures.
 */
export function consoleProgress(
  stream: NodeJS.WriteStream = process.stderr,
  out: (line: string) => void = (line) => console.log(line),
): ProgressReporter {
  let bar: cliProgress.SingleBar | undefined;
  const tty = Boolean(stream.isTTY);
  return {
    startEpoch(epoch, epochs, batches, startAt) {
      if (!tty) return;
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: `epoch ${epoch}/${epochs} {bar} {value}/{total} | loss {loss} | {speed} ex/s | eta {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(batches, startAt, { loss: '-', speed: '-' });
    },
    step(batchesDone, loss, examplesPerSec) {
      bar?.update(batchesDone, { loss: loss.toFixed(4), speed: formatRate(examplesPerSec) });
    },
    endEpoch(metrics) {
      bar?.stop();
      bar = undefined;
      stream.write(`${formatEpoch(metrics)}\n`);
    },
    log(message) {
      bar?.stop();
      bar = undefined;
      stream.write(`${message}\n`);
    },
    result(message) {
      bar?.stop();
      bar = undefined;
      out(message);
    },
  };
}

export const silentProgress: ProgressReporter = {
  startEpoch() {},
  step() {},
  endEpoch() {},
  log() {},
  result() {},
};

/** The reporter driven as a training callback. */
export function progressCallback(progress: ProgressReporter): TrainingCallback {
  return {
    onEpochBegin(state: TrainingState, epoch: number, startBatch: number) {
      progress.startEpoch(epoch, state.config.epochs, state.batchesPerEpoch, startBatch);
    },
    onBatchEnd(_state: TrainingState, logs: BatchLogs) {
      progress.step(logs.batch, logs.epochLoss, logs.examplesPerSec);
    },
    onEpochEnd(_state: TrainingState, metrics: EpochMetrics) {
      progress.endEpoch(metrics);
    },
    onSaveDue(state: TrainingState) {
      // After the checkpoint callback's save: a long run says now and then that its work is safe.
      const { epoch, batch } = state.position;
      progress.log(`checkpoint saved: epoch ${epoch + 1}, batch ${batch} of ${state.batchesPerEpoch}`);
    },
  };
}
