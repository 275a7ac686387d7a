/**
 * `npx tsx bench/train-kernels.ts [--model lenet5|alexnet|few-channels] [--batch 128,256] [--repeats 5]
 * [--only filter,forward,input,maxpool,add,sum]`: the wasm training kernels' candidate formulations side by side
 * on the model's own layer shapes, one process, repeats interleaved (A B C A B C ...), median ms per call. Each
 * candidate's output is also compared with the first candidate's (max abs difference), so a wrong formulation
 * shows up next to its time. maxpool, add and sum run on LeNet's shapes only. Inputs are reused from call to call,
 * which lets XNNPACK keep an operator's packed weights: a candidate whose "weights" are a fresh tensor in training
 * (dy, a transposed filter) pays for packing here as it does there, one that reuses them is flattered.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { useBackend } from '../src/train/backends/index.js';
import { filterGradByConv, imagesPerChunk } from '../src/train/backends/wasm/conv2d-backprop-filter.js';
import { filterGradByPatches } from './filter-grad-by-patches.js';
import { inputGradByMatMul } from './input-grad-by-matmul.js';
import { inputGradByFullConv } from '../src/train/backends/wasm/conv2d-backprop-input.js';
import { channelBroadcastKernel } from '../src/train/backends/wasm/channel-broadcast.js';
import { maxPoolGradDisjoint, maxPoolGradGeneric } from '../src/train/backends/wasm/max-pool-grad.js';
import { backendKernel } from '../src/train/backends/wasm/register-kernels.js';
import { fewChannelFilterGrad, geometry, singleChannelFilterGrad } from '../src/train/backends/wasm/simd-conv.js';
import { kernelOf } from '../src/train/backends/wasm/kernel-utils.js';
import { addressOf, simdKernels } from '../src/train/backends/wasm/simd-kernels.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};
const model = flag('model') ?? 'lenet5';
const repeats = Number(flag('repeats') ?? (model === 'alexnet' ? 3 : 7));
const only = flag('only')?.split(',');

interface Conv {
  name: string;
  input: [number, number, number];
  filter: [number, number, number, number];
  stride: number;
  pad: number;
}

const MODELS: Record<string, { batches: number[]; convs: Conv[] }> = {
  // Where the gathered input gradient stops paying: LeNet's conv2 and wider few-channel layers.
  'few-channels': {
    batches: [128],
    convs: [
      { name: '5x5 14x14x6->16', input: [14, 14, 6], filter: [5, 5, 6, 16], stride: 1, pad: 0 },
      { name: '5x5 14x14x8->16', input: [14, 14, 8], filter: [5, 5, 8, 16], stride: 1, pad: 0 },
      { name: '3x3 12x12x12->32 p1', input: [12, 12, 12], filter: [3, 3, 12, 32], stride: 1, pad: 1 },
      { name: '3x3 12x12x16->32 p1', input: [12, 12, 16], filter: [3, 3, 16, 32], stride: 1, pad: 1 },
    ],
  },
  lenet5: {
    batches: [128, 256],
    convs: [
      { name: 'conv1 5x5 28x28x1->6 p2', input: [28, 28, 1], filter: [5, 5, 1, 6], stride: 1, pad: 2 },
      { name: 'conv2 5x5 14x14x6->16', input: [14, 14, 6], filter: [5, 5, 6, 16], stride: 1, pad: 0 },
    ],
  },
  alexnet: {
    batches: [64, 128],
    convs: [
      { name: 'conv1 11x11/4 224x224x1->96', input: [224, 224, 1], filter: [11, 11, 1, 96], stride: 4, pad: 1 },
      { name: 'conv2 5x5 26x26x96->256', input: [26, 26, 96], filter: [5, 5, 96, 256], stride: 1, pad: 2 },
      { name: 'conv3 3x3 12x12x256->384', input: [12, 12, 256], filter: [3, 3, 256, 384], stride: 1, pad: 1 },
      { name: 'conv4 3x3 12x12x384->384', input: [12, 12, 384], filter: [3, 3, 384, 384], stride: 1, pad: 1 },
      { name: 'conv5 3x3 12x12x384->256', input: [12, 12, 384], filter: [3, 3, 384, 256], stride: 1, pad: 1 },
    ],
  },
};

type Candidate = [label: string, run: () => TensorInfo];

await useBackend('wasm');
const backend = tf.backend();
const spec = MODELS[model];
if (spec === undefined) throw new RangeError(`--model must be one of ${Object.keys(MODELS).join(', ')}, got ${model}`);
const batches = flag('batch')?.split(',').map(Number) ?? spec.batches;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const read = (t: TensorInfo) =>
  (backend as unknown as { typedArrayFromHeap(t: TensorInfo): Float32Array }).typedArrayFromHeap(t).slice();
const rows: string[][] = [];

/** Times the candidates interleaved; prints and records one row per candidate. */
function race(what: string, candidates: Candidate[]): void {
  const times = candidates.map(() => [] as number[]);
  let reference: Float32Array | undefined;
  const diffs = candidates.map(() => 0);
  for (let r = 0; r < repeats + 1; r++) {
    candidates.forEach(([, run], i) => {
      const started = performance.now();
      const out = run();
      const ms = performance.now() - started;
      if (r > 0) times[i]!.push(ms); // the first round warms up (operator creation, heap growth)
      if (r === 0) {
        const values = read(out);
        if (i === 0) reference = values;
        else diffs[i] = values.reduce((worst, v, j) => Math.max(worst, Math.abs(v - reference![j]!)), 0);
      }
      backend.disposeData(out.dataId);
    });
  }
  const base = median(times[0]!);
  candidates.forEach(([label], i) => {
    const ms = median(times[i]!);
    const row = [what, label, ms.toFixed(2), `${(base / ms).toFixed(2)}x`, i === 0 ? '' : diffs[i]!.toExponential(1)];
    rows.push(row);
    console.log(row.join(' | '));
  });
}

