/**
 * A tfjs network built from a model spec: variables named like PyTorch's state_dict, Xavier-uniform weights as
 * in the notebook's init_cnn, and a forward pass that walks the spec's layer plan (models/layer-plan.ts): each
 * conv/dense fuses a following activation and, at inference, folds a following batch norm, as the export does.
 */
import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed } from '../common/index.js';
import {
  layerPlan,
  parameterSpecs,
  type LayerKind,
  type LayerOf,
  type LayerSpec,
  type ModelSpec,
  type ParameterSpec,
  type PlanStep,
} from '../models/index.js';

/** Running-statistics updates produced by a training-mode forward pass, applied after the optimizer step. */
export type StatUpdates = [tf.Variable, tf.Tensor][];

/**
 * The part of a batch one of several replicas trains on (data parallelism, replicas.ts): rows
 * [offset, offset + rows) of a batch of `total` examples. Dropout masks are those of the whole batch, and batch
 * norm normalises with the whole batch's statistics, so N replicas compute what one network computes on the batch.
 */
export interface Shard {
  offset: number;
  total: number;
  /** Sums per-replica values over all replicas, in replica order (all-reduce.ts). */
  allReduce(values: Float32Array): Float32Array;
}

interface ForwardMode {
  training: boolean;
  /** Seed of this step's dropout masks (training only). */
  dropoutSeed?: number;
  /** Collects batch-norm running-statistic updates (training only). */
  updates?: StatUpdates;
  /** This replica's part of the batch, when the batch is split over replicas (training only). */
  shard?: Shard;
}

export interface Network {
  spec: ModelSpec;
  parameters: ParameterSpec[];
  /** All variables by parameter name, trainable or not. */
  variables: Map<string, tf.Variable>;
  trainable: tf.Variable[];
  /** x: [batch, height, width, channels] in [0,1] -> logits [batch, classes]. */
  apply(x: tf.Tensor4D, mode: ForwardMode): tf.Tensor2D;
  dispose(): void;
}

let networkCount = 0;

/** Fan-in and fan-out of a weight of tfjs shape `shape` (conv [kh,kw,in,out] or dense [in,out]). */
function fans(shape: number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 4) {
    const [kh, kw, inC, outC] = shape as [number, number, number, number];
    return { fanIn: kh * kw * inC, fanOut: kh * kw * outC };
  }
  return { fanIn: shape[0]!, fanOut: shape[1]! };
}

/** How a layer kind's parameters start: Xavier-uniform weights, PyTorch-default biases, batch-norm identity. */
type Initialiser = (suffix: string, param: ParameterSpec, network: ParameterSpec[], seed: number) => tf.Tensor;

/**
 * Xavier-uniform weight; nn.Conv2d / nn.Linear default bias, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which the
 * notebook's init_cnn keeps.
 */
const xavierWeightDefaultBias: Initialiser = (suffix, param, network, seed) => {
  const weightShape = network.find((p) => p.name === `${param.layer}.weight`)!.shape;
  const { fanIn, fanOut } = fans(weightShape);
  if (suffix === 'weight') {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return tf.randomUniform(param.shape, -limit, limit, 'float32', seed);
  }
  const bound = 1 / Math.sqrt(fanIn);
  return tf.randomUniform(param.shape, -bound, bound, 'float32', seed);
};

const noParameters: Initialiser = (suffix, param) => {
  throw new Error(`layer ${param.layer} has no parameters, yet ${suffix} was asked for`);
};

const INITIALISERS = {
  conv2d: xavierWeightDefaultBias,
  dense: xavierWeightDefaultBias,
  'batch-norm': (suffix, param) =>
    suffix === 'bias' || suffix === 'running_mean' ? tf.zeros(param.shape) : tf.ones(param.shape),
  'max-pool': noParameters,
  flatten: noParameters,
  sigmoid: noParameters,
  relu: noParameters,
  dropout: noParameters,
} satisfies { [K in LayerKind]: Initialiser };

