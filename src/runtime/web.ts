/**
 * onnxruntime-web sessions in Node (its WASM backend): the same runtime the web page uses, so the parity suite
 * can compare it with onnxruntime-node without a browser. The only module that imports onnxruntime-web.
 */
import * as ortWeb from 'onnxruntime-web';
import type { Logits } from './node.js';

export interface WebSession {
  run(data: Float32Array, dims: number[]): Promise<Logits>;
  release(): Promise<void>;
}

export async function openWebSession(model: Uint8Array, options: { threads?: number } = {}): Promise<WebSession> {
  ortWeb.env.wasm.numThreads = options.threads ?? 1;
  const session = await ortWeb.InferenceSession.create(model, { executionProviders: ['wasm'] });
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  return {
    async run(data, dims) {
      const outputs = await session.run({ [inputName]: new ortWeb.Tensor('float32', data, dims) });
      const logits = outputs[outputName]!;
      return { data: logits.data as Float32Array, dims: [...logits.dims] };
    },
    release: () => session.release(),
  };
}