/** The filter gradient before this benchmark: transposes by tfjs's Transpose kernel, one conv for the batch. */
function filterGradOld(_backend: unknown, x: tf.Tensor, dy: tf.Tensor, info: backend_util.Conv2DInfo): TensorInfo {
  const { filterHeight: KH, filterWidth: KW, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const bottom = Math.max(0, KH - inHeight - top + strideHeight * (outHeight - 1));
  const right = Math.max(0, KW - inWidth - left + strideWidth * (outWidth - 1));
  return tf.tidy(() => {
    const xT = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D;
    const dyT = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ];
    const grad = tf.conv2d(xT, dyT, 1, pad, 'NHWC', [strideHeight, strideWidth]);
    const cropped = tf.slice(grad, [0, 0, 0, 0], [info.inChannels, KH, KW, info.outChannels]);
    return tf.keep(tf.transpose(cropped, [1, 2, 0, 3]));
  });
}

/** cnnx's gathered input gradient (fewChannelInputGrad's kernel), called directly so that 16 channels race too. */
function gatheredInputGrad(dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const dx = (backend as unknown as { makeOutput(s: number[], d: 'float32'): TensorInfo }).makeOutput(
    info.inShape,
    'float32',
  );
  simdKernels(backend)!.conv2d_input_grad(...[dy, filter, dx].map((t) => addressOf(backend, t)), ...geometry(info));
  return dx;
}

const call = (kernel: KernelFunc, inputs: Record<string, TensorInfo>, attrs: object = {}) =>
  kernel({ inputs, backend, attrs: attrs as never }) as TensorInfo;
const want = (part: string) => only === undefined || only.includes(part);

