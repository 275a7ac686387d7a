/** Train stage: tfjs networks built from model specs, the training loop, and the run directory it writes. */
export { CHECKPOINT_EVERY_S, StoppedBeforeTraining, train } from './train.js';
export { NonFiniteLossError, DivergedLossError } from './loss-guards.js';
export { createNetwork, type Network } from './network.js';
export { assignWeights, checkpointPosition, weightsOf } from './checkpoint.js';
export { OPTIMIZER_NAMES, SCHEDULE_NAMES } from './optimizer.js';
export { readMetrics, readRunConfig, runPath, SELECT_ON, type SelectOn, type TrainConfig } from './run-dir.js';
export { classesOf, DEFAULT_VAL_SPLIT, loadRunDataset, specForRun, trainingCommand } from './run-data.js';
export { formatRate, silentProgress, type ProgressReporter } from './progress.js';
export { BACKEND_NAMES, useBackend, type BackendName } from './backends/index.js';
export { benchmarkTraining } from './benchmark.js';
