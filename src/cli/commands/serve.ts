/**
 * `cnnx serve`: serve ONNX models over HTTP (and KServe v2 gRPC with `--grpc-port`) until SIGTERM/SIGINT, then
 * drain in-flight requests and exit 0.
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CnnxError } from '../../common/index.js';
import { EP_NAMES, type EpName } from '../../runtime/index.js';
import {
  checkDistinctPorts,
  checkPortFree,
  createServer,
  DEFAULT_PREFERRED_BATCH,
  listen,
  listenGrpc,
} from '../../serve/index.js';
import { milliseconds, oneOf, port, positiveInt, positiveMilliseconds } from '../options.js';

interface ServeFlags {
  model: string[];
  port: number;
  grpcPort?: number;
  host: string;
  ep: EpName;
  threads?: number;
  spin: boolean;
  inferenceWorker: boolean;
  instances?: number;
  graphOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  maxBatch: number;
  preferredBatch: number;
  maxQueueDelay: number;
  maxQueue: number;
  timeout: number;
  bodyLimit: number;
  maxModelSize: number;
  pin?: Record<string, string>;
  watch: boolean;
  echo?: boolean;
}

/**
 * Inference threads (instances, or ONNX Runtime threads of an instance) a model may have per core: more only wait
 * for each other, each instance holding a copy of the model.
 */
const MAX_INSTANCES_PER_CORE = 4;