for (const batch of batches) {
  for (const conv of spec.convs) {
    const x = tf.randomUniform([batch, ...conv.input], 0, 1, 'float32', 1);
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      conv.filter,
      conv.stride,
      1,
      conv.pad,
    );
    const dy = tf.randomUniform(info.outShape, -0.01, 0.01, 'float32', 3);
    const label = `${conv.name} b${batch}`;
    if (want('filter')) {
      race(`dW ${label}`, [
        ['conv (old)', () => filterGradOld(backend, x, dy, info)],
        ['conv, JS layout', () => filterGradByConv('wasm', backend, x, dy, info)],
        [
          `conv, chunks of ${imagesPerChunk(info)} (kernel for more channels)`,
          () => filterGradByConv('wasm', backend, x, dy, info, imagesPerChunk(info)),
        ],
        ...(model === 'lenet5'
          ? ([
              ['conv, chunks of 64', () => filterGradByConv('wasm', backend, x, dy, info, 64)],
              ['conv, chunks of 16', () => filterGradByConv('wasm', backend, x, dy, info, 16)],
            ] as Candidate[])
          : []),
        ...[21, 22, 23, 24].map(
          (log2) =>
            [
              `im2col + matmul, chunks of ${2 ** (log2 - 18)} MiB`,
              () => filterGradByPatches('wasm', backend, x, dy, info, 2 ** log2),
            ] as Candidate,
        ),
        ...(conv.input[2] === 1 && conv.filter[3] <= 16
          ? ([['SIMD kernel, one channel (new)', () => singleChannelFilterGrad(backend, x, dy, info)!]] as Candidate[])
          : []),
        ...(conv.input[2] > 1 && conv.input[2] <= 16
          ? ([['SIMD kernel, few channels (new)', () => fewChannelFilterGrad(backend, x, dy, info)!]] as Candidate[])
          : []),
      ]);
    }
    if (want('forward') && conv.input[2] === 1) {
      const filter = tf.randomUniform(conv.filter, -0.1, 0.1, 'float32', 4);
      const bias = tf.randomUniform([conv.filter[3]], -0.1, 0.1, 'float32', 5);
      const attrs = { strides: conv.stride, pad: conv.pad, dataFormat: 'NHWC', dilations: 1, activation: 'linear' };
      race(`FusedConv2D ${label}`, [
        ['backend XNNPACK (old)', () => call(backendKernel('FusedConv2D'), { x, filter, bias }, attrs)],
        ['SIMD kernel, one channel (new)', () => call(kernelOf('FusedConv2D', 'wasm'), { x, filter, bias }, attrs)],
      ]);
      tf.dispose([filter, bias]);
    }
    if (want('input') && conv.input[2] > 1) {
      const filter = tf.randomUniform(conv.filter, -0.1, 0.1, 'float32', 4);
      const original = backendKernel('Conv2DBackpropInput');
      const attrs = { strides: conv.stride, pad: conv.pad, dataFormat: 'NHWC', inputShape: x.shape };
      race(`dX ${label}`, [
        ['backend loop', () => call(original, { dy, filter }, attrs)],
        ['full conv (kernel for 16+ channels)', () => inputGradByFullConv('wasm', backend, dy, filter, info)!],
        ...(conv.input[2] <= 16 && conv.filter[3] % 4 === 0
          ? ([['SIMD gather (kernel below 16 channels)', () => gatheredInputGrad(dy, filter, info)]] as Candidate[])
          : []),
        ['matmul + col2im', () => inputGradByMatMul('wasm', backend, dy, filter, info)],
        ['matmul + col2im, chunks of 16', () => inputGradByMatMul('wasm', backend, dy, filter, info, 16)],
      ]);
      filter.dispose();
    }
    tf.dispose([x, dy]);
  }
}

const heap = (t: TensorInfo) =>
  (backend as unknown as { typedArrayFromHeap(t: TensorInfo): Float32Array }).typedArrayFromHeap(t);
const makeOutput = (shape: number[]) =>
  (backend as unknown as { makeOutput(s: number[], d: 'float32'): TensorInfo }).makeOutput(shape, 'float32');

if (model === 'lenet5') {
  for (const batch of batches) {
    const layers: [string, number[], number[]][] = [
      ['pool1/conv1 28x28x6', [batch, 28, 28, 6], [6]],
      ['pool2/conv2 10x10x16', [batch, 10, 10, 16], [16]],
    ];
    for (const [name, shape, bias] of layers) {
      const x = tf.randomUniform(shape, -1, 1, 'float32', 5);
      if (want('maxpool')) {
        const info = backend_util.computePool2DInfo(shape as [number, number, number, number], 2, 2, 1, 'valid');
        const dy = tf.randomUniform(info.outShape, -1, 1, 'float32', 6);
        const pool = (grad: typeof maxPoolGradGeneric) => () => {
          const dx = makeOutput(shape);
          grad(heap(dx), heap(x), heap(dy), info);
          return dx;
        };
        race(`MaxPoolGrad 2x2/2 ${name} b${batch}`, [
          ['generic loop (old)', pool(maxPoolGradGeneric)],
          ['disjoint windows', pool(maxPoolGradDisjoint)],
          [
            'SIMD kernel (new)',
            () => call(kernelOf('MaxPoolGrad', 'wasm'), { dy, input: x }, { filterSize: 2, strides: 2, pad: 'valid' }),
          ],
        ]);
        dy.dispose();
      }
      if (want('add')) {
        const b = tf.randomUniform(bias, -1, 1, 'float32', 7);
        const original = backendKernel('Add');
        race(`Add bias ${name} b${batch}`, [
          ['backend broadcast (old)', () => call(original, { a: x, b })],
          ['tiled bias (new)', () => call(channelBroadcastKernel('Add', 'wasm', original).kernelFunc, { a: x, b })],
        ]);
        b.dispose();
      }
      if (want('sum')) {
        const attrs = { axis: [0, 1, 2], keepDims: false };
        race(`Sum (bias gradient) ${name} b${batch}`, [
          ['backend transpose + rows (old)', () => call(backendKernel('Sum'), { x }, attrs)],
          ['SIMD kernel (new)', () => call(kernelOf('Sum', 'wasm'), { x }, attrs)],
        ]);
      }
      x.dispose();
    }
  }
}

console.log(
  `\n| kernel, layer, batch | formulation | ms/call (median of ${repeats}) | speed-up vs first | max abs diff |`,
);
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
