/**
 * The `cnnx` command line. Each subcommand lives in `commands/`; user mistakes end as one line on stderr and a
 * non-zero exit, while unexpected failures (bugs) keep their stack trace.
 */
import { Command, CommanderError } from 'commander';
import { isUserError } from '../common/index.js';
import { registerBench } from './commands/bench.js';
import { registerData } from './commands/data.js';
import { registerDemo } from './commands/demo.js';
import { registerEval } from './commands/eval.js';
import { registerExport } from './commands/export.js';
import { registerPredict } from './commands/predict.js';
import { registerServe } from './commands/serve.js';
import { registerTrain } from './commands/train.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('cnnx')
    .description('Train LeNet-5 and AlexNet with TensorFlow.js, export to ONNX, serve with ONNX Runtime.')
    .version(VERSION)
    .showSuggestionAfterError()
    .exitOverride();
  for (const register of [
    registerTrain,
    registerExport,
    registerEval,
    registerPredict,
    registerServe,
    registerBench,
    registerDemo,
    registerData,
  ]) {
    register(program);
  }
  const exitOverride = (command: Command) => {
    command.exitOverride();
    command.commands.forEach(exitOverride);
  };
  exitOverride(program);
  return program;
}

/** Runs the CLI with `argv` (as process.argv); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode; // commander already printed its one line
    if (isUserError(error)) {
      console.error(`cnnx: ${error.message}`);
      return 1;
    }
    console.error(error);
    return 2;
  }
}
