/**
 * onnxruntime-node sessions: the only module that imports onnxruntime-node. A frozen table maps the user's word
 * to an execution provider; `auto` tries CUDA, then WebGPU, then CPU, and records in one line why each failed.
 */
import * as ort from 'onnxruntime-node';
import { CnnxError, ensureVulkanRuntimeDir, messageOf, missingGpuDevice } from '../common/index.js';
import { inBatchesOf, type ModelSession, type SkippedProvider } from './session.js';

// ONNX Runtime's own log goes to stderr from native code; a failed provider attempt (CUDA without its libraries)
// would print a multi-line error although cnnx reports and handles it. Errors still reach callers as exceptions.
ort.env.logLevel = (process.env.CNNX_ORT_LOG_LEVEL as typeof ort.env.logLevel) ?? 'fatal';

const EXECUTION_PROVIDERS = Object.freeze({ cpu: 'cpu', cuda: 'cuda', webgpu: 'webgpu' } as const);
export const EP_NAMES = ['auto', ...Object.keys(EXECUTION_PROVIDERS)] as readonly string[];
export type EpName = 'auto' | keyof typeof EXECUTION_PROVIDERS;
type Provider = keyof typeof EXECUTION_PROVIDERS;

/** A session on onnxruntime-node. */
export type NodeSession = ModelSession<Provider>;