/** Initial value of a parameter, by its layer's kind. */
function initialValue(param: ParameterSpec, network: ParameterSpec[], spec: ModelSpec, seed: number): tf.Tensor {
  const layer = spec.layers[param.layer]!;
  const suffix = param.name.slice(param.name.indexOf('.') + 1);
  return INITIALISERS[layer.kind](suffix, param, network, deriveSeed(seed, network.indexOf(param)));
}

/** What a forward step sees besides its input: the step of the plan, the mode and the variables. */
interface ForwardContext<K extends LayerKind> {
  step: PlanStep & { layer: LayerOf<K> };
  mode: ForwardMode;
  get: (name: string) => tf.Variable;
  /** Whether the step's input is the network's input (the images), which needs no gradient. */
  isNetworkInput: boolean;
}

type Forward<K extends LayerKind> = (h: tf.Tensor, context: ForwardContext<K>) => tf.Tensor;

/** The kernel and bias of a conv or dense step, with its batch norm folded in when the plan folds one. */
function kernelAndBias(step: PlanStep, get: (name: string) => tf.Variable): { kernel: tf.Tensor; bias: tf.Tensor } {
  const i = step.index;
  if (!step.batchNorm) return { kernel: get(`${i}.weight`), bias: get(`${i}.bias`) };
  // At inference a following batch norm is folded into the weights, exactly as the ONNX export folds it.
  return foldBatchNorm(
    get(`${i}.weight`),
    get(`${i}.bias`),
    step.batchNorm.index,
    step.batchNorm.layer.epsilon ?? 1e-5,
    get,
  );
}

/**
 * A fused conv or dense op with the step's activation. tfjs fuses only a linear activation while it records
 * gradients (otherwise it runs the product, a bias Add and the activation as three ops), so in training the bias
 * stays fused and the activation follows as an op of its own.
 */
function fusedActivation(
  { step, mode }: { step: PlanStep; mode: ForwardMode },
  op: (activation: 'linear' | 'relu' | 'sigmoid') => tf.Tensor,
): tf.Tensor {
  const activation = step.activation?.layer.kind ?? 'linear';
  if (!mode.training || activation === 'linear') return op(activation);
  return ACTIVATIONS[activation](op('linear'));
}

const ACTIVATIONS = { sigmoid: (h: tf.Tensor) => tf.sigmoid(h), relu: (h: tf.Tensor) => tf.relu(h) } as const;

/** One forward function per layer kind: a new kind does not compile until it has one. */
const FORWARD = {
  conv2d: (h, context) => {
    const { layer } = context.step;
    const { kernel, bias } = kernelAndBias(context.step, context.get);
    const conv = { x: h as tf.Tensor4D, filter: kernel as tf.Tensor4D, bias, strides: layer.stride ?? 1 };
    const pad = layer.padding ?? 0;
    if (context.mode.training && context.isNetworkInput) {
      return fusedActivation(context, () => convOfImages(conv.x, conv.filter, bias, conv.strides, pad));
    }
    return fusedActivation(context, (activation) => tf.fused.conv2d({ ...conv, pad, activation }));
  },
  dense: (h, context) => {
    const { kernel, bias } = kernelAndBias(context.step, context.get);
    return fusedActivation(context, (activation) =>
      tf.fused.matMul({ a: h as tf.Tensor2D, b: kernel as tf.Tensor2D, bias, activation }),
    );
  },
  sigmoid: (h) => ACTIVATIONS.sigmoid(h),
  relu: (h) => ACTIVATIONS.relu(h),
  'max-pool': (h, { step: { layer } }) => tf.maxPool(h as tf.Tensor4D, layer.size, layer.stride, 'valid'),
  flatten: (h) => tf.reshape(h, [h.shape[0]!, -1]),
  dropout: (h, { step: { layer, index }, mode }) =>
    mode.training && layer.rate > 0 ? dropout(h, layer.rate, deriveSeed(mode.dropoutSeed ?? 0, index), mode.shard) : h,
  'batch-norm': (h, { step: { layer, index }, mode, get }) => batchNorm(h, index, layer, mode, get),
} satisfies { [K in LayerKind]: Forward<K> };

