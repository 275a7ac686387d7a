/**
 * The `cnnx` command line. Each subcommand lives in `commands/`; user mistakes end as one line on stderr and a
 * non-zero exit, while unexpected failures (bugs) keep their stack trace.
 */
import { Command, CommanderError } from 'commander';
import { isUserError } from '../common/index.js';
import { registerData } from './commands/data.js';
import { registerTrain } from './commands/train.js';
import { registerBench } from './commands/bench.js';
import { registerExport } from './commands/export.js';
import { registerEval } from './commands/eval.js';
import { registerPredict } from './commands/predict.js';
import { registerServe } from './commands/serve.js';

const VERSION = '0.1.0';

/** Subcommands not built yet: they exist so `--help` shows the whole tool, and say plainly that they are missing. */
const PLANNED: Record<string, string> = {
  demo: 'train, export, verify and serve in one go',
};

export function buildProgram(): Command {
  const program = new Command('cnnx')
    .description('Train LeNet-5 and AlexNet with TensorFlow.js, export to ONNX, serve with ONNX Runtime.')
    .version(VERSION)
    .showSuggestionAfterError()
    .exitOverride();
  registerTrain(program);
  registerExport(program);
  registerEval(program);
  registerPredict(program);
  registerServe(program);
  registerData(program);
  registerBench(program);
  for (const [name, description] of Object.entries(PLANNED)) {
    program
      .command(name)
      .description(`${description} (not available yet)`)
      .allowUnknownOption()
      .action(() => {
        throw new UserFacingNotReady(name);
      });
  }
  for (const command of program.commands) command.exitOverride();
  return program;
}

class UserFacingNotReady extends Error {
  constructor(readonly command: string) {
    super(`cnnx ${command} is not available in this version yet`);
  }
}

/** Runs the CLI with `argv` (as process.argv); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode; // commander already printed its one line
    if (isUserError(error) || error instanceof UserFacingNotReady) {
      console.error(`cnnx: ${error.message}`);
      return 1;
    }
    console.error(error);
    return 2;
  }
}
