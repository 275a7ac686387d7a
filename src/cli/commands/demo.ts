/**
 * `cnnx demo` (`npm start`): the whole pipeline on an embedded default, offline. Trains lenet5-relu on MNIST for a
 * bounded time on the best backend here, exports and verifies the ONNX model, then serves it (with the committed
 * Fashion-MNIST model) and prints where to look. `--skip-train` serves the committed models at once.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { exportRun } from '../../export/index.js';
import { createServer } from '../../serve/index.js';
import { runPath, train, type TrainConfig } from '../../train/index.js';
import { nonNegativeInt } from '../options.js';

const COMMITTED = { digits: 'models/lenet5-relu-mnist.onnx', fashion: 'models/lenet5-relu-fashion-mnist.onnx' };

interface DemoFlags {
  port: number;
  host: string;
  skipTrain?: boolean;
  epochs: number;
  out: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('train, export, verify and serve in one go (what npm start runs)')
    .option('-p, --port <n>', 'port (env PORT)', nonNegativeInt, Number(process.env.PORT) || 8080)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--skip-train', 'serve the committed models at once')
    .option('--epochs <n>', 'training epochs (2 reach ~99.3% in about 2 minutes on 2 cores)', nonNegativeInt, 2)
    .option('-o, --out <dir>', 'run directory', join('runs', 'demo'))
    .action(async (flags: DemoFlags) => {
      const log = (message: string) => console.error(message);
      let digitsModel = COMMITTED.digits;
      if (!flags.skipTrain) {
        const config: TrainConfig = {
          model: 'lenet5-relu',
          dataset: 'mnist',
          epochs: flags.epochs,
          batchSize: 128,
          lr: 0.01,
          optimizer: 'adam',
          schedule: 'one-cycle',
          seed: 42,
          backend: 'auto',
        };
        log(
          `1/3 training lenet5-relu on MNIST, ${config.epochs} epochs (cnnx train --model lenet5-relu --epochs ${config.epochs})`,
        );
        await train({ config, runDir: flags.out, offline: true });
        digitsModel = join(flags.out, 'lenet5-relu-mnist.onnx');
        log(`2/3 exporting to ONNX and checking it against tfjs with ONNX Runtime`);
        const exported = await exportRun({ runDir: flags.out, out: digitsModel, log });
        log(`wrote ${exported.file}`);
      }
      log(`${flags.skipTrain ? '' : '3/3 '}serving`);
      const models = [digitsModel, ...(existsSync(COMMITTED.fashion) ? [COMMITTED.fashion] : [])];
      const server = await createServer({ model: models, ep: 'auto', watch: true, log });
      const address = await server.app.listen({ port: flags.port, host: flags.host });
      const digits = server.registry.list()[0]!.name;
      console.log(`
cnnx is serving ${server.registry
        .list()
        .map((m) => m.name)
        .join(' and ')} at ${address}

  models      ${address}/v2
  metadata    ${address}/v2/models/${digits}
  classify    curl -X POST -H 'content-type: image/png' --data-binary @digit.png ${address}/v1/models/${digits}/classify
  read digits curl -X POST -H 'content-type: image/png' --data-binary @amount.png ${address}/v1/models/${digits}/read-digits
  metrics     ${address}/metrics
${flags.skipTrain ? '' : `  training    ${runPath(flags.out, 'plot')} (loss and accuracy per epoch), ${runPath(flags.out, 'summary')}\n`}
Ctrl-C stops the server (in-flight requests finish first).`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
