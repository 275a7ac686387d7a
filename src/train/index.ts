/** Train stage: tfjs networks built from model specs, the training loop, and the run directory it writes. */
export { train, NonFiniteLossError, type TrainOptions, type TrainResult } from './train.js';
export { createNetwork, type Network } from './network.js';
export { evaluateAccuracy } from './evaluate.js';
export { loadWeights, saveWeights, assignWeights, weightsOf } from './checkpoint.js';
export { OPTIMIZER_NAMES, SCHEDULE_NAMES, learningRateAt } from './optimizer.js';
export { RUN_FILES, readMetrics, readRunConfig, runPath, type EpochMetrics, type TrainConfig } from './run-dir.js';
export { consoleProgress, silentProgress, type ProgressReporter } from './progress.js';
export { BACKEND_NAMES, parseBackendName, useBackend, type BackendInfo, type BackendName } from './backends/index.js';
export { benchmarkTraining, type TrainBenchmarkOptions, type TrainBenchmarkResult } from './benchmark.js';
