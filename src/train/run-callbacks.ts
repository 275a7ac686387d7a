/**
 * The callbacks that write the run directory, in the order they must run after an epoch: best weights, then
 * the checkpoint (the single source of truth), then the files derived from it (metrics, curves), and the summary
 * at the end. A kill between any two writes leaves a run that `--resume` repairs.
 */
import { encodeSafetensors, readSafetensors, writeFileAtomic } from '../common/index.js';
import type { TrainingCallback, TrainingState } from './callbacks.js';
import { saveCheckpoint, saveWeights } from './checkpoint.js';
import { writeCurves } from './plot.js';
import { formatRate, type ProgressReporter } from './progress.js';
import { runPath, writeMetrics, type EpochMetrics } from './run-dir.js';

/**
 * Writes best.safetensors after every epoch that beats the previous best (validation or test) accuracy, and once
 * more at the end of a run that chose on validation: the same weights, with the chosen weights' test accuracy added
 * to their metadata.
 */
export function bestWeightsCallback(): TrainingCallback {
  const metadata = (state: TrainingState, epoch: number, accuracies: Record<string, number | undefined>) => ({
    format: 'cnnx-weights',
    model: state.spec.name,
    dataset: state.dataset.name,
    dataSource: state.dataset.source,
    epoch: String(epoch),
    selectedOn: state.selectOn,
    ...Object.fromEntries(
      Object.entries(accuracies).flatMap(([key, value]) => (value === undefined ? [] : [[key, String(value)]])),
    ),
    config: JSON.stringify(state.config),
  });
  return {
    async onEpochEnd(state: TrainingState, metrics: EpochMetrics) {
      if (!metrics.best) return;
      const accuracies = { valAccuracy: metrics.valAccuracy, testAccuracy: metrics.testAccuracy };
      await saveWeights(state.network, runPath(state.runDir, 'best'), metadata(state, metrics.epoch, accuracies));
    },
    async onTrainEnd(state: TrainingState) {
      const { finalTest, position } = state;
      if (finalTest === undefined) return;
      const file = runPath(state.runDir, 'best');
      const { tensors } = await readSafetensors(file);
      const accuracies = { valAccuracy: position.bestAccuracy, testAccuracy: finalTest.accuracy };
      await writeFileAtomic(file, encodeSafetensors(tensors, metadata(state, finalTest.epoch, accuracies)));
    },
  };
}

/** Writes the checkpoint after every epoch, when training stops early, and within an epoch when one is due. */
export function checkpointCallback(): TrainingCallback {
  const save = (state: TrainingState) =>
    saveCheckpoint(
      state.network,
      state.optimizer,
      { position: state.position, metrics: state.history, config: state.config },
      runPath(state.runDir, 'checkpoint'),
    );
  return {
    onSaveDue: save,
    onEpochEnd: save,
    async onTrainEnd(state: TrainingState) {
      if (state.stopTraining) await save(state);
    },
  };
}

/** Rewrites metrics.jsonl from the completed epochs: at the start (repairing a killed run) and after each epoch. */
export function metricsFileCallback(): TrainingCallback {
  const write = (state: TrainingState) => writeMetrics(state.runDir, state.history);
  return { onTrainBegin: write, onEpochEnd: write };
}

/** Redraws curves.svg after each epoch. */
export function curvesCallback(): TrainingCallback {
  return {
    async onEpochEnd(state: TrainingState) {
      await writeCurves(runPath(state.runDir, 'plot'), `${state.spec.name} on ${state.dataset.name}`, state.history);
    },
  };
}

/** Writes summary.json and reports the final figures when the last epoch completes. */
export function summaryCallback(progress: ProgressReporter): TrainingCallback {
  return {
    async onTrainEnd(state: TrainingState) {
      const { history, position } = state;
      const final = history.at(-1);
      if (state.stopTraining || final === undefined) return;
      // Every epoch trains the same examples, so the run's rate is the harmonic mean of the epochs' rates (their
      // arithmetic mean would weigh a fast epoch as much as a slow one that took ten times as long).
      const meanSpeed = history.length / history.reduce((s, m) => s + 1 / Math.max(m.examplesPerSec, 1e-9), 0);
      const onVal = state.selectOn === 'val';
      const summary = {
        model: state.spec.name,
        dataset: state.dataset.name,
        dataSource: state.dataset.source,
        backend: state.backend.device,
        workers: state.workers,
        epochs: history.length,
        selectedOn: state.selectOn,
        bestEpoch: position.bestEpoch,
        ...(onVal
          ? { bestValAccuracy: position.bestAccuracy, testAccuracy: state.finalTest?.accuracy }
          : { bestTestAccuracy: position.bestAccuracy }),
        final: {
          loss: final.loss,
          trainAccuracy: final.trainAccuracy,
          ...(onVal ? { valAccuracy: final.valAccuracy } : { testAccuracy: final.testAccuracy }),
        },
        examplesPerSec: meanSpeed,
        trainSeconds: history.reduce((s, m) => s + m.seconds, 0),
      };
      await writeFileAtomic(runPath(state.runDir, 'summary'), `${JSON.stringify(summary, null, 2)}\n`);
      const held = onVal ? 'val' : 'test';
      const last = (onVal ? final.valAccuracy : final.testAccuracy) ?? NaN;
      progress.result(
        `loss ${final.loss.toFixed(3)}, train acc ${final.trainAccuracy.toFixed(3)}, ${held} acc ${last.toFixed(3)}\n` +
          `${formatRate(meanSpeed)} examples/s on ${state.backend.device}${state.workers > 1 ? `, ${state.workers} workers` : ''}\n` +
          `best ${held} acc ${position.bestAccuracy.toFixed(4)} (epoch ${position.bestEpoch}) -> ${runPath(state.runDir, 'best')}\n` +
          (onVal && state.finalTest ? `test acc of the chosen weights: ${state.finalTest.accuracy.toFixed(4)}\n` : '') +
          `curves: ${runPath(state.runDir, 'plot')}`,
      );
    },
  };
}