function pin(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const match = /^([^=]+)=([0-9a-fA-F]{64})$/.exec(value);
  if (!match) throw new InvalidArgumentError(`expected <model>=<sha256 hex>, got "${value}".`);
  return { ...previous, [match[1]!]: match[2]!.toLowerCase() };
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve ONNX models over HTTP and gRPC (KServe v2, images, digit strings)')
    .requiredOption(
      '-m, --model <file|dir>',
      'an .onnx file, or a directory whose .onnx files are all served (name = file name); repeatable',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .addOption(
      new Option('-p, --port <n>', 'port, 0 to 65535 (0 picks a free one)').env('PORT').argParser(port).default(8080),
    )
    .option('--grpc-port <n>', 'also serve KServe v2 gRPC (inference.GRPCInferenceService) on this port', port)
    .option(
      '--host <address>',
      'address to listen on (0.0.0.0 for all interfaces)',
      // An IPv6 address as URLs write it, [::1], is the address ::1.
      (value: string) => value.replace(/^\[(.*)\]$/, '$1'),
      '127.0.0.1',
    )
    .option('--ep <name>', `execution provider: ${EP_NAMES.join(' | ')}`, oneOf(EP_NAMES as EpName[]), 'auto')
    .option(
      '--threads <n>',
      'ONNX Runtime intra-op threads per model instance (default: half the cores, shared among the instances)',
      positiveInt,
    )
    .option('--no-inference-worker', 'run inference on the event loop instead of a worker thread per model')
    .option(
      '--instances <n>',
      'sessions per model, each on its own inference thread (Triton instance_group count) (default: 2 with 2+ cores and a model of 64 MiB or less, else 1)',
      positiveInt,
    )
    .option('--no-spin', 'idle ONNX Runtime threads sleep instead of busy-waiting (leaves the cores to HTTP)')
    .option(
      '--graph-optimization <level>',
      'disabled | basic | extended | all',
      oneOf(['disabled', 'basic', 'extended', 'all'] as const),
      'all',
    )
    .option(
      '--max-batch <n>',
      'images per inference call when batching concurrent requests (a larger request runs whole)',
      positiveInt,
      64,
    )
    .option(
      '--preferred-batch <n>',
      'a gathering batch of this many images goes to inference at once (Triton preferred_batch_size; at most --max-batch)',
      positiveInt,
      DEFAULT_PREFERRED_BATCH,
    )
    .option(
      '--max-queue-delay <ms>',
      'longest wait for a batch to fill (0: batch what arrived together)',
      milliseconds,
      0,
    )
    .option('--max-queue <n>', 'images waiting per model before 503 + Retry-After', positiveInt, 4096)
    .option('--timeout <ms>', 'request timeout', positiveMilliseconds, 30_000)
    .option('--body-limit <bytes>', 'largest request body', positiveInt, 8 * 2 ** 20)
    .option('--max-model-size <bytes>', 'largest model file loaded', positiveInt, 512 * 2 ** 20)
    .option('--pin <model=sha256>', 'refuse a model file whose sha256 differs (repeatable)', pin)
    .option('--no-watch', 'do not reload models when their files change')
    .option('--echo', 'add POST /debug/echo/:name (parses an infer body, no inference; for benchmarks)')
    .action(async (flags: ServeFlags, command: Command) => {
      const log = (message: string) => console.error(message);
      if (command.getOptionValueSource('preferredBatch') === 'cli' && flags.preferredBatch > flags.maxBatch) {
        throw new CnnxError(
          `--preferred-batch ${flags.preferredBatch} is more than --max-batch ${flags.maxBatch}: a batch never holds more than --max-batch images; lower it, or raise --max-batch`,
          'BAD_OPTION',
        );
      }
      if (flags.instances !== undefined && flags.instances > 1 && !flags.inferenceWorker) {
        throw new CnnxError('--instances needs inference threads; drop --no-inference-worker', 'BAD_OPTION');
      }
      if (flags.instances !== undefined && flags.instances > MAX_INSTANCES_PER_CORE * availableParallelism()) {
        throw new CnnxError(
          `--instances ${flags.instances} is more than this machine can use: at most ${MAX_INSTANCES_PER_CORE * availableParallelism()} (${MAX_INSTANCES_PER_CORE} a core)`,
          'BAD_OPTION',
        );
      }
      if (flags.threads !== undefined && flags.threads > MAX_INSTANCES_PER_CORE * availableParallelism()) {
        // Each instance of each model starts this many threads: a thousand only wait for each other.
        throw new CnnxError(
          `--threads ${flags.threads} is more than this machine can use: at most ${MAX_INSTANCES_PER_CORE * availableParallelism()} (${MAX_INSTANCES_PER_CORE} a core)`,
          'BAD_OPTION',
        );
      }
      checkDistinctPorts(flags.port, flags.grpcPort);
      // Before the models load (seconds for large ones): a port that cannot be opened fails at once.
      await checkPortFree(flags.port, flags.host);
      if (flags.grpcPort !== undefined) await checkPortFree(flags.grpcPort, flags.host, '--grpc-port');
      const server = await createServer({
        model: flags.model,
        ep: flags.ep,
        threads: flags.threads,
        spinning: flags.spin,
        inferenceWorker: flags.inferenceWorker,
        instances: flags.instances,
        graphOptimizationLevel: flags.graphOptimization,
        maxBatch: flags.maxBatch,
        preferredBatch: flags.preferredBatch,
        maxQueueDelayMs: flags.maxQueueDelay,
        maxQueue: flags.maxQueue,
        requestTimeoutMs: flags.timeout,
        bodyLimitBytes: flags.bodyLimit,
        maxModelBytes: flags.maxModelSize,
        pins: flags.pin,
        watch: flags.watch,
        echoRoute: flags.echo,
        log,
      });
      // Listening for signals before the address is printed: a supervisor may stop the server as soon as it is up.
      const stopped = new Promise<void>((resolve) => {
        let draining = false;
        const stop = (signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP') => {
          if (draining) {
            // A supervisor may repeat SIGTERM (coreutils timeout sends two): the drain goes on. Ctrl-C twice quits.
            if (signal === 'SIGINT') {
              log('SIGINT again: quitting without draining');
              process.exit(130);
            }
            return;
          }
          draining = true;
          log(`${signal}: draining in-flight requests (Ctrl-C again quits at once)`);
          void server.close().then(resolve);
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
        // The terminal or SSH session closed: drain as for SIGTERM rather than dropping what is in flight.
        process.on('SIGHUP', () => stop('SIGHUP'));
      });
      let address: string;
      let grpcAddress: string | undefined;
      try {
        address = await listen(server, { port: flags.port, host: flags.host });
        if (flags.grpcPort !== undefined)
          grpcAddress = await listenGrpc(server, { port: flags.grpcPort, host: flags.host });
      } catch (error) {
        await server.close();
        throw error;
      }
      const names = server.registry.list().map((m) => m.name);
      console.log(`cnnx serving ${names.join(', ')} at ${address}${grpcAddress ? ` and gRPC ${grpcAddress}` : ''}`);
      // The name as a URL path segment: a file name may hold spaces, '#' or '?'.
      const first = encodeURIComponent(names[0]!);
      console.log(`  curl '${address}/v2/models/${first}'`);
      console.log(
        `  curl -X POST -H 'content-type: image/png' --data-binary @digit.png '${address}/v1/models/${first}/classify'`,
      );
      await stopped;
      log('stopped');
    });
}
