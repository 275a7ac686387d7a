/**
 * onnxruntime-node sessions: the only module that imports onnxruntime-node. A frozen table maps the user's word
 * to an execution provider; `auto` tries CUDA, then WebGPU, then CPU, and remembers why each failed.
 */
import * as ort from 'onnxruntime-node';
import { CnnxError, ensureVulkanRuntimeDir, messageOf } from '../common/index.js';

// ONNX Runtime's own log goes to stderr from native code; a failed provider attempt (CUDA without its libraries)
// would print a multi-line error although cnnx reports and handles it. Errors still reach callers as exceptions.
ort.env.logLevel = (process.env.CNNX_ORT_LOG_LEVEL as typeof ort.env.logLevel) ?? 'fatal';

export const EXECUTION_PROVIDERS = Object.freeze({ cpu: 'cpu', cuda: 'cuda', webgpu: 'webgpu' } as const);
export const EP_NAMES = ['auto', ...Object.keys(EXECUTION_PROVIDERS)] as readonly string[];
export type EpName = 'auto' | keyof typeof EXECUTION_PROVIDERS;

export const CUDA_HELP =
  "onnxruntime-node's CUDA provider libraries are not in its npm package: its install script downloads them from " +
  'NuGet, and cnnx switches that off (allowScripts in package.json). With network access, run ' +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`; the CUDA provider also ' +
  'needs the CUDA 12 runtime and cuDNN 9 on the library path.';

export interface SessionOptions {
  ep?: EpName;
  /** Threads for one operator (intra-op); default ORT's choice. */
  threads?: number;
  /**
   * Whether idle intra-op threads busy-wait for the next operator (ORT's default, true). Off, they sleep and leave
   * the cores to the rest of the process: the HTTP event loop of a server.
   */
  spinning?: boolean;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * An input run on a GPU provider and on the CPU provider before the session is accepted: a provider whose
   * logits differ by more than `probeTolerance` is refused (ORT's WebGPU EP miscomputes some convolutions).
   */
  probe?: { data: Float32Array; dims: number[] };
  probeTolerance?: number;
}

export interface Logits {
  data: Float32Array;
  dims: number[];
}

export interface ModelSession {
  /** The execution provider that runs the model. */
  ep: keyof typeof EXECUTION_PROVIDERS;
  /** Why faster providers were skipped by `auto`. */
  skipped: string[];
  inputName: string;
  outputName: string;
  /** Runs one batch: `data` laid out as `dims` ([N, 1, H, W]). */
  run(data: Float32Array, dims: number[]): Promise<Logits>;
  release(): Promise<void>;
}

export function parseEpName(name: string): EpName {
  if (EP_NAMES.includes(name)) return name as EpName;
  throw new CnnxError(`Unsupported execution provider: "${name}". Should be one of: ${EP_NAMES.join(', ')}.`, 'BAD_EP');
}

async function tryCreate(model: Uint8Array, ep: keyof typeof EXECUTION_PROVIDERS, options: SessionOptions) {
  if (ep === 'webgpu') ensureVulkanRuntimeDir();
  try {
    return await ort.InferenceSession.create(model, {
      executionProviders: [EXECUTION_PROVIDERS[ep]],
      ...(options.threads !== undefined ? { intraOpNumThreads: options.threads } : {}),
      ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    });
  } catch (error) {
    const first = messageOf(error).split('\n')[0]!;
    throw new CnnxError(`${ep}: ${ep === 'cuda' ? `${first}. ${CUDA_HELP}` : first}`, 'EP_UNAVAILABLE');
  }
}

/** Opens a session for ONNX bytes on the requested execution provider. */
export async function openSession(model: Uint8Array, options: SessionOptions = {}): Promise<ModelSession> {
  const order: (keyof typeof EXECUTION_PROVIDERS)[] =
    options.ep === undefined || options.ep === 'auto' ? ['cuda', 'webgpu', 'cpu'] : [options.ep];
  const skipped: string[] = [];
  for (const ep of order) {
    let session: ort.InferenceSession;
    try {
      session = await tryCreate(model, ep, options);
    } catch (error) {
      if (order.length === 1) throw error;
      skipped.push(messageOf(error));
      continue;
    }
    const inputName = session.inputNames[0]!;
    const outputName = session.outputNames[0]!;
    if (ep !== 'cpu' && options.probe) {
      try {
        await checkAgainstCpu(model, session, inputName, outputName, ep, options);
      } catch (error) {
        await session.release();
        if (order.length === 1) throw error;
        skipped.push(messageOf(error));
        continue;
      }
    }
    return {
      ep,
      skipped,
      inputName,
      outputName,
      async run(data, dims) {
        const outputs = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) });
        const logits = outputs[outputName]!;
        const result = { data: logits.data as Float32Array, dims: [...logits.dims] };
        for (const tensor of Object.values(outputs)) tensor.dispose?.();
        return result;
      },
      release: () => session.release(),
    };
  }
  throw new CnnxError(`no execution provider could load the model: ${skipped.join('; ')}`, 'EP_UNAVAILABLE');
}

/** Refuses a provider whose answer on the probe input differs from the CPU provider's. */
async function checkAgainstCpu(
  model: Uint8Array,
  session: ort.InferenceSession,
  inputName: string,
  outputName: string,
  ep: keyof typeof EXECUTION_PROVIDERS,
  options: SessionOptions,
): Promise<void> {
  const { data, dims } = options.probe!;
  const cpu = await tryCreate(model, 'cpu', options);
  try {
    const feeds = { [inputName]: new ort.Tensor('float32', data, dims) };
    const expected = (await cpu.run(feeds))[outputName]!.data as Float32Array;
    const actual = (await session.run(feeds))[outputName]!.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(expected[i]! - actual[i]!));
    const tolerance = options.probeTolerance ?? 1e-3;
    if (!(diff <= tolerance)) {
      throw new CnnxError(
        `${ep}: gives wrong results for this model (logits differ from the CPU provider by ${diff.toPrecision(3)} on a probe input, tolerance ${tolerance}); not used`,
        'EP_WRONG_RESULTS',
      );
    }
  } finally {
    await cpu.release();
  }
}
