/**
 * The `cnnx` command line. Each subcommand lives in `commands/` and is loaded only when it runs: its stage pulls
 * in TensorFlow.js, ONNX Runtime or fastify, which take seconds to load, and `cnnx --version` or `cnnx --help`
 * need none of them. User mistakes end as one line on stderr and a non-zero exit, while unexpected failures (bugs)
 * keep their stack trace.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { isUserError } from '../common/index.js';

type Register = (program: Command) => void;

/**
 * Every subcommand, in the order `--help` lists them: the one-line summary shown there, and how to load the module
 * that defines it fully (its options, help and action). A test checks each summary against the loaded command.
 */
export const COMMANDS = Object.freeze({
  train: {
    summary: 'train LeNet-5 or AlexNet with TensorFlow.js',
    load: async (): Promise<Register> => (await import('./commands/train.js')).registerTrain,
  },
  export: {
    summary:
      'export a training run or a TensorFlow.js Layers model to ONNX, verified against TensorFlow.js with ONNX Runtime',
    load: async (): Promise<Register> => (await import('./commands/export.js')).registerExport,
  },
  eval: {
    summary: "measure an ONNX model's test accuracy with ONNX Runtime",
    load: async (): Promise<Register> => (await import('./commands/eval.js')).registerEval,
  },
  predict: {
    summary: 'classify pictures with an ONNX model, or read the digit string in each',
    load: async (): Promise<Register> => (await import('./commands/predict.js')).registerPredict,
  },
  serve: {
    summary: 'serve ONNX models over HTTP and gRPC (KServe v2, images, digit strings)',
    load: async (): Promise<Register> => (await import('./commands/serve.js')).registerServe,
  },
  bench: {
    summary: 'benchmark training (and, later, inference)',
    load: async (): Promise<Register> => (await import('./commands/bench.js')).registerBench,
  },
  demo: {
    summary: 'train, export, verify and serve in one go (what npm start runs)',
    load: async (): Promise<Register> => (await import('./commands/demo.js')).registerDemo,
  },
  data: {
    summary: 'inspect a dataset (MNIST, Fashion-MNIST, or your own pictures)',
    load: async (): Promise<Register> => (await import('./commands/data.js')).registerData,
  },
} satisfies Record<string, { summary: string; load: () => Promise<Register> }>);

export type CommandName = keyof typeof COMMANDS;

const { version: VERSION } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** The subcommand `argv` (as process.argv) names, if any: `cnnx train ...` and `cnnx help train` name `train`. */
function namedCommand(argv: string[]): CommandName | undefined {
  const words = argv.slice(2).filter((arg) => !arg.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? (name as CommandName) : undefined;
}

/**
 * The program with `load` fully defined and every other subcommand as a name and summary only (enough for
 * `--help`, `--version` and suggestions after a typo).
 */
export async function buildProgram(load: readonly CommandName[] = []): Promise<Command> {
  const program = new Command('cnnx')
    .description('Train LeNet-5 and AlexNet with TensorFlow.js, export to ONNX, serve with ONNX Runtime.')
    .version(VERSION)
    .showSuggestionAfterError()
    .exitOverride();
  for (const [name, { summary, load: loadCommand }] of Object.entries(COMMANDS)) {
    if (load.includes(name as CommandName)) (await loadCommand())(program);
    else program.command(name).description(summary);
  }
  const finish = (command: Command) => {
    command.exitOverride();
    reportTyposFirst(command);
    refuseEmptyValues(command);
    command.commands.forEach(finish);
  };
  finish(program);
  return program;
}

/**
 * Commander checks required options before unknown ones, so `serve --modle x` would blame a missing `--model`
 * instead of the typo. Required options are checked here after parsing instead, with commander's own message.
 */
function reportTyposFirst(command: Command): void {
  const required = command.options.filter((option) => option.mandatory);
  if (required.length === 0) return;
  for (const option of required) option.mandatory = false;
  command.hook('preAction', (_command, actionCommand) => {
    if (actionCommand !== command) return;
    for (const option of required) {
      if (command.getOptionValue(option.attributeName()) === undefined) {
        command.error(`error: required option '${option.flags}' not specified`, {
          code: 'commander.missingMandatoryOptionValue',
        });
      }
    }
  });
}

/**
 * Refuses an option or argument given as an empty string (`--resume ''`, `--out "$UNSET"`), with commander's own
 * message: no cnnx option means anything when empty, and read as a path '' is the working folder (`--data ''` read
 * it as class folders, `--resume ''` started a new run).
 */
function refuseEmptyValues(command: Command): void {
  command.hook('preAction', (_command, actionCommand) => {
    if (actionCommand !== command) return;
    for (const option of command.options) {
      const value: unknown = command.getOptionValue(option.attributeName());
      if (typeof value === 'string' && value.trim() === '') {
        command.error(`error: option '${option.flags}' is empty; give a value or leave the option out`, {
          code: 'commander.invalidArgument',
        });
      }
    }
    command.args.forEach((arg, i) => {
      if (arg.trim() === '') {
        command.error(`error: argument ${i + 1} is empty; give a value or leave it out`, {
          code: 'commander.invalidArgument',
        });
      }
    });
  });
}

/** Runs the CLI with `argv` (as process.argv); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const named = namedCommand(argv);
    const program = await buildProgram(named ? [named] : []);
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
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
