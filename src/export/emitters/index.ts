/** The registry of layer emitters: one per layer kind; registering a kind twice or exporting an unknown one throws. */
import { CnnxError } from '../../common/index.js';
import type { LayerEmitter } from '../graph-builder.js';
import { reluEmitter, sigmoidEmitter } from './activations.js';
import { batchNormEmitter } from './batch-norm.js';
import { conv2dEmitter } from './conv2d.js';
import { denseEmitter } from './dense.js';
import { dropoutEmitter } from './dropout.js';
import { flattenEmitter } from './flatten.js';
import { maxPoolEmitter } from './max-pool.js';

export class EmitterRegistry {
  private readonly emitters = new Map<string, LayerEmitter>();

  register(emitter: LayerEmitter): this {
    if (this.emitters.has(emitter.layer))
      throw new Error(`an ONNX emitter for layer '${emitter.layer}' is already registered`);
    this.emitters.set(emitter.layer, emitter);
    return this;
  }

  get(kind: string): LayerEmitter {
    const emitter = this.emitters.get(kind);
    if (emitter === undefined) {
      throw new CnnxError(
        `cannot export layer '${kind}' to ONNX: no emitter is registered for it`,
        'EXPORT_UNKNOWN_LAYER',
      );
    }
    return emitter;
  }

  kinds(): string[] {
    return [...this.emitters.keys()];
  }
}

const ALL: LayerEmitter[] = [
  conv2dEmitter,
  maxPoolEmitter,
  sigmoidEmitter,
  reluEmitter,
  flattenEmitter,
  denseEmitter,
  batchNormEmitter,
  dropoutEmitter,
] as LayerEmitter[];

export function defaultEmitters(): EmitterRegistry {
  const registry = new EmitterRegistry();
  for (const emitter of ALL) registry.register(emitter);
  return registry;
}
