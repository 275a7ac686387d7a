/**
 * onnxruntime-web sessions: the only module that imports onnxruntime-web. The web page runs them in the browser
 * (WASM or WebGPU); the parity suite runs the same code in Node (WASM). A frozen table maps the user's word to a
 * provider; `auto` tries WebGPU, then WASM. Runs on one session go one at a time: a second stroke drawn while the
 * first is read waits for it instead of entering the same session twice.
 */
import * as ort from 'onnxruntime-web';
import { CnnxError, messageOf } from '../../common/errors.js';
import { inBatchesOf, oneRunAtATime, type ModelSession, type SkippedProvider } from '../session.js';

const WEB_EXECUTION_PROVIDERS = Object.freeze({ wasm: 'wasm', webgpu: 'webgpu' } as const);
const WEB_EP_NAMES = ['auto', ...Object.keys(WEB_EXECUTION_PROVIDERS)] as readonly string[];
type WebEpName = 'auto' | keyof typeof WEB_EXECUTION_PROVIDERS;
type WebProvider = keyof typeof WEB_EXECUTION_PROVIDERS;

/** A session on onnxruntime-web. */
export type WebSession = ModelSession<WebProvider>;

export interface WebSessionOptions {
  /** Execution provider (default `wasm`); `auto` takes WebGPU where there is an adapter, else WASM. */
  ep?: WebEpName;
  /** WASM threads (default 1; more need a cross-origin isolated page). Read when the first session opens. */
  threads?: number;
  /** URL prefix onnxruntime-web loads its .wasm and .mjs files from (default: beside its own module). */
  wasmPaths?: string;
}

interface NavigatorGpu {
  gpu?: { requestAdapter(): Promise<unknown> };
}

/** Why WebGPU cannot be used here, or undefined when an adapter is there. */
async function webgpuMissing(): Promise<string | undefined> {
  const gpu = (globalThis.navigator as NavigatorGpu | undefined)?.gpu;
  // Browsers give WebGPU (and shared-memory threads) to secure origins only: https, or localhost.
  if (!gpu && globalThis.isSecureContext === false)
    return 'WebGPU needs a secure origin: open the page over https or on localhost';
  if (!gpu) return 'no WebGPU in this environment';
  const adapter = await gpu.requestAdapter().catch(() => null);
  return adapter ? undefined : 'no WebGPU adapter';
}

/** A session on `ep`, or the one-line reason it cannot open one. */
async function tryCreate(model: Uint8Array, ep: WebProvider): Promise<ort.InferenceSession | string> {
  const missing = ep === 'webgpu' ? await webgpuMissing() : undefined;
  if (missing) return missing;
  try {
    return await ort.InferenceSession.create(model, { executionProviders: [WEB_EXECUTION_PROVIDERS[ep]] });
  } catch (error) {
    return messageOf(error).split('\n')[0]!;
  }
}

/**
 * Opens a session for ONNX bytes on onnxruntime-web.
 * @throws CnnxError BAD_EP (a provider name not in the table), EP_UNAVAILABLE (no provider can load the model).
 */
export async function openWebSession(model: Uint8Array, options: WebSessionOptions = {}): Promise<WebSession> {
  const ep = options.ep ?? 'wasm';
  if (!WEB_EP_NAMES.includes(ep)) {
    throw new CnnxError(
      `Unsupported execution provider: "${String(ep)}". Should be one of: ${WEB_EP_NAMES.join(', ')}.`,
      'BAD_EP',
    );
  }
  ort.env.wasm.numThreads = options.threads ?? 1;
  if (options.wasmPaths !== undefined) ort.env.wasm.wasmPaths = options.wasmPaths;
  const order: WebProvider[] = ep === 'auto' ? ['webgpu', 'wasm'] : [ep];
  const skipped: SkippedProvider[] = [];
  const failures: string[] = [];
  for (const provider of order) {
    const session = await tryCreate(model, provider);
    if (typeof session === 'string') {
      failures.push(`${provider}: ${session}`);
      if (provider === 'webgpu') skipped.push({ ep: provider, reason: session });
      continue;
    }
    const inputName = session.inputNames[0]!;
    const outputName = session.outputNames[0]!;
    const run: WebSession['run'] = async (data, dims) => {
      const outputs = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) });
      const logits = outputs[outputName]!;
      return { data: logits.data as Float32Array, dims: [...logits.dims] };
    };
    // A model whose batch dimension is fixed (a PyTorch export without dynamic axes) runs in chunks of that size.
    const input = session.inputMetadata[0];
    const batch = input?.isTensor ? input.shape[0] : undefined;
    return oneRunAtATime<WebSession>({
      ep: provider,
      skipped,
      inputName,
      outputName,
      run: typeof batch === 'number' && batch > 0 ? inBatchesOf(batch, run) : run,
      release: () => session.release(),
    });
  }
  const prefix = order.length === 1 ? '' : 'no execution provider could load the model: ';
  throw new CnnxError(`${prefix}${failures.join('; ')}`, 'EP_UNAVAILABLE');
}