/**
 * The fused conv of the first layer, whose input (the images) needs no gradient. tfjs's fused conv gradient
 * computes the input gradient whether or not anything reads it (the tape prunes only lazily computed gradients):
 * for LeNet's conv1 on wasm that was 20 ms of a 105 ms step at batch 128, and AlexNet's conv1 (stride 4) takes
 * the backend's plain loop. Same forward op; the backward pass computes only the filter and bias gradients, as
 * the fused op's own gradient does (Conv2DBackpropFilter, and dy summed over batch, rows and columns).
 * x [B, H, W, C], filter [KH, KW, C, O], bias [O] -> [B, OH, OW, O], NHWC; `strides` and `pad` as tf.conv2d's.
 */
function convOfImages(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, strides: number, pad: number): tf.Tensor {
  const conv = tf.customGrad(((kernel: tf.Tensor4D, offset: tf.Tensor) => ({
    value: tf.fused.conv2d({ x, filter: kernel, bias: offset, strides, pad, activation: 'linear' }),
    gradFunc: (dy: tf.Tensor4D) => [
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides,
        pad,
        dataFormat: 'NHWC',
        filterShape: kernel.shape,
      } as unknown as tf.NamedAttrMap),
      tf.sum(dy, [0, 1, 2]),
    ],
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return conv(filter, bias);
}

/** Creates a network with fresh weights from `seed`. */
export function createNetwork(spec: ModelSpec, seed: number): Network {
  const id = networkCount++;
  const parameters = parameterSpecs(spec);
  const variables = new Map<string, tf.Variable>();
  parameters.forEach((param) => {
    const value = initialValue(param, parameters, spec, seed);
    variables.set(param.name, tf.variable(value, param.trainable, `net${id}/${param.name}`));
    value.dispose();
  });
  const trainable = parameters.filter((p) => p.trainable).map((p) => variables.get(p.name)!);
  const get = (name: string) => variables.get(name)!;
  const plans = {
    training: layerPlan(spec, { foldBatchNorm: false }),
    inference: layerPlan(spec, { foldBatchNorm: true }),
  };

  const apply = (input: tf.Tensor4D, mode: ForwardMode): tf.Tensor2D => {
    let h: tf.Tensor = input;
    for (const step of mode.training ? plans.training : plans.inference) {
      h = (FORWARD[step.layer.kind] as Forward<LayerKind>)(h, { step, mode, get, isNetworkInput: h === input });
    }
    return h as tf.Tensor2D;
  };

  return {
    spec,
    parameters,
    variables,
    trainable,
    apply,
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

/**
 * Inverted dropout with tfjs's formula (tf.dropout: x * floor(u + keep) / keep, u uniform from `seed`). For a shard
 * the noise is drawn for the whole batch and this shard's rows taken, so the masks do not depend on the split.
 */
function dropout(h: tf.Tensor, rate: number, seed: number, shard: Shard | undefined): tf.Tensor {
  if (shard === undefined) return tf.dropout(h, rate, undefined, seed);
  const [rows, ...rest] = h.shape as [number, ...number[]];
  const keep = 1 - rate;
  const noise = tf.randomUniform([shard.total, ...rest], 0, 1, 'float32', seed);
  const mine = tf.slice(noise, [shard.offset, ...rest.map(() => 0)], [rows, ...rest]);
  return tf.mul(h, tf.div(tf.floor(tf.add(mine, keep)), keep));
}

/** Batch-norm statistics of layer `bn` folded into a kernel and bias (see models/inference-spec.ts). */
function foldBatchNorm(
  kernel: tf.Tensor,
  bias: tf.Tensor,
  bn: number,
  epsilon: number,
  get: (name: string) => tf.Variable,
): { kernel: tf.Tensor; bias: tf.Tensor } {
  const scale = tf.div(get(`${bn}.weight`), tf.sqrt(tf.add(get(`${bn}.running_var`), tf.scalar(epsilon))));
  return {
    kernel: tf.mul(kernel, scale),
    bias: tf.add(tf.mul(tf.sub(bias, get(`${bn}.running_mean`)), scale), get(`${bn}.bias`)),
  };
}

/**
 * Batch norm over all axes but the last, PyTorch semantics (biased batch variance for normalising, unbiased for
 * the running estimate); over a shard, the statistics are the whole batch's. Training mode uses the closed-form gradient: tfjs's generic one for moments broadcasts
 * through Tile and was most of a LeNet step on wasm.
 */
function batchNorm(
  h: tf.Tensor,
  i: number,
  layer: Extract<LayerSpec, { kind: 'batch-norm' }>,
  mode: ForwardMode,
  get: (name: string) => tf.Variable,
): tf.Tensor {
  const epsilon = layer.epsilon ?? 1e-5;
  const gamma = get(`${i}.weight`);
  const beta = get(`${i}.bias`);
  const runningMean = get(`${i}.running_mean`);
  const runningVar = get(`${i}.running_var`);
  if (!mode.training) return tf.batchNorm(h, runningMean, runningVar, beta, gamma, epsilon);
  const axes = [...Array(h.rank - 1).keys()];
  const features = h.shape[h.rank - 1]!;
  const { shard } = mode;
  // Values per channel in the whole batch: with a shard, all replicas' rows together.
  const n = (shard ? shard.total : h.shape[0]!) * (h.size / (h.shape[0]! * features));
  /** Per-channel sums of this replica's rows, summed over every replica (synchronised batch norm). */
  const overReplicas = (...sums: tf.Tensor[]): tf.Tensor[] => {
    if (shard === undefined) return sums;
    const total = shard.allReduce(Float32Array.from(sums.flatMap((sum) => [...(sum.dataSync() as Float32Array)])));
    return sums.map((_, i) => tf.tensor1d(total.subarray(i * features, (i + 1) * features)));
  };
  let batchMean: tf.Tensor | undefined;
  let batchVariance: tf.Tensor | undefined;
  const normalise = tf.customGrad(((x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, save: tf.GradSaveFunc) => {
    // Sums, then one division, so that one network and N replicas differ only in how the sums are split.
    batchMean = tf.keep(tf.div(overReplicas(tf.sum(x, axes))[0]!, n));
    batchVariance = tf.keep(tf.div(overReplicas(tf.sum(tf.square(tf.sub(x, batchMean)), axes))[0]!, n));
    const invStd = tf.rsqrt(tf.add(batchVariance, epsilon));
    const xHat = tf.mul(tf.sub(x, batchMean), invStd);
    save([xHat, invStd, scale]);
    return {
      value: tf.add(tf.mul(xHat, scale), offset),
      gradFunc: (dy: tf.Tensor, [savedXHat, savedInvStd, savedScale]: tf.Tensor[]) => {
        // This replica's parts of the scale and offset gradients (the replicas' parts are summed afterwards, as
        // every other gradient is); dx needs the whole batch's.
        const dOffset = tf.sum(dy, axes);
        const dScale = tf.sum(tf.mul(dy, savedXHat!), axes);
        const [batchOffset, batchScale] = overReplicas(dOffset, dScale) as [tf.Tensor, tf.Tensor];
        // dx = scale * invStd * (dy - mean(dy) - xHat * mean(dy * xHat))
        const centred = tf.sub(dy, tf.add(tf.div(batchOffset, n), tf.mul(savedXHat!, tf.div(batchScale, n))));
        return [tf.mul(centred, tf.mul(savedScale!, savedInvStd!)), dScale, dOffset];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = normalise(h, gamma, beta);
  // One value a feature (a lone last example before a dense layer's batch norm) has no variance to learn from: the
  // running statistics keep what they had, rather than a variance of 0 pulling them down.
  if (mode.updates && n > 1) {
    const momentum = layer.momentum ?? 0.1;
    const unbiased = tf.mul(batchVariance!, n / (n - 1));
    mode.updates.push([runningMean, tf.keep(tf.add(tf.mul(runningMean, 1 - momentum), tf.mul(batchMean!, momentum)))]);
    mode.updates.push([runningVar, tf.keep(tf.add(tf.mul(runningVar, 1 - momentum), tf.mul(unbiased, momentum)))]);
  }
  tf.dispose([batchMean!, batchVariance!]);
  return y;
}
