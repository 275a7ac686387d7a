/**
 * The emitters of a cnnx spec's layer kinds: one per kind, in a table the compiler checks (a new layer kind does
 * not compile until it has an emitter), registered into a registry where registering a kind twice or exporting
 * an unknown one throws and names the layer.
 */
import { CnnxError } from '../../common/index.js';
import type { LayerKind } from '../../models/index.js';
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

  /** @throws CnnxError EXPORT_UNKNOWN_LAYER when no emitter is registered for `kind`. */
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

const EMITTERS = {
  conv2d: conv2dEmitter,
  'max-pool': maxPoolEmitter,
  sigmoid: sigmoidEmitter,
  relu: reluEmitter,
  flatten: flattenEmitter,
  dense: denseEmitter,
  'batch-norm': batchNormEmitter,
  dropout: dropoutEmitter,
} satisfies { [K in LayerKind]: LayerEmitter<K> };

/** A registry with the emitter of every cnnx layer kind. */
export function defaultEmitters(): EmitterRegistry {
  const registry = new EmitterRegistry();
  for (const emitter of Object.values(EMITTERS)) registry.register(emitter as LayerEmitter);
  return registry;
}
