import { describe, expect, it } from 'vitest';
import { toleranceFor } from '../../src/export/index.js';
import {
  countParameters,
  getModelSpec,
  inferenceSpec,
  layerPlan,
  layerShapes,
  MODEL_NAMES,
  parameterSpecs,
} from '../../src/models/index.js';

describe('model specs', () => {
  it.each([
    ['lenet5', 61_706],
    ['alexnet', 46_764_746],
  ])('%s has the notebook parameter count', (name, count) => {
    expect(countParameters(getModelSpec(name))).toBe(count);
  });

  it('lenet5-relu keeps LeNet-5 sizes plus batch-norm scale and shift', () => {
    expect(countParameters(getModelSpec('lenet5-relu'))).toBe(61_706 + 2 * (6 + 16 + 120 + 84));
  });

  it('lenet5 layer shapes match the notebook', () => {
    const shapes = layerShapes(getModelSpec('lenet5')).map((s) => `${s.layer.kind}:${s.output.join('x')}`);
    expect(shapes).toEqual([
      'conv2d:6x28x28',
      'sigmoid:6x28x28',
      'max-pool:6x14x14',
      'conv2d:16x10x10',
      'sigmoid:16x10x10',
      'max-pool:16x5x5',
      'flatten:400',
      'dense:120',
      'sigmoid:120',
      'dense:84',
      'sigmoid:84',
      'dense:10',
    ]);
  });

  it('alexnet layer shapes match the notebook', () => {
    const shapes = layerShapes(getModelSpec('alexnet'))
      .filter((s) => ['conv2d', 'max-pool', 'flatten', 'dense'].includes(s.layer.kind))
      .map((s) => s.output.join('x'));
    expect(shapes).toEqual([
      '96x54x54',
      '96x26x26',
      '256x26x26',
      '256x12x12',
      '384x12x12',
      '384x12x12',
      '256x12x12',
      '256x5x5',
      '6400',
      '4096',
      '4096',
      '10',
    ]);
  });

  it('names parameters like a PyTorch state_dict, in tfjs layout', () => {
    const params = parameterSpecs(getModelSpec('lenet5')).map((p) => `${p.name}:${p.shape.join('x')}`);
    expect(params).toEqual([
      '0.weight:5x5x1x6',
      '0.bias:6',
      '3.weight:5x5x6x16',
      '3.bias:16',
      '7.weight:400x120',
      '7.bias:120',
      '9.weight:120x84',
      '9.bias:84',
      '11.weight:84x10',
      '11.bias:10',
    ]);
  });

  it('rejects unknown models with the choices', () => {
    expect(() => getModelSpec('resnet')).toThrow(`Unsupported model: "resnet". Should be one of: ${MODEL_NAMES.join(', ')}.`);
  });

  it('holds the facts other stages ask about a model: default dataset, parity tolerance', () => {
    expect(MODEL_NAMES.map((name) => [name, getModelSpec(name).defaultDataset])).toEqual([
      ['lenet5', 'mnist'],
      ['lenet5-relu', 'mnist'],
      ['alexnet', 'fashion-mnist'],
    ]);
    expect(toleranceFor('fp32-cpu', 'lenet5')).toEqual({ atol: 1e-5, rtol: 1e-6 });
    expect(toleranceFor('fp32-cpu', 'alexnet')).toEqual({ atol: 1e-4, rtol: 1e-6 });
    expect(toleranceFor('webgpu', 'alexnet')).toEqual(toleranceFor('webgpu', 'lenet5'));
  });
});

describe('the layer plan training and export both walk', () => {
  it('fuses activations into conv and dense layers, and folds batch norms only at inference', () => {
    const spec = getModelSpec('lenet5-relu');
    const describe = (steps: ReturnType<typeof layerPlan>) =>
      steps.map((s) => [s.index, s.batchNorm?.index, s.activation?.index].filter((i) => i !== undefined).join('+'));
    // conv 0, bn 1, relu 2, pool 3, conv 4, bn 5, relu 6, pool 7, flatten 8, dense 9, bn 10, relu 11, ...
    expect(describe(layerPlan(spec, { foldBatchNorm: true }))).toEqual(['0+1+2', '3', '4+5+6', '7', '8', '9+10+11', '12+13+14', '15']);
    expect(describe(layerPlan(spec, { foldBatchNorm: false }))).toEqual(
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15'],
    );
    expect(describe(layerPlan(getModelSpec('lenet5'), { foldBatchNorm: false }))).toEqual(['0+1', '2', '3+4', '5', '6', '7+8', '9+10', '11']);
  });

  it('names the inference spec as the export names its layers: folded batch norms gone, activations kept', () => {
    const { spec, sourceIndex, foldedBatchNorm } = inferenceSpec(getModelSpec('lenet5-relu'));
    expect(spec.layers.map((l) => l.kind)).not.toContain('batch-norm');
    expect(sourceIndex).toEqual([0, 2, 3, 4, 6, 7, 8, 9, 11, 12, 14, 15]);
    expect(foldedBatchNorm[0]).toBe(1);
  });
});
