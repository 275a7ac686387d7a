import type { ModelSpec } from './spec.js';

/** The notebook's AlexNet for 1x224x224 input (Fashion-MNIST resized) and 10 classes: 46,764,746 parameters. */
export const alexnet: ModelSpec = {
  name: 'alexnet',
  description: "the reference notebook's AlexNet (1x224x224 input)",
  input: [1, 224, 224],
  classes: 10,
  layers: [
    { kind: 'conv2d', filters: 96, kernel: 11, stride: 4, padding: 1 },
    { kind: 'relu' },
    { kind: 'max-pool', size: 3, stride: 2 },
    { kind: 'conv2d', filters: 256, kernel: 5, padding: 2 },
    { kind: 'relu' },
    { kind: 'max-pool', size: 3, stride: 2 },
    { kind: 'conv2d', filters: 384, kernel: 3, padding: 1 },
    { kind: 'relu' },
    { kind: 'conv2d', filters: 384, kernel: 3, padding: 1 },
    { kind: 'relu' },
    { kind: 'conv2d', filters: 256, kernel: 3, padding: 1 },
    { kind: 'relu' },
    { kind: 'max-pool', size: 3, stride: 2 },
    { kind: 'flatten' },
    { kind: 'dense', units: 4096 },
    { kind: 'relu' },
    { kind: 'dropout', rate: 0.5 },
    { kind: 'dense', units: 4096 },
    { kind: 'relu' },
    { kind: 'dropout', rate: 0.5 },
    { kind: 'dense', units: 10 },
  ],
  defaults: { epochs: 10, batchSize: 128, lr: 0.01, optimizer: 'sgd', schedule: 'constant' },
};