/** How to get the CUDA provider working, for documentation and `--help` (several sentences). */
export const CUDA_HELP =
  "onnxruntime-node's CUDA provider libraries are not in its npm package: its install script downloads them from " +
  'NuGet, and cnnx switches that off (allowScripts in package.json). With network access, run ' +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`; the CUDA provider also ' +
  'needs the CUDA 12 runtime and cuDNN 9 on the library path.';

export interface SessionOptions {
  /** Execution provider; `auto` (default) tries CUDA, then WebGPU, then CPU. */
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
   * logits differ by more than `probeTolerance` (default 1e-3) is refused (ORT's WebGPU EP miscomputes some
   * convolutions).
   */
  probe?: { data: Float32Array; dims: number[] };
  probeTolerance?: number;
}

/** A provider that cannot run this model; `reason` is one line, the message adds what to do where known. */
class ProviderRefused extends CnnxError {
  constructor(
    readonly ep: Provider,
    readonly reason: string,
    code: 'EP_UNAVAILABLE' | 'EP_WRONG_RESULTS',
    advice = '',
  ) {
    super(`${ep}: ${reason}${advice}`, code);
  }
}

/**
 * A provider ONNX Runtime could not load, from its error (multi-line, with source paths): a one-line reason for
 * `skipped`, and a message that adds ORT's full first line where the reason shortens it, and for CUDA how to
 * install the provider.
 */
function unavailable(ep: Provider, error: unknown): ProviderRefused {
  const message = messageOf(error);
  const help = ep === 'cuda' ? `. ${CUDA_HELP}` : '';
  if (ep === 'cuda' && /Failed to load (shared )?library|libonnxruntime_providers_cuda/i.test(message)) {
    return new ProviderRefused(ep, 'CUDA provider libraries not installed', 'EP_UNAVAILABLE', help);
  }
  if (ep === 'webgpu' && /WebGPU adapter|No supported adapters/i.test(message)) {
    return new ProviderRefused(
      ep,
      'no WebGPU adapter',
      'EP_UNAVAILABLE',
      ' (a GPU with Vulkan drivers is needed); use --ep cpu, or --ep auto, which falls back to the CPU',
    );
  }
  // "/onnxruntime_src/.../file.cc:136 function signature ... What went wrong": keep what went wrong.
  const line = message
    .split('\n')[0]!
    .trim()
    .replace(/^\/\S+\.(cc|h):\d+ .*?(?=[A-Z][a-z])/, '');
  if (line.length <= 120) return new ProviderRefused(ep, line, 'EP_UNAVAILABLE', help);
  return new ProviderRefused(ep, `${line.slice(0, 117)}...`, 'EP_UNAVAILABLE', ` (in full: ${line})${help}`);
}

async function tryCreate(model: Uint8Array, ep: Provider, options: SessionOptions) {
  if (ep === 'webgpu') ensureVulkanRuntimeDir();
  try {
    return await ort.InferenceSession.create(model, {
      executionProviders: [EXECUTION_PROVIDERS[ep]],
      ...(options.threads !== undefined ? { intraOpNumThreads: options.threads } : {}),
      ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    });
  } catch (error) {
    throw unavailable(ep, error);
  }
}

/**
 * Opens a session for ONNX bytes on the requested execution provider.
 * @throws CnnxError MODEL_MALFORMED (the CPU provider cannot load the model: ONNX Runtime's reason), EP_UNAVAILABLE
 *   (the provider, or with `auto` every provider, cannot load the model; the
 *   message says why), EP_WRONG_RESULTS (a provider asked for by name fails the probe).
 */
export async function openSession(model: Uint8Array, options: SessionOptions = {}): Promise<NodeSession> {
  const order: Provider[] =
    options.ep === undefined || options.ep === 'auto' ? ['cuda', 'webgpu', 'cpu'] : [options.ep];
  const skipped: SkippedProvider[] = [];
  const failures: string[] = [];
  const skip = (ep: Provider, error: unknown) => {
    const refused = error instanceof ProviderRefused ? error : unavailable(ep, error);
    // The CPU provider runs every operator of the standard opsets: its refusal is the model's fault, not the machine's.
    if (refused.ep === 'cpu' && refused.code === 'EP_UNAVAILABLE') {
      throw new CnnxError(`ONNX Runtime cannot load the model: ${refused.reason}`, 'MODEL_MALFORMED', { cause: error });
    }
    if (order.length === 1) throw refused;
    failures.push(`${refused.ep}: ${refused.reason}`);
    if (refused.ep !== 'cpu') skipped.push({ ep: refused.ep, reason: refused.reason });
  };
  for (const ep of order) {
    const noGpu = order.length > 1 && ep !== 'cpu' ? missingGpuDevice() : undefined;
    if (ep !== 'cpu' && noGpu !== undefined) {
      skipped.push({ ep, reason: noGpu });
      failures.push(`${ep}: ${noGpu}`);
      continue;
    }
    let session: ort.InferenceSession;
    try {
      session = await tryCreate(model, ep, options);
    } catch (error) {
      skip(ep, error);
      continue;
    }
    const inputName = session.inputNames[0]!;
    const outputName = session.outputNames[0]!;
    if (ep !== 'cpu' && options.probe) {
      try {
        await checkAgainstCpu(model, session, inputName, outputName, ep, options);
      } catch (error) {
        await session.release();
        skip(ep, error);
        continue;
      }
    }
    const run: NodeSession['run'] = async (data, dims) => {
      const outputs = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) });
      const logits = outputs[outputName]!;
      const result = { data: logits.data as Float32Array, dims: [...logits.dims] };
      for (const tensor of Object.values(outputs)) tensor.dispose?.();
      return result;
    };
    const batch = fixedBatchOf(session);
    return {
      ep,
      skipped,
      inputName,
      outputName,
      run: batch === undefined ? run : inBatchesOf(batch, run),
      release: () => session.release(),
    };
  }
  throw new CnnxError(`no execution provider could load the model: ${failures.join('; ')}`, 'EP_UNAVAILABLE');
}

/** The input's batch size when the model fixes it (a PyTorch export without dynamic axes), else undefined. */
function fixedBatchOf(session: ort.InferenceSession): number | undefined {
  const input = session.inputMetadata[0];
  const first = input?.isTensor ? input.shape[0] : undefined;
  return typeof first === 'number' && first > 0 ? first : undefined;
}

/** Refuses a provider whose answer on the probe input differs from the CPU provider's. */
async function checkAgainstCpu(
  model: Uint8Array,
  session: ort.InferenceSession,
  inputName: string,
  outputName: string,
  ep: Provider,
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
      throw new ProviderRefused(
        ep,
        `gives wrong results on this model (max diff ${diff.toPrecision(2)} from the CPU provider, tolerance ${tolerance})`,
        'EP_WRONG_RESULTS',
      );
    }
  } finally {
    await cpu.release();
  }
}
