/**
 * Guards that stop a run whose loss has gone wrong, before it spends hours on nothing: a non-finite loss
 * (overflow), and a loss that stays far above where training started (a learning rate so high that the
 * network only flips between confident wrong answers, without ever overflowing). Both leave the best weights
 * and the last checkpoint as they were, and say what to try.
 */
import { CnnxError } from '../common/index.js';
import type { BatchLogs, TrainingCallback, TrainingState } from './callbacks.js';
import { runPath } from './run-dir.js';

export class NonFiniteLossError extends CnnxError {
  override name = 'NonFiniteLossError';
}

export class DivergedLossError extends CnnxError {
  override name = 'DivergedLossError';
}

/** Consecutive batches the loss must stay above the divergence threshold before the run stops. */
const DIVERGENCE_PATIENCE = 20;
/** The fewest, however short the epochs: a single spike is not divergence. */
const MIN_PATIENCE = 4;

/**
 * The divergence threshold: 3 ln(classes), three times the loss of a network that guesses uniformly (where
 * Xavier-initialised training starts). A learning run rises above it for a batch or two at most.
 */
function divergenceThreshold(classes: number): number {
  return 3 * Math.log(classes);
}

/** What was kept and what to do next, for the guards' messages. */
function keptAndAdvice(state: TrainingState): string {
  const { position, config } = state;
  return (
    (position.bestAccuracy >= 0
      ? `The best weights (epoch ${position.bestEpoch}, test acc ${position.bestAccuracy.toFixed(4)}) are kept in ${runPath(state.runDir, 'best')}. `
      : 'No epoch completed, so no best weights were written. ') +
    `Start a new run with a lower --lr (now ${config.lr}) and another --out.`
  );
}

/** Stops with NON_FINITE_LOSS when a batch's loss is NaN or infinite. */
export function nonFiniteLossGuard(): TrainingCallback {
  return {
    onBatchEnd(state: TrainingState, { loss, epoch, batch }: BatchLogs) {
      if (Number.isFinite(loss)) return;
      throw new NonFiniteLossError(
        `loss became ${loss} at epoch ${epoch}, batch ${batch}; stopped. ${keptAndAdvice(state)}`,
        'NON_FINITE_LOSS',
      );
    },
  };
}

/**
 * Stops with LOSS_DIVERGED when the batch loss has been above `divergenceThreshold(classes)` for `patience`
 * consecutive batches, or for two whole epochs or half the run's batches where those are fewer (a small dataset's
 * run may have fewer batches in all than `patience`), but at least MIN_PATIENCE batches. The count starts again on
 * resume.
 */
export function divergenceGuard(patience = DIVERGENCE_PATIENCE): TrainingCallback {
  let streak = 0;
  return {
    onBatchEnd(state: TrainingState, { loss, epoch, batch }: BatchLogs) {
      const threshold = divergenceThreshold(state.spec.classes);
      streak = loss > threshold ? streak + 1 : 0;
      // The run's first batches are below the threshold (training starts there), so a run shorter than the
      // patience counts at most half of its batches.
      const half = Math.floor((state.batchesPerEpoch * state.config.epochs) / 2);
      const batches = Math.min(patience, Math.max(Math.min(2 * state.batchesPerEpoch, half), MIN_PATIENCE));
      if (streak < batches) return;
      throw new DivergedLossError(
        `training diverged: the loss stayed above ${threshold.toFixed(2)} (3 ln ${state.spec.classes}) for ` +
          `${batches} batches, up to epoch ${epoch}, batch ${batch} (loss ${loss.toPrecision(4)}); stopped. ${keptAndAdvice(state)}`,
        'LOSS_DIVERGED',
      );
    },
  };
}
