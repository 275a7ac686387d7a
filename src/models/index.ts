/** Models stage: the declarative specs of LeNet-5, LeNet-5-ReLU and AlexNet, and what can be derived from them. */
export type {
  LayerKind,
  LayerOf,
  LayerSpec,
  ModelSpec,
  OptimizerName,
  ScheduleName,
  TrainingDefaults,
} from './spec.js';
export { MODELS, MODEL_NAMES, getModelSpec } from './registry.js';
export { countParameters, formatShapes, layerShapes, parameterSpecs, type ParameterSpec } from './shapes.js';
export { foldBatchNormValues, inferenceSpec, layerPlan, type PlanStep } from './layer-plan.js';
