/**
 * A tfjs network built from a model spec: variables named like PyTorch's state_dict, Xavier-uniform weights as
 * in the notebook's init_cnn, and a forward pass that fuses each conv/dense with a following activation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed } from '../common/index.js';
import { parameterSpecs, type LayerSpec, type ModelSpec, type ParameterSpec } from '../models/index.js';

/** Running-statistics updates produced by a training-mode forward pass, applied after the optimizer step. */
export type StatUpdates = [tf.Variable, tf.Tensor][];

interface ForwardMode {
  training: boolean;
  /** Seed of this step's dropout masks (training only). */
  dropoutSeed?: number;
  /** Collects batch-norm running-statistic updates (training only). */
  updates?: StatUpdates;
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

/** Initial value of a parameter: Xavier-uniform weights, PyTorch-default biases, batch-norm identity. */
function initialValue(param: ParameterSpec, network: ParameterSpec[], spec: ModelSpec, seed: number): tf.Tensor {
  const layer = spec.layers[param.layer]!;
  const suffix = param.name.slice(param.name.indexOf('.') + 1);
  const paramSeed = deriveSeed(seed, network.indexOf(param));
  if (layer.kind === 'batch-norm') {
    return suffix === 'bias' || suffix === 'running_mean' ? tf.zeros(param.shape) : tf.ones(param.shape);
  }
  const weightShape = network.find((p) => p.name === `${param.layer}.weight`)!.shape;
  const { fanIn, fanOut } = fans(weightShape);
  if (suffix === 'weight') {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return tf.randomUniform(param.shape, -limit, limit, 'float32', paramSeed);
  }
  // nn.Conv2d / nn.Linear default bias, U(-1/sqrt(fan_in), 1/sqrt(fan_in)): the notebook's init_cnn keeps it.
  const bound = 1 / Math.sqrt(fanIn);
  return tf.randomUniform(param.shape, -bound, bound, 'float32', paramSeed);
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

  const apply = (input: tf.Tensor4D, mode: ForwardMode): tf.Tensor2D => {
    let h: tf.Tensor = input;
    const layers = spec.layers;
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i]!;
      const next = layers[i + 1];
      switch (layer.kind) {
        case 'conv2d':
        case 'dense': {
          // At inference a following batch norm is folded into the weights, exactly as the ONNX export folds it.
          const fold = !mode.training && next?.kind === 'batch-norm';
          const { kernel, bias } = fold
            ? foldBatchNorm(get(`${i}.weight`), get(`${i}.bias`), i + 1, next.epsilon ?? 1e-5, get)
            : { kernel: get(`${i}.weight`), bias: get(`${i}.bias`) };
          const after = fold ? i + 2 : i + 1;
          const activation = activationOf(layers[after]);
          h =
            layer.kind === 'conv2d'
              ? tf.fused.conv2d({
                  x: h as tf.Tensor4D,
                  filter: kernel as tf.Tensor4D,
                  bias,
                  strides: layer.stride ?? 1,
                  pad: layer.padding ?? 0,
                  activation: activation ?? 'linear',
                })
              : tf.fused.matMul({
                  a: h as tf.Tensor2D,
                  b: kernel as tf.Tensor2D,
                  bias,
                  activation: activation ?? 'linear',
                });
          i = after - 1 + (activation ? 1 : 0);
          break;
        }
        case 'sigmoid':
          h = tf.sigmoid(h);
          break;
        case 'relu':
          h = tf.relu(h);
          break;
        case 'max-pool':
          h = tf.maxPool(h as tf.Tensor4D, layer.size, layer.stride, 'valid');
          break;
        case 'flatten':
          h = tf.reshape(h, [h.shape[0]!, -1]);
          break;
        case 'dropout':
          if (mode.training && layer.rate > 0)
            h = tf.dropout(h, layer.rate, undefined, deriveSeed(mode.dropoutSeed ?? 0, i));
          break;
        case 'batch-norm':
          h = batchNorm(h, i, layer, mode, get);
          break;
      }
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

function activationOf(layer: LayerSpec | undefined): 'sigmoid' | 'relu' | undefined {
  return layer?.kind === 'sigmoid' || layer?.kind === 'relu' ? layer.kind : undefined;
}

/**
 * Batch norm over all axes but the last, PyTorch semantics (biased batch variance for normalising, unbiased for
 * the running estimate). Training mode uses the closed-form gradient: tfjs's generic one for moments broadcasts
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
  const n = h.size / h.shape[h.rank - 1]!;
  let batchMean: tf.Tensor | undefined;
  let batchVariance: tf.Tensor | undefined;
  const normalise = tf.customGrad(((x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, save: tf.GradSaveFunc) => {
    const { mean, variance } = tf.moments(x, axes);
    batchMean = tf.keep(mean);
    batchVariance = tf.keep(variance);
    const invStd = tf.rsqrt(tf.add(variance, epsilon));
    const xHat = tf.mul(tf.sub(x, mean), invStd);
    save([xHat, invStd, scale]);
    return {
      value: tf.add(tf.mul(xHat, scale), offset),
      gradFunc: (dy: tf.Tensor, [savedXHat, savedInvStd, savedScale]: tf.Tensor[]) => {
        const dOffset = tf.sum(dy, axes);
        const dScale = tf.sum(tf.mul(dy, savedXHat!), axes);
        // dx = scale * invStd * (dy - mean(dy) - xHat * mean(dy * xHat))
        const centred = tf.sub(dy, tf.add(tf.div(dOffset, n), tf.mul(savedXHat!, tf.div(dScale, n))));
        return [tf.mul(centred, tf.mul(savedScale!, savedInvStd!)), dScale, dOffset];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = normalise(h, gamma, beta);
  if (mode.updates) {
    const momentum = layer.momentum ?? 0.1;
    const unbiased = tf.mul(batchVariance!, n / Math.max(n - 1, 1));
    mode.updates.push([runningMean, tf.keep(tf.add(tf.mul(runningMean, 1 - momentum), tf.mul(batchMean!, momentum)))]);
    mode.updates.push([runningVar, tf.keep(tf.add(tf.mul(runningVar, 1 - momentum), tf.mul(unbiased, momentum)))]);
  }
  tf.dispose([batchMean!, batchVariance!]);
  return y;
}
