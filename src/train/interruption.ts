/**
 * Stopping on request (Ctrl-C, SIGTERM, a caller's AbortController): the signal sets `stopTraining`, the loop
 * stops after the batch in progress (or between evaluation batches), the checkpoint callback saves where it
 * stood, and this callback says how to continue. The abort reason names the signal when a signal caused it.
 */
import type { TrainingCallback, TrainingState } from './callbacks.js';
import type { ProgressReporter } from './progress.js';

/** The abort reason as a stop reason: a string reason (such as `SIGINT`) as it is, anything else as `aborted`. */
function reasonOf(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'aborted';
}

/** Stops training when `signal` aborts; must come after the checkpoint callback, whose save it reports. */
export function interruptionCallback(signal: AbortSignal, progress: ProgressReporter): TrainingCallback {
  let onAbort: (() => void) | undefined;
  return {
    onTrainBegin(state: TrainingState) {
      onAbort = () => {
        state.stopTraining = true;
        state.stopReason = reasonOf(signal);
        // Through the progress reporter, which takes its bar down first (a line written under a bar is overdrawn).
        const again = state.stopReason.startsWith('SIG') ? ` (${state.stopReason} again quits at once)` : '';
        progress.log(`${state.stopReason}: stopping after the steps under way and saving a checkpoint${again}`);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    },
    onTrainEnd(state: TrainingState) {
      if (onAbort) signal.removeEventListener('abort', onAbort);
      if (!state.stopTraining || state.failure) return; // a failure's error says how to continue
      const { epoch, batch } = state.position;
      const where =
        batch === 0
          ? `after epoch ${epoch}`
          : batch === state.batchesPerEpoch
            ? `after the training batches of epoch ${epoch + 1} (its evaluation will run again)`
            : `at epoch ${epoch + 1}, batch ${batch}`;
      progress.log(
        `interrupted (${state.stopReason ?? 'stopped'}): checkpoint saved ${where}; continue with: cnnx train --resume ${state.runDir}`,
      );
    },
  };
}
