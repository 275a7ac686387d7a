/**
 * `cnnx demo` (`npm start`): the whole pipeline on an embedded default, offline. Trains lenet5-relu on MNIST with
 * its own training defaults for a few epochs on the best backend here, exports and verifies the ONNX model, then
 * serves it (with the committed Fashion-MNIST model) and prints where to look. `--skip-train` serves the committed
 * models at once. The port is checked before training, so a busy port fails at once, not minutes later.
 */
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { CnnxError, COMMITTED_MODELS } from '../../common/index.js';
import { exportRun } from '../../export/index.js';
import { getModelSpec } from '../../models/index.js';
import { checkDistinctPorts, checkPortFree, createServer, listen, listenGrpc } from '../../serve/index.js';
import { runPath, train, type TrainConfig } from '../../train/index.js';
import { defaultRunDir, port, positiveInt } from '../options.js';
import { exitAsStopped, stopSignals } from '../signals.js';

/** The model the demo trains; everything else about its training comes from the model's spec. */
const DEMO_MODEL = 'lenet5-relu';

interface DemoFlags {
  port: number;
  grpcPort: number;
  host: string;
  skipTrain?: boolean;
  epochs: number;
  out?: string;
}

export function registerDemo(program: Command): void {
  const spec = getModelSpec(DEMO_MODEL);
  program
    .command('demo')
    .description('train, export, verify and serve in one go (what npm start runs)')
    .addOption(
      new Option('-p, --port <n>', 'port, 0 to 65535 (0 picks a free one)').env('PORT').argParser(port).default(8080),
    )
    .option('--grpc-port <n>', 'KServe v2 gRPC port, 0 to 65535 (0 picks a free one)', port, 8081)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--skip-train', 'serve the committed models at once')
    .option(
      '--epochs <n>',
      `training epochs (2 reach ~99.3% in a few minutes on 2 cores; ${DEMO_MODEL}'s full schedule is ${spec.defaults.epochs})`,
      positiveInt,
      2,
    )
    .option('-o, --out <dir>', `run directory (default ${defaultRunDir('demo')})`)
    .action(async (flags: DemoFlags, command: Command) => {
      const log = (message: string) => console.error(message);
      const trainingOnly = ['epochs', 'out'].filter((name) => command.getOptionValueSource(name) === 'cli');
      if (flags.skipTrain && trainingOnly.length > 0) {
        throw new CnnxError(
          `--skip-train trains nothing, so ${trainingOnly.map((name) => `--${name}`).join(' and ')} would do nothing; drop one or the other`,
          'OPTION_CONFLICT',
        );
      }
      checkDistinctPorts(flags.port, flags.grpcPort);
      await checkPortFree(flags.port, flags.host);
      await checkPortFree(flags.grpcPort, flags.host, '--grpc-port');
      let digitsModel = COMMITTED_MODELS.digits;
      let runDir: string | undefined;
      if (!flags.skipTrain) {
        runDir = flags.out ?? defaultRunDir('demo');
        const config: TrainConfig = {
          model: spec.name,
          dataset: spec.defaultDataset,
          ...spec.defaults,
          epochs: flags.epochs,
          seed: 42,
          backend: 'auto',
        };
        log(
          `1/3 training ${spec.name} on ${config.dataset}, ${config.epochs} epoch${config.epochs === 1 ? '' : 's'} into ${runDir} ` +
            `(cnnx train --model ${spec.name} --epochs ${config.epochs})`,
        );
        const training = stopSignals(undefined); // training says it is stopping;
        try {
          const result = await train({ config, runDir, offline: true, signal: training.signal });
          if (result.interrupted) exitAsStopped(command, result.signal);
        } finally {
          training.dispose();
        }
        digitsModel = join(runDir, `${spec.name}-${config.dataset}.onnx`);
        log(`2/3 exporting to ONNX and checking it against tfjs with ONNX Runtime`);
        const exported = await exportRun({ runDir, out: digitsModel, log });
        log(`wrote ${exported.file}`);
      }
      log(`${flags.skipTrain ? '' : '3/3 '}serving`);
      const server = await createServer({
        model: [digitsModel, COMMITTED_MODELS.fashion],
        ep: 'auto',
        watch: true,
        log,
      });
      const serving = stopSignals('draining in-flight requests');
      let address: string;
      let grpcAddress: string;
      try {
        address = await listen(server, { port: flags.port, host: flags.host });
        grpcAddress = await listenGrpc(server, { port: flags.grpcPort, host: flags.host });
      } catch (error) {
        serving.dispose();
        await server.close();
        throw error;
      }
      const names = server.registry.list().map((m) => m.name);
      const digits = names[0]!;
      console.log(`
cnnx is serving ${names.join(' and ')} at ${address} (HTTP) and ${grpcAddress} (KServe v2 gRPC)

  web page    ${address}/
  models      ${address}/v2
  metadata    ${address}/v2/models/${digits}
  classify    curl -X POST -H 'content-type: image/png' --data-binary @digit.png ${address}/v1/models/${digits}/classify
  read digits curl -X POST -H 'content-type: image/png' --data-binary @amount.png ${address}/v1/models/${digits}/read-digits
  metrics     ${address}/metrics
  gRPC        ${grpcAddress}: inference.GRPCInferenceService (tritonclient.grpc, KServe; docs/api.md)
${runDir ? `  training    ${runPath(runDir, 'plot')} (loss and accuracy per epoch), ${runPath(runDir, 'summary')}\n` : ''}
Ctrl-C stops the server (in-flight requests finish first).`);
      await new Promise<void>((resolve) => serving.signal.addEventListener('abort', () => resolve(), { once: true }));
      await server.close();
      serving.dispose();
      log('stopped');
    });
}
